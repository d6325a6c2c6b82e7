package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeFHIR is a tiny in-memory FHIR server for the load generator's tests.
// It is strict where the benchmark could go wrong: media types, the bearer
// token, required fields, references to resources that exist, update of the
// resource named in the URL, and deletes that would leave a dangling
// reference. Whatever it refuses is listed in problems.
type fakeFHIR struct {
	token string

	mu       sync.Mutex
	next     int
	store    map[string]map[string]any // "Type/id" -> resource
	counts   map[string]int            // "POST Patient", "GET Patient", "search Observation", "transaction", ...
	searches map[string]int            // "Type?sorted,param,names"
	problems []string
}

// newFakeFHIR starts a fake FHIR server at {URL}/fhir that wants token (none
// when empty).
func newFakeFHIR(tb testing.TB, token string) (*fakeFHIR, *httptest.Server) {
	tb.Helper()
	f := &fakeFHIR{token: token, store: map[string]map[string]any{}, counts: map[string]int{}, searches: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /fhir", f.transaction)
	mux.HandleFunc("POST /fhir/{type}", f.create)
	mux.HandleFunc("GET /fhir/{type}", f.search)
	mux.HandleFunc("GET /fhir/{type}/{id}", f.read)
	mux.HandleFunc("PUT /fhir/{type}/{id}", f.update)
	mux.HandleFunc("DELETE /fhir/{type}/{id}", f.delete)
	srv := httptest.NewServer(f.auth(mux))
	tb.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeFHIR) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
			http.Error(w, "unauthorised", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("Accept") != fhirJSON {
			f.refuse(w, "Accept %q", r.Header.Get("Accept"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuse records a problem and answers 400.
func (f *fakeFHIR) refuse(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.mu.Lock()
	f.problems = append(f.problems, msg)
	f.mu.Unlock()
	http.Error(w, msg, http.StatusBadRequest)
}

// body decodes a resource body of type typ.
func (f *fakeFHIR) body(r *http.Request, typ string) (map[string]any, error) {
	if ct := r.Header.Get("Content-Type"); ct != fhirJSON {
		return nil, fmt.Errorf("Content-Type %q", ct)
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if m["resourceType"] != typ {
		return nil, fmt.Errorf("resourceType %v at %s", m["resourceType"], typ)
	}
	return m, nil
}

// checkLocked checks the required fields and that every "Type/id" reference
// of res exists; urn names fullUrls resolved in this transaction.
func (f *fakeFHIR) checkLocked(res map[string]any, urn map[string]bool) error {
	typ := res["resourceType"].(string)
	for _, field := range requiredFields[typ] {
		if v := lookup(res, field); v == nil || v == "" {
			return fmt.Errorf("%s without %s", typ, field)
		}
	}
	for _, ref := range references(res) {
		if f.store[ref] == nil && !urn[ref] {
			return fmt.Errorf("%s refers to %s, which does not exist", typ, ref)
		}
	}
	return nil
}

// references returns every reference value in v.
func references(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "reference" {
				out = append(out, s)
			} else {
				out = append(out, references(e)...)
			}
		}
	case []any:
		for _, e := range x {
			out = append(out, references(e)...)
		}
	}
	return out
}

func (f *fakeFHIR) create(w http.ResponseWriter, r *http.Request) {
	typ := r.PathValue("type")
	res, err := f.body(r, typ)
	if err != nil {
		f.refuse(w, "create: %v", err)
		return
	}
	f.mu.Lock()
	f.counts["POST "+typ]++
	if err := f.checkLocked(res, nil); err != nil {
		f.mu.Unlock()
		f.refuse(w, "create: %v", err)
		return
	}
	f.next++
	id := strconv.Itoa(f.next)
	res["id"] = id
	f.store[typ+"/"+id] = res
	f.mu.Unlock()
	w.Header().Set("Location", "http://"+r.Host+"/fhir/"+typ+"/"+id+"/_history/1")
	w.Header().Set("Content-Type", fhirJSON)
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(res)
}

func (f *fakeFHIR) read(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("type") + "/" + r.PathValue("id")
	f.mu.Lock()
	f.counts["GET "+r.PathValue("type")]++
	res := f.store[key]
	var b []byte
	if res != nil {
		b, _ = json.Marshal(res)
	}
	f.mu.Unlock()
	if res == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", fhirJSON)
	w.Write(b)
}

func (f *fakeFHIR) update(w http.ResponseWriter, r *http.Request) {
	typ, id := r.PathValue("type"), r.PathValue("id")
	res, err := f.body(r, typ)
	if err != nil {
		f.refuse(w, "update: %v", err)
		return
	}
	if res["id"] != id {
		f.refuse(w, "update %s/%s: body id %v", typ, id, res["id"])
		return
	}
	f.mu.Lock()
	f.counts["PUT "+typ]++
	if f.store[typ+"/"+id] == nil {
		f.mu.Unlock()
		f.refuse(w, "update %s/%s: no such resource", typ, id)
		return
	}
	if err := f.checkLocked(res, nil); err != nil {
		f.mu.Unlock()
		f.refuse(w, "update: %v", err)
		return
	}
	f.store[typ+"/"+id] = res
	f.mu.Unlock()
	w.Header().Set("Content-Type", fhirJSON)
	json.NewEncoder(w).Encode(res)
}

func (f *fakeFHIR) delete(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("type") + "/" + r.PathValue("id")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts["DELETE "+r.PathValue("type")]++
	if f.store[key] == nil {
		f.problems = append(f.problems, "delete of missing "+key)
		http.NotFound(w, r)
		return
	}
	for other, res := range f.store {
		if slices.Contains(references(res), key) {
			f.problems = append(f.problems, "delete of "+key+" still referenced by "+other)
			http.Error(w, "still referenced", http.StatusConflict)
			return
		}
	}
	delete(f.store, key)
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeFHIR) search(w http.ResponseWriter, r *http.Request) {
	typ := r.PathValue("type")
	q := r.URL.Query()
	var keys []string
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	f.mu.Lock()
	f.counts["search "+typ]++
	f.searches[typ+"?"+strings.Join(keys, ",")]++
	f.mu.Unlock()
	w.Header().Set("Content-Type", fhirJSON)
	io.WriteString(w, `{"resourceType":"Bundle","type":"searchset","total":0}`)
}

// transaction stores the entries of a transaction Bundle: POST entries
// (with a urn:uuid fullUrl) under new ids, PUT entries at the Type/id of
// their url. Every reference must name a stored resource or an earlier
// entry of the Bundle.
func (f *fakeFHIR) transaction(w http.ResponseWriter, r *http.Request) {
	b, err := f.body(r, "Bundle")
	if err != nil {
		f.refuse(w, "transaction: %v", err)
		return
	}
	if b["type"] != "transaction" {
		f.refuse(w, "transaction: Bundle.type %v", b["type"])
		return
	}
	entries, _ := b["entry"].([]any)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts["transaction"]++
	fail := func(format string, args ...any) {
		msg := "transaction: " + fmt.Sprintf(format, args...)
		f.problems = append(f.problems, msg)
		http.Error(w, msg, http.StatusBadRequest)
	}
	known := map[string]bool{}
	keys := make([]string, len(entries))
	for i, e := range entries {
		e, _ := e.(map[string]any)
		res, _ := e["resource"].(map[string]any)
		if res == nil {
			fail("entry without resource")
			return
		}
		typ, _ := res["resourceType"].(string)
		method, _ := lookup(e, "request.method").(string)
		url, _ := lookup(e, "request.url").(string)
		switch {
		case method == "POST" && url == typ:
			full, _ := e["fullUrl"].(string)
			if full == "" {
				fail("POST entry %d without fullUrl", i)
				return
			}
			known[full] = true
		case method == "PUT" && url == typ+"/"+fmt.Sprint(res["id"]):
			keys[i] = url
		default:
			fail("entry %d: %s %s of a %s", i, method, url, typ)
			return
		}
		if err := f.checkLocked(res, known); err != nil {
			fail("%v", err)
			return
		}
		if keys[i] != "" {
			known[keys[i]] = true
		}
	}
	for i, e := range entries {
		res := e.(map[string]any)["resource"].(map[string]any)
		key := keys[i]
		if key == "" {
			f.next++
			key = res["resourceType"].(string) + "/" + strconv.Itoa(f.next)
		}
		f.store[key] = res
	}
	w.Header().Set("Content-Type", fhirJSON)
	io.WriteString(w, `{"resourceType":"Bundle","type":"transaction-response"}`)
}

// snapshot returns copies of what the fake saw.
func (f *fakeFHIR) snapshot() (counts, searches map[string]int, stored int, problems []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	counts, searches = map[string]int{}, map[string]int{}
	for k, v := range f.counts {
		counts[k] = v
	}
	for k, v := range f.searches {
		searches[k] = v
	}
	return counts, searches, len(f.store), slices.Clone(f.problems)
}

package rest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rawjson"
)

// History page sizes: the default and the most one page may hold.
const (
	defaultCount = 50
	maxCount     = 1000
)

// cursorParam carries the keyset position of the next page in paging links.
const cursorParam = "_cursor"

// historyQuery reads the history parameters: _count, _since, _at and the
// paging cursor. A malformed value answers 400 naming the parameter.
func historyQuery(r *http.Request) (fhir.HistoryQuery, error) {
	q := fhir.HistoryQuery{Type: chi.URLParam(r, "type"), ID: chi.URLParam(r, "id"), Count: defaultCount}
	v := queryOf(r)
	if c := v.Get("_count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			return q, fhir.Errorf(fhir.Invalid, "_count", "_count must be a whole number of 0 or more, not %q", c)
		}
		q.Count = min(n, maxCount)
	}
	if s := v.Get("_since"); s != "" {
		d, err := fhir.ParseDate(s, time.UTC)
		if err != nil {
			return q, fhir.Errorf(fhir.Invalid, "_since", "_since: %v", err)
		}
		q.Since = d.Start
	}
	if s := v.Get("_at"); s != "" {
		d, err := fhir.ParseDate(s, time.UTC)
		if err != nil {
			return q, fhir.Errorf(fhir.Invalid, "_at", "_at: %v", err)
		}
		q.AtStart, q.AtEnd = d.Start, d.End
	}
	if c := v.Get(cursorParam); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 1 {
			return q, fhir.Errorf(fhir.Invalid, cursorParam, "%s %q is not a paging position from a link of this server", cursorParam, c)
		}
		q.Before = n
	}
	return q, nil
}

// history handles instance, type and system history.
func (s *Server) history(w http.ResponseWriter, r *http.Request) error {
	q, err := historyQuery(r)
	if err != nil {
		return err
	}
	if q.ID != "" && !validID.MatchString(q.ID) {
		return fhir.Errorf(fhir.NotFound, "", "%s/%s is not known", q.Type, q.ID)
	}
	sub, err := subsetter(r)
	if err != nil {
		return err
	}
	// Even with _count=0 the store answers: an unknown instance is 404, and
	// the total is the store's to tell.
	page, err := s.store.History(r.Context(), q)
	if err != nil {
		return err
	}
	b := &bundle{typ: "history", total: page.Total, now: s.now()}
	b.links = append(b.links, link{"self", s.pageURL(r, q.Before)})
	if page.Next > 0 {
		b.links = append(b.links, link{"next", s.pageURL(r, page.Next)})
	}
	for _, e := range page.Entries {
		be := bundleEntry{fullURL: s.base + "/" + e.Type + "/" + e.ID, method: string(e.Method)}
		be.url = e.Type + "/" + e.ID
		switch e.Method {
		case fhir.MethodCreate:
			be.url, be.status = e.Type, "201 Created"
		case fhir.MethodDelete:
			be.status = "204 No Content"
		default:
			be.status = "200 OK"
			if e.VersionID == 1 {
				be.status = "201 Created"
			}
		}
		be.etag, be.lastModified = e.ETag(), e.LastUpdated
		if !e.Deleted {
			be.resource = e.Body
			if sub != nil {
				if be.resource, err = rawjson.Subset(e.Body, sub(e.Type)); err != nil {
					return err
				}
			}
		}
		b.entries = append(b.entries, be)
	}
	s.writeJSON(w, r, http.StatusOK, b.bytes())
	return nil
}

// pageURL is the request's own URL with the cursor set to before (0: none).
func (s *Server) pageURL(r *http.Request, before int64) string {
	q := r.URL.Query()
	q.Del(cursorParam)
	if before > 0 {
		q.Set(cursorParam, strconv.FormatInt(before, 10))
	}
	u := s.base + strings.TrimPrefix(r.URL.Path, "/fhir")
	if enc := q.Encode(); enc != "" {
		u += "?" + enc
	}
	return u
}

type link struct{ relation, url string }

type bundleEntry struct {
	fullURL      string
	resource     json.RawMessage
	searchMode   string // match | include | outcome, for searchsets
	method, url  string
	status, etag string
	location     string
	lastModified time.Time
	outcome      json.RawMessage // response.outcome, for transaction and batch responses
}

// bundle writes a Bundle around stored resource bytes without parsing them.
type bundle struct {
	typ     string
	total   int64 // -1: unknown, left out
	now     time.Time
	links   []link
	entries []bundleEntry
}

func (b *bundle) bytes() []byte {
	var buf bytes.Buffer
	str := func(s string) { buf.Write(strconv.AppendQuote(nil, s)) }
	buf.WriteString(`{"resourceType":"Bundle","meta":{"lastUpdated":`)
	str(b.now.UTC().Format(rawjson.InstantLayout))
	buf.WriteString(`},"type":`)
	str(b.typ)
	if b.total >= 0 {
		buf.WriteString(`,"total":`)
		buf.WriteString(strconv.FormatInt(b.total, 10))
	}
	if len(b.links) > 0 {
		buf.WriteString(`,"link":[`)
		for i, l := range b.links {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString(`{"relation":`)
			str(l.relation)
			buf.WriteString(`,"url":`)
			str(l.url)
			buf.WriteByte('}')
		}
		buf.WriteByte(']')
	}
	if len(b.entries) > 0 {
		buf.WriteString(`,"entry":[`)
		for i, e := range b.entries {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.WriteByte('{')
			sep := ""
			if e.fullURL != "" {
				buf.WriteString(`"fullUrl":`)
				str(e.fullURL)
				sep = ","
			}
			if e.resource != nil {
				buf.WriteString(sep + `"resource":`)
				buf.Write(e.resource)
				sep = ","
			}
			if e.searchMode != "" {
				buf.WriteString(sep + `"search":{"mode":`)
				str(e.searchMode)
				buf.WriteByte('}')
				sep = ","
			}
			if e.method != "" {
				buf.WriteString(sep + `"request":{"method":`)
				str(e.method)
				buf.WriteString(`,"url":`)
				str(e.url)
				buf.WriteByte('}')
				sep = ","
			}
			if e.status != "" {
				buf.WriteString(sep + `"response":{"status":`)
				str(e.status)
				if e.location != "" {
					buf.WriteString(`,"location":`)
					str(e.location)
				}
				if e.etag != "" {
					buf.WriteString(`,"etag":`)
					str(e.etag)
				}
				if !e.lastModified.IsZero() {
					buf.WriteString(`,"lastModified":`)
					str(e.lastModified.UTC().Format(rawjson.InstantLayout))
				}
				if e.outcome != nil {
					buf.WriteString(`,"outcome":`)
					buf.Write(e.outcome)
				}
				buf.WriteByte('}')
			}
			buf.WriteByte('}')
		}
		buf.WriteByte(']')
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

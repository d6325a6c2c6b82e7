package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/digitaleouder/ouder/mapping/family"
)

// requiredFields are the paths a strict FHIR R4 server needs, per type; the
// fake server checks them.
var requiredFields = map[string][]string{
	"Patient":       {"resourceType", "identifier.0.system", "identifier.0.value", "name.0.family", "gender", "birthDate"},
	"RelatedPerson": {"resourceType", "patient.reference"},
	"Observation":   {"resourceType", "status", "code.text", "subject.reference"},
	"CarePlan":      {"resourceType", "status", "intent", "subject.reference"},
	"Goal":          {"resourceType", "lifecycleStatus", "description.text", "subject.reference"},
}

// uuidPattern is a urn:uuid of a version 4 UUID (the raw server's ids).
var uuidPattern = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// lookup returns the value at a dotted path of decoded JSON (numbers index
// arrays), or nil.
func lookup(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i := int(k[0] - '0')
			if len(k) != 1 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func decode(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("invalid JSON %s: %v", b, err)
	}
	return m
}

func checkRequired(tb testing.TB, m map[string]any) {
	tb.Helper()
	typ, _ := m["resourceType"].(string)
	fields, ok := requiredFields[typ]
	if !ok {
		tb.Fatalf("unexpected resourceType %q", typ)
	}
	for _, f := range fields {
		v := lookup(m, f)
		if v == nil || v == "" {
			tb.Errorf("%s: %s is missing in %v", typ, f, m)
		}
	}
}

// TestCreates checks the Patients handed out for creates: valid, without
// id, and with an identifier that never repeats, also once the worker
// cycles through its pool of families.
func TestCreates(t *testing.T) {
	t.Parallel()
	g := newGen(1, 0)
	seen := map[string]bool{}
	for range 200 {
		p := decode(t, g.Patient())
		checkRequired(t, p)
		if _, ok := p["id"]; ok {
			t.Fatalf("a Patient to create has an id: %v", p)
		}
		v, _ := lookup(p, "identifier.0.value").(string)
		if seen[v] {
			t.Fatalf("identifier %q repeats", v)
		}
		seen[v] = true
	}
	if g.made != poolSize {
		t.Errorf("200 creates made %d families; want the pool of %d, cycled", g.made, poolSize)
	}
}

// TestCRUDSet checks the three resources of a crud iteration and the
// rewriting that links them to the server's ids.
func TestCRUDSet(t *testing.T) {
	t.Parallel()
	g := newGen(2, 5)
	for range 40 {
		s := g.crudSet()
		child := s.child.ID
		parent := decode(t, rebind(s.parent.JSON, s.parent.ID, "", child, "p9"))
		goal := decode(t, rebind(s.goal.JSON, s.goal.ID, "g7", child, "p9"))
		checkRequired(t, parent)
		checkRequired(t, goal)
		if _, ok := parent["id"]; ok || lookup(parent, "patient.reference") != "Patient/p9" {
			t.Errorf("parent to create: %v", parent)
		}
		if goal["id"] != "g7" || lookup(goal, "subject.reference") != "Patient/p9" {
			t.Errorf("goal to update: %v", goal)
		}
		patient := rebind(s.child.JSON, child, "p9", "", "")
		for _, b := range [][]byte{patient, s.parent.JSON} {
			flipped := toggleActive(b)
			if bytes.Equal(flipped, b) || !bytes.Equal(toggleActive(flipped), b) {
				t.Errorf("toggleActive does not flip and flip back: %s", b)
			}
		}
		g1 := toggleGoal(s.goal.JSON)
		if bytes.Equal(g1, s.goal.JSON) || bytes.Equal(toggleGoal(g1), g1) {
			t.Errorf("toggleGoal changed nothing: %s", s.goal.JSON)
		}
	}
}

// TestTransactionBundle checks ingest Bundles: whole families of at least n
// entries, written with PUT, every reference naming an entry of the Bundle.
func TestTransactionBundle(t *testing.T) {
	t.Parallel()
	g := newGen(3, 9)
	for _, n := range []int{1, 7, 100, 300} {
		body, count := g.transaction(n)
		b := decode(t, body)
		if b["resourceType"] != "Bundle" || b["type"] != "transaction" {
			t.Fatalf("Bundle resourceType %v type %v; want Bundle, transaction", b["resourceType"], b["type"])
		}
		entries, _ := b["entry"].([]any)
		if len(entries) != count || count < n {
			t.Fatalf("%d entries, %d reported, want at least %d", len(entries), count, n)
		}
		urls := map[string]bool{}
		for _, e := range entries {
			urls[lookup(e, "request.url").(string)] = true
		}
		for i, e := range entries {
			res, _ := json.Marshal(e.(map[string]any)["resource"])
			m := decode(t, res)
			if lookup(e, "request.method") != "PUT" || lookup(e, "request.url") != m["resourceType"].(string)+"/"+m["id"].(string) {
				t.Errorf("entry %d request %v; want PUT Type/id", i, e.(map[string]any)["request"])
			}
			refs, err := family.References(res)
			if err != nil {
				t.Fatal(err)
			}
			for _, ref := range refs {
				if !urls[ref] {
					t.Errorf("entry %d refers to %s, which is not in the Bundle", i, ref)
				}
			}
		}
	}
}

func TestGeneratorIsDeterministic(t *testing.T) {
	t.Parallel()
	sample := func(seed int64, stream uint64) []byte {
		g := newGen(seed, stream)
		var buf bytes.Buffer
		for range 30 {
			buf.Write(g.Patient())
			s := g.crudSet()
			buf.Write(s.parent.JSON)
			buf.WriteString(g.familyName())
		}
		body, _ := g.transaction(50)
		buf.Write(body)
		return buf.Bytes()
	}
	a, b := sample(1, 0), sample(1, 0)
	if !bytes.Equal(a, b) {
		t.Error("the same seed and stream gave different resources")
	}
	if bytes.Equal(a, sample(2, 0)) {
		t.Error("seeds 1 and 2 gave the same resources")
	}
	if bytes.Equal(a, sample(1, 1)) {
		t.Error("streams 0 and 1 gave the same resources")
	}
	// Families never repeat across streams, preload streams included.
	seen := map[string]bool{}
	for _, stream := range []uint64{0, 1, 2, preloadStream, preloadStream + 1} {
		g := newGen(1, stream)
		for range 3 {
			group := g.family().Group
			if seen[group] {
				t.Fatalf("family %s repeats", group)
			}
			seen[group] = true
		}
	}
}

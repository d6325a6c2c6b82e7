package rest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzReferenceSpans checks the reference scanner of transactions on
// arbitrary JSON: every span it reports is the JSON string of a
// "reference" member with the value reported, and rewriting every reference
// gives JSON that differs from the input in those values only.
func FuzzReferenceSpans(f *testing.F) {
	f.Add(`{"resourceType":"Observation","subject":{"reference":"urn:uuid:1"},"performer":[{"reference" : "Patient/1"}]}`)
	f.Add(`{"extension":[{"url":"x","valueReference":{"reference":"urn:oid:1.2","display":"reference"}}],"reference":{"reference":"a\"b"}}`)
	f.Add(`{"a":["reference",{"reference":1},{"reference":null},{"reference":["x"]}],"text":{"div":"\"reference\": \"x\""}}`)
	f.Fuzz(func(t *testing.T, body string) {
		if !json.Valid([]byte(body)) {
			return
		}
		spans, err := referenceSpans([]byte(body))
		if err != nil {
			t.Fatalf("valid JSON refused: %v", err)
		}
		for _, sp := range spans {
			var v string
			if err := json.Unmarshal([]byte(body[sp.start:sp.end]), &v); err != nil || v != sp.value {
				t.Fatalf("span %q decodes to %q (%v), reported %q", body[sp.start:sp.end], v, err, sp.value)
			}
		}
		out, err := rewrite([]byte(body), spans, func(ref string) (string, bool, error) { return "R/" + ref, true, nil })
		if err != nil {
			t.Fatal(err)
		}
		var want, got any
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatal(err)
		}
		prefixReferences(want)
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("rewritten body is not JSON: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("rewrite of %s\ngave %s", body, out)
		}
	})
}

// prefixReferences is what rewrite should do, on decoded JSON: prefix
// every string value of a "reference" member with "R/".
func prefixReferences(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "reference" {
				x[k] = "R/" + s
				continue
			}
			prefixReferences(e)
		}
	case []any:
		for _, e := range x {
			prefixReferences(e)
		}
	}
}

// TestReferenceSpansDuplicateKeys documents that the scanner rewrites every
// occurrence, even in an object that repeats "reference" (which Parse
// refuses afterwards anyway).
func TestReferenceSpansDuplicateKeys(t *testing.T) {
	body := `{"subject":{"reference":"a","reference":"b"}}`
	spans, err := referenceSpans([]byte(body))
	if err != nil || len(spans) != 2 {
		t.Fatalf("spans %v, %v; want 2", spans, err)
	}
	out, _ := rewrite([]byte(body), spans, func(ref string) (string, bool, error) { return strings.ToUpper(ref), true, nil })
	if string(out) != `{"subject":{"reference":"A","reference":"B"}}` {
		t.Errorf("got %s", out)
	}
}

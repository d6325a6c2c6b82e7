package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// requiredFields are the paths a strict FHIR R4 server needs, per type.
var requiredFields = map[string][]string{
	"Patient":     {"resourceType", "identifier.0.system", "identifier.0.value", "name.0.family", "gender", "birthDate"},
	"Observation": {"resourceType", "status", "code.coding.0.system", "code.coding.0.code", "subject.reference", "effectiveDateTime", "valueQuantity.value", "valueQuantity.system", "valueQuantity.code"},
	"CarePlan":    {"resourceType", "status", "intent", "subject.reference"},
	"Goal":        {"resourceType", "lifecycleStatus", "description.text", "subject.reference"},
}

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

var (
	datePattern    = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	instantPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$`)
	uuidPattern    = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

func TestGeneratedResourcesAreValid(t *testing.T) {
	t.Parallel()
	g := newGen(1, 0)
	for range 50 {
		p := decode(t, mustJSON(g.Patient()))
		checkRequired(t, p)
		if s, _ := p["birthDate"].(string); !datePattern.MatchString(s) {
			t.Errorf("Patient.birthDate %q is not a FHIR date", s)
		}
		o := decode(t, mustJSON(g.Observation("Patient/1")))
		checkRequired(t, o)
		if o["status"] != "final" || lookup(o, "subject.reference") != "Patient/1" {
			t.Errorf("Observation status %v subject %v; want final, Patient/1", o["status"], lookup(o, "subject.reference"))
		}
		if s, _ := o["effectiveDateTime"].(string); !instantPattern.MatchString(s) {
			t.Errorf("Observation.effectiveDateTime %q is not a FHIR dateTime with a zone", s)
		}
		cp := decode(t, mustJSON(g.CarePlan("Patient/1", []string{"Goal/2"}, "CarePlan/3")))
		checkRequired(t, cp)
		if lookup(cp, "goal.0.reference") != "Goal/2" || lookup(cp, "partOf.0.reference") != "CarePlan/3" {
			t.Errorf("CarePlan goal %v partOf %v; want Goal/2, CarePlan/3", lookup(cp, "goal.0.reference"), lookup(cp, "partOf.0.reference"))
		}
		checkRequired(t, decode(t, mustJSON(g.Goal("Patient/1"))))
	}
	// A plan without goals or parent leaves those elements out: FHIR JSON
	// has no empty arrays.
	if b := mustJSON(g.CarePlan("Patient/1", nil, "")); bytes.Contains(b, []byte(`"goal"`)) || bytes.Contains(b, []byte(`"partOf"`)) || bytes.Contains(b, []byte(`[]`)) {
		t.Errorf("CarePlan without goals has empty elements: %s", b)
	}
}

func TestTransactionBundle(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 5, 7, 100} {
		b := decode(t, mustJSON(newGen(3, 9).Transaction(n)))
		if b["resourceType"] != "Bundle" || b["type"] != "transaction" {
			t.Fatalf("Bundle resourceType %v type %v; want Bundle, transaction", b["resourceType"], b["type"])
		}
		entries, _ := b["entry"].([]any)
		if len(entries) != n {
			t.Fatalf("%d entries, want %d", len(entries), n)
		}
		fullURLs := map[string]bool{}
		patients := 0
		for i, e := range entries {
			e := e.(map[string]any)
			full, _ := e["fullUrl"].(string)
			if !uuidPattern.MatchString(full) || fullURLs[full] {
				t.Errorf("entry %d fullUrl %q: want a fresh urn:uuid", i, full)
			}
			res := e["resource"].(map[string]any)
			checkRequired(t, res)
			typ := res["resourceType"].(string)
			if lookup(e, "request.method") != "POST" || lookup(e, "request.url") != typ {
				t.Errorf("entry %d request %v; want POST %s", i, e["request"], typ)
			}
			switch typ {
			case "Patient":
				patients++
			case "Observation":
				// References resolve to an earlier entry of the Bundle.
				if ref, _ := lookup(res, "subject.reference").(string); !fullURLs[ref] || !strings.HasPrefix(ref, "urn:uuid:") {
					t.Errorf("entry %d subject %q does not name an earlier entry", i, ref)
				}
			}
			fullURLs[full] = true
		}
		if want := (n + obsPerPatient) / (obsPerPatient + 1); patients != want {
			t.Errorf("%d entries hold %d Patients, want %d", n, patients, want)
		}
	}
}

func TestGeneratorIsDeterministic(t *testing.T) {
	t.Parallel()
	sample := func(seed int64, stream uint64) []byte {
		g := newGen(seed, stream)
		var buf bytes.Buffer
		for range 10 {
			p := g.Patient()
			buf.Write(mustJSON(p))
			buf.Write(mustJSON(g.Observation("Patient/x")))
			buf.Write(mustJSON(g.CarePlan("Patient/x", []string{"Goal/y"}, "")))
			buf.Write(mustJSON(g.Goal("Patient/x")))
		}
		buf.Write(mustJSON(g.Transaction(12)))
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
	// Identifiers never repeat within a stream or across streams.
	seen := map[string]bool{}
	for stream := range uint64(3) {
		g := newGen(1, stream)
		for range 100 {
			v := g.Patient().Identifier[0].Value
			if seen[v] {
				t.Fatalf("identifier %q repeats", v)
			}
			seen[v] = true
		}
	}
}

// Package patch applies the two patch formats of FHIR R4
// (http://hl7.org/fhir/R4/http.html#patch) to a resource held as JSON: JSON
// Patch (RFC 6902) and FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html).
// It only changes JSON; the caller validates the result as it would any
// update.
package patch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rawjson"
)

// maxCopyBytes bounds what the copy operations of one JSON Patch may add,
// so that a short patch cannot double a resource into gigabytes.
const maxCopyBytes = 8 << 20

// JSON applies the JSON Patch document p (application/json-patch+json) to
// the resource doc and returns the patched JSON; members keep their order.
// Errors are *fhir.Error: Invalid when p is not a JSON Patch document or
// names an unknown operation, Unprocessable when an operation cannot be
// applied (a path that does not exist, an index out of range, a failed
// test).
func JSON(doc, p []byte) ([]byte, error) {
	ops, err := jsonpatch.DecodePatch(p)
	if err != nil {
		return nil, fhir.Errorf(fhir.Invalid, "", "the body is not a JSON Patch document (an array of operations): %v", err)
	}
	for i, op := range ops {
		if err := checkOperation(op); err != nil {
			return nil, fhir.Errorf(fhir.Invalid, "", "JSON Patch operation %d: %v", i, err)
		}
	}
	opts := jsonpatch.NewApplyOptions()
	opts.AccumulatedCopySizeLimit = maxCopyBytes
	out, err := ops.ApplyWithOptions(doc, opts)
	if err != nil {
		return nil, fhir.Errorf(fhir.Unprocessable, "", "the JSON Patch cannot be applied: %v", err)
	}
	return out, nil
}

// checkOperation refuses an operation that is not well-formed, before
// anything is applied.
func checkOperation(op jsonpatch.Operation) error {
	k := op.Kind()
	switch k {
	case "add", "remove", "replace", "move", "copy", "test":
	default:
		return fmt.Errorf("%q is not an operation (add, remove, replace, move, copy, test)", k)
	}
	if _, err := op.Path(); err != nil {
		return errors.New("no path")
	}
	switch k {
	case "add", "replace", "test":
		if op["value"] == nil {
			return fmt.Errorf("%s needs a value", k)
		}
	case "move", "copy":
		if _, err := op.From(); err != nil {
			return fmt.Errorf("%s needs from", k)
		}
	}
	return nil
}

// encode writes a patched resource: its top-level members in the order of
// the original (new ones after them, by name), nested objects with their
// members by name. HTML characters stay as they are, so narratives do not
// turn into \u003c escapes.
func encode(original []byte, doc map[string]any) ([]byte, error) {
	members, err := rawjson.Members(original)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(doc))
	seen := make(map[string]bool, len(doc))
	for _, m := range members {
		if _, ok := doc[m.Key]; ok {
			keys = append(keys, m.Key)
			seen[m.Key] = true
		}
	}
	var added []string
	for k := range doc {
		if !seen[k] {
			added = append(added, k)
		}
	}
	slices.Sort(added)
	keys = append(keys, added...)
	out := make([]rawjson.Member, len(keys))
	for i, k := range keys {
		v, err := marshal(doc[k])
		if err != nil {
			return nil, fmt.Errorf("patch: encode %s: %w", k, err)
		}
		out[i] = rawjson.Member{Key: k, Value: v}
	}
	return rawjson.Object(out), nil
}

func marshal(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// decode reads JSON keeping numbers as written.
func decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// Package rawjson works on the bytes of a FHIR JSON resource without a full
// parse: it splits the top-level object into its members, writes the
// server-owned id and meta into it, and cuts it down for _summary and
// _elements. It lets a read stream the stored bytes and a write keep exactly
// what the client sent.
package rawjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Member is one member of a JSON object: its key and its compact value.
type Member struct {
	Key   string
	Value json.RawMessage
}

// ErrDuplicateKey is returned (wrapped) by Members when an object repeats a
// key; JSON parsers disagree on which value wins, so FHIR servers refuse it.
var ErrDuplicateKey = errors.New("duplicate key")

// Members splits a JSON object into its members, in order, with every value
// compacted. It returns an error when b is not one JSON object or repeats a
// key (the error names the key).
func Members(b []byte) ([]Member, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var out []Member
	seen := make(map[string]struct{}, 16)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		key, _ := tok.(string)
		if _, dup := seen[key]; dup {
			return nil, fmt.Errorf("%w %q", ErrDuplicateKey, key)
		}
		seen[key] = struct{}{}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("not JSON at %q: %w", key, err)
		}
		var buf bytes.Buffer
		buf.Grow(len(raw))
		if err := json.Compact(&buf, raw); err != nil {
			return nil, fmt.Errorf("not JSON at %q: %w", key, err)
		}
		out = append(out, Member{Key: key, Value: buf.Bytes()})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not JSON: data after the object")
	}
	return out, nil
}

// Object writes members as one compact JSON object.
func Object(members []Member) []byte {
	n := 2
	for _, m := range members {
		n += len(m.Key) + len(m.Value) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, m.Key)
		b = append(b, ':')
		b = append(b, m.Value...)
	}
	return append(b, '}')
}

// Get returns the value of key, or nil.
func Get(members []Member, key string) json.RawMessage {
	for _, m := range members {
		if m.Key == key {
			return m.Value
		}
	}
	return nil
}

// String returns the value of key when it is a JSON string.
func String(members []Member, key string) (string, bool) {
	v := Get(members, key)
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// InstantLayout formats meta.lastUpdated: an R4 instant with microseconds,
// the precision the store keeps.
const InstantLayout = "2006-01-02T15:04:05.000000Z07:00"

// Stamp returns the canonical bytes of a resource: resourceType, then id and
// meta with the server's versionId and lastUpdated (keeping the client's other
// meta members: profile, tag, security, source, extension), then every other
// member in the order the client wrote it. A client-sent versionId or
// lastUpdated is dropped: they belong to the server.
func Stamp(members []Member, typ, id string, version int64, lastUpdated time.Time) ([]byte, error) {
	meta := []Member{
		{Key: "versionId", Value: quote(strconv.FormatInt(version, 10))},
		{Key: "lastUpdated", Value: quote(lastUpdated.UTC().Format(InstantLayout))},
	}
	if m := Get(members, "meta"); m != nil {
		old, err := Members(m)
		if err != nil {
			return nil, fmt.Errorf("meta: %w", err)
		}
		for _, om := range old {
			switch om.Key {
			case "versionId", "lastUpdated", "_versionId", "_lastUpdated":
			default:
				meta = append(meta, om)
			}
		}
	}
	out := make([]Member, 0, len(members)+3)
	out = append(out,
		Member{Key: "resourceType", Value: quote(typ)},
		Member{Key: "id", Value: quote(id)},
		Member{Key: "meta", Value: Object(meta)})
	for _, m := range members {
		switch m.Key {
		case "resourceType", "id", "meta":
		default:
			out = append(out, m)
		}
	}
	return Object(out), nil
}

func quote(s string) json.RawMessage { return strconv.AppendQuote(nil, s) }

// subsettedTag is the meta.tag a server adds to a resource it returns only
// in part (http://hl7.org/fhir/R4/search.html#summary).
var subsettedTag = json.RawMessage(`{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED","display":"Resource encoded in summary mode"}`)

// Subset returns body with only the top-level members for which keep returns
// true (resourceType, id and meta are always kept) and meta.tag SUBSETTED
// added.
func Subset(body []byte, keep func(key string) bool) ([]byte, error) {
	members, err := Members(body)
	if err != nil {
		return nil, err
	}
	out := members[:0]
	for _, m := range members {
		switch m.Key {
		case "resourceType", "id":
			out = append(out, m)
		case "meta":
			tagged, err := addTag(m.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, Member{Key: "meta", Value: tagged})
		default:
			if keep(m.Key) {
				out = append(out, m)
			}
		}
	}
	return Object(out), nil
}

func addTag(meta json.RawMessage) (json.RawMessage, error) {
	ms, err := Members(meta)
	if err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	for i, m := range ms {
		if m.Key == "tag" {
			var tags []json.RawMessage
			if err := json.Unmarshal(m.Value, &tags); err != nil {
				return nil, fmt.Errorf("meta.tag: %w", err)
			}
			tags = append(tags, subsettedTag)
			v, _ := json.Marshal(tags)
			ms[i].Value = v
			return Object(ms), nil
		}
	}
	ms = append(ms, Member{Key: "tag", Value: append(append(json.RawMessage{'['}, subsettedTag...), ']')})
	return Object(ms), nil
}

// Indent returns b pretty-printed with two spaces, for _pretty=true.
func Indent(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return b
	}
	return buf.Bytes()
}

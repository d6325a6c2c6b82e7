package rawjson

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestMembers(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // Object(Members(in))
		wantErr bool
		dup     bool
	}{
		{name: "compacts values", in: `{ "a" : [ 1, 2 ], "b": {"c": "d e"} }`, want: `{"a":[1,2],"b":{"c":"d e"}}`},
		{name: "keeps order", in: `{"z":1,"a":2}`, want: `{"z":1,"a":2}`},
		{name: "keeps number literals", in: `{"v":1.50,"w":1e3}`, want: `{"v":1.50,"w":1e3}`},
		{name: "empty object", in: `{}`, want: `{}`},
		{name: "array", in: `[1]`, wantErr: true},
		{name: "string", in: `"x"`, wantErr: true},
		{name: "truncated", in: `{"a":1`, wantErr: true},
		{name: "trailing data", in: `{"a":1} {}`, wantErr: true},
		{name: "duplicate key", in: `{"a":1,"a":2}`, wantErr: true, dup: true},
		{name: "empty", in: ``, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := Members([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Members(%s) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if tt.dup && !errors.Is(err, ErrDuplicateKey) {
				t.Errorf("error %v is not ErrDuplicateKey", err)
			}
			if err == nil {
				if got := string(Object(ms)); got != tt.want {
					t.Errorf("Object(Members(%s)) = %s, want %s", tt.in, got, tt.want)
				}
			}
		})
	}
}

func TestStamp(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC)
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "adds id and meta first",
			in:   `{"active":true,"resourceType":"Patient"}`,
			want: `{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","lastUpdated":"2026-11-23T10:00:00.123456Z"},"active":true}`,
		},
		{
			name: "replaces client id, versionId and lastUpdated, keeps profile and tag",
			in:   `{"resourceType":"Patient","id":"other","meta":{"versionId":"9","lastUpdated":"2000-01-01T00:00:00Z","profile":["http://x"],"tag":[{"code":"a"}]},"gender":"male"}`,
			want: `{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","lastUpdated":"2026-11-23T10:00:00.123456Z","profile":["http://x"],"tag":[{"code":"a"}]},"gender":"male"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := Members([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Stamp(ms, "Patient", "p1", 3, at)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Stamp() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestSubset(t *testing.T) {
	in := `{"resourceType":"Patient","id":"p","meta":{"versionId":"1"},"text":{"div":"x"},"name":[{"family":"A"}],"gender":"male"}`
	got, err := Subset([]byte(in), func(k string) bool { return k == "name" })
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resourceType":"Patient","id":"p","meta":{"versionId":"1","tag":[` + string(subsettedTag) + `]},"name":[{"family":"A"}]}`
	if string(got) != want {
		t.Errorf("Subset() =\n%s\nwant\n%s", got, want)
	}
	// An existing tag list is extended, not replaced.
	in2 := `{"resourceType":"Patient","meta":{"tag":[{"code":"a"}]}}`
	got2, err := Subset([]byte(in2), func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Meta struct {
			Tag []map[string]string `json:"tag"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(got2, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Meta.Tag) != 2 || v.Meta.Tag[0]["code"] != "a" || v.Meta.Tag[1]["code"] != "SUBSETTED" {
		t.Errorf("tags = %v, want [a SUBSETTED]", v.Meta.Tag)
	}
}

func BenchmarkStamp(b *testing.B) {
	in := []byte(`{"resourceType":"Patient","meta":{"profile":["http://x"]},"identifier":[{"system":"urn:x","value":"1"}],"name":[{"family":"Jansen","given":["Anna","Maria"]}],"gender":"female","birthDate":"2012-03-04","address":[{"line":["Kerkstraat 1"],"city":"Utrecht","postalCode":"3511AB"}]}`)
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		ms, err := Members(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Stamp(ms, "Patient", "p1", 1, at); err != nil {
			b.Fatal(err)
		}
	}
}

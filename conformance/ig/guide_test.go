package ig_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/ig"
	"github.com/digitaleouder/ouder/mapping"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGolden pins every resource of the guide as it is served (go test
// -update rewrites testdata/golden), and checks that each is valid R4 and
// has the id and url the guide lists.
func TestGolden(t *testing.T) {
	rs, err := ig.Resources()
	if err != nil {
		t.Fatal(err)
	}
	p, err := conformance.NewParser()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("testdata", "golden")
	if *update {
		old, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, r := range rs {
		name := r.Type + "-" + r.ID + ".json"
		if seen[name] {
			t.Errorf("two resources %s/%s", r.Type, r.ID)
		}
		seen[name] = true
		res, err := p.Parse(r.JSON, r.Type)
		if err != nil {
			t.Errorf("%s/%s is not valid: %v", r.Type, r.ID, err)
			continue
		}
		if res.ID != r.ID || !strings.HasPrefix(r.URL, mapping.BaseURL+"/"+r.Type+"/") || !strings.HasSuffix(r.URL, "/"+r.ID) {
			t.Errorf("%s/%s has id %q and url %q", r.Type, r.ID, res.ID, r.URL)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, r.JSON, "", " "); err != nil {
			t.Fatal(err)
		}
		pretty.WriteByte('\n')
		path := filepath.Join(dir, name)
		if *update {
			if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v (go test ./conformance/ig -update writes it)", err)
			continue
		}
		if !bytes.Equal(want, pretty.Bytes()) {
			t.Errorf("%s differs from the golden file %s (go test ./conformance/ig -update rewrites it)", r.Type+"/"+r.ID, path)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != len(rs) {
		t.Errorf("%d golden files, %d resources", len(files), len(rs))
	}
}

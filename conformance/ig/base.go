package ig

//go:generate go run ./internal/gen -shared ../../../shared/fhir-r4 -out data/base.json.gz

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/digitaleouder/ouder/conformance/ig/internal/sd"
)

//go:embed data/base.json.gz
var baseData []byte

// baseDefinitions are the R4 definitions the profiles are built on, by type
// name: the resource types the guide profiles and every complex datatype.
var baseDefinitions = sync.OnceValues(func() (map[string]*sd.Definition, error) {
	zr, err := gzip.NewReader(bytes.NewReader(baseData))
	if err != nil {
		return nil, fmt.Errorf("ig: base definitions: %w", err)
	}
	out := map[string]*sd.Definition{}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var d sd.Definition
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return nil, fmt.Errorf("ig: base definitions: %w", err)
		}
		out[d.Type] = &d
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ig: base definitions: %w", err)
	}
	return out, nil
})

package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"

	"github.com/digitaleouder/ouder/mapping/family"
)

// The benchmark's resources are the project's one synthetic data generator,
// mapping/family: whole families (children, parents, plans, agreements,
// goals, notes, diary, team, Consents...), valid for the server because the
// domain conversions made them. Every random choice comes from a PCG stream
// of (-seed, stream): preloaded item i and worker w each have their own
// stream, so the same seed gives the same data whatever the concurrency.

// streamStride separates the family numbers of two streams: stream s makes
// families s*streamStride, s*streamStride+1, ... (of the -seed generator).
const streamStride = 1 << 24

// preloadStream offsets the generator streams of preloaded items from those
// of the load workers, so the two never produce the same families.
const preloadStream = 1 << 32

// poolSize is how many families a worker makes before it cycles through
// them for single creates: making a family costs about a millisecond of
// CPU, which at thousands of creates a second would be taken from the server
// under test. A resource handed out again gets a fresh identifier.
const poolSize = 16

// gen hands out the families of one stream and their resources. It is not
// safe for concurrent use: each worker and each preloaded item has its own.
type gen struct {
	fams   family.Generator
	rng    *rand.Rand // for choices that are not resources
	stream uint64
	made   int // families made from this stream

	pool   []*family.Family // the first poolSize families, for single creates
	cycle  int              // families handed out for single creates
	cur    *family.Family   // the family whose children are being handed out
	child  int              // the next child of cur
	reused int              // resources handed out for creates, for fresh identifiers
}

// newGen returns the generator for stream of seed.
func newGen(seed int64, stream uint64) *gen {
	return &gen{
		fams:   family.Generator{Seed: seed},
		rng:    rand.New(rand.NewPCG(uint64(seed), stream^0x9e3779b97f4a7c15)),
		stream: stream,
	}
}

// family returns the next new family of the stream, never handed out
// before: its resources have their own stable ids, to be written with PUT.
func (g *gen) family() *family.Family {
	n := int(g.stream*streamStride) + g.made
	g.made++
	f, err := g.fams.Family(n)
	if err != nil {
		// The generator fails only on a bug (a domain rule it broke).
		panic(fmt.Sprintf("ouderbench: generate family %d: %v", n, err))
	}
	return f
}

// nextChild returns a family and the index of one of its children, going
// through the children of the stream's first poolSize families and then
// cycling through them again.
func (g *gen) nextChild() (*family.Family, int) {
	if g.cur == nil || g.child >= len(g.cur.Children) {
		if len(g.pool) < poolSize {
			g.cur = g.family()
			g.pool = append(g.pool, g.cur)
		} else {
			g.cur = g.pool[g.cycle%poolSize]
		}
		g.cycle++
		g.child = 0
	}
	g.child++
	return g.cur, g.child - 1
}

// find returns the resource of f with the given reference; it panics when
// there is none (the families always have what the scenarios take).
func find(f *family.Family, ref string) family.Resource {
	for _, r := range f.Resources {
		if r.Ref() == ref {
			return r
		}
	}
	panic("ouderbench: no " + ref + " in family " + f.Group)
}

// fresh returns the JSON of r, a resource of a pooled family about to be
// created again, with its identifier made unique in the stream (its id
// becomes the server's on create).
func (g *gen) fresh(r family.Resource) []byte {
	g.reused++
	old := []byte(`"value":"` + r.ID + `"`)
	repl := []byte(`"value":"` + r.ID + "-u" + strconv.Itoa(g.reused) + `"`)
	return bytes.Replace(r.JSON, old, repl, 1)
}

// Patient returns a child's Patient for a create: without id, with a fresh
// identifier.
func (g *gen) Patient() []byte {
	f, c := g.nextChild()
	r := find(f, "Patient/"+f.Children[c])
	return rebind(g.fresh(r), r.ID, "", "", "")
}

// crudSet is what one crud iteration creates: a child (Patient), a parent
// (RelatedPerson) and a goal of the child (Goal), the latter two referring
// to the child.
type crudSet struct {
	child, parent, goal family.Resource
}

// crudSet returns the next child of the stream with a parent and a goal.
func (g *gen) crudSet() crudSet {
	f, c := g.nextChild()
	child := f.Children[c]
	var s crudSet
	s.child = find(f, "Patient/"+child)
	for _, r := range f.Resources {
		switch {
		case s.parent.ID == "" && r.Type == "RelatedPerson" && bytes.Contains(r.JSON, []byte(`"patient":{"reference":"Patient/`+child+`"}`)):
			s.parent = r
		case s.goal.ID == "" && r.Type == "Goal" && bytes.Contains(r.JSON, []byte(`"subject":{"reference":"Patient/`+child+`"}`)):
			s.goal = r
		}
	}
	if s.parent.ID == "" || s.goal.ID == "" {
		panic("ouderbench: family " + f.Group + " has no parent or goal of " + child)
	}
	return s
}

// rebind returns b with its id set to id (empty: no id member, for a
// create) and every reference to Patient/from made a reference to
// Patient/to.
func rebind(b []byte, oldID, id, from, to string) []byte {
	newID := ""
	if id != "" {
		newID = `"id":"` + id + `",`
	}
	b = bytes.Replace(b, []byte(`"id":"`+oldID+`",`), []byte(newID), 1)
	if from != "" {
		b = bytes.ReplaceAll(b, []byte(`{"reference":"Patient/`+from+`"}`), []byte(`{"reference":"Patient/`+to+`"}`))
	}
	return b
}

var (
	activeTrue  = []byte(`"active":true`)
	activeFalse = []byte(`"active":false`)
	goalStatus  = regexp.MustCompile(`"lifecycleStatus":"[a-z-]+"`)
)

// toggleActive returns b with its top-level active flag flipped (a Patient's
// or RelatedPerson's small update, like the gender change of the CRUD test
// it is modelled on).
func toggleActive(b []byte) []byte {
	if bytes.Contains(b, activeTrue) {
		return bytes.Replace(b, activeTrue, activeFalse, 1)
	}
	return bytes.Replace(b, activeFalse, activeTrue, 1)
}

// toggleGoal returns b with the goal's lifecycleStatus switched between
// on-hold and active.
func toggleGoal(b []byte) []byte {
	next := `"lifecycleStatus":"on-hold"`
	if bytes.Contains(b, []byte(next)) {
		next = `"lifecycleStatus":"active"`
	}
	return goalStatus.ReplaceAll(b, []byte(next))
}

// transaction returns a transaction Bundle of new families of the stream
// with at least n entries (whole families), and its number of entries.
func (g *gen) transaction(n int) ([]byte, int) {
	var rs []family.Resource
	for len(rs) < n {
		rs = append(rs, g.family().Resources...)
	}
	return family.Transaction(rs), len(rs)
}

// familyName returns a family name to search for, drawn from the names the
// generator uses.
func (g *gen) familyName() string { return family.Families[g.rng.IntN(len(family.Families))] }

// preloadFamilies writes e.preload new families through the target, one
// transaction Bundle each (family i from stream preloadStream+i), and
// returns them in index order. Family i is the same for the same seed
// whatever the concurrency. The families' shared evaluation form goes
// first.
func preloadFamilies(ctx context.Context, e *env, label string) ([]*family.Family, error) {
	shared, err := family.Shared(family.TagSynthetic)
	if err != nil {
		return nil, err
	}
	if err := postTransaction(ctx, e.client, family.Transaction(shared)); err != nil {
		return nil, fmt.Errorf("preload the evaluation form: %w", err)
	}
	fams := make([]*family.Family, e.preload)
	err = forEach(ctx, e, label, e.preload, func(ctx context.Context, i int) error {
		f := newGen(e.seed, preloadStream+uint64(i)).family()
		fams[i] = f
		return postTransaction(ctx, e.client, f.Transaction())
	})
	return fams, err
}

// childIDs returns the Patient ids of the children of fams, in order.
func childIDs(fams []*family.Family) []string {
	var ids []string
	for _, f := range fams {
		ids = append(ids, f.Children...)
	}
	return ids
}

// postTransaction POSTs a transaction Bundle to the base. Used by preloads,
// which stop at the first failure.
func postTransaction(ctx context.Context, c *client, bundle []byte) error {
	r, err := c.do(ctx, http.MethodPost, "", bundle, true)
	if err != nil {
		return fmt.Errorf("transaction: %w", err)
	}
	if !r.ok() {
		return fmt.Errorf("transaction: HTTP %d: %s", r.status, snippet(r.body))
	}
	return nil
}

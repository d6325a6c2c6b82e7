package main

import (
	"context"
	"net/url"
	"slices"
	"testing"

	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/conformance/ig"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/mapping"
	"github.com/digitaleouder/ouder/store/pgtest"
	"github.com/digitaleouder/ouder/store/postgres"
)

// TestInstallGuide checks that the installer writes every resource of the
// guide once, writes nothing when they are current, and restores one that
// was changed or deleted.
func TestInstallGuide(t *testing.T) {
	t.Parallel()
	ctx := search.WithAccess(context.Background(), search.Unrestricted())
	store := postgres.New(pgtest.Pool(t))
	parser, err := conformance.NewParser()
	if err != nil {
		t.Fatal(err)
	}
	registry, err := searchparam.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	parser.Registry = func() *searchparam.Registry { return registry }
	resources, err := ig.Resources()
	if err != nil {
		t.Fatal(err)
	}

	n, bases, err := installGuide(ctx, store, parser)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(resources) {
		t.Errorf("first install wrote %d resources, want %d", n, len(resources))
	}
	for _, b := range []string{"RelatedPerson", "Communication", "CareTeam", "Consent"} {
		if !slices.Contains(bases, b) {
			t.Errorf("the search parameters written do not cover %s: %v", b, bases)
		}
	}
	if n, bases, err := installGuide(ctx, store, parser); err != nil || n != 0 || len(bases) != 0 {
		t.Errorf("second install wrote %d resources (%v, %v), want none", n, bases, err)
	}

	// An older version of a code system, and a deleted value set.
	old := `{"resourceType":"CodeSystem","id":"task-code","url":"` + mapping.TaskCodeSystem + `","status":"draft","content":"complete"}`
	res, err := parser.Parse([]byte(old), "CodeSystem")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(ctx, fhir.Write{Type: "CodeSystem", ID: "task-code", Render: res.Render, Index: res.Index}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Delete(ctx, "ValueSet", "team-role", 0); err != nil {
		t.Fatal(err)
	}
	if n, _, err := installGuide(ctx, store, parser); err != nil || n != 2 {
		t.Errorf("install after a change and a deletion wrote %d resources (%v), want 2", n, err)
	}
	cs, err := store.Read(ctx, "CodeSystem", "task-code")
	if err != nil {
		t.Fatal(err)
	}
	if same, err := sameContent(cs.Body, guideResource(t, resources, "CodeSystem", "task-code")); err != nil || !same || cs.VersionID != 3 {
		t.Errorf("CodeSystem/task-code is version %d, the guide's: %v (%v)", cs.VersionID, same, err)
	}
	if _, err := store.Read(ctx, "ValueSet", "team-role"); err != nil {
		t.Errorf("ValueSet/team-role was not restored: %v", err)
	}
}

func guideResource(tb testing.TB, rs []ig.Resource, typ, id string) []byte {
	tb.Helper()
	for _, r := range rs {
		if r.Type == typ && r.ID == id {
			return r.JSON
		}
	}
	tb.Fatalf("the guide has no %s/%s", typ, id)
	return nil
}

// TestGuideServed starts ouderd and finds the guide's resources through the
// API, its SearchParameters in force, and a profile enforced.
func TestGuideServed(t *testing.T) {
	t.Parallel()
	db := pgtest.URL(t)
	p := startProc(t, "DATABASE_URL="+db)
	base := p.base + "/fhir"
	useOperator(t, base, db)
	for _, q := range []string{
		"StructureDefinition?url=" + url.QueryEscape(mapping.ProfileAgreement),
		"StructureDefinition?url=" + url.QueryEscape(mapping.ParentalAuthorityExtension),
		"CodeSystem?url=" + url.QueryEscape(mapping.DomainSystem),
		"ValueSet?url=" + url.QueryEscape(mapping.BaseURL+"/ValueSet/plan-kind"),
		"SearchParameter?url=" + url.QueryEscape(mapping.BaseURL+"/SearchParameter/relatedperson-parental-authority"),
		"ImplementationGuide?url=" + url.QueryEscape(ig.URL),
	} {
		status, _, body := call(t, "GET", base+"/"+q+"&_total=accurate", "")
		if total, _ := body["total"].(float64); status != 200 || total != 1 {
			t.Errorf("GET %s: status %d, total %v", q, status, body["total"])
		}
	}
	parent := `{"resourceType":"RelatedPerson","extension":[{"url":"` + mapping.ParentalAuthorityExtension + `","extension":[{"url":"hasAuthority","valueBoolean":true}]}],
 "patient":{"reference":"Patient/sara"},"relationship":[{"text":"moeder"}],"name":[{"family":"Jansen"}]}`
	if status, _, body := call(t, "POST", base+"/RelatedPerson", parent); status != 201 {
		t.Fatalf("create a parent: %d %v", status, body)
	}
	for value, want := range map[string]float64{"true": 1, "false": 0} {
		status, _, body := call(t, "GET", base+"/RelatedPerson?parental-authority="+value+"&_total=accurate", "", "Prefer: handling=strict")
		if total, _ := body["total"].(float64); status != 200 || total != want {
			t.Errorf("search by parental-authority=%s: status %d, total %v, want %v: %v", value, status, body["total"], want, body)
		}
	}
	noAuthority := `{"resourceType":"RelatedPerson","extension":[{"url":"` + mapping.ParentalAuthorityExtension + `","extension":[{"url":"source","valueString":"rechter"}]}],
 "patient":{"reference":"Patient/sara"},"name":[{"family":"Jansen"}]}`
	if status, _, body := call(t, "POST", base+"/RelatedPerson", noAuthority); status != 422 {
		t.Errorf("a parent without hasAuthority: status %d, want 422: %v", status, body)
	}
}

package oauth

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Lookup runs a FHIR search on the server's own data with full internal
// access (no access policy applies) and returns the matching resources'
// JSON. typ is one resource type; params are FHIR search parameters.
// cmd/ouderd wires it to the store; the authorization server uses it to
// bind a login to a fhirUser, to list the demo people of the development
// login and to find a user's children for the patient picker.
type Lookup func(ctx context.Context, typ string, params url.Values) ([]json.RawMessage, error)

// DemoTagSystem and DemoTagCode are the meta.tag of the demo family's
// resources (mapping/family.TagSystem and TagDemo): the development login
// lists the people that carry it.
const (
	DemoTagSystem = "https://digitaleouder.nl/fhir/CodeSystem/demo"
	DemoTagCode   = "demo"
)

// userTypes are the resource types a fhirUser may be, in the order the
// development login lists them.
var userTypes = []string{"Person", "RelatedPerson", "Practitioner", "Patient"}

var refPattern = regexp.MustCompile(`^(Person|RelatedPerson|Practitioner|Patient)/[A-Za-z0-9\-.]{1,64}$`)

// person is a fhirUser or a patient as the pages show it.
type person struct {
	Ref       string // relative reference, "Person/123"
	Type, ID  string
	Name      string
	BirthDate string
	// Of is, for a RelatedPerson on the development login, the name of
	// the patient it is related to.
	Of string
}

// resourceJSON is the part of a Person, RelatedPerson, Practitioner or
// Patient that the pages and the patient picker read.
type resourceJSON struct {
	ResourceType string      `json:"resourceType"`
	ID           string      `json:"id"`
	Name         []humanName `json:"name"`
	BirthDate    string      `json:"birthDate"`
	Link         []struct {
		Target struct {
			Reference string `json:"reference"`
		} `json:"target"`
	} `json:"link"`
	Patient struct {
		Reference string `json:"reference"`
	} `json:"patient"`
}

type humanName struct {
	Use    string   `json:"use"`
	Text   string   `json:"text"`
	Family string   `json:"family"`
	Given  []string `json:"given"`
}

func (r *resourceJSON) person() person {
	p := person{Ref: r.ResourceType + "/" + r.ID, Type: r.ResourceType, ID: r.ID, BirthDate: r.BirthDate}
	for _, n := range r.Name {
		if n.Use == "old" {
			continue
		}
		p.Name = n.Text
		if p.Name == "" {
			p.Name = strings.TrimSpace(strings.Join(append(slices.Clone(n.Given), n.Family), " "))
		}
		if p.Name != "" {
			break
		}
	}
	if p.Name == "" {
		p.Name = p.Ref
	}
	return p
}

// search runs lookup and decodes the results.
func search(ctx context.Context, lookup Lookup, typ string, params url.Values) ([]resourceJSON, error) {
	raw, err := lookup(ctx, typ, params)
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", typ, err)
	}
	out := make([]resourceJSON, 0, len(raw))
	for _, b := range raw {
		var r resourceJSON
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("search %s: %w", typ, err)
		}
		if r.ResourceType == typ && r.ID != "" {
			out = append(out, r)
		}
	}
	return out, nil
}

// read returns the resource ref ("Type/id"), or nil if there is none.
func read(ctx context.Context, lookup Lookup, ref string) (*resourceJSON, error) {
	typ, id, ok := strings.Cut(ref, "/")
	if !ok || id == "" {
		return nil, nil
	}
	rs, err := search(ctx, lookup, typ, url.Values{"_id": {id}})
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	return &rs[0], nil
}

// escapeToken escapes a token search value's parts (FHIR search: \, |, $
// and , are escaped with a backslash).
func escapeToken(s string) string {
	return strings.NewReplacer(`\`, `\\`, `|`, `\|`, `$`, `\$`, `,`, `\,`).Replace(s)
}

// bindUser returns the fhirUser that carries the identifier system|value:
// exactly one Person, RelatedPerson, Practitioner or Patient. None, or more
// than one, is an error the login page shows.
func bindUser(ctx context.Context, lookup Lookup, system, value string) (string, error) {
	var refs []string
	for _, typ := range userTypes {
		rs, err := search(ctx, lookup, typ, url.Values{"identifier": {escapeToken(system) + "|" + escapeToken(value)}})
		if err != nil {
			return "", err
		}
		for _, r := range rs {
			refs = append(refs, typ+"/"+r.ID)
		}
	}
	switch len(refs) {
	case 0:
		return "", errNoAccount
	case 1:
		return refs[0], nil
	}
	return "", errAmbiguousAccount
}

// demoPeople returns the demo family's people that can sign in with the
// development login.
func demoPeople(ctx context.Context, lookup Lookup) ([]person, error) {
	var out []person
	for _, typ := range userTypes {
		rs, err := search(ctx, lookup, typ, url.Values{
			"_tag":   {DemoTagSystem + "|" + DemoTagCode},
			"_count": {"200"},
		})
		if err != nil {
			return nil, err
		}
		var ps []person
		for _, r := range rs {
			p := r.person()
			if typ == "RelatedPerson" && strings.HasPrefix(r.Patient.Reference, "Patient/") {
				p.Of = displayName(ctx, lookup, r.Patient.Reference)
			}
			ps = append(ps, p)
		}
		slices.SortFunc(ps, func(a, b person) int {
			return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Of, b.Of), cmp.Compare(a.ID, b.ID))
		})
		out = append(out, ps...)
	}
	return out, nil
}

// isDemoPerson reports whether ref is one of the demo family's people.
func isDemoPerson(ctx context.Context, lookup Lookup, ref string) (bool, error) {
	if !refPattern.MatchString(ref) {
		return false, nil
	}
	typ, id, _ := strings.Cut(ref, "/")
	rs, err := search(ctx, lookup, typ, url.Values{"_id": {id}, "_tag": {DemoTagSystem + "|" + DemoTagCode}})
	return len(rs) == 1, err
}

// displayName returns the name of the resource ref, or ref itself.
func displayName(ctx context.Context, lookup Lookup, ref string) string {
	r, err := read(ctx, lookup, ref)
	if err != nil || r == nil {
		return ref
	}
	return r.person().Name
}

// patientsOf returns the patients a user may choose in the patient picker:
// a Patient chooses itself; a RelatedPerson its patient; a Person the
// patients of the RelatedPersons it links (Person.link), and the Patients
// it links directly. A Practitioner has none here (the care-team policy
// decides what a professional sees).
func patientsOf(ctx context.Context, lookup Lookup, fhirUser string) ([]person, error) {
	var ids []string
	add := func(ref string) {
		if id, ok := strings.CutPrefix(ref, "Patient/"); ok && id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	typ, _, _ := strings.Cut(fhirUser, "/")
	switch typ {
	case "Patient":
		add(fhirUser)
	case "RelatedPerson":
		r, err := read(ctx, lookup, fhirUser)
		if err != nil {
			return nil, err
		}
		if r != nil {
			add(r.Patient.Reference)
		}
	case "Person":
		r, err := read(ctx, lookup, fhirUser)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, nil
		}
		for _, l := range r.Link {
			ref := l.Target.Reference
			switch {
			case strings.HasPrefix(ref, "Patient/"):
				add(ref)
			case strings.HasPrefix(ref, "RelatedPerson/"):
				rp, err := read(ctx, lookup, ref)
				if err != nil {
					return nil, err
				}
				if rp != nil {
					add(rp.Patient.Reference)
				}
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rs, err := search(ctx, lookup, "Patient", url.Values{"_id": {strings.Join(ids, ",")}})
	if err != nil {
		return nil, err
	}
	var out []person
	for _, r := range rs {
		out = append(out, r.person())
	}
	// Eldest first, as a family lists its children.
	slices.SortFunc(out, func(a, b person) int {
		return cmp.Or(cmp.Compare(a.BirthDate, b.BirthDate), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

package mapping

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/digitaleouder/ouder/fhir"
)

// This file holds the small JSON structs of FHIR data types the conversions
// share, and the checks that keep every produced resource valid R4.

// Period is a FHIR Period: start and end as FHIR dateTime strings (either
// may be empty). It is both the domain's and the JSON form.
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// IsZero reports whether p has neither start nor end.
func (p Period) IsZero() bool { return p.Start == "" && p.End == "" }

type codeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

type reference struct {
	Reference string `json:"reference,omitempty"`
}

// ref returns the Reference to s ("Type/id" or "urn:uuid:..."); an empty s
// gives the zero reference, which omitzero leaves out.
func ref(s string) reference { return reference{Reference: s} }

// refs returns one Reference per non-empty s.
func refs(ss ...string) []reference {
	var out []reference
	for _, s := range ss {
		if s != "" {
			out = append(out, ref(s))
		}
	}
	return out
}

// refStrings returns the reference strings of rs.
func refStrings(rs []reference) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Reference)
	}
	return out
}

// concepts returns one CodeableConcept per coding: categories are separate
// axes (plan kind, domain), not translations of one concept.
func concepts(cs ...Coding) []codeableConcept {
	var out []codeableConcept
	for _, c := range cs {
		if !c.IsZero() {
			out = append(out, codeableConcept{Coding: []Coding{c}})
		}
	}
	return out
}

// codings flattens the codings of ccs, as SectionOf expects them.
func codings(ccs []codeableConcept) []Coding {
	var out []Coding
	for _, cc := range ccs {
		out = append(out, cc.Coding...)
	}
	return out
}

// codeIn returns the code of the one coding of system among cs, "" if there
// is none, and an error issue (through c) if there are several.
func codeIn(c *checker, expr, system string, cs []Coding) string {
	var code string
	for _, x := range cs {
		if x.System != system {
			continue
		}
		if code != "" && x.Code != code {
			c.addf(expr, "more than one code of %s: %q and %q", system, code, x.Code)
			return code
		}
		code = x.Code
	}
	return code
}

// planKindIn reads the plan kind and the agreement marker from category
// codings; more than one plan kind, or an unknown code of
// PlanCategorySystem, is an issue. A missing plan kind is left to
// checkPlanKind.
func planKindIn(c *checker, expr string, cs []Coding) (kind PlanCategory, agreement bool) {
	for _, x := range cs {
		if x.System != PlanCategorySystem {
			continue
		}
		pc := PlanCategory(x.Code)
		switch {
		case pc == AgreementCategory:
			agreement = true
		case !pc.IsPlanKind():
			c.addf(expr, "%q is not a code of %s", x.Code, PlanCategorySystem)
		case kind != "" && kind != pc:
			c.addf(expr, "more than one plan kind: %q and %q", kind, pc)
		default:
			kind = pc
		}
	}
	return kind, agreement
}

// checkPlanKind checks that k, the plan kind a resource carries, is one.
func checkPlanKind(c *checker, expr string, k PlanCategory) {
	switch {
	case k == "":
		c.addf(expr, "no plan kind (a code of %s)", PlanCategorySystem)
	case !k.IsPlanKind():
		c.addf(expr, "plan kind %q is not one of parenting-plan, child-plan, development-plan, vop", k)
	}
}

// one returns the only element of ss, "" for none, and an issue for more.
func one(c *checker, expr string, ss []string) string {
	if len(ss) > 1 {
		c.addf(expr, "at most one is supported, got %d", len(ss))
	}
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}

// checker collects the issues found in one resource, so a client learns
// about every problem at once.
type checker struct{ issues []fhir.Issue }

func (c *checker) addf(expr, format string, args ...any) {
	c.issues = append(c.issues, fhir.Issue{
		Severity: "error", Code: "invalid", Diagnostics: fmt.Sprintf(format, args...), Expression: []string{expr},
	})
}

// err returns the issues as one *fhir.Error of kind Invalid, or nil.
func (c *checker) err() error {
	if len(c.issues) == 0 {
		return nil
	}
	return &fhir.Error{Kind: fhir.Invalid, Issues: c.issues}
}

func (c *checker) required(expr, v string) {
	if v == "" {
		c.issues = append(c.issues, fhir.Issue{
			Severity: "error", Code: "required", Diagnostics: "a value is required", Expression: []string{expr},
		})
	}
}

func (c *checker) oneOf(expr, v string, allowed []string) {
	if v == "" {
		c.required(expr, v)
		return
	}
	if !slices.Contains(allowed, v) {
		c.addf(expr, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
}

var (
	idRE          = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	relativeRefRE = regexp.MustCompile(`^([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?$`)
	uuidRefRE     = regexp.MustCompile(`^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// id checks that a non-empty v is a FHIR logical id.
func (c *checker) id(expr, v string) {
	if v != "" && !idRE.MatchString(v) {
		c.addf(expr, "%q is not a FHIR id (1 to 64 letters, digits, '-' and '.')", v)
	}
}

// ref checks that a non-empty v is a reference inside the server: "Type/id"
// with Type one of types (any type when none are given), or a urn:uuid of a
// transaction Bundle entry (whose type cannot be checked here).
func (c *checker) ref(expr, v string, types ...string) {
	if v == "" || uuidRefRE.MatchString(v) {
		return
	}
	m := relativeRefRE.FindStringSubmatch(v)
	if m == nil {
		c.addf(expr, "%q is not a reference of the form Type/id or urn:uuid:...", v)
		return
	}
	if len(types) > 0 && !slices.Contains(types, m[1]) {
		c.addf(expr, "%q refers to a %s; expected %s", v, m[1], strings.Join(types, " or "))
	}
}

// refs checks a list of references, each required.
func (c *checker) refs(expr string, vs []string, types ...string) {
	for i, v := range vs {
		e := fmt.Sprintf("%s[%d]", expr, i)
		c.required(e, v)
		c.ref(e, v, types...)
	}
}

// refType returns the resource type of a relative reference, or "".
func refType(v string) string {
	if m := relativeRefRE.FindStringSubmatch(v); m != nil {
		return m[1]
	}
	return ""
}

// parse returns the range of a non-empty FHIR date or dateTime v, and adds an
// issue when it is not one: with a time, FHIR requires seconds and a zone.
func (c *checker) parse(expr, v string, maxPrecision fhir.Precision) (fhir.DateRange, bool) {
	r, err := fhir.ParseDate(v, time.UTC)
	switch {
	case err != nil:
		c.addf(expr, "%v", err)
		return r, false
	case r.Precision > maxPrecision:
		c.addf(expr, "%q has a time; a date is YYYY, YYYY-MM or YYYY-MM-DD", v)
		return r, false
	case r.Precision > fhir.Day && (r.Precision < fhir.Second || !hasZone(v)):
		c.addf(expr, "%q: a time needs seconds and a time zone", v)
		return r, false
	}
	return r, true
}

func hasZone(v string) bool {
	return strings.HasSuffix(v, "Z") || (len(v) > 6 && (v[len(v)-6] == '+' || v[len(v)-6] == '-'))
}

// date checks that a non-empty v is a FHIR date.
func (c *checker) date(expr, v string) {
	if v != "" {
		c.parse(expr, v, fhir.Day)
	}
}

// dateTime checks that a non-empty v is a FHIR dateTime.
func (c *checker) dateTime(expr, v string) {
	if v != "" {
		c.parse(expr, v, fhir.Fraction)
	}
}

// instant checks that a non-empty v is a FHIR instant (seconds and zone) and
// returns its time; ok is false when v is empty or invalid.
func (c *checker) instant(expr, v string) (t time.Time, ok bool) {
	if v == "" {
		return t, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		c.addf(expr, "%q is not an instant (YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm))", v)
		return t, false
	}
	return t, true
}

// period checks both ends of p and that it does not end before it starts.
func (c *checker) period(expr string, p Period) {
	var start, end fhir.DateRange
	okStart, okEnd := false, false
	if p.Start != "" {
		start, okStart = c.parse(expr+".start", p.Start, fhir.Fraction)
	}
	if p.End != "" {
		end, okEnd = c.parse(expr+".end", p.End, fhir.Fraction)
	}
	if okStart && okEnd && end.End.Before(start.Start) {
		c.addf(expr, "the period ends (%s) before it starts (%s)", p.End, p.Start)
	}
}

// produce checks a domain value and returns the JSON of its resource: the
// body of every ToFHIR. op names the conversion in errors.
func produce(op string, check func(*checker), resource any) ([]byte, error) {
	var c checker
	check(&c)
	if err := c.err(); err != nil {
		return nil, wrap(op, err)
	}
	b, err := encode(resource)
	return b, wrap(op, err)
}

// checked adds the issues of check(v) to c and returns v, or the zero value
// and all issues: the end of every FromFHIR. op names the conversion.
func checked[T any](op string, c *checker, v T, check func(T, *checker)) (T, error) {
	check(v, c)
	if err := c.err(); err != nil {
		var zero T
		return zero, wrap(op, err)
	}
	return v, nil
}

// encode marshals a resource struct. The structs have only strings, slices
// and nested structs, so it cannot fail; the error is kept for safety.
func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshal: %w", err)
	}
	return b, nil
}

// decode unmarshals b into v after checking that it is a JSON object of the
// given resource type.
func decode(b []byte, resourceType string, v any) error {
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fhir.Errorf(fhir.Invalid, resourceType, "not a JSON resource: %v", err)
	}
	if head.ResourceType != resourceType {
		return fhir.Errorf(fhir.Invalid, resourceType, "resourceType is %q, expected %q", head.ResourceType, resourceType)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fhir.Errorf(fhir.Invalid, resourceType, "%v", err)
	}
	return nil
}

// FHIR status value sets (R4) of the resources the mapping produces.
var (
	carePlanStatuses      = []string{"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
	goalStatuses          = []string{"proposed", "planned", "accepted", "active", "on-hold", "completed", "cancelled", "entered-in-error", "rejected"}
	helpQuestionStatuses  = []string{"active", "inactive", "resolved"} // of condition-clinical
	communicationStatuses = []string{"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed", "entered-in-error", "unknown"}
	appointmentStatuses   = []string{"proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow", "entered-in-error", "checked-in", "waitlist"}
	participationStatuses = []string{"accepted", "declined", "tentative", "needs-action"}
	documentStatuses      = []string{"current", "superseded", "entered-in-error"}
	responseStatuses      = []string{"in-progress", "completed", "amended", "entered-in-error", "stopped"}
	careTeamStatuses      = []string{"proposed", "active", "suspended", "inactive", "entered-in-error"}
	consentStatuses       = []string{"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}
	taskStatuses          = []string{"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress", "on-hold", "failed", "completed", "entered-in-error"}
)

// wrap adds the operation to an error of a conversion.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("mapping: %s: %w", op, err)
}

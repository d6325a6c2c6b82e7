// Package smart reads SMART App Launch scopes (v1 and v2, with granular
// search-parameter constraints) and answers what a set of them permits.
// It knows nothing of tokens or HTTP: auth/token turns a bearer token into
// Scopes, and the policy decision point combines Scopes with who the caller
// is and which patient is in context.
//
// The rules implemented are those of SMART App Launch 2.x, "Scopes and
// Launch Context" (http://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
package smart

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Kind is the level a clinical scope applies at: "patient/" (the patient in
// context), "user/" (what the signed-in user may access) or "system/" (what
// the client itself is configured to access). The zero Kind marks a scope
// that is not a clinical scope (openid, launch/patient, ...).
type Kind uint8

// The clinical scope levels.
const (
	Patient Kind = iota + 1
	User
	System
)

var kindNames = [...]string{Patient: "patient", User: "user", System: "system"}

// String returns the scope prefix of k without the slash ("patient"), or ""
// for the zero Kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Op is a set of SMART v2 permissions. Each constant is one permission; a
// scope carries several as a bit set. The FHIR interactions each permission
// covers are listed in the spec section "Scopes for requesting clinical data":
// r is read, vread and instance history; s is type and system search and
// history; u includes patch and update-as-create.
type Op uint8

// The SMART v2 permissions, in their canonical order c r u d s.
const (
	Create Op = 1 << iota
	Read
	Update
	Delete
	Search

	allOps = Create | Read | Update | Delete | Search
)

// The v1 permission words and their v2 meaning (spec: v1 .read => v2 .rs,
// .write => .cud, .* => .cruds).
const (
	v1Read  = Read | Search
	v1Write = Create | Update | Delete
)

const opLetters = "cruds"

// String returns the permissions in o as v2 letters in canonical order
// ("rs", "cruds"); "" for none.
func (o Op) String() string {
	var b strings.Builder
	for i := range len(opLetters) {
		if o&(1<<i) != 0 {
			b.WriteByte(opLetters[i])
		}
	}
	return b.String()
}

// single reports whether o is exactly one permission.
func (o Op) single() bool { return o != 0 && o&allOps == o && o&(o-1) == 0 }

// Scope is one parsed scope. A clinical scope has a Kind, a resource Type
// ("*" for every type), its permissions Ops and, for a granular v2 scope, the
// search parameters in Params that a resource must match. Any other scope
// (openid, fhirUser, launch/patient, an extension scope) has only a Name.
//
// Params is shared with the Scopes it came from: treat it as read-only.
type Scope struct {
	Kind   Kind
	Type   string
	Ops    Op
	Params url.Values // nil when the scope has no constraints
	Name   string     // non-clinical scopes only

	// v1 records that the scope was written with a v1 permission word, so
	// String gives it back that way (the spec asks servers to answer v1
	// requests with v1 scopes).
	v1 bool
}

// Clinical reports whether s is a clinical (resource) scope.
func (s Scope) Clinical() bool { return s.Kind != 0 }

// String returns s in canonical form: v2 permission letters (or the v1 word
// it was written with, when that word still says the same), parameters sorted
// by name and value, and percent-encoding only where the scope syntax needs
// it. Parse(s.String()) gives s back.
func (s Scope) String() string {
	if !s.Clinical() {
		return s.Name
	}
	var b strings.Builder
	b.WriteString(s.Kind.String())
	b.WriteByte('/')
	b.WriteString(s.Type)
	b.WriteByte('.')
	b.WriteString(s.opsText())
	if len(s.Params) > 0 {
		b.WriteByte('?')
		writeParams(&b, s.Params)
	}
	return b.String()
}

func (s Scope) opsText() string {
	if s.v1 && len(s.Params) == 0 {
		switch s.Ops {
		case v1Read:
			return "read"
		case v1Write:
			return "write"
		case allOps:
			return "*"
		}
	}
	return s.Ops.String()
}

func writeParams(b *strings.Builder, params url.Values) {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	first := true
	for _, k := range keys {
		vs := slices.Clone(params[k])
		slices.Sort(vs)
		for _, v := range slices.Compact(vs) {
			if !first {
				b.WriteByte('&')
			}
			first = false
			b.WriteString(escape(k, true))
			b.WriteByte('=')
			b.WriteString(escape(v, false))
		}
	}
}

// escape percent-encodes the bytes of a parameter name or value that cannot
// stand in a scope token as they are: those outside the RFC 6749 scope-token
// characters, '%', '&' and, in a name, '='.
func escape(s string, name bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !scopeChar(c) || c == '%' || c == '&' || (name && c == '=') {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Scopes is a list of scopes, as granted to a token or requested by a client.
// The zero value grants nothing.
type Scopes []Scope

// String returns the scopes in canonical form, separated by single spaces.
func (ss Scopes) String() string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	return strings.Join(parts, " ")
}

// Has reports whether ss holds the non-clinical scope name (for example
// "offline_access" or "launch/patient").
func (ss Scopes) Has(name string) bool {
	for _, s := range ss {
		if !s.Clinical() && s.Name == name {
			return true
		}
	}
	return false
}

// ScopeError reports one scope that could not be parsed.
type ScopeError struct {
	Scope  string // the scope as written
	Reason string
}

// Error implements error. A long scope is shortened, so the message stays a
// log line.
func (e *ScopeError) Error() string {
	s := e.Scope
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("smart: scope %q: %s", s, e.Reason)
}

// Parse parses a space-separated scope string (the OAuth "scope" parameter or
// claim). Unlike most parsers it returns a usable result together with an
// error: the returned Scopes hold every scope that parsed, in order, and the
// error, when not nil, joins one *ScopeError for each scope that did not. A
// token carrying one scope this server does not understand is then still
// good for the scopes it does understand, while the caller can log the rest;
// a malformed scope is never read as something broader. Callers that must be
// strict (a client registration, say) treat a non-nil error as fatal.
func Parse(s string) (Scopes, error) {
	var out Scopes
	var errs []error
	for _, f := range strings.Fields(s) {
		sc, err := ParseScope(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, sc)
	}
	return out, errors.Join(errs...)
}

// ParseScope parses a single scope. The error is a *ScopeError.
//
// Clinical scopes are "patient/", "user/" or "system/", a resource type or
// "*", a dot, and either a v1 permission word (read, write, *) or a non-empty
// subset of the v2 letters c r u d s in that order (".sr" and ".rr" are
// refused, as the spec allows, so that no convention is misread as more
// access). A v2 scope may end in "?" and "&"-joined name=value search
// parameters, which every resource it grants must match. Other scopes are the
// SMART identity, launch and refresh scopes, launch/<lowercase type>, and
// extension scopes (an absolute URI or a name starting with "__").
func ParseScope(s string) (Scope, error) {
	sc, reason := parseScope(s)
	if reason != "" {
		return Scope{}, &ScopeError{Scope: s, Reason: reason}
	}
	return sc, nil
}

// otherScopes are the non-clinical scopes defined by SMART App Launch.
var otherScopes = map[string]bool{
	"openid":         true,
	"fhirUser":       true,
	"profile":        true,
	"launch":         true,
	"offline_access": true,
	"online_access":  true,
}

func parseScope(s string) (Scope, string) {
	if s == "" {
		return Scope{}, "empty scope"
	}
	for i := 0; i < len(s); i++ {
		if !scopeChar(s[i]) {
			return Scope{}, "character not allowed in a scope"
		}
	}
	for k := Patient; k <= System; k++ {
		if rest, ok := strings.CutPrefix(s, k.String()+"/"); ok {
			return parseClinical(k, rest)
		}
	}
	switch {
	case otherScopes[s]:
	case strings.HasPrefix(s, "launch/"):
		if !isLaunchContext(s[len("launch/"):]) {
			return Scope{}, "launch context must be a lowercase resource type"
		}
	case strings.HasPrefix(s, "__") && len(s) > 2:
		// Extension scope (spec "Extensibility").
	case isAbsoluteURI(s):
		// Extension scope named by a URI.
	default:
		return Scope{}, "unknown scope"
	}
	return Scope{Name: s}, ""
}

func parseClinical(k Kind, rest string) (Scope, string) {
	base, query, hasQuery := strings.Cut(rest, "?")
	typ, perms, ok := strings.Cut(base, ".")
	if !ok {
		return Scope{}, `missing "." between resource type and permissions`
	}
	if typ != "*" && !isResourceType(typ) {
		return Scope{}, "resource type must be a FHIR type name or *"
	}
	sc := Scope{Kind: k, Type: typ}
	switch perms {
	case "read":
		sc.Ops, sc.v1 = v1Read, true
	case "write":
		sc.Ops, sc.v1 = v1Write, true
	case "*":
		sc.Ops, sc.v1 = allOps, true
	default:
		ops, ok := parseOps(perms)
		if !ok {
			return Scope{}, "permissions must be read, write, * or letters of cruds in that order"
		}
		sc.Ops = ops
	}
	if !hasQuery {
		return sc, ""
	}
	if sc.v1 {
		return Scope{}, "search parameter constraints need v2 permissions (cruds)"
	}
	params, reason := parseParams(query)
	if reason != "" {
		return Scope{}, reason
	}
	sc.Params = params
	return sc, ""
}

// parseOps reads a v2 permission string: a non-empty subsequence of "cruds".
func parseOps(p string) (Op, bool) {
	if p == "" {
		return 0, false
	}
	var ops Op
	next := 0 // the first letter of "cruds" still allowed
	for i := 0; i < len(p); i++ {
		j := strings.IndexByte(opLetters[next:], p[i])
		if j < 0 {
			return 0, false
		}
		ops |= 1 << (next + j)
		next += j + 1
	}
	return ops, true
}

// filterParams are the search parameters starting with "_" that may narrow a
// scope. The others (_count, _sort, _include, _summary, _elements, ...) shape
// a result instead of selecting resources; as a constraint they would select
// everything, so a scope carrying one is refused rather than read as
// unconstrained.
var filterParams = map[string]bool{
	"_id":          true,
	"_lastUpdated": true,
	"_tag":         true,
	"_profile":     true,
	"_security":    true,
	"_source":      true,
	"_list":        true,
	"_has":         true,
	"_text":        true,
	"_content":     true,
}

func parseParams(query string) (url.Values, string) {
	if query == "" {
		return nil, `empty constraint after "?"`
	}
	params := url.Values{}
	for part := range strings.SplitSeq(query, "&") {
		rawName, rawValue, ok := strings.Cut(part, "=")
		if !ok {
			return nil, "constraint must be name=value"
		}
		name, err1 := url.PathUnescape(rawName)
		value, err2 := url.PathUnescape(rawValue)
		if err1 != nil || err2 != nil {
			return nil, "bad percent-encoding in constraint"
		}
		if !isParamName(name) {
			return nil, "constraint name must be a search parameter name"
		}
		if base, _, _ := strings.Cut(name, ":"); strings.HasPrefix(base, "_") && !filterParams[base] {
			return nil, fmt.Sprintf("%s does not select resources and cannot constrain a scope", base)
		}
		if value == "" {
			// An empty search value is ignored by FHIR search, which would
			// make the constraint select everything.
			return nil, "constraint value must not be empty"
		}
		if !utf8.ValidString(value) || strings.ContainsFunc(value, isControl) {
			return nil, "constraint value must be printable UTF-8"
		}
		if !slices.Contains(params[name], value) {
			params[name] = append(params[name], value)
		}
	}
	for _, vs := range params {
		slices.Sort(vs)
	}
	return params, ""
}

// scopeChar reports whether c may appear in an RFC 6749 scope-token:
// %x21 / %x23-5B / %x5D-7E (printable ASCII without space, '"' and '\').
func scopeChar(c byte) bool {
	return c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// isResourceType checks the shape of an R4 resource type name. Whether the
// type exists is not this package's concern: a scope for an unknown type
// simply never matches a request.
func isResourceType(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

func isLaunchContext(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// isParamName accepts search parameter names with modifiers and chains:
// letters, digits and - _ . : (for example "code:text", "subject:Patient.name",
// "_has:Observation:patient:code").
func isParamName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func isAbsoluteURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Host != "" || u.Opaque != "")
}

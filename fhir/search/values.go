package search

import (
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/digitaleouder/ouder/conformance/r4"
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
)

// spec is what parsing a value needs to know of its parameter (or of a
// composite's component, which has only a kind).
type spec struct {
	kind       string
	code       string
	targets    []string
	components []searchparam.Component
}

// value parses one comma-separated part of a value (still escaped).
func (s *state) value(sp spec, mod Modifier, refType, raw string) (Value, error) {
	switch sp.kind {
	case searchparam.Number:
		p, rest, err := prefix(raw)
		if err != nil {
			return nil, err
		}
		n, err := number(rest)
		n.Prefix = p
		return n, err
	case searchparam.Date:
		p, rest, err := prefix(raw)
		if err != nil {
			return nil, err
		}
		r, err := fhir.ParseDate(unescape(rest), s.loc)
		if err != nil {
			return nil, invalidf("%v", err)
		}
		return Date{Prefix: p, Range: r}, nil
	case searchparam.Quantity:
		return quantity(raw)
	case searchparam.String:
		u := unescape(raw)
		return String{Raw: u, Norm: s.fold(u)}, nil
	case searchparam.Token:
		switch mod {
		case ModText:
			u := unescape(raw)
			return String{Raw: u, Norm: s.fold(u)}, nil
		case ModOfType:
			return ofType(raw)
		}
		t, err := token(raw)
		if err == nil && sp.code == "_id" {
			if t.SystemGiven {
				return nil, invalidf("_id takes a resource id, not system|code (%q)", raw)
			}
			if !idRE.MatchString(t.Code) {
				return nil, invalidf("%q is not a resource id", t.Code)
			}
		}
		return t, err
	case searchparam.Reference:
		if mod == ModIdentifier {
			return token(raw)
		}
		return s.reference(raw, sp.targets, refType)
	case searchparam.URI:
		return URI{Value: unescape(raw)}, nil
	case searchparam.Composite:
		parts := splitEscaped(raw, '$')
		if len(parts) != len(sp.components) {
			return nil, invalidf("%s is a composite of %d parts separated by $; %q has %d", sp.code, len(sp.components), raw, len(parts))
		}
		c := Composite{Parts: make([]Value, len(parts))}
		for i, part := range parts {
			if part == "" {
				return nil, invalidf("part %d of %q is empty", i+1, raw)
			}
			v, err := s.value(spec{kind: sp.components[i].Kind, code: sp.code}, "", "", part)
			if err != nil {
				return nil, err
			}
			c.Parts[i] = v
		}
		return c, nil
	}
	return nil, unknownf("search parameters of kind %s are not supported", sp.kind)
}

// prefix splits the comparator off a number, date or quantity value.
func prefix(s string) (Prefix, string, error) {
	if len(s) >= 2 && isLetter(s[0]) && isLetter(s[1]) {
		switch p := Prefix(s[:2]); p {
		case Eq, Ne, Gt, Lt, Ge, Le, Sa, Eb, Ap:
			return p, s[2:], nil
		}
		return "", "", invalidf("%q does not start with a known prefix (eq, ne, gt, lt, ge, le, sa, eb, ap)", s)
	}
	return Eq, s, nil
}

func isLetter(b byte) bool { return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' }

var numberRE = regexp.MustCompile(`^([+-]?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$`)

// maxExponent bounds the exponent of a number so that its range stays a
// reasonable decimal string (PostgreSQL numeric allows 131072 digits).
const maxExponent = 1000

var bigTen, bigFive = big.NewInt(10), big.NewInt(5)

// number reads a decimal and the range its precision implies: half a unit
// of its last significant digit either side (search.html#number).
func number(s string) (Number, error) {
	m := numberRE.FindStringSubmatch(s)
	if m == nil {
		return Number{}, invalidf("%q is not a number", s)
	}
	exp := 0
	if m[4] != "" {
		var err error
		exp, err = strconv.Atoi(m[4])
		if err != nil || exp < -maxExponent || exp > maxExponent {
			return Number{}, invalidf("the exponent of %q is out of range", s)
		}
	}
	// The value is digits × 10^-scale; in tenths of its last digit the
	// range is digits×10 ± 5.
	scale := len(m[3]) - exp
	d, _ := new(big.Int).SetString(m[2]+m[3], 10)
	d.Mul(d, bigTen)
	lo, hi := new(big.Int).Sub(d, bigFive), new(big.Int).Add(d, bigFive)
	if m[1] == "-" {
		lo, hi = hi.Neg(hi), lo.Neg(lo)
	}
	return Number{Value: strings.TrimPrefix(s, "+"), Lo: decimal(lo, scale+1), Hi: decimal(hi, scale+1)}, nil
}

// decimal formats n × 10^-scale as a plain decimal string.
func decimal(n *big.Int, scale int) string {
	digits := new(big.Int).Abs(n).String()
	if scale <= 0 {
		digits += strings.Repeat("0", -scale)
	} else {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if n.Sign() < 0 {
		return "-" + digits
	}
	return digits
}

// quantity reads [prefix]number[|system|code].
func quantity(raw string) (Value, error) {
	parts := splitEscaped(raw, '|')
	p, rest, err := prefix(parts[0])
	if err != nil {
		return nil, err
	}
	n, err := number(rest)
	if err != nil {
		return nil, err
	}
	n.Prefix = p
	q := Quantity{Number: n}
	switch len(parts) {
	case 1:
	case 3:
		q.System, q.Code = unescape(parts[1]), unescape(parts[2])
		if q.Code == "" && q.System != "" {
			return nil, invalidf("%q names a unit system but no unit code", raw)
		}
	default:
		return nil, invalidf("%q is not a quantity: expected number, number|system|code or number||code", raw)
	}
	return q, nil
}

// token reads code, system|code, |code or system|.
func token(raw string) (Token, error) {
	parts := splitEscaped(raw, '|')
	switch len(parts) {
	case 1:
		t := Token{Code: unescape(parts[0])}
		if t.Code == "" {
			return Token{}, invalidf("empty token")
		}
		return t, nil
	case 2:
		t := Token{System: unescape(parts[0]), Code: unescape(parts[1]), SystemGiven: true}
		if t.System == "" && t.Code == "" {
			return Token{}, invalidf("%q names neither a system nor a code", raw)
		}
		return t, nil
	}
	return Token{}, invalidf("%q is not a token: expected code, system|code, |code or system| (escape a | in a code as \\|)", raw)
}

// ofType reads the system|code|value of :of-type.
func ofType(raw string) (Value, error) {
	parts := splitEscaped(raw, '|')
	if len(parts) != 3 {
		return nil, invalidf("%q is not an :of-type value: expected system|code|value", raw)
	}
	o := OfType{System: unescape(parts[0]), Code: unescape(parts[1]), Value: unescape(parts[2])}
	if o.Code == "" || o.Value == "" {
		return nil, invalidf("%q is not an :of-type value: the type code and the value are required", raw)
	}
	return o, nil
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// reference reads id, Type/id, Type/id/_history/vid, an absolute URL (with
// a canonical |version) or a URL on this server. targets are the types the
// parameter may refer to (nil: any); refType is the :Type modifier.
func (s *state) reference(raw string, targets []string, refType string) (Value, error) {
	parts := splitEscaped(raw, '|')
	if len(parts) > 2 {
		return nil, invalidf("%q is not a reference: it has more than one unescaped |", raw)
	}
	v := unescape(parts[0])
	local := false
	if base := strings.TrimSuffix(s.p.Base, "/"); base != "" && len(parts) == 1 {
		v, local = strings.CutPrefix(v, base+"/")
	}
	if !local && (strings.Contains(v, "://") || strings.HasPrefix(v, "urn:")) {
		if refType != "" {
			return nil, invalidf("with the :%s modifier the value must be an id or %s/id, not the URL %q", refType, refType, v)
		}
		ref := Reference{URL: v}
		if len(parts) == 2 {
			ref.Version = unescape(parts[1])
		}
		return ref, nil
	}
	if len(parts) == 2 {
		return nil, invalidf("%q: only a canonical URL may carry a |version", raw)
	}
	segs := strings.Split(v, "/")
	var ref Reference
	switch {
	case len(segs) == 1:
		ref.ID = segs[0]
	case len(segs) == 2:
		ref.Type, ref.ID = segs[0], segs[1]
	case len(segs) == 4 && segs[2] == "_history":
		ref.Type, ref.ID, ref.Version = segs[0], segs[1], segs[3]
		if !idRE.MatchString(ref.Version) {
			return nil, invalidf("%q is not a valid version id", ref.Version)
		}
	default:
		return nil, invalidf("%q is not a reference: expected id, Type/id, Type/id/_history/version or an absolute URL", v)
	}
	if len(segs) > 1 && ref.Type == "" {
		return nil, invalidf("%q is not a reference: the resource type is missing", v)
	}
	if !idRE.MatchString(ref.ID) {
		return nil, invalidf("%q is not a valid resource id", ref.ID)
	}
	switch {
	case ref.Type != "":
		if !r4.IsResourceType(ref.Type) {
			return nil, invalidf("%q is not a resource type", ref.Type)
		}
		if refType != "" && ref.Type != refType {
			return nil, invalidf("the reference %q does not agree with the :%s modifier", v, refType)
		}
		if len(targets) > 0 && !slices.Contains(targets, ref.Type) {
			return nil, invalidf("the parameter cannot refer to %s (it refers to %s)", ref.Type, strings.Join(targets, ", "))
		}
	case refType != "":
		ref.Type = refType
	case len(targets) == 1:
		ref.Type = targets[0]
	}
	return ref, nil
}

// splitEscaped splits s at each sep not escaped by a backslash. The parts
// keep their escapes, for the next split and for unescape.
func splitEscaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // whatever follows is escaped
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unescape removes the escapes of search.html#escaping: \, \| \$ and \\.
// Any other backslash is kept as written.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case ',', '|', '$', '\\':
				b.WriteByte(s[i+1])
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// escape is the inverse of unescape, for building query strings.
var escaper = strings.NewReplacer(`\`, `\\`, `,`, `\,`, `|`, `\|`, `$`, `\$`)

func escape(s string) string { return escaper.Replace(s) }

package searchparam

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Fold returns s as string search compares it: decomposed (Unicode NFD) with
// the combining marks dropped, so that "Zoë" and "Zoe" are equal, lower case,
// with every run of white space turned into one space and no space at either
// end. FHIR string search is "case-insensitive and accent-insensitive"
// (http://hl7.org/fhir/R4/search.html#string); the index stores folded values
// and the query side must fold the search value with this same function.
// It is safe for concurrent use.
func Fold(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return foldUnicode(s)
		}
	}
	if isFoldedASCII(s) {
		return s // the common case: no allocation
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case asciiSpace(c):
			space = b.Len() > 0
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

// isFoldedASCII reports whether the ASCII string s is its own fold.
func isFoldedASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			return false
		}
		if asciiSpace(c) && (c != ' ' || i == 0 || i == len(s)-1 || s[i+1] == ' ') {
			return false
		}
	}
	return true
}

// asciiSpace reports whether c is one of the ASCII characters unicode.IsSpace
// accepts.
func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func foldUnicode(s string) string {
	if !utf8.ValidString(s) {
		// As encoding/json does: norm would not decompose what follows an
		// invalid byte, and the result would fold differently a second time.
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	d := norm.NFD.String(s)
	var b strings.Builder
	b.Grow(len(d))
	space := false
	for _, r := range d {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// numberRange returns the range [lo, hi) that the decimal s (as written in
// JSON: sign, digits, optional fraction and exponent) stands for given its
// precision: plus or minus half a unit of its last significant digit, so
// "100" gives [99.5, 100.5) and "1.50" gives [1.495, 1.505)
// (http://hl7.org/fhir/R4/search.html#number). The bounds are plain decimal
// strings without exponent; the arithmetic is done on the digits, so no
// precision is lost. ok is false when s is not a number.
func numberRange(s string) (lo, hi string, ok bool) {
	neg := false
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	var digits []byte // the significand, leading zeros dropped
	scale := 0        // digits after the decimal point: value = digits × 10^-scale
	seen := false
	for ; i < len(s) && isDigit(s[i]); i++ {
		seen = true
		if len(digits) > 0 || s[i] != '0' {
			digits = append(digits, s[i])
		}
	}
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && isDigit(s[i]); i++ {
			seen = true
			scale++
			if len(digits) > 0 || s[i] != '0' {
				digits = append(digits, s[i])
			}
		}
	}
	if !seen {
		return "", "", false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		expNeg := false
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			expNeg = s[i] == '-'
			i++
		}
		exp, n := 0, 0
		for ; i < len(s) && isDigit(s[i]); i++ {
			if exp <= maxExponent {
				exp = exp*10 + int(s[i]-'0')
			}
			n++
		}
		if n == 0 || exp > maxExponent {
			return "", "", false
		}
		if expNeg {
			exp = -exp
		}
		scale -= exp
	}
	if i != len(s) {
		return "", "", false
	}
	// With m the significand, the bounds are (10m ± 5) × 10^-(scale+1). 10m+5
	// is m's digits followed by 5; 10m-5 is m-1's digits followed by 5.
	up := append(append([]byte(nil), digits...), '5')
	var down []byte
	downNeg := false
	if len(digits) == 0 { // zero: -0.5 units
		down, downNeg = []byte{'5'}, true
		neg = false // "-0" is 0
	} else {
		down = append(decrement(digits), '5')
	}
	scale++
	if neg { // -(10m+5) < -(10m-5)
		return formatDecimal(true, up, scale), formatDecimal(!downNeg, down, scale), true
	}
	return formatDecimal(downNeg, down, scale), formatDecimal(false, up, scale), true
}

// maxExponent bounds the exponent numberRange accepts, so that a hostile
// "1e999999999" cannot make it write a gigabyte of zeros. FHIR decimals are
// far inside it.
const maxExponent = 1000

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// decrement returns a copy of the decimal digits d (no leading zeros, not
// zero) minus one, without leading zeros (empty for zero).
func decrement(d []byte) []byte {
	out := append([]byte(nil), d...)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] > '0' {
			out[i]--
			break
		}
		out[i] = '9'
	}
	for len(out) > 0 && out[0] == '0' {
		out = out[1:]
	}
	return out
}

// formatDecimal writes digits × 10^-scale as a plain decimal string.
func formatDecimal(neg bool, digits []byte, scale int) string {
	var b strings.Builder
	b.Grow(len(digits) + 3 + max(scale-len(digits), -scale, 0))
	if neg {
		b.WriteByte('-')
	}
	switch {
	case scale <= 0:
		b.Write(digits)
		for range -scale {
			b.WriteByte('0')
		}
	case len(digits) > scale:
		b.Write(digits[:len(digits)-scale])
		b.WriteByte('.')
		b.Write(digits[len(digits)-scale:])
	default:
		b.WriteString("0.")
		for range scale - len(digits) {
			b.WriteByte('0')
		}
		b.Write(digits)
	}
	return b.String()
}

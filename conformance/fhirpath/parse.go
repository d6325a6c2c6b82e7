package fhirpath

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tDelimIdent // `identifier`
	tString
	tNumber
	tDateTime // @2020-01-01
	tConst    // %name
	tVar      // $this
	tOp       // punctuation and symbolic operators
)

type token struct {
	kind tokKind
	text string // for tString, the unescaped value
	pos  int
}

func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '/' && strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("offset %d: unterminated comment", i)
			}
			i += end + 4
		case c == '\'':
			s, n, err := lexString(src[i:], '\'')
			if err != nil {
				return nil, fmt.Errorf("offset %d: %w", i, err)
			}
			toks = append(toks, token{tString, s, i})
			i += n
		case c == '`':
			s, n, err := lexString(src[i:], '`')
			if err != nil {
				return nil, fmt.Errorf("offset %d: %w", i, err)
			}
			toks = append(toks, token{tDelimIdent, s, i})
			i += n
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			if j+1 < len(src) && src[j] == '.' && src[j+1] >= '0' && src[j+1] <= '9' {
				j++
				for j < len(src) && src[j] >= '0' && src[j] <= '9' {
					j++
				}
			}
			toks = append(toks, token{tNumber, src[i:j], i})
			i = j
		case c == '@':
			j := i + 1
			for j < len(src) && strings.IndexByte("0123456789-:.TZ+", src[j]) >= 0 {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("offset %d: empty date/time literal", i)
			}
			toks = append(toks, token{tDateTime, src[i+1 : j], i})
			i = j
		case c == '%' || c == '$':
			j := i + 1
			if j < len(src) && (src[j] == '\'' || src[j] == '`') {
				s, n, err := lexString(src[j:], src[j])
				if err != nil {
					return nil, fmt.Errorf("offset %d: %w", i, err)
				}
				toks = append(toks, token{tConst, s, i})
				i = j + n
				continue
			}
			for j < len(src) && isIdentChar(src[j]) {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("offset %d: %c without a name", i, c)
			}
			kind := tConst
			if c == '$' {
				kind = tVar
			}
			toks = append(toks, token{kind, src[i+1 : j], i})
			i = j
		case isIdentStart(c):
			j := i
			for j < len(src) && isIdentChar(src[j]) {
				j++
			}
			toks = append(toks, token{tIdent, src[i:j], i})
			i = j
		default:
			op := ""
			for _, o := range []string{"!=", "!~", "<=", ">=", ".", "(", ")", "[", "]", ",", "|", "=", "~", "<", ">", "+", "-", "*", "/", "&", "{", "}"} {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(src[i:])
				return nil, fmt.Errorf("offset %d: unexpected character %q", i, r)
			}
			toks = append(toks, token{tOp, op, i})
			i += len(op)
		}
	}
	return append(toks, token{kind: tEOF, pos: len(src)}), nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// lexString reads a quoted string starting at s[0] == quote and returns its unescaped value
// and length in bytes.
func lexString(s string, quote byte) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == quote:
			return b.String(), i + 1, nil
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case 't':
				b.WriteByte('\t')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 'f':
				b.WriteByte('\f')
			case 'u':
				if i+4 >= len(s) {
					return "", 0, fmt.Errorf("bad \\u escape")
				}
				var r rune
				if _, err := fmt.Sscanf(s[i+1:i+5], "%04x", &r); err != nil {
					return "", 0, fmt.Errorf("bad \\u escape: %w", err)
				}
				b.WriteRune(r)
				i += 4
			default: // \' \" \` \\ \/
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated %c", quote)
}

type parser struct {
	toks  []token
	i     int
	depth int
}

// maxDepth bounds the nesting of expressions, so that a hostile expression cannot exhaust
// the stack of the parser or the evaluator.
const maxDepth = 100

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isOp(text string) bool {
	t := p.peek()
	return t.kind == tOp && t.text == text
}

func (p *parser) expectOp(text string) error {
	t := p.next()
	if t.kind != tOp || t.text != text {
		return fmt.Errorf("offset %d: expected %q, found %s", t.pos, text, describe(t))
	}
	return nil
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tString:
		return fmt.Sprintf("string '%s'", t.text)
	default:
		return fmt.Sprintf("%q", t.text)
	}
}

// Binding powers of the binary operators, from the FHIRPath operator precedence table
// (§ 10, "Operator precedence"): higher binds tighter.
var binaryPower = map[string]int{
	"implies": 1,
	"or":      2, "xor": 2,
	"and": 3,
	"in":  4, "contains": 4,
	"=": 5, "~": 5, "!=": 5, "!~": 5,
	"<": 6, ">": 6, "<=": 6, ">=": 6,
	"|":  7,
	"is": 8, "as": 8,
	"+": 9, "-": 9, "&": 9,
	"*": 10, "/": 10, "div": 10, "mod": 10,
}

// binaryOp returns the operator at the current token, if any.
func (p *parser) binaryOp() (string, int) {
	t := p.peek()
	if t.kind != tOp && t.kind != tIdent {
		return "", 0
	}
	pw, ok := binaryPower[t.text]
	if !ok {
		return "", 0
	}
	return t.text, pw
}

func (p *parser) parseExpr(minPower int) (node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, fmt.Errorf("offset %d: expression nested more than %d deep", p.peek().pos, maxDepth)
	}
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		op, pw := p.binaryOp()
		if op == "" || pw < minPower {
			return left, nil
		}
		opTok := p.next()
		if op == "is" || op == "as" {
			spec, err := p.parseTypeSpecifier()
			if err != nil {
				return nil, fmt.Errorf("after %q: %w", op, err)
			}
			if op == "is" {
				left = &isNode{input: left, spec: spec}
			} else {
				left = &asNode{input: left, spec: spec}
			}
			continue
		}
		right, err := p.parseExpr(pw + 1) // all binary operators are left-associative
		if err != nil {
			return nil, err
		}
		switch op {
		case "|":
			left = newUnion(left, right)
		case "=", "!=", "~", "!~":
			left = &equalNode{left: left, right: right, not: op[0] == '!', equiv: op[len(op)-1] == '~'}
		case "<", ">", "<=", ">=":
			left = &compareNode{op: op, left: left, right: right}
		case "and", "or", "xor", "implies":
			left = &logicNode{op: op, left: left, right: right}
		case "in":
			left = &membershipNode{item: left, coll: right}
		case "contains":
			left = &membershipNode{item: right, coll: left}
		default:
			return nil, fmt.Errorf("offset %d: operator %q is not supported: no R4 search parameter uses arithmetic", opTok.pos, op)
		}
	}
}

func (p *parser) parseUnary() (node, error) {
	if p.isOp("-") || p.isOp("+") {
		op := p.next()
		t := p.peek()
		if t.kind != tNumber {
			return nil, fmt.Errorf("offset %d: unary %s is supported only before a number", op.pos, op.text)
		}
		p.next()
		text := t.text
		if op.text == "-" {
			text = "-" + text
		}
		return p.parsePostfix(numberLiteral(text))
	}
	term, err := p.parseTerm()
	if err != nil {
		return nil, err
	}
	return p.parsePostfix(term)
}

func numberLiteral(text string) node {
	typ := "integer"
	if strings.Contains(text, ".") {
		typ = "decimal"
	}
	return &literalNode{nodes: []Node{{Value: json.Number(text), Type: typ}}}
}

func (p *parser) parsePostfix(left node) (node, error) {
	for {
		switch {
		case p.isOp("."):
			p.next()
			inv, err := p.parseInvocation(false)
			if err != nil {
				return nil, err
			}
			left = &dotNode{left, inv}
		case p.isOp("["):
			p.next()
			idx, err := p.parseExpr(0)
			if err != nil {
				return nil, err
			}
			if err := p.expectOp("]"); err != nil {
				return nil, err
			}
			left = &indexNode{left, idx}
		default:
			return left, nil
		}
	}
}

func (p *parser) parseTerm() (node, error) {
	t := p.peek()
	switch t.kind {
	case tString:
		p.next()
		return &literalNode{nodes: []Node{{Value: t.text, Type: "string"}}}, nil
	case tNumber:
		p.next()
		return numberLiteral(t.text), nil
	case tDateTime:
		p.next()
		typ := "dateTime"
		switch {
		case strings.HasPrefix(t.text, "T"):
			typ, t.text = "time", t.text[1:]
		case !strings.Contains(t.text, "T"):
			typ = "date"
		}
		return &literalNode{nodes: []Node{{Value: t.text, Type: typ}}}, nil
	case tConst:
		p.next()
		switch t.text {
		case "resource", "rootResource", "context":
			return &rootNode{}, nil
		case "ucum":
			return &literalNode{nodes: []Node{{Value: "http://unitsofmeasure.org", Type: "string"}}}, nil
		case "sct":
			return &literalNode{nodes: []Node{{Value: "http://snomed.info/sct", Type: "string"}}}, nil
		case "loinc":
			return &literalNode{nodes: []Node{{Value: "http://loinc.org", Type: "string"}}}, nil
		}
		return nil, fmt.Errorf("offset %d: unknown constant %%%s", t.pos, t.text)
	case tVar:
		p.next()
		if t.text == "this" {
			return &thisNode{}, nil
		}
		return nil, fmt.Errorf("offset %d: $%s is not supported", t.pos, t.text)
	case tOp:
		switch t.text {
		case "(":
			p.next()
			e, err := p.parseExpr(0)
			if err != nil {
				return nil, err
			}
			if err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return e, nil
		case "{":
			p.next()
			if err := p.expectOp("}"); err != nil {
				return nil, err
			}
			return &literalNode{}, nil
		}
	case tIdent:
		switch t.text {
		case "true", "false":
			p.next()
			return &literalNode{nodes: []Node{{Value: t.text == "true", Type: "boolean"}}}, nil
		}
		return p.parseInvocation(true)
	case tDelimIdent:
		return p.parseInvocation(true)
	}
	return nil, fmt.Errorf("offset %d: unexpected %s", t.pos, describe(t))
}

// parseInvocation parses an identifier or a function call. At the start of a path (term),
// an identifier that starts with an upper-case letter is a type name that filters the input
// (FHIRPath § 4.1: "Patient.name" on a Patient); element names in FHIR never start with one.
func (p *parser) parseInvocation(term bool) (invocation, error) {
	t := p.next()
	if t.kind == tVar && t.text == "this" {
		return &thisNode{}, nil
	}
	if t.kind != tIdent && t.kind != tDelimIdent {
		return nil, fmt.Errorf("offset %d: expected a name, found %s", t.pos, describe(t))
	}
	if t.kind == tIdent && p.isOp("(") {
		p.next()
		return p.parseCall(t)
	}
	if term && t.kind == tIdent && unicode.IsUpper(rune(t.text[0])) {
		if !isTypeName(t.text) {
			return nil, fmt.Errorf("offset %d: %s is not an R4 type", t.pos, t.text)
		}
		return &typeFilterNode{name: t.text}, nil
	}
	return &memberNode{name: t.text}, nil
}

func (p *parser) parseCall(name token) (invocation, error) {
	var args []node
	typeArg := name.text == "is" || name.text == "as" || name.text == "ofType"
	for !p.isOp(")") {
		if len(args) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		if typeArg {
			spec, err := p.parseTypeSpecifier()
			if err != nil {
				return nil, fmt.Errorf("%s(): %w", name.text, err)
			}
			args = append(args, &typeArgNode{spec})
			continue
		}
		a, err := p.parseExpr(0)
		if err != nil {
			return nil, err
		}
		args = append(args, a)
	}
	p.next()
	return newCall(name.text, args, name.pos)
}

// parseTypeSpecifier reads a possibly qualified type name: Quantity, FHIR.Quantity,
// System.String.
func (p *parser) parseTypeSpecifier() (typeSpec, error) {
	t := p.next()
	if t.kind != tIdent && t.kind != tDelimIdent {
		return typeSpec{}, fmt.Errorf("offset %d: expected a type name, found %s", t.pos, describe(t))
	}
	ns, name := "", t.text
	if (name == "FHIR" || name == "System") && p.isOp(".") {
		p.next()
		n := p.next()
		if n.kind != tIdent && n.kind != tDelimIdent {
			return typeSpec{}, fmt.Errorf("offset %d: expected a type name after %s., found %s", n.pos, name, describe(n))
		}
		ns, name = t.text, n.text
	}
	return newTypeSpec(ns, name, t.pos)
}

// Package search turns a FHIR R4 search request (query string or the form
// body of POST [type]/_search) into a typed, validated Query that a store
// compiles into its own query language. It implements the request side of
// http://hl7.org/fhir/R4/search.html; matching is the store's business.
package search

import (
	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir"
)

// Query is a parsed search request. Where is an AND of clauses; the result
// parameters (_count, _sort, _include, ...) are already validated.
//
// When the search spans several resource types (len(Types) != 1, system
// search), Where and Sort only use the parameters common to all resources
// (_id, _lastUpdated, _tag, _profile, _security, _source). Their Param is the
// definition on one representative type (Types[0], or the first R4 resource
// type when Types is empty); it has the same Kind on every type, but its Key
// is per type, so a store recomputes it as fhir.ParamKey(type, Param.Code).
type Query struct {
	// Types are the resource types searched, without duplicates. Empty means
	// every type (system search without _type).
	Types []string
	// Where holds the filters, all of which must hold. A repeated parameter
	// (date=ge2020&date=lt2021) gives one clause per occurrence; the order is
	// by parameter name as Encode writes it, then by occurrence.
	Where []Clause

	// Count is the page size (_count): Parser.DefaultCount when absent,
	// capped at Parser.MaxCount. 0 asks for the total only.
	Count int
	// Sort is the order of _sort, most significant first. Empty means the
	// store's default order.
	Sort []Sort
	// Total is the _total mode: "none" (the default), "estimate" or
	// "accurate".
	Total string
	// Include and RevInclude are the _include and _revinclude requests, in
	// the order given.
	Include    []Include
	RevInclude []Include
	// Summary is the _summary mode: "" when absent, else "true", "text",
	// "data", "count" or "false".
	Summary string
	// Elements are the element names of _elements, without duplicates.
	Elements []string
	// Cursor is the opaque paging token (_cursor) of a next/previous link,
	// or "". It is not interpreted here.
	Cursor string
	// Base is Parser.Base without a trailing "/": an absolute reference in
	// a resource that starts with Base+"/" points to a resource on this
	// server; any other absolute reference does not, even when it ends in
	// Type/id. "" means only relative references are local.
	Base string

	// Compartment, when set, limits the search to the resources in one
	// compartment (GET [base]/Patient/[id]/[type]): those whose reference
	// parameters named in Compartment.Params point to Compartment.Type/ID.
	Compartment *Compartment

	// Warnings are the parameters that were ignored (unknown, not indexed,
	// not supported) in lenient mode, as OperationOutcome issues with
	// severity "warning", for the Bundle's outcome entry.
	Warnings []fhir.Issue
}

// Compartment is a compartment of the CompartmentDefinition
// (http://hl7.org/fhir/R4/compartmentdefinition.html): a resource is in it
// when one of its reference parameters Params points to Type/ID.
type Compartment struct {
	Type, ID string
	Params   []string
}

// Clause is one filter: a parameter and the values it may match (an OR), or
// one of the forms that has no values of its own. Exactly one of these
// holds:
//   - Missing != nil: param:missing=true|false. Values, Chain and Has are empty.
//   - Chain != nil: a chained reference (subject.name=x). Param is the
//     reference parameter; the values sit in the chain's Next clauses.
//   - Has != nil: reverse chaining (_has:Observation:patient:code=x). Param is
//     nil; the values sit in Has.Next.
//   - otherwise: Values holds at least one value, all of the type that
//     Param.Kind and Modifier call for, as in this table.
//
// The value types by kind and modifier:
//
//	Kind       Modifier             Value type
//	number     ""                   Number
//	date       ""                   Date
//	string     "", exact, contains  String
//	token      "", not              Token
//	token      text                 String (Norm is the folded text)
//	token      of-type              OfType
//	reference  ""                   Reference (a :Type modifier is folded into Reference.Type)
//	reference  identifier           Token
//	quantity   ""                   Quantity
//	uri        "", above, below     URI
//	composite  ""                   Composite (Parts follow Param.Components)
//
// Param.Code "_id" and "_lastUpdated" (searchparam.IsColumn) are answered
// from the resource's own columns: _id is a token whose values are Tokens
// with only Code set (a resource id; modifiers: :not, :missing), and
// _lastUpdated a date.
type Clause struct {
	Param    *searchparam.Param
	Modifier Modifier
	Values   []Value
	Missing  *bool
	Chain    *Chain
	Has      *Has
}

// Modifier is a search parameter modifier that changes how values match.
// The :missing and :[type] modifiers are not Modifiers: they become
// Clause.Missing and Reference.Type (or Chain targets).
type Modifier string

// The modifiers a Clause may carry.
const (
	ModNone       Modifier = ""
	ModExact      Modifier = "exact"      // string: the whole value, case and accents as given (String.Raw)
	ModContains   Modifier = "contains"   // string: Norm anywhere in the folded value
	ModNot        Modifier = "not"        // token: resources with no matching code (including none at all)
	ModText       Modifier = "text"       // token: the folded display or text starts with String.Norm
	ModOfType     Modifier = "of-type"    // token on an Identifier: type coding plus value
	ModIdentifier Modifier = "identifier" // reference: Reference.identifier matches the Token
	ModAbove      Modifier = "above"      // uri: the stored URI is a prefix of the value
	ModBelow      Modifier = "below"      // uri: the value is a prefix of the stored URI
)

// Chain is the rest of a chained parameter: the reference matches when it
// points to a resource of one of Targets' types that satisfies that
// target's Next clause. The targets are the type named by a :Type modifier
// (subject:Patient.name), or else every target type of the reference that
// has the next parameter (subject.name on Observation gives Location and
// Patient), sorted by type. Each target has its own Next because the
// next parameter is a different definition (key, even kind) on each type.
type Chain struct {
	Targets []Link
	// Name and Value are the parameter name from this reference on
	// ("subject:Patient.organization.name:exact") and the value, as written.
	// Encode repeats them rather than re-rendering a target's Next, because
	// each target read them by its own definitions.
	Name, Value string
}

// Link is one resource type a chained reference may point to, and the
// clause, on that type, that the referenced resource must satisfy. Next may
// itself be chained or a _has.
type Link struct {
	Type string
	Next Clause
}

// Types returns the resource types of c's targets, in order.
func (c *Chain) Types() []string {
	out := make([]string, len(c.Targets))
	for i, l := range c.Targets {
		out[i] = l.Type
	}
	return out
}

// Has is reverse chaining: a resource matches when some resource of Type
// refers to it through RefParam (a reference parameter of Type) and
// satisfies Next, a clause on Type (which may be another _has or a chain).
type Has struct {
	Type     string
	RefParam *searchparam.Param
	Next     Clause
}

// Sort is one key of _sort.
type Sort struct {
	Param *searchparam.Param
	Desc  bool
}

// Include is one _include or _revinclude.
//
// For _include, resources of SourceType among the matches (or, when Iterate
// is set, among everything returned so far) bring in what Param refers to,
// limited to TargetType when it is set. Param nil means every reference
// parameter: _include=* (SourceType "", any type) or _include=Type:*.
//
// For _revinclude, resources of SourceType whose Param refers to a match are
// brought in; TargetType, when set, limits the matches considered to that
// type. Param is never nil.
type Include struct {
	SourceType string
	Param      *searchparam.Param
	TargetType string
	Iterate    bool
}

// Value is one value of a clause: Number, Date, String, Token, OfType,
// Reference, Quantity, URI or Composite. The table on Clause says which one
// a clause holds.
type Value interface{ isValue() }

// Prefix is the comparator in front of a number, date or quantity value.
type Prefix string

// The prefixes of http://hl7.org/fhir/R4/search.html#prefix.
const (
	Eq Prefix = "eq" // the default
	Ne Prefix = "ne"
	Gt Prefix = "gt"
	Lt Prefix = "lt"
	Ge Prefix = "ge"
	Le Prefix = "le"
	Sa Prefix = "sa" // starts after
	Eb Prefix = "eb" // ends before
	Ap Prefix = "ap" // approximately
)

// Number is a number value. Value is the number as written (it may have an
// exponent: "1.5e2"; PostgreSQL numeric reads it as is) and [Lo, Hi) the
// range its precision implies: half a unit of the last significant digit
// either side, so "100" is [99.5, 100.5), "100.00" is [99.995, 100.005) and
// "1e2" is [50, 150). Lo and Hi are plain decimal strings. The spec's
// example gives [95, 105) for "1e2", which no consistent rule produces; we
// follow the rule it states for the other examples.
type Number struct {
	Prefix Prefix
	Value  string
	Lo, Hi string
}

// Date is a date value read as the range it covers; a value without a time
// zone is read in Parser.Loc.
type Date struct {
	Prefix Prefix
	Range  fhir.DateRange
}

// String is a string value: Raw as given (after unescaping), Norm folded
// with Parser.Fold for the default and :contains matches.
type String struct {
	Raw, Norm string
}

// Token is a token value.
//
//	code         Code set, SystemGiven false: the code in any system
//	system|code  both set, SystemGiven true
//	|code        Code set, System "", SystemGiven true: the code without a system
//	system|      System set, Code "", SystemGiven true: any code in the system
type Token struct {
	System      string
	Code        string
	SystemGiven bool
}

// OfType is a value of an identifier's :of-type modifier
// (system|code|value): System and Code are the identifier type's coding,
// Value the identifier value.
type OfType struct {
	System, Code, Value string
}

// Reference is a reference value. A reference to a resource on this server
// (id, Type/id, Type/id/_history/vid, or an absolute URL that starts with
// Parser.Base) has ID, Type (empty when a bare id was given and the
// parameter may point to several types: any of them) and Version (only with
// _history). Any other absolute URL (or urn:) is in URL, with a canonical's
// |version split into Version.
type Reference struct {
	Type, ID, Version, URL string
}

// Quantity is a quantity value: the number, and the unit's system and code.
// System "" and Code "" (5.4) match any unit; Code without System (5.4||mg)
// matches the code or the human unit in any system.
type Quantity struct {
	Number
	System, Code string
}

// URI is a uri value.
type URI struct {
	Value string
}

// Composite is a composite value (part$part): one part per component of
// the parameter, each parsed by the component's kind (prefixes allowed on
// number, date and quantity parts).
type Composite struct {
	Parts []Value
}

func (Number) isValue()    {}
func (Date) isValue()      {}
func (String) isValue()    {}
func (Token) isValue()     {}
func (OfType) isValue()    {}
func (Reference) isValue() {}
func (Quantity) isValue()  {}
func (URI) isValue()       {}
func (Composite) isValue() {}

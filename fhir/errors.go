package fhir

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Kind is the category of a failure. Every error the server returns to a
// client is classified by exactly one Kind; the Kind alone decides the HTTP
// status and the OperationOutcome issue code (see the table in KindInfo).
type Kind int

// The error vocabulary of the server. Keep this list short: a new Kind needs
// a row in kinds below and nothing else.
const (
	Internal             Kind = iota // a bug or an unavailable dependency: 500
	Invalid                          // the request or resource is malformed or breaks a rule: 400
	Unprocessable                    // well-formed but semantically unusable (business rule): 422
	NotFound                         // no such resource, type or route: 404
	Gone                             // the resource was deleted: 410
	Conflict                         // the write conflicts with the current state: 409
	PreconditionFailed               // If-Match or a conditional interaction did not hold: 412
	Forbidden                        // authenticated but not allowed: 403
	Unauthorized                     // no usable credentials: 401
	TooLarge                         // the request body or Bundle exceeds a limit: 413
	UnsupportedMediaType             // the request body is not in a FHIR JSON media type: 415
	NotAcceptable                    // the client asked for a format the server does not produce: 406
	MethodNotAllowed                 // the route exists but not with this HTTP method: 405
	NotSupported                     // a valid FHIR feature this server does not implement: 501
	Unavailable                      // a service needed to answer cannot be reached now (a token issuer's keys): 503
)

// KindInfo is one row of the error table: the HTTP status a Kind answers with
// and the OperationOutcome issue code (http://hl7.org/fhir/issue-type) it carries.
type KindInfo struct {
	Status int
	Code   string
}

// kinds is the one table that maps an error kind onto HTTP and FHIR.
var kinds = map[Kind]KindInfo{
	Internal:             {http.StatusInternalServerError, "exception"},
	Invalid:              {http.StatusBadRequest, "invalid"},
	Unprocessable:        {http.StatusUnprocessableEntity, "processing"},
	NotFound:             {http.StatusNotFound, "not-found"},
	Gone:                 {http.StatusGone, "deleted"},
	Conflict:             {http.StatusConflict, "conflict"},
	PreconditionFailed:   {http.StatusPreconditionFailed, "conflict"},
	Forbidden:            {http.StatusForbidden, "forbidden"},
	Unauthorized:         {http.StatusUnauthorized, "login"},
	TooLarge:             {http.StatusRequestEntityTooLarge, "too-costly"},
	UnsupportedMediaType: {http.StatusUnsupportedMediaType, "not-supported"},
	NotAcceptable:        {http.StatusNotAcceptable, "not-supported"},
	MethodNotAllowed:     {http.StatusMethodNotAllowed, "not-supported"},
	NotSupported:         {http.StatusNotImplemented, "not-supported"},
	Unavailable:          {http.StatusServiceUnavailable, "transient"},
}

// Info returns the HTTP status and issue code of k. An unknown Kind is
// treated as Internal.
func (k Kind) Info() KindInfo {
	if info, ok := kinds[k]; ok {
		return info
	}
	return kinds[Internal]
}

// Issue is one problem found in a request, as reported in an
// OperationOutcome.issue. Expression holds FHIRPath expressions that point at
// the offending element (for example "Patient.birthDate" or
// "Bundle.entry[2].resource"); Code overrides the Kind's issue code when set.
type Issue struct {
	Severity    string // fatal | error | warning | information; empty means error
	Code        string // an issue-type code; empty means the Kind's code
	Diagnostics string
	Expression  []string
}

// Error is a failure that the REST layer reports to the client as an
// OperationOutcome. Err, when set, is the underlying cause; it is logged but
// never shown to the client for Internal errors.
type Error struct {
	Kind   Kind
	Issues []Issue
	Err    error
}

// Error implements error. It renders the diagnostics of every issue.
func (e *Error) Error() string {
	var b strings.Builder
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString("; ")
		}
		if len(is.Expression) > 0 {
			b.WriteString(strings.Join(is.Expression, ","))
			b.WriteString(": ")
		}
		b.WriteString(is.Diagnostics)
	}
	if e.Err != nil {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	if b.Len() == 0 {
		return fmt.Sprintf("fhir error (status %d)", e.Kind.Info().Status)
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k with one issue whose diagnostics are the
// formatted message and whose expression is expr (may be empty).
func Errorf(k Kind, expr string, format string, args ...any) *Error {
	is := Issue{Diagnostics: fmt.Sprintf(format, args...)}
	if expr != "" {
		is.Expression = []string{expr}
	}
	return &Error{Kind: k, Issues: []Issue{is}}
}

// KindOf returns the Kind of err: the Kind of the first *Error in its chain,
// or Internal for any other non-nil error.
func KindOf(err error) Kind {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return Internal
}

// IsKind reports whether err carries Kind k.
func IsKind(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// WithExpressionPrefix returns a copy of err whose issue expressions are
// prefixed with prefix (for example "Bundle.entry[3].resource"), so errors
// found inside a contained or bundled resource point at the right place. A
// non-*Error is returned unchanged.
func WithExpressionPrefix(err error, prefix string) error {
	var fe *Error
	if !errors.As(err, &fe) {
		return err
	}
	out := &Error{Kind: fe.Kind, Err: fe.Err, Issues: make([]Issue, len(fe.Issues))}
	for i, is := range fe.Issues {
		is.Expression = append([]string(nil), is.Expression...)
		for j, e := range is.Expression {
			if _, rest, ok := strings.Cut(e, "."); ok {
				is.Expression[j] = prefix + "." + rest
			} else {
				is.Expression[j] = prefix
			}
		}
		if len(is.Expression) == 0 {
			is.Expression = []string{prefix}
		}
		out.Issues[i] = is
	}
	return out
}

package token

import "errors"

// The two ways Verify fails. Test for them with errors.Is; errors.As with an
// *Error gives the description to show the client.
var (
	// ErrInvalidToken: the token is not acceptable (malformed, unknown
	// issuer or key, bad signature, wrong audience, expired, ...). The HTTP
	// layer answers 401 with
	//	WWW-Authenticate: Bearer error="invalid_token", error_description="..."
	// (RFC 6750 section 3.1).
	ErrInvalidToken = errors.New("invalid token")

	// ErrUnavailable: the token could not be checked because its issuer's
	// discovery document or keys cannot be fetched now. It says nothing
	// about the token, so the HTTP layer answers 503, not 401, and the
	// client may retry.
	ErrUnavailable = errors.New("token issuer unavailable")
)

// Error is the error Verify returns. It matches exactly one of
// ErrInvalidToken and ErrUnavailable under errors.Is.
type Error struct {
	// Unavailable is set when the issuer could not be reached (ErrUnavailable).
	Unavailable bool
	// Description is a short English phrase, safe to send to the client as
	// error_description: it never holds the token or key material.
	Description string
	// Err is the underlying cause, for the log; it may be nil.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := "token: " + e.Description
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is the sentinel that e stands for.
func (e *Error) Is(target error) bool {
	if e.Unavailable {
		return target == ErrUnavailable
	}
	return target == ErrInvalidToken
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func invalid(desc string, cause error) *Error {
	return &Error{Description: desc, Err: cause}
}

func unavailable(desc string, cause error) *Error {
	return &Error{Unavailable: true, Description: desc, Err: cause}
}

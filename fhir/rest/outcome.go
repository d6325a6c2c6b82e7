package rest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/digitaleouder/ouder/fhir"
)

type outcomeJSON struct {
	ResourceType string      `json:"resourceType"`
	Issue        []issueJSON `json:"issue"`
}

type issueJSON struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

// outcome renders issues as an OperationOutcome; defaultCode fills issues
// without a code.
func outcome(issues []fhir.Issue, defaultCode string) []byte {
	o := outcomeJSON{ResourceType: "OperationOutcome", Issue: make([]issueJSON, 0, len(issues))}
	for _, is := range issues {
		j := issueJSON{Severity: is.Severity, Code: is.Code, Diagnostics: is.Diagnostics, Expression: is.Expression}
		if j.Severity == "" {
			j.Severity = "error"
		}
		if j.Code == "" {
			j.Code = defaultCode
		}
		o.Issue = append(o.Issue, j)
	}
	b, _ := json.Marshal(o)
	return b
}

// writeError answers with the OperationOutcome for err. Internal errors are
// logged with their cause and shown to the client only as "internal error"
// plus the request id. Inside a Bundle entry (an entryRecorder) the error is
// kept for the entry's response instead.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if rec, ok := w.(*entryRecorder); ok {
		rec.err = err
		return
	}
	fe := s.clientError(r.Context(), err)
	if fe.Kind == fhir.Unauthorized {
		w.Header().Set("WWW-Authenticate", challenge(r, fe))
	}
	info := fe.Kind.Info()
	s.writeJSON(w, r, info.Status, outcome(fe.Issues, info.Code))
}

// clientError returns err as the client may see it: an *fhir.Error, where
// an internal error is logged with its cause and becomes "internal error"
// plus the request id.
func (s *Server) clientError(ctx context.Context, err error) *fhir.Error {
	var fe *fhir.Error
	if !errors.As(err, &fe) || fe.Kind == fhir.Internal {
		id := RequestID(ctx)
		s.log.ErrorContext(ctx, "internal error", slog.String("request_id", id), slog.String("error", err.Error()))
		fe = fhir.Errorf(fhir.Internal, "", "internal error (request id %s)", id)
	}
	return fe
}

// writeJSON writes a JSON body in the negotiated FHIR media type, indented
// when _pretty=true.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	v := viewFrom(r.Context())
	w.Header().Set("Content-Type", v.contentType)
	if v.pretty {
		body = indent(body)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// challenge is the WWW-Authenticate header of a 401 (RFC 6750 section 3):
// with error="invalid_token" and the reason when the request sent a token,
// without an error when it sent none (section 3.1: no error code then).
func challenge(r *http.Request, fe *fhir.Error) string {
	h := `Bearer realm="fhir"`
	if r.Header.Get("Authorization") == "" {
		return h
	}
	h += `, error="invalid_token"`
	if len(fe.Issues) > 0 {
		if d := quotable(fe.Issues[0].Diagnostics); d != "" {
			h += `, error_description="` + d + `"`
		}
	}
	return h
}

// quotable keeps the characters RFC 6750 allows in error_description
// (%x20-21 / %x23-5B / %x5D-7E), at most 200 of them.
func quotable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 200; i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

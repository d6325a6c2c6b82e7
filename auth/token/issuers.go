package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// issuerJSON is one external issuer in a trusted-issuers file. It has no
// KeySet and no Operator: an issuer read from a file can never grant full
// access, and a file that tries is refused.
type issuerJSON struct {
	URL           string   `json:"url"`
	Audience      string   `json:"audience"`
	ScopeClaim    string   `json:"scope_claim"`
	FHIRUserClaim string   `json:"fhir_user_claim"`
	PatientClaim  string   `json:"patient_claim"`
	AllowedAlgs   []string `json:"allowed_algs"`
	JWKSURL       string   `json:"jwks_url"`
}

// ReadIssuers reads a trusted-issuers file: a JSON array of objects with the
// members url, audience (both required), scope_claim, fhir_user_claim,
// patient_claim, allowed_algs and jwks_url, which set the Issuer fields of
// those names. Unknown members are an error, so a misspelt one (or an
// attempt to mark an external issuer as an operator) does not pass
// unnoticed. Whether each issuer is usable is checked by New.
func ReadIssuers(r io.Reader) ([]Issuer, error) {
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	var list []issuerJSON
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("token: trusted issuers: %w", err)
	}
	if dec.More() {
		return nil, errors.New("token: trusted issuers: more than one JSON value")
	}
	out := make([]Issuer, 0, len(list))
	for i, j := range list {
		if j.URL == "" || j.Audience == "" {
			return nil, fmt.Errorf("token: trusted issuers: entry %d needs url and audience", i)
		}
		out = append(out, Issuer{
			URL: j.URL, Audience: j.Audience, ScopeClaim: j.ScopeClaim, FHIRUserClaim: j.FHIRUserClaim,
			PatientClaim: j.PatientClaim, AllowedAlgs: j.AllowedAlgs, JWKSURL: j.JWKSURL,
		})
	}
	return out, nil
}

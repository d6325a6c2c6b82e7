package oauth_test

import (
	"testing"

	"github.com/digitaleouder/ouder/auth/oauth"
	"github.com/digitaleouder/ouder/mapping/family"
)

// TestDevAuditorActsForTheDemoAuditor: the development auditor client acts
// for the organisation that audits the demo family, so that it sees the
// demo family's Consents and access log (and, as an auditor, nothing else).
func TestDevAuditorActsForTheDemoAuditor(t *testing.T) {
	if oauth.DevAuditorOrganization != family.DemoAuditor {
		t.Errorf("DevAuditorOrganization = %q, the demo family's auditor is %q", oauth.DevAuditorOrganization, family.DemoAuditor)
	}
}

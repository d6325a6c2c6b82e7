package ig

import (
	"fmt"

	"github.com/digitaleouder/ouder/mapping"
)

// searchParameter is the JSON of a SearchParameter, in R4 element order.
type searchParameter struct {
	ResourceType string   `json:"resourceType"`
	ID           string   `json:"id"`
	URL          string   `json:"url"`
	Version      string   `json:"version"`
	Name         string   `json:"name"`
	Status       string   `json:"status"`
	Publisher    string   `json:"publisher"`
	Description  string   `json:"description"`
	Code         string   `json:"code"`
	Base         []string `json:"base"`
	Type         string   `json:"type"`
	Expression   string   `json:"expression"`
	XPathUsage   string   `json:"xpathUsage"`
	Target       []string `json:"target,omitempty"`
}

// searchParameters returns the search parameters the domain needs beyond
// R4's. What R4 already answers is not repeated: an agreement's status is
// CarePlan?category=…|agreement&status=draft, a goal's progress
// Observation?focus=Goal/…, an evaluation QuestionnaireResponse?based-on=…,
// a change request Task?code=…|approve-change&focus=…, a plan kind
// [type]?category=…|child-plan.
func searchParameters() []searchParameter {
	authority := fmt.Sprintf("RelatedPerson.extension('%s')", mapping.ParentalAuthorityExtension)
	sp := func(id, name, code, base, typ, expr, description string, target ...string) searchParameter {
		return searchParameter{
			ResourceType: "SearchParameter", ID: id, URL: mapping.BaseURL + "/SearchParameter/" + id, Version: Version,
			Name: name, Status: "active", Publisher: publisher, Description: description,
			Code: code, Base: []string{base}, Type: typ, Expression: expr, XPathUsage: "normal", Target: target,
		}
	}
	return []searchParameter{
		sp("relatedperson-parental-authority", "ParentalAuthority", "parental-authority", "RelatedPerson", "token",
			authority+".extension('"+mapping.ParentalAuthorityHas+"').value",
			"Whether the parent has parental authority over the child (true or false): RelatedPerson?patient=Patient/…&parental-authority=true finds the parents with authority."),
		sp("relatedperson-authority-verified", "AuthorityVerified", "authority-verified", "RelatedPerson", "date",
			authority+".extension('"+mapping.ParentalAuthorityVerified+"').value",
			"When the dossierhouder last verified the parental authority: authority-verified=lt2025-01-01 finds the verifications due."),
		sp("communication-about", "About", "about", "Communication", "reference",
			"Communication.about",
			"What a Communication is about: Communication?about=CarePlan/… finds the notes on an agreement.",
			"CarePlan", "Goal", "Condition", "Observation", "QuestionnaireResponse", "DocumentReference", "Appointment"),
		sp("careteam-role", "Role", "role", "CareTeam", "token",
			"CareTeam.participant.role",
			"The roles in a team: CareTeam?role=…|dossierhouder finds the teams with a dossierhouder."),
		sp("consent-section", "Section", "section", "Consent", "token",
			"Consent.provision.code",
			"The record sections a grant names: Consent?section=…|child-plan&status=active finds who may see the child plan."),
	}
}

package oauth

import (
	"slices"
	"strings"

	"github.com/digitaleouder/ouder/auth/smart"
)

// The SMART scopes that are not about resources.
const (
	scopeOpenID        = "openid"
	scopeFHIRUser      = "fhirUser"
	scopeLaunchPatient = "launch/patient"
	scopeOffline       = "offline_access"
	scopeOnline        = "online_access"
)

// wellFormed is fosite's scope strategy: fosite refuses a whole request
// when one scope fails it, so it accepts every well-formed scope, and what
// is granted is then narrowed here (smart.Narrow against the client's
// registration): a request is never refused for asking more than the
// client may have, and never gets more either. A request left with nothing
// is refused (invalid_scope).
func wellFormed(_ []string, requested string) bool {
	s, err := smart.Parse(requested)
	return err == nil && len(s) == 1
}

// narrow returns the scopes of requested that allowed grants, narrowed, as
// strings; only scopes of the levels in levels (clinical scopes) are kept,
// and non-clinical scopes only when keepNonClinical.
func narrow(requested, allowed string, levels []smart.Kind, keepNonClinical bool) ([]string, error) {
	req, err := smart.Parse(requested)
	if err != nil {
		return nil, err
	}
	al, _ := smart.Parse(allowed)
	var out []string
	for _, s := range smart.Narrow(req, al) {
		if s.Clinical() && !slices.Contains(levels, s.Kind) {
			continue
		}
		if !s.Clinical() && !keepNonClinical {
			continue
		}
		out = append(out, s.String())
	}
	return out, nil
}

// covered reports whether every scope of requested is wholly within
// granted: what a refresh may ask for.
func covered(requested, granted []string) bool {
	g, _ := smart.Parse(strings.Join(granted, " "))
	for _, r := range requested {
		rs, err := smart.Parse(r)
		if err != nil || len(rs) != 1 {
			return false
		}
		n := smart.Narrow(rs, g)
		if len(n) != 1 || !sameScope(n[0], rs[0]) {
			return false
		}
	}
	return true
}

// sameScope reports whether a and b permit the same.
func sameScope(a, b smart.Scope) bool {
	canon := func(s smart.Scope) string {
		if !s.Clinical() {
			return s.Name
		}
		return smart.Scope{Kind: s.Kind, Type: s.Type, Ops: s.Ops, Params: s.Params}.String()
	}
	return canon(a) == canon(b)
}

// scopeText is a scope in words, in Dutch and English, for the consent
// screen.
type scopeText struct {
	Scope string
	NL    string
	EN    string
}

// describe returns scope in plain Dutch and English.
func describe(scope string) scopeText {
	t := scopeText{Scope: scope}
	ss, err := smart.Parse(scope)
	if err != nil || len(ss) != 1 {
		t.NL, t.EN = "Toegang: "+scope, "Access: "+scope
		return t
	}
	s := ss[0]
	if !s.Clinical() {
		switch s.Name {
		case scopeOpenID:
			t.NL, t.EN = "Bevestigen wie u bent", "Confirm who you are"
		case scopeFHIRUser:
			t.NL, t.EN = "Laten weten wie u bent in het dossier", "Tell the app who you are in the record"
		case scopeLaunchPatient:
			t.NL, t.EN = "Het kind dat u kiest doorgeven aan de app", "Tell the app which child you chose"
		case scopeOffline:
			t.NL, t.EN = "Toegang houden, ook als u niet meer bent ingelogd", "Keep access, also after you have signed out"
		case scopeOnline:
			t.NL, t.EN = "Toegang houden zolang u bent ingelogd", "Keep access while you are signed in"
		case "profile":
			t.NL, t.EN = "Uw naam en profiel", "Your name and profile"
		case "email":
			t.NL, t.EN = "Uw e-mailadres", "Your email address"
		default:
			t.NL, t.EN = "Toegang: "+scope, "Access: "+scope
		}
		return t
	}
	var nlOps, enOps []string
	for _, op := range []struct {
		op     smart.Op
		nl, en string
	}{
		{smart.Read, "lezen", "read"},
		{smart.Search, "zoeken", "search"},
		{smart.Create, "toevoegen", "add"},
		{smart.Update, "wijzigen", "change"},
		{smart.Delete, "verwijderen", "delete"},
	} {
		if s.Ops&op.op != 0 {
			nlOps = append(nlOps, op.nl)
			enOps = append(enOps, op.en)
		}
	}
	nlType, enType := typeWords(s.Type)
	var nlWhose, enWhose string
	switch s.Kind {
	case smart.Patient:
		nlWhose, enWhose = "van het gekozen kind", "of the chosen child"
	case smart.User:
		nlWhose, enWhose = "waar u zelf toegang toe hebt", "that you have access to"
	case smart.System:
		nlWhose, enWhose = "in het hele systeem", "in the whole system"
	}
	t.NL = capitalise(joinWords(nlOps, "en")) + ": " + nlType + " " + nlWhose
	t.EN = capitalise(joinWords(enOps, "and")) + ": " + enType + " " + enWhose
	if len(s.Params) > 0 {
		p := s.String()
		p = p[strings.IndexByte(p, '?')+1:]
		t.NL += " (alleen " + p + ")"
		t.EN += " (only " + p + ")"
	}
	return t
}

// typeWords names a resource type in Dutch and English, in the words of
// the Digitale Ouder record where it has them.
func typeWords(typ string) (nl, en string) {
	words := map[string][2]string{
		"*":                     {"alle gegevens", "all data"},
		"Patient":               {"gegevens van kinderen", "children's details"},
		"RelatedPerson":         {"gegevens van ouders en verzorgers", "parents' and carers' details"},
		"Person":                {"inlogidentiteiten", "sign-in identities"},
		"Practitioner":          {"gegevens van hulpverleners", "professionals' details"},
		"PractitionerRole":      {"rollen van hulpverleners", "professionals' roles"},
		"Organization":          {"organisaties", "organisations"},
		"Group":                 {"gezinnen", "families"},
		"CarePlan":              {"plannen en afspraken", "plans and agreements"},
		"Goal":                  {"doelen", "goals"},
		"Condition":             {"hulpvragen", "help questions"},
		"Communication":         {"dagboek, berichten en notities", "diary, messages and notes"},
		"Appointment":           {"agenda", "agenda"},
		"DocumentReference":     {"documenten", "documents"},
		"Binary":                {"bestanden", "files"},
		"Observation":           {"observaties", "observations"},
		"Questionnaire":         {"vragenlijsten", "questionnaires"},
		"QuestionnaireResponse": {"evaluaties", "evaluations"},
		"Consent":               {"toestemmingen", "consents"},
		"CareTeam":              {"teams rond het kind", "care teams"},
		"Task":                  {"wijzigingsverzoeken en taken", "change requests and tasks"},
		"Flag":                  {"signalen", "signals"},
		"Contract":              {"overeenkomsten", "contracts"},
		"Invoice":               {"facturen", "invoices"},
		"AuditEvent":            {"toegangslogboek", "access log"},
		"Provenance":            {"herkomstgegevens", "provenance records"},
	}
	if w, ok := words[typ]; ok {
		return w[0], w[1]
	}
	return "gegevens van het type " + typ, typ + " records"
}

func joinWords(ws []string, and string) string {
	switch len(ws) {
	case 0:
		return ""
	case 1:
		return ws[0]
	}
	return strings.Join(ws[:len(ws)-1], ", ") + " " + and + " " + ws[len(ws)-1]
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Package audit builds the records of who did what: an AuditEvent in the
// style of IHE Basic Audit Log Patterns (BALP,
// https://profiles.ihe.net/ITI/BALP/) for every interaction, and the
// Provenance of every version written, as FHIR R4 JSON, from the caller, the
// interaction, the resources and the outcome. It does no I/O; the REST
// layer decides when to record and the store where (docs/audit.md).
package audit

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/fhir"
)

// Identifier systems of the agents that have no resource of their own here.
const (
	// ClientSystem identifies a client application by its OAuth client_id.
	ClientSystem = "https://digitaleouder.nl/fhir/NamingSystem/client-id"
	// UserSystem identifies a user by their fhirUser reference when it is
	// of a type an agent cannot point to (a Person).
	UserSystem = "https://digitaleouder.nl/fhir/NamingSystem/fhir-user"
	// ServerSystem identifies this server (the observer) by its FHIR base.
	ServerSystem = "urn:ietf:rfc:3986"
)

// Code systems used in the records.
const (
	eventTypeSystem   = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	interactionSystem = "http://hl7.org/fhir/restful-interaction"
	dicomSystem       = "http://dicom.nema.org/resources/ontology/DCM"
	participationSys  = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	sourceTypeSystem  = "http://terminology.hl7.org/CodeSystem/security-source-type"
	entityTypeSystem  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	objectRoleSystem  = "http://terminology.hl7.org/CodeSystem/object-role"
	balpEntitySystem  = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
	dataOpSystem      = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
	provTypeSystem    = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
)

// The outcomes of an AuditEvent (http://hl7.org/fhir/audit-event-outcome).
const (
	Success = "0" // the interaction succeeded
	Minor   = "4" // refused or failed because of the request (4xx)
	Serious = "8" // failed because of the server (5xx)
)

// OutcomeOf returns the outcome of an answer with HTTP status.
func OutcomeOf(status int) string {
	switch {
	case status < 400:
		return Success
	case status < 500:
		return Minor
	}
	return Serious
}

// ActionOf returns the AuditEvent.action of a restful interaction code: C,
// R, U, D, or E for searches, operations and Bundles (BALP's query and
// execute).
func ActionOf(interaction string) string {
	switch interaction {
	case "create":
		return "C"
	case "read", "vread", "history", "history-instance", "history-type", "history-system":
		return "R"
	case "update", "patch":
		return "U"
	case "delete":
		return "D"
	}
	return "E"
}

// Event is one interaction as the audit trail records it.
type Event struct {
	// Principal is the caller; nil when the request was not authenticated.
	Principal *auth.Principal
	// Interaction is the restful-interaction code (read, search-type,
	// create, operation, transaction, ...).
	Interaction string
	// Operation names the operation of an "operation" interaction
	// ("$validate").
	Operation string
	// Outcome is Success, Minor or Serious; Description says why a
	// failure failed (no personal data: the error's diagnostics).
	Outcome, Description string
	Recorded             time.Time
	// Entities are the resources read, returned or written.
	Entities []fhir.Entity
	// Query is the query string of a search, as sent ("" for none).
	Query string
	// Basis are the resources the access decision rested on
	// (Consent/1, CareTeam/2).
	Basis []string
	// RequestID is the X-Request-Id of the request; Address the client's
	// network address.
	RequestID, Address string
	// Server is the FHIR base URL: the observer of the event.
	Server string
}

// agentTypes are the resource types Provenance.agent.who and
// AuditEvent.agent.who may point to.
var agentTypes = []string{"Practitioner", "PractitionerRole", "RelatedPerson", "Patient", "Device", "Organization"}

// Agents returns how AuditEvent?agent= finds the agents of p: its fhirUser
// reference (or issuer|subject for a user without one), its client
// (ClientSystem|client_id) and its Organization.
func Agents(p *auth.Principal) []string {
	if p == nil {
		return nil
	}
	var out []string
	if u := userID(p); u != "" {
		out = append(out, u)
	}
	if p.ClientID != "" {
		out = append(out, ClientSystem+"|"+p.ClientID)
	}
	if p.Organization != "" {
		out = append(out, p.Organization)
	}
	return out
}

// userID is the user of p as a reference or identifier; "" for a backend
// client acting for itself.
func userID(p *auth.Principal) string {
	switch {
	case p.FHIRUser != "":
		return p.FHIRUser
	case p.Subject != "" && p.Subject != p.ClientID:
		return p.Issuer + "|" + p.Subject
	}
	return ""
}

// The JSON shapes of the records. Field order is the order of the
// resource's elements, so the output reads as the specification's.
type (
	coding struct {
		System  string `json:"system,omitempty"`
		Code    string `json:"code,omitempty"`
		Display string `json:"display,omitempty"`
	}
	concept struct {
		Coding []coding `json:"coding,omitempty"`
		Text   string   `json:"text,omitempty"`
	}
	identifier struct {
		System string `json:"system,omitempty"`
		Value  string `json:"value,omitempty"`
	}
	reference struct {
		Reference  string      `json:"reference,omitempty"`
		Identifier *identifier `json:"identifier,omitempty"`
		Display    string      `json:"display,omitempty"`
	}
	network struct {
		Address string `json:"address,omitempty"`
		Type    string `json:"type,omitempty"`
	}
	agent struct {
		Type      *concept   `json:"type,omitempty"`
		Role      []concept  `json:"role,omitempty"`
		Who       *reference `json:"who,omitempty"`
		Requestor *bool      `json:"requestor,omitempty"`
		Policy    []string   `json:"policy,omitempty"`
		Network   *network   `json:"network,omitempty"`
	}
	source struct {
		Site     string    `json:"site,omitempty"`
		Observer reference `json:"observer"`
		Type     []coding  `json:"type,omitempty"`
	}
	entity struct {
		What        *reference `json:"what,omitempty"`
		Type        *coding    `json:"type,omitempty"`
		Role        *coding    `json:"role,omitempty"`
		Description string     `json:"description,omitempty"`
		Query       string     `json:"query,omitempty"`
	}
	meta struct {
		VersionID   string `json:"versionId"`
		LastUpdated string `json:"lastUpdated"`
	}
	auditEvent struct {
		ResourceType string   `json:"resourceType"`
		ID           string   `json:"id"`
		Meta         meta     `json:"meta"`
		Type         coding   `json:"type"`
		Subtype      []coding `json:"subtype"`
		Action       string   `json:"action"`
		Recorded     string   `json:"recorded"`
		Outcome      string   `json:"outcome"`
		OutcomeDesc  string   `json:"outcomeDesc,omitempty"`
		Agent        []agent  `json:"agent"`
		Source       source   `json:"source"`
		Entity       []entity `json:"entity,omitempty"`
	}
)

// instant formats an R4 instant with microseconds, the store's precision.
func instant(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// who is the reference to an agent: a literal reference when the type may
// be an agent, else a logical one through an identifier.
func who(ref string) *reference {
	typ, _, _ := strings.Cut(ref, "/")
	if slices.Contains(agentTypes, typ) {
		return &reference{Reference: ref}
	}
	return &reference{Identifier: &identifier{System: UserSystem, Value: ref}, Display: ref}
}

// userRef is the reference to p's user, nil when there is none.
func userRef(p *auth.Principal) *reference {
	switch {
	case p.FHIRUser != "":
		return who(p.FHIRUser)
	case p.Subject != "" && p.Subject != p.ClientID:
		return &reference{Identifier: &identifier{System: p.Issuer, Value: p.Subject}}
	}
	return nil
}

func clientRef(p *auth.Principal) *reference {
	return &reference{Identifier: &identifier{System: ClientSystem, Value: p.ClientID}, Display: "client " + p.ClientID}
}

// AuditEvent returns the record of e for the audit trail, with id id; its
// Render writes the AuditEvent resource (JSON) once the patients are known.
func (e *Event) AuditEvent(id string) fhir.AuditEvent {
	return fhir.AuditEvent{
		ID:       id,
		Recorded: e.Recorded.UTC().Truncate(time.Microsecond),
		Type:     "rest",
		Subtype:  e.Interaction,
		Action:   ActionOf(e.Interaction),
		Outcome:  e.Outcome,
		Agents:   Agents(e.Principal),
		Entities: slices.Clone(e.Entities),
		Render:   func(patients []string) ([]byte, error) { return e.JSON(id, patients) },
	}
}

// JSON returns the AuditEvent resource of e with id id, about patients
// (Patient/1 references).
func (e *Event) JSON(id string, patients []string) ([]byte, error) {
	yes, no := true, false
	ae := auditEvent{
		ResourceType: "AuditEvent",
		ID:           id,
		Meta:         meta{VersionID: "1", LastUpdated: instant(e.Recorded)},
		Type:         coding{System: eventTypeSystem, Code: "rest", Display: "Restful Operation"},
		Subtype:      []coding{{System: interactionSystem, Code: e.Interaction}},
		Action:       ActionOf(e.Interaction),
		Recorded:     instant(e.Recorded),
		Outcome:      e.Outcome,
		OutcomeDesc:  e.Description,
		Source: source{
			Site:     e.Server,
			Observer: reference{Identifier: &identifier{System: ServerSystem, Value: e.Server}, Display: "Digitale Ouder ouderd"},
			Type:     []coding{{System: sourceTypeSystem, Code: "4", Display: "Application Server"}},
		},
	}
	if e.Operation != "" {
		ae.Subtype = append(ae.Subtype, coding{Code: e.Operation})
	}
	// The agents: the user (the requestor), the client application, the
	// organisation behind it, and this server.
	userType := &concept{Coding: []coding{{System: participationSys, Code: "IRCP", Display: "information recipient"}}}
	if a := ae.Action; a == "C" || a == "U" || a == "D" {
		userType = &concept{Coding: []coding{{System: participationSys, Code: "AUT", Display: "author (originator)"}}}
	}
	var addr *network
	if e.Address != "" {
		addr = &network{Address: e.Address, Type: "2"} // an IP address
	}
	p := e.Principal
	switch {
	case p == nil:
		ae.Agent = append(ae.Agent, agent{Type: userType, Who: &reference{Display: "unauthenticated caller"}, Requestor: &yes, Network: addr})
	default:
		var policy []string
		if p.TokenID != "" {
			policy = []string{p.TokenID}
		}
		user := userRef(p)
		if user != nil {
			ae.Agent = append(ae.Agent, agent{Type: userType, Who: user, Requestor: &yes, Policy: policy})
		}
		if p.ClientID != "" {
			a := agent{Type: &concept{Coding: []coding{{System: dicomSystem, Code: "110153", Display: "Source Role ID"}}}, Who: clientRef(p), Requestor: &no, Network: addr}
			if user == nil {
				a.Requestor, a.Policy = &yes, policy
			}
			ae.Agent = append(ae.Agent, a)
		}
		if p.Organization != "" {
			ae.Agent = append(ae.Agent, agent{Type: &concept{Coding: []coding{{System: participationSys, Code: "RESP", Display: "responsible party"}}}, Who: &reference{Reference: p.Organization}, Requestor: &no})
		}
		if user == nil && p.ClientID == "" {
			ae.Agent = append(ae.Agent, agent{Type: userType, Who: &reference{Display: "subject " + p.Subject}, Requestor: &yes, Policy: policy, Network: addr})
		}
	}
	ae.Agent = append(ae.Agent, agent{
		Type:      &concept{Coding: []coding{{System: dicomSystem, Code: "110152", Display: "Destination Role ID"}}},
		Who:       &reference{Identifier: &identifier{System: ServerSystem, Value: e.Server}},
		Requestor: &no,
	})
	for _, en := range e.Entities {
		ae.Entity = append(ae.Entity, entity{
			What: &reference{Reference: en.Reference()},
			Type: &coding{System: entityTypeSystem, Code: "2", Display: "System Object"},
			Role: &coding{System: objectRoleSystem, Code: "4", Display: "Domain Resource"},
		})
	}
	if e.Query != "" {
		ae.Entity = append(ae.Entity, entity{
			Type:  &coding{System: entityTypeSystem, Code: "2", Display: "System Object"},
			Role:  &coding{System: objectRoleSystem, Code: "24", Display: "Query"},
			Query: base64.StdEncoding.EncodeToString([]byte(e.Query)),
		})
	}
	for _, pt := range patients {
		ae.Entity = append(ae.Entity, entity{
			What: &reference{Reference: pt},
			Type: &coding{System: entityTypeSystem, Code: "1", Display: "Person"},
			Role: &coding{System: objectRoleSystem, Code: "1", Display: "Patient"},
		})
	}
	for _, b := range e.Basis {
		ae.Entity = append(ae.Entity, entity{
			What:        &reference{Reference: b},
			Type:        &coding{System: entityTypeSystem, Code: "2", Display: "System Object"},
			Role:        &coding{System: objectRoleSystem, Code: "13", Display: "Security Resource"},
			Description: "the access decision rested on it",
		})
	}
	if e.RequestID != "" {
		ae.Entity = append(ae.Entity, entity{
			What: &reference{Identifier: &identifier{Value: e.RequestID}},
			Type: &coding{System: balpEntitySystem, Code: "XrequestId", Display: "X-Request-Id"},
		})
	}
	return json.Marshal(ae)
}

// activities are the v3-DataOperation codes of the ways a version is
// written.
var activities = map[fhir.Method][2]string{
	fhir.MethodCreate: {"CREATE", "create"},
	fhir.MethodUpdate: {"UPDATE", "revise"},
	fhir.MethodDelete: {"DELETE", "delete"},
}

type provenance struct {
	ResourceType string      `json:"resourceType"`
	Target       []reference `json:"target"`
	Recorded     string      `json:"recorded"`
	Activity     concept     `json:"activity"`
	Agent        []provAgent `json:"agent"`
}

type provAgent struct {
	Type       concept    `json:"type"`
	Who        reference  `json:"who"`
	OnBehalfOf *reference `json:"onBehalfOf,omitempty"`
}

// Provenance returns the Provenance resource (JSON, without id and meta,
// which the store adds) of version w written by p: its target is the
// version, its agents the user (author), the client application through
// which they acted (performer, on their behalf) and the Organization a
// backend client or a practitioner acts for. A server's own write (p nil
// or without any identity) has the server as author.
func Provenance(p *auth.Principal, w fhir.Written, server string) ([]byte, error) {
	method := w.Method
	if w.Created && method == fhir.MethodUpdate {
		method = fhir.MethodCreate
	}
	act := activities[method]
	pr := provenance{
		ResourceType: "Provenance",
		Target:       []reference{{Reference: fhir.Entity{Type: w.Resource.Type, ID: w.Resource.ID, Version: w.Resource.VersionID}.Reference()}},
		Recorded:     instant(w.Resource.LastUpdated),
		Activity:     concept{Coding: []coding{{System: dataOpSystem, Code: act[0], Display: act[1]}}},
	}
	typ := func(code, display string) concept {
		return concept{Coding: []coding{{System: provTypeSystem, Code: code, Display: display}}}
	}
	var org *reference
	if p != nil && p.Organization != "" {
		org = &reference{Reference: p.Organization}
	}
	var user *reference
	if p != nil {
		user = userRef(p)
	}
	if user != nil {
		pr.Agent = append(pr.Agent, provAgent{Type: typ("author", "Author"), Who: *user, OnBehalfOf: org})
	}
	if p != nil && p.ClientID != "" {
		a := provAgent{Type: typ("performer", "Performer"), Who: *clientRef(p), OnBehalfOf: user}
		if user == nil {
			a.Type, a.OnBehalfOf = typ("author", "Author"), org
		}
		pr.Agent = append(pr.Agent, a)
	}
	if len(pr.Agent) == 0 {
		who := reference{Identifier: &identifier{System: ServerSystem, Value: server}, Display: "Digitale Ouder ouderd"}
		if p != nil && p.Subject != "" {
			who = reference{Identifier: &identifier{System: p.Issuer, Value: p.Subject}}
		}
		pr.Agent = append(pr.Agent, provAgent{Type: typ("author", "Author"), Who: who, OnBehalfOf: org})
	}
	return json.Marshal(pr)
}

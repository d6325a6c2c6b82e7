package audit_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/auth/audit"
	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/fhir"
)

var (
	now      = time.Date(2026, 11, 23, 12, 0, 0, 123456000, time.UTC)
	parent   = &auth.Principal{Issuer: "https://as", Subject: "anna", ClientID: "demo-app", FHIRUser: "Person/demo-anna", TokenID: "jti-1"}
	teacher  = &auth.Principal{Issuer: "https://as", Subject: "kees", ClientID: "school", FHIRUser: "Practitioner/demo-kees", Organization: "Organization/school"}
	backend  = &auth.Principal{Issuer: "https://as", Subject: "ecd", ClientID: "ecd", Organization: "Organization/care"}
	external = &auth.Principal{Issuer: "https://idp", Subject: "u1", ClientID: "other"}
)

// parse validates body as R4 (and the implementation guide) and decodes it.
func parse(tb testing.TB, p *conformance.Parser, typ string, body []byte) map[string]any {
	tb.Helper()
	if _, err := p.Parse(body, typ); err != nil {
		tb.Fatalf("%s does not validate: %v\n%s", typ, err, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// refs lists the references (or identifier values) of the elements at
// path ("agent.who") of m.
func refs(m map[string]any, list, member string) []string {
	var out []string
	items, _ := m[list].([]any)
	for _, it := range items {
		v, _ := it.(map[string]any)[member].(map[string]any)
		switch {
		case v == nil:
		case v["reference"] != nil:
			out = append(out, v["reference"].(string))
		case v["identifier"] != nil:
			id := v["identifier"].(map[string]any)
			s, _ := id["system"].(string)
			out = append(out, s+"|"+id["value"].(string))
		default:
			out = append(out, "display:"+v["display"].(string))
		}
	}
	return out
}

func TestAuditEvent(t *testing.T) {
	p, err := conformance.NewParser()
	if err != nil {
		t.Fatal(err)
	}
	obs := fhir.Entity{Type: "Observation", ID: "o1", Version: 3}
	tests := []struct {
		name       string
		ev         audit.Event
		patients   []string
		action     string
		agents     []string // agent.who
		agentIndex []string // audit.Agents
		entities   []string // entity.what
	}{
		{
			name:       "parent reads through an app",
			ev:         audit.Event{Principal: parent, Interaction: "read", Outcome: audit.Success, Entities: []fhir.Entity{obs}, Basis: []string{"Consent/c1"}, RequestID: "r1", Address: "10.0.0.1"},
			patients:   []string{"Patient/demo-sara"},
			action:     "R",
			agents:     []string{audit.UserSystem + "|Person/demo-anna", audit.ClientSystem + "|demo-app", audit.ServerSystem + "|http://x/fhir"},
			agentIndex: []string{"Person/demo-anna", audit.ClientSystem + "|demo-app"},
			entities:   []string{"Observation/o1/_history/3", "Patient/demo-sara", "Consent/c1", "|r1"},
		},
		{
			name:       "teacher for a school searches",
			ev:         audit.Event{Principal: teacher, Interaction: "search-type", Outcome: audit.Success, Query: "subject=Patient/demo-sara&_count=10"},
			action:     "E",
			agents:     []string{"Practitioner/demo-kees", audit.ClientSystem + "|school", "Organization/school", audit.ServerSystem + "|http://x/fhir"},
			agentIndex: []string{"Practitioner/demo-kees", audit.ClientSystem + "|school", "Organization/school"},
		},
		{
			name:       "backend client refused",
			ev:         audit.Event{Principal: backend, Interaction: "delete", Outcome: audit.Minor, Description: "403 forbidden", Entities: []fhir.Entity{{Type: "Patient", ID: "p"}}},
			patients:   []string{"Patient/p"},
			action:     "D",
			agents:     []string{audit.ClientSystem + "|ecd", "Organization/care", audit.ServerSystem + "|http://x/fhir"},
			agentIndex: []string{audit.ClientSystem + "|ecd", "Organization/care"},
			entities:   []string{"Patient/p", "Patient/p"},
		},
		{
			name:       "user of an external issuer",
			ev:         audit.Event{Principal: external, Interaction: "create", Outcome: audit.Serious},
			action:     "C",
			agents:     []string{"https://idp|u1", audit.ClientSystem + "|other", audit.ServerSystem + "|http://x/fhir"},
			agentIndex: []string{"https://idp|u1", audit.ClientSystem + "|other"},
		},
		{
			name:   "unauthenticated",
			ev:     audit.Event{Interaction: "search-system", Outcome: audit.Minor, Address: "10.0.0.2"},
			action: "E",
			agents: []string{"display:unauthenticated caller", audit.ServerSystem + "|http://x/fhir"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ev.Recorded, tt.ev.Server = now, "http://x/fhir"
			rec := tt.ev.AuditEvent("a1")
			if rec.Action != tt.action || rec.Subtype != tt.ev.Interaction || rec.Outcome != tt.ev.Outcome || rec.Type != "rest" {
				t.Errorf("record %+v, want action %s", rec, tt.action)
			}
			if strings.Join(rec.Agents, " ") != strings.Join(tt.agentIndex, " ") {
				t.Errorf("Agents = %q, want %q", rec.Agents, tt.agentIndex)
			}
			body, err := rec.Render(tt.patients)
			if err != nil {
				t.Fatal(err)
			}
			m := parse(t, p, "AuditEvent", body)
			if m["id"] != "a1" || m["action"] != tt.action || m["recorded"] != "2026-11-23T12:00:00.123456Z" {
				t.Errorf("id, action, recorded: %v %v %v", m["id"], m["action"], m["recorded"])
			}
			if got := refs(m, "agent", "who"); strings.Join(got, " ") != strings.Join(tt.agents, " ") {
				t.Errorf("agents %q, want %q", got, tt.agents)
			}
			if got := refs(m, "entity", "what"); strings.Join(got, " ") != strings.Join(tt.entities, " ") {
				t.Errorf("entities %q, want %q", got, tt.entities)
			}
			if tt.ev.Query != "" {
				q := m["entity"].([]any)[0].(map[string]any)["query"].(string)
				if b, _ := base64.StdEncoding.DecodeString(q); string(b) != tt.ev.Query {
					t.Errorf("query entity %q, want %q", b, tt.ev.Query)
				}
			}
		})
	}
}

func TestProvenance(t *testing.T) {
	p, err := conformance.NewParser()
	if err != nil {
		t.Fatal(err)
	}
	res := fhir.Resource{Type: "CarePlan", ID: "plan", VersionID: 2, LastUpdated: now}
	tests := []struct {
		name     string
		p        *auth.Principal
		w        fhir.Written
		activity string
		agents   []string
		behalf   []string
	}{
		{"parent through an app", parent, fhir.Written{Resource: res, Method: fhir.MethodUpdate}, "UPDATE",
			[]string{audit.UserSystem + "|Person/demo-anna", audit.ClientSystem + "|demo-app"}, []string{audit.UserSystem + "|Person/demo-anna"}},
		{"practitioner for an organisation", teacher, fhir.Written{Resource: res, Method: fhir.MethodUpdate, Created: true}, "CREATE",
			[]string{"Practitioner/demo-kees", audit.ClientSystem + "|school"}, []string{"Organization/school", "Practitioner/demo-kees"}},
		{"backend client", backend, fhir.Written{Resource: res, Method: fhir.MethodDelete}, "DELETE",
			[]string{audit.ClientSystem + "|ecd"}, []string{"Organization/care"}},
		{"the server itself", nil, fhir.Written{Resource: res, Method: fhir.MethodCreate}, "CREATE",
			[]string{audit.ServerSystem + "|http://x/fhir"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := audit.Provenance(tt.p, tt.w, "http://x/fhir")
			if err != nil {
				t.Fatal(err)
			}
			m := parse(t, p, "Provenance", body)
			if tg := m["target"].([]any)[0].(map[string]any)["reference"]; tg != "CarePlan/plan/_history/2" {
				t.Errorf("target %v", tg)
			}
			if m["recorded"] != "2026-11-23T12:00:00.123456Z" {
				t.Errorf("recorded %v", m["recorded"])
			}
			if act := m["activity"].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"]; act != tt.activity {
				t.Errorf("activity %v, want %s", act, tt.activity)
			}
			if got := refs(m, "agent", "who"); strings.Join(got, " ") != strings.Join(tt.agents, " ") {
				t.Errorf("agents %q, want %q", got, tt.agents)
			}
			if got := refs(m, "agent", "onBehalfOf"); strings.Join(got, " ") != strings.Join(tt.behalf, " ") {
				t.Errorf("onBehalfOf %q, want %q", got, tt.behalf)
			}
		})
	}
}

func TestOutcomeAndAction(t *testing.T) {
	for _, tt := range []struct {
		status int
		want   string
	}{{200, "0"}, {304, "0"}, {401, "4"}, {403, "4"}, {404, "4"}, {500, "8"}, {503, "8"}} {
		if got := audit.OutcomeOf(tt.status); got != tt.want {
			t.Errorf("OutcomeOf(%d) = %s, want %s", tt.status, got, tt.want)
		}
	}
	for in, want := range map[string]string{"create": "C", "read": "R", "vread": "R", "history-type": "R", "update": "U", "patch": "U", "delete": "D", "search-type": "E", "operation": "E", "transaction": "E"} {
		if got := audit.ActionOf(in); got != want {
			t.Errorf("ActionOf(%s) = %s, want %s", in, got, want)
		}
	}
}

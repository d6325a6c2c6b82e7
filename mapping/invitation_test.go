package mapping

import (
	"strings"
	"testing"
)

func validInvitation() Invitation {
	return Invitation{
		ID: "uitn-1", Status: TaskRequested, Progress: InvitationSent, Team: "CareTeam/team-sara", For: "Patient/sara",
		AuthoredOn: "2026-02-01T12:00:00+01:00", Requester: "RelatedPerson/anna", Invitee: "Practitioner/eva",
		Email: "eva@example.org", Role: SpeechTherapist, Grant: "Consent/c1",
		TokenHash: InvitationTokenHash("secret"), Expires: "2026-02-15T12:00:00+01:00",
	}
}

func TestInvitationRoundTrip(t *testing.T) {
	in := validInvitation()
	b, err := in.ToFHIR()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"secret"`) {
		t.Error("the Task holds the token")
	}
	out, err := InvitationFromFHIR(b)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

func TestInvitationRules(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Invitation)
		expr string
	}{
		{"no team", func(i *Invitation) { i.Team = "" }, "Task.focus"},
		{"team is no CareTeam", func(i *Invitation) { i.Team = "Group/x" }, "Task.focus"},
		{"no invitee", func(i *Invitation) { i.Invitee = "" }, "Task.owner"},
		{"bad e-mail", func(i *Invitation) { i.Email = "eva at example.org" }, "Task.input.where(type.coding.code = 'email')"},
		{"not a helper's role", func(i *Invitation) { i.Role = Dossierhouder }, "Task.input.where(type.coding.code = 'role')"},
		{"token instead of hash", func(i *Invitation) { i.TokenHash = "secret" }, "Task.identifier"},
		{"no expiry", func(i *Invitation) { i.Expires = "" }, "Task.restriction.period.end"},
		{"unknown progress", func(i *Invitation) { i.Progress = "lost" }, "Task.businessStatus"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := validInvitation()
			c.edit(&in)
			_, err := in.ToFHIR()
			if err == nil || !strings.Contains(err.Error(), c.expr) {
				t.Errorf("error %v, want one at %s", err, c.expr)
			}
		})
	}
}

func TestInvitationFromOtherTask(t *testing.T) {
	b, err := ChangeRequest{Status: TaskRequested, Focus: "CarePlan/x"}.ToFHIR()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := InvitationFromFHIR(b); err == nil || !strings.Contains(err.Error(), "not an invitation") {
		t.Errorf("a change request read as an invitation: %v", err)
	}
}

func TestValidEmail(t *testing.T) {
	for s, want := range map[string]bool{
		"eva@example.org": true, "a.b+c@sub.example.nl": true,
		"": false, "eva": false, "eva@localhost": false, "Eva <eva@example.org>": false, "a@b@c.org": false, "eva@example.org\r\nBcc: x@y.z": false,
	} {
		if got := ValidEmail(s); got != want {
			t.Errorf("ValidEmail(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestInviteeToFHIR(t *testing.T) {
	b, err := Invitee{Name: "Eva Smit", Email: "eva@example.org"}.ToFHIR()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"telecom":[{"system":"email","value":"eva@example.org"}]`) {
		t.Errorf("invitee: %s", b)
	}
	if _, err := (Invitee{Name: " ", Email: "eva@example.org"}).ToFHIR(); err == nil {
		t.Error("an invitee without a name was accepted")
	}
}

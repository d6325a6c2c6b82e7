package rest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/conformance"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/mapping"
)

// The operations of the approval workflow and of invitations, declared in
// the CapabilityStatement on the types that have them.
var (
	// ApproveOperation is POST [base]/Task/{id}/$approve.
	ApproveOperation = conformance.Operation{Name: "approve", Definition: mapping.BaseURL + "/OperationDefinition/Task-approve"}
	// RejectOperation is POST [base]/Task/{id}/$reject.
	RejectOperation = conformance.Operation{Name: "reject", Definition: mapping.BaseURL + "/OperationDefinition/Task-reject"}
	// InviteOperation is POST [base]/Patient/{id}/$invite.
	InviteOperation = conformance.Operation{Name: "invite", Definition: mapping.BaseURL + "/OperationDefinition/Patient-invite"}
)

// DefaultInvitationLifetime is how long an invitation link works when
// Config.InvitationLifetime is zero.
const DefaultInvitationLifetime = 14 * 24 * time.Hour

// InvitationMail is what the invitation e-mail says; Token is the secret of
// the acceptance link ({public base}/invite/{Token}) and must go nowhere
// but into the e-mail.
type InvitationMail struct {
	To          string // the invitee's e-mail address
	InviteeName string
	InviterName string
	ChildName   string
	Role        string // the team role in Dutch
	RoleEN      string // and in English
	Token       string
	Expires     time.Time
}

// parameters reads an operation's optional Parameters body: name → string
// value (valueString, valueCode, valueDate, valueDateTime, valueUri),
// repeated names kept in order. Parameters not in allowed are a 400.
func (s *Server) parameters(r *http.Request, allowed ...string) (map[string][]string, error) {
	out := map[string][]string{}
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, s.maxBody))
	if err != nil {
		return nil, fhir.Errorf(fhir.TooLarge, "", "the body exceeds the limit of %d bytes", s.maxBody)
	}
	if len(b) == 0 {
		return out, nil
	}
	if err := checkContentType(r); err != nil {
		return nil, err
	}
	if _, err := s.parser.Parse(b, "Parameters"); err != nil {
		return nil, err
	}
	var p struct {
		Parameter []map[string]json.RawMessage `json:"parameter"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fhir.Errorf(fhir.Invalid, "Parameters", "the body is not a Parameters resource: %v", err)
	}
	for i, x := range p.Parameter {
		var name string
		_ = json.Unmarshal(x["name"], &name)
		expr := fmt.Sprintf("Parameters.parameter[%d]", i)
		if !slices.Contains(allowed, name) {
			return nil, fhir.Errorf(fhir.Invalid, expr+".name", "unknown parameter %q: this operation takes %s", name, strings.Join(allowed, ", "))
		}
		var v string
		for _, k := range []string{"valueString", "valueCode", "valueDate", "valueDateTime", "valueUri"} {
			if raw, ok := x[k]; ok {
				_ = json.Unmarshal(raw, &v)
			}
		}
		if v == "" {
			return nil, fhir.Errorf(fhir.Invalid, expr, "parameter %q needs a string, code, date or dateTime value", name)
		}
		out[name] = append(out[name], v)
	}
	return out, nil
}

// approve handles POST [base]/Task/{id}/$approve.
func (s *Server) approve(w http.ResponseWriter, r *http.Request) error {
	return s.decideChange(w, r, mapping.DecisionApproved)
}

// reject handles POST [base]/Task/{id}/$reject.
func (s *Server) reject(w http.ResponseWriter, r *http.Request) error {
	return s.decideChange(w, r, mapping.DecisionRejected)
}

// decideChange records the dossierhouder's decision on a change request:
// the proposal (Task.focus) becomes approved or rejected, what an approved
// one replaces is ended, and the Task is completed with the decision; one
// transaction, every change a new version.
func (s *Server) decideChange(w http.ResponseWriter, r *http.Request, decision mapping.Decision) error {
	typ, id := chi.URLParam(r, "type"), chi.URLParam(r, "id")
	if typ != "Task" {
		return fhir.Errorf(fhir.NotFound, "", "$%s is an operation on a Task (an approve-change request), not on %s", decision, typ)
	}
	params, err := s.parameters(r, "reason")
	if err != nil {
		return err
	}
	reason := strings.Join(params["reason"], "; ")
	if decision == mapping.DecisionRejected && strings.TrimSpace(reason) == "" {
		return fhir.Errorf(fhir.Invalid, "Parameters.parameter.where(name = 'reason')", "a rejection needs a reason: send Parameters with parameter reason (valueString)")
	}
	ctx := r.Context()
	var out fhir.Outcome
	err = s.tx.Transaction(ctx, func(tx TxStore) error {
		task, err := tx.Read(ctx, "Task", id)
		if err != nil {
			return err
		}
		cr, err := mapping.ChangeRequestFromFHIR(task.Body)
		if err != nil {
			return fhir.Errorf(fhir.Unprocessable, "Task.code", "Task/%s is not a change request (code %s|%s) that can be decided: %v", id, mapping.TaskCodeSystem, mapping.TaskApproveChange, err)
		}
		if cr.Status != mapping.TaskRequested {
			return fhir.Errorf(fhir.Conflict, "Task.status", "Task/%s is %s: it was decided or withdrawn already", id, cr.Status)
		}
		ftyp, fid, fversion, ok := splitRef(cr.Focus)
		lc, governedType := mapping.LifecycleOf(ftyp)
		if !ok || !governedType {
			return fhir.Errorf(fhir.Unprocessable, "Task.focus", "Task/%s focuses on %q, which is not a proposal", id, cr.Focus)
		}
		actx, err := s.access(ctx, auth.Update, ftyp)
		if err != nil {
			return fhir.Errorf(fhir.Forbidden, "Task.owner", "only the dossierhouder of the child's team decides on change requests: %v", err)
		}
		srv := asServer(ctx)
		cur, err := tx.Read(srv, ftyp, fid)
		if err != nil {
			return fhir.Errorf(fhir.Conflict, "Task.focus", "the proposal %s/%s no longer exists: withdraw the change request instead", ftyp, fid)
		}
		if !mayApprove(actx, tx, search.AccessFrom(actx), ftyp, fid) {
			return fhir.Errorf(fhir.Forbidden, "Task.owner", "only the dossierhouder of the child's team approves or rejects %s/%s", ftyp, fid)
		}
		if fversion != 0 && fversion != cur.VersionID {
			return fhir.Errorf(fhir.Conflict, "Task.focus", "%s/%s changed since the change request was made (it asks about version %d; the current one is %d): decide on the current proposal through its own change request", ftyp, fid, fversion, cur.VersionID)
		}
		if st := statusIn(cur.Body, lc); st != lc.Proposed {
			return fhir.Errorf(fhir.Conflict, "Task.focus", "%s/%s is %s, not a proposal (%s %q) any more", ftyp, fid, cmpOr(st, "without status"), lc.Element, lc.Proposed)
		}
		next := lc.Rejected
		if decision == mapping.DecisionApproved {
			next = lc.Approved
		}
		if _, err := s.amend(srv, tx, cur, func(m *members) { m.set(lc.Element, next) }); err != nil {
			return err
		}
		if decision == mapping.DecisionApproved {
			if err := s.endReplaced(srv, tx, lc, cur); err != nil {
				return err
			}
		}
		now := s.now().UTC().Format(time.RFC3339)
		out, err = s.amend(srv, tx, task, func(m *members) {
			m.set("status", mapping.TaskCompleted)
			m.set("businessStatus", map[string]any{"coding": []mapping.Coding{decision.Coding()}})
			if reason != "" {
				m.set("statusReason", map[string]string{"text": reason})
			}
			m.set("lastModified", now)
		})
		return err
	})
	if err != nil {
		return err
	}
	return s.writeResource(w, r, http.StatusOK, out.Resource)
}

// endReplaced gives what an approved proposal replaces its Replaced status.
// Each must be of the same type and approved (in force) now.
func (s *Server) endReplaced(ctx context.Context, tx TxStore, lc mapping.Lifecycle, proposal fhir.Resource) error {
	for _, ref := range replacedBy(proposal.Body, proposal.Type) {
		typ, id, _, ok := splitRef(ref)
		if !ok || typ != proposal.Type || id == proposal.ID {
			return fhir.Errorf(fhir.Unprocessable, lc.ResourceType+".replaces", "%s/%s replaces %q, which is not another %s", proposal.Type, proposal.ID, ref, proposal.Type)
		}
		old, err := tx.Read(ctx, typ, id)
		if err != nil {
			return fhir.Errorf(fhir.Conflict, lc.ResourceType+".replaces", "%s/%s replaces %s, which no longer exists", proposal.Type, proposal.ID, ref)
		}
		if st := statusIn(old.Body, lc); st != lc.Approved {
			return fhir.Errorf(fhir.Conflict, lc.ResourceType+".replaces", "%s/%s replaces %s, which is %s, not %s: nothing in force to replace", proposal.Type, proposal.ID, ref, cmpOr(st, "without status"), lc.Approved)
		}
		if _, err := s.amend(ctx, tx, old, func(m *members) { m.set(lc.Element, lc.Replaced) }); err != nil {
			return err
		}
	}
	return nil
}

// invite handles POST [base]/Patient/{id}/$invite: a parent with authority
// or the dossierhouder invites a helper by e-mail. In one transaction it
// makes (or reuses) the helper's Practitioner, proposes a Consent with the
// sections (with its approve-change Task) and the invitation Task with the
// hash of a new acceptance token; after commit it sends the e-mail with the
// link and records that it was sent.
func (s *Server) invite(w http.ResponseWriter, r *http.Request) error {
	typ, id := chi.URLParam(r, "type"), chi.URLParam(r, "id")
	if typ != "Patient" {
		return fhir.Errorf(fhir.NotFound, "", "$invite is an operation on a Patient (the child), not on %s", typ)
	}
	if s.sendInvitation == nil {
		return fhir.Errorf(fhir.NotSupported, "", "this server sends no e-mail, so it cannot invite anyone (configure -smtp-url, or -dev for the local outbox)")
	}
	params, err := s.parameters(r, "email", "name", "role", "section", "end")
	if err != nil {
		return err
	}
	one := func(name string, required bool) (string, error) {
		v := params[name]
		switch {
		case len(v) > 1:
			return "", fhir.Errorf(fhir.Invalid, "Parameters.parameter.where(name = '"+name+"')", "parameter %q is given %d times; once please", name, len(v))
		case len(v) == 0 && required:
			return "", fhir.Errorf(fhir.Invalid, "Parameters.parameter.where(name = '"+name+"')", "parameter %q is required", name)
		case len(v) == 0:
			return "", nil
		}
		return strings.TrimSpace(v[0]), nil
	}
	var email, name, roleCode, end string
	for _, p := range []struct {
		dst      *string
		name     string
		required bool
	}{{&email, "email", true}, {&name, "name", true}, {&roleCode, "role", true}, {&end, "end", false}} {
		if *p.dst, err = one(p.name, p.required); err != nil {
			return err
		}
	}
	if !mapping.ValidEmail(email) {
		return fhir.Errorf(fhir.Invalid, "Parameters.parameter.where(name = 'email')", "%q is not an e-mail address", email)
	}
	role := mapping.Role(roleCode)
	if info, ok := role.Info(); !ok || !info.Helper {
		return fhir.Errorf(fhir.Invalid, "Parameters.parameter.where(name = 'role')", "%q is not the role of an invited helper (%s)", roleCode, mapping.RoleSystem)
	}
	var sections []mapping.Section
	for _, c := range params["section"] {
		sections = append(sections, mapping.Section(c))
	}
	if len(sections) == 0 {
		return fhir.Errorf(fhir.Invalid, "Parameters.parameter.where(name = 'section')", "name at least one section (%s) the helper is to see", mapping.SectionSystem)
	}
	interactions := []mapping.Interaction{mapping.Read, mapping.WriteOwnNotes}
	for _, sec := range sections {
		if !role.MayBeGranted(sec, mapping.WriteOwnNotes) {
			interactions = []mapping.Interaction{mapping.Read}
		}
	}
	ctx := r.Context()
	now := s.now()
	token, err := newToken()
	if err != nil {
		return err
	}
	var task fhir.Outcome
	var mail InvitationMail
	err = s.tx.Transaction(ctx, func(tx TxStore) error {
		srv := asServer(ctx)
		child, err := tx.Read(srv, "Patient", id)
		if err == nil && !s.mayRead(ctx, tx, "Patient", id) {
			err = fhir.Errorf(fhir.NotFound, "", "Patient/%s is not known", id)
		}
		if err != nil {
			return err
		}
		subject := "Patient/" + id
		teams, err := s.find(srv, tx, "CareTeam", url.Values{"subject": {subject}, "status": {"active"}})
		if err != nil {
			return err
		}
		if len(teams) == 0 {
			return fhir.Errorf(fhir.Unprocessable, "Patient", "Patient/%s has no active team (CareTeam): the dossierhouder sets it up before helpers are invited", id)
		}
		team := teams[0]
		invitee, err := s.invitee(srv, tx, name, email)
		if err != nil {
			return err
		}
		inviter := actorFor(ctx, tx, subject)
		grant := mapping.Grant{
			Status: mapping.ConsentProposed, Patient: subject, DateTime: now.UTC().Format(time.RFC3339),
			Grantee: invitee, Sections: sections, Interactions: interactions,
			Period: mapping.Period{Start: s.today(), End: end},
		}
		if inviter != "" {
			grant.ConsentedBy = []string{inviter}
		}
		if err := grant.Fits(role); err != nil {
			return err
		}
		consent, err := grant.ToFHIR()
		if err != nil {
			return err
		}
		// The proposal is the caller's own: their access for creating a
		// Consent decides whether they may propose it (a parent with
		// authority, the dossierhouder), and step 1 of the workflow adds
		// the approve-change Task.
		cctx, err := s.access(ctx, auth.Create, "Consent")
		if err != nil {
			return err
		}
		parsed, err := s.parser.Parse(consent, "Consent")
		if err != nil {
			return err
		}
		proposed, err := s.governedWrite(cctx, tx, "Consent", "", consent, func(ctx context.Context, st fhir.Store) (fhir.Outcome, error) {
			return st.Create(ctx, fhir.Write{Type: "Consent", Render: parsed.Render, Index: parsed.Index})
		})
		if err != nil {
			return err
		}
		inv := mapping.Invitation{
			Status: mapping.TaskRequested, Progress: mapping.InvitationNotSent,
			Team: "CareTeam/" + team.ID, For: subject, AuthoredOn: now.UTC().Format(time.RFC3339),
			Requester: inviter, Invitee: invitee, Email: email, Role: role,
			Grant:     "Consent/" + proposed.Resource.ID,
			TokenHash: mapping.InvitationTokenHash(token),
			Expires:   now.Add(s.inviteTTL).UTC().Format(time.RFC3339),
		}
		body, err := inv.ToFHIR()
		if err != nil {
			return err
		}
		if task, err = s.createNew(srv, tx, "Task", body); err != nil {
			return err
		}
		info, _ := role.Info()
		mail = InvitationMail{
			To: email, InviteeName: name, InviterName: nameOf(ctx, tx, inviter), ChildName: displayOf(child.Body),
			Role: info.Display, RoleEN: info.DisplayEN, Token: token, Expires: now.Add(s.inviteTTL),
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.sendInvitation(ctx, mail); err != nil {
		// The invitation stays "not-sent"; the inviter sees it on the
		// Task and may invite again. Never log the token.
		s.log.ErrorContext(ctx, "invitation e-mail not sent", slog.String("request_id", RequestID(ctx)),
			slog.String("task", "Task/"+task.Resource.ID), slog.String("error", err.Error()))
		return s.writeResource(w, r, http.StatusCreated, task.Resource)
	}
	err = s.tx.Transaction(ctx, func(tx TxStore) (err error) {
		task, err = s.amend(asServer(ctx), tx, task.Resource, func(m *members) {
			m.set("businessStatus", map[string]any{"coding": []mapping.Coding{mapping.InvitationSent.Coding()}})
			m.set("lastModified", s.now().UTC().Format(time.RFC3339))
		})
		return err
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", s.location(task.Resource))
	return s.writeResource(w, r, http.StatusCreated, task.Resource)
}

// newToken returns a new acceptance token: 32 random bytes, base64url.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("invitation token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// invitee returns the Practitioner with e-mail address email, creating
// one with name when there is none.
func (s *Server) invitee(ctx context.Context, tx TxStore, name, email string) (string, error) {
	found, err := s.find(ctx, tx, "Practitioner", url.Values{"email": {email}, "_sort": {"_id"}})
	if err != nil {
		return "", err
	}
	if len(found) > 0 {
		return "Practitioner/" + found[0].ID, nil
	}
	body, err := mapping.Invitee{Name: name, Email: email}.ToFHIR()
	if err != nil {
		return "", err
	}
	out, err := s.createNew(ctx, tx, "Practitioner", body)
	if err != nil {
		return "", err
	}
	return "Practitioner/" + out.Resource.ID, nil
}

// displayOf returns the name of a person's JSON: the first name's text, or
// its given and family names.
func displayOf(body []byte) string {
	var r struct {
		Name []struct {
			Text   string   `json:"text"`
			Family string   `json:"family"`
			Given  []string `json:"given"`
		} `json:"name"`
	}
	if json.Unmarshal(body, &r) != nil {
		return ""
	}
	for _, n := range r.Name {
		if n.Text != "" {
			return n.Text
		}
		if t := strings.TrimSpace(strings.Join(append(n.Given, n.Family), " ")); t != "" {
			return t
		}
	}
	return ""
}

// nameOf returns the name of the resource ref, read with the server's
// access; "" when there is none.
func nameOf(ctx context.Context, st fhir.Store, ref string) string {
	typ, id, _, ok := splitRef(ref)
	if !ok {
		return ""
	}
	res, err := st.Read(asServer(ctx), typ, id)
	if err != nil {
		return ""
	}
	return displayOf(res.Body)
}

// Invitation is an invitation as the acceptance page shows it.
type Invitation struct {
	Task    string // Task/… of the invitation
	Child   string // the child's name
	Inviter string // who invited
	Invitee string // the invitee's name
	Role    string // the team role in Dutch
	RoleEN  string // and in English
	Expires time.Time
}

// errInvitationGone is the 410 of an expired, accepted or withdrawn
// invitation.
func errInvitationGone(what string) error {
	return fhir.Errorf(fhir.Gone, "Task", "this invitation %s", what)
}

// LookupInvitation returns the invitation whose acceptance token is token.
// It fails with fhir.NotFound for a token of no invitation, and fhir.Gone
// for one that expired (the Task then records it), was accepted or was
// withdrawn. The authorization server's acceptance page calls it, with the
// server's own access.
func (s *Server) LookupInvitation(ctx context.Context, token string) (Invitation, error) {
	var inv Invitation
	var expired *fhir.Resource
	err := s.tx.Transaction(ctx, func(tx TxStore) error {
		task, m, err := s.invitationByToken(ctx, tx, token)
		if err != nil {
			return err
		}
		if err := s.invitationOpen(m); err != nil {
			if m.Progress != mapping.InvitationExpired && fhir.IsKind(err, fhir.Gone) && s.expired(m) {
				expired = &task
			}
			return err
		}
		inv = s.describeInvitation(ctx, tx, task, m)
		return nil
	})
	if expired != nil {
		if merr := s.markExpired(ctx, *expired); merr != nil {
			return Invitation{}, merr
		}
	}
	return inv, err
}

// AcceptInvitation accepts the invitation task (Task/…) for the login
// (system, subject), the identifier the upstream login resolves a user
// with: in one transaction the invitee's Practitioner gets the identifier,
// the child's CareTeam a participant (the invited role, from today to the
// end of the proposed grant), and the Task is completed (accepted). The
// server writes the team here on the invitee's acceptance of an invitation
// a parent with authority or the dossierhouder made. It fails with
// fhir.Gone when the invitation expired, was accepted or was withdrawn,
// fhir.Conflict when the login is linked to another resource already.
func (s *Server) AcceptInvitation(ctx context.Context, task, system, subject string) (Invitation, error) {
	_, id, _, ok := splitRef(task)
	if !ok || system == "" || subject == "" {
		return Invitation{}, fhir.Errorf(fhir.Invalid, "", "no invitation or login to accept it with")
	}
	var inv Invitation
	var expired *fhir.Resource
	err := s.tx.Transaction(ctx, func(tx TxStore) error {
		srv := asServer(ctx)
		cur, err := tx.Read(srv, "Task", id)
		if err != nil {
			return err
		}
		m, err := mapping.InvitationFromFHIR(cur.Body)
		if err != nil {
			return err
		}
		if err := s.invitationOpen(m); err != nil {
			if m.Progress != mapping.InvitationExpired && s.expired(m) {
				expired = &cur
			}
			return err
		}
		// The invitee acts now: the provenance of what follows is theirs.
		actx := auth.WithPrincipal(srv, &auth.Principal{Issuer: system, Subject: subject, FHIRUser: m.Invitee})
		if err := s.bindLogin(actx, tx, m.Invitee, system, subject); err != nil {
			return err
		}
		if err := s.joinTeam(actx, tx, m); err != nil {
			return err
		}
		if _, err := s.amend(actx, tx, cur, func(ms *members) {
			ms.set("status", mapping.TaskCompleted)
			ms.set("businessStatus", map[string]any{"coding": []mapping.Coding{mapping.InvitationAccepted.Coding()}})
			ms.set("lastModified", s.now().UTC().Format(time.RFC3339))
		}); err != nil {
			return err
		}
		inv = s.describeInvitation(ctx, tx, cur, m)
		return nil
	})
	if expired != nil {
		if merr := s.markExpired(ctx, *expired); merr != nil {
			return Invitation{}, merr
		}
	}
	return inv, err
}

// invitationByToken finds the invitation Task of token.
func (s *Server) invitationByToken(ctx context.Context, tx TxStore, token string) (fhir.Resource, mapping.Invitation, error) {
	if token == "" {
		return fhir.Resource{}, mapping.Invitation{}, fhir.Errorf(fhir.NotFound, "", "no invitation has this link")
	}
	found, err := s.find(asServer(ctx), tx, "Task", url.Values{
		"identifier": {mapping.InvitationTokenSystem + "|" + mapping.InvitationTokenHash(token)},
	})
	if err != nil {
		return fhir.Resource{}, mapping.Invitation{}, err
	}
	if len(found) != 1 {
		return fhir.Resource{}, mapping.Invitation{}, fhir.Errorf(fhir.NotFound, "", "no invitation has this link")
	}
	m, err := mapping.InvitationFromFHIR(found[0].Body)
	if err != nil {
		return fhir.Resource{}, mapping.Invitation{}, fhir.Errorf(fhir.NotFound, "", "no invitation has this link")
	}
	return found[0], m, nil
}

// expired reports whether the invitation's link no longer works by date.
func (s *Server) expired(m mapping.Invitation) bool {
	t, err := time.Parse(time.RFC3339, m.Expires)
	return err != nil || !s.now().Before(t)
}

// invitationOpen returns nil for an invitation that can be accepted, and a
// Gone error saying why not otherwise.
func (s *Server) invitationOpen(m mapping.Invitation) error {
	switch {
	case m.Progress == mapping.InvitationAccepted || m.Status == mapping.TaskCompleted:
		return errInvitationGone("was accepted already")
	case m.Progress == mapping.InvitationExpired || s.expired(m):
		return errInvitationGone("has expired")
	case m.Status != mapping.TaskRequested:
		return errInvitationGone("was withdrawn")
	}
	return nil
}

// markExpired records on the invitation Task that its link expired.
func (s *Server) markExpired(ctx context.Context, task fhir.Resource) error {
	err := s.tx.Transaction(ctx, func(tx TxStore) error {
		_, err := s.amend(asServer(ctx), tx, task, func(m *members) {
			m.set("status", mapping.TaskCancelled)
			m.set("businessStatus", map[string]any{"coding": []mapping.Coding{mapping.InvitationExpired.Coding()}})
			m.set("lastModified", s.now().UTC().Format(time.RFC3339))
		})
		return err
	})
	if fhir.IsKind(err, fhir.PreconditionFailed) {
		return nil // someone else recorded it meanwhile
	}
	return err
}

func (s *Server) describeInvitation(ctx context.Context, st fhir.Store, task fhir.Resource, m mapping.Invitation) Invitation {
	info, _ := m.Role.Info()
	exp, _ := time.Parse(time.RFC3339, m.Expires)
	return Invitation{
		Task: "Task/" + task.ID, Child: nameOf(ctx, st, m.For), Inviter: nameOf(ctx, st, m.Requester),
		Invitee: nameOf(ctx, st, m.Invitee), Role: info.Display, RoleEN: info.DisplayEN, Expires: exp,
	}
}

// bindLogin adds the identifier system|subject to the invitee, unless it
// is there already; a login linked to another resource is a Conflict.
func (s *Server) bindLogin(ctx context.Context, tx TxStore, invitee, system, subject string) error {
	for _, typ := range []string{"Person", "RelatedPerson", "Practitioner", "Patient"} {
		found, err := s.find(ctx, tx, typ, url.Values{"identifier": {escapeToken(system) + "|" + escapeToken(subject)}})
		if err != nil {
			return err
		}
		for _, f := range found {
			if typ+"/"+f.ID != invitee {
				return fhir.Errorf(fhir.Conflict, "", "this login is linked to another account already: sign in with the account the invitation is for")
			}
			return nil
		}
	}
	_, id, _, _ := splitRef(invitee)
	cur, err := tx.Read(ctx, "Practitioner", id)
	if err != nil {
		return err
	}
	_, err = s.amend(ctx, tx, cur, func(m *members) {
		var ids []map[string]any
		m.get("identifier", &ids)
		m.set("identifier", append(ids, map[string]any{"system": system, "value": subject}))
	})
	return err
}

// escapeToken escapes a token search value's parts.
func escapeToken(v string) string {
	return strings.NewReplacer(`\`, `\\`, `|`, `\|`, `$`, `\$`, `,`, `\,`).Replace(v)
}

// joinTeam adds the invitee to the child's team with the invited role,
// from today until the end of the proposed grant.
func (s *Server) joinTeam(ctx context.Context, tx TxStore, m mapping.Invitation) error {
	_, teamID, _, ok := splitRef(m.Team)
	if !ok {
		return fhir.Errorf(fhir.Unprocessable, "Task.focus", "the invitation names no team")
	}
	team, err := tx.Read(ctx, "CareTeam", teamID)
	if err != nil {
		return fhir.Errorf(fhir.Conflict, "Task.focus", "the child's team %s no longer exists", m.Team)
	}
	period := map[string]string{"start": s.today()}
	if _, gid, _, ok := splitRef(m.Grant); ok {
		if c, err := tx.Read(ctx, "Consent", gid); err == nil {
			if g, err := mapping.GrantFromFHIR(c.Body); err == nil && g.Period.End != "" {
				period["end"] = g.Period.End
			}
		}
	}
	_, err = s.amend(ctx, tx, team, func(ms *members) {
		var participants []json.RawMessage
		ms.get("participant", &participants)
		p, err := json.Marshal(map[string]any{
			"role":   []map[string]any{{"coding": []mapping.Coding{m.Role.Coding()}}},
			"member": map[string]string{"reference": m.Invitee},
			"period": period,
		})
		if err != nil {
			ms.err = err
			return
		}
		ms.set("participant", append(participants, p))
	})
	return err
}

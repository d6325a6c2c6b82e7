package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/digitaleouder/ouder/auth"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rawjson"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/mapping"
)

// The approval workflow (docs/approval.md, DOMAIN.md "Approval").
//
// Agreements, plans, goals and Consents (the types with a
// mapping.Lifecycle) take effect only when the dossierhouder approves them.
// Every write of such a type by a caller who is not unrestricted passes
// governedWrite, in one database transaction with whatever else it causes:
//
//   - A proposal (written in its proposed status, over nothing or over an
//     earlier proposal) is checked against the request's Write rules as any
//     write; unless the caller may approve it themselves (Access.Approve
//     admits it), the server then creates the approve-change Task for the
//     dossierhouder of the child's team, or moves the open one on to the
//     new version.
//   - Deleting a proposal withdraws it: its open Task is cancelled.
//   - Anything else (a write in another status, a change or delete of an
//     approved version) is checked against Access.Approve instead of
//     Access.Write: only the dossierhouder does it. Everyone else gets a 403
//     whose OperationOutcome says how to propose the change instead.
//   - GDPR withdrawal: a performer of an active Consent may set it to
//     inactive (and change nothing else).
//
// $approve and $reject on the Task decide, again in one transaction; every
// change is a new version, so history keeps them all.

// governed reports whether a write of typ under ctx's access goes through
// the approval workflow: typ has a lifecycle and the caller is not the
// server itself or an operator (whose writes, such as loading the demo
// family, carry their own Tasks).
func governed(ctx context.Context, typ string) bool {
	if _, ok := mapping.LifecycleOf(typ); !ok {
		return false
	}
	return !search.AccessFrom(ctx).IsUnrestricted()
}

// storeWrite is one write of a resource to st; ctx carries the access it
// is checked against.
type storeWrite func(ctx context.Context, st fhir.Store) (fhir.Outcome, error)

// governedWrite runs write, under the approval workflow when typ is
// governed: in tx, or in a transaction of its own when tx is nil. id is
// the resource written ("" for a create), body the new version (nil for a
// delete).
func (s *Server) governedWrite(ctx context.Context, tx TxStore, typ, id string, body []byte, write storeWrite) (fhir.Outcome, error) {
	if !governed(ctx, typ) {
		if tx != nil {
			return write(ctx, tx)
		}
		return write(ctx, s.store)
	}
	if tx != nil {
		return s.guarded(ctx, tx, typ, id, body, write)
	}
	var out fhir.Outcome
	err := s.tx.Transaction(ctx, func(tx TxStore) (err error) {
		out, err = s.guarded(ctx, tx, typ, id, body, write)
		return err
	})
	return out, err
}

// guarded is governedWrite inside tx for a governed type.
func (s *Server) guarded(ctx context.Context, tx TxStore, typ, id string, body []byte, write storeWrite) (fhir.Outcome, error) {
	lc, _ := mapping.LifecycleOf(typ)
	a := search.AccessFrom(ctx)
	if a == nil {
		a = &search.Access{} // grants nothing; the store refuses the write
	}
	newStatus := ""
	if body != nil {
		newStatus = statusIn(body, lc)
	}
	var cur *fhir.Resource
	curStatus := ""
	if id != "" {
		if res, err := tx.Read(asServer(ctx), typ, id); err == nil {
			if !s.mayRead(ctx, tx, typ, id) {
				// Replacing what the caller cannot see: the store
				// answers 404 without revealing anything.
				return write(ctx, tx)
			}
			cur, curStatus = &res, statusIn(res.Body, lc)
		}
	}
	switch {
	case body == nil && cur == nil:
		return write(ctx, tx) // deleting nothing: the store says so
	case body != nil && newStatus == lc.Proposed && (cur == nil || curStatus == lc.Proposed):
		out, err := write(ctx, tx)
		if err != nil || (cur == nil && !out.Created) || (cur != nil && out.Resource.VersionID == cur.VersionID) {
			return out, err // refused, or nothing written (a conditional create that matched)
		}
		if mayApprove(ctx, tx, a, typ, out.Resource.ID) {
			return out, nil // the dossierhouder's own draft: nobody else decides on it
		}
		return out, s.requestApproval(ctx, tx, lc, out.Resource)
	case body == nil && cur != nil && curStatus == lc.Proposed:
		out, err := write(ctx, tx)
		if err != nil || out.Unchanged {
			return out, err
		}
		return out, s.withdrawRequests(ctx, tx, typ+"/"+id)
	case body != nil && cur != nil && typ == "Consent" && curStatus == mapping.ConsentActive &&
		newStatus == mapping.ConsentInactive && isWithdrawal(ctx, tx, cur.Body, body):
		// GDPR: whoever gave a consent may withdraw it at any time.
		return write(asServer(ctx), tx)
	}
	if len(a.Approve) > 0 {
		approver := &search.Access{Read: a.Read, Write: a.Approve, Approve: a.Approve, Basis: a.Basis}
		out, err := write(search.WithAccess(ctx, approver), tx)
		if !fhir.IsKind(err, fhir.Forbidden) {
			return out, err
		}
	}
	return fhir.Outcome{}, proposeInstead(lc, typ, newStatus, curStatus, body == nil)
}

// proposeInstead is the 403 for a write only the dossierhouder may make:
// it says how to propose the change.
func proposeInstead(lc mapping.Lifecycle, typ, newStatus, curStatus string, isDelete bool) error {
	how := fmt.Sprintf("propose it instead: write the %s with %s %q; the server then asks the dossierhouder to approve it (an approve-change Task)", typ, lc.Element, lc.Proposed)
	switch {
	case typ == "CarePlan":
		how += "; to change an active agreement or plan, create a new CarePlan with status \"draft\" whose replaces names it, and approval revokes the old one"
	case typ == "Consent":
		how += fmt.Sprintf("; to change an active Consent, create a new Consent with status \"proposed\" and the extension %s naming it, and approval makes the old one inactive; whoever gave a Consent (Consent.performer) may also withdraw it by setting its status to \"inactive\"", mapping.ReplacesExtension)
	case typ == "Goal":
		how += "; to change an active goal, propose a new Goal"
	}
	var what string
	switch {
	case isDelete:
		what = fmt.Sprintf("only the dossierhouder deletes a %s that is %s", typ, cmpOr(curStatus, "not a proposal"))
	case curStatus != "" && curStatus != lc.Proposed:
		what = fmt.Sprintf("only the dossierhouder changes a %s that is %s", typ, curStatus)
	default:
		what = fmt.Sprintf("only the dossierhouder writes a %s with %s %q", typ, lc.Element, newStatus)
	}
	return fhir.Errorf(fhir.Forbidden, lc.Path(), "%s: %s", what, how)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// asServer returns ctx with the server's own access: for what the server
// writes as a consequence of an allowed request (Tasks, decisions,
// acceptance), with the caller kept in the context for provenance.
func asServer(ctx context.Context) context.Context {
	return search.WithAccess(ctx, search.Unrestricted())
}

// mayRead reports whether the caller may read typ/id (their read
// decision, judged by the store inside tx).
func (s *Server) mayRead(ctx context.Context, tx TxStore, typ, id string) bool {
	rctx, err := s.access(ctx, auth.Read, typ)
	if err != nil {
		return false
	}
	_, err = tx.Read(rctx, typ, id)
	return err == nil
}

// mayApprove reports whether a's Approve rules admit the current version
// of typ/id: the store's own read path judges it, inside tx.
func mayApprove(ctx context.Context, tx TxStore, a *search.Access, typ, id string) bool {
	if a.IsUnrestricted() {
		return true
	}
	if a == nil || len(a.Approve) == 0 {
		return false
	}
	_, err := tx.Read(search.WithAccess(ctx, &search.Access{Read: a.Approve}), typ, id)
	return err == nil
}

// statusIn returns the lifecycle status of a resource's JSON, "" if none.
func statusIn(body []byte, lc mapping.Lifecycle) string {
	members, err := rawjson.Members(body)
	if err != nil {
		return ""
	}
	v, _ := rawjson.String(members, lc.Element)
	return v
}

// isWithdrawal reports whether next is cur with only its status changed
// and the caller among cur's performers.
func isWithdrawal(ctx context.Context, tx TxStore, cur, next []byte) bool {
	var c struct {
		Performer []struct {
			Reference string `json:"reference"`
		} `json:"performer"`
	}
	if json.Unmarshal(cur, &c) != nil {
		return false
	}
	ids := identities(ctx, tx)
	performer := slices.ContainsFunc(c.Performer, func(p struct {
		Reference string `json:"reference"`
	}) bool {
		return slices.Contains(ids, p.Reference)
	})
	return performer && sameBut(cur, next, "status", "meta", "id", "text")
}

// sameBut reports whether two resources' JSON are equal but for the
// members named.
func sameBut(a, b []byte, skip ...string) bool {
	var ma, mb map[string]any
	if json.Unmarshal(a, &ma) != nil || json.Unmarshal(b, &mb) != nil {
		return false
	}
	for _, k := range skip {
		delete(ma, k)
		delete(mb, k)
	}
	ja, _ := json.Marshal(ma)
	jb, _ := json.Marshal(mb)
	return string(ja) == string(jb)
}

// identities returns the caller's identities: the fhirUser and, for a
// Person, what Person.link names.
func identities(ctx context.Context, st fhir.Store) []string {
	p := auth.PrincipalFrom(ctx)
	if p == nil || p.FHIRUser == "" {
		return nil
	}
	out := []string{p.FHIRUser}
	if typ, id, _ := strings.Cut(p.FHIRUser, "/"); typ == "Person" {
		res, err := st.Read(asServer(ctx), typ, id)
		if err != nil {
			return out
		}
		var person struct {
			Link []struct {
				Target struct {
					Reference string `json:"reference"`
				} `json:"target"`
			} `json:"link"`
		}
		if json.Unmarshal(res.Body, &person) == nil {
			for _, l := range person.Link {
				out = append(out, l.Target.Reference)
			}
		}
	}
	return out
}

// actorFor returns the caller's identity that acts for subject (Patient/…
// or Group/…): the RelatedPerson of a parent's Person for that child (any
// of them for a family), else a fhirUser a Task or Consent may name; ""
// when there is none (a backend client).
func actorFor(ctx context.Context, st fhir.Store, subject string) string {
	ids := identities(ctx, st)
	if len(ids) == 0 {
		return ""
	}
	for _, ref := range ids[1:] {
		typ, id, _ := strings.Cut(ref, "/")
		switch typ {
		case "RelatedPerson":
			res, err := st.Read(asServer(ctx), typ, id)
			if err != nil {
				continue
			}
			var rp struct {
				Patient struct {
					Reference string `json:"reference"`
				} `json:"patient"`
			}
			if json.Unmarshal(res.Body, &rp) == nil && (rp.Patient.Reference == subject || strings.HasPrefix(subject, "Group/")) {
				return ref
			}
		case "Patient":
			if ref == subject {
				return ref
			}
		case "Practitioner":
			return ref
		}
	}
	switch typ, _, _ := strings.Cut(ids[0], "/"); typ {
	case "Patient", "RelatedPerson", "Practitioner", "PractitionerRole":
		return ids[0]
	}
	return ""
}

// subjectOf returns whose record a lifecycle resource belongs to: the
// subject of a CarePlan or Goal, the patient of a Consent.
func subjectOf(body []byte, typ string) string {
	var r struct {
		Subject struct {
			Reference string `json:"reference"`
		} `json:"subject"`
		Patient struct {
			Reference string `json:"reference"`
		} `json:"patient"`
	}
	if json.Unmarshal(body, &r) != nil {
		return ""
	}
	if typ == "Consent" {
		return r.Patient.Reference
	}
	return r.Subject.Reference
}

// find runs a search of typ with params in st under ctx's access and
// returns up to 100 matches.
func (s *Server) find(ctx context.Context, st search.Searcher, typ string, params url.Values) ([]fhir.Resource, error) {
	parser := *s.searchParser
	parser.Registry = s.registry()
	params.Set("_count", "100")
	q, err := parser.Parse([]string{typ}, params, true)
	if err != nil {
		return nil, fmt.Errorf("workflow search %s: %w", typ, err)
	}
	res, err := st.Search(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("workflow search %s: %w", typ, err)
	}
	return res.Matches, nil
}

// today is the server's date as a FHIR date.
func (s *Server) today() string { return s.now().Format(time.DateOnly) }

// covers reports whether p holds on day (a FHIR date; open ends are open).
func covers(p mapping.Period, day string) bool {
	start, end := p.Start, p.End
	if len(start) > 10 {
		start = start[:10]
	}
	if len(end) > 10 {
		end = end[:10]
	}
	return (start == "" || start <= day) && (end == "" || day <= end)
}

// dossierhouderOf returns the dossierhouder of the teams of subject: the
// child's active CareTeam (for a family Group, those of its children);
// "" when none is found.
func (s *Server) dossierhouderOf(ctx context.Context, tx TxStore, subject string) (string, error) {
	srv := asServer(ctx)
	children := []string{subject}
	if id, ok := strings.CutPrefix(subject, "Group/"); ok {
		children = nil
		g, err := tx.Read(srv, "Group", id)
		if err != nil {
			return "", nil
		}
		var group struct {
			Member []struct {
				Entity struct {
					Reference string `json:"reference"`
				} `json:"entity"`
			} `json:"member"`
		}
		if json.Unmarshal(g.Body, &group) == nil {
			for _, m := range group.Member {
				if strings.HasPrefix(m.Entity.Reference, "Patient/") {
					children = append(children, m.Entity.Reference)
				}
			}
		}
	}
	for _, child := range children {
		if !strings.HasPrefix(child, "Patient/") {
			continue
		}
		teams, err := s.find(srv, tx, "CareTeam", url.Values{"subject": {child}, "status": {"active"}})
		if err != nil {
			return "", err
		}
		for _, t := range teams {
			team, err := mapping.TeamFromFHIR(t.Body)
			if err != nil {
				continue
			}
			for _, m := range team.MembersWithRole(mapping.Dossierhouder) {
				if covers(m.Period, s.today()) {
					return m.Member, nil
				}
			}
		}
	}
	return "", nil
}

// openRequests returns the open approve-change Tasks of focus (Type/id, any
// version).
func (s *Server) openRequests(ctx context.Context, tx TxStore, focus string) ([]fhir.Resource, error) {
	return s.find(asServer(ctx), tx, "Task", url.Values{
		"focus":  {focus},
		"code":   {mapping.TaskCodeSystem + "|" + string(mapping.TaskApproveChange)},
		"status": {mapping.TaskRequested},
	})
}

// versionRef is the reference to one version of a resource.
func versionRef(res fhir.Resource) string {
	return res.Type + "/" + res.ID + "/_history/" + strconv.FormatInt(res.VersionID, 10)
}

// requestApproval creates the approve-change Task for a proposal just
// written, or points the open one at this new version.
func (s *Server) requestApproval(ctx context.Context, tx TxStore, lc mapping.Lifecycle, proposal fhir.Resource) error {
	srv := asServer(ctx)
	open, err := s.openRequests(ctx, tx, proposal.Type+"/"+proposal.ID)
	if err != nil {
		return err
	}
	if len(open) > 0 {
		_, err := s.amend(srv, tx, open[0], func(m *members) {
			m.set("focus", map[string]string{"reference": versionRef(proposal)})
		})
		return err
	}
	subject := subjectOf(proposal.Body, proposal.Type)
	owner, err := s.dossierhouderOf(ctx, tx, subject)
	if err != nil {
		return err
	}
	cr := mapping.ChangeRequest{
		Status:     mapping.TaskRequested,
		Focus:      versionRef(proposal),
		AuthoredOn: s.now().UTC().Format(time.RFC3339),
		Requester:  actorFor(ctx, tx, subject),
		Owner:      owner,
	}
	if strings.HasPrefix(subject, "Patient/") || strings.HasPrefix(subject, "Group/") {
		cr.For = subject
	}
	body, err := cr.ToFHIR()
	if err != nil {
		return fmt.Errorf("approve-change task for %s: %w", cr.Focus, err)
	}
	_, err = s.createNew(srv, tx, "Task", body)
	return err
}

// withdrawRequests cancels the open approve-change Tasks of focus.
func (s *Server) withdrawRequests(ctx context.Context, tx TxStore, focus string) error {
	open, err := s.openRequests(ctx, tx, focus)
	if err != nil {
		return err
	}
	for _, t := range open {
		if _, err := s.amend(asServer(ctx), tx, t, func(m *members) {
			m.set("status", mapping.TaskCancelled)
			m.set("lastModified", s.now().UTC().Format(time.RFC3339))
		}); err != nil {
			return err
		}
	}
	return nil
}

// createNew validates body as a new resource of typ and creates it in st.
func (s *Server) createNew(ctx context.Context, st fhir.Store, typ string, body []byte) (fhir.Outcome, error) {
	res, err := s.parser.Parse(body, typ)
	if err != nil {
		return fhir.Outcome{}, fmt.Errorf("the server's own %s does not validate: %w", typ, err)
	}
	return st.Create(ctx, fhir.Write{Type: typ, Render: res.Render, Index: res.Index})
}

// members is a resource's JSON as members, edited in order.
type members struct {
	m   []rawjson.Member
	err error
}

// set gives key the JSON of v, in place or at the end.
func (m *members) set(key string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		m.err = err
		return
	}
	for i := range m.m {
		if m.m[i].Key == key {
			m.m[i].Value = b
			return
		}
	}
	m.m = append(m.m, rawjson.Member{Key: key, Value: b})
}

// get decodes the value of key into v; false when absent.
func (m *members) get(key string, v any) bool {
	raw := rawjson.Get(m.m, key)
	return raw != nil && json.Unmarshal(raw, v) == nil
}

// amend writes a new version of cur with edit applied, conditional on cur
// being the current version (a concurrent change answers 412, and the
// transaction rolls back). The result is validated as any update.
func (s *Server) amend(ctx context.Context, st fhir.Store, cur fhir.Resource, edit func(m *members)) (fhir.Outcome, error) {
	ms, err := rawjson.Members(cur.Body)
	if err != nil {
		return fhir.Outcome{}, fmt.Errorf("amend %s/%s: %w", cur.Type, cur.ID, err)
	}
	m := &members{m: ms}
	edit(m)
	if m.err != nil {
		return fhir.Outcome{}, fmt.Errorf("amend %s/%s: %w", cur.Type, cur.ID, m.err)
	}
	res, err := s.parser.Parse(rawjson.Object(m.m), cur.Type)
	if err != nil {
		return fhir.Outcome{}, fmt.Errorf("amend %s/%s: %w", cur.Type, cur.ID, err)
	}
	return st.Update(ctx, fhir.Write{Type: cur.Type, ID: cur.ID, IfMatch: cur.VersionID, Render: res.Render, Index: res.Index})
}

// splitRef splits "Type/id" or "Type/id/_history/v" (v 0 when absent).
func splitRef(ref string) (typ, id string, version int64, ok bool) {
	parts := strings.Split(ref, "/")
	switch {
	case len(parts) == 2 && parts[0] != "" && parts[1] != "":
		return parts[0], parts[1], 0, true
	case len(parts) == 4 && parts[2] == "_history":
		v, err := strconv.ParseInt(parts[3], 10, 64)
		if err != nil || v < 1 {
			return "", "", 0, false
		}
		return parts[0], parts[1], v, true
	}
	return "", "", 0, false
}

// replacedBy returns what an approved proposal replaces: CarePlan.replaces,
// or the ReplacesExtension of a Consent.
func replacedBy(body []byte, typ string) []string {
	var r struct {
		Replaces []struct {
			Reference string `json:"reference"`
		} `json:"replaces"`
		Extension []struct {
			URL            string `json:"url"`
			ValueReference struct {
				Reference string `json:"reference"`
			} `json:"valueReference"`
		} `json:"extension"`
	}
	if json.Unmarshal(body, &r) != nil {
		return nil
	}
	var out []string
	switch typ {
	case "CarePlan":
		for _, x := range r.Replaces {
			out = append(out, x.Reference)
		}
	case "Consent":
		for _, x := range r.Extension {
			if x.URL == mapping.ReplacesExtension {
				out = append(out, x.ValueReference.Reference)
			}
		}
	}
	return out
}

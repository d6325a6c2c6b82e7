package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/digitaleouder/ouder/fhir"
)

// This file gives the access policy (auth/policy) what it decides with:
// the resources that say who a caller is and what they may see, read
// together in one statement, and the notifications that tell every
// instance when one of them changed.

// PolicyChannel is the PostgreSQL notification channel on which every
// committed write of a PolicyTypes resource is announced (migration 008, a
// trigger on resources): the payload is the resource type.
const PolicyChannel = "ouder_policy"

// PolicyTypes are the resource types the access policy's facts are made
// of: a write of one of them may change what someone may see.
var PolicyTypes = []string{"CareTeam", "Consent", "Group", "Organization", "Patient", "Person", "Practitioner", "PractitionerRole", "RelatedPerson"}

// PolicyResources returns the current (not deleted) resources the access
// decision for a caller rests on, read in one statement, unrestricted (it
// is the server's own read): the callers refs themselves (their fhirUser,
// the Organization behind a backend client; "Type/id"); the resources a
// Person among them links to (Person.link) and the PractitionerRoles of a
// Practitioner among those (the identities); the CareTeams one of the
// identities takes part in (CareTeam.participant); the Consents whose
// provision.actor is an identity or one of those CareTeams; the Patients
// that are those teams' and Consents' subjects, or identities; and the
// Groups that have one of those Patients as a member. Malformed refs are
// ignored. Errors are database errors.
func (s *Store) PolicyResources(ctx context.Context, refs []string) (out []fhir.Resource, err error) {
	defer wrap(&err, "postgres.PolicyResources")
	var types, ids []string
	for _, ref := range refs {
		t, id, ok := strings.Cut(ref, "/")
		if ok && t != "" && id != "" {
			types, ids = append(types, t), append(ids, id)
		}
	}
	if len(types) == 0 {
		return nil, nil
	}
	c := &compiler{base: s.Base}
	start := fmt.Sprintf("SELECT * FROM unnest(%s::text[], %s::text[]) AS s(type, id)", c.arg(types), c.arg(ids))
	key := func(typ, code string) string { return c.arg(fhir.ParamKey(typ, code)) }
	sql := `WITH start(type, id) AS (` + start + `),
	linked AS (
		SELECT l.type, l.id FROM start s
		JOIN resources p ON p.type = 'Person' AND p.id = s.id AND NOT p.deleted
		JOIN idx_reference l ON l.rid = p.rid AND l.param = ` + key("Person", "link") + ` AND ` + c.local("l") + `
		WHERE s.type = 'Person'),
	ident AS (SELECT type, id FROM start UNION SELECT type, id FROM linked),
	idents AS (
		SELECT type, id FROM ident
		UNION
		SELECT 'PractitionerRole', pr.id FROM ident i
		JOIN idx_reference x ON x.id = i.id AND x.type = 'Practitioner' AND x.param = ` + key("PractitionerRole", "practitioner") + `
		JOIN resources pr ON pr.rid = x.rid AND NOT pr.deleted
		WHERE i.type = 'Practitioner' AND ` + c.local("x") + `),
	teams AS (
		SELECT DISTINCT x.rid FROM idents i
		JOIN idx_reference x ON x.id = i.id AND x.type = i.type AND x.param = ` + key("CareTeam", "participant") + `
		WHERE ` + c.local("x") + `),
	actors AS (
		SELECT type, id FROM idents
		UNION SELECT 'CareTeam', t.id FROM resources t JOIN teams USING (rid)),
	consents AS (
		SELECT DISTINCT x.rid FROM actors a
		JOIN idx_reference x ON x.id = a.id AND x.type = a.type AND x.param = ` + key("Consent", "actor") + `
		WHERE ` + c.local("x") + `),
	children AS (
		SELECT x.id FROM idx_reference x
		WHERE x.rid IN (SELECT rid FROM teams UNION SELECT rid FROM consents)
			AND x.param IN (` + key("CareTeam", "subject") + `, ` + key("Consent", "patient") + `)
			AND x.type = 'Patient' AND ` + c.local("x") + `
		UNION SELECT id FROM idents WHERE type = 'Patient'),
	groups AS (
		SELECT DISTINCT x.rid FROM children ch
		JOIN idx_reference x ON x.id = ch.id AND x.type = 'Patient' AND x.param = ` + key("Group", "member") + `
		WHERE ` + c.local("x") + `)
	SELECT r.type, r.id, r.version, r.last_updated, r.body FROM resources r
	WHERE NOT r.deleted AND (
		r.rid IN (SELECT rid FROM teams UNION ALL SELECT rid FROM consents UNION ALL SELECT rid FROM groups)
		OR (r.type, r.id) IN (SELECT type, id FROM idents)
		OR (r.type = 'Patient' AND r.id IN (SELECT id FROM children)))`
	rows, err := s.db().Query(ctx, sql, c.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r fhir.Resource
		if err := rows.Scan(&r.Type, &r.ID, &r.VersionID, &r.LastUpdated, &r.Body); err != nil {
			return nil, err
		}
		r.LastUpdated = r.LastUpdated.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// ListenPolicy listens on PolicyChannel on a connection of its own. Once
// listening it calls ready (from then on no change can be missed), then
// changed with the resource type of every notification, until ctx ends (it returns ctx's error)
// or the connection fails (it returns that error). A connection idle for
// 30 seconds is pinged, so a dead one is noticed.
func (s *Store) ListenPolicy(ctx context.Context, ready func(context.Context) error, changed func(typ string)) (err error) {
	defer wrap(&err, "postgres.ListenPolicy")
	return listen(ctx, s.pool, PolicyChannel, ready, func(typ string) error {
		changed(typ)
		return nil
	})
}

// policyWritten tells OnPolicyChange, after commit, that a resource of type
// typ was written by this process; inside Transaction it is told when the
// transaction commits.
func (s *Store) policyWritten(typ string) {
	if !slices.Contains(PolicyTypes, typ) {
		return
	}
	if s.policyTouched != nil {
		*s.policyTouched = true
		return
	}
	if f := s.OnPolicyChange; f != nil {
		f()
	}
}

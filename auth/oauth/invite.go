package oauth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"time"
)

// Invitations is the FHIR side of accepting an invitation into a child's
// team: cmd/ouderd wires it to the REST layer, which holds the invitation
// Tasks. The authorization server shows the invitation, has the invitee
// sign in, and hands over the login's identifier.
type Invitations interface {
	// Invitation returns the invitation whose link carries token. It
	// returns ErrInvitationUnknown for a token of no invitation and
	// ErrInvitationGone for one that expired, was accepted or was
	// withdrawn.
	Invitation(ctx context.Context, token string) (Invitation, error)
	// Accept binds the login (identifier system|subject) to the invitee
	// and adds them to the child's team. It returns ErrInvitationGone as
	// Invitation does, ErrLoginTaken when the login belongs to another
	// account already.
	Accept(ctx context.Context, invitation, system, subject string) (Invitation, error)
}

// Invitation is what the acceptance page shows of an invitation.
type Invitation struct {
	ID       string // Task/… of the invitation
	Child    string
	Inviter  string
	Invitee  string
	Role     string // Dutch
	RoleEN   string
	Expires  time.Time
	Accepted bool
}

// Errors of Invitations.
var (
	ErrInvitationUnknown = errors.New("no invitation has this link")
	ErrInvitationGone    = errors.New("the invitation expired, was accepted or was withdrawn")
	ErrLoginTaken        = errors.New("the login is linked to another account")
)

// DevIdentifierSystem is the identifier system of accounts made through the
// development login of an invitation (development mode only): the value is
// the account name typed on the invitation page, and the development login
// page signs such an account in again.
const DevIdentifierSystem = "https://digitaleouder.nl/fhir/NamingSystem/development-login"

var devAccount = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// invitePage shows the invitation of the link {issuer}/invite/{token} and
// how to sign in to accept it; an unknown link is a 404 page, an expired
// or used one a 410 page. The token is not kept: the page's interaction
// remembers the invitation's Task.
func (s *Server) invitePage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Invitations == nil {
		s.message(w, r, http.StatusNotFound, "Onbekende uitnodiging", "Unknown invitation",
			"Deze server verstuurt geen uitnodigingen.", "This server sends no invitations.")
		return
	}
	inv, err := s.cfg.Invitations.Invitation(r.Context(), r.PathValue("token"))
	if s.invitationError(w, r, err) {
		return
	}
	browser := s.browserID(w, r)
	id := random(32)
	ia := &interaction{Browser: handle(browser), CSRF: random(32), Invite: inv.ID, RequestedAt: s.now().UTC().Truncate(time.Second)}
	if err := s.saveInteraction(r.Context(), id, ia, true); err != nil {
		s.internalError(w, r, err)
		return
	}
	p := page{Title: "Uitnodiging", Interaction: id, CSRF: ia.CSRF, UserName: inv.Invitee, PatientName: inv.Child,
		Inviter: cmpOr(inv.Inviter, "Een ouder of de dossierhouder"), Role: inv.Role, RoleEN: inv.RoleEN,
		Expires: inv.Expires.Local().Format("2-1-2006 15:04")}
	for _, name := range sortedKeys(s.upstreams) {
		p.Upstreams = append(p.Upstreams, s.upstreams[name].Upstream)
	}
	s.render(w, r, http.StatusOK, "invite.html", p)
}

// invitationError shows the page for an Invitations error and reports
// whether there was one.
func (s *Server) invitationError(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrInvitationUnknown):
		s.message(w, r, http.StatusNotFound, "Onbekende uitnodiging", "Unknown invitation",
			"Deze link hoort niet bij een uitnodiging. Controleer of u de hele link uit de e-mail gebruikt.",
			"This link belongs to no invitation. Check that you used the whole link from the e-mail.")
	case errors.Is(err, ErrInvitationGone):
		s.message(w, r, http.StatusGone, "Uitnodiging niet meer geldig", "Invitation no longer valid",
			"Deze uitnodiging is verlopen, al geaccepteerd of ingetrokken. Vraag degene die u uitnodigde om een nieuwe uitnodiging.",
			"This invitation has expired, was accepted already or was withdrawn. Ask whoever invited you for a new invitation.")
	case errors.Is(err, ErrLoginTaken):
		s.message(w, r, http.StatusConflict, "Inlog al gekoppeld", "Sign-in already linked",
			"Deze inlog is al gekoppeld aan een ander account. Log in met een andere inlog, of neem contact op met de dossierhouder.",
			"This sign-in is linked to another account already. Sign in with another one, or contact the file holder.")
	default:
		s.internalError(w, r, err)
	}
	return true
}

// acceptInvitation ends the interaction and accepts its invitation for the
// login system|subject.
func (s *Server) acceptInvitation(w http.ResponseWriter, r *http.Request, id string, ia *interaction, system, subject string) {
	if !s.useInteraction(w, r, id) {
		return
	}
	inv, err := s.cfg.Invitations.Accept(r.Context(), ia.Invite, system, subject)
	if s.invitationError(w, r, err) {
		return
	}
	s.log.InfoContext(r.Context(), "oauth: invitation accepted", slog.String("invitation", inv.ID), slog.String("idp", system))
	s.message(w, r, http.StatusOK, "Welkom in het team", "Welcome to the team",
		"U bent nu "+inv.Role+" in het team rond "+inv.Child+". Voortaan logt u in via de app die u gebruikt.",
		"You are now "+inv.RoleEN+" in the team around "+inv.Child+". From now on, sign in through the app you use.")
}

// devInviteLogin is the development login of an invitation page: the
// typed account name is the login's subject.
func (s *Server) devInviteLogin(w http.ResponseWriter, r *http.Request, id string, ia *interaction) {
	account := r.PostForm.Get("dev_account")
	if !s.cfg.Dev || !devAccount.MatchString(account) {
		s.message(w, r, http.StatusBadRequest, "Ongeldig verzoek", "Invalid request",
			"Kies een accountnaam van letters, cijfers en . _ @ -.", "Choose an account name of letters, digits and . _ @ -.")
		return
	}
	s.acceptInvitation(w, r, id, ia, DevIdentifierSystem, account)
}

// devAccountLogin signs in, on the development login, an account that an
// accepted invitation bound to DevIdentifierSystem|account.
func (s *Server) devAccountLogin(w http.ResponseWriter, r *http.Request, id string, ia *interaction, account string) {
	ref, err := bindUser(r.Context(), s.cfg.Lookup, DevIdentifierSystem, account)
	if errors.Is(err, errNoAccount) || errors.Is(err, errAmbiguousAccount) {
		s.message(w, r, http.StatusForbidden, "Geen toegang", "No access",
			"Dit ontwikkelaccount is niet gekoppeld aan een dossier. Accepteer eerst een uitnodiging.",
			"This development account is not linked to a record. Accept an invitation first.")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	ia.FHIRUser, ia.IDP, ia.AuthTime = ref, "development", s.now().UTC().Truncate(time.Second)
	s.log.InfoContext(r.Context(), "oauth: development account login", slog.String("fhir_user", ref), slog.String("client_id", ia.ClientID))
	s.afterLogin(w, r, id, ia)
}

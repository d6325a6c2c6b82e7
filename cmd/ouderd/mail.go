package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/digitaleouder/ouder/auth/mail"
	"github.com/digitaleouder/ouder/auth/oauth"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/fhir/rest"
)

// MailConfig is the configuration of outgoing e-mail (invitations).
type MailConfig struct {
	SMTPURL string // -smtp-url, OUDERD_SMTP_URL
	From    string // -mail-from, OUDERD_MAIL_FROM
}

// registerMailFlags reads the mail environment variables into c and
// declares its flags on fs.
func (c *MailConfig) registerMailFlags(fs *flag.FlagSet, getenv func(string) string) {
	if v := getenv("OUDERD_SMTP_URL"); v != "" {
		c.SMTPURL = v
	}
	if v := getenv("OUDERD_MAIL_FROM"); v != "" {
		c.From = v
	}
	fs.StringVar(&c.SMTPURL, "smtp-url", c.SMTPURL, "SMTP server for invitation e-mail: smtp://user:password@host:port (STARTTLS), smtps://… (TLS) or smtp://host:port?tls=none; empty: no e-mail (in -dev mode: the outbox <data-dir>/outbox)")
	fs.StringVar(&c.From, "mail-from", c.From, "sender address of the server's e-mail, e.g. \"Digitale Ouder <noreply@example.org>\" (required with -smtp-url)")
}

// mailSender returns the configured sender: SMTP, the development outbox,
// or nil (no e-mail; $invite answers 501).
func (m *Main) mailSender() (mail.Sender, error) {
	c := m.Config.Mail
	switch {
	case c.SMTPURL != "":
		s, err := mail.NewSMTP(c.SMTPURL, c.From)
		if err != nil {
			return nil, err
		}
		if u, err := url.Parse(c.SMTPURL); err == nil {
			m.Logger.Info("e-mail through SMTP", slog.String("smtp", u.Redacted()))
		}
		return s, nil
	case m.Config.OAuth.Dev:
		dir := filepath.Join(m.Config.DataDir, "outbox")
		m.Logger.Info("development mode: e-mail goes to the outbox, not out", slog.String("outbox", dir))
		return &mail.Outbox{Dir: dir, From: c.From, Log: m.Logger}, nil
	}
	return nil, nil
}

// invitationSender sends the e-mail of an invitation with its link below
// origin (the authorization server's page).
func invitationSender(sender mail.Sender, origin string) func(ctx context.Context, in rest.InvitationMail) error {
	if sender == nil {
		return nil
	}
	return func(ctx context.Context, in rest.InvitationMail) error {
		return sender.Send(ctx, mail.Invitation{
			To: in.To, ToName: in.InviteeName, Inviter: in.InviterName, Child: in.ChildName,
			Role: in.Role, RoleEN: in.RoleEN, Link: strings.TrimRight(origin, "/") + "/invite/" + in.Token, Expires: in.Expires,
		}.Message())
	}
}

// invitations is the authorization server's view of the REST layer's
// invitations. api is set once the REST layer is built (after the
// authorization server, whose tokens it accepts).
type invitations struct{ api *rest.Server }

var _ oauth.Invitations = (*invitations)(nil)

func (i *invitations) Invitation(ctx context.Context, token string) (oauth.Invitation, error) {
	if i.api == nil {
		return oauth.Invitation{}, errors.New("the FHIR API is not ready")
	}
	inv, err := i.api.LookupInvitation(ctx, token)
	return toOAuth(inv), invitationErr(err)
}

func (i *invitations) Accept(ctx context.Context, invitation, system, subject string) (oauth.Invitation, error) {
	if i.api == nil {
		return oauth.Invitation{}, errors.New("the FHIR API is not ready")
	}
	inv, err := i.api.AcceptInvitation(ctx, invitation, system, subject)
	return toOAuth(inv), invitationErr(err)
}

func toOAuth(inv rest.Invitation) oauth.Invitation {
	return oauth.Invitation{ID: inv.Task, Child: inv.Child, Inviter: inv.Inviter, Invitee: inv.Invitee, Role: inv.Role, RoleEN: inv.RoleEN, Expires: inv.Expires}
}

// invitationErr maps the REST layer's error kinds onto the authorization
// server's invitation errors.
func invitationErr(err error) error {
	switch {
	case err == nil:
		return nil
	case fhir.IsKind(err, fhir.NotFound):
		return oauth.ErrInvitationUnknown
	case fhir.IsKind(err, fhir.Gone):
		return oauth.ErrInvitationGone
	case fhir.IsKind(err, fhir.Conflict):
		return oauth.ErrLoginTaken
	}
	return fmt.Errorf("invitation: %w", err)
}

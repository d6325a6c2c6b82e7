// Package mail sends the server's e-mail (invitations): a Sender interface,
// an SMTP sender configured by URL (github.com/wneessen/go-mail), and an
// outbox for development that writes each message to a file instead of
// sending it. Neither ever logs a message's body or the SMTP password.
package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one plain-text e-mail to one recipient.
type Message struct {
	To      string // the address
	ToName  string // the recipient's name; optional
	Subject string
	Text    string // the body, plain text (UTF-8)
}

// Sender sends e-mail. Send returns only after the message was handed over
// (to the SMTP server, or into the outbox); an error says why it was not.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// newMsg builds m from from as a go-mail message.
func newMsg(from string, m Message, now time.Time) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("mail: from address: %w", err)
	}
	var err error
	if m.ToName != "" {
		err = msg.AddToFormat(m.ToName, m.To)
	} else {
		err = msg.To(m.To)
	}
	if err != nil {
		return nil, fmt.Errorf("mail: recipient address: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDateWithValue(now)
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	return msg, nil
}

// SMTP sends through an SMTP server.
type SMTP struct {
	client *gomail.Client
	from   string
	now    func() time.Time
}

var _ Sender = (*SMTP)(nil)

// NewSMTP returns a sender for the server at rawURL:
// smtp://user:password@host:port (STARTTLS required; port 587 by default),
// smtps://… (TLS from the start; port 465 by default), or
// smtp://host:port?tls=none for a local relay without TLS (port 25).
// User and password are optional (no authentication without them); from is
// the sender's address. The error never contains the password.
func NewSMTP(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse quotes the whole URL in its error: say less.
		return nil, errors.New("mail: the SMTP URL does not parse (smtp://user:password@host:port)")
	}
	if from == "" {
		return nil, errors.New("mail: a from address is required with an SMTP URL")
	}
	if _, err := newMsg(from, Message{To: "check@example.org"}, time.Now()); err != nil {
		return nil, err
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("mail: the SMTP URL %s has no host", u.Redacted())
	}
	var opts []gomail.Option
	port := 0
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("mail: the SMTP URL %s has a bad port", u.Redacted())
		}
	}
	switch u.Scheme {
	case "smtps":
		opts = append(opts, gomail.WithSSL())
		if port == 0 {
			port = 465
		}
	case "smtp":
		switch u.Query().Get("tls") {
		case "", "mandatory":
			opts = append(opts, gomail.WithTLSPortPolicy(gomail.TLSMandatory))
			if port == 0 {
				port = 587
			}
		case "none":
			opts = append(opts, gomail.WithTLSPortPolicy(gomail.NoTLS))
			if port == 0 {
				port = 25
			}
		default:
			return nil, fmt.Errorf("mail: the SMTP URL %s: tls is mandatory (default) or none", u.Redacted())
		}
	default:
		return nil, fmt.Errorf("mail: the SMTP URL %s: scheme smtp or smtps", u.Redacted())
	}
	opts = append(opts, gomail.WithPort(port), gomail.WithTimeout(30*time.Second))
	if user := u.User.Username(); user != "" {
		pass, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(user), gomail.WithPassword(pass))
	}
	c, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail: SMTP client for %s: %w", u.Redacted(), err)
	}
	return &SMTP{client: c, from: from, now: time.Now}, nil
}

// Send sends m, one connection per message (invitations are rare).
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg, err := newMsg(s.from, m, s.now())
	if err != nil {
		return err
	}
	if err := s.client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mail: send: %w", err)
	}
	return nil
}

// Outbox is the development sender: each message becomes a file
// <Dir>/<time>-<random>.eml (RFC 5322, readable by any mail program), and
// only the file name is logged, since a message may carry a secret link.
type Outbox struct {
	Dir  string
	From string // default "Digitale Ouder <noreply@localhost>"
	Log  *slog.Logger
	Now  func() time.Time
}

var _ Sender = (*Outbox)(nil)

// Send writes m into the outbox.
func (o *Outbox) Send(_ context.Context, m Message) error {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	from := o.From
	if from == "" {
		from = "Digitale Ouder <noreply@localhost>"
	}
	msg, err := newMsg(from, m, now())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := filepath.Join(o.Dir, now().UTC().Format("20060102T150405.000000000Z")+"-"+hex.EncodeToString(rnd[:])+".eml")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	if _, err := msg.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("mail: outbox %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("mail: outbox %s: %w", name, err)
	}
	if o.Log != nil {
		o.Log.Info("e-mail written to the development outbox", slog.String("file", name), slog.String("to_domain", domainOf(m.To)))
	}
	return nil
}

// domainOf returns the domain of an address, for logs that need no more.
func domainOf(addr string) string {
	if _, d, ok := strings.Cut(addr, "@"); ok {
		return d
	}
	return ""
}

// Invitation is the e-mail inviting a helper into a child's team.
type Invitation struct {
	To, ToName     string
	Inviter, Child string
	Role, RoleEN   string
	Link           string // the acceptance link: its token is the secret
	Expires        time.Time
}

// Message returns the invitation as a message, in Dutch and English.
func (i Invitation) Message() Message {
	inviter := i.Inviter
	if inviter == "" {
		inviter = "Een ouder of de dossierhouder"
	}
	exp := i.Expires.Format("2 January 2006 15:04 MST")
	return Message{
		To: i.To, ToName: i.ToName,
		Subject: "Uitnodiging voor het team van " + i.Child + " (Digitale Ouder)",
		Text: fmt.Sprintf(`Beste %s,

%s nodigt u uit als %s in het team rond %s in Digitale Ouder.

Accepteer de uitnodiging met deze link (geldig tot %s):
%s

U logt daarna in; uw inlog wordt dan gekoppeld aan deze uitnodiging. Wat u
mag inzien, hangt af van de toestemming die de dossierhouder goedkeurt.
Verwachtte u deze uitnodiging niet? Dan kunt u dit bericht negeren.

--
Dear %s,

%s invites you as %s to the team around %s in Digitale Ouder.
Accept the invitation with the link above (valid until %s). You then sign
in, and your sign-in is linked to this invitation. What you may see depends
on the consent the file holder approves.
`, i.ToName, inviter, i.Role, i.Child, exp, i.Link, i.ToName, inviter, i.RoleEN, i.Child, exp),
	}
}

package mail

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOutbox(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	o := &Outbox{Dir: filepath.Join(dir, "outbox"), Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Now: func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) }}
	m := Invitation{To: "eva@example.org", ToName: "Eva Smit", Inviter: "Anna Jansen", Child: "Sara",
		Role: "Logopedist", RoleEN: "Speech therapist", Link: "http://127.0.0.1:8080/invite/SECRET-TOKEN",
		Expires: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}.Message()
	for range 2 {
		if err := o.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "outbox", "*.eml"))
	if err != nil || len(files) != 2 {
		t.Fatalf("outbox files: %v %v", files, err)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"To: \"Eva Smit\" <eva@example.org>", "Subject: Uitnodiging voor het team van Sara", "SECRET-TOKEN"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the message has no %q:\n%s", want, b)
		}
	}
	if strings.Contains(logs.String(), "SECRET") || !strings.Contains(logs.String(), filepath.Base(files[0])) {
		t.Errorf("the log should name the file and never the link: %s", logs.String())
	}
	if info, err := os.Stat(files[0]); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("outbox file mode: %v %v", info.Mode(), err)
	}
}

func TestNewSMTP(t *testing.T) {
	for _, c := range []struct {
		name, url, from, err string
	}{
		{"starttls", "smtp://user:hunter2@mail.example.org:587", "noreply@example.org", ""},
		{"tls", "smtps://user:hunter2@mail.example.org", "Digitale Ouder <noreply@example.org>", ""},
		{"relay", "smtp://localhost:25?tls=none", "noreply@example.org", ""},
		{"no from", "smtp://user:hunter2@mail.example.org", "", "from address"},
		{"bad from", "smtp://user:hunter2@mail.example.org", "not an address", "from address"},
		{"bad scheme", "http://user:hunter2@mail.example.org", "noreply@example.org", "scheme"},
		{"bad tls", "smtp://user:hunter2@mail.example.org?tls=maybe", "noreply@example.org", "tls"},
		{"no host", "smtp://user:hunter2@:25", "noreply@example.org", "no host"},
		{"unparsable", "smtp://user:hunter2@mail.example.org:port", "noreply@example.org", "does not parse"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewSMTP(c.url, c.from)
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("NewSMTP: %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("NewSMTP: %v, want an error about %s", err, c.err)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/auth/audit"
	"github.com/digitaleouder/ouder/fhir"
	"github.com/digitaleouder/ouder/store/pgtest"
	"github.com/digitaleouder/ouder/store/postgres"
)

func TestAuditVerify(t *testing.T) {
	tests := []struct {
		name    string
		tamper  string // SQL run with triggers off
		want    string
		wantErr string
	}{
		{name: "intact", want: "audit trail intact: 3 sealed record(s), 0 not sealed yet"},
		{name: "altered", tamper: `UPDATE audit_events SET outcome = '0' WHERE id = 'a2'`, wantErr: "seq 2 (AuditEvent/a2) at chain position 2 was altered"},
		{name: "deleted", tamper: `DELETE FROM audit_events WHERE id = 'a3'`, wantErr: "seq 3, sealed at chain position 3, was deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := pgtest.URL(t)
			ctx := context.Background()
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			st := postgres.New(pool)
			w := st.NewAuditWriter(8, func(err error) { t.Error(err) })
			for _, id := range []string{"a1", "a2", "a3"} {
				ev := audit.Event{Interaction: "read", Outcome: audit.Minor, Recorded: time.Now(), Entities: []fhir.Entity{{Type: "Patient", ID: "p"}}}
				w.Append(ev.AuditEvent(id))
			}
			w.Close()
			if _, err := st.SealAudit(ctx); err != nil {
				t.Fatal(err)
			}
			if tt.tamper != "" {
				conn, err := pool.Acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				_, err = conn.Exec(ctx, `SET session_replication_role = replica`)
				if err == nil {
					_, err = conn.Exec(ctx, tt.tamper)
				}
				conn.Release()
				if err != nil {
					t.Fatal(err)
				}
			}
			var out strings.Builder
			err = run(ctx, []string{"-database-url", url, "audit", "verify"}, func(string) string { return "" }, &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(out.String(), "NOT intact") {
					t.Fatalf("error = %v, output %q; want one containing %q", err, out.String(), tt.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("error %v, output %q; want %q", err, out.String(), tt.want)
			}
		})
	}
}

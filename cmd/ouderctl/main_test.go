package main

import (
	"context"
	"strings"
	"testing"

	"github.com/digitaleouder/ouder/store/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestRun(t *testing.T) {
	url := pgtest.URL(t)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantErr string
	}{
		{name: "migrate is idempotent", args: []string{"migrate"}, env: map[string]string{"DATABASE_URL": url}, want: "applied 0 migration(s)"},
		{name: "status", args: []string{"-database-url", url, "status"}, want: "resources 0 (deleted 0)"},
		{name: "reindex without jobs", args: []string{"-database-url", url, "reindex"}, want: "no reindexing jobs"},
		{name: "no database", args: []string{"migrate"}, wantErr: "set DATABASE_URL"},
		{name: "unknown command", args: []string{"frobnicate"}, wantErr: "unknown command"},
		{name: "no command", args: nil, wantErr: "expected one command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("output %q does not contain %q", out.String(), tt.want)
			}
		})
	}
}

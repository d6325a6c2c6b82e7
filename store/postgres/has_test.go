package postgres

import "testing"

func TestSourceRowNeeded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, vis, cond string
		want            bool
		rewritten       string
	}{
		{"index rows only", "NOT r2.deleted", "EXISTS (SELECT 1 FROM idx_token t3 WHERE t3.rid = r2.rid AND t3.param = $1)", false,
			"EXISTS (SELECT 1 FROM idx_token t3 WHERE t3.rid = x1.rid AND t3.param = $1)"},
		{"an access rule", "NOT r2.deleted AND (r2.type = $4)", "EXISTS (SELECT 1 FROM idx_token t3 WHERE t3.rid = r2.rid)", true, ""},
		{"_id", "NOT r2.deleted", "r2.id = ANY($1::text[])", true, ""},
		{"_lastUpdated", "NOT r2.deleted", "(r2.last_updated >= $1)", true, ""},
		{"nested _has", "NOT r2.deleted", "EXISTS (SELECT 1 FROM idx_reference x3 WHERE x3.id = r2.id AND x3.type = r2.type)", true, ""},
		{"another alias with the same prefix", "NOT r2.deleted", "EXISTS (SELECT 1 FROM idx_token t3 WHERE t3.rid = r22.rid AND r22.id = $1 AND t3.rid = r2.rid)", false,
			"EXISTS (SELECT 1 FROM idx_token t3 WHERE t3.rid = r22.rid AND r22.id = $1 AND t3.rid = x1.rid)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sourceRowNeeded("r2", tc.vis, tc.cond); got != tc.want {
				t.Errorf("sourceRowNeeded(%q, %q) = %v, want %v", tc.vis, tc.cond, got, tc.want)
			}
			if tc.rewritten != "" {
				if got := ridOf(tc.cond, "r2", "x1"); got != tc.rewritten {
					t.Errorf("ridOf = %q, want %q", got, tc.rewritten)
				}
			}
		})
	}
}

package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/digitaleouder/ouder/mapping"
	"github.com/digitaleouder/ouder/mapping/family"
	"github.com/digitaleouder/ouder/store/pgtest"
)

// runMain starts ouderd on db with -demo as given, stops it again and
// returns its logs.
func runMain(tb testing.TB, db string, demo bool) string {
	tb.Helper()
	m := NewMain()
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DatabaseURL = db
	m.Config.Demo = demo
	var logs syncBuffer
	m.LogOutput = &logs
	// Errorf, not Fatal: runMain may run on a goroutine of its own.
	if err := m.Run(context.Background()); err != nil {
		tb.Errorf("Run: %v", err)
	}
	if err := m.Close(); err != nil {
		tb.Errorf("Close: %v", err)
	}
	return logs.String()
}

// demoVersions returns the version of every current resource in db that
// carries the demo tag (ouderd installs other resources of its own, such as
// the implementation guide's).
func demoVersions(tb testing.TB, db string) map[string]int64 {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT type || '/' || id, version FROM resources
		WHERE NOT deleted AND position($1::bytea IN body) > 0`, []byte(`"system":"`+family.TagSystem+`","code":"`+family.TagDemo+`"`))
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]int64{}
	for rows.Next() {
		var ref string
		var v int64
		if err := rows.Scan(&ref, &v); err != nil {
			tb.Fatal(err)
		}
		out[ref] = v
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestDemoAtStartup: with -demo, ouderd loads the demo family into an
// empty database through its own write path, and leaves it alone when it
// is there; without -demo it loads nothing.
func TestDemoAtStartup(t *testing.T) {
	t.Parallel()
	db := pgtest.URL(t)
	logs := runMain(t, db, true)
	if !strings.Contains(logs, "demo family present") || strings.Contains(logs, "demo family not loaded") {
		t.Fatalf("logs do not say the demo family is there:\n%s", logs)
	}
	want, err := family.Demo(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := demoVersions(t, db)
	if len(got) != len(want.Resources) {
		t.Errorf("%d demo resources stored, want %d", len(got), len(want.Resources))
	}
	for _, r := range want.Resources {
		if got[r.Ref()] != 1 {
			t.Errorf("%s: version %d, want 1", r.Ref(), got[r.Ref()])
		}
	}
	// It was made for today: the children are 14 and 9 now.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var body []byte
	if err := conn.QueryRow(ctx, `SELECT body FROM resources WHERE type = 'Patient' AND id = 'demo-daan'`).Scan(&body); err != nil {
		t.Fatal(err)
	}
	daan, err := mapping.ChildDetailsFromFHIR(body)
	if err != nil {
		t.Fatal(err)
	}
	if age, err := mapping.AgeAt(daan.BirthDate, time.Now(), time.Local); err != nil || age.Min != family.DemoYoungestAge {
		t.Errorf("Daan (born %s) is %+v, %v; want %d", daan.BirthDate, age, err, family.DemoYoungestAge)
	}

	runMain(t, db, true)
	again := demoVersions(t, db)
	if len(again) != len(got) {
		t.Errorf("%d resources after the second start, %d after the first", len(again), len(got))
	}
	for ref, v := range again {
		if v != got[ref] {
			t.Errorf("%s was written again at the second start (version %d)", ref, v)
		}
	}

	empty := pgtest.URL(t)
	runMain(t, empty, false)
	if n := len(demoVersions(t, empty)); n != 0 {
		t.Errorf("without -demo ouderd stored %d resources", n)
	}
}

// TestDemoTwoInstances: two instances starting together on one database
// both end up with the demo family there, and neither reports a failure.
func TestDemoTwoInstances(t *testing.T) {
	t.Parallel()
	db := pgtest.URL(t)
	logs := make(chan string, 2)
	for range 2 {
		go func() { logs <- runMain(t, db, true) }()
	}
	for range 2 {
		if l := <-logs; !strings.Contains(l, "demo family present") || strings.Contains(l, "demo family not loaded") {
			t.Errorf("an instance did not end with the demo family:\n%s", l)
		}
	}
	want, err := family.Demo(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := demoVersions(t, db); len(got) != len(want.Resources) {
		t.Errorf("%d demo resources, want %d", len(got), len(want.Resources))
	}
}

func TestDemoFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    bool
		wantErr bool
	}{
		{"off by default", nil, nil, false, false},
		{"flag", []string{"-demo"}, nil, true, false},
		{"environment", nil, map[string]string{"OUDERD_DEMO": "true"}, true, false},
		{"flag wins", []string{"-demo=false"}, map[string]string{"OUDERD_DEMO": "1"}, false, false},
		{"bad environment", nil, map[string]string{"OUDERD_DEMO": "yes please"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMain()
			m.LogOutput = io.Discard
			err := m.ParseFlags(tt.args, func(k string) string { return tt.env[k] })
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseFlags: %v, want error %v", err, tt.wantErr)
			}
			if err == nil && m.Config.Demo != tt.want {
				t.Errorf("Demo = %v, want %v", m.Config.Demo, tt.want)
			}
		})
	}
}

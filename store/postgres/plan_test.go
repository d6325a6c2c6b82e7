package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/digitaleouder/ouder/conformance/searchparam"
	"github.com/digitaleouder/ouder/fhir/search"
	"github.com/digitaleouder/ouder/store/pgtest"
	"github.com/digitaleouder/ouder/store/postgres"
	"github.com/digitaleouder/ouder/store/postgres/internal/dataset"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// planResources is the size of the plan tests' database: large enough that
// a sequential scan of any table costs far more than an index probe, small
// enough to load in a few seconds.
const planResources = 30_000

// db is a seeded, analysed database with a Store whose statements can be
// captured.
type db struct {
	pool   *pgxpool.Pool
	store  *postgres.Store
	pop    dataset.Population
	parser *search.Parser
}

// seedDB returns a fresh database holding pop, written with the bulk loader,
// then vacuumed and analysed as autovacuum would leave it.
func seedDB(tb testing.TB, pop dataset.Population) *db {
	tb.Helper()
	d := openDB(tb, pgtest.URL(tb), pop)
	d.seed(tb)
	return d
}

// openDB returns the database at url, for the population pop, with a pool
// whose statements can be captured.
func openDB(tb testing.TB, url string, pop dataset.Population) *db {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.ConnConfig.Tracer = captureTracer{}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	registry, err := searchparam.Builtin()
	if err != nil {
		tb.Fatal(err)
	}
	return &db{
		pool:   pool,
		store:  postgres.New(pool),
		pop:    pop,
		parser: &search.Parser{Registry: registry, Fold: searchparam.Fold},
	}
}

// seed loads d.pop with the bulk loader and runs VACUUM ANALYZE.
func (d *db) seed(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	sd, err := postgres.NewSeeder(d.pop)
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	stop := progress(tb, sd, d.pop.Len(), start)
	err = sd.Copy(ctx, d.pool, 0, d.pop.Patients)
	stop()
	if err != nil {
		tb.Fatal(err)
	}
	loaded := time.Since(start)
	// Counted before the ANALYZE, the load's changes do not count as
	// changes since it (RefreshStatistics would analyse again).
	flushTableStats(tb, d.pool)
	if _, err := d.pool.Exec(ctx, "VACUUM (ANALYZE)"); err != nil {
		tb.Fatal(err)
	}
	msg := fmt.Sprintf("seeded %d resources in %v (%.0f resources/s, bulk COPY), VACUUM ANALYZE %v",
		d.pop.Len(), loaded.Round(time.Millisecond), float64(d.pop.Len())/loaded.Seconds(), (time.Since(start) - loaded).Round(time.Millisecond))
	tb.Log(msg)
	if d.pop.Len() >= 200_000 {
		fmt.Fprintf(os.Stderr, "%s: %s\n", tb.Name(), msg)
	}
}

// progress reports the seeding of large populations on stderr every ten
// seconds (tb.Log would only show at the end).
func progress(tb testing.TB, sd *postgres.Seeder, total int, start time.Time) (stop func()) {
	if total < 200_000 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := sd.Parsed.Load()
				fmt.Fprintf(os.Stderr, "%s: seeded %d of %d resources in %v (%.0f/s)\n",
					tb.Name(), n, total, time.Since(start).Round(time.Second), float64(n)/time.Since(start).Seconds())
			}
		}
	}()
	return func() { close(done) }
}

// parse parses a search request on typ as the REST layer does (strict).
func (d *db) parse(tb testing.TB, typ, query string) *search.Query {
	tb.Helper()
	params, err := url.ParseQuery(query)
	if err != nil {
		tb.Fatal(err)
	}
	q, err := d.parser.Parse([]string{typ}, params, true)
	if err != nil {
		tb.Fatalf("parse %s?%s: %v", typ, query, err)
	}
	return q
}

// statement is one SQL statement a Store ran, with its arguments.
type statement struct {
	sql  string
	args []any
}

// captureTracer records the statements run with a context made by
// capturing: the SQL and arguments exactly as Store.Search sends them,
// include queries too, without a hook in search.go.
type captureTracer struct{}

type captureKey struct{}

type captured struct {
	mu    sync.Mutex
	stmts []statement
}

func capturing(ctx context.Context) (context.Context, *captured) {
	c := &captured{}
	return context.WithValue(ctx, captureKey{}, c), c
}

func (captureTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if c, ok := ctx.Value(captureKey{}).(*captured); ok {
		c.mu.Lock()
		c.stmts = append(c.stmts, statement{sql: data.SQL, args: slices.Clone(data.Args)})
		c.mu.Unlock()
	}
	return ctx
}

func (captureTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// search runs q through Store.Search and returns the statements it ran:
// the page, then one per _include and _revinclude.
func (d *db) search(tb testing.TB, q *search.Query) (*search.Result, []statement) {
	tb.Helper()
	ctx, c := capturing(unrestricted())
	res, err := d.store.Search(ctx, q)
	if err != nil {
		tb.Fatalf("search: %v", err)
	}
	return res, c.stmts
}

// unrestricted returns a context with the server's own access: every
// resource is visible, as to an operator.
func unrestricted() context.Context {
	return search.WithAccess(context.Background(), search.Unrestricted())
}

// withoutOptions returns args without pgx's query options (such as a
// QueryExecMode), which the tracer sees first among the arguments.
func withoutOptions(args []any) []any {
	var out []any
	for _, a := range args {
		switch a.(type) {
		case pgx.QueryExecMode, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID, pgx.QueryRewriter:
			continue
		}
		out = append(out, a)
	}
	return out
}

// planNode is a node of EXPLAIN (FORMAT JSON) output.
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	Alias        string     `json:"Alias"`
	IndexName    string     `json:"Index Name"`
	IndexCond    string     `json:"Index Cond"`
	Filter       string     `json:"Filter"`
	JoinFilter   string     `json:"Join Filter"`
	Plans        []planNode `json:"Plans"`
}

// walk calls fn on n and every node below it (subplans included: EXPLAIN
// lists them under Plans).
func (n *planNode) walk(fn func(*planNode)) {
	fn(n)
	for i := range n.Plans {
		n.Plans[i].walk(fn)
	}
}

// quoted matches the SQL string literals of EXPLAIN's conditions.
var quoted = regexp.MustCompile(`'(?:[^']|'')*'`)

// columnRef matches alias.column in EXPLAIN's conditions.
var columnRef = regexp.MustCompile(`\b([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\b`)

// otherAliases returns the aliases other than own that cond refers to.
func otherAliases(cond, own string) []string {
	var out []string
	for _, m := range columnRef.FindAllStringSubmatch(quoted.ReplaceAllString(cond, "''"), -1) {
		if m[1] != own && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// rescans reports whether n repeats a scan for every outer row that is tied
// to that row only by a filter: its own (a scan whose index condition does
// not name the outer row), or the join filter of a nested loop over it. Such
// a scan reads its whole index range (or table) for every outer row and
// keeps the few rows that belong to it. This is the shape of the plans that
// fall off a cliff when the planner takes the range for one row
// (Observation?subject=..&date=.. reading 8,400 idx_date entries for each
// of 18,000 Observations: 85 s). It returns the scan.
func (n *planNode) rescans() (*planNode, bool) {
	scan := func(p *planNode) bool { return strings.HasSuffix(p.NodeType, "Scan") }
	unparameterised := func(p *planNode) bool { return len(otherAliases(p.IndexCond, p.Alias)) == 0 }
	if scan(n) && n.Filter != "" && len(otherAliases(n.Filter, n.Alias)) > 0 && unparameterised(n) {
		return n, true
	}
	if n.NodeType == "Nested Loop" && n.JoinFilter != "" && len(n.Plans) == 2 {
		inner := &n.Plans[1]
		if scan(inner) && unparameterised(inner) && slices.Contains(otherAliases(n.JoinFilter, ""), inner.Alias) {
			return inner, true
		}
	}
	return nil, false
}

// explain returns the plan of st as Store.Search runs it, and the plan as
// text for messages: planned for its argument values, as an unnamed
// statement is (TestSearchPlans checks that Store.Search runs them so).
func (d *db) explain(tb testing.TB, st statement) (planNode, string) {
	tb.Helper()
	ctx := context.Background()
	args := append([]any{pgx.QueryExecModeDescribeExec}, withoutOptions(st.args)...)
	var raw []byte
	if err := d.pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+st.sql, args...).Scan(&raw); err != nil {
		tb.Fatalf("explain: %v\n%s", err, st.sql)
	}
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
		tb.Fatalf("read EXPLAIN output: %v\n%s", err, raw)
	}
	rows, err := d.pool.Query(ctx, "EXPLAIN "+st.sql, args...)
	if err != nil {
		tb.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatal(err)
	}
	return plans[0].Plan, strings.Join(lines, "\n")
}

// runsCustomPlans reports whether a statement run with args is planned for
// its values every time: pgx then uses the unnamed statement. With a named
// prepared statement (pgx's default mode) PostgreSQL may settle on a generic
// plan after five runs, which for the token and token+reference shapes reads
// every row of the code before it sorts.
func runsCustomPlans(args []any) bool {
	for _, a := range args {
		if m, ok := a.(pgx.QueryExecMode); ok {
			return m == pgx.QueryExecModeCacheDescribe || m == pgx.QueryExecModeDescribeExec ||
				m == pgx.QueryExecModeExec || m == pgx.QueryExecModeSimpleProtocol
		}
	}
	return false
}

// planCase is a search whose plans a test checks.
type planCase struct {
	name  string
	typ   string
	query string
	// want lists, per statement Store.Search runs (the page, then each
	// include), the indexes its plan must use; "a|b" accepts either.
	want [][]string
	// maxResourceScans, when not 0, bounds the scans of the resources
	// table in the page's plan.
	maxResourceScans int
}

// Index choices the planner may fairly make either way.
const (
	byRid       = "resources_type_rid|resources_pkey" // walk in page order, test each row
	referenceTo = "idx_reference_back"
)

// commonShapes are the search shapes of the search issue on pop, with the
// indexes their plans must use.
func commonShapes(pop dataset.Population) []planCase {
	rare := dataset.Codes[len(dataset.Codes)-1]
	middle := dataset.Codes[8] // 0.8% of the Observations: the costliest _has
	common := dataset.Codes[0]
	pat := pop.Patients / 2
	return []planCase{
		{
			name:  "token rare",
			typ:   "Observation",
			query: "code=" + dataset.LOINC + "|" + rare.Code,
			want:  [][]string{{"idx_token_code"}},
		},
		{
			// A third of the Observations: the first page is found sooner
			// by walking them in rid order than by reading every match.
			name:  "token common",
			typ:   "Observation",
			query: "code=" + dataset.LOINC + "|" + common.Code,
			want:  [][]string{{byRid + "|idx_token_code", "idx_token_rid|idx_token_code"}},
		},
		{
			name:  "identifier",
			typ:   "Patient",
			query: "identifier=" + dataset.BSN + "|" + pop.Identifier(pat),
			want:  [][]string{{"idx_token_code"}},
		},
		{
			name:  "reference",
			typ:   "Observation",
			query: "subject=Patient/" + pop.PatientID(pat),
			want:  [][]string{{referenceTo}},
		},
		{
			// Each bound alone matches a large part of the rows (the
			// index cannot bound lo from below for hi > x): a month is
			// about 1%, found by walking in rid order.
			name:  "date range",
			typ:   "Observation",
			query: "date=ge2020-01-01&date=lt2020-02-01",
			want:  [][]string{{byRid, "idx_date_rid|idx_date_lo|idx_date_hi"}},
		},
		{
			name:  "token and reference",
			typ:   "Observation",
			query: "code=" + dataset.LOINC + "|" + common.Code + "&subject=Patient/" + pop.PatientID(pat),
			want:  [][]string{{referenceTo}},
		},
		{
			name:  "reference and date sorted",
			typ:   "Observation",
			query: "subject=Patient/" + pop.PatientID(pat) + "&date=ge2019-01-01&_sort=-date",
			want:  [][]string{{referenceTo, "idx_date_rid"}},
		},
		{
			name:  "revinclude",
			typ:   "CarePlan",
			query: "_id=" + pop.CarePlanID(pat, 0) + "&_revinclude=CarePlan:part-of",
			want:  [][]string{{"resources_type_id"}, {referenceTo}},
		},
		{
			name:  "plan with goals and sub-plans",
			typ:   "CarePlan",
			query: "subject=Patient/" + pop.PatientID(pat) + "&_include=CarePlan:goal&_revinclude=CarePlan:part-of",
			want:  [][]string{{referenceTo}, {"idx_reference_rid", "resources_type_id"}, {referenceTo}},
		},
		{
			// The referring Observations' rows are never read (has()):
			// the Patient is scanned to choose the page and to read it.
			name:             "has rare",
			typ:              "Patient",
			query:            "_has:Observation:subject:code=" + rare.Code,
			want:             [][]string{{"idx_token_code", "idx_reference_rid"}},
			maxResourceScans: 2,
		},
		{
			name:             "has middle",
			typ:              "Patient",
			query:            "_has:Observation:subject:code=" + middle.Code,
			want:             [][]string{{"idx_token_code", "idx_reference_rid|idx_reference_back"}},
			maxResourceScans: 2,
		},
		{
			// Most Patients have one: walk them, look up what refers to
			// each.
			name:             "has common",
			typ:              "Patient",
			query:            "_has:Observation:subject:code=" + common.Code,
			want:             [][]string{{referenceTo, "idx_token_code|idx_token_rid"}},
			maxResourceScans: 2,
		},
		{
			name:  "chained identifier",
			typ:   "Observation",
			query: "subject:Patient.identifier=" + dataset.BSN + "|" + pop.Identifier(pat),
			want:  [][]string{{"idx_token_code", "idx_reference_rid|" + referenceTo}},
		},
		{
			name:  "string prefix",
			typ:   "Patient",
			query: "name=jan",
			want:  [][]string{{"idx_string_prefix|idx_string_rid"}},
		},
	}
}

// checkPlans runs each case through Store.Search and checks the plan of
// every statement it ran: planned for its values, no sequential scan, no
// parallel workers, no scan that rescans an index range for every outer
// row (rescans), and the indexes the case wants.
func checkPlans(t *testing.T, d *db, cases []planCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, stmts := d.search(t, d.parse(t, tc.typ, tc.query))
			if len(res.Matches) == 0 {
				t.Errorf("%s?%s matched nothing: the plan of an empty search proves little", tc.typ, tc.query)
			}
			if len(stmts) != len(tc.want) {
				t.Fatalf("Store.Search ran %d statements, want %d", len(stmts), len(tc.want))
			}
			for i, st := range stmts {
				if !runsCustomPlans(st.args) {
					t.Errorf("statement %d runs as a named prepared statement, which may get a generic plan", i)
				}
				plan, text := d.explain(t, st)
				var used []string
				resourceScans := 0
				plan.walk(func(n *planNode) {
					if n.IndexName != "" {
						used = append(used, n.IndexName)
					}
					if n.RelationName == "resources" {
						resourceScans++
					}
					if strings.HasSuffix(n.NodeType, "Seq Scan") {
						t.Errorf("statement %d: sequential scan of %s\n%s", i, n.RelationName, text)
					}
					if strings.HasPrefix(n.NodeType, "Gather") {
						// Starting workers costs more than a page takes.
						t.Errorf("statement %d: parallel plan\n%s", i, text)
					}
					if r, ok := n.rescans(); ok {
						t.Errorf("statement %d: %s on %s %s is repeated for every outer row, tied to it only by a filter\n%s",
							i, r.NodeType, r.RelationName, r.Alias, text)
					}
				})
				for _, want := range tc.want[i] {
					if !slices.ContainsFunc(strings.Split(want, "|"), func(idx string) bool { return slices.Contains(used, idx) }) {
						t.Errorf("statement %d: plan uses none of %s\n%s\n%s", i, want, st.sql, text)
					}
				}
				if i == 0 && tc.maxResourceScans > 0 && resourceScans > tc.maxResourceScans {
					t.Errorf("statement %d scans resources %d times, want at most %d\n%s\n%s", i, resourceScans, tc.maxResourceScans, st.sql, text)
				}
				if testing.Verbose() {
					t.Logf("statement %d:\n%s", i, text)
				}
			}
		})
	}
}

// TestSearchPlans checks that the common search shapes, parsed from real
// requests and compiled by Store.Search, are answered from indexes on a
// seeded and analysed database (checkPlans).
func TestSearchPlans(t *testing.T) {
	d := seedDB(t, dataset.Sized(1, planResources))
	checkPlans(t, d, commonShapes(d.pop))
}

// TestCopyWritesWhatCreateWrites seeds the same charts through Store.Create
// and through the bulk loader, at the same clock, and compares every row
// they leave (rids aside, which only depend on the order of writes).
func TestCopyWritesWhatCreateWrites(t *testing.T) {
	t.Parallel()
	ctx := unrestricted()
	pop := dataset.Population{Seed: 5, Patients: 30}
	clock := func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) }
	dump := func(pool *pgxpool.Pool) map[string][]string {
		out := map[string][]string{}
		for _, table := range []string{"resources", "resource_history", "idx_string", "idx_token", "idx_reference", "idx_date", "idx_number", "idx_quantity", "idx_uri"} {
			// Rows as JSON keyed by the resource, without rid and seq.
			rows, err := pool.Query(ctx, `SELECT r.type || '/' || r.id || ' ' || (to_jsonb(t) - 'rid' - 'seq')::text
				FROM `+table+` t JOIN resources r USING (rid)`)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(lines)
			out[table] = lines
		}
		return out
	}

	api := pgtest.Pool(t)
	sd, err := postgres.NewSeeder(pop)
	if err != nil {
		t.Fatal(err)
	}
	sd.Now = clock
	store := postgres.New(api)
	store.Now = clock
	if err := sd.Create(ctx, store, 0, pop.Patients); err != nil {
		t.Fatal(err)
	}

	bulk := pgtest.Pool(t)
	sd.Batch = 7 // several batches, some concurrent
	if err := sd.Copy(ctx, bulk, 0, pop.Patients); err != nil {
		t.Fatal(err)
	}

	want, got := dump(api), dump(bulk)
	if n := len(want["resources"]); n != pop.Len() {
		t.Fatalf("Store.Create wrote %d resources, want %d", n, pop.Len())
	}
	for table := range want {
		if len(want[table]) == 0 && table != "idx_number" && table != "idx_uri" {
			t.Errorf("%s is empty: the comparison proves nothing for it", table)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bulk load differs from Store.Create (-create +copy):\n%s", diff)
	}
}

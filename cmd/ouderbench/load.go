package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// histogram counts durations in log-linear buckets: exact below 256 ns, then
// 128 buckets per power of two, so a reported percentile is within 0.4% of
// the true value. Its memory grows with the largest value seen (about 25 KB
// for one-second latencies), not with the number of values.
type histogram struct {
	counts   []uint64
	n        uint64
	sum      time.Duration
	min, max time.Duration
}

// subBits sets the precision: 2^(subBits-1) buckets per power of two.
const subBits = 8

// bucketOf returns the bucket index of v (v >= 0).
func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits
	return shift<<(subBits-1) + int(v>>shift)
}

// bucketRange returns the smallest value in bucket i and the bucket width.
func bucketRange(i int) (lo, width uint64) {
	if i < 1<<subBits {
		return uint64(i), 1
	}
	shift := i>>(subBits-1) - 1
	top := uint64(i&(1<<(subBits-1)-1)) + 1<<(subBits-1)
	return top << shift, 1 << shift
}

// record adds one duration; negative durations count as zero.
func (h *histogram) record(d time.Duration) {
	d = max(d, 0)
	i := bucketOf(uint64(d))
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	h.max = max(h.max, d)
	h.n++
	h.sum += d
}

// merge adds every value of o to h.
func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		h.counts = append(h.counts, make([]uint64, len(o.counts)-len(h.counts))...)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the nearest-rank q-quantile (0 <= q <= 1): the smallest
// recorded value such that at least q of all values are at most it, as the
// middle of its bucket, clamped to the recorded minimum and maximum. It
// returns 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	if rank == h.n {
		return h.max
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, width := bucketRange(i)
			v := time.Duration(lo + (width-1)/2)
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

// mean returns the average value, 0 for an empty histogram.
func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// transportError is the status recorded for a request that got no HTTP
// response (refused, reset, timed out).
const transportError = 0

// opStats is what one worker measured for one operation.
type opStats struct {
	hist     histogram      // latencies of requests that got an HTTP response
	statuses map[int]uint64 // every response by status; transportError for none
	requests uint64
	errors   uint64 // transport errors and non-2xx statuses
}

// recorder collects one worker's measurements. It is not locked: each
// worker owns one, and they are merged once the workers have stopped.
type recorder struct {
	ops map[string]*opStats
}

func newRecorder() *recorder { return &recorder{ops: map[string]*opStats{}} }

// record adds one request of operation op.
func (r *recorder) record(op string, d time.Duration, status int) {
	s := r.ops[op]
	if s == nil {
		s = &opStats{statuses: map[int]uint64{}}
		r.ops[op] = s
	}
	s.requests++
	s.statuses[status]++
	if status == transportError || status < 200 || status >= 300 {
		s.errors++
	}
	if status != transportError {
		s.hist.record(d)
	}
}

// merge adds o's measurements to r.
func (r *recorder) merge(o *recorder) {
	for op, os := range o.ops {
		s := r.ops[op]
		if s == nil {
			s = &opStats{statuses: map[int]uint64{}}
			r.ops[op] = s
		}
		s.hist.merge(&os.hist)
		for st, c := range os.statuses {
			s.statuses[st] += c
		}
		s.requests += os.requests
		s.errors += os.errors
	}
}

// live holds the counters the progress line reads while workers run.
type live struct {
	requests, errors atomic.Int64
}

// worker is one concurrent virtual user. Scenarios issue requests through
// it so that they are timed and counted only in the measured phase.
type worker struct {
	client    *client
	gen       *gen
	rng       *rand.Rand // the gen's stream, for choices that are not resources
	rec       *recorder
	live      *live
	measure   bool  // set by the runner before each step
	resources int64 // resources written in measured steps (ingest)
}

// newWorker returns worker id with its own generator stream.
func newWorker(id int, c *client, seed int64, lv *live) *worker {
	g := newGen(seed, uint64(id))
	return &worker{client: c, gen: g, rng: g.rng, rec: newRecorder(), live: lv}
}

// do sends one request as operation op and records it when measuring. It
// returns the response and whether it was a 2xx. A request cut short because
// the run is stopping is not recorded: that is not the server's failure.
func (w *worker) do(ctx context.Context, op, method, path string, body []byte, keep bool) (response, bool) {
	start := time.Now()
	r, err := w.client.do(ctx, method, path, body, keep)
	d := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return r, false
		}
		r.status = transportError
	}
	w.record(op, d, r.status)
	return r, err == nil && r.ok()
}

// record counts one request of op if this step is measured.
func (w *worker) record(op string, d time.Duration, status int) {
	if !w.measure {
		return
	}
	w.rec.record(op, d, status)
	w.live.requests.Add(1)
	if status == transportError || status < 200 || status >= 300 {
		w.live.errors.Add(1)
	}
}

// wrote counts n resources written by the current step if it is measured.
func (w *worker) wrote(n int) {
	if w.measure {
		w.resources += int64(n)
	}
}

// Reasons a run stopped, as reported.
const (
	stopDuration    = "duration"
	stopRequests    = "requests"
	stopHardCap     = "hard cap"
	stopInterrupted = "interrupted"
)

// errHardCap is the cause of a context that reached the hard time cap.
var errHardCap = errors.New("hard time cap reached")

// loadConfig bounds the load phase.
type loadConfig struct {
	concurrency int
	warmup      time.Duration
	duration    time.Duration // 0: bounded by requests (and the hard cap) only
	requests    int64         // 0: bounded by duration (and the hard cap) only
	label       string        // for the progress line
	progress    io.Writer     // nil: no progress line
	tty         bool
}

// measurement is the outcome of the load phase.
type measurement struct {
	rec       *recorder
	elapsed   time.Duration // from the end of warm-up to the last step's end
	stopped   string
	resources int64
}

// runLoad drives sc with cfg.concurrency workers made by mk. Steps that start
// during warm-up are not measured. After warm-up, workers start steps until
// the duration has passed or the -requests budget is spent; steps in flight
// then finish. ctx bounds everything: when it ends (hard cap or interrupt)
// in-flight requests are cancelled and what was measured so far is returned.
func runLoad(ctx context.Context, cfg loadConfig, sc scenario, mk func(id int) *worker) *measurement {
	start := time.Now()
	measureFrom := start.Add(cfg.warmup)
	var until time.Time
	if cfg.duration > 0 {
		until = measureFrom.Add(cfg.duration)
	}
	var budget atomic.Int64
	budget.Store(cfg.requests)
	var budgetSpent atomic.Bool

	workers := make([]*worker, cfg.concurrency)
	for i := range workers {
		workers[i] = mk(i)
	}
	lv := workers[0].live
	stopProgress := startProgress(cfg.progress, cfg.tty, func(elapsed time.Duration, rate float64) string {
		// Ticks fall on whole seconds, like a whole-second warm-up's end:
		// half a second of slack keeps the first measured line from
		// reporting an empty second.
		if time.Now().Before(measureFrom.Add(time.Second / 2)) {
			return fmt.Sprintf("[%4.0fs] %s  warming up", elapsed.Seconds(), cfg.label)
		}
		return fmt.Sprintf("[%4.0fs] %s  %d requests  %.0f req/s  %d errors",
			elapsed.Seconds(), cfg.label, lv.requests.Load(), rate, lv.errors.Load())
	}, func() int64 { return lv.requests.Load() })

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				now := time.Now()
				w.measure = !now.Before(measureFrom)
				if w.measure {
					if !until.IsZero() && !now.Before(until) {
						return
					}
					if cfg.requests > 0 && budget.Add(-int64(sc.cost())) < 0 {
						budgetSpent.Store(true)
						return
					}
				}
				sc.step(ctx, w)
			}
		})
	}
	wg.Wait()
	end := time.Now()
	stopProgress()

	m := &measurement{rec: newRecorder(), elapsed: max(end.Sub(measureFrom), 0)}
	for _, w := range workers {
		m.rec.merge(w.rec)
		m.resources += w.resources
	}
	switch {
	case context.Cause(ctx) == errHardCap:
		m.stopped = stopHardCap
	case ctx.Err() != nil:
		m.stopped = stopInterrupted
	case budgetSpent.Load():
		m.stopped = stopRequests
	default:
		m.stopped = stopDuration
	}
	return m
}

// startProgress prints line(elapsed, rate) once a second to out until the
// returned stop is called: rewritten in place with \r on a terminal, as plain
// lines otherwise. count feeds the per-second rate. A nil out prints nothing.
func startProgress(out io.Writer, tty bool, line func(elapsed time.Duration, rate float64) string, count func() int64) (stop func()) {
	if out == nil {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, lastAt := count(), start
		printed := false
		for {
			select {
			case <-done:
				if tty && printed {
					fmt.Fprintln(out)
				}
				return
			case now := <-t.C:
				n := count()
				rate := float64(n-last) / now.Sub(lastAt).Seconds()
				last, lastAt = n, now
				s := line(now.Sub(start), rate)
				if tty {
					fmt.Fprint(out, "\r"+s+"\x1b[K")
				} else {
					fmt.Fprintln(out, s)
				}
				printed = true
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// forEach runs fn(i) for i in [0, n) on concurrency goroutines and returns
// the first error, after which no new items start. It reports progress under
// label. Preloads use it.
func forEach(ctx context.Context, e *env, label string, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, done atomic.Int64
	stop := startProgress(e.log, e.tty, func(elapsed time.Duration, rate float64) string {
		return fmt.Sprintf("[%4.0fs] preload %s  %d/%d  %.0f/s", elapsed.Seconds(), label, done.Load(), n, rate)
	}, done.Load)
	defer stop()
	var wg sync.WaitGroup
	for range min(e.concurrency, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("preload %s (%d of %d done): %w", label, done.Load(), n, err)
	}
	return nil
}

// statusKey names a status in reports: the code, or "transport" for none.
func statusKey(status int) string {
	if status == transportError {
		return "transport"
	}
	return strconv.Itoa(status)
}

// sortedOps returns the operations of rec in the scenario's order, then any
// others by name.
func sortedOps(rec *recorder, order []string) []string {
	var out []string
	known := map[string]bool{}
	for _, op := range order {
		known[op] = true
		if rec.ops[op] != nil {
			out = append(out, op)
		}
	}
	var rest []string
	for op := range rec.ops {
		if !known[op] {
			rest = append(rest, op)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

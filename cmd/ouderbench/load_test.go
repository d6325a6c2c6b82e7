package main

import (
	"context"
	"math"
	"sync/atomic"
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	t.Parallel()
	// Every value falls in the bucket whose range holds it, and ranges tile
	// the line without gaps.
	var next uint64
	for i := range bucketOf(1<<40) + 1 {
		lo, width := bucketRange(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		for _, v := range []uint64{lo, lo + width - 1} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		next = lo + width
	}
}

func TestQuantileExact(t *testing.T) {
	t.Parallel()
	// Below 256 ns buckets are exact, so nearest-rank quantiles are exact.
	var h histogram
	for v := 100; v >= 1; v-- { // order must not matter
		h.record(time.Duration(v))
	}
	tests := []struct {
		name string
		q    float64
		want time.Duration
	}{
		{"min", 0, 1},
		{"p1", 0.01, 1},
		{"p50", 0.50, 50},
		{"p95", 0.95, 95},
		{"p99", 0.99, 99},
		{"p99.5", 0.995, 100},
		{"max", 1, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.quantile(tt.q); got != tt.want {
				t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
	if got, want := h.mean(), time.Duration(50); got != want { // 5050/100 truncated
		t.Errorf("mean = %v, want %v", got, want)
	}
	if h.min != 1 || h.max != 100 || h.n != 100 {
		t.Errorf("min, max, n = %v, %v, %d; want 1ns, 100ns, 100", h.min, h.max, h.n)
	}
}

func TestQuantileRelativeError(t *testing.T) {
	t.Parallel()
	// 1 µs .. 1 s in 10 µs steps: the reported value is within 0.4% of the
	// true nearest-rank value.
	var h histogram
	var values []time.Duration
	for v := time.Microsecond; v <= time.Second; v += 10 * time.Microsecond {
		h.record(v)
		values = append(values, v)
	}
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 0.999} {
		want := values[int(math.Ceil(q*float64(len(values))))-1]
		got := h.quantile(q)
		if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.004 {
			t.Errorf("quantile(%v) = %v, want %v within 0.4%% (off by %.3f%%)", q, got, want, rel*100)
		}
	}
	if got := len(h.counts); got > 6000 {
		t.Errorf("histogram for values up to 1 s has %d buckets; want a few thousand at most", got)
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	t.Parallel()
	var empty histogram
	if empty.quantile(0.5) != 0 || empty.mean() != 0 {
		t.Errorf("empty histogram: quantile %v, mean %v; want 0, 0", empty.quantile(0.5), empty.mean())
	}
	var a, b, all histogram
	for v := 1; v <= 1000; v++ {
		d := time.Duration(v) * time.Microsecond
		all.record(d)
		if v%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	a.merge(&empty)
	for _, q := range []float64{0, 0.5, 0.95, 0.99, 1} {
		if got, want := a.quantile(q), all.quantile(q); got != want {
			t.Errorf("merged quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if a.n != all.n || a.sum != all.sum || a.min != all.min || a.max != all.max {
		t.Errorf("merged n, sum, min, max = %d %v %v %v; want %d %v %v %v", a.n, a.sum, a.min, a.max, all.n, all.sum, all.min, all.max)
	}
}

func TestRecorderCountsErrors(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	r.record("read", time.Millisecond, 200)
	r.record("read", 2*time.Millisecond, 404)
	r.record("read", time.Hour, transportError)
	s := r.ops["read"]
	if s.requests != 3 || s.errors != 2 {
		t.Errorf("requests, errors = %d, %d; want 3, 2", s.requests, s.errors)
	}
	if s.hist.n != 2 || s.hist.max != 2*time.Millisecond {
		t.Errorf("histogram has %d values up to %v; want 2 up to 2ms (transport errors have no latency)", s.hist.n, s.hist.max)
	}
}

// stubScenario records one 200 per step without any HTTP.
type stubScenario struct {
	steps atomic.Int64
	sleep time.Duration
	cst   int
}

func (s *stubScenario) prepare(context.Context, *env) error { return nil }
func (s *stubScenario) ops() []string                       { return []string{"op"} }
func (s *stubScenario) cost() int                           { return max(s.cst, 1) }
func (s *stubScenario) step(ctx context.Context, w *worker) {
	select {
	case <-time.After(s.sleep):
	case <-ctx.Done():
		return
	}
	for range s.cost() {
		w.record("op", s.sleep, 200)
	}
	w.wrote(1)
	s.steps.Add(1)
}

func stubWorkers(lv *live) func(int) *worker {
	return func(id int) *worker { return newWorker(id, nil, 1, lv) }
}

func TestRunLoadRequestsExcludeWarmup(t *testing.T) {
	t.Parallel()
	sc := &stubScenario{sleep: time.Millisecond, cst: 3}
	cfg := loadConfig{concurrency: 4, warmup: 50 * time.Millisecond, requests: 100}
	m := runLoad(context.Background(), cfg, sc, stubWorkers(&live{}))
	// 100 requests at 3 a step: 33 whole steps.
	if got := m.rec.ops["op"].requests; got != 99 {
		t.Errorf("measured %d requests, want 99", got)
	}
	if m.resources != 33 {
		t.Errorf("measured %d resources, want 33 (warm-up steps excluded)", m.resources)
	}
	if steps := sc.steps.Load(); steps <= 33 {
		t.Errorf("ran %d steps; want more than 33 (warm-up steps run but are not counted)", steps)
	}
	if m.stopped != stopRequests {
		t.Errorf("stopped by %q, want %q", m.stopped, stopRequests)
	}
}

func TestRunLoadStops(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		cfg  loadConfig
		want string
	}{
		{"duration", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			loadConfig{concurrency: 2, duration: 100 * time.Millisecond}, stopDuration},
		{"hard cap", func() (context.Context, context.CancelFunc) {
			return context.WithTimeoutCause(context.Background(), 100*time.Millisecond, errHardCap)
		}, loadConfig{concurrency: 2, requests: math.MaxInt64 / 2}, stopHardCap},
		{"interrupted", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, loadConfig{concurrency: 2, duration: time.Hour}, stopInterrupted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := tt.ctx()
			t.Cleanup(cancel)
			start := time.Now()
			m := runLoad(ctx, tt.cfg, &stubScenario{sleep: time.Millisecond}, stubWorkers(&live{}))
			if m.stopped != tt.want {
				t.Errorf("stopped by %q, want %q", m.stopped, tt.want)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %v; want about 100ms", took)
			}
			if m.elapsed < 90*time.Millisecond || m.elapsed > time.Second {
				t.Errorf("elapsed %v, want about 100ms", m.elapsed)
			}
			if m.rec.ops["op"] == nil || m.rec.ops["op"].requests == 0 {
				t.Errorf("nothing measured")
			}
		})
	}
}

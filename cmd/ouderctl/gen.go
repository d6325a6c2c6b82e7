package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitaleouder/ouder/mapping/family"
)

const genUsage = `usage: ouderctl [-database-url URL] gen -families N [-seed S] [-first K] [-date YYYY-MM-DD]
                [-format bundle|ndjson | -load [-workers W] [-base-url URL]]

Makes N synthetic families (numbers K to K+N-1) in the shape of the demo family,
deterministically: the same seed, numbers and date give byte-identical output.

  -format bundle   one FHIR transaction Bundle per line: first the shared evaluation
                   form, then a Bundle per family (default)
  -format ndjson   one resource per line (FHIR bulk data): the shared form, then
                   every resource of every family
  -load            write them into the database instead, a transaction per family,
                   with -workers in parallel (default 2 x CPUs); progress on stderr
  -date            the day the families are made for (default 2026-01-01)
`

// stderr is where gen reports progress.
var stderr io.Writer = os.Stderr

// runGen is "ouderctl gen": the deterministic synthetic family generator.
func runGen(ctx context.Context, args []string, dbURL string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := fs.Int("families", 0, "number of families")
	seed := fs.Int64("seed", 1, "random seed")
	first := fs.Int("first", 0, "number of the first family")
	date := fs.String("date", "", "day the families are made for (YYYY-MM-DD)")
	format := fs.String("format", "bundle", "bundle or ndjson")
	load := fs.Bool("load", false, "write into the database")
	workers := fs.Int("workers", 2*runtime.GOMAXPROCS(0), "transactions in parallel with -load")
	base := fs.String("base-url", defaultBase(getenv), "public FHIR base URL")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprint(out, genUsage)
		return errors.Join(errors.New("gen: bad arguments"), err)
	}
	switch {
	case *n <= 0:
		fmt.Fprint(out, genUsage)
		return errors.New("gen: -families must be at least 1")
	case *first < 0:
		return errors.New("gen: -first must not be negative")
	case *format != "bundle" && *format != "ndjson":
		return fmt.Errorf("gen: -format %q: want bundle or ndjson", *format)
	case *workers < 1:
		return errors.New("gen: -workers must be at least 1")
	}
	g := family.Generator{Seed: *seed}
	if *date != "" {
		now, err := day(*date, time.Time{})
		if err != nil {
			return err
		}
		g.Now = now.UTC()
	}
	if *load {
		l, err := openLoader(ctx, dbURL, *base)
		if err != nil {
			return err
		}
		defer l.close()
		return genLoad(ctx, l, g, *first, *n, *workers, out)
	}
	return genWrite(ctx, g, *first, *n, *format, out)
}

// genWrite writes families first..first+n-1 to out.
func genWrite(ctx context.Context, g family.Generator, first, n int, format string, out io.Writer) error {
	w := bufio.NewWriterSize(out, 1<<20)
	shared, err := family.Shared(family.TagSynthetic)
	if err != nil {
		return err
	}
	emit := func(rs []family.Resource) {
		if format == "ndjson" {
			w.Write(family.NDJSON(rs))
			return
		}
		w.Write(family.Transaction(rs))
		w.WriteByte('\n')
	}
	emit(shared)
	for i := first; i < first+n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := g.Family(i)
		if err != nil {
			return err
		}
		emit(f.Resources)
	}
	return w.Flush()
}

// genLoad writes families first..first+n-1 through l, a transaction per
// family, workers at a time, reporting progress to stderr every second and
// the totals to out. It stops at the first refused family (nothing of that
// family is stored; the families before it are).
func genLoad(ctx context.Context, l *loader, g family.Generator, first, n, workers int, out io.Writer) error {
	shared, err := family.Shared(family.TagSynthetic)
	if err != nil {
		return err
	}
	if _, err := l.post(ctx, family.Transaction(shared)); err != nil {
		return fmt.Errorf("gen: the evaluation form: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	next.Store(int64(first))
	var families, resources atomic.Int64
	start := time.Now()
	progress := func(final bool) {
		f, r := families.Load(), resources.Load()
		el := time.Since(start).Seconds()
		line := fmt.Sprintf("gen: %d/%d families, %d resources, %.0f resources/s, %.1f families/s", f, n, r, float64(r)/el, float64(f)/el)
		if f > 0 && !final {
			eta := time.Duration(float64(n-int(f)) * el / float64(f) * float64(time.Second)).Round(time.Second)
			line += ", ETA " + eta.String()
		}
		fmt.Fprintf(stderr, "\r%s   ", line)
		if final {
			fmt.Fprintln(stderr)
		}
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= first+n {
					return
				}
				f, err := g.Family(i)
				if err == nil {
					_, err = l.post(ctx, f.Transaction())
				}
				if err != nil {
					cancel(fmt.Errorf("gen: family %d: %w", i, err))
					return
				}
				families.Add(1)
				resources.Add(int64(len(f.Resources)))
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			progress(false)
			continue
		case <-done:
		}
		break
	}
	progress(true)
	if err := context.Cause(ctx); err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Fprintf(out, "loaded %d families (%d resources) in %s: %.1f families/s, %.0f resources/s\n",
		families.Load(), resources.Load(), el.Round(time.Millisecond), float64(families.Load())/el.Seconds(), float64(resources.Load())/el.Seconds())
	return nil
}

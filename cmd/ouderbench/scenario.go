package main

import (
	"context"
	"io"
)

// scenario is one kind of load. prepare runs once before the load (preloads)
// and must leave the scenario read-only: steps run concurrently.
type scenario interface {
	// prepare loads what the steps need. It returns an error when the
	// target cannot be prepared; the run then stops before any load.
	prepare(ctx context.Context, env *env) error
	// step does one iteration as w. Failures are recorded, not returned.
	step(ctx context.Context, w *worker)
	// cost is the number of requests a complete step sends, for -requests.
	cost() int
	// ops names the operations in report order.
	ops() []string
}

// env is what a scenario's prepare may use.
type env struct {
	client      *client
	seed        int64
	preload     int
	concurrency int
	batch       int
	raw         bool     // the target is the raw server
	ids         []string // Patient ids from -ids-from; nil when not given
	log         io.Writer
	tty         bool
}

// newScenario returns the scenario called name.
func newScenario(name string) (scenario, error) {
	switch name {
	case "read":
		return &readScenario{}, nil
	case "create":
		return &createScenario{}, nil
	case "crud":
		return &crudScenario{}, nil
	case "search":
		return &searchScenario{}, nil
	case "ingest":
		return &ingestScenario{}, nil
	case "everything":
		return &everythingScenario{}, nil
	}
	return nil, usagef("run: unknown scenario %q (want read, create, crud, search, ingest or everything)", name)
}

// patientLister is a scenario that preloaded Patients, for -ids-out.
type patientLister interface{ patientIDs() []string }

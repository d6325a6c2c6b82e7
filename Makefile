# Digitale Ouder: the targets CI runs too. See README.md.
GO ?= go
PKGS := ./...

.PHONY: run test deps bench bench-search lint fmt build

## run: start ouderd on 127.0.0.1:8080 in development mode with the demo family (private PostgreSQL under ./var unless DATABASE_URL is set)
run:
	$(GO) run ./cmd/ouderd -demo -dev

## build: compile the commands into ./bin
build:
	$(GO) build -o bin/ ./cmd/...

## test: the whole suite against real PostgreSQL (a throwaway cluster, or DATABASE_URL) and headless Chromium; installs what is missing first (deps)
test: deps
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

## deps: install what the tests need beyond Go when it is missing: PostgreSQL server binaries and Chromium (apt-get, as root), axe-core (npm ci into .ci/node_modules)
deps:
	.ci/deps

## bench: Go micro-benchmarks, the HTTP load scenarios against a fresh server and the raw limit, then bench-search; writes docs/performance.md (about 15 minutes)
bench:
	$(GO) test -run '^$$' -bench . -skip 'BenchmarkSearch|BenchmarkIngest' -benchmem -count 1 $(PKGS)
	$(GO) build -o bin/ ./cmd/ouderd ./cmd/ouderbench
	bin/ouderbench suite -ouderd bin/ouderd -out docs/performance.md
	$(MAKE) bench-search

## bench-search: indexing cost, then the search benchmarks on 1,000,000 generated resources; writes their section of docs/performance.md (about 8 minutes)
bench-search:
	$(GO) build -o bin/ ./cmd/ouderbench
	$(GO) test ./store/postgres -run '^$$' -bench BenchmarkIngest -benchtime 20000x -timeout 30m > bin/bench-ingest.txt
	OUDER_BENCH_RESOURCES=1000000 $(GO) test ./store/postgres -run '^$$' -bench BenchmarkSearch -benchtime 1000x -timeout 60m > bin/bench-search.txt
	bin/ouderbench gobench -out docs/performance.md bin/bench-ingest.txt bin/bench-search.txt

## lint: go vet plus staticcheck (pinned as a tool in go.mod)
lint:
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

## fmt: format the code
fmt:
	gofmt -w $$(git ls-files '*.go')

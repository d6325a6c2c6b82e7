# Digitale Ouder: the targets CI runs too. See README.md.
GO ?= go
PKGS := ./...

.PHONY: run test bench bench-search lint fmt build

## run: start ouderd on 127.0.0.1:8080 (private PostgreSQL under ./var unless DATABASE_URL is set)
run:
	$(GO) run ./cmd/ouderd

## build: compile the commands into ./bin
build:
	$(GO) build -o bin/ ./cmd/...

## test: the whole suite against real PostgreSQL (a throwaway cluster, or DATABASE_URL)
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

## bench: Go micro-benchmarks, then the HTTP load scenarios against a fresh server and the raw limit
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 $(PKGS)
	$(GO) build -o bin/ ./cmd/ouderd ./cmd/ouderbench
	bin/ouderbench suite -ouderd bin/ouderd -out docs/performance.md

## bench-search: the search benchmarks of the search issue on 1,000,000 generated resources (about 10 minutes)
bench-search:
	OUDER_BENCH_RESOURCES=1000000 $(GO) test ./store/postgres -run '^$$' -bench BenchmarkSearch -benchtime 1000x -timeout 60m

## lint: go vet plus staticcheck (pinned as a tool in go.mod)
lint:
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

## fmt: format the code
fmt:
	gofmt -w $$(git ls-files '*.go')

# Autogate. `make demo` runs the main job; `make test` runs every test (CI runs it).
SHELL   := /bin/bash
GO      ?= go
BIN     := bin/autogate
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build demo test test-go test-e2e deps vet fmt bench bench-failover bench-failover-lb bench-dispatch bench-manager clean help
all: build

help: ## list targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

build: ## build bin/autogate (and bin/autogate-shim, the services' shim it starts when it is next to it)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/autogate
	$(GO) build -o bin/autogate-shim ./cmd/autogate-shim

demo: deps build ## all-in-one gateway in a temp dir: create and run the sample services
	scripts/demo.sh

deps: ## install missing system packages the tests need (git, python3-venv, ansible-core, java, chromium)
	scripts/deps.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

fmt:
	gofmt -w $$(git ls-files '*.go')

test: deps vet test-go test-openapi test-e2e test-infra synth ## every test: Go (race), emulators, the OpenAPI contract, the five-model suite, CDK assertions, cdk synth

test-go: emulators node_modules/.installed ## Go tests with -race (starts the AWS-API emulators itself); the OpenAPI contract runs in test-openapi
	$(GO) test -race -count=1 -timeout 20m -skip '^TestOpenAPIContract$$' ./...

test-e2e: emulators ## the five-model end-to-end suite; prints accepted/succeeded/lost/unaccounted per model
	set -o pipefail; $(GO) test -race -count=1 -timeout 20m -tags e2e -run TestFiveModels -v ./cmd/autogate/ \
	  | grep -E '^model|lost:|_test\.go:[0-9]+:|^(ok|FAIL|--- |panic)'

bench: build ## API run (sync, async) vs bare os/exec of the same no-op, on the embedded store
	$(GO) test -run '^$$' -bench 'BareExec|RunSync|RunAsync' -benchtime 2000x -count 1 ./cmd/autogate/
	$(GO) test -run '^$$' -bench . -benchtime 500x -count 1 ./internal/executor/ ./internal/store/bolt/

bench-failover: emulators ## kill -9 the active gateway N times (BENCH_TRIALS, default 30): failover p50/p99/max and lease cost
	CI=true $(GO) test -run '^$$' -bench '^BenchmarkFailover$$' -benchtime $${BENCH_TRIALS:-30}x -count 1 -v ./cmd/autogate/ | grep -E 'Benchmark|lease cost|ok|FAIL'

bench-failover-lb: emulators node_modules/.installed ## deployed shape: kill -9 the active gateway behind the in-test load balancer (BENCH_TRIALS, default 20): client-visible failover p50/p99, failed requests
	CI=true $(GO) test -run '^$$' -bench '^BenchmarkFailoverLB$$' -benchtime $${BENCH_TRIALS:-20}x -count 1 -timeout 30m -v ./cmd/autogate/ | grep -E 'Benchmark|failover-lb|ok|FAIL'

bench-dispatch: emulators ## no-op runs through 1 gateway, SQS and 1/2/4 runners (BENCH_RUNS, default 200 per case): exec/s, calls per execution, idle calls/s per node (BENCH_QUIET_SECONDS, default 25)
	CI=true $(GO) test -run '^$$' -bench BenchmarkDispatch -benchtime $${BENCH_RUNS:-200}x -count 1 ./cmd/autogate/ | grep -E 'Benchmark|ok|FAIL|_test\.go:|(DynamoDB|SQS)\.'

bench-manager: ## whoami and async run submissions through the manager to one cluster vs direct (BENCH_REQUESTS, default 5000): req/s, added latency
	$(GO) test -run '^$$' -bench BenchmarkManagerRoute -benchtime $${BENCH_REQUESTS:-5000}x -count 1 ./cmd/autogate/ | grep -E 'Benchmark|ok|FAIL'

clean:
	rm -rf bin

-include $(wildcard mk/*.mk)

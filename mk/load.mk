# Load benchmark (issue 15). Included by the root Makefile.
#
#   make bench-load    async and sync no-op runs from 1, 8 and 32 clients for
#                      BENCH_LOAD_SECONDS (default 4) each, against all-in-one
#                      and distributed (1 gateway, 2 runners, DynamoDB Local +
#                      fauxqs), beside the floor server and the emulators'
#                      ceilings measured in the same run. Non-race binary.

GO ?= go

.PHONY: bench-load

bench-load: emulators ## load: accepted/s, completed/s, p50/p99 submit and e2e vs floor server and emulator ceilings (~5 min)
	CI=true $(GO) test -run '^$$' -bench BenchmarkLoad -benchtime 1x -count 1 -timeout 30m ./internal/loadbench/ | grep -E '^(load|floor|ceiling)|^ok|FAIL|load_test|ceilings_test|procs_test'

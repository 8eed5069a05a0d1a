# Fault bounds (issue 12). Included by the root Makefile.
#
#   make bench-lost    kill -9 the active gateway (local execution) with 4 runs in flight, BENCH_TRIALS
#                      times (default 10): time from the holder's death to each run declared lost,
#                      p50/p99/max, per heartbeat of BENCH_HEARTBEAT (comma-separated; default
#                      "10s,default": the former default as the baseline, then the product's default,
#                      execution.DefaultHeartbeat, 5 s), all in one run, on the binary built without -race

.PHONY: bench-lost

bench-lost: emulators ## kill -9 the active with runs in flight (BENCH_TRIALS, default 10): death → lost p50/p99/max
	CI=true $(GO) test -run '^$$' -bench BenchmarkHolderDeath -benchtime $${BENCH_TRIALS:-10}x -count 1 -timeout 60m -v ./cmd/autogate/ | grep -E 'Benchmark|holder|ok|FAIL'

# Retention benchmark (issue 15). Included by the root Makefile.
#
#   make bench-retention    one sweep pass and ?status=running with 100, 1,000 and 10,000
#                           retained executions on DynamoDB Local: calls, items, read units, p50

GO ?= go

.PHONY: bench-retention

bench-retention: emulators ## sweep pass and ?status=running vs retention (100/1k/10k executions, DynamoDB Local): must stay flat
	CI=true $(GO) test -run '^$$' -bench BenchmarkRetention -benchtime 1x -count 1 -timeout 30m ./internal/gateway/ | grep -E '^retention|ok|FAIL'

# The OpenAPI contract (included by the root Makefile; make test runs it).
#
#   make test-openapi   starts a gateway, fetches its served /v1/openapi.json, lints it with
#                       @redocly/cli (pinned in package.json; recommended rules, zero errors),
#                       generates a Go client from it with oapi-codegen v2.8.2 (Go module
#                       proxy) in a temp module, compiles it and drives the gateway through it
#                       (cmd/autogate/openapi_test.go, testdata/openapi-client)

.PHONY: test-openapi

test-openapi: node_modules/.installed ## OpenAPI document: redocly lint, and an oapi-codegen client that compiles and drives a gateway
	set -o pipefail; AUTOGATE_REDOCLY=$(CURDIR)/node_modules/.bin/redocly $(GO) test -count=1 -timeout 15m -run '^TestOpenAPIContract$$' -v ./cmd/autogate/ \
	  | grep -E 'redocly lint:|_test\.go:[0-9]+:|^(ok|FAIL|--- |    --- |panic)'

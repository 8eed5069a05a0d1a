# CDK app (infra/, its own Go module) and the pinned CDK CLI (package.json).
# Included by the root Makefile; also works alone: make -f mk/cdk.mk synth
#
#   make synth                          cdk synth of every cluster in infra/clusters.yaml, offline;
#                                       fails on any unsuppressed cdk-nag AwsSolutions error
#   make test-infra                     vet, gofmt and Go tests (CDK assertions) of infra/
#   make cdk-diff   CLUSTER=<id>        cdk diff of Autogate-<id> (needs AWS credentials)
#   make cdk-deploy CLUSTER=<id>        cdk deploy of Autogate-<id> (needs AWS credentials and Docker)
#   (CLUSTER=manager for the manager stack)

GO ?= go
NPM ?= npm

# Offline, quiet CDK CLI: no version check, no telemetry, no Node end-of-life banner.
# The image asset feeds the Lambda runner too, and Lambda rejects the OCI
# image index BuildKit pushes when it attaches its default provenance
# attestation: the image is built without attestations (SBOM is off by
# default), and synth stops warning about it.
CDK_ENV := CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 BUILDX_NO_DEFAULT_ATTESTATIONS=1
CDK := $(CDK_ENV) npx --no-install cdk

.PHONY: synth test-infra cdk-diff cdk-deploy

# npm ci with the lockfile, once per change of package.json or package-lock.json.
node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

synth: node_modules/.installed ## cdk synth of every configured cluster, offline (fails on unsuppressed cdk-nag errors)
	$(CDK) synth --quiet --no-lookups --no-notices

# No -race here: the CDK app builds constructs on one goroutine, and
# recompiling aws-cdk-go with the race detector would triple the cold build.
test-infra: ## CDK app: go vet, gofmt, assertions tests per deployment model
	cd infra && $(GO) vet ./...
	@cd infra && bad="$$(find . -path ./cdk.out -prune -o -name '*.go' -print | xargs gofmt -l)" && test -z "$$bad" || { echo "gofmt needed: $$bad"; exit 1; }
	cd infra && $(CDK_ENV) $(GO) test -count=1 -timeout 15m ./...

cdk-diff: node_modules/.installed
	@test -n "$(CLUSTER)" || { echo "usage: make cdk-diff CLUSTER=<cluster id>|manager"; exit 2; }
	$(CDK) diff Autogate-$(CLUSTER)

cdk-deploy: node_modules/.installed
	@test -n "$(CLUSTER)" || { echo "usage: make cdk-deploy CLUSTER=<cluster id>|manager"; exit 2; }
	$(CDK) deploy Autogate-$(CLUSTER)

# AWS-API emulators for tests (DynamoDB Local, fauxqs): see tools/emulators
# and the shared TESTING.md. Included by the root Makefile (include mk/*.mk).
#
#   make emulators        npm ci in tools/emulators once (stamp file), after
#                         checking that Java (for DynamoDB Local) is there
#   make emulators-start  start both on free ports; prints AWS_ENDPOINT_URL_*
#   make emulators-stop   stop them by PID
#
# Go tests start their own emulators through internal/emulator; they only
# need `make emulators` to have run. `make test` depends on it.

EMULATORS_DIR   := tools/emulators
EMULATORS_STAMP := $(EMULATORS_DIR)/node_modules/.autogate-npm-ci.stamp

.PHONY: emulators emulators-rie emulators-kms emulators-java emulators-start emulators-stop emulators-clean

emulators: emulators-java $(EMULATORS_STAMP) emulators-rie emulators-kms

# local-kms (nsmithuk), a KMS-API emulator built from the Go module proxy;
# internal/emulator starts it (LocalKMSVersion there pins the same version).
LOCAL_KMS_VERSION := v0.0.0-20260228092603-2a5e92d09ab6
emulators-kms:
	@command -v local-kms >/dev/null 2>&1 || test -x "$$(go env GOPATH)/bin/local-kms" || \
	  go install github.com/nsmithuk/local-kms@$(LOCAL_KMS_VERSION)

# AWS's Lambda Runtime Interface Emulator, a Go module (TESTING.md pins it).
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
emulators-rie:
	@command -v aws-lambda-rie >/dev/null 2>&1 || test -x "$$(go env GOPATH)/bin/aws-lambda-rie" || \
	  go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

# DynamoDB Local is a Java program; Debian/Ubuntu ship the runtime it needs.
emulators-java:
	@java -version >/dev/null 2>&1 || { \
	  echo "emulators: java not found. DynamoDB Local needs a Java 17 runtime:" >&2; \
	  echo "  sudo apt-get update && sudo apt-get install -y openjdk-17-jre-headless" >&2; \
	  exit 1; }

$(EMULATORS_STAMP): $(EMULATORS_DIR)/package.json $(EMULATORS_DIR)/package-lock.json
	cd $(EMULATORS_DIR) && npm ci --no-audit --no-fund
	@touch $@

emulators-start: emulators
	@$(EMULATORS_DIR)/run.sh start

emulators-stop:
	@$(EMULATORS_DIR)/run.sh stop

emulators-clean: emulators-stop
	rm -rf $(EMULATORS_DIR)/node_modules $(EMULATORS_DIR)/.run

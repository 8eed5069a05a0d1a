# LocalStack workflow (needs Docker; see localstack/README.md). Included by the
# root Makefile, whose mk/cdk.mk provides the npm ci stamp and CDK_ENV.
#
#   make localstack-up      start LocalStack (localstack/docker-compose.yml) and wait until it
#                           is healthy and its init hook has run; needs LOCALSTACK_AUTH_TOKEN
#   make deploy-local       build autogate:local, then cdklocal bootstrap + deploy of the
#                           cluster in localstack/clusters.local.yaml (stack Autogate-local)
#   make e2e-local          the five-model suite (TestFiveModels) against LocalStack
#   make localstack-down    stop LocalStack and delete all its state
#   make localstack-logs    the last lines of LocalStack's log
#   make synth-local        cdklocal synth of Autogate-local, offline (no Docker needed)
#
# Settings: LOCALSTACK_HOST (localhost.localstack.cloud; localhost works where
# that name does not resolve to 127.0.0.1, except for deploy-local, whose S3
# asset URLs need a subdomain), LOCALSTACK_PORT (4566), DOCKER_COMPOSE
# (docker compose), LOCALSTACK_WAIT (seconds, 180).

LOCALSTACK_HOST     ?= localhost.localstack.cloud
LOCALSTACK_PORT     ?= 4566
LOCALSTACK_ENDPOINT := http://$(LOCALSTACK_HOST):$(LOCALSTACK_PORT)
DOCKER_COMPOSE      ?= docker compose
LOCALSTACK_WAIT     ?= 180

# The cluster of localstack/clusters.local.yaml: keep these in step with it.
LOCAL_CLUSTER := local
LOCAL_ACCOUNT := 000000000000
LOCAL_REGION  ?= us-east-1
LOCAL_IMAGE   := autogate:local
LOCAL_STACK   := Autogate-$(LOCAL_CLUSTER)

LOCALSTACK_SH = LOCALSTACK_ENDPOINT=$(LOCALSTACK_ENDPOINT) LOCALSTACK_STACK=$(LOCAL_STACK) \
	DOCKER_COMPOSE="$(DOCKER_COMPOSE)" LOCALSTACK_WAIT=$(LOCALSTACK_WAIT) localstack/localstack.sh

# cdklocal runs from localstack/, whose cdk.json runs the same infra app with
# the context clustersFile=../localstack/clusters.local.yaml (and the zones of
# account 000000000000, so there are no lookups). cdklocal drops every other
# AWS_* variable (profiles, keys) and, when AWS_ENDPOINT_URL is set, needs
# AWS_ENDPOINT_URL_S3 with an s3. subdomain. The output directory must be
# absolute: the app resolves a relative one against the repository root.
LOCAL_CDK_OUT := $(CURDIR)/.cache/cdk.out.localstack
CDKLOCAL = cd localstack && $(CDK_ENV) AWS_ENDPOINT_URL=$(LOCALSTACK_ENDPOINT) \
	AWS_ENDPOINT_URL_S3=http://s3.$(LOCALSTACK_HOST):$(LOCALSTACK_PORT) \
	npx --no-install cdklocal --no-notices --output $(LOCAL_CDK_OUT)

# The services the bootstrap and the stack use (see SERVICES in the compose file).
LOCAL_DEPLOY_SERVICES := cloudformation sts iam ssm s3 ecr ecs ec2 elbv2 logs cloudwatch \
	application-autoscaling dynamodb sqs secretsmanager kms

.PHONY: localstack-up localstack-down localstack-logs deploy-local e2e-local synth-local

localstack-up: ## start LocalStack in Docker (needs LOCALSTACK_AUTH_TOKEN) and wait until it is healthy
	@$(LOCALSTACK_SH) preflight
	$(DOCKER_COMPOSE) -f localstack/docker-compose.yml up -d
	@$(LOCALSTACK_SH) wait
	@$(LOCALSTACK_SH) require dynamodb sqs

deploy-local: node_modules/.installed ## build autogate:local and deploy Autogate-local to LocalStack with cdklocal
	@$(LOCALSTACK_SH) require $(LOCAL_DEPLOY_SERVICES)
	docker build -t $(LOCAL_IMAGE) .
	$(CDKLOCAL) bootstrap aws://$(LOCAL_ACCOUNT)/$(LOCAL_REGION)
	$(CDKLOCAL) deploy $(LOCAL_STACK) --require-approval never --no-lookups
	@echo "deploy-local: $(LOCAL_STACK) outputs:"
	@env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_PAGER= \
		aws --endpoint-url $(LOCALSTACK_ENDPOINT) --region $(LOCAL_REGION) cloudformation describe-stacks \
		--stack-name $(LOCAL_STACK) --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output table
	@env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_PAGER= \
		aws --endpoint-url $(LOCALSTACK_ENDPOINT) --region $(LOCAL_REGION) ecs describe-services \
		--cluster autogate-$(LOCAL_CLUSTER) --services gateway runner \
		--query 'services[].[serviceName,status,desiredCount,runningCount]' --output table

# The suite runs real autogate gateway and runner processes on this machine
# against LocalStack's DynamoDB and SQS (AUTOGATE_EMULATORS=external: it
# starts no emulators and makes its own tables and queues per model). CI=true
# turns every skip (a missing tool) into a failure. The cluster IDs come from
# AUTOGATE_E2E_CLUSTERS (default ha-1,dyn-1,emb-1) and the region from
# LOCAL_REGION. The stack's table and queues, when deployed, are passed as
# AUTOGATE_E2E_TABLE, _QUEUE_URL and _DLQ_URL for reference.
e2e-local: ## the five-model suite (TestFiveModels) against LocalStack's DynamoDB and SQS
	@$(LOCALSTACK_SH) require dynamodb sqs
	@set -e; exports="$$($(LOCALSTACK_SH) outputs)"; eval "$$exports"; \
	env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL_DYNAMODB -u AWS_ENDPOINT_URL_SQS \
		AUTOGATE_EMULATORS=external CI=true \
		AWS_ENDPOINT_URL=$(LOCALSTACK_ENDPOINT) AWS_REGION=$(LOCAL_REGION) \
		AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true \
		$(GO) test -tags e2e -count=1 -v -timeout 30m -run TestFiveModels ./cmd/autogate/

localstack-down: ## stop LocalStack and delete its state (compose down -v)
	LOCALSTACK_AUTH_TOKEN=$${LOCALSTACK_AUTH_TOKEN:-unused} $(DOCKER_COMPOSE) -f localstack/docker-compose.yml down -v --remove-orphans

localstack-logs:
	LOCALSTACK_AUTH_TOKEN=$${LOCALSTACK_AUTH_TOKEN:-unused} $(DOCKER_COMPOSE) -f localstack/docker-compose.yml logs --tail 200 localstack

synth-local: node_modules/.installed ## cdklocal synth of Autogate-local, offline: checks clusters.local.yaml and cdk-nag
	$(CDKLOCAL) synth --quiet --no-lookups $(LOCAL_STACK)

#!/usr/bin/env bash
# Helpers of the LocalStack targets in ../mk/localstack.mk (run from the
# repository root). Each subcommand prints what it checks and exits non-zero
# with the reason when something is missing.
#
#   localstack.sh preflight          Docker, its compose plugin and LOCALSTACK_AUTH_TOKEN are there
#   localstack.sh wait               wait until LocalStack answers /_localstack/health and its
#                                    init hooks have run (LOCALSTACK_WAIT seconds, default 180)
#   localstack.sh require SERVICE…   LocalStack is up and each SERVICE is enabled
#   localstack.sh outputs            print `export AUTOGATE_E2E_…=…` lines from the stack outputs
#                                    (nothing when the stack is not deployed)
#
# Settings (environment): LOCALSTACK_ENDPOINT (default
# http://localhost.localstack.cloud:4566), LOCALSTACK_STACK (Autogate-local),
# DOCKER_COMPOSE (docker compose), LOCALSTACK_WAIT.
set -euo pipefail

endpoint="${LOCALSTACK_ENDPOINT:-http://localhost.localstack.cloud:4566}"
stack="${LOCALSTACK_STACK:-Autogate-local}"
compose="${DOCKER_COMPOSE:-docker compose}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() {
    echo "localstack: $*" >&2
    exit 1
}

# compose runs docker compose on our file; down/logs need no real token.
compose_cmd() {
    # shellcheck disable=SC2086 # DOCKER_COMPOSE may be two words
    LOCALSTACK_AUTH_TOKEN="${LOCALSTACK_AUTH_TOKEN:-unused}" $compose -f "$here/docker-compose.yml" "$@"
}

# aws runs the AWS CLI against LocalStack with its dummy credentials, none of
# the caller's profile or session settings.
aws_local() {
    env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN \
        AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_PAGER= \
        aws --endpoint-url "$endpoint" --region us-east-1 "$@"
}

health() { curl -fsS --max-time 5 "$endpoint/_localstack/health"; }

preflight() {
    command -v docker >/dev/null 2>&1 ||
        die "docker not found: install Docker (Engine or Desktop) first; see localstack/README.md"
    # shellcheck disable=SC2086
    $compose version >/dev/null 2>&1 ||
        die "'$compose' does not work: install the Docker Compose plugin (or set DOCKER_COMPOSE=docker-compose)"
    docker info >/dev/null 2>&1 ||
        die "the Docker engine is not reachable (is it running, and may this user use it?)"
    command -v curl >/dev/null 2>&1 || die "curl not found: it is used to wait for LocalStack"
    if [ -z "${LOCALSTACK_AUTH_TOKEN:-}" ]; then
        cat >&2 <<'EOF'
localstack: LOCALSTACK_AUTH_TOKEN is not set.
  Since March 2026 the LocalStack image starts only with an auth token.
  Sign in at https://app.localstack.cloud, copy the token from Settings - Auth Tokens, then:
      export LOCALSTACK_AUTH_TOKEN=ls-...
      make localstack-up
  (localstack/README.md says which LocalStack plan covers which step.)
EOF
        exit 1
    fi
    echo "localstack: docker, compose and LOCALSTACK_AUTH_TOKEN are there"
}

wait_ready() {
    local limit="${LOCALSTACK_WAIT:-180}" start=$SECONDS body
    echo "localstack: waiting up to ${limit}s for $endpoint/_localstack/health"
    until body="$(health 2>/dev/null)"; do
        # A container that exited (e.g. its license activation failed) will
        # not come back: say so now rather than after the whole wait.
        if [ -n "$(compose_cmd ps --status exited --quiet localstack 2>/dev/null)" ]; then
            compose_cmd logs --tail 60 localstack >&2 || true
            die "the LocalStack container exited (logs above); a failed license activation means LOCALSTACK_AUTH_TOKEN is wrong or its plan does not cover the image"
        fi
        if ((SECONDS - start >= limit)); then
            compose_cmd logs --tail 60 localstack >&2 || true
            die "no answer from $endpoint/_localstack/health after ${limit}s (logs above). If the log says the license activation failed, check LOCALSTACK_AUTH_TOKEN; if localhost.localstack.cloud does not resolve to 127.0.0.1 on this machine, run make with LOCALSTACK_HOST=localhost"
        fi
        sleep 2
    done
    echo "localstack: $(grep -Eo '"(edition|version)": *"[^"]*"' <<<"$body" | tr '\n' ' ')"
    # Then the READY init hooks (init/ready.d): completed, none failed.
    until body="$(curl -fsS --max-time 5 "$endpoint/_localstack/init/ready" 2>/dev/null)" &&
        grep -Eq '"completed": *true' <<<"$body"; do
        if ((SECONDS - start >= limit)); then
            compose_cmd logs --tail 60 localstack >&2 || true
            die "the init hooks did not complete within ${limit}s (logs above)"
        fi
        sleep 2
    done
    if grep -Eq '"state": *"(ERROR|FAILED)"' <<<"$body"; then
        compose_cmd logs --tail 60 localstack >&2 || true
        die "an init hook failed: $body"
    fi
    echo "localstack: ready ($body)"
}

require() {
    local body state missing=() svc
    body="$(health 2>/dev/null)" ||
        die "LocalStack does not answer at $endpoint: run 'make localstack-up' first"
    for svc in "$@"; do
        state="$(grep -Eo "\"$svc\": *\"[a-z_]+\"" <<<"$body" | sed -E 's/.*"([a-z_]+)"$/\1/' || true)"
        printf '  %-24s %s\n' "$svc" "${state:-not listed}"
        case "$state" in
        available | running | starting) ;;
        # Not in the health list under this name: let the call itself say.
        "") echo "  (LocalStack's health does not list $svc; going on)" ;;
        *) missing+=("$svc") ;;
        esac
    done
    if ((${#missing[@]})); then
        die "not enabled in this LocalStack: ${missing[*]} (check SERVICES in localstack/docker-compose.yml and what your LocalStack plan includes; localstack/README.md)"
    fi
}

# outputs prints the stack's outputs as export lines for the e2e suite.
outputs() {
    local out table queue dlq
    if ! command -v aws >/dev/null 2>&1; then
        echo "localstack: no AWS CLI here, so the stack outputs are not read (the suite does not need them)" >&2
        return 0
    fi
    if ! out="$(aws_local cloudformation describe-stacks --stack-name "$stack" \
        --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text 2>/dev/null)"; then
        echo "localstack: stack $stack is not deployed; the suite makes its own tables and queues (make deploy-local deploys it)" >&2
        return 0
    fi
    table="$(awk '$1 == "TableName" {print $2}' <<<"$out")"
    queue="$(awk '$1 == "WorkQueueUrl" {print $2}' <<<"$out")"
    dlq="$(awk '$1 == "DeadLetterQueueUrl" {print $2}' <<<"$out")"
    if [ -z "$table" ] || [ -z "$queue" ] || [ -z "$dlq" ]; then
        die "stack $stack lacks the TableName, WorkQueueUrl or DeadLetterQueueUrl output: $out"
    fi
    printf "export AUTOGATE_E2E_TABLE='%s' AUTOGATE_E2E_QUEUE_URL='%s' AUTOGATE_E2E_DLQ_URL='%s'\n" "$table" "$queue" "$dlq"
    echo "localstack: from stack $stack: table $table, queue $queue, dead-letter queue $dlq" >&2
}

case "${1:-}" in
preflight) preflight ;;
wait) wait_ready ;;
require)
    shift
    require "$@"
    ;;
outputs) outputs ;;
*) die "usage: $0 preflight | wait | require SERVICE... | outputs" ;;
esac

#!/bin/bash
# LocalStack READY hook (runs inside the LocalStack container, once it serves
# requests; its state is at /_localstack/init/ready).
#
# Creates the one thing the cluster stack expects to exist outside CDK: the
# Secrets Manager secret with the cluster's stored-secret key (README.md,
# "Deploying a cluster to AWS", step 2), named autogate/<cluster>/secret-key,
# which ECS hands to the gateway and runner tasks as AUTOGATE_SECRET_KEY.
#
# Nothing else: the stack (make deploy-local) creates the cluster's table and
# queues, and the five-model suite (make e2e-local) creates its own tables and
# queues per model.
set -euo pipefail

cluster="${AUTOGATE_LOCAL_CLUSTER:-local}"
region=us-east-1 # the region of localstack/clusters.local.yaml
name="autogate/${cluster}/secret-key"

if awslocal --region "$region" secretsmanager describe-secret --secret-id "$name" >/dev/null 2>&1; then
    echo "autogate: secret ${name} already exists"
    exit 0
fi
# base64 of 32 random bytes, as autogate expects (44 characters, no newline).
key="$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
awslocal --region "$region" secretsmanager create-secret --name "$name" \
    --description "Autogate stored-secret key of the LocalStack cluster ${cluster}" \
    --secret-string "$key" >/dev/null
echo "autogate: created secret ${name}"

#!/bin/bash
# LocalStack READY hook (runs inside the LocalStack container, once it serves
# requests; its state is at /_localstack/init/ready).
#
# Creates the Secrets Manager secret autogate/<cluster>/secret-key with a
# legacy stored-secret key. The cluster stack seals stored secrets under the
# KMS key it creates (README.md, "Deploying a cluster to AWS", step 2) and
# passes this secret to the tasks (as AUTOGATE_SECRET_KEY) only when the
# cluster entry names it (secretKeySecret), as a cluster deployed before its
# KMS key does.
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

#!/bin/sh
# Sample executable service. The API token arrives as an environment variable
# bound from the secret "demo-token"; Autogate redacts it from captured output.
echo "hello from $(hostname) as execution $AUTOGATE_EXECUTION_ID"
echo "args: $*"
echo "the token is $DEMO_TOKEN (you should see it redacted)"

#!/usr/bin/env bash
# Starts the executor with its instance's settings (/etc/coderun/executor.env). On AWS the Redis
# URL, which holds a token, is read from Secrets Manager at start and never written to disk.
set -euo pipefail
if [ -n "${REDIS_URL_SECRET_ARN:-}" ]; then
  CODERUN_EXECUTOR__STORE__URL="$(aws secretsmanager get-secret-value \
    --secret-id "$REDIS_URL_SECRET_ARN" --query SecretString --output text)"
  export CODERUN_EXECUTOR__STORE__URL
fi
unset REDIS_URL_SECRET_ARN
exec /usr/local/bin/coderun-executor

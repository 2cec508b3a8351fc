#!/bin/bash
# LocalStack init hook (READY stage): creates Berth's table, bucket and
# queues from infra/resources.json, with the same script tests and
# developers run (mounted by localstack/docker-compose.yml), and leaves the
# environment for clients in /tmp/berth.env inside the container.
set -euo pipefail

# LocalStack's own interpreter has boto3.
PY=/opt/code/localstack/.venv/bin/python
[ -x "$PY" ] || PY=python3
"$PY" /opt/berth/localstack/create_resources.py \
    --endpoint-url http://localhost:4566 \
    --region "${AWS_DEFAULT_REGION:-us-east-1}" \
    --resources /opt/berth/infra/resources.json \
    | sed 's#http://localhost:4566#http://127.0.0.1:4566#' >/tmp/berth.env
cat /tmp/berth.env

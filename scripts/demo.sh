#!/usr/bin/env bash
# The demo: installs what is missing, builds esmd, starts the local peers (an SQS/SNS
# emulator) and a function host, runs esmd and shows records flowing, a poison pill being
# isolated and its failure record delivered. Everything runs on loopback and is stopped at the
# end (peers by process id).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
python3 -c 'import boto3' 2>/dev/null || pip install -q boto3
scripts/build.sh >/dev/null
scripts/peers.sh install sqs >&2
started=$(scripts/peers.sh status sqs >/dev/null 2>&1 && echo no || echo yes)
eval "$(scripts/peers.sh start sqs)"
trap '[ "$started" = yes ] && scripts/peers.sh stop sqs >/dev/null 2>&1' EXIT
SQS_ENDPOINT=$SQS_ENDPOINT python3 scripts/demo.py

#!/usr/bin/env bash
# Writes libFuzzer seeds for fuzz_config into $1: the example configs of the unit tests plus a
# few hand-written edge cases. Prints how many.
set -euo pipefail
out=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
n=0
for f in "$root"/tests/unit/data/config/*.json; do
  cp "$f" "$out/seed-$(basename "$f")"; n=$((n + 1))
done
i=0
while IFS= read -r line; do
  i=$((i + 1)); printf '%s' "$line" > "$out/seed-edge-$i"; n=$((n + 1))
done <<'EDGES'
{}
[]
{"functions":{"f":{"url":"http://127.0.0.1:1/x","protocol":"http"}},"event_source_mappings":[{"FunctionName":"f","EventSourceArn":"arn:aws:sqs:us-east-1:000000000000:q","BatchSize":0}]}
{"functions":{"f":{"url":"http://h/2015-03-31/functions/f/invocations","protocol":"lambda","headers":{"A":"${NOPE}"}}},"event_source_mappings":[{"FunctionName":"arn:aws:lambda:us-east-1:1:function:f","EventSourceArn":"arn:aws:kinesis:us-east-1:000000000000:stream/s","StartingPosition":"AT_TIMESTAMP","BisectBatchOnFunctionError":true,"MaximumRetryAttempts":-1,"DestinationConfig":{"OnFailure":{"Destination":"file:///tmp/x.jsonl"}}}]}
{"functions":{"f":{"url":"http://h/"}},"event_source_mappings":[{"FunctionName":"f","Topics":["t"],"SelfManagedEventSource":{"Endpoints":{"KAFKA_BOOTSTRAP_SERVERS":["127.0.0.1:9092"]}},"StartingPosition":"TRIM_HORIZON","FilterCriteria":{"Filters":[{"Pattern":"{\"value\":{\"a\":[1]}}"}]}}]}
EDGES
echo "$n"

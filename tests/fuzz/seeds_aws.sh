#!/usr/bin/env bash
# Writes libFuzzer seeds for fuzz_aws into $1: error bodies as fauxqs, kinesis-local and AWS
# send them (JSON 1.0/1.1 and query-protocol XML). Prints how many.
set -euo pipefail
out=$1
mkdir -p "$out"
python3 - "$out" <<'PY'
import os, sys, struct
out = sys.argv[1]
cases = [
    (400, b'{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}'),
    (400, b'{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard"}'),
    (400, b'{"__type":"ExpiredIteratorException:http://internal.amazon.com/","Message":"Iterator expired"}'),
    (429, b'{"message":"Too Many Requests"}'),
    (500, b'internal error'),
    (503, b''),
    (200, b'{"Messages":[]}'),
    (400, b'<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>'),
    (404, b'<Code>NotFound</Code><Message>unterminated'),
    (0, b''),
]
for i, (st, body) in enumerate(cases):
    open(os.path.join(out, "seed-%03d" % i), "wb").write(struct.pack(">H", st) + b"\x00" + body)
print(len(cases))
PY

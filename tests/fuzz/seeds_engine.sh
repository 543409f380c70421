#!/usr/bin/env bash
# Seeds for the engine's fuzz targets. fuzz_engine_admin_guard: requests the integration tests send (one field a line:
# method, Host, Origin, Sec-Fetch-Site, Content-Type, Content-Length, Transfer-Encoding,
# Authorization, token; '~' = absent; the first byte's low bit = loopback).
set -euo pipefail
out=${1:?usage: seeds_engine.sh DIR}
n=0
seed() { printf '%s' "$1" > "$out/engine_$n"; n=$((n + 1)); }
seed $'\x01POST\n127.0.0.1:9400\n~\n~\n~\n~\n~\n~\n~'
seed $'\x01POST\n127.0.0.1:9400\nhttp://evil.example\ncross-site\napplication/json\n2\n~\n~\n~'
seed $'\x01POST\nrebind.example:9400\nhttp://rebind.example:9400\nsame-origin\n~\n~\n~\n~\n~'
seed $'\x01POST\n127.0.0.1:9400\n~\n~\ntext/plain;charset=UTF-8\n3\n~\n~\n~'
seed $'\x01POST\n127.0.0.1:9400\n~\n~\nmultipart/form-data; boundary=x\n~\nchunked\n~\n~'
seed $'\x00POST\n192.0.2.2:9400\n~\n~\n~\n0\n~\nBearer 0123456789abcdef\n0123456789abcdef'
seed $'\x00POST\n192.0.2.2:9400\n~\n~\n~\n0\n~\nbearer  0123456789abcdeX \n0123456789abcdef'
seed $'\x00GET\n~\nnull\ncross-site\ntext/plain\n~\n~\n~\n~'
# fuzz_engine_api: method, path, query, failure record
seed $'GET\n/2015-03-31/event-source-mappings\nFunctionName=fn&MaxItems=2&Marker=1\n{"KafkaBatchInfo":{"bootstrapServers":"b:9092"},"payload":{"records":{"t-0":[]}}}'
seed $'GET\n/2015-03-31/event-source-mappings/b\n\n{"requestContext":{"functionArn":"arn:aws:lambda:r:1:function:fn"},"KinesisBatchInfo":{"streamArn":"arn:aws:kinesis:r:1:stream/s"},"payload":{"Records":[]}}'
seed $'PUT\n/2015-03-31/event-source-mappings/a\nEventSourceArn=arn:aws:sqs:r:1:q\n{"SQSBatchInfo":{"queueArn":"arn:aws:sqs:r:1:q"}}'
echo "$n seeds"

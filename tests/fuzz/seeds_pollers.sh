#!/usr/bin/env bash
# Writes libFuzzer seeds for fuzz_pollers_* into $1: ReceiveMessage and GetRecords/ListShards
# responses as the emulators send them, and a few Kafka record layouts. Prints how many.
set -euo pipefail
out=$1
mkdir -p "$out"
python3 - "$out" <<'PY'
import os, sys, json, struct
out = sys.argv[1]
n = 0
def emit(b):
    global n
    n += 1
    open(os.path.join(out, "seed-%03d" % n), "wb").write(b if isinstance(b, bytes) else b.encode())
msg = {"MessageId": "3b5c-1", "ReceiptHandle": "rh-1", "MD5OfBody": "x", "Body": "hello \u2713",
       "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1700000000000", "SenderId": "A",
                      "ApproximateFirstReceiveTimestamp": "1700000000001", "MessageGroupId": "g",
                      "SequenceNumber": "1"},
       "MessageAttributes": {"t": {"DataType": "String", "StringValue": "a"},
                             "b": {"DataType": "Binary", "BinaryValue": "AAH/"}},
       "MD5OfMessageAttributes": "y"}
emit(json.dumps({"Messages": [msg, dict(msg, MessageId="2", ReceiptHandle="rh-2", Body="")]}))
emit(json.dumps({"Messages": []}))
emit(json.dumps({}))
emit(json.dumps({"Messages": [{"MessageId": "x"}]}))
emit(json.dumps({"Messages": "nope"}))
rec = {"SequenceNumber": "49590338271490256608559692538361571095921575989136588898",
       "ApproximateArrivalTimestamp": 1700000000.123, "Data": "aGVsbG8=", "PartitionKey": "pk"}
emit(json.dumps({"Records": [rec, dict(rec, SequenceNumber="49590338271490256608559692538361571095921575989136588899")],
                 "NextShardIterator": "it", "MillisBehindLatest": 0, "ChildShards": None}))
emit(json.dumps({"Records": [], "NextShardIterator": None, "ChildShards": [{"ShardId": "s2", "ParentShards": ["s1"]}]}))
emit(json.dumps({"Records": [dict(rec, ApproximateArrivalTimestamp=1e300)], "NextShardIterator": "i"}))
emit(json.dumps({"Shards": [{"ShardId": "shardId-000000000000", "ParentShardId": "p",
                             "SequenceNumberRange": {"StartingSequenceNumber": "1", "EndingSequenceNumber": "9"}}],
                 "NextToken": "tok"}))
for flags in (0, 1, 2, 3, 8, 0x10, 0x20):
    emit(bytes([flags]) + struct.pack("<q", 42) + b"topic-a\xffkey\xffvalue\xffh1\xff\x00\x80\xff")
print(n)
PY

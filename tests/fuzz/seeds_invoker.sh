#!/usr/bin/env bash
# Writes libFuzzer seeds for fuzz_invoker_* into $1 (RBIF bodies over small batches, and wire
# facts for the classifier). Prints how many.
set -euo pipefail
out=$1
mkdir -p "$out"
python3 - "$out" <<'PY'
import os, sys, json
out = sys.argv[1]
n = 0
def emit(b):
    global n
    n += 1
    open(os.path.join(out, "seed-%03d" % n), "wb").write(b)
ids = ["m-1", "m-2", "m-3"]
kids = ["t-0:5", "t-0:6", "t-1:7"]
bodies = [b"", b"null", b"{}", b"[]", b'{"batchItemFailures":[]}', b'{"batchItemFailures":null}',
          b'{"batchItemFailures":[{"itemIdentifier":"m-2"}]}',
          b'{"batchItemFailures":[{"itemIdentifier":"m-3"},{"itemIdentifier":"m-1"},{"itemIdentifier":"m-3"}]}',
          b'{"batchItemFailures":[{"itemIdentifier":""}]}', b'{"batchItemFailures":[{"itemIdentifier":null}]}',
          b'{"batchItemFailures":[{"itemIdentifier":"nope"}]}', b'{"batchItemFailures":{}}', b"not json",
          b'{"batchItemFailures":[{"itemIdentifier":"m-1"}', b'{"batchItemFailures":[1]}']
for b in bodies:
    emit(b"\x00" + "\n".join(ids).encode() + b"\0" + b)
kb = [b'{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":6}}]}',
      b'{"batchItemFailures":[{"itemIdentifier":{"partition":"t-1","offset":"7"}}]}',
      b'{"batchItemFailures":[{"itemIdentifier":{"partition":"t-1","offset":-1}}]}',
      b'{"batchItemFailures":[{"itemIdentifier":{"partition":"t-9"}}]}']
for b in kb:
    emit(b"\x01" + "\n".join(kids).encode() + b"\0" + b)
print(n)
PY

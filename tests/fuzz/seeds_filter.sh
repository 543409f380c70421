#!/usr/bin/env bash
# Writes libFuzzer seeds for fuzz_filter into $1, one per yes/no line of the unit corpus
# (tests/unit/data/filter/corpus.txt): source byte, patterns, NUL, record, NUL, payload.
set -euo pipefail
out=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
python3 - "$root/tests/unit/data/filter/corpus.txt" "$out" <<'PY'
import sys, os
src_byte = {"sqs": 0, "kinesis": 1, "kafka": 2}
corpus, out = sys.argv[1], sys.argv[2]
src, pats, rec, n = "sqs", [], "{}", 0
def emit(payload):
    global n
    data = bytes([src_byte[src]]) + "\n".join(pats).encode() + b"\0" + rec.encode() + b"\0" + payload
    n += 1
    with open(os.path.join(out, "seed-%04d" % n), "wb") as f:
        f.write(data)
for line in open(corpus, encoding="utf-8"):
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        continue
    kw, _, arg = line.partition(" ")
    if kw == "==":
        src, pats, rec = "sqs", [], "{}"
    elif kw == "src":
        src = arg
    elif kw == "pattern":
        pats.append(arg)
    elif kw == "record":
        rec = arg
    elif kw in ("yes", "no"):
        emit(arg.encode())
    elif kw in ("yes-hex", "no-hex"):
        emit(bytes.fromhex(arg))
    elif kw.startswith("invalid"):
        emit(b"{}")
print(n)
PY

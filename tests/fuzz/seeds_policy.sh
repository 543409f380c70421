#!/usr/bin/env bash
# Writes libFuzzer seeds for fuzz_policy into $1: stored state texts and simulated batches
# (poison pills under bisect, partial failures, throttle storms, old records). Prints how many.
set -euo pipefail
out=$1
mkdir -p "$out"
python3 - "$out" <<'PY'
import os, sys
out = sys.argv[1]
seeds = [b"p1 n=10 lo=3 a=1 i=2 b=0 e=10,5", b"p1 n=1 lo=0 a=0 i=0 b=0 e=1", b"p1 n=4 lo=4 a=0 i=0 b=0 e=",
         bytes([10, 1, 3]) + bytes([1] * 20), bytes([10, 3, 3]) + bytes([2, 0x10, 2, 0x10, 2, 0x10]),
         bytes([7, 0, 0]) + bytes([3] * 12), bytes([5, 0x25, 7]) + bytes([0xf1] * 8),
         bytes([9, 0x19, 2]) + bytes([1, 1, 1, 5, 1, 4, 1])]
for i, s in enumerate(seeds):
    open(os.path.join(out, "seed-%03d" % i), "wb").write(s)
print(len(seeds))
PY

#!/usr/bin/env bash
# Writes `esmd --config-reference` (the mapping-key table) into docs/config.md, between the
# config-reference markers. Run after changing config/esm_config_keys.c:
#   scripts/config-reference.sh [path/to/esmd]     (default: build/esmd, built first)
set -euo pipefail
cd "$(dirname "$0")/.."
esmd=${1:-}
if [ -z "$esmd" ]; then esmd="$(scripts/build.sh)/esmd"; fi
"$esmd" --config-reference | python3 -c '
import sys
doc = "docs/config.md"
begin, end = "<!-- config-reference:begin -->\n", "<!-- config-reference:end -->"
table = sys.stdin.read()
if not table.strip():
    sys.exit("config-reference: esmd printed nothing; docs/config.md left unchanged")
text = open(doc, encoding="utf-8").read()
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc, "w", encoding="utf-8").write(head + begin + table + end + tail)
'

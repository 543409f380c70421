"""Renders the figures the chaos scenarios appended to $CHAOS_RESULTS (JSON lines) as a
Markdown table: python3 tests/chaos/report.py RESULTS.jsonl"""

import json
import sys

COLUMNS = [("scenario", "scenario"), ("records", "records pushed"), ("kills", "kill -9 survived"),
           ("outages", "peer outages"), ("lost", "records lost"), ("duplicates", "duplicate deliveries"),
           ("most_deliveries_of_one_record", "most deliveries of one record")]


def main(path):
    rows = []
    try:
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        pass
    if not rows:
        print("(no chaos figures recorded)")
        return
    print("| " + " | ".join(h for _, h in COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k, _ in COLUMNS) + " |")
    kills = sum(r.get("kills", 0) for r in rows)
    pushed = sum(r.get("records", 0) for r in rows)
    lost = sum(r.get("lost", 0) for r in rows)
    print(f"\ntotal: {pushed} records pushed, {kills} kill -9 survived, {lost} records lost")


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""Markdown tables from build-bench/results.jsonl (or the files given): one row per figure,
the reference next to it. usage: bench/summarize.py [--since ISO-TIME] [FILE...]"""
import json
import os
import sys


def rows(paths, since):
    for p in paths:
        for line in open(p):
            d = json.loads(line)
            if d.get("t", "") >= since:
                yield d


def fmt(d):
    c = d["case"]
    e = d.get("esmd") if isinstance(d.get("esmd"), dict) else {}
    head = f"| {c} | {d['t'][11:19]} | {d['load1']} | {d.get('esmd_commit', '?')} |"
    if c in ("sqs", "sqs-shape"):
        return (head + f" batch {d['batch']}, {d['payload']} B | {e['per_s']} rec/s, {e['cpu_us_per_record']} µs CPU/rec,"
                f" peak RSS {e['peak_rss_mb']} MB | ceiling {d['ceiling']['per_s']} rec/s | **{d['ratio']}** |")
    if c in ("kafka", "kafka-shape"):
        ref = (d["kcat_before"]["per_s"] + d["kcat_after"]["per_s"]) // 2
        part = " (time limit hit: rate of what was committed)" if e.get("stopped_at_time_limit") else ""
        win = {0: ", window 0", None: ", window default (500 ms)"}.get(d.get("window", "?"), "")
        return (head + f" batch {d['batch']}{win}, {d['payload']} B, {d['partitions']} partitions | {e['per_s']} rec/s{part},"
                f" {e['cpu_us_per_record']} µs CPU/rec, peak RSS {e['peak_rss_mb']} MB | kcat {ref} rec/s | **{d['ratio']}** |")
    if c == "kinesis":
        d.setdefault("ceiling", d.get("ceiling_limit10000_unthrottled"))
        d.setdefault("same_limits", d.get("ceiling_limit_batchsize_5_per_s"))
        steady = ""
        if "per_s_from_first_invoke" in e:
            steady = (f" ({e['per_s_from_first_invoke']} from the first invocation:"
                      f" {round(e['per_s_from_first_invoke'] / d['ceiling']['per_s'], 3)})")
        return (head + f" batch {d['batch']}, 4 shards | {e['per_s']} rec/s from launch{steady}, {e['cpu_us_per_record']} µs CPU/rec,"
                f" peak RSS {e['peak_rss_mb']} MB | ceiling {d['ceiling']['per_s']}; same limits {(d['same_limits'] or {}).get('per_s', '-')} |"
                f" **{d['ratio']}** ({d['ratio_to_same_limits']} vs same limits) |")
    if c in ("sqs-latency", "kafka-latency"):
        ref = d.get("reference_consumer")
        r = f"plain consumer p50 {ref['p50_ms']} / p99 {ref['p99_ms']} ms" if ref else "-"
        return (head + f" {d['rate_per_s']}/s for {d['seconds']} s, window 0 | p50 {d['p50_ms']} ms, p90 {d['p90_ms']},"
                f" p99 {d['p99_ms']}, max {d['max_ms']} | {r} | |")
    if c == "sqs-idle":
        return (head + f" {d['config']} | RSS {d['rss_mb']} MB, CPU {d['cpu_pct_of_core']} % of a core,"
                f" {d['fds']} fds | {d['mappings']} mappings | |")
    if c == "checkpoint":
        return (head + f" {d['name']} | {d['per_s']} checkpoints/s ({d['us_per_commit']} µs/commit) |"
                f" {d['reference']} {d['ref_per_s']}/s | **{d['ratio']}** |")
    if c == "sigv4":
        own = ""
        if "esmd_sigv4_cpu_us_per_request" in d:
            own = (f"; esmd's signer {d['esmd_sigv4_cpu_us_per_request']} µs (signing {d['esmd_signing_cpu_us']} µs,"
                   f" **{d['esmd_ratio']}**)")
        return (head + f" {d['body_bytes']} B body, keep-alive | curl's signer {d['sigv4_cpu_us_per_request']} µs CPU/request"
                f" (signing {d['signing_cpu_us']} µs, **{d['ratio']}**){own} | unsigned {d['plain_cpu_us_per_request']} µs | |")
    if c == "kinesis-shards":
        return (head + f" 1 vs {d['shards']} shards | {d['many']['rss_mb']} MB, {d['many']['cpu_pct_of_core']} % CPU,"
                f" {d['kb_per_shard']} KB/shard | 1 shard: {d['one']['rss_mb']} MB | |")
    if c == "filter":
        return head + " bench/filter.sh | " + "<br>".join(x for x in d["output"] if x.strip()) + " | | |"
    return head + " " + json.dumps(d)[:200] + " | | |"


def main(argv):
    since = ""
    if argv[:1] == ["--since"]:
        since, argv = argv[1], argv[2:]
    paths = argv or [os.path.join(os.environ.get("BENCH_OUT", os.path.join(os.path.dirname(__file__), "..",
                                                                            "build-bench")), "results.jsonl")]
    print("| case | time (UTC) | load1 | esmd | setup | esmd figure | reference | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for d in rows(paths, since):
        if not d["case"].startswith("profile"):
            print(fmt(d))


if __name__ == "__main__":
    main(sys.argv[1:])

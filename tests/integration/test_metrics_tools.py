"""/metrics as Prometheus's own tools see it: `promtool check metrics` (built from the Go module
proxy by tests/tools/promtool.sh) lints a scrape of an esmd running one mapping per source with
traffic and a failing function, and the Grafana dashboard in deploy/grafana parses as PromQL
(`promtool check rules`) and uses only metric families that scrape has."""

import json
import os
import re
import subprocess

import pytest

from helpers import aws
from helpers import kafka as kafka_mod
from helpers.esmd import aws_block
from helpers.procs import REPO, wait_until

DASHBOARD = os.path.join(REPO, "deploy", "grafana", "esmd-dashboard.json")


@pytest.fixture(scope="module")
def promtool():
    r = subprocess.run([os.path.join(REPO, "tests", "tools", "promtool.sh")], capture_output=True,
                       text=True, timeout=1800, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"building promtool failed:\n{r.stderr[-3000:]}"
    return r.stdout.strip()


@pytest.fixture
def scrape(peers, sqs, kinesis, kafka, funchost, esmd, workdir):
    """/metrics of an esmd with an SQS, a Kinesis and a Kafka mapping that have all invoked
    (the Kinesis one a failing function whose failure record went to a file)."""
    q = aws.create_queue(sqs)
    st = aws.create_stream(kinesis, shards=1)
    topic = kafka.create_topic(partitions=1)
    fn = {"url": funchost.url_lambda("echo"), "protocol": "lambda", "timeout_seconds": 3}
    e = esmd({"aws": aws_block(peers),
              "functions": {"ok": fn, "fail": dict(fn, url=funchost.url_lambda("fail"))},
              "event_source_mappings": [
                  {"FunctionName": "ok", "EventSourceArn": q.arn},
                  {"FunctionName": "fail", "EventSourceArn": st.arn, "StartingPosition": "TRIM_HORIZON",
                   "MaximumRetryAttempts": 0,
                   "DestinationConfig": {"OnFailure": {"Destination": "file://" + os.path.join(str(workdir), "f.jsonl")}}},
                  {"FunctionName": "ok", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
                   "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap]}},
                   "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": kafka_mod.unique("m")}}]})
    aws.send_messages(sqs, q, bodies=["sqs-1"])
    aws.put_records(kinesis, st, records=[("k", "kin-1")])
    kafka.produce(topic, [{"value": "kafka-1"}])
    wait_until(lambda: {"sqs-1", "kin-1", "kafka-1"} <= set(funchost.payloads()), 60, "one record per source invoked")
    wait_until(lambda: re.search(r"^esmd_outbox_delivered_total [1-9]", e.metrics(), re.M), 30,
               "the failure record delivered")
    return e.metrics()


def test_metrics_pass_promtool_lint(promtool, scrape):
    r = subprocess.run([promtool, "check", "metrics"], input=scrape, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), f"promtool check metrics:\n{r.stdout}{r.stderr}"


def dashboard_exprs():
    dash = json.load(open(DASHBOARD))
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def test_grafana_dashboard_parses_and_uses_only_exported_metrics(promtool, scrape, workdir):
    exprs = dashboard_exprs()
    assert exprs, "the dashboard has no queries"
    rules = os.path.join(str(workdir), "dashboard-rules.json")  # YAML is a superset of JSON
    with open(rules, "w") as f:
        json.dump({"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:q{i}", "expr": e.replace("$__rate_interval", "5m")}
            for i, e in enumerate(exprs)]}]}, f)
    r = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"a dashboard query is not valid PromQL:\n{r.stdout}{r.stderr}"
    families = set(re.findall(r"^# TYPE (\S+) ", scrape, re.M))
    used = {re.sub(r"_(bucket|sum|count)$", "", m) if m.endswith(("_bucket", "_sum", "_count")) and
            re.sub(r"_(bucket|sum|count)$", "", m) in families else m
            for e in exprs for m in re.findall(r"\besmd_[a-z0-9_]+", e)}
    assert used - families == set(), f"the dashboard uses metrics esmd does not export: {sorted(used - families)}"


def test_every_exported_metric_is_in_the_operations_table(scrape):
    # docs/operations.md "/metrics" is where operators look a metric up: none may be missing
    with open(os.path.join(REPO, "docs", "operations.md")) as f:
        doc = f.read()
    table = doc[doc.index("| Metric | Type"):]
    table = table[:table.index("\n\n")]
    documented = set(re.findall(r"^\| `(esmd_[a-z0-9_]+)", table, re.M))
    families = set(re.findall(r"^# TYPE (\S+) ", scrape, re.M))
    assert families - documented == set(), f"not in docs/operations.md's metrics table: {sorted(families - documented)}"

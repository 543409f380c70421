"""/metrics as Prometheus's own tools see it: `promtool check metrics` (built from the Go module
proxy by tests/tools/promtool.sh) lints a scrape of an esmd running one mapping per source with
traffic and a failing function; docs/operations.md's metrics table covers that scrape and names
an exported counterpart for each AWS ESM CloudWatch metric; the Grafana dashboard in
deploy/grafana is importable, parses as PromQL (`promtool check rules`) and uses only metric
families that scrape has."""

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


DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def test_grafana_dashboard_imports_with_a_prometheus_datasource_variable():
    # what Grafana's import needs: the schema it was written for, a data source picked at
    # import time, panels with distinct ids that do not overlap, queries with distinct refIds
    dash = json.load(open(DASHBOARD))
    assert dash["schemaVersion"] >= 39 and dash["uid"] and dash["title"]
    assert {"name": "datasource", "type": "datasource", "query": "prometheus"}.items() <= \
        dash["templating"]["list"][0].items()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), f"panel ids repeat: {ids}"
    cells = {}
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, f"panel {p['title']!r} is wider than the grid"
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panels {cells[(x, y)]!r} and {p['title']!r} overlap"
                cells[(x, y)] = p["title"]
        assert p["datasource"] == DATASOURCE and p["targets"], f"panel {p['title']!r}"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), f"panel {p['title']!r} repeats refIds {refs}"
        assert all(t["datasource"] == DATASOURCE and t["expr"] for t in p["targets"]), f"panel {p['title']!r}"
    # the views an operator of event source mappings asks for first
    used = " ".join(dashboard_exprs())
    wanted = ["esmd_offset_lag", "esmd_iterator_age_seconds", "esmd_invocations_total",
              "esmd_failed_invoke_events_total", "esmd_mapping_stuck", "esmd_outbox_depth", "esmd_outbox_parked"]
    assert [m for m in wanted if not re.search(rf"\b{m}\b", used)] == []


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


def operations_table():
    """docs/operations.md's "/metrics" table as (esmd metric, AWS counterpart) rows."""
    with open(os.path.join(REPO, "docs", "operations.md")) as f:
        doc = f.read()
    table = doc[doc.index("| Metric | Type"):]
    table = table[:table.index("\n\n")]
    return re.findall(r"^\| `(esmd_[a-z0-9_]+)[^`]*` \| [a-z]+ \| ([^|]*?) \|", table, re.M)


def test_every_exported_metric_is_in_the_operations_table(scrape):
    # docs/operations.md "/metrics" is where operators look a metric up: none may be missing
    documented = {name for name, _ in operations_table()}
    families = set(re.findall(r"^# TYPE (\S+) ", scrape, re.M))
    assert families - documented == set(), f"not in docs/operations.md's metrics table: {sorted(families - documented)}"


AWS_ESM_METRICS = ("PolledEventCount", "FilteredOutEventCount", "InvokedEventCount", "FailedInvokeEventCount",
                   "DroppedEventCount", "OnFailureDestinationDeliveredEventCount", "DeletedEventCount",
                   "CommittedEventCount", "OffsetLag", "IteratorAge")


def test_every_aws_esm_metric_has_an_exported_counterpart(scrape):
    # an operator moving CloudWatch alarms over finds each AWS ESM metric's esmd name in the table
    counterpart = {aws_name: name for name, aws_name in operations_table() if aws_name != "—"}
    families = set(re.findall(r"^# TYPE (\S+) ", scrape, re.M))
    missing = [m for m in AWS_ESM_METRICS if m not in counterpart]
    assert not missing, f"AWS ESM metrics without a row in docs/operations.md's metrics table: {missing}"
    unexported = {m: counterpart[m] for m in AWS_ESM_METRICS if counterpart[m] not in families}
    assert not unexported, f"docs/operations.md names metrics esmd does not export: {unexported}"

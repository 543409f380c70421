"""The Lambda API's event-source-mapping resource on esmd's admin listener (docs/operations.md
"The Lambda API"), driven by the real boto3 and AWS CLI with --endpoint-url pointing at esmd:
get and list (both filters, pagination over 120 mappings), the states and results of running
mappings, and AWS's error shapes."""

import json
import os
import subprocess

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers import aws
from helpers.esmd import aws_block
from helpers.procs import wait_until

PEERS = ("sqs",)
REGION = "us-east-1"


def lambda_client(e):
    return boto3.client("lambda", endpoint_url=e.admin_url, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 0}))


def many_mappings(funchost, live_queue_arn, n=120):
    """n disabled SQS mappings over three functions, and one enabled on a real queue."""
    functions = {f"fn{i}": {"url": funchost.url_lambda("echo"), "timeout_seconds": 5} for i in range(3)}
    maps = [{"FunctionName": f"fn{i % 3}", "EventSourceArn": aws.sqs_arn(f"idle-{i}"), "Enabled": False,
             "BatchSize": 5 + i % 3} for i in range(n)]
    maps.append({"UUID": "00000000-0000-4000-8000-000000000001", "FunctionName": "fn0",
                 "EventSourceArn": live_queue_arn, "BatchSize": 10,
                 "FunctionResponseTypes": ["ReportBatchItemFailures"],
                 "ScalingConfig": {"MaximumConcurrency": 2},
                 "FilterCriteria": {"Filters": [{"Pattern": "{\"body\":[{\"exists\":true}]}"}]}})
    return functions, maps


def test_boto3_gets_and_lists_mappings_as_aws_does(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs)
    functions, maps = many_mappings(funchost, q.arn)
    e = esmd({"aws": aws_block(peers), "functions": functions, "event_source_mappings": maps})
    lam = lambda_client(e)

    # every mapping, 100 a page at most, through botocore's own paginator
    pages = list(lam.get_paginator("list_event_source_mappings").paginate())
    assert [len(p["EventSourceMappings"]) for p in pages] == [100, 21]
    listed = [m for p in pages for m in p["EventSourceMappings"]]
    assert len({m["UUID"] for m in listed}) == 121
    small = lam.list_event_source_mappings(MaxItems=7)
    assert len(small["EventSourceMappings"]) == 7 and small["NextMarker"]
    rest = lam.list_event_source_mappings(MaxItems=7, Marker=small["NextMarker"])
    assert {m["UUID"] for m in small["EventSourceMappings"]}.isdisjoint(
        m["UUID"] for m in rest["EventSourceMappings"])

    # both filters: a function by name or ARN, a source
    by_name = [m for p in lam.get_paginator("list_event_source_mappings").paginate(FunctionName="fn1")
               for m in p["EventSourceMappings"]]
    assert len(by_name) == 40 and all(m["FunctionArn"].endswith(":function:fn1") for m in by_name)
    arn = by_name[0]["FunctionArn"]
    assert len(lam.list_event_source_mappings(FunctionName=arn)["EventSourceMappings"]) == 40
    (one,) = lam.list_event_source_mappings(EventSourceArn=q.arn)["EventSourceMappings"]
    assert lam.list_event_source_mappings(FunctionName="fn2", EventSourceArn=q.arn)["EventSourceMappings"] == []

    # one mapping, every field AWS returns for SQS, as configured and with AWS's defaults
    wait_until(lambda: lam.get_event_source_mapping(UUID=one["UUID"])["State"] == "Enabled", 20,
               "the live mapping Enabled")
    aws.send_messages(sqs, q, bodies=["hello"])
    wait_until(lambda: lam.get_event_source_mapping(UUID=one["UUID"])["LastProcessingResult"] == "OK",
               20, "LastProcessingResult OK")
    got = lam.get_event_source_mapping(UUID="00000000-0000-4000-8000-000000000001")
    assert got["EventSourceArn"] == q.arn and got["BatchSize"] == 10
    assert got["MaximumBatchingWindowInSeconds"] == 0
    assert got["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert got["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert got["FilterCriteria"] == {"Filters": [{"Pattern": "{\"body\":[{\"exists\":true}]}"}]}
    assert got["EventSourceMappingArn"] == \
        f"arn:aws:lambda:{REGION}:000000000000:event-source-mapping:{got['UUID']}"
    assert got["FunctionArn"] == f"arn:aws:lambda:{REGION}:000000000000:function:fn0"
    assert got["StateTransitionReason"] == "USER_INITIATED"
    assert got["LastModified"].year >= 2024  # epoch seconds, parsed by botocore as a time
    disabled = lam.get_event_source_mapping(UUID=by_name[0]["UUID"])
    assert disabled["State"] == "Disabled" and disabled["LastProcessingResult"] == "No records processed"
    assert "StartingPosition" not in got and "DestinationConfig" not in got


def test_errors_in_aws_shapes(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs)
    functions, maps = many_mappings(funchost, q.arn, n=2)
    e = esmd({"aws": aws_block(peers), "functions": functions, "event_source_mappings": maps})
    lam = lambda_client(e)
    with pytest.raises(ClientError) as ex:
        lam.get_event_source_mapping(UUID="11111111-1111-4111-8111-111111111111")
    assert ex.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert ex.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as ex:
        lam.list_event_source_mappings(Marker="not-a-marker")
    assert ex.value.response["Error"]["Code"] == "InvalidParameterValueException"
    # mappings live in the config file: changing one through the API names it
    uuid = maps[-1]["UUID"]
    for call in (lambda: lam.update_event_source_mapping(UUID=uuid, BatchSize=3),
                 lambda: lam.delete_event_source_mapping(UUID=uuid),
                 lambda: lam.create_event_source_mapping(FunctionName="fn0", EventSourceArn=q.arn)):
        with pytest.raises(ClientError) as ex:
            call()
        err = ex.value.response["Error"]
        assert err["Code"] == "ResourceConflictException", ex.value.response
        assert e.config_path in err["Message"]
    assert lam.get_event_source_mapping(UUID=uuid)["BatchSize"] == 10  # nothing changed


def test_aws_cli_lists_and_gets(peers, sqs, funchost, esmd):
    q = aws.create_queue(sqs)
    functions, maps = many_mappings(funchost, q.arn, n=3)
    e = esmd({"aws": aws_block(peers), "functions": functions, "event_source_mappings": maps})
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION=REGION)

    def cli(*args):
        out = subprocess.run(["aws", "lambda", *args, "--endpoint-url", e.admin_url, "--output", "json"],
                             capture_output=True, text=True, env=env, timeout=60)
        return out.returncode, out.stdout, out.stderr

    rc, out, err = cli("list-event-source-mappings", "--function-name", "fn0")
    assert rc == 0, err
    listed = json.loads(out)["EventSourceMappings"]
    assert {m["EventSourceArn"] for m in listed} == {aws.sqs_arn("idle-0"), q.arn}
    rc, out, err = cli("get-event-source-mapping", "--uuid", maps[-1]["UUID"])
    assert rc == 0, err
    assert json.loads(out)["EventSourceArn"] == q.arn
    rc, out, err = cli("get-event-source-mapping", "--uuid", "11111111-1111-4111-8111-111111111111")
    assert rc != 0 and "ResourceNotFoundException" in err

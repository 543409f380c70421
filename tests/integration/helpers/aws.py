"""SQS (fauxqs, JSON protocol) and Kinesis (kinesis-local) helpers on top of boto3.

Names are made unique per call (prefix + random suffix) so tests never see each other's data
on the shared, long-running emulators. Never send requests to a QueueUrl's host
(fauxqs answers with http://sqs.us-east-1.localhost:4566/..., which does not resolve):
the clients below always use the configured endpoint.
"""

import base64
import time
import uuid
from dataclasses import dataclass, field

import boto3
from botocore.config import Config

from .procs import wait_until

REGION = "us-east-1"
ACCOUNT = "000000000000"
CREDS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def client(service, endpoint):
    cfg = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30)
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, config=cfg, **CREDS)


# ---------------------------------------------------------------- SQS


@dataclass
class Queue:
    name: str
    url: str
    arn: str
    fifo: bool = False
    dlq: "Queue" = None


def sqs_arn(name):
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def create_queue(sqs, name=None, fifo=False, content_dedup=True, visibility_timeout=None,
                 dlq=None, max_receive_count=None, attributes=None):
    """Create a standard or FIFO queue; with dlq (a Queue) and max_receive_count, a redrive policy."""
    name = name or unique("q")
    if fifo and not name.endswith(".fifo"):
        name += ".fifo"
    attrs = dict(attributes or {})
    if fifo:
        attrs["FifoQueue"] = "true"
        if content_dedup:
            attrs["ContentBasedDeduplication"] = "true"
    if visibility_timeout is not None:
        attrs["VisibilityTimeout"] = str(visibility_timeout)
    if dlq is not None:
        import json

        attrs["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": int(max_receive_count or 3)})
    url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queue(name=name, url=url, arn=arn, fifo=fifo, dlq=dlq)


def create_queue_with_dlq(sqs, max_receive_count=2, fifo=False, visibility_timeout=None, name=None):
    """A source queue whose redrive policy moves a message to a fresh DLQ after N receives."""
    name = name or unique("q")
    dlq = create_queue(sqs, name=name + "-dlq", fifo=fifo)
    return create_queue(sqs, name=name, fifo=fifo, visibility_timeout=visibility_timeout,
                        dlq=dlq, max_receive_count=max_receive_count)


def send_messages(sqs, queue, bodies=None, n=None, group_id="g1", attributes=None, delay=None):
    """Send bodies (or n generated bodies 'msg-<i>') in batches of 10; returns the MessageIds.

    For a FIFO queue, group_id may be a string or a function body_index -> group id; the
    deduplication id is unique per message.
    """
    if bodies is None:
        bodies = [f"msg-{i}" for i in range(n or 0)]
    ids = []
    for start in range(0, len(bodies), 10):
        entries = []
        for i, body in enumerate(bodies[start:start + 10], start):
            e = {"Id": str(i), "MessageBody": body}
            if attributes:
                e["MessageAttributes"] = attributes
            if queue.fifo:
                e["MessageGroupId"] = group_id(i) if callable(group_id) else group_id
                e["MessageDeduplicationId"] = uuid.uuid4().hex
            elif delay is not None:
                e["DelaySeconds"] = delay
            entries.append(e)
        r = sqs.send_message_batch(QueueUrl=queue.url, Entries=entries)
        if r.get("Failed"):
            raise AssertionError(f"send_message_batch failed: {r['Failed']}")
        by_id = {s["Id"]: s["MessageId"] for s in r["Successful"]}
        ids.extend(by_id[e["Id"]] for e in entries)
    return ids


def receive(sqs, queue, max_messages=10, wait=0, visibility_timeout=None):
    kw = {"QueueUrl": queue.url, "MaxNumberOfMessages": max_messages, "WaitTimeSeconds": wait,
          "MessageSystemAttributeNames": ["All"], "MessageAttributeNames": ["All"]}
    if visibility_timeout is not None:
        kw["VisibilityTimeout"] = visibility_timeout
    return sqs.receive_message(**kw).get("Messages", [])


def delete(sqs, queue, messages):
    for start in range(0, len(messages), 10):
        chunk = messages[start:start + 10]
        r = sqs.delete_message_batch(QueueUrl=queue.url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)])
        if r.get("Failed"):
            raise AssertionError(f"delete_message_batch failed: {r['Failed']}")


def drain(sqs, queue, expect=None, timeout=10.0, delete_messages=True, visibility_timeout=30):
    """Receive (and by default delete) messages.

    With expect=N: until N messages arrived (fails after timeout naming how many came).
    Without: until a receive with a 1 s long poll returns nothing.
    Returns the messages in the order received.
    """
    got = []
    deadline = time.monotonic() + timeout
    while True:
        wait = 1 if expect is None else max(0, min(1, int(deadline - time.monotonic())))
        batch = receive(sqs, queue, wait=wait, visibility_timeout=visibility_timeout)
        if batch and delete_messages:
            delete(sqs, queue, batch)
        got.extend(batch)
        if expect is None and not batch:
            return got
        if expect is not None and len(got) >= expect:
            return got
        if time.monotonic() >= deadline:
            if expect is None:
                return got
            raise AssertionError(f"drain {queue.name}: got {len(got)} of {expect} messages in {timeout:g} s")


def queue_counts(sqs, queue):
    """(visible, in flight, delayed) approximate counts."""
    a = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return (int(a.get("ApproximateNumberOfMessages", 0)),
            int(a.get("ApproximateNumberOfMessagesNotVisible", 0)),
            int(a.get("ApproximateNumberOfMessagesDelayed", 0)))


# ---------------------------------------------------------------- Kinesis


@dataclass
class Stream:
    name: str
    arn: str
    shard_ids: list = field(default_factory=list)


def kinesis_arn(name):
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def create_stream(kinesis, shards=1, name=None, timeout=30.0):
    """Create a provisioned stream with `shards` shards and wait until it is ACTIVE."""
    name = name or unique("s")
    kinesis.create_stream(StreamName=name, ShardCount=shards)

    def active():
        d = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        return d if d["StreamStatus"] == "ACTIVE" else None

    summary = wait_until(active, timeout, f"stream {name} ACTIVE")
    shard_ids = [s["ShardId"] for s in list_shards(kinesis, name)]
    return Stream(name=name, arn=summary["StreamARN"], shard_ids=shard_ids)


def list_shards(kinesis, stream_name):
    shards, token = [], None
    while True:
        r = kinesis.list_shards(NextToken=token) if token else kinesis.list_shards(StreamName=stream_name)
        shards.extend(r["Shards"])
        token = r.get("NextToken")
        if not token:
            return shards


def put_records(kinesis, stream, records=None, n=None, partition_key=None):
    """Put records with PutRecords (500 per call).

    records: list of (partition_key, data) with data bytes or str; or n generated records
    ('rec-<i>', partition key partition_key or 'pk-<i>'). Returns a list of
    (shard_id, sequence_number, data bytes) in input order.
    """
    name = stream.name if isinstance(stream, Stream) else stream
    if records is None:
        records = [(partition_key or f"pk-{i}", f"rec-{i}") for i in range(n or 0)]
    out = []
    for start in range(0, len(records), 500):
        chunk = [(pk, d.encode() if isinstance(d, str) else d) for pk, d in records[start:start + 500]]
        r = kinesis.put_records(StreamName=name, Records=[{"PartitionKey": pk, "Data": d} for pk, d in chunk])
        if r.get("FailedRecordCount"):
            raise AssertionError(f"put_records: {r['FailedRecordCount']} failed: {r['Records']}")
        out.extend((rec["ShardId"], rec["SequenceNumber"], d) for rec, (_, d) in zip(r["Records"], chunk))
    return out


def read_shard(kinesis, stream, shard_id, iterator_type="TRIM_HORIZON", sequence_number=None,
               expect=None, timeout=10.0):
    """All records of a shard from the iterator position.

    Reads until the shard is caught up (an empty page with MillisBehindLatest == 0, or a closed
    shard's end); with expect=N, until N records arrived (fails after timeout).
    Records are dicts as returned by GetRecords (Data is bytes).
    """
    name = stream.name if isinstance(stream, Stream) else stream
    kw = {"StreamName": name, "ShardId": shard_id, "ShardIteratorType": iterator_type}
    if sequence_number is not None:
        kw["StartingSequenceNumber"] = sequence_number
    it = kinesis.get_shard_iterator(**kw)["ShardIterator"]
    got = []
    deadline = time.monotonic() + timeout
    while it:
        r = kinesis.get_records(ShardIterator=it, Limit=1000)
        got.extend(r["Records"])
        it = r.get("NextShardIterator")
        if expect is not None:
            if len(got) >= expect:
                return got
        elif not r["Records"] and r.get("MillisBehindLatest", 0) == 0:
            return got
        if time.monotonic() >= deadline:
            if expect is None:
                return got
            raise AssertionError(f"read_shard {name}/{shard_id}: got {len(got)} of {expect} in {timeout:g} s")
        if not r["Records"]:
            time.sleep(0.05)
    return got


def read_stream(kinesis, stream, timeout=10.0):
    """{shard_id: [records]} for every shard of the stream, from TRIM_HORIZON."""
    name = stream.name if isinstance(stream, Stream) else stream
    return {s["ShardId"]: read_shard(kinesis, name, s["ShardId"], timeout=timeout)
            for s in list_shards(kinesis, name)}


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()

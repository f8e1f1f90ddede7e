#!/usr/bin/env bash
# Private single-node Kafka 4.x (KRaft, broker + controller in one JVM) for development, tests and CI.
#
#   scripts/kafka.sh start     # idempotent; waits until the broker answers (KAFKA_START_TIMEOUT, default 90 s)
#   scripts/kafka.sh stop      # SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT (default 60 s)
#   scripts/kafka.sh status    # exit 0 when running and answering, 3 otherwise
#   scripts/kafka.sh install   # only fetch the jars (used by scripts/bootstrap.sh)
#
# Layout (all under the repository, ignored by git):
#   .local/kafka/libs/              runtime classpath, copied by Maven from infra/kafka/pom.xml
#                                   (.stamp holds the pom's hash; Maven runs again only when the pom changes)
#   .local/kafka/server.properties  generated on every start
#   .local/kafka/log4j2.properties  generated on every start (log4j2 -> stdout -> .local/log/kafka.log)
#   .local/kafka/cluster.id         cluster id used when the storage was formatted
#   .local/kafka/data/              log.dirs (KRaft metadata + topic data), formatted once
#   .local/run/kafka.pid            pid of the JVM
#   .local/log/kafka.log            broker log (WARN and up, plus start/stop lines)
#
# Listeners: PLAINTEXT on 127.0.0.1:${KAFKA_PORT:-9092} (clients use localhost:9092),
# CONTROLLER on 127.0.0.1:${KAFKA_CONTROLLER_PORT:-9093}.
# Environment knobs: KAFKA_HEAP_OPTS (default -Xms256m -Xmx512m), KAFKA_JVM_OPTS, KAFKA_OPTS,
# KAFKA_START_TIMEOUT, KAFKA_STOP_TIMEOUT, KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_ADVERTISED_HOST, KAFKA_DIR,
# KAFKA_SECURITY=sasl_ssl (TLS + SCRAM + ACLs instead of PLAINTEXT: scripts/kafka_security.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/infra/kafka/pom.xml"
# KAFKA_DIR: a second, private broker (config, data, pid, log under that folder; tests of broker
# faults use it on other ports). The jars are shared with the default instance.
BASE="${KAFKA_DIR:-$ROOT/.local/kafka}"
LIBS="$ROOT/.local/kafka/libs"
DATA="$BASE/data"
PROPS="$BASE/server.properties"
LOG4J="$BASE/log4j2.properties"
CLUSTER_ID_FILE="$BASE/cluster.id"
RUN="${KAFKA_DIR:+$BASE/run}"
RUN="${RUN:-$ROOT/.local/run}"
LOGDIR="${KAFKA_DIR:+$BASE/log}"
LOGDIR="${LOGDIR:-$ROOT/.local/log}"
PIDFILE="$RUN/kafka.pid"
LOG="$LOGDIR/kafka.log"
MVN_LOG="$LOGDIR/kafka-maven.log"

PORT="${KAFKA_PORT:-9092}"
CPORT="${KAFKA_CONTROLLER_PORT:-9093}"
ADV_HOST="${KAFKA_ADVERTISED_HOST:-127.0.0.1}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-60}"

LIB_NAME=kafka
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/kafka_security.sh
. "$(dirname "${BASH_SOURCE[0]}")/kafka_security.sh"  # KAFKA_SECURITY=sasl_ssl (off by default)


# Is $1 the pid of *our* broker (alive, a kafka.Kafka JVM using our server.properties)?
is_our_kafka() {
    local pid="$1" cmd
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmd" == *kafka.Kafka*"$PROPS"* ]]
}

read_pid() { [ -f "$PIDFILE" ] && tr -dc '0-9' <"$PIDFILE" || true; }

# ---------------------------------------------------------------------------------------------
# java + jars
# ---------------------------------------------------------------------------------------------
check_java() {
    command -v java >/dev/null 2>&1 ||
        die "java not found. Kafka 4 needs Java 17+: apt-get install -y openjdk-17-jre-headless (or run scripts/bootstrap.sh)"
    local v major
    v=$(java -version 2>&1 | head -n1 | sed -E 's/.*version "([^"]+)".*/\1/')
    major=${v%%.*}
    [ "$major" = 1 ] && major=$(echo "$v" | cut -d. -f2)
    [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -ge 17 ] ||
        die "java $v found on PATH, Kafka 4 needs Java 17 or newer (apt-get install -y openjdk-17-jre-headless)"
}

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

jars_ok() { [ -f "$LIBS/.stamp" ] && [ "$(cat "$LIBS/.stamp")" = "$(pom_hash)" ]; }

install_jars() {
    [ -f "$POM" ] || die "$POM is missing"
    if jars_ok; then return 0; fi
    command -v mvn >/dev/null 2>&1 ||
        die "mvn (Maven) not found; it fetches the Kafka jars: apt-get install -y maven (or run scripts/bootstrap.sh)"
    mkdir -p "$(dirname "$LIBS")" "$LOGDIR"
    local tmp="$LIBS.tmp.$$"
    rm -rf "$tmp"
    say "fetching Kafka jars with Maven (pom $POM) ..."
    local t0=$SECONDS
    # Fully qualified goal: no plugin-prefix lookup; the version matches the pom's pluginManagement.
    if ! mvn -q -B -Dstyle.color=never -f "$POM" \
            org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
            -DoutputDirectory="$tmp" -DincludeScope=runtime >"$MVN_LOG" 2>&1; then
        rm -rf "$tmp"
        tail -n 30 "$MVN_LOG" >&2
        die "Maven could not fetch the Kafka jars (full output: $MVN_LOG). Is Maven Central reachable, or is ~/.m2/settings.xml pointing elsewhere?"
    fi
    ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Maven finished but no kafka_2.13 jar in $tmp (see $MVN_LOG)"
    pom_hash >"$tmp/.stamp"
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    say "jars ready in $LIBS ($(ls "$LIBS"/*.jar | wc -l) jars, $((SECONDS - t0)) s)"
}

classpath() { printf '%s/*' "$LIBS"; }

# ---------------------------------------------------------------------------------------------
# config + storage
# ---------------------------------------------------------------------------------------------
write_config() {
    mkdir -p "$BASE" "$DATA" "$RUN" "$LOGDIR"
    cat >"$PROPS.tmp" <<EOF
# Generated by scripts/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://$ADV_HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA

# single node: every internal topic has one replica
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1

group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.partitions=1

# 16 MB messages (audio metadata, transcripts)
message.max.bytes=16777216
replica.fetch.max.bytes=16777216

log.retention.hours=168
log.segment.bytes=268435456
EOF
    mv "$PROPS.tmp" "$PROPS"
    if secure; then write_security_config; fi

    cat >"$LOG4J" <<'EOF'
# Generated by scripts/kafka.sh. Quiet: warnings and errors, plus the broker's start/stop lines.
# Goes to stdout, which scripts/kafka.sh appends to .local/log/kafka.log.
status = error
name = cofi-kafka
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.raftserver.name = kafka.server.KafkaRaftServer
logger.raftserver.level = INFO
logger.kafka.name = kafka.Kafka$
logger.kafka.level = INFO
logger.storage.name = kafka.tools.StorageTool$
logger.storage.level = INFO
EOF
}

cluster_id() {
    if [ ! -s "$CLUSTER_ID_FILE" ]; then
        # A Kafka cluster id is a base64url-encoded (no padding) random 16-byte UUID. Like Kafka's
        # Uuid.randomUuid(), never one starting with '-': StorageTool would read it as an option.
        local cid="-"
        while [ "${cid:0:1}" = "-" ]; do
            cid=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        done
        printf '%s' "$cid" >"$CLUSTER_ID_FILE"
    fi
    cat "$CLUSTER_ID_FILE"
}

format_storage() {
    [ -f "$DATA/meta.properties" ] && return 0
    local cid out
    cid=$(cluster_id)
    say "formatting storage in $DATA (cluster id $cid)"
    scram_format_args
    if ! out=$(java -Xmx256m -cp "$(classpath)" -Dlog4j2.configurationFile="$LOG4J" \
            kafka.tools.StorageTool format -t "$cid" -c "$PROPS" --ignore-formatted "${SCRAM_ARGS[@]}" 2>&1); then
        printf '%s\n' "$out" >&2
        die "kafka.tools.StorageTool format failed"
    fi
}

# ---------------------------------------------------------------------------------------------
# readiness
# ---------------------------------------------------------------------------------------------
# A metadata round trip: through the project's venv (confluent_kafka) when it is there,
# otherwise "the port answers and the broker logged that it started".
PY="$ROOT/.venv/bin/python"
have_py_client() { [ -x "$PY" ] && "$PY" -c 'import confluent_kafka' 2>/dev/null; }

metadata_ok() {
    if secure; then metadata_ok_secure; return; fi
    "$PY" - "127.0.0.1:$PORT" <<'EOF' 2>/dev/null
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0}).list_topics(timeout=3)
sys.exit(0 if md.brokers and md.controller_id is not None and md.controller_id >= 0 else 1)
EOF
}

ready() {
    local since="${1:-0}"
    port_open "$PORT" || return 1
    if [ "$USE_PY" = 1 ]; then
        metadata_ok
    else
        tail -c +"$((since + 1))" "$LOG" 2>/dev/null | grep -q 'Kafka Server started'
    fi
}

# Returns 0 when ready, 2 when the JVM died because a port was still held (kill -9 of the previous
# broker can leave the controller port briefly unbindable: worth another try); exits otherwise.
wait_ready() {
    local pid="$1" since="$2" deadline="$3"
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            if tail -c +"$((since + 1))" "$LOG" | grep -q 'Address already in use' && [ $SECONDS -lt "$deadline" ]; then
                return 2
            fi
            say "the broker (pid $pid) exited during start-up; last lines of $LOG:" >&2
            tail -n 40 "$LOG" >&2 || true
            exit 1
        fi
        ready "$since" && return 0
        if [ $SECONDS -ge "$deadline" ]; then
            say "not ready after ${START_TIMEOUT}s (pid $pid still alive); last lines of $LOG:" >&2
            tail -n 40 "$LOG" >&2 || true
            exit 1
        fi
        sleep 0.5
    done
}

launch() {
    printf '\n===== %s scripts/kafka.sh start =====\n' "$(date '+%F %T')" >>"$LOG"
    LAUNCH_SINCE=$(stat -c %s "$LOG")
    local heap="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
    local jvm="${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}"
    # shellcheck disable=SC2086  # word splitting of the option strings is intended
    (exec_detached java $heap $jvm ${KAFKA_OPTS:-} \
        -Dlog4j2.configurationFile="$LOG4J" -Dkafka.logs.dir="$LOGDIR" \
        -cp "$(classpath)" kafka.Kafka "$PROPS" >>"$LOG" 2>&1 </dev/null 9>&-) &
    LAUNCH_PID=$!
    echo "$LAUNCH_PID" >"$PIDFILE"
}

# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------
USE_PY=0

cmd_start() {
    mkdir -p "$RUN" "$LOGDIR"
    exec 9>"$RUN/kafka.lock"
    flock -w 120 9 || die "another scripts/kafka.sh holds $RUN/kafka.lock"
    have_py_client && USE_PY=1
    local t0=$SECONDS pid owner
    pid=$(read_pid)

    if is_our_kafka "$pid"; then
        if port_open "$PORT"; then
            say "already running (pid $pid, 127.0.0.1:$PORT)"
            return 0
        fi
        say "pid $pid is starting; waiting for it"
        wait_ready "$pid" 0 $((SECONDS + START_TIMEOUT)) || { tail -n 40 "$LOG" >&2; die "pid $pid died while starting"; }
        say "ready (pid $pid, localhost:$PORT)"
        return 0
    fi

    # No live broker of ours behind the pid file. Maybe ours is running with a lost pid file.
    owner=$(port_owner "$PORT")
    if [ -n "$owner" ] && is_our_kafka "${owner%% *}"; then
        echo "${owner%% *}" >"$PIDFILE"
        say "already running (pid ${owner%% *}, pid file restored)"
        return 0
    fi
    [ -n "$pid" ] && say "removing stale pid file (pid $pid is not running)"
    rm -f "$PIDFILE"
    for p in "$PORT" "$CPORT"; do
        if port_open "$p"; then
            owner=$(port_owner "$p")
            die "port $p is already taken by another process (${owner:-owner unknown; try: ss -ltnp 'sport = :$p'}); stop it or set KAFKA_PORT/KAFKA_CONTROLLER_PORT"
        fi
    done

    check_java
    install_jars
    write_config
    format_storage

    local deadline=$((SECONDS + START_TIMEOUT)) rc
    while :; do
        launch
        pid=$LAUNCH_PID
        say "started pid $pid; waiting for the broker (timeout ${START_TIMEOUT}s, check: $([ $USE_PY = 1 ] && echo 'metadata via confluent_kafka' || echo 'port + log'))"
        rc=0
        wait_ready "$pid" "$LAUNCH_SINCE" "$deadline" || rc=$?
        [ $rc = 2 ] || break
        say "a port was still in use (lingering sockets of a killed broker?); retrying in 3 s"
        sleep 3
    done
    if secure; then provision_security; fi
    say "ready on localhost:$PORT (pid $pid, $((SECONDS - t0)) s)"
}

cmd_stop() { stop_server is_our_kafka; }

cmd_status() {
    local pid
    pid=$(read_pid)
    if is_our_kafka "$pid"; then
        have_py_client && USE_PY=1
        if port_open "$PORT" && { [ "$USE_PY" = 0 ] || metadata_ok; }; then
            say "running (pid $pid, localhost:$PORT)"
            return 0
        fi
        say "process alive (pid $pid) but not answering on localhost:$PORT"
        return 3
    fi
    if port_open "$PORT"; then
        say "not running from this checkout, but port $PORT is taken by: $(port_owner "$PORT")"
    else
        say "stopped"
    fi
    return 3
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    restart) cmd_stop; cmd_start ;;
    install) install_jars; check_java ;;
    client-env) cmd_client_env "${2:-}" ;;
    provision) secure || die "provision needs KAFKA_SECURITY=sasl_ssl"; provision_security ;;
    *) echo "usage: $0 {start|stop|status|restart|install|client-env NAME|provision}" >&2; exit 2 ;;
esac

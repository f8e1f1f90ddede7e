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
# KAFKA_SECURITY=sasl_ssl (TLS + SCRAM + ACLs instead of PLAINTEXT: scripts/kafka_security.sh; one broker only).
#
# A local N-broker cluster (KAFKA_BROKERS=3; `make up KAFKA_BROKERS=3`): N JVMs, each broker + KRaft
# controller (node ids 1..N, a controller quorum of N voters), internal topics and new topics replicated
# min(N, 3) times with min.insync.replicas = replicas - 1. Broker i listens on KAFKA_PORT + 2(i-1), its
# controller on KAFKA_CONTROLLER_PORT + 2(i-1) (9092/9093, 9094/9095, 9096/9097), or on the lists
# KAFKA_PORTS / KAFKA_CONTROLLER_PORTS ("p1,p2,p3"). Config and data in .local/kafka/cluster/broker-<i>/,
# pid .local/run/kafka-<i>.pid, log .local/log/kafka-<i>.log. Extra commands, for operators and fault tests:
#   scripts/kafka.sh bootstrap            # the bootstrap list (127.0.0.1:9092,127.0.0.1:9094,...)
#   scripts/kafka.sh start-broker I       # start (or wait for) broker I alone
#   scripts/kafka.sh stop-broker I        # clean stop (controlled shutdown) of broker I
#   scripts/kafka.sh kill-broker I        # SIGKILL of broker I (a crash)
#   scripts/kafka.sh rolling-restart      # each broker in turn: stop, start, wait until every replica is in sync
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
# One node (the default) or node $NODE_ID of a KAFKA_BROKERS cluster (select_broker sets these).
NODE_ID=1
VOTERS=""
REPLICAS=1
MIN_ISR=1

write_config() {
    mkdir -p "$(dirname "$PROPS")" "$DATA" "$RUN" "$LOGDIR"
    cat >"$PROPS.tmp" <<EOF
# Generated by scripts/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=${VOTERS:-1@127.0.0.1:$CPORT}
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://$ADV_HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA

# internal topics (offsets, transaction state) and new topics: $REPLICAS replica(s), min ISR $MIN_ISR
offsets.topic.replication.factor=$REPLICAS
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$REPLICAS
transaction.state.log.min.isr=$MIN_ISR
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$REPLICAS
share.coordinator.state.topic.min.isr=$MIN_ISR
default.replication.factor=$REPLICAS
min.insync.replicas=$MIN_ISR
unclean.leader.election.enable=false

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

READY_NODE=""  # in a cluster: the node id that must be registered for its broker to count as ready

metadata_ok() {
    if secure; then metadata_ok_secure; return; fi
    "$PY" - "127.0.0.1:$PORT" "$READY_NODE" <<'EOF' 2>/dev/null
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0}).list_topics(timeout=3)
ok = md.brokers and md.controller_id is not None and md.controller_id >= 0
sys.exit(0 if ok and (not sys.argv[2] or int(sys.argv[2]) in md.brokers) else 1)
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

    launch
    say "started pid $LAUNCH_PID; waiting for the broker (timeout ${START_TIMEOUT}s, check: $([ $USE_PY = 1 ] && echo 'metadata via confluent_kafka' || echo 'port + log'))"
    await_node "$LAUNCH_PID" "$LAUNCH_SINCE" $((SECONDS + START_TIMEOUT))
    if secure; then provision_security; fi
    say "ready on localhost:$PORT (pid $READY_PID, $((SECONDS - t0)) s)"
}

# await_node PID SINCE DEADLINE: wait until the launched node answers (READY_PID is its pid then),
# launching it again while a port of a killed predecessor is still held.
await_node() {
    local pid="$1" since="$2" deadline="$3" rc
    while :; do
        rc=0
        wait_ready "$pid" "$since" "$deadline" || rc=$?
        [ $rc = 2 ] || break
        say "a port was still in use (lingering sockets of a killed broker?); retrying in 3 s"
        sleep 3
        launch
        pid=$LAUNCH_PID since=$LAUNCH_SINCE
    done
    READY_PID=$pid
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

# ---------------------------------------------------------------------------------------------
# N-broker cluster (KAFKA_BROKERS > 1): the single node's steps, once per broker
# ---------------------------------------------------------------------------------------------
BROKERS="${KAFKA_BROKERS:-1}"
[[ "$BROKERS" =~ ^[1-9][0-9]?$ ]] || die "KAFKA_BROKERS must be a number from 1 to 99, not '$BROKERS'"
CLUSTER="$BASE/cluster"
BASE_PORT=$PORT
BASE_CPORT=$CPORT

# node_port I LIST BASE: entry I (1-based) of the comma list LIST, else BASE + 2(I-1).
node_port() {
    local i="$1" list="$2" base="$3" ports
    if [ -z "$list" ]; then
        echo $((base + 2 * (i - 1)))
        return
    fi
    IFS=, read -ra ports <<<"$list"
    [ "${#ports[@]}" -ge "$BROKERS" ] || die "'$list' lists ${#ports[@]} ports for $BROKERS brokers"
    echo "${ports[$((i - 1))]}"
}

# Point the single-node variables (ports, files, node id, quorum, replication) at broker $1.
select_broker() {
    local i="$1" j voters=()
    [[ "$i" =~ ^[0-9]+$ ]] && [ "$i" -ge 1 ] && [ "$i" -le "$BROKERS" ] || die "no broker '$i' (brokers are 1..$BROKERS)"
    NODE_ID=$i
    READY_NODE=$i
    PORT=$(node_port "$i" "${KAFKA_PORTS:-}" "$BASE_PORT")
    CPORT=$(node_port "$i" "${KAFKA_CONTROLLER_PORTS:-}" "$BASE_CPORT")
    DATA="$CLUSTER/broker-$i/data"
    PROPS="$CLUSTER/broker-$i/server.properties"
    LOG4J="$CLUSTER/broker-$i/log4j2.properties"
    CLUSTER_ID_FILE="$CLUSTER/cluster.id"
    PIDFILE="$RUN/kafka-$i.pid"
    LOG="$LOGDIR/kafka-$i.log"
    REPLICAS=$((BROKERS < 3 ? BROKERS : 3))
    MIN_ISR=$((REPLICAS > 1 ? REPLICAS - 1 : 1))
    for j in $(seq 1 "$BROKERS"); do
        voters+=("$j@127.0.0.1:$(node_port "$j" "${KAFKA_CONTROLLER_PORTS:-}" "$BASE_CPORT")")
    done
    VOTERS=$(IFS=,; echo "${voters[*]}")
}

cluster_bootstrap() {
    local i out=()
    for i in $(seq 1 "$BROKERS"); do out+=("127.0.0.1:$(node_port "$i" "${KAFKA_PORTS:-}" "$BASE_PORT")"); done
    (IFS=,; echo "${out[*]}")
}

broker_ids() { if [ $# -gt 0 ]; then echo "$@"; else seq 1 "$BROKERS"; fi; }

# Start the given brokers (default all) that are not running, then wait for each: they are launched
# together because none answers before a majority of the controller quorum is up.
cluster_start() {
    mkdir -p "$RUN" "$LOGDIR" "$CLUSTER"
    exec 9>"$RUN/kafka.lock"
    flock -w 120 9 || die "another scripts/kafka.sh holds $RUN/kafka.lock"
    have_py_client && USE_PY=1
    check_java
    install_jars
    echo "$BROKERS" >"$CLUSTER/brokers"
    local t0=$SECONDS deadline=$((SECONDS + START_TIMEOUT)) i p pid
    local -A pids=() since=()
    for i in $(broker_ids "$@"); do
        select_broker "$i"
        pid=$(read_pid)
        if is_our_kafka "$pid"; then
            pids[$i]=$pid since[$i]=0
            continue
        fi
        rm -f "$PIDFILE"
        for p in "$PORT" "$CPORT"; do
            if port_open "$p"; then die "port $p (broker $i) is already taken by: $(port_owner "$p")"; fi
        done
        write_config
        format_storage
        launch
        pids[$i]=$LAUNCH_PID since[$i]=$LAUNCH_SINCE
        say "broker $i: started pid $LAUNCH_PID (127.0.0.1:$PORT, controller 127.0.0.1:$CPORT)"
    done
    for i in $(broker_ids "$@"); do
        select_broker "$i"
        await_node "${pids[$i]}" "${since[$i]}" "$deadline"
    done
    say "ready: broker(s) $(broker_ids "$@" | tr '\n' ' ')of $BROKERS; bootstrap $(cluster_bootstrap) ($((SECONDS - t0)) s)"
}

# SIGTERM the given brokers (default all) at once (a controlled shutdown needs a controller quorum),
# SIGKILL whatever is left after KAFKA_STOP_TIMEOUT.
cluster_stop() {
    local i pid deadline
    local -A pids=()
    for i in $(broker_ids "$@"); do
        select_broker "$i"
        pid=$(read_pid)
        if is_our_kafka "$pid"; then
            say "broker $i: stopping pid $pid"
            kill -TERM "$pid" 2>/dev/null || true
            pids[$i]=$pid
        else
            rm -f "$PIDFILE"
        fi
    done
    deadline=$((SECONDS + STOP_TIMEOUT))
    for i in "${!pids[@]}"; do
        gone_or_killed "${pids[$i]}" "$deadline"
        select_broker "$i"
        rm -f "$PIDFILE"
    done
    say "stopped broker(s) $(broker_ids "$@" | tr '\n' ' ')"
}

cluster_kill() {
    select_broker "$1"
    local pid
    pid=$(read_pid)
    is_our_kafka "$pid" || die "broker $1 is not running"
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$PIDFILE"
    say "broker $1: killed (SIGKILL) pid $pid"
}

# Every partition of every topic has a leader and all its replicas in sync.
in_sync() {
    "$PY" - "$(cluster_bootstrap)" "$BROKERS" <<'EOF' 2>/dev/null
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0}).list_topics(timeout=5)
behind = [t for t, tm in md.topics.items() for pm in tm.partitions.values()
          if pm.leader < 0 or len(pm.isrs) < len(pm.replicas)]
sys.exit(0 if len(md.brokers) == int(sys.argv[2]) and not behind else 1)
EOF
}

wait_in_sync() {
    local deadline=$((SECONDS + START_TIMEOUT))
    until in_sync; do
        [ $SECONDS -lt $deadline ] || die "replicas not back in sync after ${START_TIMEOUT}s"
        sleep 1
    done
}

cluster_rolling_restart() {
    have_py_client || die "rolling-restart checks replicas with the project's venv (confluent_kafka): run scripts/bootstrap.sh"
    local i
    for i in $(seq 1 "$BROKERS"); do
        cluster_stop "$i"
        cluster_start "$i"
        wait_in_sync
        say "broker $i: restarted, every replica in sync"
    done
}

cluster_status() {
    local i pid rc=0
    have_py_client && USE_PY=1
    for i in $(seq 1 "$BROKERS"); do
        select_broker "$i"
        pid=$(read_pid)
        if is_our_kafka "$pid" && port_open "$PORT" && { [ "$USE_PY" = 0 ] || metadata_ok; }; then
            say "broker $i: running (pid $pid, 127.0.0.1:$PORT)"
        else
            say "broker $i: not running or not answering"
            rc=3
        fi
    done
    return $rc
}

# `stop` without KAFKA_BROKERS also stops a cluster started from this folder (make down after make up KAFKA_BROKERS=3).
stop_cluster_left() {
    [ -s "$CLUSTER/brokers" ] || return 0
    BROKERS=$(tr -dc '0-9' <"$CLUSTER/brokers")
    [ "${BROKERS:-1}" -gt 1 ] && cluster_stop
}

if [ "$BROKERS" -gt 1 ]; then
    ! secure || die "KAFKA_SECURITY=sasl_ssl runs one broker; the local cluster (KAFKA_BROKERS > 1) is PLAINTEXT"
    case "${1:-}" in
        start) cluster_start ;;
        stop) cluster_stop ;;
        status) cluster_status ;;
        restart) cluster_stop; cluster_start ;;
        rolling-restart) cluster_rolling_restart ;;
        start-broker) cluster_start "${2:?usage: $0 start-broker I}" ;;
        stop-broker) cluster_stop "${2:?usage: $0 stop-broker I}" ;;
        kill-broker) cluster_kill "${2:?usage: $0 kill-broker I}" ;;
        bootstrap) cluster_bootstrap ;;
        install) install_jars; check_java ;;
        *) echo "usage: KAFKA_BROKERS=$BROKERS $0 {start|stop|status|restart|rolling-restart|start-broker I|stop-broker I|kill-broker I|bootstrap|install}" >&2; exit 2 ;;
    esac
    exit
fi

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop; stop_cluster_left ;;
    status) cmd_status ;;
    restart) cmd_stop; cmd_start ;;
    install) install_jars; check_java ;;
    client-env) cmd_client_env "${2:-}" ;;
    provision) secure || die "provision needs KAFKA_SECURITY=sasl_ssl"; provision_security ;;
    bootstrap) echo "localhost:$PORT" ;;
    *) echo "usage: $0 {start|stop|status|restart|install|bootstrap|client-env NAME|provision}" >&2; exit 2 ;;
esac

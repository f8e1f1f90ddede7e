#!/usr/bin/env bash
# A local S3 API server for ARTIFACT_STORE=s3://... without a cloud account: s3proxy (Apache-2.0, Maven
# Central org.gaul:s3proxy, one jar with its dependencies) on its filesystem backend. For development,
# demos and the tests of cofi.pipeline.artifacts; in production point S3_ENDPOINT_URL at MinIO, Ceph or AWS.
#
#   scripts/s3proxy.sh install   # fetch the jar with Maven (cached in ~/.m2) into .local/s3proxy/ (bootstrap.sh)
#   scripts/s3proxy.sh jar       # print the jar's path (tests start private instances from it)
#   scripts/s3proxy.sh start     # idempotent; 127.0.0.1:${S3PROXY_PORT:-9000}, bucket ${S3PROXY_BUCKET:-cofi-artifacts}
#   scripts/s3proxy.sh stop | status
#
# Data in .local/s3proxy/data/<bucket>/, pid .local/run/s3proxy.pid, log .local/log/s3proxy.log.
# Credentials: S3PROXY_IDENTITY / S3PROXY_CREDENTIAL (default cofi / cofi-local-secret: local only, 127.0.0.1).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="3.0.0"  # Java 17 (4.x needs 21)
BASE="$ROOT/.local/s3proxy"
JAR="$BASE/s3proxy-$VERSION-jar-with-dependencies.jar"
DATA="$BASE/data"
PIDFILE="$ROOT/.local/run/s3proxy.pid"
LOG="$ROOT/.local/log/s3proxy.log"
PORT="${S3PROXY_PORT:-9000}"
BUCKET="${S3PROXY_BUCKET:-cofi-artifacts}"
STOP_TIMEOUT=20

LIB_NAME=s3proxy
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

read_pid() { [ -f "$PIDFILE" ] && tr -dc '0-9' <"$PIDFILE" || true; }
is_ours() { [ -n "$1" ] && grep -q "s3proxy" "/proc/$1/cmdline" 2>/dev/null; }

cmd_install() {
    [ -s "$JAR" ] && return 0
    command -v mvn >/dev/null 2>&1 || die "mvn (Maven) not found; it fetches the s3proxy jar: apt-get install -y maven"
    mkdir -p "$BASE" "$ROOT/.local/log"
    say "fetching org.gaul:s3proxy:$VERSION (jar-with-dependencies) with Maven ..."
    if ! mvn -q -B -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
            -Dartifact="org.gaul:s3proxy:$VERSION:jar:jar-with-dependencies" -DoutputDirectory="$BASE" \
            >"$ROOT/.local/log/s3proxy-maven.log" 2>&1; then
        tail -n 20 "$ROOT/.local/log/s3proxy-maven.log" >&2
        die "Maven could not fetch s3proxy (full output: .local/log/s3proxy-maven.log)"
    fi
    [ -s "$JAR" ] || die "Maven finished but $JAR is missing"
    say "jar ready: $JAR"
}

cmd_start() {
    cmd_install
    if is_ours "$(read_pid)" && port_open "$PORT"; then say "already running on 127.0.0.1:$PORT"; return 0; fi
    port_open "$PORT" && die "port $PORT is taken by: $(port_owner "$PORT")"
    mkdir -p "$DATA/$BUCKET" "$(dirname "$PIDFILE")" "$(dirname "$LOG")"
    cat >"$BASE/s3proxy.conf" <<CONF
s3proxy.endpoint=http://127.0.0.1:$PORT
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=${S3PROXY_IDENTITY:-cofi}
s3proxy.credential=${S3PROXY_CREDENTIAL:-cofi-local-secret}
jclouds.provider=filesystem-nio2
jclouds.filesystem.basedir=$DATA
CONF
    (exec_detached java -Xmx256m -jar "$JAR" --properties "$BASE/s3proxy.conf" >>"$LOG" 2>&1 </dev/null 9>&-) &
    echo $! >"$PIDFILE"
    for _ in $(seq 60); do
        port_open "$PORT" && { say "running on http://127.0.0.1:$PORT, bucket $BUCKET (log $LOG)"; return 0; }
        is_ours "$(read_pid)" || { tail -n 20 "$LOG" >&2; die "s3proxy exited while starting"; }
        sleep 0.5
    done
    die "s3proxy did not answer on port $PORT within 30 s (log $LOG)"
}

cmd_status() {
    if is_ours "$(read_pid)" && port_open "$PORT"; then say "running on 127.0.0.1:$PORT"; else say "not running"; exit 3; fi
}

case "${1:-}" in
    install) cmd_install ;;
    jar) cmd_install >&2; echo "$JAR" ;;
    start) cmd_start ;;
    stop) stop_server is_ours ;;
    status) cmd_status ;;
    *) echo "usage: $0 install|jar|start|stop|status" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Private MariaDB instance for development, tests and CI, run from the Debian package's binaries
# (NOT the system service: /etc/mysql is not read, /var/lib/mysql is not touched).
#
#   scripts/mariadb.sh start    # idempotent; waits until it answers (MARIADB_START_TIMEOUT, default 90 s)
#   scripts/mariadb.sh stop     # SIGTERM, then SIGKILL after MARIADB_STOP_TIMEOUT (default 60 s)
#   scripts/mariadb.sh status   # exit 0 when running and answering, 3 otherwise
#   scripts/mariadb.sh client [args]   # mariadb client as the admin user, over the private socket
#
# Layout (all under the repository, ignored by git):
#   .local/mariadb/my.cnf     generated on every start
#   .local/mariadb/data/      datadir, initialised once with mariadb-install-db
#   .local/run/mariadb.sock   unix socket (falls back to /tmp when the path is too long for a socket)
#   .local/run/mariadb.pid    pid file
#   .local/log/mariadb.log    error log
#
# TCP: 127.0.0.1:${MARIADB_PORT:-3306}. On every start it makes sure database `cofi` exists and that
# user cofi/cofi has ALL ON *.* (tests create their own cofi_test_* databases) from '%', 'localhost'
# and '127.0.0.1'.
#
# It installs nothing, with one exception: when `mariadbd` is not on the machine it runs
# `apt-get update` and `apt-get install -y mariadb-server mariadb-client` (as root, or through sudo),
# with services kept from starting (a system mariadb on port 3306 would collide with this one).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# MARIADB_DIR: a second, private server (config, datadir, socket, pid, log under that folder;
# tests of database faults use it on another MARIADB_PORT).
BASE="${MARIADB_DIR:-$ROOT/.local/mariadb}"
DATA="$BASE/data"
CNF="$BASE/my.cnf"
RUN="${MARIADB_DIR:+$BASE/run}"
RUN="${RUN:-$ROOT/.local/run}"
LOGDIR="${MARIADB_DIR:+$BASE/log}"
LOGDIR="${LOGDIR:-$ROOT/.local/log}"
PIDFILE="$RUN/mariadb.pid"
LOG="$LOGDIR/mariadb.log"
SOCK="$RUN/mariadb.sock"

PORT="${MARIADB_PORT:-3306}"
START_TIMEOUT="${MARIADB_START_TIMEOUT:-90}"
STOP_TIMEOUT="${MARIADB_STOP_TIMEOUT:-60}"
DB_NAME=cofi
DB_USER=cofi
DB_PASS=cofi
OS_USER="$(id -un)"   # mariadb-install-db gives this OS user a unix_socket admin account

# Run "$@" as the leader of a new session/process group, keeping this (sub)shell's pid:
# setsid(1) only forks when the caller already leads its process group (job control on),
# and in that case no new session is needed for group signalling anyway.
exec_detached() {
    local stat
    stat=$(cat "/proc/$BASHPID/stat")
    stat=${stat##*) }
    if [ "$(echo "$stat" | cut -d' ' -f3)" = "$BASHPID" ]; then exec "$@"; else exec setsid "$@"; fi
}

say() { printf 'mariadb: %s\n' "$*"; }
die() { printf 'mariadb: ERROR: %s\n' "$*" >&2; exit 1; }

# Unix socket paths are limited to 107 bytes; a deep checkout falls back to /tmp.
if [ "${#SOCK}" -gt 100 ]; then
    SOCK="/tmp/cofi-mariadb-$(printf '%s' "${MARIADB_DIR:-$ROOT}" | sha256sum | cut -c1-12).sock"
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_owner() {
    local pid
    command -v ss >/dev/null 2>&1 || return 0
    pid=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2) || true
    [ -n "$pid" ] || return 0
    printf '%s %s' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)"
}

# Is $1 the pid of *our* server (alive, a mariadbd started with our my.cnf)?
is_ours() {
    local pid="$1" cmd
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmd" == *"--defaults-file=$CNF"* ]]
}

read_pid() { [ -f "$PIDFILE" ] && tr -dc '0-9' <"$PIDFILE" || true; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root to run: $*"
    fi
}

ensure_installed() {
    command -v mariadbd >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin"
    if command -v mariadbd >/dev/null 2>&1 && command -v mariadb-install-db >/dev/null 2>&1; then
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "mariadbd is not installed and there is no apt-get; install MariaDB server 10.6+ by hand"
    say "mariadbd not found: installing mariadb-server mariadb-client with apt-get"
    # Keep apt from starting the system service: it would take port 3306 and /run/mysqld.
    local policy=/usr/sbin/policy-rc.d added=0
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy"
        added=1
    fi
    local rc=0
    {
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
            --no-install-recommends mariadb-server mariadb-client
    } || rc=$?
    [ "$added" = 1 ] && as_root rm -f "$policy"
    [ "$rc" = 0 ] || die "apt-get install mariadb-server mariadb-client failed (rc $rc)"
    command -v mariadbd >/dev/null 2>&1 || die "mariadbd still not found after apt-get install"
}

write_config() {
    mkdir -p "$BASE" "$DATA" "$RUN" "$LOGDIR" "$BASE/tmp"
    cat >"$CNF.tmp" <<EOF
# Generated by scripts/mariadb.sh on every start; edit the script, not this file.
[client]
socket = $SOCK
port = $PORT

[mariadbd]
user = $OS_USER
datadir = $DATA
socket = $SOCK
pid-file = $PIDFILE
log-error = $LOG
tmpdir = $BASE/tmp
port = $PORT
bind-address = 127.0.0.1
# after a kill -9 the port can stay unbindable for a moment: retry instead of failing
port-open-timeout = 30
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
max_connections = 300
max_allowed_packet = 64M
innodb_buffer_pool_size = 256M
innodb_log_file_size = 64M
# development instance: a commit is durable against a crash of mariadbd, not of the machine
innodb_flush_log_at_trx_commit = 2
performance_schema = OFF
EOF
    mv "$CNF.tmp" "$CNF"
}

init_datadir() {
    [ -d "$DATA/mysql" ] && return 0
    say "initialising datadir $DATA"
    rm -rf "$DATA" && mkdir -p "$DATA"
    if ! mariadb-install-db --defaults-file="$CNF" --user="$OS_USER" --skip-test-db \
            >"$LOGDIR/mariadb-install-db.log" 2>&1; then
        tail -n 30 "$LOGDIR/mariadb-install-db.log" >&2
        die "mariadb-install-db failed (full output: $LOGDIR/mariadb-install-db.log)"
    fi
}

admin_sql() { mariadb --no-defaults --socket="$SOCK" -u"$OS_USER" "$@"; }

provision() {
    admin_sql <<EOF
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
DROP USER IF EXISTS ''@'localhost';
CREATE USER IF NOT EXISTS '$DB_USER'@'%' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'%';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'localhost';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'127.0.0.1';
EOF
}

tcp_ok() {
    mariadb --no-defaults -h127.0.0.1 -P"$PORT" -u"$DB_USER" -p"$DB_PASS" "$DB_NAME" \
        --connect-timeout=3 -N -e 'SELECT 1' >/dev/null 2>&1
}

wait_ready() {
    local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            say "mariadbd (pid $pid) exited during start-up; last lines of $LOG:" >&2
            tail -n 40 "$LOG" >&2 || true
            exit 1
        fi
        if mariadb-admin --no-defaults --socket="$SOCK" -u"$OS_USER" --connect-timeout=2 ping >/dev/null 2>&1; then
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            say "not ready after ${START_TIMEOUT}s (pid $pid still alive); last lines of $LOG:" >&2
            tail -n 40 "$LOG" >&2 || true
            exit 1
        fi
        sleep 0.3
    done
}

finish_start() {
    local pid="$1"
    wait_ready "$pid"
    provision || die "could not create database/user (as $OS_USER over $SOCK)"
    tcp_ok || die "server is up but 'cofi'@127.0.0.1:$PORT cannot run SELECT 1"
}

cmd_start() {
    mkdir -p "$RUN" "$LOGDIR"
    exec 9>"$RUN/mariadb.lock"
    flock -w 120 9 || die "another scripts/mariadb.sh holds $RUN/mariadb.lock"
    local t0=$SECONDS pid owner
    pid=$(read_pid)

    if is_ours "$pid"; then
        if tcp_ok; then
            say "already running (pid $pid, 127.0.0.1:$PORT)"
            return 0
        fi
        say "pid $pid is alive; waiting for it to answer"
        finish_start "$pid"
        say "ready (pid $pid, 127.0.0.1:$PORT)"
        return 0
    fi

    owner=$(port_owner "$PORT")
    if [ -n "$owner" ] && is_ours "${owner%% *}"; then
        echo "${owner%% *}" >"$PIDFILE"
        say "already running (pid ${owner%% *}, pid file restored)"
        return 0
    fi
    [ -n "$pid" ] && say "removing stale pid file (pid $pid is not running)"
    rm -f "$PIDFILE"
    if port_open "$PORT"; then
        die "port $PORT is already taken by another process (${owner:-owner unknown; try: ss -ltnp 'sport = :$PORT'}); if it is the system service: service mariadb stop; or set MARIADB_PORT"
    fi

    ensure_installed
    write_config
    init_datadir

    printf '\n===== %s scripts/mariadb.sh start =====\n' "$(date '+%F %T')" >>"$LOG"
    # --defaults-file must come first; it makes mariadbd read only our my.cnf.
    (exec_detached mariadbd --defaults-file="$CNF" >>"$LOG" 2>&1 </dev/null 9>&-) &
    pid=$!
    echo "$pid" >"$PIDFILE"   # mariadbd writes the same pid there itself once it is up
    say "started pid $pid; waiting for it (timeout ${START_TIMEOUT}s)"
    finish_start "$pid"
    say "ready on 127.0.0.1:$PORT, socket $SOCK (pid $pid, $((SECONDS - t0)) s)"
}

cmd_stop() {
    local pid owner
    pid=$(read_pid)
    if ! is_ours "$pid"; then
        owner=$(port_owner "$PORT")
        if [ -n "$owner" ] && is_ours "${owner%% *}"; then
            pid=${owner%% *}
        else
            rm -f "$PIDFILE"
            say "not running"
            return 0
        fi
    fi
    say "stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            say "still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.3
    done
    rm -f "$PIDFILE"
    say "stopped"
}

cmd_status() {
    local pid
    pid=$(read_pid)
    if is_ours "$pid"; then
        if tcp_ok; then
            say "running (pid $pid, 127.0.0.1:$PORT, socket $SOCK)"
            return 0
        fi
        say "process alive (pid $pid) but cofi@127.0.0.1:$PORT does not answer"
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
    client) shift; admin_sql "$@" ;;
    *) echo "usage: $0 {start|stop|status|restart|client [args]}" >&2; exit 2 ;;
esac

# Shared by scripts/kafka.sh, scripts/mariadb.sh and scripts/services.sh (sourced, not run).
# The caller sets LIB_NAME (its prefix in messages) before sourcing.

say() { printf '%s: %s\n' "$LIB_NAME" "$*"; }
die() { printf '%s: ERROR: %s\n' "$LIB_NAME" "$*" >&2; exit 1; }

# Run "$@" as the leader of a new session/process group, keeping this (sub)shell's pid:
# setsid(1) only forks when the caller already leads its process group (job control on),
# and in that case no new session is needed for group signalling anyway.
exec_detached() {
    local stat
    stat=$(cat "/proc/$BASHPID/stat")
    stat=${stat##*) }
    if [ "$(echo "$stat" | cut -d' ' -f3)" = "$BASHPID" ]; then exec "$@"; else exec setsid "$@"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# "pid program args" of whoever listens on TCP port $1, or nothing.
port_owner() {
    local pid
    command -v ss >/dev/null 2>&1 || return 0
    pid=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2) || true
    [ -n "$pid" ] || return 0
    printf '%s %s' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)"
}

# stop_server IS_OURS_FN: SIGTERM our server (found by pid file, or by who owns $PORT),
# SIGKILL after $STOP_TIMEOUT seconds; uses PIDFILE, PORT, STOP_TIMEOUT and read_pid.
stop_server() {
    local is_ours_fn="$1" pid owner
    pid=$(read_pid)
    if ! "$is_ours_fn" "$pid"; then
        owner=$(port_owner "$PORT")
        if [ -n "$owner" ] && "$is_ours_fn" "${owner%% *}"; then
            pid=${owner%% *}
        else
            rm -f "$PIDFILE"
            say "not running"
            return 0
        fi
    fi
    say "stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    gone_or_killed "$pid" $((SECONDS + STOP_TIMEOUT))
    rm -f "$PIDFILE"
    say "stopped"
}

# gone_or_killed PID DEADLINE: wait for a signalled process to exit; SIGKILL it at DEADLINE (in $SECONDS).
gone_or_killed() {
    local pid="$1" deadline="$2"
    while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -ge "$deadline" ]; then
            say "pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            return
        fi
        sleep 0.3
    done
}

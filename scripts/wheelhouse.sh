#!/usr/bin/env bash
# Keeps the wheels of cofi's Python dependencies on disk, so a fresh venv installs without the network.
#
#   scripts/wheelhouse.sh VENV EXTRAS      # prints the wheelhouse folder on stdout, messages on stderr
#
# Why: the package index here answers without cache headers pip would keep, so ~/.cache/pip stays empty
# and every new venv (each CI run starts from a clean clone) downloaded 545 MB again: `pip install -e
# '.[all,dev]'` took 96-130 s. From the wheelhouse, with --no-compile (bootstrap.sh says why), 42 s.
#
# The folder is keyed by pyproject.toml + constraints.txt + extras + Python + platform, so a changed
# dependency list downloads once into a new folder; the versions are constraints.txt's (the tested ones). Only the 3 most recently used folders are kept.
# llama-cpp-python is not kept here: scripts/llama_wheel.sh builds and caches its own wheel.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$1"
EXTRAS="$2"
LIB_NAME=wheelhouse
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
# stdout carries the folder's path only
say() { printf '%s: %s\n' "$LIB_NAME" "$*" >&2; }

BASE="${COFI_WHEELHOUSE_CACHE:-$HOME/.cache/cofi/wheelhouse}"
CFILE=$(constraints_file)
PINS=()
[ -z "$CFILE" ] || PINS=(-c "$CFILE")
KEY=$( { sha256sum "$ROOT/pyproject.toml" ${CFILE:+"$CFILE"} | cut -d' ' -f1; echo "extras=$EXTRAS";
         "$VENV/bin/python" -c 'import sys, sysconfig; print(sys.version, sysconfig.get_platform())'; } |
       sha256sum | cut -c1-16)
DIR="$BASE/$KEY"

if [ ! -f "$DIR/.complete" ]; then
    say "downloading the wheels of .[$EXTRAS] into $DIR (once per pyproject.toml)"
    tmp="$DIR.tmp-$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    t=$SECONDS
    # setuptools: the editable install of cofi builds with it, in pip's isolated build environment
    if ! "$VENV/bin/python" -m pip download --disable-pip-version-check --progress-bar off -q -d "$tmp" \
        "${PINS[@]}" "$ROOT[$EXTRAS]" "setuptools>=68" >&2; then
        rm -rf "$tmp"
        die "pip download of .[$EXTRAS] failed"
    fi
    rm -f "$tmp"/llama_cpp_python-* "$tmp"/cofi-*  # built elsewhere: scripts/llama_wheel.sh, and this tree
    rm -rf "$DIR"
    mv "$tmp" "$DIR"
    touch "$DIR/.complete"
    say "$(find "$DIR" -name '*.whl' | wc -l) wheels, $(du -sh "$DIR" | cut -f1), in $((SECONDS - t)) s"
fi
touch "$DIR/.complete"  # its time is when it was last used
# keep the 3 most recently used
for old in $(ls -1t "$BASE"/*/.complete 2>/dev/null | tail -n +4); do
    rm -rf "$(dirname "$old")"
done
echo "$DIR"

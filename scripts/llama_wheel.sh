#!/usr/bin/env bash
# Builds and installs llama-cpp-python reproducibly (sourced by scripts/bootstrap.sh, or run alone).
#
#   scripts/llama_wheel.sh [VENV]      # default VENV: .venv
#
# llama-cpp-python has no binary wheel for our Python on PyPI, so it compiles llama.cpp. A
# native build (GGML_NATIVE=ON, the default) uses every instruction set the build machine's CPU
# reports; on VMs that report AVX-512/AMX they do not run, the first inference dies with a general
# protection fault. So the flags are explicit: AVX2/FMA/F16C on, AVX-512/AMX/AVX-VNNI off (a plain
# SSE build where the CPU lacks AVX2), no native detection, no dynamic CPU backends.
#
# pip's wheel cache key ignores CMAKE_ARGS, so a wheel built earlier with other flags would be
# reused silently. We never use it: the build runs with --no-cache-dir and the wheel is kept in
# our own cache, in a folder keyed by version + flags + Python + platform:
#   ${COFI_WHEEL_CACHE:-~/.cache/cofi/wheels}/llama-cpp-python-<version>-<key>/
# The venv records which key it holds (.venv/.cofi-llama.stamp); a different key reinstalls.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv}"
LIB_NAME=llama
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

# The one pinned version (pyproject.toml's llm extra pins the same; a test checks they agree).
LLAMA_CPP_VERSION=0.3.36

llama_cmake_args() {
    local base="-DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=OFF -DGGML_BACKEND_DL=OFF"
    local off="-DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF"
    off+=" -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    local isa
    if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && grep -qw f16c /proc/cpuinfo; then
        isa="-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
    else
        isa="-DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF"
    fi
    echo "$base $isa $off -DLLAMA_CURL=OFF -DGGML_OPENMP=ON"
}

FLAGS="${LLAMA_CMAKE_ARGS:-$(llama_cmake_args)}"
PYVER=$("$VENV/bin/python" -c 'import sys, sysconfig; print(sys.version.split()[0], sysconfig.get_platform())')
KEY=$(printf '%s|%s|%s' "$LLAMA_CPP_VERSION" "$FLAGS" "$PYVER" | sha256sum | cut -c1-16)
CACHE="${COFI_WHEEL_CACHE:-$HOME/.cache/cofi/wheels}"
DIR="$CACHE/llama-cpp-python-$LLAMA_CPP_VERSION-$KEY"
STAMP="$VENV/.cofi-llama.stamp"

if [ "$(cat "$STAMP" 2>/dev/null)" = "$KEY" ] &&
    "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('llama_cpp_python') != '$LLAMA_CPP_VERSION')" 2>/dev/null; then
    say "llama-cpp-python $LLAMA_CPP_VERSION ($KEY) installed"
    exit 0
fi

wheel=$(ls "$DIR"/llama_cpp_python-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
    command -v cmake >/dev/null 2>&1 || say "no cmake on PATH: pip will fetch one for the build"
    say "building llama-cpp-python $LLAMA_CPP_VERSION (7-15 min on 2 cores) with CMAKE_ARGS=$FLAGS"
    tmp="$DIR.tmp-$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    t=$SECONDS
    if ! CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$VENV/bin/python" -m pip wheel --disable-pip-version-check --progress-bar off --no-cache-dir \
        --no-deps --no-binary llama-cpp-python "llama-cpp-python==$LLAMA_CPP_VERSION" -w "$tmp" \
        >"$tmp.log" 2>&1; then
        tail -n 30 "$tmp.log" >&2
        rm -rf "$tmp"
        die "building llama-cpp-python failed (full log: $tmp.log)"
    fi
    rm -rf "$DIR"
    mv "$tmp" "$DIR"
    rm -f "$tmp.log"
    echo "$FLAGS" >"$DIR/CMAKE_ARGS"
    wheel=$(ls "$DIR"/llama_cpp_python-*.whl | head -n1)
    say "built $(basename "$wheel") in $((SECONDS - t)) s"
fi

say "installing $(basename "$wheel") from $DIR"
"$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off --force-reinstall --no-deps "$wheel"
# its runtime dependencies (numpy, jinja2, diskcache, typing-extensions and the server extra): from the
# wheelhouse bootstrap.sh passes (COFI_WHEELHOUSE, scripts/wheelhouse.sh), else (or if that fails) from PyPI
deps() {
    "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off --no-compile "$@" "$wheel[server]" 2>&1 |
        grep -v '^Requirement already satisfied'
    return "${PIPESTATUS[0]}"
}
if [ -z "${COFI_WHEELHOUSE:-}" ] || ! deps --no-index --find-links "$COFI_WHEELHOUSE"; then
    deps || die "installing the dependencies of $(basename "$wheel") failed"
fi
echo "$KEY" >"$STAMP"

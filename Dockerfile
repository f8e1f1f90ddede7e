# One image for every cofi service (the command picks the service: python -m services.<name>).
#   docker build -t cofi .
# llama-cpp-python is compiled here by scripts/llama_wheel.sh, the same explicit flags as `make bootstrap`
# (no native CPU detection: AVX2/FMA/F16C, no AVX-512/AMX; LLAMA_CMAKE_ARGS overrides). The local LLMs
# (LLM_MODELS) are fetched pinned by hash and assembled into /models at build time, never at run time.
FROM python:3.11-slim
ARG LLAMA_CMAKE_ARGS=""
ARG LLM_MODELS="qwen2.5-coder-1.5b-instruct qwen2.5-coder-0.5b-instruct"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ARTIFACT_ROOT=/data/artifacts \
    MODEL_CACHE_DIR=/models

# Runtime libraries: espeak-ng/sox/ffmpeg/libsndfile for audio, libgomp/libstdc++ for llama.cpp,
# CTranslate2 and ONNX Runtime (installed explicitly so removing the compiler keeps them).
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng sox ffmpeg libsndfile1 libgomp1 libstdc++6 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so a code change does not rebuild llama.cpp.
COPY pyproject.toml ./
COPY scripts/llama_wheel.sh scripts/lib.sh scripts/
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && LLAMA_CMAKE_ARGS="$LLAMA_CMAKE_ARGS" bash scripts/llama_wheel.sh /usr/local \
 && rm -rf /root/.cache \
 && mkdir -p cofi services && touch cofi/__init__.py services/__init__.py \
 && pip install ".[all]" \
 && pip uninstall -y cofi \
 && rm -rf cofi services build *.egg-info \
 && apt-get purge -y build-essential cmake && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*

# The code. Editable install: cofi finds schemas/, migrations/ and alembic.ini beside itself.
COPY alembic.ini ./
COPY schemas schemas
COPY migrations migrations
COPY cofi cofi
COPY services services
COPY infra/models infra/models
RUN pip install --no-deps -e . \
 && python -m cofi.models.llm fetch $LLM_MODELS \
 && useradd --system --uid 10001 --home-dir /app cofi \
 && mkdir -p /data/artifacts /models \
 && chown -R cofi /data /models

USER cofi
VOLUME ["/data/artifacts", "/models"]
CMD ["python", "-m", "cofi.ops.admin", "init"]

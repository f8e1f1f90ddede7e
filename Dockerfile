# One image for every cofi service (the command picks the service: python -m services.<name>).
#   docker build -t cofi .
# llama-cpp-python is compiled here; GGML_NATIVE=OFF keeps the binary portable across CPUs.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CMAKE_ARGS="-DGGML_NATIVE=OFF" \
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
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
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
RUN pip install --no-deps -e . \
 && useradd --system --uid 10001 --home-dir /app cofi \
 && mkdir -p /data/artifacts /models \
 && chown -R cofi /data /models

USER cofi
VOLUME ["/data/artifacts", "/models"]
CMD ["python", "-m", "cofi.ops.admin", "init"]

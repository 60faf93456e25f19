# fixadapter: build the quickfix wheel once, then a slim runtime running the adapter as a non-root user.
# Mirrors the Makefile: pip installs the package (quickfix compiles from the sdist in the build stage).
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY fixadapter ./fixadapter
RUN python -m pip install --upgrade pip setuptools wheel \
 && python -m pip wheel --wheel-dir /wheels '.[postgres]'

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
RUN mkdir -p /app/var && chown -R fixadapter /app/var
USER fixadapter
ENV PYTHONUNBUFFERED=1
# Credentials come from the environment (FIXADAPTER_ACCOUNT__PASSWORD ...) or a mounted config file.
ENTRYPOINT ["fixadapter"]
CMD ["run", "--config", "/app/config.yaml"]

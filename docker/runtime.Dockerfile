# syntax=docker/dockerfile:1
# The tradefleet runtime: one bot per container (`tradefleet serve /etc/tradefleet/bot.yaml ...`,
# the command line the operator writes into each bot's Deployment).
#
#   docker build -f docker/runtime.Dockerfile -t ghcr.io/tradefleet/runtime:0.1.0 .
#   docker build -f docker/runtime.Dockerfile --build-arg EXTRAS=ccxt -t .../runtime:0.1.0-ccxt .
#
# Ports: gRPC 50051 (control API), HTTP 8080 (/metrics, /healthz, /readyz, /webhook/signal).
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz. The root filesystem may be read-only:
# the process writes only under /tmp and /var/lib/tradefleet (the journal), both volumes in the
# operator's pods. The bundled market data is in /usr/share/tradefleet/data (manifests/examples).

# Pinned base (exact patch release and Debian suite). Override with --build-arg PYTHON_IMAGE=
# python:3.11.14-slim-bookworm@sha256:<digest> to pin by digest in a release pipeline.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- builder: the project's wheel and every dependency as wheels --------------------------------
FROM ${PYTHON_IMAGE} AS builder
# Optional extras of the runtime image: "" (default) or "ccxt" (exchange brokers through ccxt).
ARG EXTRAS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot-runtime/ bot-runtime/
COPY plugins/ plugins/
COPY operator/ operator/
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".${EXTRAS:+[${EXTRAS}]}"

# --- final: a slim Python with the wheels installed, no compilers, non-root ---------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="tradefleet-runtime" \
      org.opencontainers.image.description="tradefleet bot runtime (tradefleet serve)" \
      org.opencontainers.image.source="https://github.com/tradefleet/tradefleet" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp
RUN groupadd --system --gid 10001 tradefleet \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /tmp \
        --shell /usr/sbin/nologin tradefleet \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/tradefleet
# The wheels (exactly what the builder resolved, extras included) are bind-mounted from the
# builder, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl \
    && tradefleet plugins list >/dev/null
COPY data/*.csv data/LICENSE.* data/README.md /usr/share/tradefleet/data/
WORKDIR /var/lib/tradefleet
USER 10001:10001
EXPOSE 50051 8080
ENTRYPOINT ["tradefleet"]
CMD ["--help"]

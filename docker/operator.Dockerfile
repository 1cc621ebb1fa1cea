# syntax=docker/dockerfile:1
# The tradefleet operator (kopf): `tradefleet-operator`, as the Helm chart runs it.
#
#   docker build -f docker/operator.Dockerfile -t ghcr.io/tradefleet/operator:0.1.0 .
#
# Ports: 8080 (liveness, /healthz), 9090 (Prometheus metrics); the admission webhook's port when
# enabled. No HEALTHCHECK: Kubernetes probes /healthz. Read-only root filesystem friendly: the
# process writes only under /tmp (an emptyDir in the chart's Deployment).

# Pinned base (exact patch release and Debian suite); pin by digest with
# --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- builder: the project's wheel with the operator extra, and its dependencies ----------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot-runtime/ bot-runtime/
COPY plugins/ plugins/
COPY operator/ operator/
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[operator]"

# --- final -------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="tradefleet-operator" \
      org.opencontainers.image.description="tradefleet Kubernetes operator (TradingBot objects)" \
      org.opencontainers.image.source="https://github.com/tradefleet/tradefleet" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp
RUN groupadd --system --gid 10001 tradefleet \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /tmp \
        --shell /usr/sbin/nologin tradefleet
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl \
    && tradefleet-operator --help >/dev/null
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["tradefleet-operator"]

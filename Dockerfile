# syntax=docker/dockerfile:1.7
# One image per service, all from this file: `docker build --target <target> .`
#   gateway   the public API (`harmrank serve gateway`)        port 8000
#   worker    the same image as gateway, `harmrank worker`
#   migrate   the same image as gateway, `harmrank migrate` (a one-shot job)
#   generator the small models behind TGI                      port 8001
#   judge     large LLMs as judges                             port 8002
#   metrics   the statistics service                           port 8003
# Dependencies are installed from uv.lock in a layer of their own, before any source is copied,
# so a code change rebuilds only the last layer. The gateway image carries the `harmrank` CLI
# (the root distribution) for its worker and migrate commands; the other services install only
# themselves and harmrank-common.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: uv and the workspace's metadata --------------------------------------------------
FROM ${PYTHON_IMAGE} AS build-base
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Every member's pyproject.toml: uv resolves the whole workspace from the lockfile.
# README.md is not among them: the root's metadata names it, but resolving does not read it, so an
# edit to it rebuilds no dependency layer (it is copied with the sources).
COPY pyproject.toml uv.lock ./
COPY common/pyproject.toml common/
COPY gateway/pyproject.toml gateway/
COPY services/generator/pyproject.toml services/generator/
COPY services/judge/pyproject.toml services/judge/
COPY services/metrics/pyproject.toml services/metrics/

FROM build-base AS build-gateway
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package harmrank
COPY README.md ./
COPY common/src common/src
COPY gateway/src gateway/src
COPY services/generator/src services/generator/src
COPY services/judge/src services/judge/src
COPY services/metrics/src services/metrics/src
COPY src src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package harmrank

FROM build-base AS build-generator
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package harmrank-generator
COPY common/src common/src
COPY services/generator/src services/generator/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package harmrank-generator

FROM build-base AS build-judge
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package harmrank-judge
COPY common/src common/src
COPY services/judge/src services/judge/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package harmrank-judge

FROM build-base AS build-metrics
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package harmrank-metrics
COPY common/src common/src
COPY services/metrics/src services/metrics/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package harmrank-metrics

# --- runtime: the virtual environment only, run as an unprivileged user ----------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --gid 10001 harmrank \
    && useradd --uid 10001 --gid harmrank --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin harmrank
# HOME is /nonexistent and the root filesystem read-only: matplotlib (the gateway's figures) would
# rebuild its font cache on every start and log that it cannot write it; /tmp is a writable mount.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /app
USER 10001:10001

FROM runtime AS gateway
COPY --from=build-gateway /app/.venv /app/.venv
ENV HARMRANK_GATEWAY_HOST=0.0.0.0 HARMRANK_GATEWAY_PORT=8000
EXPOSE 8000
CMD ["harmrank", "serve", "gateway"]

FROM gateway AS worker
CMD ["harmrank", "worker", "--concurrency", "4"]

FROM gateway AS migrate
CMD ["harmrank", "migrate"]

FROM runtime AS generator
COPY --from=build-generator /app/.venv /app/.venv
EXPOSE 8001
CMD ["uvicorn", "--factory", "harmrank.generator.app:create_app", "--host", "0.0.0.0", "--port", "8001"]

FROM runtime AS judge
COPY --from=build-judge /app/.venv /app/.venv
EXPOSE 8002
CMD ["uvicorn", "--factory", "harmrank.judge.app:create_app", "--host", "0.0.0.0", "--port", "8002"]

FROM runtime AS metrics
COPY --from=build-metrics /app/.venv /app/.venv
EXPOSE 8003
CMD ["uvicorn", "--factory", "harmrank.metrics.app:create_app", "--host", "0.0.0.0", "--port", "8003"]

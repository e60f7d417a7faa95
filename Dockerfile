# syntax=docker/dockerfile:1
# oauth-service container image.
#   builder: builds the service wheel (migrations included as oauth_service/_alembic) and wheels of its
#            runtime dependencies only; the [dev] extra is never installed.
#   runtime: slim Python, no compilers, no build tools, runs as an unprivileged user.
# Build: docker build -t oauth-service .     Run: see docker-compose.yml and README "Deployment".

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY alembic ./alembic
COPY src ./src
RUN pip wheel --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000 \
    WORKERS=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/oauth-metrics
RUN groupadd --system --gid 10001 oauth \
    && useradd --system --uid 10001 --gid oauth --home-dir /app --shell /usr/sbin/nologin oauth \
    && mkdir -p /app \
    && chown oauth:oauth /app
COPY --from=builder /wheels /wheels
RUN pip install --no-index --find-links=/wheels oauth-service \
    && rm -rf /wheels
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# uvicorn stops accepting on SIGTERM and lets in-flight requests finish; the lifespan then closes the pool.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
# The metrics directory is emptied before the workers start (stale samples from a previous run would be summed).
CMD ["sh", "-c", "rm -rf \"$PROMETHEUS_MULTIPROC_DIR\" && mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && exec oauth-service serve --host 0.0.0.0 --port \"$PORT\" --workers \"$WORKERS\""]

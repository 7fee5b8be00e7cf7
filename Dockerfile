# calsync image: multi-stage, slim, non-root, `calsync serve`, health-checked.
#
# Build:  docker build -t calsync .
# The install step is the one tests/e2e/test_packaging.py runs (pip wheel of the same files),
# so a package that would be missing from the image fails `make test`, not a deploy.
# Pinned by exact tag; for byte-for-byte reproducible builds pin the digest as well
# (python:3.11.14-slim-bookworm@sha256:...), e.g. with Renovate or `docker buildx imagetools inspect`.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: a virtualenv with calsync and its runtime dependencies only (no dev extra) ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY jobs ./jobs
COPY providers ./providers
RUN python -m venv /opt/calsync \
 && /opt/calsync/bin/pip wheel --no-deps . -w /tmp/wheels \
 && /opt/calsync/bin/pip install /tmp/wheels/calsync-*.whl \
 && /opt/calsync/bin/pip uninstall -y pip setuptools

# --- runtime: the virtualenv, the migrations and the default settings; nothing else ------
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin calsync
COPY --from=build /opt/calsync /opt/calsync
WORKDIR /app
# worker/db/engine.py finds alembic.ini in the working directory of an installed package.
COPY alembic.ini worker.toml ./
COPY alembic ./alembic
RUN mkdir -p /app/data && chown calsync:calsync /app/data
USER calsync
ENV PATH=/opt/calsync/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CALSYNC_SERVER__HOST=0.0.0.0 \
    CALSYNC_SERVER__PORT=8080 \
    CALSYNC_LOGGING__FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CALSYNC_SERVER__PORT', '8080'), timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["calsync"]
CMD ["serve"]

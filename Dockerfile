# calsync: slim, non-root, `calsync serve`, health-checked.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md alembic.ini worker.toml ./
COPY worker ./worker
COPY jobs ./jobs
COPY providers ./providers
COPY alembic ./alembic
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 calsync
COPY --from=build /install /usr/local
WORKDIR /app
COPY --chown=calsync alembic.ini worker.toml ./
COPY --chown=calsync alembic ./alembic
USER calsync
ENV CALSYNC_SERVER__HOST=0.0.0.0
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["calsync"]
CMD ["serve"]

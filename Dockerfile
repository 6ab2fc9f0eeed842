# syntax=docker/dockerfile:1
# One image for the API (`ragline serve`, the default), the operator (`ragline operator`)
# and the operator's index-build Jobs (`ragline index build <name>`).
#
#   docker build -t ragline:dev .
#   docker run --rm -p 8080:8080 -e RAGLINE_DATABASE_URL=... -e RAGLINE_REDIS_URL=... ragline:dev
#
# Both stages use the same base so the virtual environment's interpreter symlinks
# (/opt/venv/bin/python -> /usr/local/bin/python3.11) resolve in the final stage.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only what `pip install .` needs (see .dockerignore). Every dependency ships a wheel for
# linux/amd64, so the builder needs no compiler (other platforms are untested).
COPY pyproject.toml README.md ./
COPY api ./api
COPY operator ./operator
# The imports fail the build on a dependency missing from pyproject.toml, which the CLI's
# lazy imports would otherwise only reveal when a pod starts.
RUN pip install --no-cache-dir . \
    && python -c "import ragapi.app, ragoperator.handlers" \
    && ragline --help >/dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="ragline" \
      org.opencontainers.image.description="Kubernetes-native retrieval-augmented generation: API and operator" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
# A fixed, unprivileged uid/gid (the chart's runAsUser/runAsGroup) with no login shell.
RUN groupadd --system --gid 10001 ragline \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin ragline
COPY --from=builder /opt/venv /opt/venv
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080
# For `docker run` of the API; Kubernetes ignores it and uses the chart's probes. slim has
# no curl, so python's urllib asks /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["ragline"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]

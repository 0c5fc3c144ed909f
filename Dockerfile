# sipsvc container. The build stage installs with the README's and CI's own command
# (scripts/install.sh: a virtual environment in .venv, then pip install -e .); the runtime stage
# takes that environment, with nothing else of the build, and runs it as a non-root user.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/sipsvc
COPY pyproject.toml README.md ./
COPY scripts ./scripts
COPY config ./config
COPY sipsvc ./sipsvc
RUN bash scripts/install.sh

FROM python:3.11-slim
RUN useradd --system --home-dir /var/lib/sipsvc --create-home --shell /usr/sbin/nologin sipsvc
# The same path as in the build stage: the environment's scripts name it.
COPY --from=build /opt/sipsvc /opt/sipsvc
ENV PATH=/opt/sipsvc/.venv/bin:$PATH \
    SIPSVC_HTTP=0.0.0.0:8000 \
    SIPSVC_SIP=0.0.0.0:5060 \
    SIPSVC_DATA_DIR=/var/lib/sipsvc
USER sipsvc
WORKDIR /var/lib/sipsvc
VOLUME /var/lib/sipsvc
# HTTP API; SIP over UDP and TCP
EXPOSE 8000/tcp 5060/udp 5060/tcp
# /healthz on the port SIPSVC_HTTP names (the slim image has no curl)
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('SIPSVC_HTTP', ':8000').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=3)"]
CMD ["sipsvc", "serve"]

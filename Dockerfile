# syntax=docker/dockerfile:1
#
# One image for every framefarm process:
#   API:          docker run -p 8700:8700 framefarm                     (the default CMD below)
#   render node:  docker run framefarm worker --server http://API:8700  (FRAMEFARM_ENROLMENT_TOKEN set)
#   schema:       docker run framefarm migrate                          (FRAMEFARM_DATABASE_URL set)
# See docs/deployment.md.

# -- build: install framefarm and its runtime dependencies into a virtualenv -----------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/framefarm
WORKDIR /src
# pyproject.toml names README.md as the package's readme: the build needs it.
COPY pyproject.toml README.md ./
COPY src ./src
# The package and its runtime dependencies only: no test or dev extras.
RUN /opt/framefarm/bin/pip install .

# -- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim
# libfribidi0: Pillow's bundled libraqm loads it at run time to shape right-to-left text.
# tini: PID 1 that forwards SIGTERM and reaps FFmpeg children. Python as PID 1 ignores
#       SIGTERM (the kernel drops default-action signals to a namespace's init), so without
#       it `docker stop` / a pod deletion would always wait for the full grace period.
# FFmpeg itself comes from the imageio-ffmpeg wheel; fonts ship in the package.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libfribidi0 tini \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 framefarm \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
            --shell /usr/sbin/nologin framefarm \
 && mkdir -p /data \
 && chown 10001:10001 /data

COPY --from=build /opt/framefarm /opt/framefarm

ENV PATH=/opt/framefarm/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FRAMEFARM_DATA_DIR=/data

# /data: SQLite (when no PostgreSQL), local storage, generated keys, node scratch.
# Mount a volume here for the API; a render node only needs it as scratch.
WORKDIR /data
USER 10001:10001

EXPOSE 8700

# Liveness of `framefarm serve` on its default port (slim has no curl). Render nodes serve
# no HTTP: docker-compose.yml disables this check for them.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8700/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["tini", "--", "framefarm"]
CMD ["serve", "--host", "0.0.0.0", "--workers", "0"]

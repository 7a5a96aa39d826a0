# One image for every framefarm process:
#   API:          docker run -p 8700:8700 framefarm                     (the default CMD below)
#   render node:  docker run framefarm worker --server http://API:8700  (FRAMEFARM_ENROLMENT_TOKEN set)
#   schema:       docker run framefarm migrate                          (FRAMEFARM_DATABASE_URL set)
# See docs/deployment.md.
#
# Build arguments (all optional):
#   BASE                     the Debian-based Python 3.11 image to build on; any image with
#                            `python3 -m venv` and apt works (scripts/deploy/base-image makes
#                            one from Debian's packages where no registry can be reached)
#   PIP_INDEX_URL            a package index other than pip's default
#   DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR   Debian mirrors other than the base image's
#
# This is the slim image: the API and render nodes of framefarm documents. The variant with
# espeak-ng (spoken voice-overs) and Chromium with Node.js (engines that render in a
# browser), some 950 MB more, is built on top of it: deploy/docker/full.Dockerfile.

ARG BASE=python:3.11-slim

# -- build: install framefarm and its runtime dependencies into a virtualenv -----------------
FROM ${BASE} AS build
ARG PIP_INDEX_URL=""
# pip trusts the system's CA store (where a TLS-inspecting proxy's CA is added), not the
# copy of certifi it bundles.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN python3 -m venv /opt/framefarm
WORKDIR /src
# pyproject.toml names README.md as the package's readme: the build needs it.
COPY pyproject.toml README.md ./
COPY src ./src
# The package and its runtime dependencies only: no test or dev extras. Then what no
# process runs: pip itself, the dependencies' own test suites.
RUN if [ -z "$PIP_INDEX_URL" ]; then unset PIP_INDEX_URL; fi \
 && /opt/framefarm/bin/pip install . \
 && /opt/framefarm/bin/pip uninstall --yes pip setuptools \
 && find /opt/framefarm/lib -depth -type d -name tests -path '*/site-packages/*/tests' \
         -exec rm -rf {} + \
 && find /opt/framefarm/lib -name '*.pyi' -delete

# -- runtime ---------------------------------------------------------------------------------
FROM ${BASE} AS runtime
ARG DEBIAN_MIRROR=""
ARG DEBIAN_SECURITY_MIRROR=""
# libfribidi0: Pillow's bundled libraqm loads it at run time to shape right-to-left text.
# tini: PID 1 that forwards SIGTERM and reaps FFmpeg children. Python as PID 1 ignores
#       SIGTERM (the kernel drops default-action signals to a namespace's init), so without
#       it `docker stop` / a pod deletion would always wait for the full grace period.
# FFmpeg itself comes from the imageio-ffmpeg wheel; fonts ship in the package.
# hadolint ignore=DL3008
RUN set -eu; \
    if [ -n "$DEBIAN_MIRROR" ]; then \
      . /etc/os-release; \
      rm -f /etc/apt/sources.list; \
      printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$DEBIAN_MIRROR" "$VERSION_CODENAME" "$VERSION_CODENAME" \
        > /etc/apt/sources.list.d/debian.sources; \
      if [ -n "$DEBIAN_SECURITY_MIRROR" ]; then \
        printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
          "$DEBIAN_SECURITY_MIRROR" "$VERSION_CODENAME" \
          >> /etc/apt/sources.list.d/debian.sources; \
      fi; \
    fi; \
    apt-get update; \
    apt-get install -y --no-install-recommends libfribidi0 tini; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log

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

# The API's liveness on its default port (the image has no curl). Render nodes serve no
# HTTP: they are checked with `python -m framefarm.worker.health --workdir DIR` (ready
# while registered and taking work, not while draining), as docker-compose.yml and the
# Kubernetes node Deployment do.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8700/healthz', timeout=4).status == 200 else 1)"]

# tini passes SIGTERM on: a node drains (finishes its chunk, then exits 0), the API stops
# taking connections, finishes the requests in flight and exits 0.
ENTRYPOINT ["tini", "--", "framefarm"]
CMD ["serve", "--host", "0.0.0.0", "--workers", "0"]

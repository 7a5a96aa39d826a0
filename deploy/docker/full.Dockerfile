# framefarm's image with what spoken voice-overs (espeak-ng) and browser-based engines
# (Chromium, Node.js) need; the default image (./Dockerfile) has none of it. Build the
# default image first, then this on top of it:
#
#   docker build -t framefarm:0.1.0 .
#   docker build -f deploy/docker/full.Dockerfile --build-arg IMAGE=framefarm:0.1.0 \
#                -t framefarm:0.1.0-full deploy/docker
#
# Use it only for the nodes (and the API, if it previews such documents) that need it:
# it is about 950 MB larger.
ARG IMAGE=framefarm:local
FROM ${IMAGE}
USER root
# fonts-liberation: Chromium's fallback fonts for pages that name none of the package's.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng chromium nodejs fonts-liberation \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
USER 10001:10001

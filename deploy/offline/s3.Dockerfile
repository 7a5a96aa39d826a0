# An S3-compatible server in place of MinIO, on machines that reach Debian's mirror and the
# npm registry but no container registry (docker-compose.offline.yml): s3rver, an npm
# package, on Debian's Node.js. It keeps objects in /data (a volume), checks request
# signatures (its access key and secret are both S3RVER), serves presigned URLs and
# multipart uploads: what framefarm uses of S3. Not for production: use MinIO, or any
# S3-compatible store.
ARG BASE=framefarm-base:bookworm

FROM ${BASE} AS node
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log

# npm itself comes from the registry as a tarball (Debian's npm package is some 300 packages).
FROM node AS build
# The npm registry to use (required: scripts/deploy/registries.py reads this machine's).
ARG NPM_REGISTRY=""
ARG NPM_VERSION=10.9.2
ARG S3RVER_VERSION=3.7.1
# Node trusts the system's CA store too (where a TLS-inspecting proxy's CA is added).
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN test -n "$NPM_REGISTRY" || { echo "set the build argument NPM_REGISTRY" >&2; exit 1; }; \
    python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], "/tmp/npm.tgz")' \
      "${NPM_REGISTRY%/}/npm/-/npm-${NPM_VERSION}.tgz" \
 && mkdir -p /opt/npm /opt/s3rver \
 && tar -xzf /tmp/npm.tgz -C /opt/npm --strip-components=1 \
 && node /opt/npm/bin/npm-cli.js install --prefix /opt/s3rver --registry "$NPM_REGISTRY" \
         --omit=dev --no-audit --no-fund --no-update-notifier "s3rver@${S3RVER_VERSION}" \
 && rm -rf /tmp/npm.tgz /root/.npm

FROM node
COPY --from=build /opt/s3rver /opt/s3rver
RUN groupadd --system --gid 10001 s3 \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home s3 \
 && mkdir -p /data && chown 10001:10001 /data
USER 10001:10001
WORKDIR /data
ENTRYPOINT ["node", "/opt/s3rver/node_modules/s3rver/bin/s3rver.js", "--directory", "/data"]
CMD ["--address", "127.0.0.1", "--port", "9000", "--configure-bucket", "framefarm"]

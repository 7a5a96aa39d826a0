# PostgreSQL from Debian's packages, in place of the postgres:16 image on machines that
# reach a Debian mirror but no container registry (docker-compose.offline.yml). It honours
# the official image's POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB and data path, and
# PGPORT / PG_LISTEN for host networking. Debian bookworm ships PostgreSQL 15; framefarm
# needs nothing of 16.
ARG BASE=framefarm-base:bookworm
FROM ${BASE}
# No cluster from the package's postinst: the entrypoint makes one in the volume.
# hadolint ignore=DL3008
RUN mkdir -p /etc/postgresql-common \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && mkdir -p /var/lib/postgresql/data \
 && chown postgres:postgres /var/lib/postgresql/data \
 && chmod 700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
USER postgres
# SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave).
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]

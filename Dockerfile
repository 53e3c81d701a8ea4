# anvil: anvild, anvil-worker and anvil in one image (Debian bookworm).
#
#   docker build -t anvil .
#   docker run -v anvil-data:/var/lib/anvil -p 7700:7700 -p 8000:8000 anvil
#
# The first stage builds and stages the tree with `make install` alone
# (make installs the Debian build packages it needs through
# scripts/deps.sh); the second holds only the runtime libraries and the
# staged files, and runs as the unprivileged user anvil.

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make clean \
 && make -j"$(nproc)" install DESTDIR=/stage PREFIX=/usr \
 && rm -rf /stage/usr/include /stage/usr/lib/pkgconfig /stage/usr/lib/systemd \
           /stage/usr/lib/libanvil.a

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libnng1 libprotobuf-c1 libsqlite3-0 libjansson4 libmicrohttpd12 \
        libgnutls30 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system anvil \
 && useradd --system --gid anvil --home-dir /var/lib/anvil \
        --shell /usr/sbin/nologin anvil \
 && install -d -o anvil -g anvil -m 0750 /var/lib/anvil
COPY --from=build /stage/ /
USER anvil
WORKDIR /var/lib/anvil
# The database (anvil.db with its -wal and -shm files) and the bootstrap
# admin token live here.
VOLUME ["/var/lib/anvil"]
# nng (the CLI, the C SDK, anvil-worker) and HTTP/JSON (curl, any
# language; /healthz and /readyz for probes, /metrics).
EXPOSE 7700 8000
# Off loopback anvild requires API tokens; the first admin token is
# written to /var/lib/anvil/admin.token (mode 0600) on the first start.
ENTRYPOINT ["/usr/sbin/anvild"]
CMD ["--listen", "tcp://0.0.0.0:7700", "--http", "http://0.0.0.0:8000", \
     "--db", "/var/lib/anvil/anvil.db", \
     "--bootstrap-token-file", "/var/lib/anvil/admin.token"]

# syntax=docker/dockerfile:1
# Images for Kubernetes (see docs/kubernetes.md):
#   docker build --target praetor  -t ghcr.io/praetor-dev/praetor:0.1.0 .
#   docker build --target operator -t ghcr.io/praetor-dev/praetor-operator:0.1.0 .
# `praetor` links Debian bookworm's static librocksdb 7.8 (see docs/build.md: rocksdb 0.20
# against the system library builds in seconds; the bundled C++ build takes ~25 minutes),
# so the runtime image needs no RocksDB package. The operator does not link RocksDB at all.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---- build the agent (needs RocksDB, LZ4 and libclang for bindgen) ----
FROM docker.io/library/rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build-praetor
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librocksdb-dev liblz4-dev libclang-dev clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# .cargo/config.toml points ROCKSDB_LIB_DIR and LZ4_LIB_DIR at /usr/lib/x86_64-linux-gnu;
# set them for the build platform's multiarch directory so arm64 builds link too.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    export LIBDIR="/usr/lib/$(gcc -print-multiarch)" \
 && ROCKSDB_LIB_DIR="$LIBDIR" LZ4_LIB_DIR="$LIBDIR" \
    cargo build --release --locked -p agent --bin praetor \
 && install -D -m 0755 target/release/praetor /out/praetor

# ---- build the operator (pure Rust, rustls with ring: no OpenSSL, no RocksDB) ----
FROM docker.io/library/rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build-operator
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p operator --bin operator \
 && install -D -m 0755 target/release/operator /out/operator

# ---- the agent image: servers and injected sidecars ----
FROM docker.io/library/debian:${DEBIAN_RELEASE}-slim AS praetor
# RocksDB and its compression libraries are linked into praetor statically; libstdc++6
# comes with the base image. curl: the server readiness probe checks
# /v1/status/leader. The sidecar's start script needs /bin/sh (part of the base image).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 1000 praetor \
 && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /praetor --shell /usr/sbin/nologin praetor \
 && mkdir -p /praetor/data /praetor/config \
 && chown -R 1000:1000 /praetor
COPY --from=build-praetor /out/praetor /usr/local/bin/praetor
USER 1000:1000
WORKDIR /praetor
# 8500 HTTP, 8600 DNS, 8300 server RPC, 8301 LAN gossip, 8302 WAN gossip.
EXPOSE 8500 8600/tcp 8600/udp 8300 8301/tcp 8301/udp 8302/tcp 8302/udp
ENTRYPOINT ["praetor"]
CMD ["agent", "-dev", "-client=0.0.0.0"]

# ---- the operator image ----
FROM gcr.io/distroless/cc-debian12:nonroot AS operator
COPY --from=build-operator /out/operator /operator
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/operator"]

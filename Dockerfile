# weir container image: `docker build -t weir:0.1.0 .`
#
#   docker run --rm -p 9464:9464 \
#     -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 \
#     -v "$PWD/pipelines:/etc/weir/pipelines:ro" weir:0.1.0
#
# The image runs `weir run --config /etc/weir/weir.yaml`; that config is
# config/weir.yaml with `pipelines:` pointing at /etc/weir/pipelines (mount
# your pipeline files there, or mount your own /etc/weir). The Helm chart in
# charts/weir mounts both from ConfigMaps.
# Linted by scripts/check-packaging.sh (hadolint); there is no Docker engine on
# the development machines, so keep this file plain.

# ---- build ------------------------------------------------------------------
# Same toolchain as the development machines (Cargo.toml's rust-version is the
# minimum). Debian 12 on both stages: the binary links the build stage's
# glibc and libssl3, which the runtime image provides.
FROM rust:1.95-bookworm AS build

# rdkafka-sys builds its bundled librdkafka with ./configure + make (C/C++
# compiler, make, perl, pkg-config), with OpenSSL (feature `ssl`) and zlib;
# zstd-sys compiles its own zstd. The rust image (buildpack-deps) ships all of
# these already: installing them explicitly documents the dependency and is a
# no-op there.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential perl pkg-config libssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
# The runtime image has no libz.so.1: link zlib statically (libz-sys builds
# its bundled copy). libssl3 is in the runtime image and stays dynamic.
ENV LIBZ_SYS_STATIC=1

WORKDIR /src
COPY . .
# Cache mounts keep the registry and target dir between builds (BuildKit);
# the binary is copied out of the cached target dir in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin weir \
    && install -D -m 0755 target/release/weir /out/usr/local/bin/weir

# The image's default config: config/weir.yaml with the pipelines directory
# moved to /etc/weir/pipelines (relative paths resolve against the config's
# directory). Fails the build if config/weir.yaml no longer has that line.
RUN mkdir -p /out/etc/weir/pipelines \
    && grep -q '^pipelines: ' config/weir.yaml \
    && sed 's#^pipelines: .*#pipelines: [pipelines]#' config/weir.yaml > /out/etc/weir/weir.yaml

# ---- runtime ----------------------------------------------------------------
# Distroless cc: glibc, libgcc, libssl3, CA certificates, no shell, no package
# manager; the `nonroot` tag runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot

COPY --from=build /out/ /
USER 65532:65532
WORKDIR /etc/weir
# /metrics, /healthz, /readyz (metrics.listen, default 0.0.0.0:9464).
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/weir"]
CMD ["run", "--config", "/etc/weir/weir.yaml"]

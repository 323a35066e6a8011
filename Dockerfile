# proxy-injector: a release build in a minimal, non-root runtime image.
# The development machines of this project reach no container registry, so this file is not
# built there; scripts/image.sh builds the same runtime image from a local binary (and
# tests/image.rs runs it). The bases are referenced by tag until scripts/pin-base-images.sh is
# run where the registries resolve: it rewrites each FROM to `image:tag@sha256:<digest>`.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY core ./core
COPY benches ./benches
RUN cargo build --release --locked --bin proxy-injector

# distroless/cc: glibc and libgcc only, no shell; "nonroot" is uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/proxy-injector /proxy-injector
USER 65532:65532
EXPOSE 8443 9995
ENTRYPOINT ["/proxy-injector"]
CMD ["webhook"]

# proxy-injector: a static-enough release build in a minimal, non-root runtime image.
# (Docker cannot run on the development machines of this project; this file is kept small and
# conventional so that it is obviously right, and CI elsewhere can build it.)

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

# Portcullis container image. There is no container engine on the development machines, so
# this file is linted (hadolint) rather than built in CI; it is written as we would ship it.
#
#   docker build -t portcullis .
#   docker run -p 8080:8080 -v portcullis-data:/data portcullis
#
# Configure with PORTCULLIS_* environment variables (see config/portcullis.toml). For several
# replicas set PORTCULLIS_DATABASE_URL to a shared PostgreSQL database and PORTCULLIS_ISSUER to
# the public https URL of the load balancer.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
# A workspace member: cargo reads its manifest even when building only the server.
COPY bench ./bench
RUN cargo build --release --locked \
    && strip target/release/portcullis \
    && mkdir -p /data

# glibc and libgcc, no shell, no package manager; runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
COPY --from=build --chown=65532:65532 /data /data
# /metrics on a port of its own (metrics.listen): publish 8080 through the load balancer, and
# let only the scraper reach 9464.
ENV PORTCULLIS_LISTEN=0.0.0.0:8080 \
    PORTCULLIS_METRICS_LISTEN=0.0.0.0:9464 \
    PORTCULLIS_DATABASE_URL=sqlite:///data/portcullis.db \
    PORTCULLIS_LOG_FORMAT=json
VOLUME ["/data"]
USER 65532:65532
EXPOSE 8080 9464
# `portcullis healthcheck` probes /healthz on the listen address: no curl needed in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/portcullis", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/portcullis"]
CMD ["serve"]

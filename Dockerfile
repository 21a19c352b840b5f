# Usher container image: build with the Rust toolchain, run on a slim Debian as a non-root user.
#   docker build -t usher .
#   docker run --rm -p 7880:7880 -e LIVEKIT_KEYS="APIkey: <secret of 32+ chars>" usher
#   docker run --rm -p 7880:7880 -v $PWD/my-config:/etc/usher:ro usher
# The bundled /etc/usher/usher.yaml has no keys: give them with LIVEKIT_KEYS or your own file.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY benches benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin usher
COPY src src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin usher \
    && strip target/release/usher

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin usher
COPY --from=build /src/target/release/usher /usr/local/bin/usher
COPY config/usher.yaml /etc/usher/usher.yaml
USER usher
# 7880: HTTP API and /rtc signalling. 7881/tcp and 7882/udp are reserved for the media plane.
EXPOSE 7880 7881 7882/udp
ENTRYPOINT ["usher"]
CMD ["--config", "/etc/usher/usher.yaml", "--bind", "0.0.0.0"]

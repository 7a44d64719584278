# rbuild's own image: the release binary (built outside, `cargo build
# --release`), CA certificates for registries, and newuidmap/newgidmap for
# rootless use. Built by rbuild itself:
#
#   cargo build --release && rbuild build -t rbuild .
#
# In it, `rbuild build` works in a plain `docker run` (default profile, no
# added capability) with the store inside the container: see docs/ci.md.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
# libseccomp2: the binary links it (the RUN sandbox's filter).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates uidmap libseccomp2 \
 && rm -rf /var/lib/apt/lists/*
# The binary to ship, relative to the context (.dockerignore keeps the
# rest of target/ out).
ARG RBUILD_BIN=target/release/rbuild
COPY ${RBUILD_BIN} /usr/local/bin/rbuild
# The store: mount a volume (or an emptyDir) here to keep it between runs.
ENV RBUILD_ROOT=/var/lib/rbuild
VOLUME /var/lib/rbuild
ENTRYPOINT ["rbuild"]
CMD ["--help"]

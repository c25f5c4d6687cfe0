# syntax=docker/dockerfile:1
#
# towerhook image: the release binary, linked against Debian 12's own CPython 3.11, on
# debian:bookworm-slim. `docker run -p 8080:8080 IMAGE` serves the demo webhooks; set
# TOWERHOOK_* variables (see README, "Configuration") to serve Odoo's (docker-compose.yml).
#
#   docker build -t towerhook .

# Any Rust toolchain >= 1.89 (the locked dependencies' minimum) builds towerhook; the
# default is the one the project is developed with. Override with --build-arg.
ARG RUST_VERSION=1.95

# --------------------------------------------------------------------------- builder
FROM rust:${RUST_VERSION}-bookworm AS builder

# Debian's Python 3.11: the same libpython the runtime stage installs (libpython3.11).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11-dev libpython3.11-dev python3-pip \
 && rm -rf /var/lib/apt/lists/*

# pyo3 builds against this interpreter (named, so that no other python3 on PATH is
# taken). build.rs bakes this interpreter's libdir into the binary's RUNPATH: for Debian's Python that is
# /usr/lib/x86_64-linux-gnu (or the arch's equivalent), where the runtime stage's
# libpython3.11 lives.
ENV PYO3_PYTHON=/usr/bin/python3.11

WORKDIR /build

# The packages snippets may import (python_sandbox/requirements.txt), installed for that
# same interpreter into the directory towerhook puts on sys.path. --target also keeps
# Debian's pip from refusing a system-wide install (PEP 668: --target skips that check).
COPY python_sandbox/requirements.txt python_sandbox/requirements.txt
RUN python3.11 -m pip install --no-cache-dir --disable-pip-version-check \
        --no-warn-script-location --root-user-action=ignore \
        --target /opt/towerhook/python-packages -r python_sandbox/requirements.txt

# The sources. build.rs compiles python_sandbox/towerhook_sandbox/*.py into the binary;
# tests/ is not built, but Cargo checks the test targets the manifest may name.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY python_sandbox python_sandbox
COPY tests tests

# The release profile keeps line tables (file:line in panic messages): about 65 MB of the
# 80 MB binary. --build-arg CARGO_PROFILE_RELEASE_STRIP=debuginfo builds a 15 MB binary
# without them (function names stay).
ARG CARGO_PROFILE_RELEASE_STRIP=none

# Cache mounts (BuildKit) keep the registry and the compiled dependencies between builds;
# the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin towerhook \
 && install -m 0755 target/release/towerhook /usr/local/bin/towerhook

# The binary must load Debian's libpython3.11 from the default library path.
RUN ldd /usr/local/bin/towerhook | grep -q 'libpython3\.11\.so\.1\.0 => /usr/lib/' \
 && /usr/local/bin/towerhook --version

# --------------------------------------------------------------------------- runtime
FROM debian:bookworm-slim AS runtime

# libpython3.11 brings the standard library (libpython3.11-stdlib) the embedded
# interpreter imports; ca-certificates for HTTPS to Odoo and from snippets (requests).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpython3.11 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid, so that runAsNonRoot-style checks can see it is not root.
RUN groupadd --system --gid 10001 towerhook \
 && useradd --system --uid 10001 --gid towerhook --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin towerhook \
 && install -d -m 0700 -o towerhook -g towerhook /var/lib/towerhook

COPY --from=builder /usr/local/bin/towerhook /usr/local/bin/towerhook
COPY --from=builder /opt/towerhook/python-packages /opt/towerhook/python-packages
COPY demo /opt/towerhook/demo
# curl is not in the slim image; the probe uses bash's /dev/tcp instead (no package, no
# extra attack surface). It reads the port from TOWERHOOK_LISTEN.
COPY --chmod=0755 deploy/healthcheck.sh /usr/local/bin/towerhook-healthcheck

# Defaults: the demo definitions, served on every interface of the container. The
# binary's own defaults name paths of the build checkout, which do not exist here.
ENV LANG=C.UTF-8 \
    TOWERHOOK_LISTEN=0.0.0.0:8080 \
    TOWERHOOK_DATA_DIR=/var/lib/towerhook \
    TOWERHOOK_PYTHON_PACKAGES_DIR=/opt/towerhook/python-packages \
    TOWERHOOK_YAML_DIR=/opt/towerhook/demo/webhooks \
    TOWERHOOK_SECRETS_FILE=/opt/towerhook/demo/secrets.yaml

# The SQLite store: call logs, the outbox of logs not yet in Odoo, the definitions snapshot.
VOLUME ["/var/lib/towerhook"]
EXPOSE 8080
USER 10001:10001
WORKDIR /var/lib/towerhook

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["towerhook-healthcheck", "/healthz"]

# towerhook stops on SIGTERM, finishing calls in flight (up to 30 s): give it that long
# (docker stop -t 40, compose stop_grace_period: 40s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["towerhook"]
CMD ["serve"]

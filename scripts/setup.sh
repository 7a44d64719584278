#!/usr/bin/env bash
# Sets up a fresh Debian machine and runs rbuild end to end on the bundled
# example: installs the packages, builds rbuild, makes a busybox base image
# from Debian's busybox-static, builds examples/hello, and runs the result
# in Docker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked
bin=target/release/rbuild
root=${RBUILD_ROOT:-/var/lib/rbuild}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A busybox base image from Debian's busybox-static, as the tests use.
scripts/bases.sh busybox-rootfs.tar
"$bin" --root "$root" import "${RBUILD_BASES:-/opt/bases}/busybox-rootfs.tar" busybox:local
"$bin" --root "$root" build -t hello:v1 -o "type=docker,dest=$work/hello.tar" examples/hello
"$bin" --root "$root" build -t hello:v1 examples/hello   # a second build: every step CACHED
dockerd_pid=$(scripts/services.sh start)
docker load -i "$work/hello.tar"
docker run --rm hello:v1
scripts/services.sh stop "$dockerd_pid"

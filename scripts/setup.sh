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
# A minimal busybox root filesystem, as the tests use.
mkdir -p "$work/bb/bin" "$work/bb/etc" "$work/bb/tmp" "$work/bb/root"
cp /bin/busybox "$work/bb/bin/busybox"
for c in $("$work/bb/bin/busybox" --list); do [ -e "$work/bb/bin/$c" ] || ln -s busybox "$work/bb/bin/$c"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n' > "$work/bb/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\n' > "$work/bb/etc/group"
chmod 1777 "$work/bb/tmp"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/bb" -cf "$work/busybox.tar" .
"$bin" --root "$root" import "$work/busybox.tar" busybox:local
"$bin" --root "$root" build -t hello:v1 -o "type=docker,dest=$work/hello.tar" examples/hello
"$bin" --root "$root" build -t hello:v1 examples/hello   # a second build: every step CACHED
dockerd_pid=$(scripts/services.sh start)
docker load -i "$work/hello.tar"
docker run --rm hello:v1
scripts/services.sh stop "$dockerd_pid"

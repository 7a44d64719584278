#!/usr/bin/env bash
# Makes the base images that tests read from /opt/bases (or $RBUILD_BASES):
#
#   busybox-rootfs.tar   Debian's static busybox with its applet links and
#                        the users root, nobody and app (uid 1000)
#   busybox.docker.tar   that root filesystem `docker import`ed as
#                        busybox:local and `docker save`d: Docker's own archive
#   busybox.oci.tar      the same image as an OCI archive, by skopeo
#   busybox-arm64-rootfs.tar  the same layout from Debian's busybox-static:arm64
#                        (multi-platform tests; `dpkg --add-architecture arm64`)
#   bookworm-rootfs.tar  a Debian bookworm minbase from debootstrap, from the
#                        mirror apt on this machine already uses
#   bookworm.docker.tar  that root filesystem imported as debian:bookworm and saved
#
# Needs root, a running dockerd (scripts/services.sh) and the packages
# scripts/deps.sh installs. Idempotent: each file is written under a
# temporary name and renamed when complete, and a file that is there is kept,
# so only the first run pays (debootstrap takes a few minutes).
#
# Arguments name the files to make (e.g. `scripts/bases.sh busybox-rootfs.tar`);
# none: all of them.
set -euo pipefail
bases=${RBUILD_BASES:-/opt/bases}
mkdir -p "$bases"
cd "$bases"
log=$bases/bases.log
started=$SECONDS
wanted=("$@")
# want FILE: whether FILE was asked for (or everything was).
want() { [ ${#wanted[@]} = 0 ] || [[ " ${wanted[*]} " == *" $1 "* ]]; }

if want busybox-rootfs.tar && [ ! -f busybox-rootfs.tar ]; then
  echo "bases: busybox-rootfs.tar"
  rm -rf busybox.work && mkdir -p busybox.work/{bin,etc,tmp,root,usr/bin,sbin,home/app}
  cp /bin/busybox busybox.work/bin/busybox
  for applet in $(busybox.work/bin/busybox --list); do
    [ -e "busybox.work/bin/$applet" ] || ln -s busybox "busybox.work/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n' \
    >busybox.work/etc/passwd
  printf 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\n' >busybox.work/etc/group
  chmod 1777 busybox.work/tmp
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C busybox.work -cf busybox-rootfs.tar.part .
  mv busybox-rootfs.tar.part busybox-rootfs.tar
  rm -rf busybox.work
fi

if { want bookworm-rootfs.tar || want bookworm.docker.tar; } && [ ! -f bookworm-rootfs.tar ]; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "bases: bookworm-rootfs.tar (debootstrap --variant=minbase from $mirror; log: $log)"
  rm -rf bookworm.work
  if ! debootstrap --variant=minbase bookworm bookworm.work "$mirror" >"$log" 2>&1; then
    tail -20 "$log" >&2
    echo "bases: debootstrap failed; see $log" >&2
    exit 1
  fi
  tar --numeric-owner -C bookworm.work -cf bookworm-rootfs.tar.part .
  mv bookworm-rootfs.tar.part bookworm-rootfs.tar
  rm -rf bookworm.work
fi

# Docker's own `docker save` archives. `docker import` always runs before a
# save, so the tag names this root filesystem whatever Docker held before.
save_from_docker() { # ROOTFS TAG ARCHIVE
  want "$3" || return 0
  [ -f "$3" ] && return 0
  echo "bases: $3 (docker import + docker save)"
  docker import "$1" "$2" >/dev/null
  docker save -o "$3.part" "$2"
  mv "$3.part" "$3"
}
save_from_docker busybox-rootfs.tar busybox:local busybox.docker.tar
save_from_docker bookworm-rootfs.tar debian:bookworm bookworm.docker.tar

if want busybox.oci.tar && [ ! -f busybox.oci.tar ]; then
  echo "bases: busybox.oci.tar (skopeo copy)"
  rm -f busybox.oci.tar.part
  skopeo copy -q docker-archive:busybox.docker.tar oci-archive:busybox.oci.tar.part:busybox:local
  mv busybox.oci.tar.part busybox.oci.tar
fi
if want busybox-arm64-rootfs.tar && [ ! -f busybox-arm64-rootfs.tar ]; then
  echo "bases: busybox-arm64-rootfs.tar (busybox-static:arm64)"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    apt-get update -qq
  fi
  rm -rf busybox-arm64.work && mkdir -p busybox-arm64.work/deb busybox-arm64.work/root/{bin,etc,tmp,root,home/app}
  (cd busybox-arm64.work/deb && apt-get download -qq busybox-static:arm64)
  dpkg-deb -x busybox-arm64.work/deb/busybox-static_*_arm64.deb busybox-arm64.work/x
  root=busybox-arm64.work/root
  cp busybox-arm64.work/x/bin/busybox "$root/bin/busybox"
  # The host's busybox lists the applets: the arm64 one cannot run here
  # without the emulator.
  for applet in $(/bin/busybox --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\n' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf busybox-arm64-rootfs.tar.part .
  mv busybox-arm64-rootfs.tar.part busybox-arm64-rootfs.tar
  rm -rf busybox-arm64.work
fi

echo "bases: ready in $bases ($((SECONDS - started)) s)"

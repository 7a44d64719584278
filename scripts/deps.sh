#!/usr/bin/env bash
# Installs, from Debian's packages, what rbuild's tests and examples use:
# a static busybox for base images, docker (load/run checks), skopeo and
# umoci (OCI checks), a registry, newuidmap/newgidmap (rootless builds),
# slirp4netns (the NAT behind RUN's default network),
# debootstrap (the Debian base image scripts/bases.sh makes), Go (a layer
# test reads our tars with Go's archive/tar), libseccomp-dev (rbuild links
# libseccomp to compile the RUN sandbox's seccomp profile), gcc and
# libc6-dev (the seccomp test builds a static probe), Chromium (the
# --timings report is checked in a headless browser), tmux (the terminal
# view is checked on a real terminal), OpenSSH (ssh-agent and sshd for --ssh
# and ADD of git repositories over ssh), git, QEMU user emulation
# (multi-platform builds run arm64 steps; qemu-aarch64 is registered in
# binfmt_misc with the F flag, binfmt_misc mounted first when it is not), and
# small tools. Idempotent.
set -euo pipefail
pkgs=(busybox-static docker.io skopeo umoci docker-registry apache2-utils file jq tar gzip zstd bzip2 xz-utils curl ca-certificates graphviz python3 uidmap slirp4netns debootstrap golang-go util-linux mount passwd libseccomp-dev gcc libc6-dev chromium tmux openssh-client openssh-server git qemu-user-static binfmt-support)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# slirp4netns opens /dev/net/tun as the building user: distributions' udev
# rules make it 0666, some container hosts leave it 0600.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
  chmod 0666 /dev/net/tun
fi
# Foreign-platform RUN steps: the emulator must be registered with the F flag
# (Debian's qemu-user-static entries have it).
# Not fatal: where binfmt_misc cannot be mounted (some containers) the
# multi-platform tests say why they cannot run.
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
  echo "deps: cannot mount binfmt_misc; arm64 emulation unavailable" >&2
[ -f /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 ||
  echo "deps: cannot register qemu-aarch64 in binfmt_misc" >&2

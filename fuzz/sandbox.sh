#!/bin/sh
# Runs a command (normally a fuzzer) as root in a private mount namespace
# where every mount is read-only except the few places fuzzing must write:
#
#   /tmp                        a fresh tmpfs, gone when the command ends
#                               (TMPDIR is unset, so the layer_apply target
#                               and the linker both work there)
#   fuzz/corpus, fuzz/artifacts libFuzzer's output
#   $CARGO_TARGET_DIR           (or fuzz/target) so `cargo fuzz` can build
#   $CARGO_HOME                 (or ~/.cargo) for cargo's own locks
#
# A layer that escaped its destination as root could otherwise overwrite
# files anywhere on the machine. Usage: fuzz/sandbox.sh cargo fuzz run ...
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "sandbox.sh: must run as root (it creates a mount namespace)" >&2
    exit 1
fi
if [ $# -eq 0 ]; then
    echo "usage: $0 command [args...]" >&2
    exit 2
fi

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
target="${CARGO_TARGET_DIR:-$fuzz_dir/target}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
mkdir -p "$fuzz_dir/corpus" "$fuzz_dir/artifacts" "$target"

export RBUILD_FUZZ_WRITABLE="$fuzz_dir/corpus
$fuzz_dir/artifacts
$target
$cargo_home"

exec unshare --mount --propagation private -- sh -euc '
    # Bind each writable directory onto itself: it becomes a mount of its
    # own, left read-write when everything else is made read-only below.
    echo "$RBUILD_FUZZ_WRITABLE" | while IFS= read -r dir; do
        if [ -d "$dir" ]; then mount --bind "$dir" "$dir"; fi
    done
    # Field 5 of mountinfo is the mount point (octal escapes for spaces are
    # left alone: such mounts stay writable, which is only less safe).
    awk "{ print \$5 }" /proc/self/mountinfo | while IFS= read -r point; do
        case "$point" in
            /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) continue ;;
        esac
        if echo "$RBUILD_FUZZ_WRITABLE" | grep -qxF -- "$point"; then
            continue
        fi
        mount -o remount,bind,ro "$point" 2>/dev/null || true
    done
    if ! awk "\$5 == \"/\" { print \$6 }" /proc/self/mountinfo | grep -q "^ro"; then
        echo "sandbox.sh: could not make / read-only" >&2
        exit 1
    fi
    unset RBUILD_FUZZ_WRITABLE TMPDIR
    mount -t tmpfs -o mode=1777,size=2g rbuild-fuzz-tmp /tmp
    exec "$@"
' sandbox "$@"

#!/usr/bin/env bash
# Checks that cost seconds and keep the tree honest: formatting (rustfmt)
# and dependencies a crate declares but never uses (cargo-machete, installed
# from crates.io on first use). `cargo clippy --workspace --all-targets --
# -D warnings` is the third check; it needs a build of its own, so run it by
# hand (or set RBUILD_LINT_CLIPPY=1).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
if ! command -v cargo-machete >/dev/null; then
  echo "lint: installing cargo-machete"
  cargo install --quiet --locked cargo-machete --version 0.9.2
fi
cargo machete
if [ -n "${RBUILD_LINT_CLIPPY:-}" ]; then
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi
echo "lint: clean"

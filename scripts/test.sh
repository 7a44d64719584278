#!/usr/bin/env bash
# The test command: installs what the tests use, starts dockerd if needed,
# runs the whole test suite (unit, corpus and integration tests against the
# real binary), then stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  scripts/deps.sh
else
  echo "note: not root; namespace/overlay tests will skip and nothing is installed" >&2
fi
dockerd_pid=""
if [ "$(id -u)" = 0 ]; then
  dockerd_pid=$(scripts/services.sh start)
fi
trap 'scripts/services.sh stop "$dockerd_pid"' EXIT
cargo build --workspace --all-targets --locked
cargo test --workspace --locked -- --test-threads="${RBUILD_TEST_THREADS:-4}"

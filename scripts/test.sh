#!/usr/bin/env bash
# The test command: installs what the tests use (scripts/deps.sh), starts
# dockerd if none answers (scripts/services.sh), makes the base images tests
# read from /opt/bases (scripts/bases.sh), runs the whole test suite (unit,
# corpus and integration tests against the real binary) after the quick
# lints (scripts/lint.sh: rustfmt, unused dependencies), says what was
# skipped and why, then stops what it started.
#
# Strict mode, RBUILD_TEST_STRICT=1, is on whenever CI is set: a test whose
# prerequisite is missing then fails instead of being skipped, and the run
# fails if anything was skipped. Without it, each skip prints
# `skipped: <test>: <reason>` and the run ends with the list of them.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${CI:-}" ] || [ -n "${RBUILD_TEST_STRICT:-}" ]; then
  export RBUILD_TEST_STRICT=1
fi
target=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$target"
# The skip list: every test that gives up for a missing prerequisite adds a
# line (rbuild-test-support's skip()); libtest has no end-of-run hook, so it
# is emptied here and printed at the end.
export RBUILD_TEST_SKIPS=$target/test-skips.txt
: >"$RBUILD_TEST_SKIPS"

dockerd_pid=""
trap 'scripts/services.sh stop "$dockerd_pid"' EXIT
if [ "$(id -u)" = 0 ]; then
  started=$SECONDS
  scripts/deps.sh
  dockerd_pid=$(scripts/services.sh start)
  scripts/bases.sh
  echo "provisioning took $((SECONDS - started)) s"
else
  echo "note: not root; nothing is installed, and namespace/overlay tests will skip (or fail in strict mode)" >&2
fi

scripts/lint.sh

# Arguments, if any, choose what to test instead of the whole workspace
# (`scripts/test.sh -p rbuild-frontend`).
scope=("$@")
[ $# -gt 0 ] || scope=(--workspace)
cargo build --workspace --all-targets --locked
log=$target/test-output.txt
status=0
cargo test "${scope[@]}" --locked --no-fail-fast -- --test-threads="${RBUILD_TEST_THREADS:-4}" 2>&1 |
  tee "$log" || status=$?

# libtest's counts over every test binary; a test skipped whole passed
# without checking anything, so it counts as skipped, not passed (a test
# that checked less, "… not checked: …", still counts as passed).
read -r passed failed ignored < <(awk '/^test result:/ {p += $4; f += $6; i += $8} END {print p+0, f+0, i+0}' "$log")
skipped=$({ grep -v -e ' not checked: ' -e ': FAILED in strict mode: ' "$RBUILD_TEST_SKIPS" || true; } |
  sed 's/: .*//' | sort -u | wc -l)
echo
if [ -s "$RBUILD_TEST_SKIPS" ]; then
  if [ "${RBUILD_TEST_STRICT:-}" = 1 ]; then
    echo "prerequisites missing in strict mode (each failed its test):"
    status=1
  else
    echo "skipped, and why (RBUILD_TEST_STRICT=1 makes these fail):"
  fi
  sort "$RBUILD_TEST_SKIPS" | sed 's/^/  /'
else
  echo "no test was skipped"
fi
[ "$ignored" = 0 ] || echo "$ignored ignored (#[ignore]: benchmarks run by hand)"
echo "tests: $((passed - skipped)) passed, $failed failed, $skipped skipped"
exit "$status"

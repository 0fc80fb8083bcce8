#!/usr/bin/env bash
# The project's test command: installs what the tests need, then formatting, lints, every
# test of the workspace, and a short fuzz run of the artifact reader. CI (.ci/run) runs
# exactly this.
#
# Environment: FUZZ_SECONDS  length of the fuzz run (default 30; 0 skips it)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-test-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

fuzz_seconds=${FUZZ_SECONDS:-30}
if [ "$fuzz_seconds" != 0 ]; then
  FUZZ_SECONDS=$fuzz_seconds ./scripts/fuzz-smoke.sh
fi

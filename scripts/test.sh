#!/usr/bin/env bash
# The project's test command: installs what the tests need, then formatting, lints, doc
# links, a short fuzz run of the artifact reader, the Debian packages, and every test of
# the workspace and of the fleet simulation, ending with one summary line. CI (.ci/run) runs exactly this.
#
# Environment: FUZZ_SECONDS  length of the fuzz run (default 30; 0 skips it)
set -euo pipefail
cd "$(dirname "$0")/.."

# Disk: a clean clone's build with cargo's defaults filled 19 GB (5.4 GB of incremental
# caches no one-off build reuses, and ~200 MB of full debug info in each of the ~36 test
# binaries), more than a CI machine had free. Line tables keep file:line in backtraces.
# Set either variable to override.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
export CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}
echo "disk before: $(df -h --output=avail . | tail -1 | tr -d ' ') free"

./scripts/setup-test-deps.sh
cargo fmt --all -- --check
cargo fmt --manifest-path fleet/Cargo.toml -- --check
# The device build (default features: the raw backend), each optional part alone (the
# RAUC and SWUpdate backends, the simulator, the D-Bus token API), and everything together.
cargo clippy --workspace --all-targets --locked -- -D warnings
for feature in rauc swupdate sim dbus; do
  cargo clippy --workspace --all-targets --features "$feature" --locked -- -D warnings
done
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
# Module docs are the map below ARCHITECTURE.md: their links must resolve.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --locked --quiet

# The fleet simulation (fleet/, outside the workspace with its own lock file, so its
# plotting crates stay out of the device build): lints; its tests run below.
cargo clippy --manifest-path fleet/Cargo.toml --all-targets --locked -- -D warnings

fuzz_seconds=${FUZZ_SECONDS:-30}
if [ "$fuzz_seconds" != 0 ]; then
  FUZZ_SECONDS=$fuzz_seconds ./scripts/fuzz-smoke.sh
fi

# The Debian packages tests/deb_package.rs checks and installs: the release packages'
# contents, compiled with the quick deb-ci profile.
DEB_PROFILE=deb-ci ./scripts/build-deb.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --all-features --locked 2>&1 | tee "$log" || status=$?
cargo test --manifest-path fleet/Cargo.toml --locked 2>&1 | tee -a "$log" || status=$?
# One closing line over all test binaries (cargo prints one "test result" per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
echo "disk after: $(df -h --output=avail . | tail -1 | tr -d ' ') free; target/ $(du -sh target | cut -f1)"
exit "$status"

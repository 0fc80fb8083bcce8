#!/usr/bin/env bash
# Builds the Debian packages into target/debian/ with cargo-deb (installed from crates.io
# when missing): mender-bridge (raw A/B writer, Update Modules), mender-bridge-rauc and
# mender-bridge-swupdate ([package.metadata.deb] in Cargo.toml; tests/deb_package.rs checks
# and installs them).
#
# Environment: DEB_PROFILE  cargo profile (default release: what a device ships; the test
#                           command uses deb-ci, the same packages compiled quickly)
#              DEB_VARIANTS which to build (default "default rauc swupdate")
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_deb_version=3.8.0
if ! cargo deb --version 2>/dev/null | grep -qx "cargo-deb $cargo_deb_version"; then
  echo "build-deb: installing cargo-deb $cargo_deb_version (cargo install)"
  cargo install --quiet --locked cargo-deb --version "$cargo_deb_version"
fi

profile=${DEB_PROFILE:-release}
out=target/debian
rm -rf "$out"
mkdir -p "$out"
for variant in ${DEB_VARIANTS:-default rauc swupdate}; do
  args=(--locked --quiet --profile "$profile" --output "$out/")
  [ "$variant" = default ] || args+=(--variant "$variant")
  echo "build-deb: $variant ($profile)"
  cargo deb "${args[@]}"
done
ls -l "$out"

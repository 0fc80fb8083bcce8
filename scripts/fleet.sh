#!/usr/bin/env bash
# The fleet simulation (fleet/, docs/BENCHMARKS.md "Fleet behaviour"): every scenario for
# mender-bridge's daemon schedule and a model of the official client's, 10,000 devices by
# default. Prints the figures; writes a CSV per run and a PNG per scenario to target/fleet.
# Arguments go to the simulation (`scripts/fleet.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
if [ ! -e "$font" ]; then
  echo "the plots' labels need $font: installing fonts-dejavu-core" >&2
  ${SUDO:-$([ "$(id -u)" = 0 ] || echo sudo)} apt-get install -y fonts-dejavu-core >&2
fi
exec cargo run --quiet --release --locked --manifest-path fleet/Cargo.toml -- --out target/fleet "$@"

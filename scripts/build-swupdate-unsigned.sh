#!/usr/bin/env bash
# Builds SWUpdate 2022.12 WITHOUT signed-image support, for the tests of the SWUpdate
# backend's "does SWUpdate enforce signed images?" probe. Debian's swupdate is built with
# CONFIG_SIGNED_IMAGES and refuses to start without -k, so a daemon that installs unsigned
# images (as many Yocto builds do) has to be built: from Debian's own source package
# (bookworm), with a minimal configuration (libconfig parser, raw/rawfile handlers, hardware
# compatibility, SHA-256 of images, shell scripts (the attack tests' canary); no
# signatures, no Lua, no bootloader). The binary goes to $SWUPDATE_UNSIGNED (default
# /usr/local/lib/mender-bridge-test/swupdate-unsigned), its configuration next to it;
# nothing else on the machine changes (apt's lists for the source go to a temp dir).
# Idempotent: a binary built from the same configuration is kept. Needs: dpkg-dev, gcc,
# make, libconfig-dev, libssl-dev, zlib1g-dev (scripts/setup-test-deps.sh installs them,
# then runs this).
set -euo pipefail

out=${SWUPDATE_UNSIGNED:-/usr/local/lib/mender-bridge-test/swupdate-unsigned}
config='CONFIG_HW_COMPATIBILITY=y
CONFIG_HASH_VERIFY=y
CONFIG_RAW=y
CONFIG_SHELLSCRIPTHANDLER=y
CONFIG_BOOTLOADER_DEFAULT_NONE=y
CONFIG_UPDATE_STATE_CHOICE_BOOTLOADER=y
CONFIG_LIBCONFIG=y
# CONFIG_SIGNED_IMAGES is not set
# CONFIG_MTD is not set
# CONFIG_LUA is not set'
if [ -x "$out" ] && [ "$(cat "$out.config" 2>/dev/null)" = "$config" ]; then
  echo "build-swupdate-unsigned: $out present"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/src"
cat > "$work/sources.list" <<'LIST'
deb-src http://deb.debian.org/debian bookworm main
LIST
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=-"
          -o "Dir::State::Lists=$work/lists" -o "APT::Get::List-Cleanup=0"
          -o "APT::Sandbox::User=root")
echo "build-swupdate-unsigned: fetching Debian's swupdate source"
apt-get "${apt_opts[@]}" update -qq
(cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only -qq swupdate/bookworm >/dev/null)
dsc=$(ls "$work"/src/swupdate_*.dsc | head -n 1)
# apt checked the files' hashes against the archive's signed index; the .dsc's own inline
# signature needs the uploader's key, which is not installed.
dpkg-source --no-check -x "$dsc" "$work/swupdate" >/dev/null

cd "$work/swupdate"
printf '%s\n' "$config" > .config
make olddefconfig >/dev/null
if grep -q '^CONFIG_SIGNED_IMAGES=y' .config; then
  echo "build-swupdate-unsigned: the configuration still has signed images" >&2
  exit 1
fi
echo "build-swupdate-unsigned: building"
make -j"$(nproc)" swupdate >/dev/null 2>&1 || { make swupdate; exit 1; }
install -D -m 0755 swupdate "$out"
printf '%s\n' "$config" > "$out.config"
echo "build-swupdate-unsigned: installed $out"

#!/usr/bin/env bash
# Installs the Debian packages the tests use. Idempotent: packages already present are not
# touched, and apt is only asked when something is missing. Run as root (or with sudo).
set -euo pipefail

packages=(
  mender-artifact   # writes the real artifacts the reader is tested against
  mender-client     # the official client 3.4: interop ground truth for the simulator
  mender-connect    # the official add-on 2.1: deviceconnect interop (tests/addon_connect.rs)
  util-linux        # unshare: the interop test gives mender private /etc/mender paths; setpriv
  openssl           # makes the tests' RSA and ECDSA keys
  ca-certificates
  time              # /usr/bin/time: peak RSS in the benchmark
  libubootenv-tool  # fw_printenv / fw_setenv: the raw backend's U-Boot environment
  u-boot-tools      # mkenvimage: file-backed U-Boot environments in tests
  grub-common       # grub-editenv: the raw backend's GRUB environment
  dbus              # a private system bus for the RAUC service, the token API and mender-connect
  systemd           # busctl: tests/dbus_auth.rs calls the token API as nobody
  rauc rauc-service # the real RAUC 1.8 service the rauc backend talks to over D-Bus
  squashfs-tools    # mksquashfs: rauc bundle
  swupdate          # the real SWUpdate daemon the swupdate backend streams into
  libswupdate-dev   # its IPC headers: a test checks the Rust layout against them
  cpio              # .swu images are cpio archives
  gcc libc6-dev     # compiles the layout check against the headers
  # build-swupdate-unsigned.sh: a SWUpdate that does not enforce signed images, from
  # Debian's source package (the probe's "not enforcing" answer, the spool mode)
  dpkg-dev make libconfig-dev libssl-dev zlib1g-dev
  python3-minimal   # the attack suite's squatter on SWUpdate's socket paths (run as nobody)
  python3-venv      # a private venv for oelint-adv (below)
  lmdb-utils        # mdb_load: real LMDB files for the reader of the official client's store
  tinyproxy         # a real HTTP proxy with BasicAuth: tests/net_proxy.rs reaches the simulator only through it
  microsocks        # a real SOCKS5 proxy with a user and password: the same through socks5://
  iproute2          # ip netns / veth: tests/net_proxy.rs isolates the bridge in a network namespace
  fonts-dejavu-core # the labels of the fleet simulation's plots (scripts/fleet.sh)
  xz-utils gzip tar coreutils
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

here=$(dirname "$0")

# oelint-adv (PyPI), which tests/yocto_layer.rs runs over the Yocto recipe, in a venv under
# target/ (as the calling user, not root): pinned, so a new rule release cannot turn CI red.
oelint_version=9.11.2
oelint_venv="$here/../target/tools/oelint-venv"
oelint_tools() {
  if "$oelint_venv/bin/oelint-adv" --version 2>/dev/null | grep -qx "oelint-adv $oelint_version"; then
    return
  fi
  echo "setup-test-deps: installing oelint-adv $oelint_version into $oelint_venv"
  rm -rf "$oelint_venv"
  python3 -m venv "$oelint_venv"
  "$oelint_venv/bin/pip" install --quiet --disable-pip-version-check "oelint-adv==$oelint_version"
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-test-deps: all ${#packages[@]} packages present"
  "$here/build-swupdate-unsigned.sh"
  oelint_tools
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
$SUDO "$here/build-swupdate-unsigned.sh"
oelint_tools
echo "setup-test-deps: done"

#!/usr/bin/env bash
# Benchmark of the RAUC backend (issue 5): a whole deployment of a BENCH_MIB MiB RAUC bundle
# through `mender-bridge daemon` against `rauc install` of the same bundle already on disk.
#
# In one run, on loopback:
#   1. builds the release binary (with the simulator);
#   2. starts the real RAUC 1.8 service as the tests do (tests/common/rauc.rs): a private
#      system-like bus, two file-backed raw slots, the custom bootloader script over a state
#      file, a test CA; the service runs in its own mount namespace;
#   3. writes a random image, a plain bundle of it (`rauc bundle`) and two Mender artifacts
#      around the bundle (`mender-artifact write module-image -T rauc`, compression
#      BENCH_COMPRESSION, default none: a bundle is a squashfs, already compressed);
#   4. baseline: `rauc install BUNDLE` (RAUC's own CLI, a D-Bus client of the same service)
#      BENCH_RUNS times: wall time from start to exit;
#   5. the bridge: `mender-bridge daemon` with `[backend.rauc]` installs the artifact
#      BENCH_RUNS times: wall time from the deployment's creation to `rebooting` (downloaded,
#      spooled, verified, installed by RAUC, activated slot recorded), its parts from the
#      daemon's log (download start -> end: stream into the spool; RAUC took the bundle ->
#      activated), the daemon's peak RSS (VmHWM), the spool's largest size seen (sampled
#      every 20 ms) and the spooled bytes the daemon logged; then a simulated reboot (the
#      service restarts booted from the slot the bootloader picks, the daemon restarts) and
#      the time to `success` (Mark good);
#   6. prints each figure with its target and the baseline measured in the same run.
#
# The daemon polls every second and gets SIGUSR1 right after each deployment is created. The
# script reports; it does not assert (non-zero exit only if something broke). Needs root
# (RAUC loop-mounts bundles). Figures from a busy machine are noisy: the load average is
# printed at the start and the end.
#
# Environment: BENCH_MIB          image size in MiB (default 128)
#              BENCH_RUNS         runs of each (default 3)
#              BENCH_COMPRESSION  the artifacts' compression: none (default), gzip, zstd, xz
set -euo pipefail
shopt -s inherit_errexit
BENCH=bench-rauc
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

MIB=${BENCH_MIB:-128}
RUNS=${BENCH_RUNS:-3}
COMPRESSION=${BENCH_COMPRESSION:-none}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/rauc/release/mender-bridge # the device build with the rauc backend: the daemon under test
SIM_BIN=$ROOT/target/full/release/mender-bridge # with the simulator (--features sim)
MAC=02:00:00:00:be:05

[[ $MIB =~ ^[1-9][0-9]*$ ]] || die "BENCH_MIB must be a positive integer, got '$MIB'"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, got '$RUNS'"
[[ $COMPRESSION =~ ^(none|gzip|zstd|xz)$ ]] || die "BENCH_COMPRESSION must be none, gzip, zstd or xz"
[ "$(id -u)" -eq 0 ] || die "needs root (RAUC loop-mounts the bundle)"
for tool in cargo rauc dbus-daemon busctl openssl mender-artifact unshare curl jq awk truncate; do
    command -v "$tool" >/dev/null ||
        die "'$tool' not found (scripts/setup-test-deps.sh installs the test tools; curl and jq come from apt)"
done
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

bench_setup

# ---------------------------------------------------------------------------------------
echo "== 1. build (--features rauc in target/rauc: the device binary; --features sim in target/full: the simulator)"
(cd "$ROOT" && cargo build --release --quiet --features rauc --target-dir "$ROOT/target/rauc")
echo "   device binary with the rauc backend, stripped: $(stat -c %s "$BIN" | awk '{ printf "%.2f MiB", $1 / 1048576 }') (the raw-only default build: see bench-deploy.sh)"
(cd "$ROOT" && cargo build --release --quiet --features sim --target-dir "$ROOT/target/full")

# ---------------------------------------------------------------------------------------
echo "== 2. RAUC $(rauc --version 2>/dev/null | awk '{ print $2 }') service on a private bus, two ${MIB}+16 MiB file slots"
R=$TMP/rauc
mkdir -p "$R/pki" "$R/images" "$R/mnt" "$R/data"
cat >"$R/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=$R/bus.sock</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/>
<allow receive_sender="*"/></policy></busconfig>
XML
dbus-daemon --config-file="$R/bus.conf" --nofork --nopidfile >/dev/null 2>&1 &
PIDS+=($!)
BUS=unix:path=$R/bus.sock
wait_for "the private bus" 10 test -S "$R/bus.sock"
(
    cd "$R/pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 -subj /CN=bench-ca \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req -newkey rsa:2048 -nodes -keyout dev.key -out dev.csr -subj /CN=bench-signer
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\n' >ext
    openssl x509 -req -in dev.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out dev.pem -days 3650 -extfile ext
) >/dev/null 2>&1 || die "openssl failed"
truncate -s $(((MIB + 16) * 1024 * 1024)) "$R/images/rootfs-0" "$R/images/rootfs-1"
printf 'PRIMARY=A\nSTATE_A=good\nSTATE_B=good\n' >"$R/bootstate"
cat >"$R/bootloader.sh" <<SH
#!/bin/sh
S=$R/bootstate
case "\$1" in
  get-primary) . \$S; echo "\$PRIMARY" ;;
  set-primary) sed -i -e "s/^PRIMARY=.*/PRIMARY=\$2/" -e "s/^STATE_\$2=.*/STATE_\$2=good/" \$S ;;
  get-state)   . \$S; eval echo "\\\$STATE_\$2" ;;
  set-state)   sed -i "s/^STATE_\$2=.*/STATE_\$2=\$3/" \$S ;;
  *) exit 1 ;;
esac
SH
chmod 755 "$R/bootloader.sh"
cat >"$R/system.conf" <<INI
[system]
compatible=Bench-Device
bootloader=custom
data-directory=$R/data
bundle-formats=plain
[handlers]
bootloader-custom-backend=$R/bootloader.sh
[keyring]
path=$R/pki/ca.pem
[slot.rootfs.0]
device=$R/images/rootfs-0
type=raw
bootname=A
[slot.rootfs.1]
device=$R/images/rootfs-1
type=raw
bootname=B
INI
rauc_up() {
    DBUS_SYSTEM_BUS_ADDRESS=$BUS busctl --system get-property de.pengutronix.rauc / de.pengutronix.rauc.Installer Operation >/dev/null 2>&1
}
start_service() { # bootname; sets SVC_PID
    DBUS_SYSTEM_BUS_ADDRESS=$BUS unshare --mount --propagation private \
        rauc --conf="$R/system.conf" --mount="$R/mnt" service --override-boot-slot="$1" >>"$R/service.log" 2>&1 &
    SVC_PID=$!
    PIDS+=("$SVC_PID")
    wait_for "the RAUC service" 30 rauc_up || { show_tail "$R/service.log"; exit 1; }
}
# The bootloader: PRIMARY if good, else the other slot.
boot_slot() {
    awk -F= '{ v[$1] = $2 } END { p = v["PRIMARY"]; o = (p == "A") ? "B" : "A"; print (v["STATE_" p] == "good") ? p : o }' "$R/bootstate"
}
start_service A

# ---------------------------------------------------------------------------------------
echo "== 3. ${MIB} MiB random image, plain bundle, artifacts (compression $COMPRESSION)"
mkdir -p "$R/content"
head -c "$((MIB * 1024 * 1024))" /dev/urandom >"$R/content/rootfs.img"
IMG_SHA=$(sha256sum "$R/content/rootfs.img" | cut -d' ' -f1)
printf '[update]\ncompatible=Bench-Device\nversion=2.0\n[bundle]\nformat=plain\n[image.rootfs]\nfilename=rootfs.img\n' \
    >"$R/content/manifest.raucm"
t0=$(now_ns)
rauc --cert="$R/pki/dev.pem" --key="$R/pki/dev.key" bundle "$R/content" "$TMP/bundle.raucb" >"$TMP/bundle.log" 2>&1 ||
    { cat "$TMP/bundle.log" >&2; exit 1; }
rm -rf "$R/content"
BUNDLE_SIZE=$(stat -c %s "$TMP/bundle.raucb")
echo "   bundle: $BUNDLE_SIZE bytes in $(dt "$t0" "$(now_ns)") s"

start_sim "$SIM_BIN"
deploy() { # artifact name, device id; prints the deployment id
    api -X POST -H 'content-type: application/json' \
        -d "{\"artifact_name\":\"$1\",\"devices\":[\"$2\"]}" "$M/deployments" | jq -r .id
}
for n in 1 2; do
    mender-artifact write module-image -T rauc -t bench-dev -n "bench-rauc-$n" --compression "$COMPRESSION" \
        -f "$TMP/bundle.raucb" -o "$TMP/rauc.mender" >"$TMP/write.log" 2>&1 || { cat "$TMP/write.log" >&2; exit 1; }
    api -H 'Expect:' -T "$TMP/rauc.mender" -X POST "$M/artifacts" >/dev/null
    rm -f "$TMP/rauc.mender"
done
api "$M/artifacts" | jq -r '.[] | "   \(.name): \(.payload_type), \(.size / 1048576 * 10 | round / 10) MiB"'

# ---------------------------------------------------------------------------------------
echo "== 4. baseline: rauc install of the bundle on disk"
RAUC_TIMES=()
sync
for run in $(seq "$RUNS"); do
    t0=$(now_ns)
    DBUS_SYSTEM_BUS_ADDRESS=$BUS rauc install "$TMP/bundle.raucb" >"$TMP/install.log" 2>&1 ||
        { cat "$TMP/install.log" >&2; exit 1; }
    t=$(dt "$t0" "$(now_ns)")
    RAUC_TIMES+=("$t")
    echo "   run $run: $t s ($(tr '\n' ' ' <"$R/bootstate"))"
done
# Back to the initial state: A primary and booted.
printf 'PRIMARY=A\nSTATE_A=good\nSTATE_B=good\n' >"$R/bootstate"

# ---------------------------------------------------------------------------------------
echo "== 5. mender-bridge daemon, [backend.rauc]"
B=$TMP/bridge
mkdir -p "$B/data" "$B/inventory" "$B/scripts" "$B/spool"
printf 'artifact_name=bench-0\n' >"$B/artifact_info"
printf 'device_type=bench-dev\n' >"$B/data/device_type"
printf '#!/bin/sh\necho mac=%s\n' "$MAC" >"$B/identity"
printf '#!/bin/sh\ntouch %s/rebooted\n' "$B" >"$B/reboot"
chmod 755 "$B/identity" "$B/reboot"
jq -n --arg url "$URL" --arg ca "$CA" --arg dt "$B/data/device_type" '{
    ServerURL: $url, ServerCertificate: $ca, DeviceTypeFile: $dt,
    UpdatePollIntervalSeconds: 1, InventoryPollIntervalSeconds: 5, RetryPollIntervalSeconds: 1
}' >"$B/mender.conf"
cat >"$B/bridge.toml" <<EOF
identity_script = "$B/identity"
inventory_script_dir = "$B/inventory"
state_scripts_dir = "$B/scripts"
artifact_info_file = "$B/artifact_info"
reboot_command = ["$B/reboot"]

[backend]
type = "rauc"

[backend.rauc]
bus = "$BUS"
spool_dir = "$B/spool"
EOF
BOOTS=0
start_bridge() { # sets BR_PID
    BOOTS=$((BOOTS + 1))
    "$BIN" -c "$B/mender.conf" --bridge-config "$B/bridge.toml" -d "$B/data" -l info daemon \
        </dev/null >"$B/daemon-$BOOTS.log" 2>&1 &
    BR_PID=$!
    PIDS+=("$BR_PID")
}
accept_device() {
    local id=
    find_pending() {
        id=$(api "$M/devices" | jq -r --arg mac "$MAC" \
            'first(.[] | select(.identity_data.mac == $mac and .status == "pending") | .id) // empty')
        [ -n "$id" ]
    }
    wait_for "the device to ask for admission" 90 find_pending || return 1
    api -X POST "$M/devices/$id/accept" >/dev/null
    echo "$id"
}
has_inventory() { api "$M/devices/$1/inventory" | jq -e 'any(.[]; .name == "rauc_compatible")' >/dev/null; }
# Largest total size of the spool directory seen (bytes), every 20 ms until $1.stop exists.
sample_spool() {
    local out=$1 m=0 n
    rm -f "$out.stop"
    echo 0 >"$out"
    while [ ! -e "$out.stop" ]; do
        n=$(find "$B/spool" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
        ((n > m)) && { m=$n; echo "$m" >"$out"; }
        sleep 0.02
    done
}
# From the daemon's log: "download-seconds seal-seconds rauc-seconds spooled-bytes": download
# start -> end (streamed into the spool), end -> spool sealed (hash checked, fsync, close),
# RAUC took the bundle -> activated slot recorded.
phases() {
    sed 's/\x1b\[[0-9;]*m//g' "$1" | awk '
        function ts(s, t) { split(substr(s, 12, 15), t, ":"); return t[1] * 3600 + t[2] * 60 + t[3] }
        function d(x, y) { return (x && y) ? sprintf("%.2f", y - x) : "?" }
        /artifact download started/ { a = ts($1) }
        /artifact download complete/ { b = ts($1) }
        /spooled, verified and closed/ { s = ts($1); if (match($0, /bytes=[0-9]+/)) n = substr($0, RSTART + 6, RLENGTH - 6) }
        /RAUC took the bundle/ { c = ts($1) }
        /RAUC activated/ { e = ts($1) }
        END { printf "%s %s %s %s\n", d(a, b), d(b, s), d(c, e), n ? n : "?" }'
}

start_bridge
BR_ID=$(accept_device) || { show_tail "$B/daemon-$BOOTS.log"; exit 1; }
wait_for "the bridge's inventory" 90 has_inventory "$BR_ID" || { show_tail "$B/daemon-$BOOTS.log"; exit 1; }
echo "   device accepted; idle RSS $(mib "$(proc_kib "$BR_PID" VmRSS)") MiB"
BR_TIMES=() BR_SUCCESS=() BR_PEAKS=() BR_DL=() BR_SEAL=() BR_RAUC=() SPOOL_MAX=() SPOOLED=()
for run in $(seq "$RUNS"); do
    rm -f "$B/rebooted"
    sync
    sample_spool "$TMP/spool.max" &
    SAMPLER=$!
    PIDS+=("$SAMPLER")
    t0=$(now_ns)
    DEP=$(deploy "bench-rauc-$((2 - run % 2))" "$BR_ID")
    kill -USR1 "$BR_PID"
    follow "$DEP" "$BR_ID" "$t0" rebooting 600 || { show_tail "$B/daemon-$BOOTS.log"; exit 1; }
    installed=${SEEN[rebooting]}
    BR_TIMES+=("$installed")
    wait_for "the reboot command" 60 test -e "$B/rebooted" || { show_tail "$B/daemon-$BOOTS.log"; exit 1; }
    touch "$TMP/spool.max.stop"
    wait "$SAMPLER" || true
    forget "$SAMPLER"
    peak=$(proc_kib "$BR_PID" VmHWM)
    BR_PEAKS+=("$peak")
    SPOOL_MAX+=("$(cat "$TMP/spool.max")")
    read -r dl se ri sp < <(phases "$B/daemon-$BOOTS.log")
    BR_DL+=("$dl") BR_SEAL+=("$se") BR_RAUC+=("$ri") SPOOLED+=("$sp")
    left=$(find "$B/spool" -type f | wc -l)
    # The reboot: the daemon stops, the bootloader picks a slot, RAUC and the daemon start.
    stop_pid "$BR_PID"
    stop_pid "$SVC_PID"
    slot=$(boot_slot)
    start_service "$slot"
    start_bridge
    follow "$DEP" "$BR_ID" "$t0" success 120 || { show_tail "$B/daemon-$BOOTS.log"; exit 1; }
    BR_SUCCESS+=("${SEEN[success]}")
    dev=$([ "$slot" = A ] && echo rootfs-0 || echo rootfs-1)
    ok=$([ "$(head -c "$((MIB * 1024 * 1024))" "$R/images/$dev" | sha256sum | cut -d' ' -f1)" = "$IMG_SHA" ] &&
        echo "slot $dev = image" || echo "SLOT $dev DIFFERS")
    echo "   run $run: rebooting $installed s, success ${SEEN[success]} s; booted $slot, $ok"
    echo "          daemon log: download+spool $dl s, hash check+fsync $se s, RAUC install $ri s; spooled $sp bytes (largest spool seen $(cat "$TMP/spool.max")), files left $left"
    echo "          VmHWM $(mib "$peak") MiB"
done
stop_pid "$BR_PID"
stop_pid "$SIM_PID"

# ---------------------------------------------------------------------------------------
RT=$(median "${RAUC_TIMES[@]}")
BT=$(median "${BR_TIMES[@]}")
awk -v mib="$MIB" -v runs="$RUNS" -v comp="$COMPRESSION" -v nproc="$(nproc)" \
    -v cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    -v load0="$LOAD_START" -v load1="$(cut -d' ' -f1-3 /proc/loadavg)" \
    -v rt="$RT" -v rtimes="${RAUC_TIMES[*]}" -v bt="$BT" -v btimes="${BR_TIMES[*]}" \
    -v bs="$(median "${BR_SUCCESS[@]}")" -v bpeak="$(maximum "${BR_PEAKS[@]}")" \
    -v dl="$(median "${BR_DL[@]}")" -v se="$(median "${BR_SEAL[@]}")" -v ri="$(median "${BR_RAUC[@]}")" \
    -v bsize="$BUNDLE_SIZE" -v smax="$(maximum "${SPOOL_MAX[@]}")" -v spooled="${SPOOLED[*]}" '
function ok(c) { return c ? "met" : "MISSED" }
function row(name, value, unit, target, ratio, verdict) {
    printf "%-46s %10s %-5s  %-22s %6s  %s\n", name, value, unit, target, ratio, verdict
}
BEGIN {
    printf "\n== results: %d MiB random image in a plain bundle of %d bytes, artifact compression %s, HTTPS on loopback; median of %d runs\n", mib, bsize, comp, runs
    printf "machine: nproc=%d, cpu=%s; load average at start %s, at end %s\n\n", nproc, cpu, load0, load1
    row("figure", "value", "", "target", "ratio", "")
    row("rauc install of the bundle on disk", sprintf("%.2f", rt), "s", "baseline", "", "runs: " rtimes)
    row("bridge: creation -> rebooting (installed)", sprintf("%.2f", bt), "s", "<= 1.3 x baseline", sprintf("%.2f", bt / rt), ok(bt <= 1.3 * rt) "  runs: " btimes)
    row("  bridge: download + spool (log)", dl, "s", "info", "", "HTTPS, reader (SHA-256), spool (SHA-256, write)")
    row("  bridge: spool hash check + fsync + close (log)", se, "s", "info", "", "")
    row("  bridge: RAUC install (log)", ri, "s", "info", (ri ~ /^[0-9.]+$/) ? sprintf("%.2f", ri / rt) : "", "InstallBundle -> Completed, GetPrimary")
    row("bridge: creation -> success (with restart)", sprintf("%.2f", bs), "s", "info", "", "")
    row("bridge: peak RSS while installing (VmHWM)", sprintf("%.1f", bpeak / 1024), "MiB", "<= 16 MiB", sprintf("%.2f", bpeak / 1024 / 16), ok(bpeak <= 16 * 1024))
    n = split(spooled, s, " "); same = n > 0
    for (i = 1; i <= n; i++) if (s[i] != bsize) same = 0
    row("spooled bytes (daemon log, each run)", s[1], "B", "== bundle " bsize, "", ok(same))
    row("largest spool directory seen (sampled)", smax, "B", "<= bundle " bsize, sprintf("%.3f", smax / bsize), ok(smax <= bsize))
}'

#!/usr/bin/env bash
# Speed and memory benchmark of a whole over-the-air deployment (issue 4).
#
# In one run, on loopback, from one simulator (`mender-bridge sim`):
#   1. builds the release binary (`cargo build --release`, default features: what a device
#      ships, no simulator) and reports its stripped size, and the full build with the
#      simulator (`--features sim`, in target/full), which serves the artifacts;
#   2. writes an image (random, or BENCH_IMAGE=usr) and gzip artifacts of it with
#      mender-artifact: `single-file` module-images for the official client, `rootfs-image`s
#      for the bridge (two names of each, so runs can alternate: an artifact already
#      installed would not be deployed);
#   3. the official client (Debian mender-client 3.4, `mender daemon`) installs a
#      single-file artifact BENCH_RUNS times: wall time from the deployment's creation to
#      `success` (the module needs no reboot, so that is its install-complete time), peak RSS
#      (VmHWM) and idle RSS (VmRSS after >= 5 s idle);
#   4. `mender-bridge daemon` (the release binary) with the raw backend on
#      two file slots (boot selection by shell commands on a state file) installs a
#      rootfs-image artifact BENCH_RUNS times: wall time to `rebooting` (install complete:
#      streamed into the slot, fsynced, (read back and hashed,) activated), then a simulated
#      reboot (the reboot command rewrites the kernel command line the backend reads and the
#      script restarts the daemon) and the time to `success`; peak RSS of each installing
#      daemon, idle RSS before the first and after the last deployment;
#   5. prints every figure with its target and ratio (medians of the runs decide), and the
#      machine.
#
# Both clients poll every second and get SIGUSR1 (check now) right after each deployment is
# created, so neither waits for its poll timer. A status's time is when the first poll of the
# simulator's history that shows it was sent (polls every 0.05 s, so +- ~0.05 s). Before each
# run the target file of the previous one is removed (the official module would otherwise
# back the old file up first) and `sync` flushes dirty pages. The script reports; it does not
# assert (exit status non-zero only if something broke). Runs as root: the official client
# needs a private mount namespace for its fixed paths (/etc/mender, the identity script), as
# in tests/sim_mender_client.rs. Figures from a busy machine are noisy: the load average is
# printed at the start and the end.
#
# The CI VMs back guest memory lazily: the first write into never-touched page cache costs
# ~2 ms/MiB there (10x a warm write), so before each client's runs the script writes and deletes a
# scratch file of 3x the image (warm-up), and neither client pays that on the clock.
#
# Environment: BENCH_MIB           size of the image in MiB (default 256)
#              BENCH_RUNS          deployments per client (default 3)
#              BENCH_READBACK      the raw backend's verify_readback (default false, as
#                                  shipped); true shows what reading the slot back costs
#              BENCH_IMAGE         random (default; barely compresses) or usr (the first
#                                  BENCH_MIB MiB of a tar of /usr: compresses like a rootfs)
set -euo pipefail
shopt -s inherit_errexit
BENCH=bench-deploy
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

MIB=${BENCH_MIB:-256}
RUNS=${BENCH_RUNS:-3}
IMAGE=${BENCH_IMAGE:-random}
READBACK=${BENCH_READBACK:-false}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/full/release/mender-bridge
DEVICE_BIN=$ROOT/target/release/mender-bridge
MAC_OFFICIAL=02:00:00:00:be:01
MAC_BRIDGE=02:00:00:00:be:02

[[ $MIB =~ ^[1-9][0-9]*$ ]] || die "BENCH_MIB must be a positive integer, got '$MIB'"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, got '$RUNS'"
[[ $READBACK =~ ^(true|false)$ ]] || die "BENCH_READBACK must be true or false, got '$READBACK'"
[[ $IMAGE =~ ^(random|usr)$ ]] || die "BENCH_IMAGE must be random or usr, got '$IMAGE'"
[ "$(id -u)" -eq 0 ] || die "needs root (the official client runs in a private mount namespace)"
for tool in cargo mender mender-artifact unshare curl jq strip sha256sum awk truncate; do
    command -v "$tool" >/dev/null ||
        die "'$tool' not found (scripts/setup-test-deps.sh installs the test tools; curl and jq come from apt)"
done
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

bench_setup

# "anon A + file F MiB" of a process now.
split_now() { echo "anon $(mib "$(proc_kib "$1" RssAnon)") + file $(mib "$(proc_kib "$1" RssFile)")"; }
warm_up() {
    dd if=/dev/zero of="$TMP/warm" bs=1M count=$((3 * MIB)) status=none
    rm -f "$TMP/warm"
    sync
}
# The bridge's phases from its log (-l info): "stream S, finish F" in seconds, where stream is
# download start to end (everything written) and finish is fsync, read-back and activation.
phases() {
    sed 's/\x1b\[[0-9;]*m//g' "$1" | awk '
        function ts(s, t) { split(substr(s, 12, 15), t, ":"); return t[1] * 3600 + t[2] * 60 + t[3] }
        /artifact download started/ { a = ts($1) }
        /artifact download complete/ { b = ts($1) }
        /slot activated for the next boot/ { c = ts($1) }
        END { if (a && b && c) printf "%.2f %.2f\n", b - a, c - b; else print "? ?" }'
}
# Samples /proc/$1/status every 50 ms into $2 ("largest RssAnon, largest RssFile", KiB)
# until the process ends or $2.stop exists: what the peak is made of.
sample_rss() {
    local pid=$1 out=$2 a f ma=0 mf=0
    rm -f "$out.stop"
    while [ ! -e "$out.stop" ] &&
        read -r a f < <(awk '$1 == "RssAnon:" { a = $2 } $1 == "RssFile:" { f = $2 } END { print a, f }' "/proc/$pid/status" 2>/dev/null); do
        [ -n "$a" ] || break
        ((a > ma)) && ma=$a
        ((f > mf)) && mf=$f
        echo "$ma $mf" >"$out"
        sleep 0.05
    done
}
start_sampler() { sample_rss "$1" "$2" & SAMPLER=$!; PIDS+=("$SAMPLER"); }
stop_sampler() { touch "$1.stop"; wait "$SAMPLER" || true; forget "$SAMPLER"; }

# ---------------------------------------------------------------------------------------
echo "== 1. build (cargo build --release: the device binary)"
(cd "$ROOT" && cargo build --release --quiet)
echo "   full build: cargo build --release --features sim --target-dir target/full"
(cd "$ROOT" && cargo build --release --quiet --features sim --target-dir "$ROOT/target/full")
strip -o "$TMP/bin.stripped" "$BIN"
SIZE=$(stat -c %s "$TMP/bin.stripped")
strip -o "$TMP/dev.stripped" "$DEVICE_BIN"
DEVICE_SIZE=$(stat -c %s "$TMP/dev.stripped")
DAEMON_BIN=$DEVICE_BIN
rm -f "$TMP/bin.stripped" "$TMP/dev.stripped"
PROFILE=$(awk '/^\[profile\.release/ { p = 1; h = $0; next } /^\[/ { p = 0 } p && NF { printf "%s%s%s", s, (h ? h " " : ""), $0; s = ", "; h = "" }' "$ROOT/Cargo.toml")
echo "   release profile: ${PROFILE:-(cargo defaults)}"

# ---------------------------------------------------------------------------------------
echo "== 2. simulator, ${MIB} MiB $IMAGE image, gzip artifacts"
start_sim "$BIN" --no-next-v2
echo "   sim $URL"
deploy() { # artifact name, device id; prints the deployment id
    api -X POST -H 'content-type: application/json' \
        -d "{\"artifact_name\":\"$1\",\"devices\":[\"$2\"]}" "$M/deployments" | jq -r .id
}

mkdir -p "$TMP/img"
if [ "$IMAGE" = random ]; then
    head -c "$((MIB * 1024 * 1024))" /dev/urandom >"$TMP/img/image.img"
else
    { tar -cf - --ignore-failed-read /usr 2>/dev/null || true; } | head -c "$((MIB * 1024 * 1024))" >"$TMP/img/image.img"
    [ "$(stat -c %s "$TMP/img/image.img")" -eq $((MIB * 1024 * 1024)) ] || die "/usr holds less than $MIB MiB"
fi
IMG_SHA=$(sha256sum "$TMP/img/image.img" | cut -d' ' -f1)
OFF_TARGET=$TMP/official/target
printf '%s' "$OFF_TARGET" >"$TMP/img/dest_dir"
printf 'image.img' >"$TMP/img/filename"
printf '644' >"$TMP/img/permissions"
t0=$(now_ns)
for n in 1 2; do
    (cd "$TMP/img" && mender-artifact write module-image -T single-file -n "bench-single-file-$n" -t bench-dev \
        -f dest_dir -f filename -f permissions -f image.img -o "$TMP/sf.mender") >"$TMP/write.log" 2>&1 ||
        { cat "$TMP/write.log" >&2; exit 1; }
    upload "$TMP/sf.mender"
    mender-artifact write rootfs-image -t bench-dev -n "bench-rootfs-$n" -f "$TMP/img/image.img" \
        -o "$TMP/rootfs.mender" >"$TMP/write.log" 2>&1 || { cat "$TMP/write.log" >&2; exit 1; }
    upload "$TMP/rootfs.mender"
done
rm -rf "$TMP/img"
api "$M/artifacts" | jq -r '.[] | "   \(.name): \(.payload_type), \(.size / 1048576 * 10 | round / 10) MiB"'
echo "   4 artifacts written and uploaded in $(dt "$t0" "$(now_ns)") s"

# The pending device with this MAC, accepted; prints its id.
accept_device() {
    local mac=$1 id=
    find_pending() {
        id=$(api "$M/devices" | jq -r --arg mac "$1" \
            'first(.[] | select(.identity_data.mac == $mac and .status == "pending") | .id) // empty')
        [ -n "$id" ]
    }
    wait_for "device $mac to ask for admission" 90 find_pending "$mac" || return 1
    api -X POST "$M/devices/$id/accept" >/dev/null
    echo "$id"
}


# ---------------------------------------------------------------------------------------
echo "== 3. official client: mender $(mender --version 2>/dev/null | awk 'NR == 1 { print $1 }'), single-file update module"
O=$TMP/official
mkdir -p "$O/etc" "$O/identity" "$O/data"
printf 'artifact_name=bench-0\n' >"$O/etc/artifact_info"
printf 'device_type=bench-dev\n' >"$O/data/device_type"
jq -n --arg url "$URL" --arg ca "$CA" --arg dt "$O/data/device_type" '{
    ServerURL: $url, ServerCertificate: $ca, DeviceTypeFile: $dt,
    UpdatePollIntervalSeconds: 1, InventoryPollIntervalSeconds: 5, RetryPollIntervalSeconds: 1
}' >"$O/etc/mender.conf"
printf '#!/bin/sh\necho mac=%s\n' "$MAC_OFFICIAL" >"$O/identity/mender-device-identity"
chmod 755 "$O/identity/mender-device-identity"
# unshare without --fork execs: $! is the shell, then mender itself (exec).
unshare --mount -- sh -c "mount --bind '$O/etc' /etc/mender && mount --bind '$O/identity' /usr/share/mender/identity && \
    exec mender -c /etc/mender/mender.conf -d '$O/data' --no-syslog daemon" </dev/null >"$O/mender.log" 2>&1 &
OFF_PID=$!
PIDS+=("$OFF_PID")
OFF_ID=$(accept_device "$MAC_OFFICIAL") || { show_tail "$O/mender.log"; exit 1; }
wait_for "the official client's inventory" 90 has_inventory "$OFF_ID" || { show_tail "$O/mender.log"; exit 1; }
sleep 6
OFF_IDLE=$(proc_kib "$OFF_PID" VmRSS)
echo "   device accepted; idle RSS $(mib "$OFF_IDLE") MiB ($(split_now "$OFF_PID"))"
OFF_TIMES=() OFF_DL=() OFF_INST=()
warm_up
start_sampler "$OFF_PID" "$TMP/off.rss"
for run in $(seq "$RUNS"); do
    rm -rf "$OFF_TARGET"
    sync
    t0=$(now_ns)
    DEP=$(deploy "bench-single-file-$((2 - run % 2))" "$OFF_ID")
    kill -USR1 "$OFF_PID"
    follow "$DEP" "$OFF_ID" "$t0" success 300 || { show_tail "$O/mender.log"; exit 1; }
    OFF_TIMES+=("${SEEN[success]}")
    OFF_DL+=("$(awk -v a="${SEEN[downloading]:-0}" -v b="${SEEN[installing]:-0}" 'BEGIN { printf "%.2f", b - a }')")
    OFF_INST+=("$(awk -v a="${SEEN[installing]:-0}" -v b="${SEEN[success]}" 'BEGIN { printf "%.2f", b - a }')")
    ok=$([ "$(sha256sum <"$OFF_TARGET/image.img" | cut -d' ' -f1)" = "$IMG_SHA" ] && echo "file = image" || echo "FILE DIFFERS")
    echo "   run $run: $(seen_list) s; $ok; VmHWM $(mib "$(proc_kib "$OFF_PID" VmHWM)") MiB"
done
OFF_PEAK=$(proc_kib "$OFF_PID" VmHWM)
stop_sampler "$TMP/off.rss"
read -r OFF_MAX_ANON OFF_MAX_FILE <"$TMP/off.rss"
echo "   peak RSS $(mib "$OFF_PEAK") MiB (largest anon $(mib "$OFF_MAX_ANON"), largest file $(mib "$OFF_MAX_FILE"))"
stop_pid "$OFF_PID"
rm -rf "$O/data/modules" "$OFF_TARGET" # disk and page cache back for the bridge

# ---------------------------------------------------------------------------------------
echo "== 4. mender-bridge daemon ($([ "$DAEMON_BIN" = "$BIN" ] && echo "full build" || echo "device build")), raw backend on two file slots, verify_readback = $READBACK"
B=$TMP/bridge
mkdir -p "$B/data" "$B/inventory" "$B/scripts"
SLOT_SIZE=$((MIB * 1024 * 1024))
truncate -s "$SLOT_SIZE" "$B/a.img" "$B/b.img"
printf 'root=%s\n' "$B/a.img" >"$B/cmdline"
printf 'mender_boot_part=2\nupgrade_available=0\n' >"$B/bootenv"
printf 'artifact_name=bench-0\n' >"$B/artifact_info"
printf 'device_type=bench-dev\n' >"$B/data/device_type"
printf '#!/bin/sh\necho mac=%s\n' "$MAC_BRIDGE" >"$B/identity"
# The simulated reboot: the "bootloader" boots the slot the boot state names.
cat >"$B/reboot" <<EOF
#!/bin/sh
part=\$(sed -n 's/^mender_boot_part=//p' '$B/bootenv')
if [ "\$part" = 3 ]; then slot=b; else slot=a; fi
printf 'root=%s\n' "$B/\$slot.img" > '$B/cmdline'
touch '$B/rebooted'
EOF
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
type = "raw"

[backend.raw]
cmdline = "$B/cmdline"
verify_readback = $READBACK

[backend.raw.a]
device = "$B/a.img"
boot_part = 2
size = $SLOT_SIZE

[backend.raw.b]
device = "$B/b.img"
boot_part = 3
size = $SLOT_SIZE

[backend.raw.bootenv]
type = "command"
activate = ["sh", "-c", "printf 'mender_boot_part=%s\\\\nupgrade_available=1\\\\n' \"\$0\" > '$B/bootenv'", "{part}"]
commit = ["sed", "-i", "s/upgrade_available=1/upgrade_available=0/", "$B/bootenv"]
revert = ["sh", "-c", "printf 'mender_boot_part=%s\\\\nupgrade_available=0\\\\n' \"\$0\" > '$B/bootenv'", "{part}"]
state = ["cat", "$B/bootenv"]
EOF
BOOTS=0
start_bridge() { # binary; sets BR_PID
    BOOTS=$((BOOTS + 1))
    "$1" -c "$B/mender.conf" --bridge-config "$B/bridge.toml" -d "$B/data" -l info daemon \
        </dev/null >"$B/daemon-$BOOTS.log" 2>&1 &
    BR_PID=$!
    PIDS+=("$BR_PID")
}
start_bridge "$DAEMON_BIN"
BR_ID=$(accept_device "$MAC_BRIDGE") || { show_tail "$B/daemon-$BOOTS.log"; exit 1; }
wait_for "the bridge's inventory" 90 has_inventory "$BR_ID" || { show_tail "$B/daemon-$BOOTS.log"; exit 1; }
sleep 6
BR_IDLE_BEFORE=$(proc_kib "$BR_PID" VmRSS)
echo "   device accepted; idle RSS $(mib "$BR_IDLE_BEFORE") MiB ($(split_now "$BR_PID"))"
BR_TIMES=() BR_SUCCESS=() BR_PEAKS=() BR_ANON=() BR_FILE=() BR_STREAM=() BR_FINISH=()
warm_up
for run in $(seq "$RUNS"); do
    rm -f "$B/rebooted"
    sync
    start_sampler "$BR_PID" "$TMP/br.rss"
    t0=$(now_ns)
    DEP=$(deploy "bench-rootfs-$((2 - run % 2))" "$BR_ID")
    kill -USR1 "$BR_PID"
    follow "$DEP" "$BR_ID" "$t0" rebooting 300 || { show_tail "$B/daemon-$BOOTS.log"; exit 1; }
    BR_TIMES+=("${SEEN[rebooting]}")
    wait_for "the reboot command" 60 test -e "$B/rebooted" || { show_tail "$B/daemon-$BOOTS.log"; exit 1; }
    peak=$(proc_kib "$BR_PID" VmHWM)
    after="$(mib "$(proc_kib "$BR_PID" VmRSS)") MiB ($(split_now "$BR_PID"))"
    stop_sampler "$TMP/br.rss"
    read -r a f <"$TMP/br.rss"
    BR_PEAKS+=("$peak") BR_ANON+=("$a") BR_FILE+=("$f")
    installed=$(seen_list)
    read -r st fin < <(phases "$B/daemon-$BOOTS.log")
    BR_STREAM+=("$st") BR_FINISH+=("$fin")
    stop_pid "$BR_PID"
    start_bridge "$DAEMON_BIN" # the "reboot": the new slot is running
    follow "$DEP" "$BR_ID" "$t0" success 120 || { show_tail "$B/daemon-$BOOTS.log"; exit 1; }
    BR_SUCCESS+=("${SEEN[success]}")
    slot=$(sed -n 's|^root=.*/\(.\)\.img$|\1|p' "$B/cmdline")
    ok=$([ "$(sha256sum <"$B/$slot.img" | cut -d' ' -f1)" = "$IMG_SHA" ] && echo "slot $slot = image" || echo "SLOT $slot DIFFERS")
    echo "   run $run: $installed, success ${SEEN[success]} s; $ok, $(grep upgrade_available "$B/bootenv")"
    echo "          daemon log: stream $st s, fsync + read-back + activation $fin s"
    echo "          VmHWM $(mib "$peak") MiB (largest anon $(mib "$a"), file $(mib "$f")); RSS awaiting the reboot $after"
done
sleep 6
BR_IDLE_AFTER=$(proc_kib "$BR_PID" VmRSS)
echo "   idle RSS after the last success $(mib "$BR_IDLE_AFTER") MiB ($(split_now "$BR_PID"))"
stop_pid "$BR_PID"
FULL_IDLE=
if [ "$DAEMON_BIN" != "$BIN" ]; then
    start_bridge "$BIN" # the same daemon from the full build (with the simulator)
    sleep 7
    FULL_IDLE=$(proc_kib "$BR_PID" VmRSS)
    echo "   the full build's daemon on the same device: idle RSS $(mib "$FULL_IDLE") MiB ($(split_now "$BR_PID"))"
    stop_pid "$BR_PID"
fi
stop_pid "$SIM_PID"

# ---------------------------------------------------------------------------------------
OT=$(median "${OFF_TIMES[@]}")
BT=$(median "${BR_TIMES[@]}")
BS=$(median "${BR_SUCCESS[@]}")
BPEAK=$(maximum "${BR_PEAKS[@]}")
awk -v mib="$MIB" -v runs="$RUNS" -v image="$IMAGE" -v readback="$READBACK" -v nproc="$(nproc)" \
    -v cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    -v mem="$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" \
    -v load0="$LOAD_START" -v load1="$(cut -d' ' -f1-3 /proc/loadavg)" \
    -v size="$SIZE" -v dsize="$DEVICE_SIZE" -v dev="$([ "$DAEMON_BIN" = "$BIN" ] && echo 0 || echo 1)" \
    -v ot="$OT" -v otimes="${OFF_TIMES[*]}" -v opeak="$OFF_PEAK" -v oidle="$OFF_IDLE" \
    -v bt="$BT" -v btimes="${BR_TIMES[*]}" -v bs="$BS" -v bstimes="${BR_SUCCESS[*]}" \
    -v bpeak="$BPEAK" -v banon="$(maximum "${BR_ANON[@]}")" -v bfile="$(maximum "${BR_FILE[@]}")" \
    -v bidle1="$BR_IDLE_BEFORE" -v bidle2="$BR_IDLE_AFTER" -v fidle="$FULL_IDLE" \
    -v odl="$(median "${OFF_DL[@]}")" -v oinst="$(median "${OFF_INST[@]}")" \
    -v bstream="$(median "${BR_STREAM[@]}")" -v bfinish="$(median "${BR_FINISH[@]}")" '
function ok(c) { return c ? "met" : "MISSED" }
function secs(v) { return v ~ /^[0-9.]+$/ ? sprintf("%.2f", v) : "?" }
function row(name, value, unit, target, ratio, verdict) {
    printf "%-48s %8s %-3s  %-20s %6s  %s\n", name, value, unit, target, ratio, verdict
}
BEGIN {
    M = 1048576
    printf "\n== results: %d MiB %s image, gzip, HTTPS on loopback from mender-bridge sim; median of %d runs\n", mib, image, runs
    printf "machine: nproc=%d, cpu=%s, %d GiB RAM; load average at start %s, at end %s\n\n", nproc, cpu, mem, load0, load1
    row("figure", "value", "", "target", "ratio", "")
    row("release binary (cargo build --release), stripped", sprintf("%.2f", dsize / M), "MiB", "<= 6 MiB", sprintf("%.2f", dsize / M / 6), ok(dsize <= 6 * M))
    row("full build (--features sim), stripped", sprintf("%.2f", size / M), "MiB", "info", "", "developer build: demo, sim")
    row("official: creation -> success (installed)", sprintf("%.2f", ot), "s", "reference", "", "runs: " otimes)
    row("bridge: creation -> rebooting (installed)", sprintf("%.2f", bt), "s", "<= 0.7 x official", sprintf("%.2f", bt / ot), ok(bt <= 0.7 * ot) "  runs: " btimes)
    row("bridge: creation -> success (with restart)", sprintf("%.2f", bs), "s", "info", sprintf("%.2f", bs / ot), "runs: " bstimes)
    row("  official: downloading -> installing", secs(odl), "s", "info", "", "download, store in data dir")
    row("  official: installing -> success", secs(oinst), "s", "info", "", "module: cp + sync")
    row("  bridge: download start -> end (log)", secs(bstream), "s", "info", "", "stream into the slot")
    row("  bridge: download end -> activated (log)", secs(bfinish), "s", "info", "", (readback == "true" ? "fsync, read-back, boot env" : "fsync, boot env"))
    row("official: peak RSS (VmHWM)", sprintf("%.1f", opeak / 1024), "MiB", "reference", "", "")
    row("bridge: peak RSS while installing (VmHWM)", sprintf("%.1f", bpeak / 1024), "MiB", "<= 16 MiB", sprintf("%.2f", bpeak / 1024 / 16), ok(bpeak <= 16 * 1024) sprintf("  (largest anon %.1f, file %.1f)", banon / 1024, bfile / 1024))
    row("official: idle RSS (VmRSS)", sprintf("%.1f", oidle / 1024), "MiB", "reference", "", "")
    row("bridge: idle RSS before the first deployment", sprintf("%.1f", bidle1 / 1024), "MiB", "<= 8 MiB", sprintf("%.2f", bidle1 / 1024 / 8), ok(bidle1 <= 8 * 1024))
    row("bridge: idle RSS after the last success", sprintf("%.1f", bidle2 / 1024), "MiB", "<= 8 MiB", sprintf("%.2f", bidle2 / 1024 / 8), ok(bidle2 <= 8 * 1024))
    if (fidle != "")
        row("bridge, full build: idle RSS (info)", sprintf("%.1f", fidle / 1024), "MiB", "<= 8 MiB", sprintf("%.2f", fidle / 1024 / 8), ok(fidle <= 8 * 1024))
    printf "\nthe bridge daemon above is the %s with verify_readback = %s; throughput to install-complete: official %.0f MiB/s, bridge %.0f MiB/s\n", (dev ? "device build" : "full build"), readback, mib / ot, mib / bt
}'

#!/usr/bin/env bash
# Benchmark of Update Module deployments (issue 12): the official client and
# `mender-bridge daemon` install the same artifacts from the same simulator in one run.
#
# In one run, on loopback:
#   1. builds the release binary with the simulator (`cargo build --release --features sim`,
#      in target/full as the other bench scripts do); it serves and it is the daemon under
#      test (the Update Module backend is in every build);
#   2. starts `mender-bridge sim`, writes a BENCH_MIB MiB random file and artifacts of it,
#      two names of each so runs can alternate (an installed artifact is not deployed again),
#      mender-artifact's default compression (gzip):
#        - `single-file` module-images, made as `single-file-artifact-gen` makes them
#          (`write module-image -T single-file` with the files dest_dir, filename,
#          permissions and the file);
#        - `bench-stream` module-images of the same file, for a small streaming module the
#          script writes into a temp modules dir: its `Download` reads `stream-next` and
#          `cat`s each `streams/<name>` into a destination under the temp dir,
#          `ArtifactInstall` fsyncs and renames it into place, no reboot, no rollback;
#   3. starts both clients and has the simulator accept them: the official client (Debian
#      mender-client 3.4, `mender daemon`, run as in tests/sim_mender_client.rs: its own
#      /etc/mender, identity script and data dir by bind mounts in a private mount
#      namespace; the modules dir it sees is a temp dir holding the real
#      /usr/share/mender/modules/v3/single-file, bind-mounted, and `bench-stream`) and
#      `mender-bridge daemon` with the default modules dir (the real single-file module);
#   4. single-file: the official client, then the bridge, installs the artifact, BENCH_RUNS
#      times in turn (alternating, so that a machine shared with other work weighs on both
#      alike);
#   5. the streaming module: the bridge restarted with `modules_dir` = the temp dir; the two
#      clients in turn BENCH_RUNS times, then the bridge once more with a 64 KiB file (the
#      control: what it writes then is its own bookkeeping);
#   6. prints every figure with its target, the official client's from the same run as the
#      baseline, and the machine.
#
# For every deployment of both clients: the time from the deployment's creation to
# `success` (the first poll of the simulator's history that shows it; polled every 0.05 s,
# so +- ~0.05 s), the time from the first `downloading` to `success`, the peak RSS (VmHWM,
# reset with /proc/PID/clear_refs just before the deployment is created), and the bytes the
# client made the kernel write (/proc/PID/io write_bytes after `success` and a settling
# second, minus before the creation). write_bytes of a process includes what its reaped
# children wrote, so it includes the Update Module's own writes: the single-file module's
# `cp -a` to dest_dir, the streaming module's `cat` into its destination. The streaming
# module records its own write_bytes at the end of `Download` (a shell's count includes its
# reaped `cat`), so the client's own bytes are the difference.
#
# Polling: both clients poll every second (UpdatePollIntervalSeconds = 1) and get SIGUSR1
# (check now) right after each deployment is created, so neither waits for its poll timer;
# the remaining update-check latency is in both figures alike, and downloading -> success,
# which leaves it out, is printed next to them.
#
# Between runs the destination files are removed (the single-file module backs up an
# existing file first) and `sync` flushes dirty pages. Before the runs the script writes and
# deletes a scratch file of 3 x the image: these VMs back guest memory lazily, and a first
# write into never-used page cache costs ~10 x a warm one. The script reports; it does not
# assert (exit status non-zero only if something broke). Needs root (the official client's
# private mount namespace; clear_refs). Figures from a busy machine are noisy: the load
# average is printed at the start and the end.
#
# Environment: BENCH_MIB   size of the file in MiB (default 256)
#              BENCH_RUNS  deployments per client and case (default 3)
set -euo pipefail
shopt -s inherit_errexit
BENCH=bench-modules
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

MIB=${BENCH_MIB:-256}
RUNS=${BENCH_RUNS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/full/release/mender-bridge
REAL_MODULES=/usr/share/mender/modules/v3
STREAM_TYPE=bench-stream
MAC_OFFICIAL=02:00:00:00:be:11
MAC_BRIDGE=02:00:00:00:be:12

[[ $MIB =~ ^[1-9][0-9]*$ ]] || die "BENCH_MIB must be a positive integer, got '$MIB'"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, got '$RUNS'"
[ "$(id -u)" -eq 0 ] || die "needs root (the official client runs in a private mount namespace)"
for tool in cargo mender mender-artifact unshare curl jq sha256sum awk truncate; do
    command -v "$tool" >/dev/null ||
        die "'$tool' not found (scripts/setup-test-deps.sh installs the test tools; curl and jq come from apt)"
done
[ -x "$REAL_MODULES/single-file" ] || die "$REAL_MODULES/single-file not found (Debian package mender-client)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

bench_setup

write_bytes() { awk '$1 == "write_bytes:" { print $2 }' "/proc/$1/io"; }
reset_hwm() { echo 5 >"/proc/$1/clear_refs"; } # VmHWM := VmRSS (Linux >= 4.0)
warm_up() {
    dd if=/dev/zero of="$TMP/warm" bs=1M count=$((3 * MIB)) status=none
    rm -f "$TMP/warm"
    sync
}
kib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1024 }'; }

# ---------------------------------------------------------------------------------------
echo "== 1. build: cargo build --release --features sim --target-dir target/full (the simulator and the daemon)"
(cd "$ROOT" && cargo build --release --quiet --features sim --target-dir "$ROOT/target/full")

# ---------------------------------------------------------------------------------------
echo "== 2. simulator, ${MIB} MiB random file, single-file and $STREAM_TYPE artifacts (gzip)"
start_sim "$BIN" --no-next-v2
echo "   sim $URL"
deploy() { # artifact name, device id; prints the deployment id
    api -X POST -H 'content-type: application/json' \
        -d "{\"artifact_name\":\"$1\",\"devices\":[\"$2\"]}" "$M/deployments" | jq -r .id
}

SF_DEST=$TMP/sf-dest         # the single-file module's dest_dir
STREAM_DEST=$TMP/stream-dest # where the streaming module puts the file
mkdir -p "$TMP/img"
head -c "$((MIB * 1024 * 1024))" /dev/urandom >"$TMP/img/image.img"
IMG_SHA=$(sha256sum "$TMP/img/image.img" | cut -d' ' -f1)
printf '%s' "$SF_DEST" >"$TMP/img/dest_dir"
printf 'image.img' >"$TMP/img/filename"
printf '644' >"$TMP/img/permissions"
t0=$(now_ns)
for n in 1 2; do
    (cd "$TMP/img" && mender-artifact write module-image -T single-file -t bench-dev -n "bench-single-file-$n" \
        -f dest_dir -f filename -f permissions -f image.img -o "$TMP/a.mender") >"$TMP/write.log" 2>&1 ||
        { cat "$TMP/write.log" >&2; exit 1; }
    upload "$TMP/a.mender"
    (cd "$TMP/img" && mender-artifact write module-image -T "$STREAM_TYPE" -t bench-dev -n "bench-stream-$n" \
        -f image.img -o "$TMP/a.mender") >"$TMP/write.log" 2>&1 || { cat "$TMP/write.log" >&2; exit 1; }
    upload "$TMP/a.mender"
done
# The control: the streaming case with a 64 KiB file. What the bridge writes for it besides the
# module is its own bookkeeping; the big runs may only write as much.
mkdir -p "$TMP/small"
head -c 65536 /dev/urandom >"$TMP/small/image.img"
SMALL_SHA=$(sha256sum "$TMP/small/image.img" | cut -d' ' -f1)
(cd "$TMP/small" && mender-artifact write module-image -T "$STREAM_TYPE" -t bench-dev -n bench-stream-small \
    -f image.img -o "$TMP/a.mender") >"$TMP/write.log" 2>&1 || { cat "$TMP/write.log" >&2; exit 1; }
upload "$TMP/a.mender"
rm -rf "$TMP/img" "$TMP/small"
api "$M/artifacts" | jq -r '.[] | "   \(.name): \(.payload_type), \(.size / 1048576 * 10 | round / 10) MiB"'
echo "   5 artifacts written and uploaded in $(dt "$t0" "$(now_ns)") s"

# The streaming Update Module (protocol v3), in a temp modules dir. `Download` takes every
# stream; its own write_bytes (with its reaped `cat`s) go to $STREAM_DEST/download-io.
MODS=$TMP/modules
mkdir -p "$MODS"
cat >"$MODS/$STREAM_TYPE" <<EOF
#!/bin/sh
# bench-modules.sh's streaming Update Module: Download reads every stream into
# $STREAM_DEST/incoming, ArtifactInstall fsyncs and renames the files into place.
set -e
state=\$1
files=\$2
dest='$STREAM_DEST'
case "\$state" in
Download)
    mkdir -p "\$dest/incoming"
    while read -r stream <"\$files/stream-next" && [ -n "\$stream" ]; do
        cat "\$files/\$stream" >"\$dest/incoming/\${stream#streams/}"
    done
    awk '\$1 == "write_bytes:" { print \$2 }' "/proc/\$\$/io" >"\$dest/download-io"
    ;;
ArtifactInstall)
    for f in "\$dest/incoming"/*; do
        sync "\$f"
        mv "\$f" "\$dest/"
    done
    ;;
NeedsArtifactReboot | SupportsRollback)
    echo No
    ;;
Cleanup)
    rm -rf "\$dest/incoming"
    ;;
esac
exit 0
EOF
chmod 755 "$MODS/$STREAM_TYPE"

# The pending device with this MAC, accepted; prints its id.
find_pending() { # MAC: sets PENDING_ID
    PENDING_ID=$(api "$M/devices" | jq -r --arg mac "$1" \
        'first(.[] | select(.identity_data.mac == $mac and .status == "pending") | .id) // empty')
    [ -n "$PENDING_ID" ]
}
accept_device() {
    wait_for "device $1 to ask for admission" 90 find_pending "$1" || return 1
    api -X POST "$M/devices/$PENDING_ID/accept" >/dev/null
    echo "$PENDING_ID"
}
file_ok() { # path, SHA-256: "= artifact's" or "DIFFERS"
    if [ -f "$1" ] && [ "$(sha256sum <"$1" | cut -d' ' -f1)" = "$2" ]; then echo "= artifact's"; else echo "DIFFERS"; fi
}

# One deployment of artifact $2 to device $3 whose daemon is PID $4, logging to $5; case
# $1 (sf, stream, or control: the 64 KiB streaming one). Appends to the arrays
# <CLIENT>_<case>_{T,DL,ST,INST,HWM,W,MOD}, where CLIENT is $CLIENT: T creation -> success,
# DL downloading -> success, ST downloading -> installing, INST installing -> success, HWM
# peak RSS (KiB), W write_bytes of the daemon, MOD the module's own (streaming cases).
run_once() {
    local case=$1 artifact=$2 id=$3 pid=$4 log=$5 w0 w1 t0 dep hwm mod=0 dest sha=$IMG_SHA where
    rm -rf "$SF_DEST" "$STREAM_DEST"
    mkdir -p "$STREAM_DEST"
    sync
    w0=$(write_bytes "$pid")
    reset_hwm "$pid"
    t0=$(now_ns)
    dep=$(deploy "$artifact" "$id")
    kill -USR1 "$pid"
    follow "$dep" "$id" "$t0" success 600 || { show_tail "$log"; exit 1; }
    sleep 1 # Cleanup and the last records
    w1=$(write_bytes "$pid")
    hwm=$(proc_kib "$pid" VmHWM)
    if [ "$case" = sf ]; then
        dest=$SF_DEST/image.img
    else
        dest=$STREAM_DEST/image.img
        [ "$case" = stream ] || sha=$SMALL_SHA
        mod=$(cat "$STREAM_DEST/download-io" 2>/dev/null || echo 0)
    fi
    local -n T=${CLIENT}_${case}_T DL=${CLIENT}_${case}_DL ST=${CLIENT}_${case}_ST INST=${CLIENT}_${case}_INST
    local -n HWM=${CLIENT}_${case}_HWM W=${CLIENT}_${case}_W MOD=${CLIENT}_${case}_MOD
    T+=("${SEEN[success]}")
    DL+=("$(awk -v a="${SEEN[downloading]:-0}" -v b="${SEEN[success]}" 'BEGIN { printf "%.2f", b - a }')")
    ST+=("$(awk -v a="${SEEN[downloading]:-0}" -v b="${SEEN[installing]:-${SEEN[success]}}" 'BEGIN { printf "%.2f", b - a }')")
    INST+=("$(awk -v a="${SEEN[installing]:-${SEEN[success]}}" -v b="${SEEN[success]}" 'BEGIN { printf "%.2f", b - a }')")
    HWM+=("$hwm") W+=("$((w1 - w0))") MOD+=("$mod")
    where=""
    [ "$case" = sf ] || where=", of which the module's Download $(kib "$mod") KiB: own $(kib "$((w1 - w0 - mod))") KiB"
    echo "$(seen_list) s; file $(file_ok "$dest" "$sha"); VmHWM $(mib "$hwm") MiB; write_bytes $(kib "$((w1 - w0))") KiB$where"
}
# shellcheck disable=SC2034 # filled by run_once through namerefs
declare -a official_sf_T=() official_sf_DL=() official_sf_ST=() official_sf_INST=() official_sf_HWM=() official_sf_W=() official_sf_MOD=() \
    official_stream_T=() official_stream_DL=() official_stream_ST=() official_stream_INST=() official_stream_HWM=() official_stream_W=() official_stream_MOD=() \
    bridge_sf_T=() bridge_sf_DL=() bridge_sf_ST=() bridge_sf_INST=() bridge_sf_HWM=() bridge_sf_W=() bridge_sf_MOD=() \
    bridge_stream_T=() bridge_stream_DL=() bridge_stream_ST=() bridge_stream_INST=() bridge_stream_HWM=() bridge_stream_W=() bridge_stream_MOD=() \
    bridge_control_T=() bridge_control_DL=() bridge_control_ST=() bridge_control_INST=() bridge_control_HWM=() bridge_control_W=() bridge_control_MOD=()

# ---------------------------------------------------------------------------------------
echo "== 3. both clients, accepted: the official client (mender $(mender --version 2>/dev/null | awk 'NR == 1 { print $1 }')) and mender-bridge daemon (full build)"
O=$TMP/official
OM=$TMP/official-modules # its /usr/share/mender/modules/v3: the real single-file and bench-stream
mkdir -p "$O/etc" "$O/identity" "$O/data" "$OM"
printf 'artifact_name=bench-0\n' >"$O/etc/artifact_info"
printf 'device_type=bench-dev\n' >"$O/data/device_type"
jq -n --arg url "$URL" --arg ca "$CA" --arg dt "$O/data/device_type" '{
    ServerURL: $url, ServerCertificate: $ca, DeviceTypeFile: $dt,
    UpdatePollIntervalSeconds: 1, InventoryPollIntervalSeconds: 5, RetryPollIntervalSeconds: 1
}' >"$O/etc/mender.conf"
printf '#!/bin/sh\necho mac=%s\n' "$MAC_OFFICIAL" >"$O/identity/mender-device-identity"
chmod 755 "$O/identity/mender-device-identity"
cp "$MODS/$STREAM_TYPE" "$OM/$STREAM_TYPE"
: >"$OM/single-file" # a mount point for the real module
# unshare without --fork execs: $! is the shell, then mender itself (exec). The real
# single-file is bound onto its mount point before the dir hides the real one (--rbind
# keeps that file mount).
unshare --mount -- sh -c "mount --bind '$O/etc' /etc/mender && mount --bind '$O/identity' /usr/share/mender/identity && \
    mount --bind '$REAL_MODULES/single-file' '$OM/single-file' && mount --rbind '$OM' '$REAL_MODULES' && \
    exec mender -c /etc/mender/mender.conf -d '$O/data' --no-syslog daemon" </dev/null >"$O/mender.log" 2>&1 &
OFF_PID=$!
PIDS+=("$OFF_PID")
OFF_ID=$(accept_device "$MAC_OFFICIAL") || { show_tail "$O/mender.log"; exit 1; }
wait_for "the official client's inventory" 90 has_inventory "$OFF_ID" || { show_tail "$O/mender.log"; exit 1; }

B=$TMP/bridge
mkdir -p "$B/data" "$B/inventory" "$B/scripts"
printf 'artifact_name=bench-0\n' >"$B/artifact_info"
printf 'device_type=bench-dev\n' >"$B/data/device_type"
printf '#!/bin/sh\necho mac=%s\n' "$MAC_BRIDGE" >"$B/identity"
chmod 755 "$B/identity"
jq -n --arg url "$URL" --arg ca "$CA" --arg dt "$B/data/device_type" '{
    ServerURL: $url, ServerCertificate: $ca, DeviceTypeFile: $dt,
    UpdatePollIntervalSeconds: 1, InventoryPollIntervalSeconds: 5, RetryPollIntervalSeconds: 1
}' >"$B/mender.conf"
# A modules-only device: no A/B slots, so every payload type goes to its Update Module.
bridge_toml() { # $1: a modules_dir line, or nothing (the default: the real modules dir)
    cat <<EOF
identity_script = "$B/identity"
inventory_script_dir = "$B/inventory"
state_scripts_dir = "$B/scripts"
artifact_info_file = "$B/artifact_info"
reboot_command = ["touch", "$B/rebooted"]
$1
EOF
}
BOOTS=0
start_bridge() { # sets BR_PID, BR_LOG
    BOOTS=$((BOOTS + 1))
    BR_LOG=$B/daemon-$BOOTS.log
    "$BIN" -c "$B/mender.conf" --bridge-config "$B/bridge.toml" -d "$B/data" -l info daemon \
        </dev/null >"$BR_LOG" 2>&1 &
    BR_PID=$!
    PIDS+=("$BR_PID")
}
bridge_toml "" >"$B/bridge.toml"
start_bridge
BR_ID=$(accept_device "$MAC_BRIDGE") || { show_tail "$BR_LOG"; exit 1; }
wait_for "the bridge's inventory" 90 has_inventory "$BR_ID" || { show_tail "$BR_LOG"; exit 1; }
sleep 3
echo "   idle RSS: official $(mib "$(proc_kib "$OFF_PID" VmRSS)") MiB, bridge $(mib "$(proc_kib "$BR_PID" VmRSS)") MiB"
official() { CLIENT=official run_once "$1" "$2" "$OFF_ID" "$OFF_PID" "$O/mender.log"; }
bridge() { CLIENT=bridge run_once "$1" "$2" "$BR_ID" "$BR_PID" "$BR_LOG"; }
warm_up

# ---------------------------------------------------------------------------------------
echo "== 4. single-file: $REAL_MODULES/single-file for both (the bridge's modules_dir unset), the clients alternating"
for run in $(seq "$RUNS"); do
    echo -n "   official "
    official sf "bench-single-file-$((2 - run % 2))"
    echo -n "   bridge   "
    bridge sf "bench-single-file-$((2 - run % 2))"
done

# ---------------------------------------------------------------------------------------
echo "== 5. $STREAM_TYPE, the streaming module; the bridge restarted with modules_dir = \"$MODS\""
stop_pid "$BR_PID"
bridge_toml "modules_dir = \"$MODS\"" >"$B/bridge.toml"
start_bridge
wait_for "the restarted bridge to authenticate" 60 grep -q 'authenticated' "$BR_LOG" || { show_tail "$BR_LOG"; exit 1; }
sleep 2
for run in $(seq "$RUNS"); do
    echo -n "   official "
    official stream "bench-stream-$((2 - run % 2))"
    echo -n "   bridge   "
    bridge stream "bench-stream-$((2 - run % 2))"
done
echo -n "   control, a 64 KiB file: bridge "
bridge control bench-stream-small
stop_pid "$BR_PID"
stop_pid "$OFF_PID"
[ ! -e "$B/rebooted" ] || echo "   NOTE: the bridge ran its reboot command"
stop_pid "$SIM_PID"

# ---------------------------------------------------------------------------------------
ot=$(median "${official_sf_T[@]}")
bt=$(median "${bridge_sf_T[@]}")
awk -v mib="$MIB" -v runs="$RUNS" -v nproc="$(nproc)" \
    -v cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    -v mem="$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" \
    -v load0="$LOAD_START" -v load1="$(cut -d' ' -f1-3 /proc/loadavg)" \
    -v ot="$ot" -v otimes="${official_sf_T[*]}" -v bt="$bt" -v btimes="${bridge_sf_T[*]}" \
    -v odl="$(median "${official_sf_DL[@]}")" -v bdl="$(median "${bridge_sf_DL[@]}")" \
    -v oinst="$(median "${official_sf_INST[@]}")" -v binst="$(median "${bridge_sf_INST[@]}")" \
    -v ost1="$(median "${official_sf_ST[@]}")" -v bst1="$(median "${bridge_sf_ST[@]}")" \
    -v ohwm="$(maximum "${official_sf_HWM[@]}")" -v bhwm="$(maximum "${bridge_sf_HWM[@]}")" \
    -v ow="$(median "${official_sf_W[@]}")" -v bw="$(median "${bridge_sf_W[@]}")" \
    -v ost="$(median "${official_stream_T[@]}")" -v bst="$(median "${bridge_stream_T[@]}")" \
    -v oshwm="$(maximum "${official_stream_HWM[@]}")" -v bshwm="$(maximum "${bridge_stream_HWM[@]}")" \
    -v osw="$(median "${official_stream_W[@]}")" -v bsw="$(median "${bridge_stream_W[@]}")" \
    -v osmod="$(median "${official_stream_MOD[@]}")" -v bsmod="$(median "${bridge_stream_MOD[@]}")" \
    -v bcown="$((bridge_control_W[0] - bridge_control_MOD[0]))" \
    -v bsown="$(for i in "${!bridge_stream_W[@]}"; do echo $((bridge_stream_W[i] - bridge_stream_MOD[i])); done | sort -n | tail -n1)" '
function met(c) { return c ? "met" : "not met" }
function row(name, value, unit, target, ratio, verdict) {
    printf "%-50s %9s %-3s  %-20s %6s  %s\n", name, value, unit, target, ratio, verdict
}
function k(b) { return sprintf("%.0f", b / 1024) }
BEGIN {
    P = mib * 1024
    printf "\n== results: %d MiB random file, gzip artifacts, HTTPS on loopback from mender-bridge sim; medians of %d runs (peaks: the largest)\n", mib, runs
    printf "machine: nproc=%d, cpu=%s, %d GiB RAM; load average at start %s, at end %s\n", nproc, cpu, mem, load0, load1
    printf "polling: both clients poll every 1 s and get SIGUSR1 right after each deployment is created; nothing is subtracted\n\n"
    row("figure", "value", "", "target", "ratio", "")
    row("single-file: official, creation -> success", sprintf("%.2f", ot), "s", "baseline", "", "runs: " otimes)
    row("single-file: bridge, creation -> success", sprintf("%.2f", bt), "s", "<= 0.8 x official", sprintf("%.2f", bt / ot), met(bt <= 0.8 * ot) "  runs: " btimes)
    row("  official: downloading -> success", sprintf("%.2f", odl), "s", "info", "", "without the update check")
    row("  bridge: downloading -> success", sprintf("%.2f", bdl), "s", "info", sprintf("%.2f", bdl / odl), "")
    row("  official: downloading -> installing", sprintf("%.2f", ost1), "s", "info", "", "download, stored in files/")
    row("  bridge: downloading -> installing", sprintf("%.2f", bst1), "s", "info", sprintf("%.2f", bst1 / ost1), "")
    row("  official: installing -> success", sprintf("%.2f", oinst), "s", "info", "", "sync, ArtifactInstall (cp -a, fsync), Cleanup")
    row("  bridge: installing -> success", sprintf("%.2f", binst), "s", "info", sprintf("%.2f", binst / oinst), "")
    row("single-file: official, peak RSS (VmHWM)", sprintf("%.1f", ohwm / 1024), "MiB", "reference", "", "")
    row("single-file: bridge, peak RSS (VmHWM)", sprintf("%.1f", bhwm / 1024), "MiB", "<= 16 MiB", sprintf("%.2f", bhwm / 1024 / 16), met(bhwm <= 16 * 1024))
    row("single-file: official, write_bytes", k(ow), "KiB", "reference", sprintf("%.2f", ow / 1024 / P), "x payload: files/ + the module'"'"'s cp")
    row("single-file: bridge, write_bytes", k(bw), "KiB", "info", sprintf("%.2f", bw / 1024 / P), "x payload: files/ + the module'"'"'s cp")
    row("stream: official, creation -> success", sprintf("%.2f", ost), "s", "info", "", "")
    row("stream: bridge, creation -> success", sprintf("%.2f", bst), "s", "info", sprintf("%.2f", bst / ost), "")
    row("stream: official, peak RSS (VmHWM)", sprintf("%.1f", oshwm / 1024), "MiB", "reference", "", "")
    row("stream: bridge, peak RSS (VmHWM)", sprintf("%.1f", bshwm / 1024), "MiB", "<= 16 MiB", sprintf("%.2f", bshwm / 1024 / 16), met(bshwm <= 16 * 1024))
    row("stream: official, write_bytes (all)", k(osw), "KiB", "info", "", "module Download " k(osmod) " KiB: own " k(osw - osmod) " KiB")
    row("stream: bridge, write_bytes (all)", k(bsw), "KiB", "info", "", "module Download " k(bsmod) " KiB")
    row("stream: bridge, write_bytes less the module", k(bsown), "KiB", "<< payload", sprintf("%.4f", bsown / 1024 / P), met(bsown <= 1048576) " (largest run; ratio: x payload)")
    row("  the same, 64 KiB control", k(bcown), "KiB", "info", "", "its records: deployment state, log, module tree")
    grow = bsown - bcown
    row("stream: payload bytes written (run - control)", k(grow > 0 ? grow : 0), "KiB", "~0 (< 256 KiB)", "", met(grow < 256 * 1024) (grow < 256 * 1024 ? ": nothing grows with the payload" : ""))
}'

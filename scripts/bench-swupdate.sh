#!/usr/bin/env bash
# Benchmark of the SWUpdate backend (issues 6 and 10): a .swu from the simulator into a real
# SWUpdate daemon by `mender-bridge daemon`, streamed (mode "auto", which streams into this
# daemon: it runs with -k, and the preflight probe proves it enforces signed images) and
# spooled (mode "spool": written to the spool file, verified, then streamed into SWUpdate),
# against `swupdate-client` streaming the same .swu from local disk into the same daemon,
# in the same run.
#
# One run, on loopback:
#   1. builds the release binary;
#   2. a test CA and signer, a BENCH_MIB MiB random image, a signed .swu (cpio newc) whose
#      raw handler writes it into a plain target file; the SWUpdate 2022.12 daemon with its
#      sockets in a temp dir (TMPDIR), and its own temp files there too;
#   3. baseline: `swupdate-client -q update.swu` BENCH_RUNS times: wall time from its start to
#      SWUpdate's SUCCESS frame (a sniffer on the progress socket timestamps every START and
#      SUCCESS frame), and to its exit (swupdate-client polls GET_STATUS lazily: about 1 s
#      more, so its exit is not the baseline);
#   4. `mender-bridge sim`, the .swu wrapped with `mender-artifact write module-image -T swu`
#      (uncompressed by default: a .swu carries its own compression), two names so runs can
#      alternate; `mender-bridge daemon` with the swupdate backend (no reboot, no ustate)
#      installs it BENCH_RUNS times: wall time from the deployment's creation to SWUpdate's
#      SUCCESS frame (the baseline's measure) and to `success` on the dashboard,
#      peak RSS (VmHWM), and the bytes the bridge process had written to storage
#      (/proc/PID/io write_bytes) before and after each deployment; the target's SHA-256 is
#      checked after every run of both; then one control deployment of a 64 KiB image: the
#      bytes written that grow with the payload are the big runs' minus the control's;
#   5. the daemon restarted with mode = "spool": BENCH_RUNS installs, measured the same way
#      (its write_bytes now include the spool file; cancelled_write_bytes, the spool bytes
#      removed before they reached the disk, are shown next to them);
#   6. prints every figure with its target and ratio (medians decide), and the machine.
#
# The daemon polls every second and gets SIGUSR1 (check now) right after each deployment is
# created. A status's time is when the first poll of the simulator's history that shows it
# was sent (polls every 0.05 s). `sync` before each run. The script reports; it does not
# assert (exit status non-zero only if something broke). Root is not needed.
#
# Environment: BENCH_MIB          size of the image in MiB (default 256)
#              BENCH_RUNS         installs per client (default 3)
#              BENCH_COMPRESSION  the Mender artifact's compression: none (default), gzip
set -euo pipefail
shopt -s inherit_errexit
BENCH=bench-swupdate
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

MIB=${BENCH_MIB:-256}
RUNS=${BENCH_RUNS:-3}
COMPRESSION=${BENCH_COMPRESSION:-none}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/swupdate/release/mender-bridge # the device build with the swupdate backend: the daemon under test
SIM_BIN=$ROOT/target/full/release/mender-bridge # with the simulator (--features sim)
MAC=02:00:00:00:be:06

[[ $MIB =~ ^[1-9][0-9]*$ ]] || die "BENCH_MIB must be a positive integer, got '$MIB'"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, got '$RUNS'"
[[ $COMPRESSION =~ ^(none|gzip)$ ]] || die "BENCH_COMPRESSION must be none or gzip, got '$COMPRESSION'"
for tool in cargo swupdate swupdate-client mender-artifact openssl cpio curl jq python3 sha256sum awk; do
    command -v "$tool" >/dev/null ||
        die "'$tool' not found (scripts/setup-test-deps.sh installs the test tools; curl and jq come from apt)"
done
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

bench_setup

write_bytes() { awk '$1 == "write_bytes:" { print $2 }' "/proc/$1/io"; }
cancelled_bytes() { awk '$1 == "cancelled_write_bytes:" { print $2 }' "/proc/$1/io"; }
target_ok() {
    [ "$(head -c "$((MIB * 1024 * 1024))" "$TARGET" | sha256sum | cut -d' ' -f1)" = "$IMG_SHA" ] &&
        echo "target = image" || echo "TARGET DIFFERS"
}

# ---------------------------------------------------------------------------------------
echo "== 1. build (--features swupdate in target/swupdate: the device binary; --features sim in target/full: the simulator)"
(cd "$ROOT" && cargo build --release --quiet --features swupdate --target-dir "$ROOT/target/swupdate")
echo "   device binary with the swupdate backend, stripped: $(stat -c %s "$BIN" | awk '{ printf "%.2f MiB", $1 / 1048576 }') (the raw-only default build: see bench-deploy.sh)"
(cd "$ROOT" && cargo build --release --quiet --features sim --target-dir "$ROOT/target/full")

# ---------------------------------------------------------------------------------------
echo "== 2. SWUpdate $(dpkg-query -W -f='${Version}' swupdate 2>/dev/null || echo '?'), ${MIB} MiB signed .swu"
W=$TMP/swu
mkdir -p "$W/pki" "$W/swu" "$W/run" "$W/out"
(
    cd "$W/pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 -subj /CN=bench-ca \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout dev.key -out dev.csr -subj /CN=bench-signer 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\n' >ext
    openssl x509 -req -in dev.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out dev.pem -days 3650 -extfile ext 2>/dev/null
)
head -c "$((MIB * 1024 * 1024))" /dev/urandom >"$W/swu/rootfs.img"
IMG_SHA=$(sha256sum "$W/swu/rootfs.img" | cut -d' ' -f1)
TARGET=$W/out/target.img
truncate -s "$((MIB * 1024 * 1024))" "$TARGET"
cat >"$W/swu/sw-description" <<EOF
software = {
  version = "1.0.0";
  hardware-compatibility = [ "1.0" ];
  images: ( { filename = "rootfs.img"; device = "$TARGET"; type = "raw"; sha256 = "$IMG_SHA"; } );
}
EOF
openssl cms -sign -in "$W/swu/sw-description" -out "$W/swu/sw-description.sig" -signer "$W/pki/dev.pem" \
    -inkey "$W/pki/dev.key" -outform DER -nosmimecap -binary
(cd "$W/swu" && printf '%s\n' sw-description sw-description.sig rootfs.img | cpio -o -H newc --quiet) >"$W/update.swu"
rm "$W/swu/rootfs.img"
SWU_SIZE=$(stat -c %s "$W/update.swu")
# The control: the same deployment with a 64 KiB image. What the bridge writes to storage for
# it is its own bookkeeping (deployment record, log); the big run may only write as much.
mkdir -p "$W/small"
head -c 65536 /dev/urandom >"$W/small/rootfs.img"
SMALL_SHA=$(sha256sum "$W/small/rootfs.img" | cut -d' ' -f1)
cat >"$W/small/sw-description" <<EOF
software = {
  version = "1.0.1";
  hardware-compatibility = [ "1.0" ];
  images: ( { filename = "rootfs.img"; device = "$W/out/small.img"; type = "raw"; sha256 = "$SMALL_SHA"; } );
}
EOF
openssl cms -sign -in "$W/small/sw-description" -out "$W/small/sw-description.sig" -signer "$W/pki/dev.pem" \
    -inkey "$W/pki/dev.key" -outform DER -nosmimecap -binary
(cd "$W/small" && printf '%s\n' sw-description sw-description.sig rootfs.img | cpio -o -H newc --quiet) >"$W/small.swu"
truncate -s 65536 "$W/out/small.img"
TMPDIR=$W/run swupdate -k "$W/pki/ca.pem" -H bench:1.0 >"$W/daemon.log" 2>&1 &
SWU_PID=$!
PIDS+=("$SWU_PID")
wait_for "the SWUpdate sockets" 30 test -S "$W/run/sockinstctrl" -a -S "$W/run/swupdateprog" ||
    { show_tail "$W/daemon.log"; exit 1; }
# A progress-socket sniffer (2022.12 frames, native layout): "epoch_ns status" for every
# START (1), SUCCESS (3) and FAILURE (4) frame, so both clients are timed to SWUpdate's own
# result, not only to their exit or to the dashboard.
cat >"$TMP/sniff.py" <<'EOF'
import socket, struct, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
out = open(sys.argv[2], "a", buffering=1)
size = 2416 if struct.calcsize("P") == 8 else 2408
buf = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    buf += d
    while len(buf) >= size:
        status = struct.unpack_from("=I", buf, 4)[0]
        buf = buf[size:]
        if status in (1, 3, 4):
            out.write("%d %d\n" % (time.time_ns(), status))
EOF
: >"$TMP/frames"
python3 "$TMP/sniff.py" "$W/run/swupdateprog" "$TMP/frames" &
PIDS+=("$!")
# The time (ns) of the first SUCCESS frame after $1 (ns), waiting up to 10 s for it.
success_after() {
    local t
    for _ in $(seq 100); do
        t=$(awk -v a="$1" '$1 > a && $2 == 3 { print $1; exit }' "$TMP/frames")
        [ -n "$t" ] && { echo "$t"; return 0; }
        sleep 0.1
    done
    echo "bench-swupdate: no SUCCESS frame" >&2
    return 1
}
echo "   .swu $(awk -v b="$SWU_SIZE" 'BEGIN { printf "%.1f", b / 1048576 }') MiB; daemon pid $SWU_PID, sockets in $W/run"

# ---------------------------------------------------------------------------------------
echo "== 3. baseline: swupdate-client streaming the .swu from local disk"
CL_TIMES=() CL_EXIT=() CL_FAILED=0
for run in $(seq "$RUNS"); do
    sync
    t0=$(now_ns)
    # swupdate-client now and then loses the stream (EPIPE, SWUpdate FAILURE); such a run is
    # reported and made again once.
    if ! TMPDIR=$W/run swupdate-client -q "$W/update.swu" >"$W/client.log" 2>&1; then
        echo "   run $run: swupdate-client failed ($(tr '\n' ' ' <"$W/client.log")); SWUpdate said:" \
            "$(grep -E 'ERROR|FAILURE|failed' "$W/daemon.log" | tail -n 3 | tr '\n' ' ')"
        CL_FAILED=$((CL_FAILED + 1))
        sync
        t0=$(now_ns)
        TMPDIR=$W/run swupdate-client -q "$W/update.swu" >"$W/client.log" 2>&1 || { cat "$W/client.log" >&2; exit 1; }
    fi
    t1=$(now_ns)
    ts=$(success_after "$t0")
    CL_TIMES+=("$(dt "$t0" "$ts")") CL_EXIT+=("$(dt "$t0" "$t1")")
    echo "   run $run: start -> SUCCESS frame $(dt "$t0" "$ts") s, -> exit $(dt "$t0" "$t1") s; $(target_ok)"
    truncate -s 0 "$TARGET" && truncate -s "$((MIB * 1024 * 1024))" "$TARGET"
done

# ---------------------------------------------------------------------------------------
echo "== 4. mender-bridge daemon, swupdate backend, artifact from mender-bridge sim (HTTPS on loopback, compression $COMPRESSION)"
start_sim "$SIM_BIN" --no-next-v2
for n in 1 2; do
    mender-artifact write module-image -T swu -n "bench-swu-$n" -t bench-dev --compression "$COMPRESSION" \
        -f "$W/update.swu" -o "$TMP/swu.mender" >"$TMP/write.log" 2>&1 || { cat "$TMP/write.log" >&2; exit 1; }
    api -H 'Expect:' -T "$TMP/swu.mender" -X POST "$M/artifacts" >/dev/null
    rm -f "$TMP/swu.mender"
done
mender-artifact write module-image -T swu -n bench-swu-small -t bench-dev --compression "$COMPRESSION" \
    -f "$W/small.swu" -o "$TMP/small.mender" >"$TMP/write.log" 2>&1 || { cat "$TMP/write.log" >&2; exit 1; }
api -H 'Expect:' -T "$TMP/small.mender" -X POST "$M/artifacts" >/dev/null
api "$M/artifacts" | jq -r '.[] | "   \(.name): \(.payload_type), \(.size / 1048576 * 10 | round / 10) MiB"'

B=$TMP/bridge
mkdir -p "$B/data" "$B/inventory" "$B/scripts" "$B/tmp"
printf 'artifact_name=bench-0\n' >"$B/artifact_info"
printf 'device_type=bench-dev\n' >"$B/data/device_type"
printf '#!/bin/sh\necho mac=%s\n' "$MAC" >"$B/identity"
chmod 755 "$B/identity"
jq -n --arg url "$URL" --arg ca "$CA" --arg dt "$B/data/device_type" '{
    ServerURL: $url, ServerCertificate: $ca, DeviceTypeFile: $dt,
    UpdatePollIntervalSeconds: 1, InventoryPollIntervalSeconds: 5, RetryPollIntervalSeconds: 1
}' >"$B/mender.conf"
cat >"$B/bridge.toml" <<EOF
identity_script = "$B/identity"
inventory_script_dir = "$B/inventory"
state_scripts_dir = "$B/scripts"
artifact_info_file = "$B/artifact_info"

[backend]
type = "swupdate"

[backend.swupdate]
control_socket = "$W/run/sockinstctrl"
progress_socket = "$W/run/swupdateprog"
reboot = false
ustate = false
EOF
start_bridge() {
    TMPDIR=$B/tmp "$BIN" -c "$B/mender.conf" --bridge-config "$B/bridge.toml" -d "$B/data" -l info daemon \
        </dev/null >>"$B/daemon.log" 2>&1 &
    BR_PID=$!
    PIDS+=("$BR_PID")
}
start_bridge
find_pending() {
    ID=$(api "$M/devices" | jq -r --arg mac "$MAC" \
        'first(.[] | select(.identity_data.mac == $mac and .status == "pending") | .id) // empty')
    [ -n "$ID" ]
}
wait_for "the bridge to ask for admission" 90 find_pending || { show_tail "$B/daemon.log"; exit 1; }
api -X POST "$M/devices/$ID/accept" >/dev/null
has_inventory() { api "$M/devices/$ID/inventory" | jq -e 'any(.[]; .name == "artifact_name")' >/dev/null; }
wait_for "the bridge's inventory" 90 has_inventory || { show_tail "$B/daemon.log"; exit 1; }
sleep 2
echo "   device accepted; idle RSS $(mib "$(proc_kib "$BR_PID" VmRSS)") MiB"

# Deploys artifact $1 to the device, wakes the daemon and polls the dashboard until
# `success`; T_SUCCESS is the time (ns) of the poll that saw it. A failure or 600 s end the
# benchmark.
deploy_and_wait() {
    local dep end js st
    dep=$(api -X POST -H 'content-type: application/json' \
        -d "{\"artifact_name\":\"$1\",\"devices\":[\"$ID\"]}" "$M/deployments" | jq -r .id)
    kill -USR1 "$BR_PID"
    end=$(($(date +%s) + 600))
    while :; do
        T_SUCCESS=$(now_ns)
        js=$(api "$M/deployments/$dep/devices/$ID")
        st=$(jq -r '[.history[].status] | unique | .[]' <<<"$js")
        grep -qx success <<<"$st" && return 0
        if grep -qx failure <<<"$st"; then jq '{history, log}' <<<"$js" >&2; exit 1; fi
        (($(date +%s) < end)) || die "no success after 600 s"
        sleep 0.05
    done
}

BR_TIMES=() BR_WRITES=() BR_SUCC=()
for run in $(seq "$RUNS"); do
    sync
    w0=$(write_bytes "$BR_PID")
    t0=$(now_ns)
    deploy_and_wait "bench-swu-$((2 - run % 2))"
    bt=$(dt "$t0" "$T_SUCCESS")
    w1=$(write_bytes "$BR_PID")
    ts=$(success_after "$t0")
    BR_TIMES+=("$bt") BR_SUCC+=("$(dt "$t0" "$ts")")
    BR_WRITES+=("$((w1 - w0))")
    files=$(find "$B/tmp" "$B/data" -type f -size +64k | wc -l)
    echo "   run $run: creation -> SUCCESS frame $(dt "$t0" "$ts") s, -> dashboard success $bt s; $(target_ok); bridge wrote $((w1 - w0)) bytes to storage;" \
        "files > 64 KiB in its data and temp dirs: $files; VmHWM $(mib "$(proc_kib "$BR_PID" VmHWM)") MiB"
    truncate -s 0 "$TARGET" && truncate -s "$((MIB * 1024 * 1024))" "$TARGET"
done
BR_PEAK=$(proc_kib "$BR_PID" VmHWM)
# The control deployment (64 KiB image), measured the same way.
sync
w0=$(write_bytes "$BR_PID")
deploy_and_wait bench-swu-small
w1=$(write_bytes "$BR_PID")
SMALL_WRITES=$((w1 - w0))
echo "   control: a 64 KiB image; the bridge wrote $SMALL_WRITES bytes to storage"
grep -q 'SWUpdate enforces signed images' "$B/daemon.log" &&
    echo "   route: the probe proved SWUpdate enforces signed images; the payload was streamed" ||
    { echo "   route: NOT streamed (see $B/daemon.log)"; show_tail "$B/daemon.log"; exit 1; }

# ---------------------------------------------------------------------------------------
echo "== 5. the same daemon restarted with mode = \"spool\": the payload is spooled, verified, then streamed into SWUpdate"
kill -TERM "$BR_PID"
wait "$BR_PID" 2>/dev/null || true
printf 'mode = "spool"\n' >>"$B/bridge.toml"
: >"$B/daemon.log"
start_bridge
wait_for "the restarted bridge to authenticate" 60 grep -q 'authenticated' "$B/daemon.log" ||
    { show_tail "$B/daemon.log"; exit 1; }
SP_TIMES=() SP_WRITES=() SP_CANCELLED=() SP_SUCC=()
for run in $(seq "$RUNS"); do
    sync
    w0=$(write_bytes "$BR_PID") c0=$(cancelled_bytes "$BR_PID")
    t0=$(now_ns)
    deploy_and_wait "bench-swu-$((2 - run % 2))"
    bt=$(dt "$t0" "$T_SUCCESS")
    w1=$(write_bytes "$BR_PID") c1=$(cancelled_bytes "$BR_PID")
    ts=$(success_after "$t0")
    SP_TIMES+=("$bt") SP_SUCC+=("$(dt "$t0" "$ts")")
    SP_WRITES+=("$((w1 - w0))") SP_CANCELLED+=("$((c1 - c0))")
    spooled=$(find "$B/data" -path '*swupdate-spool*' -type f | wc -l)
    echo "   run $run: creation -> SUCCESS frame $(dt "$t0" "$ts") s, -> dashboard success $bt s; $(target_ok); bridge wrote $((w1 - w0)) bytes" \
        "(cancelled before reaching the disk: $((c1 - c0))); spool files left: $spooled; VmHWM $(mib "$(proc_kib "$BR_PID" VmHWM)") MiB"
    truncate -s 0 "$TARGET" && truncate -s "$((MIB * 1024 * 1024))" "$TARGET"
done
SP_PEAK=$(proc_kib "$BR_PID" VmHWM)
grep -q 'the payload is spooled in' "$B/daemon.log" ||
    { echo "   route: NOT spooled"; show_tail "$B/daemon.log"; exit 1; }
STARTS=$(awk '$2 == 1' "$TMP/frames" | wc -l)
SUCCESSES=$(awk '$2 == 3' "$TMP/frames" | wc -l)

# ---------------------------------------------------------------------------------------
CT=$(median "${CL_TIMES[@]}")
CE=$(median "${CL_EXIT[@]}")
BT=$(median "${BR_TIMES[@]}")
BST=$(median "${BR_SUCC[@]}")
ST=$(median "${SP_TIMES[@]}")
SST=$(median "${SP_SUCC[@]}")
awk -v st="$ST" -v stimes="${SP_TIMES[*]}" -v sst="$SST" -v sstimes="${SP_SUCC[*]}" -v speak="$SP_PEAK" \
    -v swmax="$(maximum "${SP_WRITES[@]}")" -v scmax="$(maximum "${SP_CANCELLED[@]}")" \
    -v mib="$MIB" -v runs="$RUNS" -v comp="$COMPRESSION" -v nproc="$(nproc)" \
    -v cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    -v load0="$LOAD_START" -v load1="$(cut -d' ' -f1-3 /proc/loadavg)" \
    -v ct="$CT" -v ctimes="${CL_TIMES[*]}" -v bt="$BT" -v btimes="${BR_TIMES[*]}" \
    -v ce="$CE" -v cetimes="${CL_EXIT[*]}" -v bst="$BST" -v bstimes="${BR_SUCC[*]}" \
    -v peak="$BR_PEAK" -v wmax="$(maximum "${BR_WRITES[@]}")" -v wsmall="$SMALL_WRITES" -v starts="$STARTS" -v successes="$SUCCESSES" -v clfailed="$CL_FAILED" '
function ok(c) { return c ? "met" : "MISSED" }
function row(name, value, unit, target, ratio, verdict) {
    printf "%-46s %8s %-5s  %-22s %6s  %s\n", name, value, unit, target, ratio, verdict
}
BEGIN {
    printf "\n== results: %d MiB random .swu (raw handler into a file), artifact compression %s; median of %d runs\n", mib, comp, runs
    printf "machine: nproc=%d, cpu=%s; load average at start %s, at end %s\n\n", nproc, cpu, load0, load1
    row("figure", "value", "", "target", "ratio", "")
    row("swupdate-client (local disk): -> SUCCESS", sprintf("%.2f", ct), "s", "baseline", "", "runs: " ctimes)
    row("swupdate-client: -> its exit", sprintf("%.2f", ce), "s", "info", sprintf("%.2f", ce / ct), "runs: " cetimes)
    row("stream: deployment creation -> SUCCESS", sprintf("%.2f", bst), "s", "<= 1.2 x baseline", sprintf("%.2f", bst / ct), ok(bst <= 1.2 * ct) "  runs: " bstimes)
    row("stream: creation -> dashboard success", sprintf("%.2f", bt), "s", "<= 1.2 x baseline", sprintf("%.2f", bt / ct), ok(bt <= 1.2 * ct) "  runs: " btimes)
    row("stream: peak RSS (VmHWM)", sprintf("%.1f", peak / 1024), "MiB", "<= 16 MiB", sprintf("%.2f", peak / 1024 / 16), ok(peak <= 16 * 1024))
    row("spool: deployment creation -> SUCCESS", sprintf("%.2f", sst), "s", "info", sprintf("%.2f", sst / ct), "runs: " sstimes)
    row("spool: creation -> dashboard success", sprintf("%.2f", st), "s", "info", sprintf("%.2f", st / ct), "runs: " stimes)
    row("spool: peak RSS (VmHWM, since its restart)", sprintf("%.1f", speak / 1024), "MiB", "<= 16 MiB", sprintf("%.2f", speak / 1024 / 16), ok(speak <= 16 * 1024))
    row("spool: bytes written per deployment (max)", swmax, "bytes", "info", "", "the spool file + bookkeeping; cancelled (never reached the disk): " scmax)
    grow = wmax - wsmall
    row("stream: bytes written, 64 KiB control run", wsmall, "bytes", "info", "", "its deployment record and log (crash-safe state)")
    row("stream: bytes written per deployment (max)", wmax, "bytes", "info", "", "the same bookkeeping")
    row("stream: payload bytes written (max - control)", (grow > 0 ? grow : 0), "bytes", "0 (+-16 KiB pages)", "", ok(grow <= 16384) (grow <= 16384 ? ": nothing grows with the payload" : ""))
    printf "\nSWUpdate frames: %s START, %s SUCCESS (one of each per install); swupdate-client runs made again after a failure: %s\n", starts, successes, clfailed
}'

#!/usr/bin/env bash
# Speed and memory benchmark of the streaming artifact reader.
#
# Builds the release binary, writes a gzip rootfs-image artifact around a random image and
# compares `mender-bridge inspect` (full read, SHA-256 of the payload verified) with the
# shell pipeline doing the same work:
#   tar -xOf A.mender data/0000.tar.gz | gzip -dc | tar -xO | sha256sum
# Each is run 3 times; the best wall time counts. Peak RSS of mender-bridge comes from
# /usr/bin/time -f %M (the `time` package is installed if missing).
#
# Targets: ratio (bridge MiB/s / baseline MiB/s) >= 1.0, bridge peak RSS <= 16 MiB.
# The script reports; it does not assert (exit status is non-zero only if something broke).
#
# Environment: BENCH_MIB  size of the random image in MiB (default 256)
#              BENCH_RUNS runs of each command (default 3)
set -euo pipefail
shopt -s inherit_errexit # a failing run inside $(...) stops the script

MIB=${BENCH_MIB:-256}
RUNS=${BENCH_RUNS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/release/mender-bridge

if ! [[ $MIB =~ ^[1-9][0-9]*$ ]]; then
    echo "bench-reader: BENCH_MIB must be a positive integer, got '$MIB'" >&2
    exit 2
fi
if ! [[ $RUNS =~ ^[1-9][0-9]*$ ]]; then
    echo "bench-reader: BENCH_RUNS must be a positive integer, got '$RUNS'" >&2
    exit 2
fi
for tool in mender-artifact gzip tar sha256sum awk; do
    command -v "$tool" >/dev/null || { echo "bench-reader: '$tool' not found" >&2; exit 2; }
done

# GNU time for the peak RSS; install it once if missing.
if ! [ -x /usr/bin/time ]; then
    echo "bench-reader: installing the 'time' package for /usr/bin/time" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1; then
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
    fi
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-reader.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

echo "== building (cargo build --release)"
(cd "$ROOT" && cargo build --release --quiet)

echo "== writing a ${MIB} MiB random image and its gzip artifact"
head -c "$((MIB * 1024 * 1024))" /dev/urandom >"$TMP/IMG"
if ! mender-artifact write rootfs-image -t bench -n bench-1 -f "$TMP/IMG" -o "$TMP/A.mender" \
    >"$TMP/write.log" 2>&1; then
    cat "$TMP/write.log" >&2
    exit 1
fi
rm -f "$TMP/IMG" # the payload is in the artifact; no need to keep two copies in the page cache
cat "$TMP/A.mender" >/dev/null # warm the page cache so every run reads from memory

now_ns() { date +%s%N; }

# Wall seconds of one run of "$@", on stdout.
wall() {
    local t0 t1
    t0=$(now_ns)
    "$@"
    t1=$(now_ns)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", (b - a) / 1e9 }'
}

baseline() {
    tar -xOf "$TMP/A.mender" data/0000.tar.gz | gzip -dc | tar -xO | sha256sum >/dev/null
}

bridge() {
    /usr/bin/time -f %M -o "$TMP/rss" "$BIN" inspect "$TMP/A.mender" >/dev/null
}

min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'; }

echo "== measuring ($RUNS runs each, best wall time counts)"
best_base= best_bridge= peak_kib=0
for i in $(seq "$RUNS"); do
    t=$(wall baseline)
    best_base=$(min "$best_base" "$t")
    u=$(wall bridge)
    best_bridge=$(min "$best_bridge" "$u")
    kib=$(tail -n1 "$TMP/rss")
    ((kib > peak_kib)) && peak_kib=$kib
    printf '   run %d: baseline %.3f s, bridge %.3f s, bridge RSS %d KiB\n' "$i" "$t" "$u" "$kib"
done

artifact_mib=$(awk -v b="$(stat -c %s "$TMP/A.mender")" 'BEGIN { printf "%.1f", b / 1048576 }')
awk -v mib="$MIB" -v tb="$best_base" -v tr="$best_bridge" -v kib="$peak_kib" \
    -v nproc="$(nproc)" -v amib="$artifact_mib" \
    -v cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    -v shani="$(grep -qw sha_ni /proc/cpuinfo && echo yes || echo no)" '
BEGIN {
    base = mib / tb; br = mib / tr; ratio = br / base; rss = kib / 1024
    printf "\n== results (payload %d MiB, artifact %s MiB, best of runs)\n", mib, amib
    printf "machine:        nproc=%d, cpu=%s, sha_ni=%s\n", nproc, cpu, shani
    printf "baseline:       %8.1f MiB/s  (%.3f s)  tar | gzip -dc | tar | sha256sum\n", base, tb
    printf "bridge:         %8.1f MiB/s  (%.3f s)  mender-bridge inspect\n", br, tr
    printf "ratio:          %8.2f        (bridge / baseline, target >= 1.0) %s\n", ratio, (ratio >= 1.0 ? "ok" : "BELOW TARGET")
    printf "bridge peak RSS:%8.1f MiB     (target <= 16 MiB) %s\n", rss, (rss <= 16 ? "ok" : "ABOVE TARGET")
}'

#!/usr/bin/env bash
# Smoke run of the artifact reader fuzz target (fuzz/fuzz_targets/artifact_reader.rs).
#
# 1. installs cargo-fuzz if it is missing (cargo install cargo-fuzz --locked);
# 2. writes seed artifacts with mender-artifact into fuzz/corpus/artifact_reader/ (git-ignored):
#    gzip / none / lzma rootfs-image, module-image, bootstrap-artifact, format v2, and one
#    signed with the test key fuzz/keys/test-p256.key and carrying a state script;
# 3. checks that fuzz/Cargo.lock is current (cargo fuzz has no --locked: a stale lock is an
#    error here, never rewritten, so a run leaves the tree as it found it);
# 4. builds the target and runs libFuzzer for FUZZ_SECONDS seconds.
#
# The target reads with the artifact crate alone (artifact/, without its writer).
#
# Exit status: 0 when the run ended without a finding; non-zero when the fuzzer found a crash,
# panic, timeout or OOM (the reproducer is written to fuzz/artifacts/artifact_reader/), or when
# something else failed. Reproduce a finding with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run artifact_reader fuzz/artifacts/artifact_reader/<file>
# (from the repository root).
#
# The stable toolchain is used: cargo-fuzz needs nightly-only flags (-Zsanitizer=address),
# which RUSTC_BOOTSTRAP=1 unlocks on stable.
#
# cargo fuzz builds with optimisations, AddressSanitizer, debug assertions and overflow checks
# (its defaults), so an integer overflow is a finding too.
#
# Environment: FUZZ_SECONDS  length of the run in seconds (default 60)
set -euo pipefail

SECONDS_TO_RUN=${FUZZ_SECONDS:-60}
TARGET=artifact_reader
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=$ROOT/fuzz/corpus/$TARGET
ARTIFACTS=$ROOT/fuzz/artifacts/$TARGET
KEY=$ROOT/fuzz/keys/test-p256.key

if ! [[ $SECONDS_TO_RUN =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz-smoke: FUZZ_SECONDS must be a positive integer, got '$SECONDS_TO_RUN'" >&2
    exit 2
fi
for tool in cargo mender-artifact head; do
    command -v "$tool" >/dev/null || { echo "fuzz-smoke: '$tool' not found" >&2; exit 2; }
done

export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-smoke.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# mender-artifact prints progress bars on stdout/stderr; show them only when it fails.
ma() {
    if ! mender-artifact "$@" >"$TMP/ma.log" 2>&1; then
        cat "$TMP/ma.log" >&2
        echo "fuzz-smoke: mender-artifact $* failed" >&2
        exit 1
    fi
}

echo "== writing seed artifacts into ${CORPUS#"$ROOT"/}"
mkdir -p "$CORPUS" "$ARTIFACTS"
# Small payloads: libFuzzer truncates inputs to -max_len (64 KiB).
head -c 4096 /dev/urandom >"$TMP/image"
printf '#!/bin/sh\necho fuzz\n' >"$TMP/ArtifactInstall_Enter_01_fuzz"
S=$TMP/seeds
mkdir -p "$S"
ma write rootfs-image -t fuzz-device -n seed-gzip -f "$TMP/image" -o "$S/rootfs-gzip.mender"
ma write rootfs-image -t fuzz-device -n seed-none --compression none -f "$TMP/image" \
    -o "$S/rootfs-none.mender"
ma write rootfs-image -t fuzz-device -n seed-lzma --compression lzma -f "$TMP/image" \
    -o "$S/rootfs-lzma.mender"
ma write module-image -t fuzz-device -n seed-module -T fuzz-module -f "$TMP/image" \
    -f "$TMP/ArtifactInstall_Enter_01_fuzz" -o "$S/module.mender"
ma write bootstrap-artifact -t fuzz-device -n seed-bootstrap -o "$S/bootstrap.mender"
ma write rootfs-image -v 2 -t fuzz-device -n seed-v2 -f "$TMP/image" -o "$S/rootfs-v2.mender"
ma write rootfs-image -t fuzz-device -n seed-signed -k "$KEY" -s "$TMP/ArtifactInstall_Enter_01_fuzz" \
    -f "$TMP/image" -o "$S/rootfs-signed-script.mender"
# Fixed names: re-running replaces the seeds instead of piling up copies; whatever the fuzzer
# added to the corpus in earlier runs is kept.
for f in "$S"/*.mender; do
    cp "$f" "$CORPUS/seed-$(basename "$f" .mender)"
done
echo "   $(find "$CORPUS" -maxdepth 1 -type f | wc -l) inputs in the corpus"

echo "== checking fuzz/Cargo.lock (cargo metadata --locked)"
if ! (cd "$ROOT/fuzz" && cargo metadata --locked --format-version 1 >/dev/null); then
    echo "fuzz-smoke: fuzz/Cargo.lock is out of date (a dependency of the artifact crate" \
        "changed); update it with '(cd fuzz && cargo update --workspace)' and commit it" >&2
    exit 1
fi

echo "== building the fuzz target (cargo fuzz build $TARGET)"
(cd "$ROOT" && cargo fuzz build "$TARGET")

echo "== fuzzing for ${SECONDS_TO_RUN}s"
status=0
(cd "$ROOT" && cargo fuzz run "$TARGET" "$CORPUS" -- \
    -max_total_time="$SECONDS_TO_RUN" \
    -max_len=65536 \
    -rss_limit_mb=2048 \
    -timeout=10 \
    -print_final_stats=1) || status=$?

if [ "$status" -ne 0 ]; then
    echo "fuzz-smoke: the fuzzer stopped with status $status; reproducers in ${ARTIFACTS#"$ROOT"/}:" >&2
    ls -l "$ARTIFACTS" >&2 || true
    exit "$status"
fi
echo "== no crash in ${SECONDS_TO_RUN}s"

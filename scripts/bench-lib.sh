# Helpers shared by the benchmark scripts (bench-deploy.sh, bench-rauc.sh, bench-swupdate.sh,
# bench-modules.sh).
# Sourced after the script sets BENCH (its name, for messages and the temp dir).
# bench_setup makes $TMP and stops every process in PIDS, then removes $TMP, on exit.

die() { echo "$BENCH: $*" >&2; exit 1; }

bench_setup() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/$BENCH.XXXXXX")
    PIDS=()
    trap cleanup EXIT
}
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$TMP"
}

now_ns() { date +%s%N; }
# Seconds between two now_ns values.
dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# A field (VmHWM, VmRSS, RssAnon, RssFile) of /proc/PID/status, in KiB.
proc_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
median() { tr ' ' '\n' <<<"$*" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maximum() { tr ' ' '\n' <<<"$*" | sort -n | tail -n1; }
# Polls "$@" every 0.2 s until it succeeds; fails after $2 seconds.
wait_for() {
    local what=$1 limit=$2 end
    shift 2
    end=$(($(date +%s) + limit))
    until "$@"; do
        (($(date +%s) < end)) || { echo "$BENCH: timed out after ${limit}s waiting for $what" >&2; return 1; }
        sleep 0.2
    done
}
# Drops a reaped process from the cleanup list (its id may be reused).
forget() {
    local p keep=()
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
# TERM, then wait (KILL after 30 s).
stop_pid() {
    local p=$1
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    forget "$p"
}
show_tail() { echo "--- last lines of $1:" >&2; tail -n 30 "$1" >&2 || true; }

# Starts `$1 sim` on loopback with its state in $TMP/sim (further arguments go to `sim`);
# sets SIM_PID, URL, CA and M (the management API under $URL/api/sim).
start_sim() {
    local bin=$1
    shift
    mkdir -p "$TMP/sim"
    "$bin" sim --listen 127.0.0.1:0 --state "$TMP/sim" "$@" >"$TMP/sim.out" 2>"$TMP/sim.err" &
    SIM_PID=$!
    PIDS+=("$SIM_PID")
    wait_for "the simulator" 30 grep -q '^mender-bridge sim listening on ' "$TMP/sim.out" ||
        { show_tail "$TMP/sim.err"; exit 1; }
    URL=$(sed -n 's/^mender-bridge sim listening on //p' "$TMP/sim.out")
    CA=$TMP/sim/ca.pem
    M=$URL/api/sim
}
# curl against the simulator started by start_sim (its CA).
api() { curl -sS --fail-with-body --cacert "$CA" "$@"; }

# Follows deployment $1 of device $2 from t0 ($3, ns) until status $4 or failure shows in its
# history, for at most $5 s; SEEN[status] = seconds from t0 to the sending of the first poll
# that showed it.
declare -A SEEN
follow() {
    local dep=$1 dev=$2 start=$3 stop=$4 limit=$5 js s statuses t
    SEEN=()
    local end=$(($(date +%s) + limit))
    while :; do
        t=$(now_ns)
        js=$(api "$M/deployments/$dep/devices/$dev")
        statuses=$(jq -r '[.history[].status] | unique | .[]' <<<"$js")
        for s in $statuses; do
            [ -n "${SEEN[$s]:-}" ] || SEEN[$s]=$(dt "$start" "$t")
        done
        if grep -qx "$stop" <<<"$statuses"; then return 0; fi
        if grep -qx failure <<<"$statuses"; then
            echo "$BENCH: the deployment failed; history and log:" >&2
            jq '{history, log}' <<<"$js" >&2
            return 1
        fi
        (($(date +%s) < end)) || { echo "$BENCH: no '$stop' after ${limit}s" >&2; jq .history <<<"$js" >&2; return 1; }
        sleep 0.05
    done
}

# Device id: its inventory has artifact_name (the device reported at least once).
has_inventory() {
    api "$M/devices/$1/inventory" | jq -e 'any(.[]; .name == "artifact_name")' >/dev/null
}

# The statuses seen so far with their times, from the associative array SEEN.
seen_list() {
    local s out=
    for s in downloading installing rebooting success; do
        [ -z "${SEEN[$s]:-}" ] || out+="$s ${SEEN[$s]}, "
    done
    echo "${out%, }"
}

# Uploads artifact file $1 to the simulator, then removes it (the sim keeps its own copy).
upload() {
    api -H 'Expect:' -T "$1" -X POST "$M/artifacts" >/dev/null
    rm -f "$1"
}

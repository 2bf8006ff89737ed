#!/usr/bin/env bash
# The Portcullis benchmark (docs/performance.md). One command:
#
#   bench/run.sh                      # SQLite, a fresh database in a temporary directory
#   bench/run.sh --postgres URL       # PostgreSQL: creates a fresh database on URL's server, drops it after
#
# Builds in release mode, starts the server pinned to core 0 and the load generator on core 1
# (when the machine has two cores and taskset; on PostgreSQL the bench database's backends go to
# the load generator's core too), measures each scenario for a fixed time and
# prints one line per scenario with the targets of issue 6 marked PASS or MISS. The same run
# measures the machine: `openssl speed` on the server's core before and after the scenarios (the
# higher reading is the signing limit), and the floor: an empty axum server (bench/src/floor.rs)
# pinned and loaded the same way.
#
# Environment: BENCH_WARMUP (s, default 2), BENCH_DURATION (s, default 8), BENCH_CONNECTIONS
# (default 32), BENCH_STORM_CONNECTIONS (default 4), BENCH_DEVICES (default 2000: devices polling
# at their 5 s interval in `polls`, beside cc), BENCH_PORT (default 18080),
# BENCH_SCENARIOS (default: all, space-separated), BENCH_ROUNDS (default 1: with more, each
# scenario is measured that many times and the round with the median rate is reported),
# BENCH_POLICY_RULES (default 0: an access policy of that many rules in front of every client),
# BENCH_NO_BUILD=1 to skip the build, BENCH_PIN_POSTGRES=0 to leave PostgreSQL's backends where
# the kernel puts them (on both cores, the server's included), BENCH_BIN=PATH to measure another
# build of the server (an A/B: run it alternately with two binaries, e.g. one built from the
# commit before a change).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

PG_URL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --postgres) PG_URL="${2:?--postgres needs a URL}"; shift 2 ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "bench/run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

WARMUP=${BENCH_WARMUP:-2}
DURATION=${BENCH_DURATION:-8}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
STORM_CONNECTIONS=${BENCH_STORM_CONNECTIONS:-4}
PORT=${BENCH_PORT:-18080}
ROUNDS=${BENCH_ROUNDS:-1}
SCENARIOS=${BENCH_SCENARIOS:-"cc es256 code refresh userinfo introspect keys discovery storm polls cc-pkjwt cc-dpop"}
DEVICES=${BENCH_DEVICES:-2000}

if [ -z "${BENCH_NO_BUILD:-}" ]; then
    echo "== building (release)" >&2
    cargo build --release --quiet -p portcullis --bin portcullis -p portcullis-bench --bin loadgen --bin floor
fi
BIN="${BENCH_BIN:-$ROOT/target/release/portcullis}"
LOADGEN="$ROOT/target/release/loadgen"
FLOOR="$ROOT/target/release/floor"

# One core for the server, the other for the load generator, when we can.
SERVER_PIN=()
LOADGEN_PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SERVER_PIN=(taskset -c 0)
    LOADGEN_PIN=(taskset -c 1)
    PINNING="server on core 0, load generator on core 1"
else
    PINNING="not pinned (needs taskset and 2 cores)"
fi

WORK=$(mktemp -d)
SERVER_PID=""
PG_DB=""
cleanup() {
    if [ -n "${PIN_LOOP_PID:-}" ]; then kill "$PIN_LOOP_PID" 2>/dev/null || true; fi
    if [ -n "${FLOOR_PID:-}" ]; then kill "$FLOOR_PID" 2>/dev/null || true; fi
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$PG_DB" ]; then psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "$PG_URL" ]; then
    PG_DB="portcullis_bench_$$"
    psql "$PG_URL" -qc "CREATE DATABASE $PG_DB" >/dev/null
    export PORTCULLIS_DATABASE_URL="${PG_URL%/*}/$PG_DB"
    BACKEND=postgres
else
    export PORTCULLIS_DATABASE_URL="sqlite://$WORK/bench.db"
    BACKEND=sqlite
fi
BASE="http://127.0.0.1:$PORT"
export PORTCULLIS_ISSUER="$BASE" PORTCULLIS_LISTEN="127.0.0.1:$PORT"
# The real defaults for argon2 (the storm is about it) and logging (info: a line per token).
unset PORTCULLIS_PASSWORDS_ARGON2_MEMORY_KIB PORTCULLIS_PASSWORDS_ARGON2_ITERATIONS PORTCULLIS_LOG_LEVEL
# The rate limits stay on (their cost is measured) but far above what one benchmark client and
# one user send: the defaults would answer most requests 429 within the first second.
export PORTCULLIS_RATE_LIMITS_TOKEN_PER_CLIENT=1000000000
export PORTCULLIS_RATE_LIMITS_SIGN_IN_PER_IP=1000000000
export PORTCULLIS_RATE_LIMITS_SIGN_IN_PER_USERNAME=1000000000
export PORTCULLIS_RATE_LIMITS_SIGN_IN_ATTEMPTS_PER_IP=1000000000
export PORTCULLIS_RATE_LIMITS_INTERACTIONS_PER_IP=1000000000

json_field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n1; }

echo "== setting up ($BACKEND)" >&2
"$BIN" migrate >/dev/null
CC_JSON=$("$BIN" client create --server default --name bench-service \
    --grant-type client_credentials --scope bench.read)
CC_ID=$(echo "$CC_JSON" | tr -d '\n' | json_field client_id)
CC_SECRET=$(echo "$CC_JSON" | tr -d '\n' | json_field client_secret)
WEB_JSON=$("$BIN" client create --server default --name bench-web --first-party \
    --grant-type authorization_code --grant-type refresh_token --grant-type password \
    --redirect-uri http://127.0.0.1:9/callback --scope bench.read)
WEB_ID=$(echo "$WEB_JSON" | tr -d '\n' | json_field client_id)
WEB_SECRET=$(echo "$WEB_JSON" | tr -d '\n' | json_field client_secret)
DEVICE_JSON=$("$BIN" client create --server default --name bench-device --public \
    --grant-type device_code)
DEVICE_ID=$(echo "$DEVICE_JSON" | tr -d '\n' | json_field client_id)
# High-assurance clients (issue 21): a private_key_jwt client with an Ed25519 key (kid bench).
openssl genpkey -algorithm ed25519 -out "$WORK/pkjwt.pem"
openssl pkey -in "$WORK/pkjwt.pem" -outform DER -out "$WORK/pkjwt.der"
PKJWT_X=$(openssl pkey -in "$WORK/pkjwt.pem" -pubout -outform DER | tail -c 32 \
    | openssl base64 -A | tr '+/' '-_' | tr -d '=')
PKJWT_JSON=$("$BIN" client create --server default --name bench-pkjwt \
    --grant-type client_credentials --scope bench.read --auth-method private_key_jwt \
    --jwks "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"bench\",\"x\":\"$PKJWT_X\"}]}")
PKJWT_ID=$(echo "$PKJWT_JSON" | tr -d '\n' | json_field client_id)
USERNAME=bench
PASSWORD="bench-password-$$-long-enough"
printf '%s\n' "$PASSWORD" | "$BIN" user create --username "$USERNAME" --password-stdin \
    --email bench@example.com --email-verified --name "Bench User" >/dev/null

# BENCH_POLICY_RULES=N (issue 17): an access policy of N rules in front of every client, with
# the bench user in a group. The first N-1 rules name a group nobody is in (so each is
# evaluated, and the user's groups read), the last allows everyone. Compare a run with 0 and
# one with 10.
POLICY_RULES=${BENCH_POLICY_RULES:-0}
if [ "$POLICY_RULES" -gt 0 ]; then
    "$BIN" group create --name bench-users >/dev/null
    "$BIN" group add-member bench-users --user "$USERNAME" >/dev/null
    "$BIN" group create --name bench-nobody >/dev/null
    "$BIN" policy create --server default --name bench --all-clients >/dev/null
    for i in $(seq 1 $((POLICY_RULES - 1))); do
        "$BIN" rule create --server default --policy bench --name "r$i" \
            --group bench-nobody --grant-type password >/dev/null
    done
    "$BIN" rule create --server default --policy bench --name last --everyone \
        --access-token-ttl 1h >/dev/null
fi

# ES256 needs `server create --signing-alg` (another change); without it the scenario is skipped.
ES_NOTE=""
if "$BIN" server create --help 2>/dev/null | grep -q -- '--signing-alg'; then
    "$BIN" server create --id bench-es --signing-alg ES256 >/dev/null
    ES_JSON=$("$BIN" client create --server bench-es --name bench-es-service \
        --grant-type client_credentials --scope bench.read)
    ES_ID=$(echo "$ES_JSON" | tr -d '\n' | json_field client_id)
    ES_SECRET=$(echo "$ES_JSON" | tr -d '\n' | json_field client_secret)
else
    ES_NOTE="skipped: server has no --signing-alg"
fi

rsa_speed() { "${SERVER_PIN[@]}" openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6}'; }
ec_speed() { "${SERVER_PIN[@]}" openssl speed -seconds 3 ecdsap256 2>/dev/null | awk '/nistp256\)/ {print $(NF-1)}'; }
max() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { print (a + 0 >= b + 0) ? a : b }'; }

declare -A RPS P50 P99 ERR MEM
# The server's peak RSS (VmHWM, in KiB), and its reset (Linux ≥ 4.0: `5` to clear_refs), so
# that each scenario reports its own peak.
peak_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0; }
reset_peak() { echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null || true; }

# Run the load generator BENCH_ROUNDS times; per scenario keep the round with the median rate
# (its p50 and p99 with it), the errors of all rounds, and the server's peak RSS over them.
measure() { # scenario [loadgen args…]
    local name=$1; shift
    local rounds="$WORK/rounds.$name" round line peak=""
    : >"$rounds"
    [ -n "$SERVER_PID" ] && reset_peak
    for round in $(seq "$ROUNDS"); do
        echo "== $name, round $round of $ROUNDS ($(date -u +%T))" >&2
        "${LOADGEN_PIN[@]}" "$LOADGEN" "$@" 2>>"$WORK/loadgen.err" | while read -r line; do
            case "$line" in RESULT*) ;; *) continue ;; esac
            local s
            s=$(echo "$line" | sed -n 's/.*scenario=\([^ ]*\).*/\1/p')
            [ "$name" = es256 ] && s=es256
            echo "$s $(for k in rps p50_ms p99_ms errors; do echo "$line" | sed -n "s/.* $k=\([^ ]*\).*/\1/p"; done | tr '\n' ' ')"
        done >>"$rounds" || true
    done
    [ -n "$SERVER_PID" ] && peak=$(awk -v k="$(peak_kib)" 'BEGIN { printf "%.1f", k / 1024 }')
    local s
    for s in $(awk '{print $1}' "$rounds" | sort -u); do
        MEM[$s]=${peak:-–}
        local n median errors
        n=$(awk -v s="$s" '$1 == s' "$rounds" | wc -l)
        median=$(awk -v s="$s" '$1 == s' "$rounds" | sort -k2,2 -g | sed -n "$(( (n + 1) / 2 ))p")
        errors=$(awk -v s="$s" '$1 == s { e += $5 } END { print e + 0 }' "$rounds")
        read -r _ RPS[$s] P50[$s] P99[$s] _ <<<"$median"
        ERR[$s]=$errors
    done
}

# Another process on the port would answer in the server's place (and fail every check).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! port_free "$PORT" || ! port_free "$((PORT + 1))"; then
    echo "bench/run.sh: port $PORT or $((PORT + 1)) is already in use (set BENCH_PORT)" >&2
    exit 1
fi
echo "== openssl speed (server's core)" >&2
RSA_BEFORE=$(rsa_speed)
EC_BEFORE=$(ec_speed)

# The floor: an empty axum server, pinned and loaded like Portcullis (bench/src/floor.rs).
FLOOR_PORT=$((PORT + 1))
"${SERVER_PIN[@]}" "$FLOOR" "127.0.0.1:$FLOOR_PORT" 2>>"$WORK/loadgen.err" &
FLOOR_PID=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$FLOOR_PORT") 2>/dev/null && break
    sleep 0.05
done
measure floor --base "http://127.0.0.1:$FLOOR_PORT" --scenario floor \
    --warmup "$WARMUP" --duration "$DURATION" --connections "$CONNECTIONS"
kill "$FLOOR_PID" 2>/dev/null || true
wait "$FLOOR_PID" 2>/dev/null || true
FLOOR_PID=""
FLOOR_RPS=${RPS[floor]:-}

start_server() {
    "${SERVER_PIN[@]}" "$BIN" serve >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
}
# The server we started is the one answering: it is still running once /readyz answers.
server_ready() {
    "$LOADGEN" --base "$BASE" --scenario ready >/dev/null
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "bench/run.sh: the server exited; its log:" >&2
        cat "$WORK/server.log" >&2
        exit 1
    fi
}
stop_server() {
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}

# First start: creates the default server's keys. Then restart on the existing database and
# time how long until /readyz answers.
start_server
server_ready
stop_server
START_NS=$(date +%s%N)
start_server
server_ready
READY_MS=$(( ($(date +%s%N) - START_NS) / 1000000 ))
# Whatever start-up itself peaked at counts too.
RSS_KIB=$(peak_kib)

# PostgreSQL in production runs on its own machine; here its backends would share the
# server's core and bill their work to it. The backends serving the bench database (one per
# pooled connection, opened as the pool grows) go to the load generator's core instead, checked
# every half second so that each is moved during the warm-up that opened it. PostgreSQL's own
# background processes (checkpointer, WAL writer …) are the installation's: they stay unpinned.
PG_PINNING=""
if [ -n "$PG_URL" ] && [ ${#LOADGEN_PIN[@]} -gt 0 ] && [ "${BENCH_PIN_POSTGRES:-1}" != 0 ]; then
    PINNED_LOG="$WORK/pinned"
    : >"$PINNED_LOG"
    pin_backends() {
        local pid
        for pid in $(psql "$PG_URL" -Atc \
            "SELECT pid FROM pg_stat_activity WHERE datname = '$PG_DB'" 2>/dev/null); do
            grep -Eqx "(failed )?$pid" "$PINNED_LOG" && continue
            if taskset -pc 1 "$pid" >/dev/null 2>&1; then echo "$pid" >>"$PINNED_LOG"
            else echo "failed $pid" >>"$PINNED_LOG"; fi
        done
    }
    ( while kill -0 "$SERVER_PID" 2>/dev/null; do pin_backends; sleep 0.5; done ) &
    PIN_LOOP_PID=$!
    taskset -pc 1 "$PIN_LOOP_PID" >/dev/null 2>&1 || true
fi

COMMON_ARGS=(--warmup "$WARMUP" --duration "$DURATION" --connections "$CONNECTIONS")
LG_ARGS=("${COMMON_ARGS[@]}"
    # `--flag=VALUE`: a random secret may begin with `-`, which clap would take for a flag.
    --cc-id="$CC_ID" --cc-secret="$CC_SECRET" --web-id="$WEB_ID" --web-secret="$WEB_SECRET"
    --redirect-uri=http://127.0.0.1:9/callback --username="$USERNAME" --password="$PASSWORD"
    --storm-connections "$STORM_CONNECTIONS" --device-id="$DEVICE_ID" --devices "$DEVICES"
    --pkjwt-id="$PKJWT_ID" --pkjwt-key "$WORK/pkjwt.der")

for scenario in $SCENARIOS; do
    case "$scenario" in
        es256)
            if [ -z "$ES_NOTE" ]; then
                measure es256 --base "$BASE/oauth2/bench-es" --scenario cc "${COMMON_ARGS[@]}" \
                    --cc-id="$ES_ID" --cc-secret="$ES_SECRET"
            fi ;;
        *) measure "$scenario" --base "$BASE" --scenario "$scenario" "${LG_ARGS[@]}" ;;
    esac
done

# The process's peak over the whole run: the highest of start-up's and every scenario's.
for s in "${!MEM[@]}"; do
    RSS_KIB=$(awk -v a="$RSS_KIB" -v m="${MEM[$s]}" 'BEGIN { k = m * 1024; print (k > a) ? k : a }')
done
stop_server

echo "== openssl speed (server's core), again" >&2
RSA_AFTER=$(rsa_speed)
EC_AFTER=$(ec_speed)
# The machine's speed drifts (it is shared): the higher of the two readings is the limit, so no
# ratio is flattered by a slow moment.
RSA_LIMIT=$(max "$RSA_BEFORE" "$RSA_AFTER")
EC_LIMIT=$(max "$EC_BEFORE" "$EC_AFTER")

# The table.
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
verdict() { if "$@"; then echo PASS; else echo MISS; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo
echo "Portcullis benchmark: $BACKEND, $PINNING, $CONNECTIONS connections, ${WARMUP}s warm-up + ${DURATION}s measured per scenario, median of $ROUNDS round(s)"
echo "signing limit (openssl speed, server core, higher of before/after): rsa2048 ${RSA_LIMIT:-?} sign/s ($RSA_BEFORE/$RSA_AFTER), ecdsap256 ${EC_LIMIT:-?} sign/s ($EC_BEFORE/$EC_AFTER)"
echo "floor (empty axum server, same pinning and load): ${FLOOR_RPS:-?} req/s"
if [ -n "${PINNED_LOG:-}" ]; then
    failed=$(grep -c '^failed' "$PINNED_LOG" || true)
    echo "PostgreSQL: $(grep -vc '^failed' "$PINNED_LOG" || true) backends of the bench database pinned to core 1$([ "$failed" -gt 0 ] && echo ", $failed could not be moved (taskset needs permission)"); its background processes unpinned"
elif [ -n "$PG_URL" ]; then
    echo "PostgreSQL: not pinned (BENCH_PIN_POSTGRES=0, or $PINNING)"
fi
printf '%-14s %10s %9s %9s %7s %8s  %-34s %s\n' scenario req/s p50_ms p99_ms errors rss_mib target result
row() { # name target-text verdict [note]
    local n=$1
    printf '%-14s %10s %9s %9s %7s %8s  %-34s %s\n' "$n" "${RPS[$n]:-–}" "${P50[$n]:-–}" "${P99[$n]:-–}" "${ERR[$n]:-–}" "${MEM[$n]:-–}" "$2" "$3"
}
have() { [ -n "${RPS[$1]:-}" ]; }
ok_p99() { le "${P99[$1]}" 25 && [ "${ERR[$1]}" = 0 ]; }
for scenario in $SCENARIOS; do
    case "$scenario" in
        cc)
            have cc && row cc ">= 0.85 x rsa limit, p99 <= 25ms" \
                "$(verdict eval 'ge "$(ratio "${RPS[cc]}" "$RSA_LIMIT")" 0.85 && ok_p99 cc') (ratio $(ratio "${RPS[cc]}" "$RSA_LIMIT"))" ;;
        es256)
            if [ -n "$ES_NOTE" ]; then row es256 "client credentials, ES256" "$ES_NOTE"
            elif have es256; then row es256 ">= 20000 req/s, p99 <= 25ms" \
                "$(verdict eval 'ge "${RPS[es256]}" 20000 && ok_p99 es256') (ratio $(ratio "${RPS[es256]}" "$EC_LIMIT") of ecdsap256)"
            fi ;;
        code|refresh)
            half=$(awk -v l="$RSA_LIMIT" 'BEGIN { print l / 2 }')
            have "$scenario" && row "$scenario" ">= 0.70 x limit/2, p99 <= 25ms" \
                "$(verdict eval 'ge "$(ratio "${RPS[$scenario]}" "$half")" 0.70 && ok_p99 "$scenario"') (ratio $(ratio "${RPS[$scenario]}" "$half") of limit/2)" ;;
        userinfo|introspect)
            have "$scenario" && row "$scenario" ">= 10000 req/s" \
                "$(verdict eval 'ge "${RPS[$scenario]}" 10000 && [ "${ERR[$scenario]}" = 0 ]')" ;;
        keys|discovery)
            have "$scenario" && row "$scenario" ">= 50000 req/s" \
                "$(verdict eval 'ge "${RPS[$scenario]}" 50000 && [ "${ERR[$scenario]}" = 0 ]') (ratio $(ratio "${RPS[$scenario]}" "${FLOOR_RPS:-0}") of floor)" ;;
        storm)
            if have storm-cc; then
                base=${RPS[cc]:-0}
                row storm-cc ">= 0.60 x cc alone" \
                    "$(verdict eval 'ge "$(ratio "${RPS[storm-cc]}" "$base")" 0.60 && ok_p99 storm-cc') (ratio $(ratio "${RPS[storm-cc]}" "$base") of cc)"
                row storm-logins "password grants beside cc" "(argon2 at its defaults)"
            fi ;;
        polls)
            if have polls-cc; then
                base=${RPS[cc]:-0}
                row polls-cc ">= 0.90 x cc alone" \
                    "$(verdict eval 'ge "$(ratio "${RPS[polls-cc]}" "$base")" 0.90 && [ "${ERR[polls-cc]}" = 0 ]') (ratio $(ratio "${RPS[polls-cc]}" "$base") of cc)"
                row polls-device "$DEVICES devices polling every 5 s" \
                    "$(verdict eval '[ "${ERR[polls-device]}" = 0 ]') (every poll authorization_pending)"
            fi ;;
        cc-pkjwt|cc-dpop)
            # Issue 21: one more signature verification (Ed25519) than plain cc.
            base=${RPS[cc]:-0}
            have "$scenario" && row "$scenario" ">= 0.80 x cc alone" \
                "$(verdict eval 'ge "$(ratio "${RPS[$scenario]}" "$base")" 0.80 && [ "${ERR[$scenario]}" = 0 ]') (ratio $(ratio "${RPS[$scenario]}" "$base") of cc)" ;;
    esac
done
# The load generator is a closed loop: by Little's law the mean latency is connections / rate,
# whatever the server does, so the two-signature flows' p99 target needs a fast enough machine.
if have code || have refresh; then
    at_target=$(awk -v c="$CONNECTIONS" -v l="$RSA_LIMIT" 'BEGIN { if (l > 0) printf "%.1f", c * 1000 / (0.35 * l); else print "?" }')
    needed=$(awk -v c="$CONNECTIONS" 'BEGIN { printf "%.0f", c / 0.025 / 0.35 }')
    echo "closed loop, $CONNECTIONS connections: code and refresh at 0.70 x limit/2 have a mean latency of $at_target ms here; p99 <= 25 ms at that rate needs a limit >= $needed sign/s even with no spread"
fi
RSS_MIB=$(awk -v k="${RSS_KIB:-0}" 'BEGIN { printf "%.1f", k / 1024 }')
echo "server peak RSS (VmHWM; start-up and every scenario): ${RSS_MIB} MiB  target <= 64 MiB: $(verdict le "$RSS_MIB" 64)"
echo "ready after start on an existing database: ${READY_MS} ms  target <= 300 ms: $(verdict le "$READY_MS" 300)"
if [ -s "$WORK/loadgen.err" ]; then
    echo "load generator notes:"; sed 's/^/  /' "$WORK/loadgen.err"
fi

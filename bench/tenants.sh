#!/usr/bin/env bash
# Many authorization servers in one deployment (issue 23; docs/performance.md, "Tenants"):
#
#   bench/tenants.sh                  # SQLite, N=10000 servers
#   N=300 bench/tenants.sh            # a quick run
#   bench/tenants.sh --postgres URL   # PostgreSQL: a fresh database on URL's server, dropped after
#
# Prints:
#   - `server create` time per server: the real command, run TENANTS_CREATE_SAMPLES times (default
#     20); the other N - samples servers (and one client_credentials client each) are inserted
#     in bulk with SQL, as the CLI would write them, since 10,000 process starts take minutes;
#   - ready time: `serve` on the N-server database, from start to /readyz 200;
#   - peak RSS (VmHWM) after every server has served discovery, its JWKS and one cc token;
#   - cc rate on the first and the last server against a one-server deployment measured in the
#     same run: same binary, same pinning, same load, both servers started before the first
#     round and warmed the same way, measured in alternation (TENANTS_ROUNDS rounds, default 3,
#     each in another order; the other server is stopped with SIGSTOP meanwhile so its
#     background work does not run on the measured core); the medians are compared;
#   - `server list --limit 100 --after` at the middle and the end of the list;
#   - how long a change to one server (`server update --access-token-ttl`) takes to reach the
#     running server (bounded by cache.refresh_interval, 1 s by default).
#
# Environment: N (servers, default 10000), TENANTS_ALG (ES256 or RS256, default ES256: with RS256
# the walk over every server generates N RSA keys, about a minute per thousand here),
# TENANTS_CREATE_SAMPLES (20), TENANTS_ROUNDS (3), TENANTS_KEEP=1 to keep the databases (and
# print where), BENCH_WARMUP (2), BENCH_DURATION (8), BENCH_CONNECTIONS (32), BENCH_PORT (18080;
# the one-server deployment listens on the next port), BENCH_PIN_POSTGRES=0 to leave
# PostgreSQL's backends unpinned, BENCH_NO_BUILD=1 to skip the release build, BENCH_BIN /
# BENCH_LOADGEN to use other builds.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

PG_URL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --postgres) PG_URL="${2:?--postgres needs a URL}"; shift 2 ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "bench/tenants.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

N=${N:-10000}
ALG=${TENANTS_ALG:-ES256}
SAMPLES=${TENANTS_CREATE_SAMPLES:-20}
ROUNDS=${TENANTS_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-2}
DURATION=${BENCH_DURATION:-8}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
PORT=${BENCH_PORT:-18080}
BASELINE_PORT=$((PORT + 1))
[ "$N" -gt "$SAMPLES" ] || { echo "bench/tenants.sh: N must exceed TENANTS_CREATE_SAMPLES ($SAMPLES)" >&2; exit 2; }
[ "$ROUNDS" -ge 1 ] || { echo "bench/tenants.sh: TENANTS_ROUNDS must be at least 1" >&2; exit 2; }

if [ -z "${BENCH_NO_BUILD:-}" ]; then
    echo "== building (release)" >&2
    cargo build --release --quiet -p portcullis --bin portcullis -p portcullis-bench --bin loadgen
fi
BIN="${BENCH_BIN:-$ROOT/target/release/portcullis}"
LOADGEN="${BENCH_LOADGEN:-$ROOT/target/release/loadgen}"

SERVER_PIN=()
LOADGEN_PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SERVER_PIN=(taskset -c 0)
    LOADGEN_PIN=(taskset -c 1)
    PINNING="servers on core 0, load generator on core 1"
else
    PINNING="not pinned (needs taskset and 2 cores)"
fi

WORK=$(mktemp -d)
SERVER_PID=""
BASELINE_PID=""
PIN_LOOP_PID=""
PG_DBS=()
cleanup() {
    local pid
    for pid in $SERVER_PID $BASELINE_PID; do
        kill -CONT "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    done
    if [ -n "$PIN_LOOP_PID" ]; then kill "$PIN_LOOP_PID" 2>/dev/null || true; fi
    if [ -n "${TENANTS_KEEP:-}" ]; then
        echo "bench/tenants.sh: kept $WORK${PG_DBS[*]:+ and PostgreSQL databases ${PG_DBS[*]}}" >&2
        return
    fi
    for db in "${PG_DBS[@]}"; do psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

BASE="http://127.0.0.1:$PORT"
BASELINE_BASE="http://127.0.0.1:$BASELINE_PORT"
export PORTCULLIS_ISSUER="$BASE" PORTCULLIS_LISTEN="127.0.0.1:$PORT"
export PORTCULLIS_METRICS_ENABLED=false
export PORTCULLIS_LOG_LEVEL=warn
export PORTCULLIS_RATE_LIMITS_TOKEN_PER_CLIENT=1000000000
BACKEND=sqlite
[ -n "$PG_URL" ] && BACKEND=postgres

# A fresh database named $1; sets PORTCULLIS_DATABASE_URL and SQL (a command reading SQL on stdin).
use_database() {
    if [ -n "$PG_URL" ]; then
        local db="portcullis_tenants_$1_$$"
        psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null
        PG_DBS+=("$db")
        export PORTCULLIS_DATABASE_URL="${PG_URL%/*}/$db"
        SQL=(psql -q -v ON_ERROR_STOP=1 "$PORTCULLIS_DATABASE_URL")
    else
        export PORTCULLIS_DATABASE_URL="sqlite://$WORK/$1.db"
        SQL=(sqlite3 "$WORK/$1.db")
    fi
    "$BIN" migrate >/dev/null
}

json_field() { tr -d '\n' | sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n1; }
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }

# The N-server deployment listens on PORT; `start_server baseline` starts the one-server
# deployment on the next port (its issuer, its database), the same binary with the same pinning.
start_server() {
    if [ "${1:-}" = baseline ]; then
        PORTCULLIS_ISSUER="$BASELINE_BASE" PORTCULLIS_LISTEN="127.0.0.1:$BASELINE_PORT" \
            PORTCULLIS_DATABASE_URL="$BASELINE_DATABASE_URL" \
            "${SERVER_PIN[@]}" "$BIN" serve >>"$WORK/baseline.log" 2>&1 &
        BASELINE_PID=$!
        "$LOADGEN" --base "$BASELINE_BASE" --scenario ready >/dev/null
        kill -0 "$BASELINE_PID" 2>/dev/null || { echo "the one-server deployment exited:" >&2; cat "$WORK/baseline.log" >&2; exit 1; }
    else
        "${SERVER_PIN[@]}" "$BIN" serve >>"$WORK/server.log" 2>&1 &
        SERVER_PID=$!
    fi
}
server_ready() {
    "$LOADGEN" --base "$BASE" --scenario ready >/dev/null
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited:" >&2; cat "$WORK/server.log" >&2; exit 1; }
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }
peak_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }

# A cc client on server $1 with the secret printed by the CLI: "id secret".
cc_client() {
    local json
    json=$("$BIN" client create --server "$1" --name "cc-$1" --grant-type client_credentials)
    echo "$(echo "$json" | json_field client_id) $(echo "$json" | json_field client_secret)"
}

cc_rate() { # base id secret -> req/s
    "${LOADGEN_PIN[@]}" "$LOADGEN" --base "$1" --scenario cc --cc-id="$2" --cc-secret="$3" \
        --warmup "$WARMUP" --duration "$DURATION" --connections "$CONNECTIONS" 2>>"$WORK/loadgen.err" |
        sed -n 's/^RESULT.* rps=\([^ ]*\).*/\1/p'
}

# 1. The one-server deployment: one server and its client (started in step 5).
echo "== one-server deployment ($BACKEND, $ALG)" >&2
use_database baseline
BASELINE_DATABASE_URL=$PORTCULLIS_DATABASE_URL
"$BIN" server create --id t00000 --signing-alg "$ALG" >/dev/null
read -r BASE_ID BASE_SECRET <<<"$(cc_client t00000)"
# 2. N servers: SAMPLES through the real command, timed; the rest in bulk.
echo "== creating $N servers" >&2
use_database tenants
start_server; server_ready; stop_server   # the default server and its key, as in production
CREATE_MS=()
for i in $(seq 0 $((SAMPLES - 1))); do
    id=$(printf 't%05d' "$i")
    t=$(now_ns)
    "$BIN" server create --id "$id" --signing-alg "$ALG" >/dev/null
    CREATE_MS+=("$(awk -v ns=$(( $(now_ns) - t )) 'BEGIN { printf "%.1f", ns / 1e6 }')")
done
CREATE_SORTED=$(printf '%s\n' "${CREATE_MS[@]}" | sort -g)
CREATE_MEDIAN=$(echo "$CREATE_SORTED" | sed -n "$(( (SAMPLES + 1) / 2 ))p")
CREATE_MAX=$(echo "$CREATE_SORTED" | tail -n1)
read -r TEMPLATE_ID TEMPLATE_SECRET <<<"$(cc_client t00000)"
LAST=$(printf 't%05d' $((N - 1)))
# Every client gets the template's secret (its SHA-256 is what is stored) and id c-<server>.
cols() { # table -> its columns, comma-separated
    if [ -n "$PG_URL" ]; then
        psql -At "$PORTCULLIS_DATABASE_URL" -c "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = '$1'"
    else
        sqlite3 "$WORK/tenants.db" "SELECT group_concat(name, ',') FROM pragma_table_info('$1')"
    fi
}
SERVER_COLS=$(cols authorization_servers)
CLIENT_COLS=$(cols clients)
# The template rows' values, but for the columns that name the copy.
exprs() { # columns, then `column=expression` overrides; others come from the template `t`
    local cols=$1 out="" col e o; shift
    for col in ${cols//,/ }; do
        e="t.$col"
        for o in "$@"; do [ "${o%%=*}" = "$col" ] && e=${o#*=}; done
        out="${out:+$out, }$e"
    done
    echo "$out"
}
SERVER_EXPRS=$(exprs "$SERVER_COLS" "id=n.id" "name=n.id" "audience='api://' || n.id")
CLIENT_EXPRS=$(exprs "$CLIENT_COLS" "id='c-' || s.id" "server_id=s.id" "name='cc-' || s.id")
if [ -n "$PG_URL" ]; then
    series="SELECT 't' || lpad(g::text, 5, '0') AS id FROM generate_series($SAMPLES, $((N - 1))) AS g"
else
    series="WITH RECURSIVE g(i) AS (SELECT $SAMPLES UNION ALL SELECT i + 1 FROM g WHERE i < $((N - 1))) SELECT printf('t%05d', i) AS id FROM g"
fi
t=$(now_ns)
"${SQL[@]}" <<SQL
INSERT INTO authorization_servers ($SERVER_COLS)
    SELECT $SERVER_EXPRS
    FROM ($series) AS n, authorization_servers t WHERE t.id = 't00000';
INSERT INTO clients ($CLIENT_COLS)
    SELECT $CLIENT_EXPRS
    FROM authorization_servers s, clients t
    WHERE t.id = '$TEMPLATE_ID' AND s.id > 't00000' AND s.id LIKE 't%';
SQL
BULK_MS=$(ms_since "$t")
# PostgreSQL: statistics and the visibility map for the bulk-loaded rows now, as autovacuum
# would have done long ago in a deployment that grew to N servers, rather than in the middle of
# a measurement (it starts on its own after this many inserts).
if [ -n "$PG_URL" ]; then "${SQL[@]}" -c "VACUUM ANALYZE" >/dev/null; fi

# 3. Restart on N servers.
echo "== restart on $N servers" >&2
t=$(now_ns)
start_server; server_ready
READY_MS=$(ms_since "$t")
READY_RSS=$(peak_mib)

# 4. Every server serves discovery, its JWKS and one cc token.
echo "== every server: discovery, JWKS, one cc token" >&2
t=$(now_ns)
python3 - "$BASE" "$N" "$TEMPLATE_ID" "$TEMPLATE_SECRET" <<'PY'
import base64, http.client, sys, threading, urllib.parse
base, n, template_id, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
host = urllib.parse.urlparse(base).netloc
errors = []
def walk(ids):
    conn = http.client.HTTPConnection(host, timeout=30)
    for sid in ids:
        cid = template_id if sid == "t00000" else "c-" + sid
        auth = base64.b64encode(f"{urllib.parse.quote(cid, safe='')}:{urllib.parse.quote(secret, safe='')}".encode()).decode()
        for method, path, body, headers in [
            ("GET", f"/oauth2/{sid}/.well-known/openid-configuration", None, {}),
            ("GET", f"/oauth2/{sid}/keys", None, {}),
            ("POST", f"/oauth2/{sid}/token", "grant_type=client_credentials",
             {"authorization": "Basic " + auth, "content-type": "application/x-www-form-urlencoded"}),
        ]:
            conn.request(method, path, body, headers)
            r = conn.getresponse(); r.read()
            if r.status != 200:
                errors.append(f"{method} {path}: {r.status}")
ids = [f"t{i:05d}" for i in range(n)]
threads = [threading.Thread(target=walk, args=(ids[k::4],)) for k in range(4)]
for t in threads: t.start()
for t in threads: t.join()
if errors:
    print(f"{len(errors)} errors, first: {errors[0]}", file=sys.stderr); sys.exit(1)
PY
WALK_MS=$(ms_since "$t")
WALK_RSS=$(peak_mib)

# 5. cc on the one-server deployment, the first and the last server, in alternation. Both
# deployments run from here on; while one is measured the other is stopped (SIGSTOP), so that
# neither's background work (checkpoints, rotation and housekeeping ticks) runs on the measured
# core, and each round takes the three in another order, so that none is always measured first
# (on a cold machine) or right after the walk's writes. The figures are the medians.
echo "== cc: one-server deployment, first and last server, $ROUNDS round(s) in alternation" >&2
start_server baseline
# The walk inserted N keys and their audit events: on PostgreSQL both databases are vacuumed
# and analysed before the rounds, for the same reason as after the bulk load.
if [ -n "$PG_URL" ]; then
    for db in "${PG_DBS[@]}"; do psql -q "${PG_URL%/*}/$db" -c "VACUUM ANALYZE" >/dev/null; done
fi
# PostgreSQL in production runs on its own machine; here its backends would share the servers'
# core and bill their work to it. As in bench/run.sh, the backends serving the two bench
# databases go to the load generator's core, checked every half second so that each is moved
# during the warm-up that opened it; PostgreSQL's own background processes stay where they are.
PG_PINNING="not pinned"
if [ -n "$PG_URL" ] && [ ${#LOADGEN_PIN[@]} -gt 0 ] && [ "${BENCH_PIN_POSTGRES:-1}" != 0 ]; then
    PINNED_LOG="$WORK/pinned"
    : >"$PINNED_LOG"
    PG_DB_LIST=$(printf "'%s'," "${PG_DBS[@]}")
    pin_backends() {
        local pid
        for pid in $(psql "$PG_URL" -Atc \
            "SELECT pid FROM pg_stat_activity WHERE datname IN (${PG_DB_LIST%,})" 2>/dev/null); do
            grep -Eqx "(failed )?$pid" "$PINNED_LOG" && continue
            if taskset -pc 1 "$pid" >/dev/null 2>&1; then echo "$pid" >>"$PINNED_LOG"
            else echo "failed $pid" >>"$PINNED_LOG"; fi
        done
    }
    ( while kill -0 "$SERVER_PID" 2>/dev/null; do pin_backends; sleep 0.5; done ) &
    PIN_LOOP_PID=$!
    taskset -pc 1 "$PIN_LOOP_PID" >/dev/null 2>&1 || true
fi
MEASURES=(baseline first last)
ROUND_LINES=()
declare -A RPS_OF=()
measure() { # baseline | first | last -> req/s
    case "$1" in
        baseline) kill -STOP "$SERVER_PID"; kill -CONT "$BASELINE_PID"
                  cc_rate "$BASELINE_BASE/oauth2/t00000" "$BASE_ID" "$BASE_SECRET" ;;
        first) kill -STOP "$BASELINE_PID"; kill -CONT "$SERVER_PID"
               cc_rate "$BASE/oauth2/t00000" "$TEMPLATE_ID" "$TEMPLATE_SECRET" ;;
        last) kill -STOP "$BASELINE_PID"; kill -CONT "$SERVER_PID"
              cc_rate "$BASE/oauth2/$LAST" "c-$LAST" "$TEMPLATE_SECRET" ;;
    esac
}
for round in $(seq 0 $((ROUNDS - 1))); do
    line="round $((round + 1)):"
    for k in 0 1 2; do
        m=${MEASURES[$(((round + k) % 3))]}
        rps=$(measure "$m")
        RPS_OF[$m]="${RPS_OF[$m]:-} $rps"
        line="$line $m ${rps:-?}"
    done
    echo "$line" >&2
    ROUND_LINES+=("$line")
done
kill -CONT "$SERVER_PID" "$BASELINE_PID"
kill "$BASELINE_PID"; wait "$BASELINE_PID" 2>/dev/null || true; BASELINE_PID=""
median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
BASELINE_RPS=$(median "${RPS_OF[baseline]}")
FIRST_RPS=$(median "${RPS_OF[first]}")
LAST_RPS=$(median "${RPS_OF[last]}")
PEAK_RSS=$(peak_mib)
if [ -n "${PINNED_LOG:-}" ]; then
    failed=$(grep -c '^failed' "$PINNED_LOG" || true)
    PG_PINNING="$(grep -vc '^failed' "$PINNED_LOG" || true) backends of the two bench databases pinned to core 1"
    if [ "$failed" -gt 0 ]; then PG_PINNING="$PG_PINNING, $failed could not be moved"; fi
    PG_PINNING="$PG_PINNING; its background processes unpinned"
fi

# 6. Paging at N.
page_ms() { local t; t=$(now_ns); "$BIN" server list --limit 100 --after "$1" >/dev/null; ms_since "$t"; }
PAGE_MID_MS=$(page_ms "$(printf 't%05d' $((N / 2)))")
PAGE_END_MS=$(page_ms "$(printf 't%05d' $((N - 101)))")

# 7. A change to the last server, until the running server issues tokens with it.
echo "== propagation of a change" >&2
t=$(now_ns)
"$BIN" server update --id "$LAST" --access-token-ttl 123 >/dev/null
UPDATE_MS=$(ms_since "$t")
PROPAGATION_MS=$(python3 - "$BASE" "$LAST" "c-$LAST" "$TEMPLATE_SECRET" "$t" <<'PY'
import base64, http.client, json, sys, time, urllib.parse
base, sid, cid, secret, started = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
conn = http.client.HTTPConnection(urllib.parse.urlparse(base).netloc, timeout=30)
auth = base64.b64encode(f"{urllib.parse.quote(cid, safe='')}:{urllib.parse.quote(secret, safe='')}".encode()).decode()
deadline = time.time() + 30
while time.time() < deadline:
    conn.request("POST", f"/oauth2/{sid}/token", "grant_type=client_credentials",
                 {"authorization": "Basic " + auth, "content-type": "application/x-www-form-urlencoded"})
    r = conn.getresponse(); body = json.loads(r.read())
    if body.get("expires_in") == 123:
        print((time.time_ns() - started) // 1_000_000); sys.exit(0)
    time.sleep(0.01)
print("timeout"); sys.exit(1)
PY
)
stop_server

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict() { if awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { exit !((op == "<=") ? a + 0 <= b + 0 : a + 0 >= b + 0) }'; then echo PASS; else echo MISS; fi; }
echo
echo "Portcullis tenants benchmark: $BACKEND, N=$N servers ($ALG), $PINNING, cc ${WARMUP}s + ${DURATION}s at $CONNECTIONS connections, median of $ROUNDS alternated round(s)"
if [ -n "$PG_URL" ]; then echo "PostgreSQL: $PG_PINNING"; fi
echo "server create (real command, $SAMPLES runs): median ${CREATE_MEDIAN} ms, max ${CREATE_MAX} ms  target <= 50 ms: $(verdict "$CREATE_MEDIAN" '<=' 50)"
echo "bulk insert of the other $((N - SAMPLES)) servers and $((N - 1)) clients (SQL): ${BULK_MS} ms"
echo "ready after restart on $N servers: ${READY_MS} ms (RSS ${READY_RSS} MiB)  target <= 500 ms: $(verdict "$READY_MS" '<=' 500)"
echo "discovery + JWKS + one cc token on every server: ${WALK_MS} ms; peak RSS after ${WALK_RSS} MiB"
echo "peak RSS over the run: ${PEAK_RSS} MiB  target <= 128 MiB: $(verdict "$PEAK_RSS" '<=' 128)"
printf '%s\n' "${ROUND_LINES[@]}" | sed 's/^/cc /'
echo "cc one-server deployment: ${BASELINE_RPS} req/s"
echo "cc first server (t00000): ${FIRST_RPS} req/s (ratio $(ratio "$FIRST_RPS" "$BASELINE_RPS"))"
echo "cc last server ($LAST): ${LAST_RPS} req/s (ratio $(ratio "$LAST_RPS" "$BASELINE_RPS"))  target >= 0.95: $(verdict "$(ratio "$LAST_RPS" "$BASELINE_RPS")" '>=' 0.95)"
echo "server list --limit 100 (CLI process, start included): after the middle ${PAGE_MID_MS} ms, near the end ${PAGE_END_MS} ms  target <= 50 ms: $(verdict "$PAGE_END_MS" '<=' 50)"
echo "server update: ${UPDATE_MS} ms; the change in the running server's tokens after ${PROPAGATION_MS} ms (cache.refresh_interval 1 s)"
if [ -s "$WORK/loadgen.err" ]; then echo "load generator notes:"; sed 's/^/  /' "$WORK/loadgen.err"; fi

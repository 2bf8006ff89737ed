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
#     same run (same binary, same pinning, same algorithm);
#   - `server list --limit 100 --after` at the middle and the end of the list;
#   - how long a change to one server (`server update --access-token-ttl`) takes to reach the
#     running server (bounded by cache.refresh_interval, 1 s by default).
#
# Environment: N (servers, default 10000), TENANTS_ALG (ES256 or RS256, default ES256: with RS256
# the walk over every server generates N RSA keys, about a minute per thousand here),
# TENANTS_CREATE_SAMPLES (20), BENCH_WARMUP (2), BENCH_DURATION (8), BENCH_CONNECTIONS (32),
# BENCH_PORT (18080), BENCH_NO_BUILD=1 to skip the release build, BENCH_BIN / BENCH_LOADGEN to
# use other builds.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

PG_URL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --postgres) PG_URL="${2:?--postgres needs a URL}"; shift 2 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "bench/tenants.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

N=${N:-10000}
ALG=${TENANTS_ALG:-ES256}
SAMPLES=${TENANTS_CREATE_SAMPLES:-20}
WARMUP=${BENCH_WARMUP:-2}
DURATION=${BENCH_DURATION:-8}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
PORT=${BENCH_PORT:-18080}
[ "$N" -gt "$SAMPLES" ] || { echo "bench/tenants.sh: N must exceed TENANTS_CREATE_SAMPLES ($SAMPLES)" >&2; exit 2; }

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
    PINNING="server on core 0, load generator on core 1"
else
    PINNING="not pinned (needs taskset and 2 cores)"
fi

WORK=$(mktemp -d)
SERVER_PID=""
PG_DBS=()
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    for db in "${PG_DBS[@]}"; do psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

BASE="http://127.0.0.1:$PORT"
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

start_server() {
    "${SERVER_PIN[@]}" "$BIN" serve >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
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

# 1. The one-server baseline.
echo "== one-server baseline ($BACKEND, $ALG)" >&2
use_database baseline
"$BIN" server create --id t00000 --signing-alg "$ALG" >/dev/null
read -r BASE_ID BASE_SECRET <<<"$(cc_client t00000)"
start_server; server_ready
BASELINE_RPS=$(cc_rate "$BASE/oauth2/t00000" "$BASE_ID" "$BASE_SECRET")
stop_server

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

# 5. cc on the first and the last server.
echo "== cc on the first and the last server" >&2
FIRST_RPS=$(cc_rate "$BASE/oauth2/t00000" "$TEMPLATE_ID" "$TEMPLATE_SECRET")
LAST_RPS=$(cc_rate "$BASE/oauth2/$LAST" "c-$LAST" "$TEMPLATE_SECRET")
PEAK_RSS=$(peak_mib)

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
echo "Portcullis tenants benchmark: $BACKEND, N=$N servers ($ALG), $PINNING, cc ${WARMUP}s + ${DURATION}s at $CONNECTIONS connections"
echo "server create (real command, $SAMPLES runs): median ${CREATE_MEDIAN} ms, max ${CREATE_MAX} ms  target <= 50 ms: $(verdict "$CREATE_MEDIAN" '<=' 50)"
echo "bulk insert of the other $((N - SAMPLES)) servers and $((N - 1)) clients (SQL): ${BULK_MS} ms"
echo "ready after restart on $N servers: ${READY_MS} ms (RSS ${READY_RSS} MiB)  target <= 500 ms: $(verdict "$READY_MS" '<=' 500)"
echo "discovery + JWKS + one cc token on every server: ${WALK_MS} ms; peak RSS after ${WALK_RSS} MiB"
echo "peak RSS over the run: ${PEAK_RSS} MiB  target <= 128 MiB: $(verdict "$PEAK_RSS" '<=' 128)"
echo "cc one-server baseline: ${BASELINE_RPS} req/s"
echo "cc first server (t00000): ${FIRST_RPS} req/s (ratio $(ratio "$FIRST_RPS" "$BASELINE_RPS"))"
echo "cc last server ($LAST): ${LAST_RPS} req/s (ratio $(ratio "$LAST_RPS" "$BASELINE_RPS"))  target >= 0.95: $(verdict "$(ratio "$LAST_RPS" "$BASELINE_RPS")" '>=' 0.95)"
echo "server list --limit 100 (CLI process, start included): after the middle ${PAGE_MID_MS} ms, near the end ${PAGE_END_MS} ms  target <= 50 ms: $(verdict "$PAGE_END_MS" '<=' 50)"
echo "server update: ${UPDATE_MS} ms; the change in the running server's tokens after ${PROPAGATION_MS} ms (cache.refresh_interval 1 s)"
if [ -s "$WORK/loadgen.err" ]; then echo "load generator notes:"; sed 's/^/  /' "$WORK/loadgen.err"; fi

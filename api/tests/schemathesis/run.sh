#!/usr/bin/env bash
# Schemathesis against a running `patrol serve`: the OpenAPI document at /api/openapi.json is
# the contract, and every operation is fuzzed (boundary values of each parameter's limits,
# then random valid and invalid values) with a token of each role, a county-wide and a
# station-scoped one per role. The run fails on any 5xx, any status the document does not list
# for the operation, and any answer whose content type or body does not match it.
#
# The server is real: its own Mosquitto on a free port, a simulated fleet publishing live
# positions, and a day of history in the store. `/api/live` is left out (a stream never ends,
# so a fuzzer's request would only time out); its parameters and statuses are tested in
# api/tests/it/http_limits.rs and http_api.rs.
#
# Usage: api/tests/schemathesis/run.sh [SECONDS PER TOKEN]   (from anywhere; default 20)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
per_token="${1:-20}"
patrol="$repo/target/debug/patrol"
venv="$here/.venv"

if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$here/requirements.txt"
fi
[ -x "$patrol" ] || (cd "$repo" && cargo build -q -p api --bin patrol)

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mqtt_port="$(free_port)"
http_port="$(free_port)"

mosquitto -p "$mqtt_port" >/dev/null 2>&1 &
pids+=($!)

"$patrol" generate --fixtures "$repo/fixtures" --store "$work/store" --days 1 --start 2026-11-02 >/dev/null

# A token per role, county-wide and scoped to ST2.
: >"$work/serve.toml"
declare -A tokens
for role in command analyst chief admin; do
  for station in "" ST2; do
    name="$role${station:+@$station}"
    out="$("$patrol" token new --role "$role" ${station:+--station "$station"} --name "$name")"
    tokens[$name]="$(sed -n 's/^token: //p' <<<"$out")"
    grep -v '^token: ' <<<"$out" >>"$work/serve.toml"
  done
done

RUST_LOG=warn "$patrol" serve --config "$work/serve.toml" --fixtures "$repo/fixtures" \
  --store "$work/store" --http "127.0.0.1:$http_port" --mqtt "mqtt://127.0.0.1:$mqtt_port" \
  >"$work/serve.log" 2>&1 &
pids+=($!)
"$patrol" simulate --broker "mqtt://127.0.0.1:$mqtt_port" --fixtures "$repo/fixtures" \
  --duration 3600 >/dev/null 2>&1 &
pids+=($!)

base="http://127.0.0.1:$http_port"
for _ in $(seq 1 100); do
  curl -sf "$base/health" >/dev/null && break
  sleep 0.2
done

# Schemathesis keeps a cache in the working directory: the run's own, not the repository.
cd "$work"
status=0
for name in command analyst chief admin command@ST2 analyst@ST2 chief@ST2 admin@ST2; do
  echo "=== schemathesis as $name"
  "$venv/bin/schemathesis" run "$base/api/openapi.json" \
    --header "Authorization: Bearer ${tokens[$name]}" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --exclude-path /api/live \
    --max-time "$per_token" \
    --request-timeout 100 \
    --seed 17 \
    --no-color \
    --generation-database none \
    --report junit --report-dir "$work/report-$name" || status=1
done
if grep -q -E 'panicked|ERROR' "$work/serve.log"; then
  echo "=== the server logged errors:"
  grep -E 'panicked|ERROR' "$work/serve.log" | head -20
  status=1
fi
exit "$status"

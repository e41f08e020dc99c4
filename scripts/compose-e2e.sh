#!/bin/sh
# Exercises the sample's HTTP contract against the api container of a
# running docker-compose.yml (create, price, stock, read-your-write,
# history, alerts), then kills and restarts the worker while commands
# flow and checks that every product reaches the read model and the stats.
#
#   COMPOSE="docker-compose -p cqrskit" scripts/compose-e2e.sh [BASE_URL]
set -eu
base=${1:-http://127.0.0.1:8080}
compose=${COMPOSE:-docker-compose}
n=${CQRSKIT_E2E_PRODUCTS:-40}
run=$(date +%s)-$$
start=$(date +%s)
since() { echo "$(($(date +%s) - start))s"; }
fail() { echo "compose-e2e: FAIL: $*" >&2; exit 1; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)" 2>/dev/null || echo "(not JSON)"; }
alerts_for() { # ids... -> how many low-stock alerts name them (all pages)
	python3 - "$base" "$@" <<'PY'
import json, sys, urllib.parse, urllib.request
base, ids = sys.argv[1], set(sys.argv[2:])
n, after = 0, ""
while True:
    q = urllib.parse.urlencode({"limit": 500, **({"after": after} if after else {})})
    d = json.load(urllib.request.urlopen(base + "/alerts?" + q))
    n += sum(1 for a in d["alerts"] if a["product_id"] in ids)
    after = d.get("next") or ""
    if not after or not d["alerts"]:
        break
print(n)
PY
}
post() { # status path body [If-Match] -> body; fails on another status
	want=$1; shift
	out=$(curl -s -w '\n%{http_code}' "$base$1" -H 'Content-Type: application/json' ${3:+-H "If-Match: $3"} -d "$2")
	code=$(printf %s "$out" | tail -1)
	[ "$code" = "$want" ] || fail "POST $1 $2: $code, want $want: $(printf %s "$out" | head -1)"
	printf %s "$out" | head -1
}
get() { curl -sf "$base$1" || echo "(GET $1 failed)"; }

id=$(post 201 /products "{\"name\":\"Espresso cup\",\"sku\":\"CUP-$run\",\"price_cents\":450,\"stock\":12}" | json 'd["id"]')
[ -n "$id" ] || fail "create"
post 200 "/products/$id/price" '{"price_cents":500}' 1 >/dev/null
post 412 "/products/$id/price" '{"price_cents":600}' 1 >/dev/null
post 200 "/products/$id/stock" '{"delta":-9}' >/dev/null
p=$(get "/products/$id?min_version=3")
[ "$(printf %s "$p" | json 'd["version"], d["price_cents"], d["stock"]')" = "3 500 3" ] || fail "read-your-write: $p"
[ "$(get "/products/$id/history" | json 'len(d["events"])')" = 3 ] || fail "history of $id has not 3 events"
[ "$(get "/products/$id?at_version=1" | json 'd["price_cents"]')" = 450 ] || fail "at_version=1"
i=0
until [ "$(alerts_for "$id")" = 1 ]; do
	i=$((i + 1)); [ $i -lt 40 ] || fail "no low-stock alert for $id"; sleep 0.5
done
echo "compose-e2e: contract ok (create, If-Match, stock, read-your-write, history, at_version, alert) at $(since)"

before=$(get /stats | json 'd["products"]')
ids=""
for k in $(seq 1 "$n"); do
	if [ "$k" = $((n / 4)) ]; then
		$compose kill worker >/dev/null 2>&1 || fail "kill worker"
		# Down for real while commands flow: no restart policy brings it back.
		! $compose ps --services --filter status=running | grep -qx worker || fail "worker still running after kill"
		echo "compose-e2e: worker killed after $k commands at $(since)"
	fi
	if [ "$k" = $((n * 3 / 4)) ]; then
		$compose start worker >/dev/null 2>&1 || fail "start worker"
		echo "compose-e2e: worker restarted after $k commands at $(since)"
	fi
	pid=$(post 201 /products "{\"name\":\"p$k\",\"sku\":\"E2E-$run-$k\",\"price_cents\":100,\"stock\":10}" | json 'd["id"]')
	post 200 "/products/$pid/stock" '{"delta":-8}' >/dev/null
	[ -n "$pid" ] || fail "create product $k"
	ids="$ids $pid"
done
echo "compose-e2e: $n products sent at $(since)"
for pid in $ids; do
	i=0
	until [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/products/$pid?min_version=2")" = 200 ]; do
		i=$((i + 1)); [ $i -lt 12 ] || fail "product $pid never reached the read model at version 2"
	done
done
i=0
until [ "$(get /stats | json 'd["products"]')" = $((before + n)) ]; do
	i=$((i + 1)); [ $i -lt 60 ] || fail "stats: $(get /stats), want products $((before + n))"; sleep 0.5
done
i=0
until alerts=$(alerts_for $ids) && [ "$alerts" = "$n" ]; do
	i=$((i + 1)); [ $i -lt 40 ] || break; sleep 0.5
done
[ "$alerts" = "$n" ] || fail "$alerts low-stock alerts for the $n products, want $n"
echo "compose-e2e: worker kill ok: all $n products (2 commands each) in the read model, stats and alerts at $(since)"

#!/bin/sh
# Runs docker-compose.yml's api service with a bad value and checks that
# the container stops with the sample's own error and never turns healthy:
#
#   unknown role            --role=boss
#   missing PostgreSQL URL  CQRSKIT_POSTGRES_URL empty (the file sets
#                           CQRSKIT_STORE=postgres, so this is an error,
#                           not a SQLite file of the container's own)
#
# Each case is its own compose project: docker-compose.yml plus a small
# override with the bad value and restart: "no" (the file's
# unless-stopped would restart the container in a loop, each time with the
# same error). The api starts without its dependencies (--no-deps).
#
#   COMPOSE=docker-compose ENGINE=podman scripts/compose-bad-values.sh
set -eu
cd "$(dirname "$0")/.."
compose=${COMPOSE:-docker-compose}
engine=${ENGINE:-podman}
tmp=$(mktemp -d)
projects=""
cleanup() {
	for p in $projects; do
		$compose -p "$p" -f docker-compose.yml down -v >/dev/null 2>&1 || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "compose-bad-values: FAIL: $*" >&2; exit 1; }
# Another port than the running stack's api, in case one is up.
export CQRSKIT_API_PORT=${CQRSKIT_BAD_API_PORT:-18090}

check() { # name want-error override-yaml
	name=$1 want=$2
	project=cqrskit-bad-$name
	projects="$projects $project"
	printf '%s\n' "$3" >"$tmp/$name.yml"
	c="$compose -p $project -f docker-compose.yml -f $tmp/$name.yml"
	$c up -d --no-deps api >"$tmp/$name.up" 2>&1 || { cat "$tmp/$name.up" >&2; fail "$name: compose up"; }
	id=$($c ps -q api)
	[ -n "$id" ] || fail "$name: no api container"
	i=0
	until [ "$($engine inspect -f '{{.State.Status}}' "$id")" = exited ]; do
		i=$((i + 1)); [ $i -lt 60 ] || fail "$name: the api container still runs: $($engine logs "$id" 2>&1 | tail -3)"
		sleep 0.5
	done
	code=$($engine inspect -f '{{.State.ExitCode}}' "$id")
	[ "$code" = 1 ] || fail "$name: exit code $code, want 1"
	logs=$($engine logs "$id" 2>&1)
	case "$logs" in *"$want"*) ;; *) fail "$name: logs do not say \"$want\": $logs" ;; esac
	# The health check never passed, and running it now fails.
	health=$($engine inspect -f '{{.State.Health.Status}}' "$id")
	[ "$health" != healthy ] || fail "$name: health $health"
	if [ "${engine%% *}" = podman ] && $engine healthcheck run "$id" >/dev/null 2>&1; then
		fail "$name: the health check passes"
	fi
	state=$($c ps api | grep -o 'Exit [0-9]*' || true)
	[ "$state" = "Exit 1" ] || fail "$name: compose ps says ${state:-no exit}: $($c ps api)"
	echo "compose-bad-values: $name: compose ps \"$state\", health $health, log: $(printf %s "$logs" | grep -F -e "$want" | head -1)"
}

check unknown-role '--role "boss": want all, api, relay or worker' '
services:
  api:
    restart: "no"
    command: ["--role=boss", "--addr=:8080"]'

check missing-postgres-url '--store=postgres and no --postgres-url' '
services:
  api:
    restart: "no"
    environment:
      CQRSKIT_POSTGRES_URL: ""'
echo "compose-bad-values: ok"

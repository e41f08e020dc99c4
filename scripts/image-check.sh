#!/bin/sh
# Checks the sample's image: it runs with a read-only root filesystem, has
# no shell, answers /healthz and /readyz from the host, and its
# HEALTHCHECK reports healthy.
#
#   scripts/image-check.sh [IMAGE]    (default localhost/cqrskit-sample:dev)
set -eu
image=${1:-localhost/cqrskit-sample:dev}
engine=${CQRSKIT_ENGINE:-podman --runtime runc}
run="$engine run --ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
name=cqrskit-image-check-$$
port=${CQRSKIT_CHECK_PORT:-18080}
fail() { echo "image-check: FAIL: $*" >&2; $engine logs "$name" 2>&1 | tail -20 >&2; $engine rm -f "$name" >/dev/null 2>&1; exit 1; }

if $run --rm --entrypoint /bin/sh "$image" -c true >/dev/null 2>&1; then
	fail "$image has /bin/sh"
fi
# 2>/dev/null: podman without systemd says it cannot schedule the
# health check timer; the check is run by hand below.
$run -d --name "$name" --read-only -p "127.0.0.1:$port:8080" "$image" >/dev/null 2>&1 || fail "cannot start $image"
trap '$engine rm -f "$name" >/dev/null 2>&1' EXIT
for path in /healthz /readyz; do
	i=0
	until code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$path") && [ "$code" = 200 ]; do
		i=$((i + 1)); [ $i -lt 60 ] || fail "$path answered ${code:-nothing}, want 200"
		sleep 0.5
	done
	echo "image-check: $path 200"
done
$engine healthcheck run "$name" >/dev/null || fail "HEALTHCHECK does not pass"
echo "image-check: HEALTHCHECK healthy"
user=$($engine inspect -f '{{.Config.User}}' "$image")
case "$user" in ""|0|0:*|root|root:*) fail "runs as $user" ;; esac
echo "image-check: ok ($image, user $user, read-only root, no shell, $($engine image inspect -f '{{.Size}}' "$image") bytes)"

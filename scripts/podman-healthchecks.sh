#!/bin/sh
# Runs the health checks of running podman containers every 2 seconds.
# Podman schedules them with systemd timers; without systemd (as in this
# kind of sandbox) a container stays "starting" and compose's
# depends_on: condition: service_healthy never passes. Runs until killed.
set -u
while :; do
	for id in $(podman ps -q --filter health=starting) $(podman ps -q --filter health=healthy) $(podman ps -q --filter health=unhealthy); do
		podman healthcheck run "$id" >/dev/null 2>&1 || true
	done
	sleep 2
done

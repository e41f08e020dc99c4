#!/bin/sh
# A stand-in for the official nats image's entrypoint: arguments that
# start with "-" are nats-server's flags.
set -eu
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- nats-server "$@"
fi
exec "$@"

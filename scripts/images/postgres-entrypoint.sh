#!/bin/sh
# A stand-in for the official postgres image's docker-entrypoint.sh, for
# the image scripts/images.sh builds from Debian's postgresql package. It
# keeps the contract tests and compose files rely on:
#
#   POSTGRES_PASSWORD          the superuser's password (required unless
#                              POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER              the superuser (default postgres)
#   POSTGRES_DB                a database created at first start (default
#                              $POSTGRES_USER)
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for TCP clients (default
#                              scram-sha-256, trust without a password)
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   PGDATA                     the cluster (default /var/lib/postgresql/data)
#   /docker-entrypoint-initdb.d/*.sql, *.sh   run once after initdb
#
# As with the official image, a first start runs initdb and a temporary
# server (socket only), so "database system is ready to accept
# connections" is logged twice; Testcontainers waits for the second.
set -eu

if [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
	exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	chmod 3777 /var/run/postgresql
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	user="${POSTGRES_USER:-postgres}"
	db="${POSTGRES_DB:-$user}"
	auth="${POSTGRES_HOST_AUTH_METHOD:-}"
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
		echo >&2 "Error: Database is uninitialized and superuser password is not specified."
		echo >&2 "       You must specify POSTGRES_PASSWORD to a non-empty value for the"
		echo >&2 "       superuser, or set POSTGRES_HOST_AUTH_METHOD=trust."
		exit 1
	fi
	: "${auth:=scram-sha-256}"
	pwfile=$(mktemp)
	printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a word list
	initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \
		--auth-host="$auth" ${POSTGRES_INITDB_ARGS:-} >/dev/null
	rm -f "$pwfile"
	printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

	pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql" start
	if [ "$db" != postgres ]; then
		psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$user" -d postgres -q \
			-c "CREATE DATABASE \"$db\""
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
		*.sh) echo "running $f"; . "$f" ;;
		*.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$user" -d "$db" -q -f "$f" ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop
	echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"

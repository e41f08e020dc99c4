#!/bin/sh
# Builds, only when missing, the local images that stand in for the
# official ones on a machine with no image registry (see
# docs/CONTAINERS.md): a Debian minbase root filesystem from debootstrap,
# and from it a Go build image, a scratch-based runtime image, PostgreSQL
# and NATS from Debian's packages. Names: scripts/local-images.env.
#
#   scripts/images.sh          build what is missing
#   scripts/images.sh --force  rebuild all (the debootstrap cache is kept)
#
# Needs root, podman, debootstrap. The root filesystem is cached in
# $CQRSKIT_IMAGE_CACHE (default /var/cache/cqrskit-images), not in the repo.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/local-images.env"
cache=${CQRSKIT_IMAGE_CACHE:-/var/cache/cqrskit-images}
mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
mirror=${mirror:-http://deb.debian.org/debian}
goroot=${GOROOT_HOST:-/usr/local/go}
force=${1:-}

log() { printf '%s images: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
have() { [ "$force" != --force ] && podman image exists "$1"; }
timed() { # name cmd...: runs cmd, logs its duration
	name=$1; shift
	t0=$(date +%s)
	"$@"
	log "$name built in $(($(date +%s) - t0))s"
}

rootfs="$cache/rootfs-minbase"
base_rootfs() {
	if [ ! -f "$rootfs/.complete" ]; then
		log "debootstrap minbase bookworm from $mirror (about 2-3 minutes)"
		rm -rf "$rootfs"
		mkdir -p "$cache"
		debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
			{ tail -20 "$cache/debootstrap.log" >&2; exit 1; }
		rm -f "$rootfs"/var/cache/apt/archives/*.deb
		touch "$rootfs/.complete"
	fi
}

# derived DIR PACKAGES...: a copy of the root filesystem in DIR with
# Debian's PACKAGES installed (apt in a chroot: the host's network).
derived() {
	dir=$1; shift
	rm -rf "$dir"
	cp -a "$rootfs" "$dir"
	cp /etc/resolv.conf "$dir/etc/resolv.conf"
	printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
	chmod +x "$dir/usr/sbin/policy-rc.d"
	mkdir -p "$dir/etc/postgresql-common"
	echo 'create_main_cluster = false' >"$dir/etc/postgresql-common/createcluster.conf"
	chroot "$dir" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $*" >"$dir.log" 2>&1 ||
		{ tail -20 "$dir.log" >&2; exit 1; }
	chroot "$dir" apt-get clean
	rm -rf "$dir"/var/lib/apt/lists/* "$dir/usr/sbin/policy-rc.d" "$dir/etc/resolv.conf"
}

# import DIR TAG CHANGES...: DIR as a one-layer image.
import_dir() {
	dir=$1 tag=$2; shift 2
	set -- "$@"
	args=""
	for c in "$@"; do args="$args --change=$(printf %s "$c" | sed "s/'/'\\\\''/g; s/^/'/; s/\$/'/")"; done
	eval "tar -C \"\$dir\" -c . | podman import -q $args - \"\$tag\"" >/dev/null
}

build_base() {
	base_rootfs
	import_dir "$rootfs" "$CQRSKIT_BASE_IMAGE" 'CMD ["/bin/bash"]'
}

build_go() {
	base_rootfs
	want=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$here/../go.mod")
	have_go=$("$goroot/bin/go" env GOVERSION)
	case "$have_go" in go"$want"*) ;; *)
		echo "images.sh: $goroot has $have_go; go.mod and $CQRSKIT_GO_IMAGE want go$want" >&2; exit 1 ;;
	esac
	dir="$cache/golang"
	rm -rf "$dir"; cp -a "$rootfs" "$dir"
	mkdir -p "$dir/usr/local" "$dir/go"
	cp -a "$goroot" "$dir/usr/local/go"
	# The host's CA bundle: where the module proxy is reached through a
	# TLS-inspecting gateway, its CA is there and not in Debian's.
	cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
	import_dir "$dir" "$CQRSKIT_GO_IMAGE" \
		'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		'ENV GOPATH=/go' 'ENV GOTOOLCHAIN=local' 'WORKDIR /go' 'CMD ["/bin/bash"]'
	rm -rf "$dir"
}

build_runtime() {
	base_rootfs
	# distroless/static's contract: CA certificates, time zones (none in
	# minbase: Go embeds none either, fine for UTC), /etc/passwd with
	# root and nonroot (65532), a writable /tmp; no shell.
	dir="$cache/static"
	rm -rf "$dir"; mkdir -p "$dir/etc/ssl/certs" "$dir/tmp" "$dir/home/nonroot"
	cp "$rootfs/etc/ssl/certs/ca-certificates.crt" "$dir/etc/ssl/certs/"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$dir/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$dir/etc/group"
	chmod 1777 "$dir/tmp"; chown 65532:65532 "$dir/home/nonroot"
	import_dir "$dir" "$CQRSKIT_RUNTIME_IMAGE" 'USER 65532:65532' 'WORKDIR /home/nonroot' \
		'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'
	rm -rf "$dir"
}

build_postgres() {
	base_rootfs
	dir="$cache/postgres"
	derived "$dir" postgresql-15
	pgbin=/usr/lib/postgresql/15/bin
	# As the official image: listen on all addresses.
	sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" "$dir/usr/share/postgresql/15/postgresql.conf.sample"
	install -m 0755 "$here/images/postgres-entrypoint.sh" "$dir/usr/local/bin/docker-entrypoint.sh"
	mkdir -p "$dir/docker-entrypoint-initdb.d" "$dir/var/lib/postgresql/data"
	import_dir "$dir" "$CQRSKIT_POSTGRES_IMAGE" \
		"ENV PATH=$pgbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		'ENV PGDATA=/var/lib/postgresql/data' 'ENV LANG=C.UTF-8' \
		'VOLUME /var/lib/postgresql/data' 'EXPOSE 5432' 'STOPSIGNAL SIGINT' \
		'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["postgres"]'
	rm -rf "$dir" "$dir.log"
}

build_nats() {
	base_rootfs
	dir="$cache/nats"
	# wget: the health check compose runs, as busybox's in nats:alpine.
	derived "$dir" nats-server wget
	install -m 0755 "$here/images/nats-entrypoint.sh" "$dir/usr/local/bin/docker-entrypoint.sh"
	import_dir "$dir" "$CQRSKIT_NATS_IMAGE" 'EXPOSE 4222' 'EXPOSE 8222' 'EXPOSE 6222' \
		'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["nats-server"]'
	rm -rf "$dir" "$dir.log"
}

have "$CQRSKIT_BASE_IMAGE" || timed "$CQRSKIT_BASE_IMAGE" build_base
have "$CQRSKIT_GO_IMAGE" || timed "$CQRSKIT_GO_IMAGE" build_go
have "$CQRSKIT_RUNTIME_IMAGE" || timed "$CQRSKIT_RUNTIME_IMAGE" build_runtime
have "$CQRSKIT_POSTGRES_IMAGE" || timed "$CQRSKIT_POSTGRES_IMAGE" build_postgres
have "$CQRSKIT_NATS_IMAGE" || timed "$CQRSKIT_NATS_IMAGE" build_nats
log "all present"

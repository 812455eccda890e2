#!/bin/sh
# Installs the Debian/Ubuntu packages that building, testing and `make run` need, when any is
# missing. The usual case (everything present) is one quiet dpkg-query per package, so this
# can run before every `make test` without being noticed.
set -u

# package|why it is needed
PACKAGES='build-essential|C compiler, make and libc headers
pkg-config|finds the compile and link flags of the libraries below
libcivetweb-dev|HTTP library of the admin listener (/metrics, /healthz, /readyz) of both binaries
node-llhttp|C sources of llhttp, the HTTP/1.x parser ingest is built with (/usr/share/llhttp)
libhiredis-dev|Redis client library
libjansson-dev|JSON parser of switchboard-worker
libpq-dev|PostgreSQL client library
libcmocka-dev|unit test framework
libssl-dev|HMAC authentication of webhooks (libcrypto)
libzstd-dev|compression of large bodies in the stream
libcurl4-openssl-dev|HTTP client of vapictl
redis-server|Redis for the integration tests and make run
postgresql|PostgreSQL server binaries for the integration tests and make run
python3|runs the integration tests
python3-pytest|integration test runner
python3-psycopg2|integration tests read PostgreSQL
python3-redis|integration tests read Redis
python3-yaml|the deployment test reads docker-compose.yml
python3-jsonschema|the deployment test validates docker-compose.yml against the Compose schema
docker-compose|the deployment test resolves docker-compose.yml with a real Compose implementation (config only, no Docker engine)
caddy|the deployment test runs the TLS proxy example; on a host running systemd the package also starts caddy.service on port 80 (systemctl disable --now caddy)
systemd|the deployment test checks the unit files with systemd-analyze verify
curl|make run checks the ingest health endpoint and prints a curl example
clang-format|make lint checks the C formatting'

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps: dpkg-query not found; this script installs packages on Debian/Ubuntu only." >&2
	echo "deps: install these by other means:" >&2
	printf '%s\n' "$PACKAGES" | sed 's/^/  /; s/|/: /' >&2
	exit 1
fi

missing=
# The list is split on newlines only (package names and reasons carry no newline).
nl='
'
old_ifs=$IFS
IFS=$nl
for line in $PACKAGES; do
	pkg=${line%%|*}
	installed "$pkg" || missing="$missing $pkg"
done
IFS=$old_ifs
[ -n "$missing" ] || exit 0

echo "deps: installing missing system packages with apt-get:"
IFS=$nl
for line in $PACKAGES; do
	pkg=${line%%|*}
	case " $missing " in
	*" $pkg "*) echo "  $pkg: ${line#*|}" ;;
	esac
done
IFS=$old_ifs

if [ "$(id -u)" -eq 0 ]; then
	as_root=
elif command -v sudo >/dev/null 2>&1; then
	as_root=sudo
	echo "deps: not root, using sudo (it may ask for your password)"
else
	echo "deps: cannot install:$missing (not root and sudo is not installed)." >&2
	echo "deps: run as root: apt-get install$missing" >&2
	exit 1
fi

# Installing the postgresql server packages creates and starts a system cluster (port 5432)
# for each new major version. Nothing here uses it: tests and make run start their own server
# in a private directory. A drop-in read by pg_createcluster (include_dir of
# createcluster.conf) turns that cluster creation off; clusters can still be made on demand
# with pg_createcluster.
dropin=/etc/postgresql-common/createcluster.d/50-no-main-cluster.conf
case " $missing " in
*" postgresql "*)
	if [ ! -e "$dropin" ]; then
		echo "deps: telling postgresql-common not to create (and start) a system cluster:"
		echo "  $dropin"
		# shellcheck disable=SC2016 # expanded by the inner shell
		$as_root sh -c 'mkdir -p "${1%/*}" && printf "%s\n%s\n" \
			"# No main cluster on package install: clusters are created on demand." \
			"create_main_cluster = false" >"$1"' sh "$dropin" || {
			echo "deps: could not write $dropin" >&2
			exit 1
		}
	fi
	;;
esac

# sudo resets the environment, so the front end is passed through env.
run_apt() {
	$as_root env DEBIAN_FRONTEND=noninteractive apt-get "$@"
}

echo "deps: apt-get update"
if ! run_apt update -q; then
	echo "deps: apt-get update failed (network or apt sources); packages not installed:$missing" >&2
	exit 1
fi
echo "deps: apt-get install$missing"
# shellcheck disable=SC2086 # $missing is a list of package names
if ! run_apt install -y -q --no-install-recommends $missing; then
	echo "deps: apt-get install failed; packages not installed:$missing" >&2
	exit 1
fi

still=
for pkg in $missing; do
	installed "$pkg" || still="$still $pkg"
done
if [ -n "$still" ]; then
	echo "deps: still missing after apt-get install:$still" >&2
	exit 1
fi
echo "deps: installed$missing"

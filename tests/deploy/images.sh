#!/bin/bash
# Makes sure podman's storage holds the images docker-compose.yml needs besides its own
# build, where no registry can be reached: debian:bookworm-slim (from debootstrap) and the
# stand-ins for redis:7, postgres:15 and caddy:2 (tests/deploy/standins/, built from Debian's
# packages). Each is built only when missing or when its recipe changed (a label holds the
# recipe's hash), so later runs on the same machine reuse them. An image of that name that
# this script did not build (a real official image, say) is used as it is.
# Needs root, podman, debootstrap and CONTAINERS_CONF set by the caller (compose_up.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LABEL=org.switchboard.standin-recipe
BASE=docker.io/library/debian:bookworm-slim
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

say() { printf 'images: %s\n' "$*"; }

# The label of an image, "none" when it has no such label, "" when there is no image.
recipe_of() {
	podman image exists "$1" || return 0
	local v
	v=$(podman image inspect --format "{{index .Labels \"$LABEL\"}}" "$1" 2>/dev/null || true)
	case "$v" in "" | "<no value>") echo none ;; *) echo "$v" ;; esac
}

# Whether image $1, whose label is $2, can be used as it is (recipe $3).
present() {
	case "$2" in
	"$3") say "$1 present (built here from the current recipe)" ;;
	none) say "$1 present (not built here: used as it is)" ;;
	*) return 1 ;;
	esac
}

# Builds the base image from Debian's archive unless present. Its recipe is this function.
base_image() {
	local want have root
	want=$(declare -f base_image | sha256sum | cut -c1-16)
	have=$(recipe_of "$BASE")
	if present "$BASE" "$have" "$want"; then
		return 0
	fi
	say "building $BASE with debootstrap (about a minute)"
	root=$(mktemp -d /var/tmp/sb-rootfs.XXXXXX)
	if ! debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1; then
		tail -n 20 "$root.log" >&2
		rm -rf "$root" "$root.log"
		return 1
	fi
	# The sources of the official image: bookworm, its updates and security updates.
	rm -f "$root/etc/apt/sources.list"
	printf '%s\n' 'Types: deb' "URIs: $MIRROR" 'Suites: bookworm bookworm-updates' \
		'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' '' \
		'Types: deb' "URIs: ${MIRROR%/debian}/debian-security" 'Suites: bookworm-security' \
		'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
		>"$root/etc/apt/sources.list.d/debian.sources"
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	# Without the ENV, `ENV PATH=$PATH:...` in a Dockerfile would start from an empty PATH.
	tar -C "$root" -c . | podman import --quiet \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change "LABEL $LABEL=$want" --change 'CMD ["bash"]' - "$BASE" >/dev/null
	rm -rf "$root" "$root.log"
}

# Builds the stand-in in standins/$1 as image $2 unless an up-to-date one is present.
standin() {
	local dir="$here/standins/$1" name=$2 want have old t0=$SECONDS
	want=$( (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum) |
		sha256sum | cut -c1-16)
	have=$(recipe_of "$name")
	if present "$name" "$have" "$want"; then
		return 0
	fi
	say "building the stand-in $name from $dir"
	old=$(podman image inspect --format '{{.Id}}' "$name" 2>/dev/null || true)
	podman build --format docker --label "$LABEL=$want" -t "$name" "$dir" >"/var/tmp/sb-$1.log" 2>&1 || {
		tail -n 30 "/var/tmp/sb-$1.log" >&2
		return 1
	}
	rm -f "/var/tmp/sb-$1.log"
	# The image of the previous recipe, now untagged (kept if a container still uses it).
	[ -z "$old" ] || podman rmi "$old" >/dev/null 2>&1 || true
	say "built $name in $((SECONDS - t0)) s"
}

t0=$SECONDS
base_image
say "base image ready after $((SECONDS - t0)) s"
standin redis docker.io/library/redis:7
standin postgres docker.io/library/postgres:15
standin caddy docker.io/library/caddy:2

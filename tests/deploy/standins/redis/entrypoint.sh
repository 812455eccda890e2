#!/bin/sh
# Entrypoint of the redis:7 stand-in (see Dockerfile): redis-server as user redis, with
# protected mode off unless the given configuration file turns it on.
set -eu
case "${1:-}" in
-* | *.conf) set -- redis-server "$@" ;;
esac
if [ "${1:-}" != redis-server ]; then
	exec "$@"
fi
shift
conf=/tmp/redis-standin.conf
echo 'protected-mode no' >"$conf"
if [ -n "${1:-}" ] && [ "${1#-}" = "$1" ]; then
	echo "include $1" >>"$conf"
	shift
fi
chown redis:redis "$conf"
if [ "$(id -u)" = 0 ]; then
	chown -R redis:redis /data
	exec setpriv --reuid=redis --regid=redis --init-groups redis-server "$conf" "$@"
fi
exec redis-server "$conf" "$@"

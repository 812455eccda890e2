#!/bin/bash
# The compose stack in containers, as a user runs it (README "Deployment" / "docker
# compose", step for step), with podman and Debian's docker-compose (Compose v1) where
# there is no Docker engine and no registry:
#
#   cp .env.example .env, the four secrets filled in; docker-compose up -d --build; every
#   health check passes; an organization and a phone number seeded through
#   `docker-compose exec postgres psql`; Vapi-shaped webhooks posted to the published ingest
#   port on 127.0.0.1; `up -d --scale worker=3`; one worker container SIGKILLed mid-stream
#   and `docker-compose restart ingest` while retrying senders post; then every call is in
#   `calls` once with its report, nothing is pending, `switchboard-worker drain` and
#   `status` run through `exec`; with `--profile tls` a webhook through Caddy (its internal
#   CA) reaches ingest with the client's address in X-Forwarded-For and is filed; and
#   `docker-compose down -v` leaves nothing of the project behind.
#
# Also proved: the stack connects to PostgreSQL as switchboard_worker (and migrate as
# switchboard_owner), never as the superuser; settings left in the shell from a local run
# (REDIS_URL=redis://127.0.0.1:..., DATABASE_URL, the listeners) do not reach the containers.
#
# The base image and the stand-ins for redis:7, postgres:15 and caddy:2 are built once
# (tests/deploy/images.sh) and kept in podman's storage; the Switchboard image is built from
# deploy/Dockerfile by `docker-compose up --build` as a user builds it. Podman runs health
# checks only through systemd timers, which a machine without systemd lacks: a ticker here
# runs them every TICK seconds. The podman service, the ticker and the senders are stopped by PID
# on exit, whatever the outcome. Everything listens on 127.0.0.1 or on the project's own
# podman network. Exits 0 (also when podman cannot run at all: "SKIPPED" and the reason),
# or 1 with the step that failed.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/deploy
# One project per run (its containers, volumes and network carry the name): runs on the same
# machine at the same time do not meet.
PROJECT=sbcompose$$
TICK=${COMPOSE_TEST_TICK:-3}
CALLS_BEFORE=${COMPOSE_TEST_CALLS_BEFORE:-60}   # posted with two workers
CALLS_DURING=${COMPOSE_TEST_CALLS_DURING:-150}  # posted while a worker dies, ingest restarts
T0=$SECONDS
export LC_ALL=C.UTF-8

step() { printf '[%s +%ss] compose-test: %s\n' "$(date -u +%H:%M:%S)" "$((SECONDS - T0))" "$*"; }
skip() {
	step "SKIPPED: $*"
	exit 0
}
fail() {
	step "FAILED: $*"
	exit 1
}

# Waits up to $1 seconds for the command after it to succeed; fails naming $2.
wait_for() {
	local limit=$1 what=$2 t=$SECONDS
	shift 2
	until "$@"; do
		[ $((SECONDS - t)) -lt "$limit" ] || fail "waited ${limit}s for $what"
		sleep 1
	done
}

# With --profile tls: Caddy, its certificate from its internal CA (SWITCHBOARD_DOMAIN
# localhost), its ports on 127.0.0.1 only. Ingest believes X-Forwarded-For from the compose
# network only (INGEST_TRUSTED_PROXIES) and accepts only the host's address as Caddy sees it
# (INGEST_ALLOW_NETWORKS): a webhook through Caddy is filed, the same webhook sent straight
# from another container is refused ("network").
tls_step() {
	local https http net gw code ca=$WORK/caddy-root.crt
	https=$(free_port)
	http=$(free_port)
	net=$(podman network inspect --format '{{range .Subnets}}{{.Subnet}} {{.Gateway}}{{end}}' \
		"${PROJECT}_default") || return 1
	gw=${net#* }
	net=${net%% *}
	step "--profile tls: Caddy on 127.0.0.1:$https; trusted proxies $net, allowed $gw/32"
	for kv in SWITCHBOARD_DOMAIN=localhost "PUBLISH_HTTP=127.0.0.1:$http" \
		"PUBLISH_HTTPS=127.0.0.1:$https" "INGEST_TRUSTED_PROXIES=$net" \
		"INGEST_ALLOW_NETWORKS=$gw/32"; do
		set_env .env "$kv" || fail ".env.example has no line for ${kv%%=*}"
	done
	# `up` without --scale would return to the file's two workers.
	dc --profile tls up -d --scale worker=3 >>"$WORK/up.log" 2>&1 || return 1
	wait_for 120 "the stack healthy with the new ingest settings" stack_healthy 3
	[ -n "$(containers tls)" ] || return 1
	wait_for 60 "Caddy's internal CA" sh -c "docker-compose exec -T tls \
		cat /data/caddy/pki/authorities/local/root.crt >'$ca' 2>/dev/null && [ -s '$ca' ]"
	tls_curl() {
		curl -sS -o "$WORK/tls.out" -w '%{http_code}' --cacert "$ca" \
			--resolve "localhost:$https:127.0.0.1" "https://localhost:$https$1" "${@:2}"
	}
	wait_for 60 "Caddy to answer over HTTPS" sh -c "[ \"\$(curl -s -o /dev/null \
		-w '%{http_code}' --cacert '$ca' --resolve 'localhost:$https:127.0.0.1' \
		https://localhost:$https/healthz)\" = 404 ]"
	local msg='{"message":{"type":"status-update","status":"ringing","timestamp":1767225600000,
		"call":{"id":"compose-tls-1","type":"inboundPhoneCall","phoneNumberId":"pn_compose"}}}'
	code=$(tls_curl /api/vapi/webhook -H "X-Vapi-Secret: $SECRET" \
		-H 'Content-Type: application/json' --data-binary "$msg")
	step "POST through Caddy: $code $(cat "$WORK/tls.out")"
	[ "$code" = 200 ] || return 1
	code=$(dc exec -T worker curl -s -o /dev/null -w '%{http_code}' \
		-H "X-Vapi-Secret: $SECRET" -H 'Content-Type: application/json' \
		--data-binary "$msg" http://ingest:8080/api/vapi/webhook)
	step "the same POST straight from a worker container to ingest: $code"
	[ "$code" = 401 ] || return 1
	dc logs --no-color ingest 2>/dev/null | grep -q 'rejected from .*: network' || {
		echo "ingest did not log the refusal for the network" >&2
		return 1
	}
	wait_for 60 "the call sent through Caddy to be filed" sh -c "[ \"\$(docker-compose \
		exec -T postgres psql -U postgres -d switchboard -Atqc \"SELECT organization_id FROM \
		calls WHERE vapi_call_id = 'compose-tls-1'\" | tr -d '\r')\" = org_compose ]"
	step "the webhook sent through Caddy is filed"
}

[ "$(id -u)" = 0 ] || skip "needs root (rootful podman; the recipe is for root)"
# shellcheck source=tests/deploy/stack.sh
. "$HERE/stack.sh"
need_tools || fail "the tools above are missing and could not be installed"

WORK=$(mktemp -d /var/tmp/sb-compose.XXXXXX) || fail "mktemp"
SVC_PID='' TICK_PID='' SENDERS='' STARTED=''
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$SENDERS" ]; then
		kill "$SENDERS" 2>/dev/null
		wait "$SENDERS" 2>/dev/null
	fi
	if [ -n "$TICK_PID" ]; then
		kill "$TICK_PID" 2>/dev/null
		wait "$TICK_PID" 2>/dev/null
	fi
	if [ -n "$STARTED" ]; then
		if [ "$rc" != 0 ]; then
			step "logs of the stack (last 40 lines of each container)"
			(cd "$WORK/$PROJECT" && dc --profile tls logs --no-color --tail 40) 2>&1 | tail -n 400
		fi
		(cd "$WORK/$PROJECT" && dc --profile tls down -v --timeout 10) >/dev/null 2>&1
	fi
	if [ -n "$SVC_PID" ]; then
		kill "$SVC_PID" 2>/dev/null
		wait "$SVC_PID" 2>/dev/null
	fi
	[ -z "${CONTAINERS_CONF:-}" ] || remove_project "$PROJECT"
	rm -rf "$WORK"
	step "finished in $((SECONDS - T0)) s (exit $rc)"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- podman ---------------------------------------------------------------------------------
# crun (podman's default) fails on hybrid cgroups without systemd, and so does the default
# nofile ulimit (setrlimit: EPERM): runc, cgroupfs, no ulimits.
printf '%s\n' '[containers]' 'default_ulimits = []' '[engine]' 'runtime = "runc"' \
	'cgroup_manager = "cgroupfs"' >"$WORK/containers.conf"
export CONTAINERS_CONF=$WORK/containers.conf
if ! err=$(podman info 2>&1 >/dev/null); then
	skip "podman cannot run here: $(printf '%s' "$err" | tail -n 1)"
fi
step "images: base and stand-ins (built only when missing)"
bash "$HERE/images.sh" || fail "could not build the base or stand-in images"
if ! err=$(podman run --rm --network none docker.io/library/debian:bookworm-slim true 2>&1); then
	skip "podman cannot start a container here: $(printf '%s' "$err" | tail -n 1)"
fi

podman system service --time=0 "unix://$WORK/podman.sock" >"$WORK/podman-service.log" 2>&1 &
SVC_PID=$!
export DOCKER_HOST=unix://$WORK/podman.sock COMPOSE_DOCKER_CLI_BUILD=0 DOCKER_BUILDKIT=0
wait_for 30 "podman's API socket" curl -fs -o /dev/null --unix-socket "$WORK/podman.sock" \
	http://d/_ping

# Health checks of the project's running containers, every TICK seconds.
(
	while sleep "$TICK"; do
		for c in $(podman ps -q --filter "label=com.docker.compose.project=$PROJECT"); do
			podman healthcheck run "$c"
		done
	done
) >/dev/null 2>&1 &
TICK_PID=$!

# --- a user's checkout ----------------------------------------------------------------------
# A copy of this working tree (what a clone has: no build outputs, no .env), so that the
# user's own .env and the checkout are never touched. Its folder name is the project name.
mkdir "$WORK/$PROJECT"
tar -C "$ROOT" --exclude=./bin --exclude=./build --exclude=./var --exclude=./.git \
	--exclude=./.env --exclude='__pycache__' -c . | tar -C "$WORK/$PROJECT" -x ||
	fail "copying the checkout"
cd "$WORK/$PROJECT" || fail "cd"

# Settings left in the shell by a local run (make run, the systemd examples): compose must
# not hand these to the containers.
export REDIS_URL=redis://127.0.0.1:6390/0 DATABASE_URL=postgresql://127.0.0.1:5490/switchboard
export INGEST_LISTEN=127.0.0.1:8080 WORKER_METRICS_LISTEN=127.0.0.1:9101
export INGEST_SPOOL_DIR=$WORK/spool

# --- cp .env.example .env -------------------------------------------------------------------
cp .env.example .env
SECRET=$(random_hex 32)
INGEST_PORT=$(free_port)
for kv in "POSTGRES_PASSWORD=$(random_hex 16)" "DB_OWNER_PASSWORD=$(random_hex 16)" \
	"DB_WORKER_PASSWORD=$(random_hex 16)" "WEBHOOK_SECRET=$SECRET" \
	"PUBLISH_INGEST=127.0.0.1:$INGEST_PORT" WORKER_BATCH=100 WORKER_CLAIM_IDLE=15s; do
	set_env .env "$kv" || fail ".env.example has no line for ${kv%%=*}"
done
INGEST=http://127.0.0.1:$INGEST_PORT

# --- up -------------------------------------------------------------------------------------
STARTED=1
for p in $(stale_projects); do
	step "removing what an interrupted earlier run of this test left (project $p)"
	remove_project "$p"
done
step "docker-compose up -d --build"
t=$SECONDS
dc up -d --build >"$WORK/up.log" 2>&1 || {
	tail -n 40 "$WORK/up.log"
	fail "docker-compose up -d --build"
}
step "up -d --build took $((SECONDS - t)) s (it waits for the health checks it depends on)"
wait_for 180 "every service to be healthy" stack_healthy 2
step "every health check passes $((SECONDS - t)) s after the start: $(stack_states)"
[ "$(migrate_exit)" = 0 ] || fail "migrate exited $(migrate_exit)"
curl -fsS -o /dev/null "$INGEST/healthz" || fail "GET /healthz on the published port"

# Nothing from the shell got in; the stack is not the superuser.
check_container_env || fail "the containers' environment"
check_roles || fail "database roles"

# --- seed -----------------------------------------------------------------------------------
step "seeding organization org_compose and phone number pn_compose"
psql_q "INSERT INTO organizations (id, name) VALUES ('org_compose', 'Compose test');
	INSERT INTO phone_numbers (provider_phone_id, organization_id, number)
	VALUES ('pn_compose', 'org_compose', '+15550000000');" >/dev/null ||
	fail "seeding through docker-compose exec postgres psql"

# --- webhooks with two workers ----------------------------------------------------------------
[ "$(post_status wrong-secret)" = 401 ] || fail "a wrong secret was not refused with 401"
step "posting $CALLS_BEFORE calls (3 messages each) with 2 workers"
/usr/bin/python3 "$HERE/senders.py" "$INGEST/api/vapi/webhook" "$SECRET" pn_compose 0 \
	"$CALLS_BEFORE" --deadline 60 || fail "webhooks with two workers"

# --- scale ------------------------------------------------------------------------------------
step "docker-compose up -d --scale worker=3"
t=$SECONDS
dc up -d --scale worker=3 >>"$WORK/up.log" 2>&1 || fail "up -d --scale worker=3"
wait_for 120 "three healthy workers" stack_healthy 3
step "scaled to 3 healthy workers in $((SECONDS - t)) s"

# --- a worker killed and ingest restarted while retrying senders post -------------------------
step "posting $CALLS_DURING calls while a worker is SIGKILLed and ingest restarts"
/usr/bin/python3 "$HERE/senders.py" "$INGEST/api/vapi/webhook" "$SECRET" pn_compose \
	"$CALLS_BEFORE" "$CALLS_DURING" --rate 25 --deadline 150 >"$WORK/senders.log" 2>&1 &
SENDERS=$!
sleep 3
# The worker is frozen first, so that it surely dies with entries read but not committed
# (a worker this fast is otherwise idle at almost any instant): they stay pending at it
# until another worker takes them over after WORKER_CLAIM_IDLE.
VICTIM=$(containers worker | head -n 1)
VICTIM_CONSUMER=$(podman inspect --format '{{.Config.Hostname}}' "$VICTIM")-1
podman pause "$VICTIM" >/dev/null || fail "podman pause $VICTIM"
wait_for 20 "entries pending at the frozen worker" has_pending "$VICTIM_CONSUMER"
podman kill --signal KILL "$VICTIM" >/dev/null || fail "podman kill --signal KILL $VICTIM"
IN_HAND=$(consumer_pending "$VICTIM_CONSUMER")
step "SIGKILLed worker $VICTIM (consumer $VICTIM_CONSUMER) with $IN_HAND entries in hand"
sleep 2
t=$SECONDS
dc restart ingest >>"$WORK/up.log" 2>&1 || fail "docker-compose restart ingest"
step "docker-compose restart ingest took $((SECONDS - t)) s"
wait "$SENDERS"
rc=$?
SENDERS=''
cat "$WORK/senders.log"
[ "$rc" = 0 ] || fail "not every webhook was accepted across the restart"

N=$((CALLS_BEFORE + CALLS_DURING))
t=$SECONDS
wait_for 180 "all $N calls filed, nothing pending (the dead worker's entries taken over)" \
	all_filed "$N"
step "all $N calls filed and no entry pending $((SECONDS - t)) s after the last post" \
	"(killed worker still down)"
# The killed worker comes back with the same consumer name.
dc up -d --scale worker=3 >>"$WORK/up.log" 2>&1 || fail "up -d --scale worker=3 after the kill"
wait_for 120 "three healthy workers again" stack_healthy 3

# --- operator commands ----------------------------------------------------------------------
step "switchboard-worker drain and status through docker-compose exec"
out=$(dc exec -T worker switchboard-worker drain --timeout 60s 2>&1) ||
	fail "drain exited $?: $out"
case "$out" in *drained*) ;; *) fail "drain did not say drained: $out" ;; esac
status=$(dc exec -T worker switchboard-worker status --json 2>/dev/null) ||
	fail "status --json"
check_status "$status" 3 || fail "status: $status"
check_calls "$N" || fail "the calls table"

# --- the tls profile ------------------------------------------------------------------------
tls_step || fail "the tls profile"

# --- down -v --------------------------------------------------------------------------------
step "docker-compose --profile tls down -v"
t=$SECONDS
dc --profile tls down -v >>"$WORK/up.log" 2>&1 || fail "down -v"
STARTED=
left=$(podman ps -aq --filter "label=com.docker.compose.project=$PROJECT")
[ -z "$left" ] || fail "containers left after down -v: $left"
left=$(podman volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
[ -z "$left" ] || fail "volumes left after down -v: $left"
! podman network exists "${PROJECT}_default" || fail "network ${PROJECT}_default left"
step "down -v took $((SECONDS - t)) s; no container, volume or network of $PROJECT left"
step "PASSED"

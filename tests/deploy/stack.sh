# shellcheck shell=bash
# Helpers of tests/deploy/compose_up.sh (sourced; bash): the tools it needs, and questions
# about the running compose project $PROJECT, asked the way an operator would (podman,
# docker-compose exec, psql, redis-cli). Each returns non-zero, with a line on stderr where
# it helps, when the answer is not the expected one.

# podman, runc, debootstrap (the base image), docker-compose, curl and python3; installed
# with apt-get when missing (as root, like scripts/deps.sh).
need_tools() {
	local missing='' t
	for t in podman:podman runc:runc debootstrap:debootstrap docker-compose:docker-compose \
		curl:curl /usr/bin/python3:python3 aardvark-dns:aardvark-dns netavark:netavark; do
		case "${t%%:*}" in
		aardvark-dns | netavark) [ -x "/usr/lib/podman/${t%%:*}" ] || missing="$missing ${t#*:}" ;;
		*) command -v "${t%%:*}" >/dev/null 2>&1 || missing="$missing ${t#*:}" ;;
		esac
	done
	[ -n "$missing" ] || return 0
	command -v apt-get >/dev/null 2>&1 || {
		echo "compose-test: missing:$missing (no apt-get to install them)" >&2
		return 1
	}
	step "installing$missing (apt-get)"
	# shellcheck disable=SC2086 # a list of package names
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null ||
		{ apt-get update -q >/dev/null &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null; }
}

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# set_env FILE NAME=VALUE: sets NAME on its line of FILE (uncommenting "#NAME=" as a user
# does); fails when FILE has no line for NAME.
set_env() {
	local file=$1 name=${2%%=*} value=${2#*=}
	grep -Eq "^#?$name=" "$file" || return 1
	awk -v n="$name" -v v="$value" '
		!done && ($0 ~ "^#?" n "=") { print n "=" v; done = 1; next } { print }' \
		"$file" >"$file.new" && mv "$file.new" "$file"
}

dc() { docker-compose "$@"; }

# Removes what is left of compose project $1 (after `down`, or of a run that was killed): its
# containers, volumes and network, and the conmon processes podman keeps for up to five
# minutes after each `exec` or health check in its containers.
remove_project() {
	local label="label=com.docker.compose.project=$1" c
	for c in $(podman ps -aq --filter "$label"); do
		podman rm -f "$c" >/dev/null 2>&1
	done
	for c in $(podman volume ls -q --filter "$label"); do
		podman volume rm -f "$c" >/dev/null 2>&1
	done
	! podman network exists "${1}_default" || podman network rm "${1}_default" >/dev/null 2>&1
	for c in $(pgrep -f -- "conmon .* -n ${1}_[a-z]+_[0-9]+ "); do
		kill "$c" 2>/dev/null
	done
}

# Projects of earlier runs of this test (sbcomposePID) whose process is gone.
stale_projects() {
	local p
	{
		podman ps -a --format '{{index .Labels "com.docker.compose.project"}}'
		podman volume ls --format '{{index .Labels "com.docker.compose.project"}}'
	} | grep -E '^sbcompose[0-9]+$' | sort -u | while read -r p; do
		kill -0 "${p#sbcompose}" 2>/dev/null || echo "$p"
	done
}

# IDs of the project's running containers of service $1.
containers() {
	podman ps --filter "label=com.docker.compose.project=$PROJECT" \
		--format '{{.ID}} {{index .Labels "com.docker.compose.service"}}' |
		awk -v s="$1" '$2 == s { print $1 }'
}

# One line per container of the project: service state health exit-code.
stack_table() {
	local c
	for c in $(podman ps -aq --filter "label=com.docker.compose.project=$PROJECT"); do
		podman inspect --format '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{with .State.Health}}{{or .Status "-"}}{{else}}-{{end}} {{.State.ExitCode}}' "$c" 2>/dev/null
	done
}

stack_states() {
	stack_table | sort | awk '{ s = s (NR > 1 ? ", " : "") $1 "=" $2 "/" $3 } END { print s }'
}

# Whether redis, postgres and ingest are running and healthy, migrate exited 0, and exactly
# $1 workers are running, all healthy.
stack_healthy() {
	stack_table | awk -v want="$1" '
		$1 == "migrate" { mig = ($2 == "exited" && $4 == 0) }
		$1 ~ /^(redis|postgres|ingest)$/ && $2 == "running" && $3 == "healthy" { ok[$1] = 1 }
		$1 == "worker" && $2 == "running" { run++; if ($3 == "healthy") healthy++ }
		END { exit !(mig && ok["redis"] && ok["postgres"] && ok["ingest"] &&
		             run == want && healthy == want) }'
}

migrate_exit() { stack_table | awk '$1 == "migrate" { print $4 }'; }

# psql as the operator does: the superuser, over the postgres container's socket.
psql_q() { dc exec -T postgres psql -v ON_ERROR_STOP=1 -U postgres -d switchboard -Atq -c "$1"; }

redis_cli() { dc exec -T redis redis-cli "$@"; }

# Entries pending at consumer $1 of the workers' group.
consumer_pending() {
	redis_cli XINFO CONSUMERS switchboard:webhooks workers |
		awk -v c="$1" 'p == "name" { n = $1 } p == "pending" && n == c { print $1; f = 1 }
			{ p = $1 } END { if (!f) print 0 }'
}

has_pending() { [ "$(consumer_pending "$1")" -gt 0 ]; }

group_pending() { redis_cli XPENDING switchboard:webhooks workers | head -n 1; }

# Whether all $1 calls are filed with their end-of-call report and nothing is pending.
all_filed() {
	local n
	n=$(psql_q "SELECT count(*) FROM calls WHERE organization_id = 'org_compose'
		AND vapi_call_id LIKE 'compose-call-%' AND report IS NOT NULL") || return 1
	[ "$n" = "$1" ] && [ "$(group_pending)" = 0 ]
}

post_status() {
	curl -s -o /dev/null -w '%{http_code}' -H "X-Vapi-Secret: $1" \
		-H 'Content-Type: application/json' -d '{"message":{"type":"status-update"}}' \
		"$INGEST/api/vapi/webhook"
}

# The variables exported in the test's shell stayed out: the containers see compose's own.
check_container_env() {
	local w i sp
	w=$(dc exec -T worker printenv REDIS_URL DATABASE_URL WORKER_METRICS_LISTEN | tr -d '\r' |
		sed 's/:[^:@/]*@/:***@/' | tr '\n' ' ')
	i=$(dc exec -T ingest printenv REDIS_URL INGEST_LISTEN INGEST_SPOOL_DIR | tr -d '\r' |
		tr '\n' ' ')
	# The spool volume took the image folder's owner: ingest (user 10001) can write to it.
	# shellcheck disable=SC2016 # expanded by the container's shell
	sp=$(dc exec -T ingest sh -c 'd=/var/lib/switchboard/spool; : >"$d/.w" && rm "$d/.w" &&
		stat -c "%u %a" "$d"' | tr -d '\r')
	step "worker environment: $w; ingest environment: $i; spool owner and mode: $sp"
	[ "$w" = "redis://redis:6379/0 postgresql://switchboard_worker:***@postgres:5432/switchboard 0.0.0.0:9090 " ] &&
		[ "$i" = "redis://redis:6379/0 0.0.0.0:8080 /var/lib/switchboard/spool " ] &&
		[ "$sp" = "10001 700" ]
}

# The workers are connected as switchboard_worker, which may not change the schema (tried
# over TCP with its password); the tables belong to switchboard_owner, which migrate used.
check_roles() {
	local users owners super denied pw
	users=$(psql_q "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity
		WHERE datname = 'switchboard' AND backend_type = 'client backend'
		AND pid <> pg_backend_pid()")
	owners=$(psql_q "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables
		WHERE schemaname = 'public'")
	super=$(psql_q "SELECT string_agg(rolname || '=' || rolsuper, ',' ORDER BY rolname)
		FROM pg_roles WHERE rolname LIKE 'switchboard%'")
	pw=$(grep '^DB_WORKER_PASSWORD=' .env | cut -d= -f2-)
	denied=$(dc exec -T -e PGPASSWORD="$pw" postgres psql -h 127.0.0.1 -U switchboard_worker \
		-d switchboard -Atqc 'CREATE TABLE not_allowed (a int)' 2>&1 | tr -d '\r')
	step "connected to switchboard: $users; tables owned by: $owners; roles: $super;" \
		"switchboard_worker's CREATE TABLE: $denied"
	[ "$users" = switchboard_worker ] && [ "$owners" = switchboard_owner ] &&
		[ "$super" = "switchboard_owner=false,switchboard_worker=false" ] &&
		case "$denied" in *"permission denied for schema public"*) true ;; *) false ;; esac
}

# `status --json` ($1): nothing pending, lagging, dead or unrouted; at least $2 consumers.
check_status() {
	/usr/bin/python3 -c '
import json, sys
s = json.loads(sys.argv[1])
ok = (s["lag"], s["pending"], s["dead_letters"], s["unrouted"]) == (0, 0, 0, 0)
sys.exit(0 if ok and len(s["consumers"]) >= int(sys.argv[2]) else 1)' "$1" "$2"
}

# Each of the $1 calls is in `calls` once, ended, with its report, and has its three events.
check_calls() {
	local got want="$1|$1|$1|$1|$(($1 * 3))|0"
	got=$(psql_q "SELECT (SELECT count(*) FROM calls WHERE vapi_call_id LIKE 'compose-call-%'),
		(SELECT count(DISTINCT vapi_call_id) FROM calls WHERE vapi_call_id LIKE 'compose-call-%'),
		(SELECT count(*) FROM calls WHERE vapi_call_id LIKE 'compose-call-%'
			AND organization_id = 'org_compose' AND status = 'ended'
			AND report->>'type' = 'end-of-call-report' AND summary LIKE 'call %'),
		(SELECT count(*) FROM calls WHERE vapi_call_id LIKE 'compose-call-%'
			AND ended_reason = 'customer-ended-call'),
		(SELECT count(*) FROM call_events WHERE vapi_call_id LIKE 'compose-call-%'),
		(SELECT count(*) FROM unrouted_messages)" | tr -d '\r')
	step "calls rows|distinct|ended with report|ended_reason|events|unrouted: $got (want $want)"
	[ "$got" = "$want" ]
}

#!/usr/bin/env bash
# Runs a complete Switchboard on this machine for trying it by hand (`make run`): Redis,
# PostgreSQL, switchboard-ingest and two workers, all bound to 127.0.0.1, all state in ./var
# (kept between runs, so a second run finds the calls of the first). It supervises them: one
# that exits on its own is started again with backoff (and a line saying so) while the rest
# keeps running. Ctrl-C or SIGTERM stops exactly what this script started, in order, and
# exits 0. It writes var/env: `. var/env` points the operator commands at this stack.
#
# Settings: SB_REDIS_PORT (6390), SB_PG_PORT (5490), SB_INGEST_PORT (8080), SB_METRICS_PORT
# (9100: the workers' metrics listen on 9101 and 9102), SB_VAR (./var), SB_BIN (./bin). Other
# switchboard settings (LOG_LEVEL, WORKER_BATCH, ...) are passed through from the environment.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$PWD
VAR=${SB_VAR:-$ROOT/var}
BIN=${SB_BIN:-$ROOT/bin}
[[ $VAR == /* ]] || VAR=$ROOT/$VAR
[[ $BIN == /* ]] || BIN=$ROOT/$BIN
LOG=$VAR/log
PGDATA=$VAR/pg
REDIS_PORT=${SB_REDIS_PORT:-6390}
PG_PORT=${SB_PG_PORT:-5490}
INGEST_PORT=${SB_INGEST_PORT:-8080}
METRICS_PORT=${SB_METRICS_PORT:-9100}
SECRET_HEADER=${WEBHOOK_SECRET_HEADER:-X-Vapi-Secret}
WORKERS=(1 2)
# Bounds on every wait, in seconds.
START_TIMEOUT=30
STOP_TIMEOUT=20
# Restarting a service that exited: first after RESTART_MIN_MS, doubling up to
# RESTART_MAX_MS while it keeps failing; back to the minimum once it has run STABLE_MS.
RESTART_MIN_MS=1000
RESTART_MAX_MS=30000
STABLE_MS=30000

say() { printf 'run-local: %s\n' "$*"; }
# Supervision lines carry the time, since they come long after the banner.
say_at() { printf 'run-local: %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
die() {
	printf 'run-local: %s\n' "$*" >&2
	exit 1
}
# The end of a log, shown whenever something fails to start.
show_log() {
	printf 'run-local: ---- last lines of %s\n' "${1#"$ROOT"/}" >&2
	tail -n "${2:-25}" "$1" >&2 2>/dev/null
	printf 'run-local: ----\n' >&2
}

for p in REDIS_PORT PG_PORT INGEST_PORT METRICS_PORT; do
	v=${!p}
	if ! [[ $v =~ ^[0-9]+$ ]] || ((v < 1 || v > 65535 - ${#WORKERS[@]})); then
		die "SB_$p: \"$v\" is not a port number"
	fi
done

# --- what this script started, and how to stop it --------------------------------------

REDIS_PID='' INGEST_PID='' PG_PID='' PG_STARTED='' SLEEP_PID=''
WORKER_PIDS=()
CLEANED=

# Running and not a zombie (a child that exited but was not reaped yet still answers kill -0).
alive() {
	local state
	[[ -n $1 && -r /proc/$1/stat ]] || return 1
	read -r _ _ state _ </proc/"$1"/stat 2>/dev/null || return 1
	[[ $state != Z ]]
}

# SIGTERM to each pid, wait up to STOP_TIMEOUT for all, SIGKILL what is left, reap them.
stop_pids() {
	local name=$1 pid i any st
	shift
	for pid in "$@"; do
		alive "$pid" && kill -TERM "$pid" 2>/dev/null
	done
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		any=
		for pid in "$@"; do
			alive "$pid" && any=1
		done
		[[ -z $any ]] && break
		sleep 0.1
	done
	for pid in "$@"; do
		if alive "$pid"; then
			say "$name (pid $pid) did not stop within ${STOP_TIMEOUT}s; killing it"
			kill -KILL "$pid" 2>/dev/null
		fi
		# Services exit 0 on SIGTERM; anything else is worth knowing.
		wait "$pid" 2>/dev/null
		st=$?
		((st == 0 || st == 127)) || say "$name (pid $pid) exited with status $st"
	done
}

pg_ctl_as_owner() {
	"${AS_PG[@]}" "$PGBIN/pg_ctl" "$@"
}

cleanup() {
	[[ -n $CLEANED ]] && return
	CLEANED=1
	trap '' INT TERM HUP
	[[ -n $SLEEP_PID ]] && kill "$SLEEP_PID" 2>/dev/null && wait "$SLEEP_PID" 2>/dev/null
	# Producers first, then the consumers (they finish and ack the batch in hand), then the
	# stores they were writing to.
	[[ -n $INGEST_PID ]] && stop_pids ingest "$INGEST_PID"
	((${#WORKER_PIDS[@]})) && stop_pids workers "${WORKER_PIDS[@]}"
	[[ -n $REDIS_PID ]] && stop_pids redis-server "$REDIS_PID"
	if [[ -n $PG_STARTED ]] && [[ -f $PGDATA/postmaster.pid ]]; then
		pg_ctl_as_owner stop -D "$PGDATA" -m fast -w -t "$STOP_TIMEOUT" >/dev/null ||
			show_log "$LOG/postgres.log"
	fi
	rm -f "$VAR"/*.pid
	[[ -n $REDIS_PID ]] && say "stopped"
}

on_signal() {
	echo
	say "stopping"
	cleanup
	exit 0
}
trap on_signal INT TERM HUP
trap 'cleanup' EXIT

# --- checks before starting anything ---------------------------------------------------

for b in switchboard-ingest switchboard-worker; do
	[[ -x $BIN/$b ]] || die "$BIN/$b not found: build it first (make)"
done
for c in redis-server redis-cli curl; do
	command -v "$c" >/dev/null || die "$c not found (sh scripts/deps.sh installs it)"
done

# The data directory's own major version when it exists (a newer install cannot open an
# older cluster), else the newest PostgreSQL installed.
shopt -s nullglob
pg_bins=(/usr/lib/postgresql/*/bin/postgres)
shopt -u nullglob
((${#pg_bins[@]})) || die "no PostgreSQL server in /usr/lib/postgresql (sh scripts/deps.sh installs it)"
if [[ -f $PGDATA/PG_VERSION ]]; then
	pg_ver=$(<"$PGDATA/PG_VERSION")
	PGBIN=/usr/lib/postgresql/$pg_ver/bin
	[[ -x $PGBIN/postgres ]] || die "var/pg holds a PostgreSQL $pg_ver cluster but PostgreSQL $pg_ver is not installed; install postgresql-$pg_ver, or remove var/pg to start afresh"
else
	PGBIN=$(printf '%s\n' "${pg_bins[@]%/postgres}" | sort -V | tail -n 1)
fi
for c in initdb pg_ctl psql; do
	[[ -x $PGBIN/$c ]] || die "$PGBIN/$c not found (sh scripts/deps.sh installs postgresql)"
done
export PGCONNECT_TIMEOUT=10
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres)

# PostgreSQL refuses to run as root: as root, its files belong to the postgres user and its
# programs run as that user.
if ((EUID == 0)); then
	id postgres >/dev/null 2>&1 || die "user postgres does not exist (the postgresql package creates it)"
	AS_PG=(runuser -u postgres --)
else
	AS_PG=()
fi

# Something listening already: connecting succeeds (bash's /dev/tcp, no extra tool needed).
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
busy=
for p in "REDIS_PORT redis" "PG_PORT PostgreSQL" "INGEST_PORT switchboard-ingest"; do
	var=${p%% *}
	if port_busy "${!var}"; then
		printf 'run-local: port %s on 127.0.0.1 (for %s) is already in use; choose another with SB_%s=...\n' \
			"${!var}" "${p#* }" "$var" >&2
		busy=1
	fi
done
if [[ -n $busy ]]; then
	for f in "$VAR"/*.pid; do
		[[ -f $f ]] && alive "$(<"$f")" &&
			say "note: $(basename "$f" .pid) from an earlier run-local.sh is still running (pid $(<"$f"))" >&2
	done
	exit 1
fi
if [[ -f $PGDATA/postmaster.pid ]] && pg_ctl_as_owner status -D "$PGDATA" >/dev/null 2>&1; then
	die "a PostgreSQL from an earlier run still serves var/pg (pid $(head -n 1 "$PGDATA/postmaster.pid")); stop it: ${AS_PG[*]}${AS_PG:+ }$PGBIN/pg_ctl -D $PGDATA stop -m fast"
fi

mkdir -p "$VAR/redis" "$LOG" || die "cannot create $VAR"

# --- Redis --------------------------------------------------------------------------------

# Each service gets its own session (setsid), so a Ctrl-C on the terminal reaches only this
# script, which then stops them in order. setsid does not fork here (the background child
# is not a process group leader), so $! is the service's own pid.
start_redis() {
	setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$VAR/redis" \
		--appendonly yes --appendfsync always --daemonize no \
		>>"$LOG/redis.log" 2>&1 </dev/null &
	REDIS_PID=$!
	echo "$REDIS_PID" >"$VAR/redis.pid"
}
start_redis
for ((i = 0; ; i++)); do
	alive "$REDIS_PID" || {
		show_log "$LOG/redis.log"
		die "redis-server did not start"
	}
	# PONG once the data is loaded (LOADING before that).
	[[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] && break
	((i < START_TIMEOUT * 10)) || {
		show_log "$LOG/redis.log"
		die "redis-server did not answer within ${START_TIMEOUT}s"
	}
	sleep 0.1
done
say "redis-server up on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID, data in var/redis)"

# --- PostgreSQL ---------------------------------------------------------------------------

if ((EUID == 0)); then
	# The postgres user must be able to reach var/pg: grant search (x) permission on each
	# directory above it that lacks it, and say so.
	chmod 755 "$VAR" "$LOG"
	if ! runuser -u postgres -- test -x "$VAR"; then
		d=
		IFS=/ read -ra parts <<<"${VAR#/}"
		for part in "${parts[@]}"; do
			d=$d/$part
			runuser -u postgres -- test -x "$d" && continue
			if command -v setfacl >/dev/null; then
				say "letting user postgres traverse $d (setfacl u:postgres:x)"
				setfacl -m u:postgres:x "$d"
			else
				say "letting user postgres traverse $d (chmod o+x)"
				chmod o+x "$d"
			fi
		done
		runuser -u postgres -- test -x "$VAR" || die "user postgres cannot reach $VAR"
	fi
fi

if [[ ! -f $PGDATA/PG_VERSION ]]; then
	if [[ -d $PGDATA ]] && [[ -n $(ls -A "$PGDATA") ]]; then
		die "var/pg exists but holds no PostgreSQL cluster (an interrupted first run?); remove it (rm -rf var/pg) and run again"
	fi
	mkdir -p "$PGDATA" && chmod 700 "$PGDATA"
	((EUID == 0)) && chown postgres:postgres "$PGDATA"
	say "creating a PostgreSQL $(basename "$(dirname "$PGBIN")") cluster in var/pg (first run)"
	# trust: only 127.0.0.1 is listened on and there is no Unix socket.
	if ! "${AS_PG[@]}" "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 \
		--locale=C >"$LOG/initdb.log" 2>&1; then
		show_log "$LOG/initdb.log"
		rm -rf "$PGDATA"
		die "initdb failed"
	fi
elif ((EUID == 0)) && [[ $(stat -c %U "$PGDATA") != postgres ]]; then
	chown -R postgres:postgres "$PGDATA"
elif ((EUID != 0)) && [[ ! -O $PGDATA ]]; then
	die "var/pg belongs to $(stat -c %U "$PGDATA"), not to you: run as that user (or as root)"
fi

touch "$LOG/postgres.log"
((EUID == 0)) && chown postgres:postgres "$LOG/postgres.log"
PG_STARTED=1
# pg_ctl daemonizes the postmaster: its pid comes from postmaster.pid. No Unix socket (-k ''):
# nothing else on the machine should stumble on this server, and a socket path inside a deep
# checkout could exceed the 107-byte limit.
start_pg() {
	pg_ctl_as_owner start -D "$PGDATA" -l "$LOG/postgres.log" -w -t "$START_TIMEOUT" \
		-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k ''" >/dev/null || return 1
	PG_PID=$(head -n 1 "$PGDATA/postmaster.pid")
}
if ! start_pg; then
	show_log "$LOG/postgres.log"
	die "PostgreSQL did not start"
fi
say "PostgreSQL up on 127.0.0.1:$PG_PORT (pid $PG_PID, data in var/pg)"

if [[ $("${PSQL[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'switchboard'") != 1 ]]; then
	"${PSQL[@]}" -d postgres -c 'CREATE DATABASE switchboard' || die "cannot create database switchboard"
	say "created database switchboard"
fi
DATABASE_URL=postgresql://postgres@127.0.0.1:$PG_PORT/switchboard
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
export DATABASE_URL REDIS_URL

if ! "$BIN/switchboard-worker" migrate >>"$LOG/migrate.log" 2>&1; then
	show_log "$LOG/migrate.log"
	die "switchboard-worker migrate failed"
fi

# The demo organization and its mappings, so that the sample message below is routed.
"${PSQL[@]}" -d switchboard >"$LOG/seed.log" 2>&1 <<'SQL' || {
INSERT INTO organizations (id, name) VALUES ('org_demo', 'Demo Org')
    ON CONFLICT DO NOTHING;
INSERT INTO phone_numbers (provider_phone_id, organization_id, number)
    VALUES ('pn_demo', 'org_demo', '+15550100') ON CONFLICT DO NOTHING;
INSERT INTO assistants (provider_assistant_id, organization_id, name)
    VALUES ('asst_demo', 'org_demo', 'Demo Assistant') ON CONFLICT DO NOTHING;
SQL
	show_log "$LOG/seed.log"
	die "seeding the demo organization failed"
}

# --- shared secret ------------------------------------------------------------------------

SECRET_FILE=$VAR/webhook-secret
if [[ ! -s $SECRET_FILE ]]; then
	(
		umask 077
		od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$SECRET_FILE.tmp" &&
			mv "$SECRET_FILE.tmp" "$SECRET_FILE"
	) || die "cannot write $SECRET_FILE"
fi
chmod 600 "$SECRET_FILE"
WEBHOOK_SECRET=$(<"$SECRET_FILE")
[[ -n $WEBHOOK_SECRET ]] || die "$SECRET_FILE is empty"

# --- ingest and workers -------------------------------------------------------------------

start_ingest() {
	INGEST_LISTEN=127.0.0.1:$INGEST_PORT WEBHOOK_SECRET=$WEBHOOK_SECRET \
		INGEST_SPOOL_DIR=$VAR/spool setsid "$BIN/switchboard-ingest" \
		>>"$LOG/ingest.log" 2>&1 </dev/null &
	INGEST_PID=$!
	echo "$INGEST_PID" >"$VAR/ingest.pid"
}
start_ingest
for ((i = 0; ; i++)); do
	alive "$INGEST_PID" || {
		show_log "$LOG/ingest.log"
		die "switchboard-ingest did not start"
	}
	curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$INGEST_PORT/healthz" 2>/dev/null && break
	((i < START_TIMEOUT * 10)) || {
		show_log "$LOG/ingest.log"
		die "switchboard-ingest did not answer /healthz within ${START_TIMEOUT}s"
	}
	sleep 0.1
done
say "switchboard-ingest up on 127.0.0.1:$INGEST_PORT (pid $INGEST_PID)"

# Worker n is consumer local-n with its metrics on METRICS_PORT + n; a restarted worker keeps
# its name, so it reads its own pending entries first.
start_worker() {
	WORKER_CONSUMER=local-$1 WORKER_METRICS_LISTEN=127.0.0.1:$((METRICS_PORT + $1)) \
		setsid "$BIN/switchboard-worker" run >>"$LOG/worker-$1.log" 2>&1 </dev/null &
	WORKER_PIDS[$1 - 1]=$!
	echo "$!" >"$VAR/worker-$1.pid"
}
for n in "${WORKERS[@]}"; do
	# Where this run's lines start, to find this worker's start-up line below.
	offsets[n]=$(($(stat -c %s "$LOG/worker-$n.log" 2>/dev/null || echo 0) + 1))
	start_worker "$n"
done
for n in "${WORKERS[@]}"; do
	pid=${WORKER_PIDS[n - 1]}
	log=$LOG/worker-$n.log
	for ((i = 0; ; i++)); do
		alive "$pid" || {
			show_log "$log"
			die "switchboard-worker local-$n did not start"
		}
		tail -c +"${offsets[n]}" "$log" | grep -q 'consuming' && break
		((i < START_TIMEOUT * 10)) || {
			show_log "$log"
			die "switchboard-worker local-$n did not start consuming within ${START_TIMEOUT}s"
		}
		sleep 0.1
	done
done
say "switchboard-worker local-1 and local-2 up (pids ${WORKER_PIDS[*]})"

# --- how to use it ------------------------------------------------------------------------

URL=http://127.0.0.1:$INGEST_PORT/api/vapi/webhook
# Single-quoted for pasting into a shell.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# For the operator commands run beside the stack: `. var/env`, then switchboard-worker status,
# sbw dlq list (sbw is what the README's runbook calls the worker binary), vapictl backfill,
# psql with no arguments.
write_env() {
	local tmp=$VAR/env.tmp
	{
		printf '# Written by scripts/run-local.sh; `. %s` points the operator commands at that stack.\n' "$(shq "$VAR/env")"
		printf 'export REDIS_URL=%s\n' "$(shq "$REDIS_URL")"
		printf 'export DATABASE_URL=%s\n' "$(shq "$DATABASE_URL")"
		printf 'export PGHOST=127.0.0.1 PGPORT=%s PGUSER=postgres PGDATABASE=switchboard\n' "$PG_PORT"
		printf 'export SWITCHBOARD_INGEST_URL=%s\n' "$(shq "$URL")"
		printf 'export WEBHOOK_SECRET_FILE=%s\n' "$(shq "$SECRET_FILE")"
		printf 'export SWITCHBOARD_METRICS=%s\n' "$(shq "$(metrics_urls)")"
		printf 'PATH=%s:$PATH\n' "$(shq "$BIN")"
		printf 'sbw() { switchboard-worker "$@"; }\n'
	} >"$tmp" && mv "$tmp" "$VAR/env"
}
metrics_urls() {
	local n out="http://127.0.0.1:$INGEST_PORT/metrics"
	for n in "${WORKERS[@]}"; do
		out+=" http://127.0.0.1:$((METRICS_PORT + n))/metrics"
	done
	printf '%s' "$out"
}
write_env || die "cannot write $VAR/env"

now_ms=$(date +%s%3N)
cat >"$VAR/sample.json" <<JSON
{"message":{"type":"status-update","status":"in-progress","timestamp":$now_ms,"call":{"id":"call_demo_1","type":"inboundPhoneCall","phoneNumberId":"pn_demo","assistantId":"asst_demo"},"customer":{"number":"+15551234"}}}
JSON
cat <<EOF

Switchboard is running. Ctrl-C stops it; data stays in ${VAR#"$ROOT"/}/ for the next run.
  webhook URL   $URL
  secret        $WEBHOOK_SECRET  (${SECRET_FILE#"$ROOT"/}, header $SECRET_HEADER)
  REDIS_URL     $REDIS_URL
  DATABASE_URL  $DATABASE_URL
  metrics       $(metrics_urls)
                (worker local-N serves /metrics, /healthz, /readyz on port $METRICS_PORT+N)
  logs          ${LOG#"$ROOT"/}/ingest.log, worker-1.log, worker-2.log, redis.log, postgres.log
A service that exits is restarted (with backoff); this terminal says so.

Point the operator commands at this stack (in another shell, from $ROOT):
  . $(shq "$VAR/env")
  sbw status

Send a sample status-update (inbound call on phone number pn_demo):
  curl -sS -X POST -H 'Content-Type: application/json' -H $(shq "$SECRET_HEADER: $WEBHOOK_SECRET") --data-binary @$(shq "$VAR/sample.json") $URL

See the stored call:
  psql $(shq "$DATABASE_URL") -c 'SELECT vapi_call_id, organization_id, status, call_type, customer_number, updated_at FROM calls ORDER BY updated_at DESC LIMIT 10'

EOF

# --- supervision, until told to stop -----------------------------------------------------

SERVICES=(redis postgres ingest)
for n in "${WORKERS[@]}"; do
	SERVICES+=("worker-$n")
done
declare -A RETRY_AT BACKOFF UP_SINCE RESTARTS
for s in "${SERVICES[@]}"; do
	RETRY_AT[$s]='' BACKOFF[$s]=$RESTART_MIN_MS UP_SINCE[$s]=$(now_ms) RESTARTS[$s]=0
done

svc_pid() {
	case $1 in
	redis) echo "$REDIS_PID" ;;
	postgres) echo "$PG_PID" ;;
	ingest) echo "$INGEST_PID" ;;
	worker-*) echo "${WORKER_PIDS[${1#worker-} - 1]}" ;;
	esac
}
svc_name() {
	case $1 in
	redis) echo redis-server ;;
	postgres) echo PostgreSQL ;;
	ingest) echo switchboard-ingest ;;
	worker-*) echo "switchboard-worker local-${1#worker-}" ;;
	esac
}
svc_start() {
	case $1 in
	redis) start_redis ;;
	postgres) start_pg ;;
	ingest) start_ingest ;;
	worker-*) start_worker "${1#worker-}" ;;
	esac
}

# How pid ended: our own children are reaped for their status; the postmaster (pg_ctl's
# child) is not ours to wait for.
exit_how() {
	local st
	[[ $1 == postgres ]] && {
		echo "exited"
		return
	}
	wait "$2" 2>/dev/null
	st=$?
	if ((st > 128)); then
		echo "was killed by SIG$(kill -l $((st - 128)) 2>/dev/null || echo $((st - 128)))"
	else
		echo "exited with status $st"
	fi
}

# One look at service s: note its death and schedule a restart, or restart it when due.
supervise() {
	local s=$1 now pid name
	now=$(now_ms)
	pid=$(svc_pid "$s")
	name=$(svc_name "$s")
	if [[ -z ${RETRY_AT[$s]} ]]; then
		if alive "$pid"; then
			((now - UP_SINCE[$s] >= STABLE_MS)) && BACKOFF[$s]=$RESTART_MIN_MS
			return
		fi
		say_at "$name (pid $pid) $(exit_how "$s" "$pid"); restarting it in $((BACKOFF[$s] / 1000))s" >&2
		show_log "$LOG/$s.log" 10
		RETRY_AT[$s]=$((now + BACKOFF[$s]))
	elif ((now >= RETRY_AT[$s])); then
		if svc_start "$s"; then
			RESTARTS[$s]=$((RESTARTS[$s] + 1))
			say_at "$name restarted (pid $(svc_pid "$s"), restart ${RESTARTS[$s]} of this run)"
			RETRY_AT[$s]='' UP_SINCE[$s]=$now
			return
		fi
		say_at "$name did not start; trying again in $((BACKOFF[$s] / 1000))s" >&2
		show_log "$LOG/$s.log" 10
		RETRY_AT[$s]=$((now + BACKOFF[$s]))
	else
		return
	fi
	BACKOFF[$s]=$((BACKOFF[$s] * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : BACKOFF[$s] * 2))
}

while :; do
	for s in "${SERVICES[@]}"; do
		supervise "$s"
	done
	# Waiting on a background sleep lets a signal's trap run at once.
	sleep 0.25 &
	SLEEP_PID=$!
	wait "$SLEEP_PID"
	SLEEP_PID=
done

#!/usr/bin/env bash
# Runs a complete Switchboard on this machine for trying it by hand (`make run`): Redis,
# PostgreSQL, switchboard-ingest and two workers, all bound to 127.0.0.1, all state in ./var
# (kept between runs, so a second run finds the calls of the first). Ctrl-C or SIGTERM stops
# exactly what this script started, in order, and exits 0.
#
# Settings: SB_REDIS_PORT (6390), SB_PG_PORT (5490), SB_INGEST_PORT (8080). Other
# switchboard settings (LOG_LEVEL, WORKER_BATCH, ...) are passed through from the environment.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$PWD
VAR=$ROOT/var
LOG=$VAR/log
PGDATA=$VAR/pg
BIN=$ROOT/bin
REDIS_PORT=${SB_REDIS_PORT:-6390}
PG_PORT=${SB_PG_PORT:-5490}
INGEST_PORT=${SB_INGEST_PORT:-8080}
SECRET_HEADER=${WEBHOOK_SECRET_HEADER:-X-Vapi-Secret}
# Bounds on every wait, in seconds.
START_TIMEOUT=30
STOP_TIMEOUT=20

say() { printf 'run-local: %s\n' "$*"; }
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

for p in REDIS_PORT PG_PORT INGEST_PORT; do
	v=${!p}
	if ! [[ $v =~ ^[0-9]+$ ]] || ((v < 1 || v > 65535)); then
		die "SB_$p: \"$v\" is not a port number"
	fi
done

# --- what this script started, and how to stop it --------------------------------------

REDIS_PID='' INGEST_PID='' PG_STARTED='' SLEEP_PID=''
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
setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$VAR/redis" \
	--appendonly yes --appendfsync always --daemonize no \
	>>"$LOG/redis.log" 2>&1 </dev/null &
REDIS_PID=$!
echo "$REDIS_PID" >"$VAR/redis.pid"
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
# No Unix socket (-k ''): nothing else on the machine should stumble on this server, and a
# socket path inside a deep checkout could exceed the 107-byte limit.
if ! pg_ctl_as_owner start -D "$PGDATA" -l "$LOG/postgres.log" -w -t "$START_TIMEOUT" \
	-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k ''" >/dev/null; then
	show_log "$LOG/postgres.log"
	die "PostgreSQL did not start"
fi
PG_PID=$(head -n 1 "$PGDATA/postmaster.pid")
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

INGEST_LISTEN=127.0.0.1:$INGEST_PORT WEBHOOK_SECRET=$WEBHOOK_SECRET INGEST_SPOOL_DIR=$VAR/spool \
	setsid "$BIN/switchboard-ingest" >>"$LOG/ingest.log" 2>&1 </dev/null &
INGEST_PID=$!
echo "$INGEST_PID" >"$VAR/ingest.pid"
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

for n in 1 2; do
	log=$LOG/worker-$n.log
	# Where this run's lines start, to find this worker's start-up line below.
	offsets[n]=$(($(stat -c %s "$log" 2>/dev/null || echo 0) + 1))
	WORKER_CONSUMER=local-$n WORKER_METRICS_LISTEN=127.0.0.1:$((${SB_METRICS_PORT:-9100} + n)) \
		setsid "$BIN/switchboard-worker" run >>"$log" 2>&1 </dev/null &
	WORKER_PIDS+=($!)
	echo "$!" >"$VAR/worker-$n.pid"
done
for n in 1 2; do
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

now_ms=$(date +%s%3N)
cat >"$VAR/sample.json" <<JSON
{"message":{"type":"status-update","status":"in-progress","timestamp":$now_ms,"call":{"id":"call_demo_1","type":"inboundPhoneCall","phoneNumberId":"pn_demo","assistantId":"asst_demo"},"customer":{"number":"+15551234"}}}
JSON
URL=http://127.0.0.1:$INGEST_PORT/api/vapi/webhook
# Single-quoted for pasting into a shell.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
cat <<EOF

Switchboard is running. Ctrl-C stops it; data stays in var/ for the next run.
  webhook URL  $URL
  secret       $WEBHOOK_SECRET  (var/webhook-secret, header $SECRET_HEADER)
  logs         var/log/ingest.log, worker-1.log, worker-2.log, redis.log, postgres.log

Send a sample status-update (inbound call on phone number pn_demo):
  curl -sS -X POST -H 'Content-Type: application/json' -H $(shq "$SECRET_HEADER: $WEBHOOK_SECRET") --data-binary @$(shq "$VAR/sample.json") $URL

See the stored call:
  psql $(shq "$DATABASE_URL") -c 'SELECT vapi_call_id, organization_id, status, call_type, customer_number, updated_at FROM calls ORDER BY updated_at DESC LIMIT 10'

EOF

# --- until told to stop -------------------------------------------------------------------

# A service that dies on its own ends the whole stack (with its log), rather than leaving a
# half-working one.
while :; do
	for entry in "redis-server:$REDIS_PID:redis" "switchboard-ingest:$INGEST_PID:ingest" \
		"switchboard-worker local-1:${WORKER_PIDS[0]}:worker-1" \
		"switchboard-worker local-2:${WORKER_PIDS[1]}:worker-2"; do
		IFS=: read -r name pid logname <<<"$entry"
		if ! alive "$pid"; then
			wait "$pid" 2>/dev/null
			say "$name (pid $pid) exited on its own (status $?)" >&2
			show_log "$LOG/$logname.log"
			exit 1
		fi
	done
	if ! kill -0 "$PG_PID" 2>/dev/null; then
		say "PostgreSQL (pid $PG_PID) exited on its own" >&2
		show_log "$LOG/postgres.log"
		exit 1
	fi
	# Waiting on a background sleep lets a signal's trap run at once.
	sleep 1 &
	SLEEP_PID=$!
	wait "$SLEEP_PID"
	SLEEP_PID=
done

/* The settings table: every environment variable, its flag, default, range and meaning. */
#include "cfg.h"

#include "log.h"
#include "redisconn.h"
#include "util.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum cfg_kind {
	CFG_STR,       /* any text */
	CFG_NAME,      /* non-empty text without spaces */
	CFG_INT,       /* whole number in [min, max] */
	CFG_SIZE,      /* byte size with optional unit, in [min, max] */
	CFG_DURATION,  /* time span with unit (ms, s, m, h, d), stored in ms, in [min, max] */
	CFG_BOOL,      /* true/false/1/0/yes/no/on/off */
	CFG_LEVEL,     /* log level */
	CFG_REDIS_URL, /* redis:// or unix:// */
	CFG_PG_URL,    /* libpq connection string or URI */
	CFG_LISTEN,    /* host:port; empty allowed when min is 0 */
	CFG_CHOICE,    /* one of the words in choices */
};

struct cfg_def {
	const char *env; /* environment variable; the flag is its lower-case, dashed form */
	enum cfg_kind kind;
	unsigned users;  /* CFG_INGEST | CFG_WORKER */
	const char *def; /* default text, NULL for none */
	long long min;   /* range for numbers; for CFG_LISTEN 0 means "may be empty" */
	long long max;
	size_t off;       /* offset of the field in struct cfg */
	const char *help; /* what it means, for --help and README */
};

#define F(field) offsetof(struct cfg, field)
#define BOTH (CFG_INGEST | CFG_WORKER)
/* Where Redis and the streams are: vapictl's backfill reads them too. */
#define REDIS_USERS (BOTH | CFG_VAPICTL)

static const struct cfg_def cfg_defs[] = {
    {"REDIS_URL", CFG_REDIS_URL, REDIS_USERS, "redis://127.0.0.1:6379/0", 0, 0, F(redis_url),
     "Redis holding the stream: redis://[[user]:password@]host[:port][/db] or unix:///path"},
    {"REDIS_SENTINELS", CFG_STR, REDIS_USERS, "", 0, 0, F(redis_sentinels),
     "host:port,... of Redis Sentinels: the master named REDIS_SENTINEL_MASTER is asked of them "
     "(REDIS_URL then gives only the password and database)"},
    {"REDIS_SENTINEL_MASTER", CFG_STR, REDIS_USERS, "", 0, 0, F(redis_sentinel_master),
     "the name the sentinels know the master by (with REDIS_SENTINELS)"},
    {"REDIS_CLUSTER", CFG_STR, REDIS_USERS, "", 0, 0, F(redis_cluster),
     "host:port,... of Redis Cluster nodes asked for the slot map (REDIS_URL then gives only the "
     "user and password); each stream shard lives on the master of its slot"},
    {"REDIS_TIMEOUT_MS", CFG_INT, REDIS_USERS, "2000", 50, 60000, F(redis_timeout_ms),
     "connect and command timeout for Redis, milliseconds"},
    {"SWITCHBOARD_STREAM", CFG_NAME, REDIS_USERS, "switchboard:webhooks", 0, 0, F(stream),
     "Redis stream that holds accepted webhooks"},
    {"SWITCHBOARD_SHARDS", CFG_INT, REDIS_USERS, "1", 1, 256, F(shards),
     "streams the webhooks are spread over, SWITCHBOARD_STREAM:{0} ... :{N-1} (1: the one stream "
     "SWITCHBOARD_STREAM, except under REDIS_CLUSTER); every ingest and worker must agree"},
    {"SWITCHBOARD_GROUP", CFG_NAME, BOTH, "workers", 0, 0, F(group),
     "consumer group the workers share"},
    {"SWITCHBOARD_DEAD_STREAM", CFG_NAME, BOTH, "switchboard:webhooks:dead", 0, 0, F(dead_stream),
     "stream for messages that cannot be processed, with their reason"},
    {"LOG_LEVEL", CFG_LEVEL, BOTH, "info", 0, 0, F(log_level),
     "lowest level logged: debug, info, warn or error"},
    {"INGEST_LISTEN", CFG_LISTEN, CFG_INGEST, "127.0.0.1:8080", 1, 0, F(listen),
     "address and port the HTTP listener binds, host:port"},
    {"INGEST_ADMIN_LISTEN", CFG_LISTEN, CFG_INGEST, "127.0.0.1:9100", 0, 0, F(admin_listen),
     "host:port of the admin listener (/metrics, /healthz, /readyz); empty turns it off"},
    {"INGEST_THREADS", CFG_INT, CFG_INGEST, "2", 1, 1024, F(threads),
     "event-loop threads, each serving any number of connections without blocking and pipelining "
     "their XADDs on its own Redis connection; about one per core given to ingest"},
    {"INGEST_MAX_BODY", CFG_SIZE, CFG_INGEST, "16MiB", 1024, 1LL << 30, F(max_body),
     "largest accepted body; larger ones get 413 (units: k, M, G, KiB, MiB, GiB)"},
    {"INGEST_REQUEST_TIMEOUT_MS", CFG_INT, CFG_INGEST, "10000", 100, 600000, F(request_timeout_ms),
     "time a client has to send its whole body, milliseconds; slower ones get 408"},
    {"INGEST_HEADER_TIMEOUT", CFG_DURATION, CFG_INGEST, "1s", 100, 60000, F(header_timeout_ms),
     "time a new connection has to send its request headers, and the longest pause while a "
     "body arrives"},
    {"INGEST_IDLE_TIMEOUT", CFG_DURATION, CFG_INGEST, "5s", 100, 600000, F(idle_timeout_ms),
     "how long an idle keep-alive connection is kept open"},
    {"INGEST_SPOOL_DIR", CFG_NAME, CFG_INGEST, "/var/lib/switchboard/spool", 0, 0, F(spool_dir),
     "folder of the local spool that keeps webhooks while Redis is down"},
    {"INGEST_SPOOL_MAX", CFG_SIZE, CFG_INGEST, "1GiB", 1 << 20, 1LL << 40, F(spool_max),
     "largest spool; when full, requests Redis cannot take get 503"},
    {"INGEST_COMPRESS_MIN", CFG_SIZE, CFG_INGEST, "2KiB", 0, 1LL << 30, F(compress_min),
     "bodies this large or larger are stored zstd-compressed in the stream; 0 turns it off"},
    {"INGEST_WAIT_AOF", CFG_BOOL, CFG_INGEST, "false", 0, 0, F(wait_aof),
     "answer 200 only once Redis has fsynced the entry to its append-only file (WAITAOF, "
     "Redis 7.2+; an older Redis logs an error and is used without it)"},
    {"INGEST_WAIT_REPLICAS", CFG_INT, CFG_INGEST, "0", 0, 16, F(wait_replicas),
     "answer 200 only once WAIT says this many replicas hold the entry (with Sentinel: an "
     "acknowledged webhook then survives losing the master); otherwise it is spooled"},
    {"WEBHOOK_SECRET", CFG_STR, CFG_INGEST, NULL, 0, 0, F(secret),
     "shared secret Vapi sends in WEBHOOK_SECRET_HEADER (one of the three credentials, "
     "or INGEST_AUTH_DISABLED=true, is required)"},
    {"WEBHOOK_SECRET_PREVIOUS", CFG_STR, CFG_INGEST, NULL, 0, 0, F(secret_prev),
     "the secret being rotated out, still accepted"},
    {"WEBHOOK_SECRET_HEADER", CFG_NAME, CFG_INGEST, "X-Vapi-Secret", 0, 0, F(secret_header),
     "header that carries the shared secret"},
    {"WEBHOOK_BEARER_TOKEN", CFG_STR, CFG_INGEST, NULL, 0, 0, F(bearer),
     "token Vapi sends as \"Bearer <token>\" in WEBHOOK_BEARER_HEADER"},
    {"WEBHOOK_BEARER_TOKEN_PREVIOUS", CFG_STR, CFG_INGEST, NULL, 0, 0, F(bearer_prev),
     "the token being rotated out, still accepted"},
    {"WEBHOOK_BEARER_HEADER", CFG_NAME, CFG_INGEST, "Authorization", 0, 0, F(bearer_header),
     "header that carries the bearer token"},
    {"WEBHOOK_HMAC_SECRET", CFG_STR, CFG_INGEST, NULL, 0, 0, F(hmac),
     "HMAC key of Vapi's credential: signature of \"{timestamp}.{body}\""},
    {"WEBHOOK_HMAC_SECRET_PREVIOUS", CFG_STR, CFG_INGEST, NULL, 0, 0, F(hmac_prev),
     "the HMAC key being rotated out, still accepted"},
    {"WEBHOOK_HMAC_ALGORITHM", CFG_CHOICE, CFG_INGEST, "sha256", 0, 0, F(hmac_alg),
     "HMAC digest: sha256, sha512 or sha1"},
    {"WEBHOOK_HMAC_SIGNATURE_HEADER", CFG_NAME, CFG_INGEST, "x-signature", 0, 0, F(sig_header),
     "header that carries the HMAC signature (hex or base64)"},
    {"WEBHOOK_HMAC_TIMESTAMP_HEADER", CFG_NAME, CFG_INGEST, "x-timestamp", 0, 0, F(ts_header),
     "header that carries the signed timestamp (seconds or milliseconds)"},
    {"WEBHOOK_HMAC_TOLERANCE", CFG_DURATION, CFG_INGEST, "300s", 1000, 86400000LL,
     F(hmac_tolerance_ms), "largest accepted difference between the timestamp and now"},
    {"INGEST_ALLOW_NETWORKS", CFG_STR, CFG_INGEST, "", 0, 0, F(allow_networks),
     "comma-separated CIDRs allowed to post (Vapi: 167.150.224.0/23); empty allows any"},
    {"INGEST_TRUSTED_PROXIES", CFG_STR, CFG_INGEST, "", 0, 0, F(trusted_proxies),
     "comma-separated CIDRs of proxies whose X-Forwarded-For is believed"},
    {"INGEST_AUTH_DISABLED", CFG_BOOL, CFG_INGEST, "false", 0, 0, F(auth_disabled),
     "accept requests without authentication (local testing only; logs a warning)"},
    {"DATABASE_URL", CFG_PG_URL, CFG_WORKER, "postgresql://127.0.0.1:5432/switchboard", 0, 0,
     F(database_url), "PostgreSQL connection string (URI or key=value)"},
    {"WORKER_BATCH", CFG_INT, CFG_WORKER, "500", 1, 10000, F(batch),
     "entries read and committed together"},
    {"WORKER_BLOCK_MS", CFG_INT, CFG_WORKER, "2000", 1, 60000, F(block_ms),
     "how long one read waits for new entries, milliseconds"},
    {"WORKER_CONSUMER", CFG_NAME, CFG_WORKER, "", 0, 0, F(consumer),
     "consumer name in the group (default: hostname-pid)"},
    {"WORKER_METRICS_LISTEN", CFG_LISTEN, CFG_WORKER, "", 0, 0, F(metrics_listen),
     "host:port of the worker's admin listener (/metrics, /healthz, /readyz, and the status "
     "page); empty turns it off"},
    {"ADMIN_TOKEN", CFG_STR, CFG_WORKER, "", 0, 0, F(admin_token),
     "when set, the status page and its /api require it (Authorization: Bearer, or the "
     "page's login form); /metrics, /healthz and /readyz stay open"},
    {"WORKER_CLAIM_IDLE", CFG_DURATION, CFG_WORKER, "60s", 1000, 86400000LL, F(claim_idle_ms),
     "an entry pending this long at another consumer (one that died) is taken over"},
    {"WORKER_MAX_DELIVERIES", CFG_INT, CFG_WORKER, "5", 1, 1000, F(max_deliveries),
     "an entry delivered more often than this is dead-lettered (\"max deliveries\")"},
    {"WORKER_REROUTE_INTERVAL", CFG_DURATION, CFG_WORKER, "60s", 0, 86400000LL, F(reroute_ms),
     "how often parked unrouted messages are routed again; 0 turns it off"},
    {"WORKER_TRIM_INTERVAL", CFG_DURATION, CFG_WORKER, "60s", 0, 86400000LL, F(trim_ms),
     "how often the stream is trimmed to the retention window; 0 turns it off"},
    {"EVENT_RETENTION", CFG_DURATION, CFG_WORKER, "90d", 0, 3650 * 86400000LL,
     F(event_retention_ms),
     "call_events are kept this long, whole months at a time (a month's partition goes once "
     "the month ended this long ago); 0 keeps them for ever"},
    {"SWITCHBOARD_RETENTION", CFG_DURATION, CFG_WORKER, "72h", 0, 365 * 86400000LL, F(retention_ms),
     "how long acknowledged entries stay in the stream for replay"},
};

#define NDEFS (sizeof(cfg_defs) / sizeof(cfg_defs[0]))

static void flag_name(const char *env, char *out, size_t size)
{
	size_t i = 0;

	for (; env[i] != '\0' && i + 1 < size; i++)
		out[i] = env[i] == '_' ? '-' : (char)tolower((unsigned char)env[i]);
	out[i] = '\0';
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
			*out = strcasecmp(s, yes[i]) == 0;
			return 0;
		}
	}
	return -1;
}

static int check_listen(const char *s)
{
	const char *colon = strrchr(s, ':');
	long long port;

	if (colon == NULL || colon == s)
		return -1;
	if (util_parse_ll(colon + 1, &port) != 0 || port < 1 || port > 65535)
		return -1;
	return 0;
}

static int check_pg(const char *s, char *why, size_t n)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(s, &msg);

	if (opts == NULL) {
		snprintf(why, n, "%s", msg ? msg : "unparseable");
		for (char *p = why; *p; p++)
			if (*p == '\n')
				*p = ' ';
		PQfreemem(msg);
		return -1;
	}
	PQconninfoFree(opts);
	return 0;
}

static int set_number(const struct cfg_def *d, struct cfg *c, const char *v, char *why, size_t n)
{
	long long x;
	int rc = d->kind == CFG_SIZE       ? util_parse_size(v, &x)
	         : d->kind == CFG_DURATION ? util_parse_duration_ms(v, &x)
	                                   : util_parse_ll(v, &x);

	if (rc != 0 || x < d->min || x > d->max) {
		if (d->kind == CFG_DURATION)
			snprintf(why, n,
			         "expected a duration such as 500ms, 30s, 5m, 72h or 7d, "
			         "from %lldms to %lldms",
			         d->min, d->max);
		else
			snprintf(why, n, "expected %s from %lld to %lld",
			         d->kind == CFG_SIZE ? "a size in bytes (units k, M, G)"
			                             : "a whole number",
			         d->min, d->max);
		return -1;
	}
	*(long long *)((char *)c + d->off) = x;
	return 0;
}

/* The words a CFG_CHOICE setting accepts, separated by '|'. */
static const char *choices_of(const struct cfg_def *d)
{
	return d->off == F(hmac_alg) ? "sha256|sha512|sha1" : "";
}

/* Whether v is one of the '|'-separated words. */
static bool choice_ok(const char *choices, const char *v)
{
	size_t n = strlen(v);

	for (const char *p = choices; p != NULL; p = strchr(p, '|') ? strchr(p, '|') + 1 : NULL)
		if (n > 0 && strncmp(p, v, n) == 0 && (p[n] == '|' || p[n] == '\0'))
			return true;
	return false;
}

static int set_string(const struct cfg_def *d, struct cfg *c, const char *v, char *why, size_t n)
{
	struct redis_addr ra;
	char **slot = (char **)((char *)c + d->off);
	char *copy;

	if (d->kind == CFG_NAME && d->off != F(consumer) && *v == '\0') {
		snprintf(why, n, "must not be empty");
		return -1;
	}
	if (d->kind == CFG_NAME && strpbrk(v, " \t\r\n") != NULL) {
		snprintf(why, n, "must not contain white space");
		return -1;
	}
	if (d->kind == CFG_LISTEN && !(d->min == 0 && *v == '\0') && check_listen(v) != 0) {
		snprintf(why, n, "expected host:port with a port from 1 to 65535");
		return -1;
	}
	if (d->kind == CFG_CHOICE && !choice_ok(choices_of(d), v)) {
		snprintf(why, n, "expected one of %s", choices_of(d));
		return -1;
	}
	if (d->kind == CFG_REDIS_URL && redisconn_parse_url(v, &ra, why, n) != 0)
		return -1;
	if (d->kind == CFG_PG_URL && check_pg(v, why, n) != 0)
		return -1;
	copy = strdup(v);
	if (copy == NULL) {
		snprintf(why, n, "out of memory");
		return -1;
	}
	free(*slot);
	*slot = copy;
	return 0;
}

/* Validates v for d and stores it in c. Returns 0, or -1 with the reason in why. */
static int cfg_set(const struct cfg_def *d, struct cfg *c, const char *v, char *why, size_t n)
{
	enum log_level lvl;

	switch (d->kind) {
	case CFG_INT:
	case CFG_SIZE:
	case CFG_DURATION:
		return set_number(d, c, v, why, n);
	case CFG_BOOL:
		if (parse_bool(v, (bool *)((char *)c + d->off)) != 0) {
			snprintf(why, n, "expected true or false");
			return -1;
		}
		return 0;
	case CFG_LEVEL:
		if (log_level_parse(v, &lvl) != 0) {
			snprintf(why, n, "expected debug, info, warn or error");
			return -1;
		}
		*(int *)((char *)c + d->off) = (int)lvl;
		return 0;
	default:
		return set_string(d, c, v, why, n);
	}
}

static int apply(const struct cfg_def *d, struct cfg *c, const char *v, const char *from,
                 struct cfg_error *err)
{
	char why[300];

	if (cfg_set(d, c, v, why, sizeof(why)) == 0)
		return 0;
	snprintf(err->errstr, sizeof(err->errstr), "%s%s: invalid value: %s", d->env, from, why);
	return -1;
}

static const struct cfg_def *find_flag(const char *arg, size_t len)
{
	char flag[64];

	for (size_t i = 0; i < NDEFS; i++) {
		flag_name(cfg_defs[i].env, flag, sizeof(flag));
		if (strlen(flag) == len && strncmp(arg, flag, len) == 0)
			return &cfg_defs[i];
	}
	return NULL;
}

/* Applies flags from argv; stops at the first non-flag argument. */
static int load_flags(struct cfg *c, unsigned user, int argc, char **argv, int *argi,
                      struct cfg_error *err)
{
	int i = 1;

	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *arg = argv[i] + 2, *eq = strchr(arg, '=');
		size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
		const struct cfg_def *d;
		const char *v;

		if (strcmp(arg, "check-config") == 0 || strcmp(arg, "help") == 0) {
			*(arg[0] == 'c' ? &c->check_only : &c->help) = true;
			continue;
		}
		d = find_flag(arg, len);
		if (d == NULL || !(d->users & user)) {
			snprintf(err->errstr, sizeof(err->errstr),
			         "unknown flag --%.*s (see --help)", (int)len, arg);
			return -1;
		}
		if (eq == NULL && i + 1 >= argc) {
			snprintf(err->errstr, sizeof(err->errstr), "--%.*s needs a value", (int)len,
			         arg);
			return -1;
		}
		v = eq ? eq + 1 : argv[++i];
		if (apply(d, c, v, " (flag)", err) != 0)
			return -1;
	}
	*argi = i;
	return 0;
}

static bool set(const char *s)
{
	return s != NULL && *s != '\0';
}

int cfg_redis_addr(const struct cfg *c, struct redis_addr *a, char *err, size_t errlen)
{
	char why[256];

	if (redisconn_parse_url(c->redis_url, a, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "REDIS_URL: %s", why);
		return -1;
	}
	if (redisconn_set_sentinels(a, c->redis_sentinels, c->redis_sentinel_master, err, errlen) !=
	    0)
		return -1;
	if (redisconn_set_cluster(a, c->redis_cluster, err, errlen) != 0)
		return -1;
	return 0;
}

static int finish(struct cfg *c, unsigned user, struct cfg_error *err)
{
	char host[200], name[256];
	struct redis_addr ra;

	if (cfg_redis_addr(c, &ra, err->errstr, sizeof(err->errstr)) != 0)
		return -1;
	if ((c->shards > 1 || ra.cluster[0] != '\0') &&
	    (strpbrk(c->stream, "{}") != NULL || strpbrk(c->dead_stream, "{}") != NULL)) {
		snprintf(
		    err->errstr, sizeof(err->errstr),
		    "%s: may not hold { or } when the streams are sharded (SWITCHBOARD_SHARDS > 1 "
		    "or REDIS_CLUSTER): each shard's name gets its own hash tag",
		    strpbrk(c->stream, "{}") != NULL ? "SWITCHBOARD_STREAM"
		                                     : "SWITCHBOARD_DEAD_STREAM");
		return -1;
	}

	if ((user & CFG_INGEST) && !c->auth_disabled && !set(c->secret) && !set(c->secret_prev) &&
	    !set(c->bearer) && !set(c->bearer_prev) && !set(c->hmac) && !set(c->hmac_prev)) {
		snprintf(
		    err->errstr, sizeof(err->errstr),
		    "WEBHOOK_SECRET: required (the shared secret Vapi sends in %s), or "
		    "WEBHOOK_BEARER_TOKEN or WEBHOOK_HMAC_SECRET; set INGEST_AUTH_DISABLED=true "
		    "to run without authentication",
		    c->secret_header);
		return -1;
	}
	if ((user & CFG_WORKER) && (c->consumer == NULL || *c->consumer == '\0')) {
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "worker");
		host[sizeof(host) - 1] = '\0';
		snprintf(name, sizeof(name), "%s-%ld", host, (long)getpid());
		free(c->consumer);
		c->consumer = strdup(name);
		if (c->consumer == NULL) {
			snprintf(err->errstr, sizeof(err->errstr), "out of memory");
			return -1;
		}
	}
	return 0;
}

int cfg_load(struct cfg *c, unsigned user, int argc, char **argv, int *argi, struct cfg_error *err)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NDEFS; i++) {
		const struct cfg_def *d = &cfg_defs[i];
		const char *env = getenv(d->env);

		if (d->def != NULL && apply(d, c, d->def, " (default)", err) != 0)
			return -1;
		if ((d->users & user) && env != NULL && apply(d, c, env, "", err) != 0)
			return -1;
	}
	if (load_flags(c, user, argc, argv, argi, err) != 0)
		return -1;
	return c->help ? 0 : finish(c, user, err);
}

void cfg_free(struct cfg *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < NDEFS; i++) {
		const struct cfg_def *d = &cfg_defs[i];

		if (d->kind != CFG_INT && d->kind != CFG_SIZE && d->kind != CFG_DURATION &&
		    d->kind != CFG_BOOL && d->kind != CFG_LEVEL) {
			char **slot = (char **)((char *)c + d->off);

			free(*slot);
			*slot = NULL;
		}
	}
}

/* A line per setting `user` reads: name, flag (with flags), meaning, default. */
static void usage_rows(unsigned user, FILE *fp, bool flags)
{
	char flag[64];

	for (size_t i = 0; i < NDEFS; i++) {
		const struct cfg_def *d = &cfg_defs[i];

		if (!(d->users & user))
			continue;
		flag_name(d->env, flag, sizeof(flag));
		if (flags)
			fprintf(fp, "  %-26s --%-26s %s", d->env, flag, d->help);
		else
			fprintf(fp, "  %-29s %s", d->env, d->help);
		if (d->def != NULL && *d->def != '\0')
			fprintf(fp, " [default: %s]", d->def);
		fprintf(fp, "\n");
	}
}

void cfg_usage(unsigned user, void *fp)
{
	fprintf(fp, "Settings (environment variable, or the flag of the same meaning):\n");
	usage_rows(user, fp, true);
	fprintf(fp, "  --check-config validates the settings and exits; --help shows this.\n");
}

void cfg_env_usage(unsigned user, void *fp)
{
	usage_rows(user, fp, false);
}

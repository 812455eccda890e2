#ifndef SB_CFG_H
#define SB_CFG_H

#include "redisconn.h"

#include <stdbool.h>
#include <stddef.h>

/* Every setting of every binary, loaded from environment variables and then from flags of
 * the same meaning (REDIS_URL ↔ --redis-url), validated in one place. */

/* Which binary reads a setting. */
#define CFG_INGEST 1u
#define CFG_WORKER 2u
#define CFG_VAPICTL 4u /* vapictl backfill: where Redis and the stream shards are */

struct cfg {
	/* shared */
	char *redis_url;             /* REDIS_URL */
	char *redis_sentinels;       /* REDIS_SENTINELS, "host:port,..." or empty */
	char *redis_sentinel_master; /* REDIS_SENTINEL_MASTER */
	char *redis_cluster;         /* REDIS_CLUSTER, "host:port,..." or empty */
	char *stream;                /* SWITCHBOARD_STREAM */
	long long shards;            /* SWITCHBOARD_SHARDS: streams the entries are spread over */
	char *group;                 /* SWITCHBOARD_GROUP */
	char *dead_stream;           /* SWITCHBOARD_DEAD_STREAM */
	int log_level;               /* LOG_LEVEL, an enum log_level */
	long long redis_timeout_ms;  /* REDIS_TIMEOUT_MS */
	/* ingest */
	char *listen;                 /* INGEST_LISTEN, host:port */
	long long wait_replicas;      /* INGEST_WAIT_REPLICAS, 0: off */
	char *admin_listen;           /* INGEST_ADMIN_LISTEN, host:port or empty */
	long long threads;            /* INGEST_THREADS */
	long long max_body;           /* INGEST_MAX_BODY, bytes */
	char *secret;                 /* WEBHOOK_SECRET */
	char *secret_prev;            /* WEBHOOK_SECRET_PREVIOUS */
	char *secret_header;          /* WEBHOOK_SECRET_HEADER */
	char *bearer;                 /* WEBHOOK_BEARER_TOKEN */
	char *bearer_prev;            /* WEBHOOK_BEARER_TOKEN_PREVIOUS */
	char *bearer_header;          /* WEBHOOK_BEARER_HEADER */
	char *hmac;                   /* WEBHOOK_HMAC_SECRET */
	char *hmac_prev;              /* WEBHOOK_HMAC_SECRET_PREVIOUS */
	char *hmac_alg;               /* WEBHOOK_HMAC_ALGORITHM */
	char *sig_header;             /* WEBHOOK_HMAC_SIGNATURE_HEADER */
	char *ts_header;              /* WEBHOOK_HMAC_TIMESTAMP_HEADER */
	long long hmac_tolerance_ms;  /* WEBHOOK_HMAC_TOLERANCE, ms */
	char *allow_networks;         /* INGEST_ALLOW_NETWORKS */
	char *trusted_proxies;        /* INGEST_TRUSTED_PROXIES */
	bool auth_disabled;           /* INGEST_AUTH_DISABLED */
	long long request_timeout_ms; /* INGEST_REQUEST_TIMEOUT_MS */
	long long idle_timeout_ms;    /* INGEST_IDLE_TIMEOUT, ms */
	long long header_timeout_ms;  /* INGEST_HEADER_TIMEOUT, ms */
	char *spool_dir;              /* INGEST_SPOOL_DIR */
	long long spool_max;          /* INGEST_SPOOL_MAX, bytes */
	long long compress_min;       /* INGEST_COMPRESS_MIN, bytes, 0: off */
	bool wait_aof;                /* INGEST_WAIT_AOF */
	/* worker */
	char *database_url;           /* DATABASE_URL */
	long long batch;              /* WORKER_BATCH */
	long long block_ms;           /* WORKER_BLOCK_MS */
	char *consumer;               /* WORKER_CONSUMER */
	char *metrics_listen;         /* WORKER_METRICS_LISTEN, host:port or empty */
	char *admin_token;            /* ADMIN_TOKEN, empty: the status page is open */
	long long claim_idle_ms;      /* WORKER_CLAIM_IDLE, ms */
	long long max_deliveries;     /* WORKER_MAX_DELIVERIES */
	long long reroute_ms;         /* WORKER_REROUTE_INTERVAL, ms, 0: off */
	long long trim_ms;            /* WORKER_TRIM_INTERVAL, ms, 0: off */
	long long retention_ms;       /* SWITCHBOARD_RETENTION, ms */
	long long event_retention_ms; /* EVENT_RETENTION, ms, 0: keep for ever */
	bool check_only;              /* --check-config was given */
	bool help;                    /* --help was given */
};

struct cfg_error {
	char errstr[512];
};

/* Fills c for the binary `user` (CFG_INGEST or CFG_WORKER): defaults, then the environment,
 * then flags in argv[1..] up to the first argument that is not a flag, whose index is
 * stored in *argi. Returns 0, or -1 with err naming the variable and what it accepts.
 * Strings in c are owned by c: release with cfg_free(). */
/* Where Redis is for c: REDIS_URL, and the sentinels to ask when REDIS_SENTINELS is set.
 * Returns 0, or -1 with a reason naming the setting in err. */
int cfg_redis_addr(const struct cfg *c, struct redis_addr *a, char *err, size_t errlen)
    __attribute__((warn_unused_result));

int cfg_load(struct cfg *c, unsigned user, int argc, char **argv, int *argi, struct cfg_error *err)
    __attribute__((warn_unused_result));

/* Releases the strings of c (NULL-safe). */
void cfg_free(struct cfg *c);

/* Writes the settings that `user` reads, with defaults and meaning, to fp (for --help). */
void cfg_usage(unsigned user, void *fp);

/* Same as cfg_usage() without the flags, for a program that reads only the environment
 * (cfg_load() with no flags in argv): a line per variable. */
void cfg_env_usage(unsigned user, void *fp);

#endif

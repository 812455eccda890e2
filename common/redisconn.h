#ifndef SB_REDISCONN_H
#define SB_REDISCONN_H

#include <hiredis/hiredis.h>
#include <stddef.h>

/* Where and how to reach Redis, parsed from REDIS_URL:
 * redis://[[user]:password@]host[:port][/db] or unix:///path/to/socket[?db=N].
 * rediss:// (TLS) is refused: hiredis 0.14, the version Debian 12 ships, has no TLS API;
 * put a TLS tunnel (stunnel, spiped) in front of a remote Redis instead. */
struct redis_addr {
	char host[256];      /* host name or address; empty for a unix socket */
	int port;            /* TCP port */
	char path[256];      /* unix socket path, or empty */
	char user[128];      /* ACL user, or empty */
	char password[256];  /* password, or empty */
	int db;              /* database number */
	char sentinels[512]; /* REDIS_SENTINELS "host:port,...": the master is asked of them */
	char master[128];    /* REDIS_SENTINEL_MASTER, the name the sentinels know it by */
	char cluster[512];   /* REDIS_CLUSTER "host:port,...": nodes of a Redis Cluster to ask
	                        for the slot map */
};

/* Parses url into *a. Returns 0, or -1 with a reason in err. */
int redisconn_parse_url(const char *url, struct redis_addr *a, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Makes a use Sentinel: list is "host:port,..." (empty: not), master the name the sentinels
 * monitor. The URL's password and database still apply to the master. Returns 0, or -1 with
 * a reason in err. */
int redisconn_set_sentinels(struct redis_addr *a, const char *list, const char *master, char *err,
                            size_t errlen) __attribute__((warn_unused_result));

/* Makes a use Redis Cluster: list is "host:port,..." (empty: not), the nodes first asked for
 * the slot map. The URL's user and password still apply; its database must be 0. Returns 0,
 * or -1 with a reason in err. */
int redisconn_set_cluster(struct redis_addr *a, const char *list, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Connects, authenticates and selects the database, with timeout_ms for connect and each
 * command. With sentinels, the master is asked of them (the first that answers) on every
 * call, and the server found must say it is a master (ROLE): so a caller that reconnects
 * after a lost connection follows a failover. Returns a new context (free with redisFree())
 * or NULL with a reason in err. */
redisContext *redisconn_open(const struct redis_addr *a, int timeout_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Same as redisconn_open() for commands on key (and keys of its hash tag). With a cluster,
 * the slot map is read afresh (CLUSTER SLOTS, from the first of REDIS_CLUSTER's nodes or of
 * the masters last seen that answers) and the master serving key's slot is connected: so a
 * caller that reopens after a lost connection or a redirection (redisconn_demoted()) follows
 * a failover or a moved slot. Without one, key does not matter. */
redisContext *redisconn_open_key(const struct redis_addr *a, const char *key, int timeout_ms,
                                 char *err, size_t errlen) __attribute__((warn_unused_result));

/* Runs a command given as argv with lengths. Returns the reply (free with
 * freeReplyObject()), or NULL when the connection failed: the context is then dead and
 * must be freed. An ASK redirection (a cluster slot being migrated) is followed: the command
 * is sent once more, after ASKING, to the node named, and that node's reply returned. */
redisReply *redisconn_cmd(redisContext *c, int argc, const char **argv, const size_t *lens);

/* Same as redisconn_cmd() for NUL-terminated arguments. */
redisReply *redisconn_cmdv(redisContext *c, int argc, const char **argv);

/* Whether r is an error that means this server is not, or no longer, the one to ask
 * (READONLY after a failover demoted it, MASTERDOWN; in a cluster MOVED, an ASK met in a
 * pipeline, CLUSTERDOWN, TRYAGAIN): the caller must drop the connection and open a new one
 * (redisconn_open_key() then finds the right node), retrying with its usual backoff. */
int redisconn_demoted(const redisReply *r);

/* Appends WAIT replicas timeout_ms (pipelining): its reply says how many replicas have every
 * write sent before it on this connection. */
void redisconn_append_wait(redisContext *c, int replicas, int timeout_ms);

/* Whether r, the reply to a WAIT, counts at least replicas replicas. */
int redisconn_wait_reached(const redisReply *r, int replicas);

/* Whether this Redis knows WAITAOF (Redis 7.2 and later, Valkey). */
int redisconn_has_waitaof(redisContext *c);

/* Appends WAITAOF 1 0 timeout_ms to c's output buffer (pipelining): its reply says whether
 * the local append-only file holds every write sent before it on this connection. */
void redisconn_append_waitaof(redisContext *c, int timeout_ms);

/* Whether r, the reply to a WAITAOF, says the local append-only file has the writes. */
int redisconn_waitaof_synced(const redisReply *r);

#endif

/* Redis connection helpers: URL parsing, connect with timeouts, AUTH and SELECT; the master
 * found through Sentinel, or a key's master in a cluster (slot map from rslots.c). */
#include "redisconn.h"
#include "rslots.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies the decoded %xx form of src[0..n) into dst. Returns -1 when it does not fit. */
static int url_decode(char *dst, size_t size, const char *src, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = src[i];

		if (c == '%' && i + 2 < n) {
			char hex[3] = {src[i + 1], src[i + 2], 0};
			char *end;
			long v = strtol(hex, &end, 16);

			if (*end != '\0')
				return -1;
			c = (char)v;
			i += 2;
		}
		if (o + 1 >= size)
			return -1;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return 0;
}

static int parse_db(const char *s, int *db)
{
	char *end;
	long v;

	if (*s == '\0')
		return 0;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v < 0 || v > 1000)
		return -1;
	*db = (int)v;
	return 0;
}

static int parse_unix(const char *rest, struct redis_addr *a, char *err, size_t errlen)
{
	const char *q = strchr(rest, '?');
	size_t n = q ? (size_t)(q - rest) : strlen(rest);

	if (n == 0 || rest[0] != '/' || n >= sizeof(a->path)) {
		snprintf(err, errlen, "unix:// needs an absolute socket path");
		return -1;
	}
	memcpy(a->path, rest, n);
	a->path[n] = '\0';
	if (q != NULL && (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &a->db) != 0)) {
		snprintf(err, errlen, "unix:// accepts only ?db=N");
		return -1;
	}
	return 0;
}

static int parse_userinfo(const char *s, size_t n, struct redis_addr *a)
{
	const char *colon = memchr(s, ':', n);

	if (colon == NULL)
		return url_decode(a->password, sizeof(a->password), s, n);
	if (url_decode(a->user, sizeof(a->user), s, (size_t)(colon - s)) != 0)
		return -1;
	return url_decode(a->password, sizeof(a->password), colon + 1, n - (size_t)(colon - s) - 1);
}

static int parse_hostport(const char *s, size_t n, struct redis_addr *a)
{
	const char *colon = NULL;
	size_t hlen;

	if (n > 0 && s[0] == '[') { /* [::1]:6379 */
		const char *rb = memchr(s, ']', n);

		if (rb == NULL)
			return -1;
		hlen = (size_t)(rb - s - 1);
		if (hlen == 0 || hlen >= sizeof(a->host))
			return -1;
		memcpy(a->host, s + 1, hlen);
		a->host[hlen] = '\0';
		if (rb + 1 < s + n && rb[1] == ':')
			colon = rb + 1;
		else if (rb + 1 != s + n)
			return -1;
	} else {
		colon = memchr(s, ':', n);
		hlen = colon ? (size_t)(colon - s) : n;
		if (hlen == 0 || hlen >= sizeof(a->host))
			return -1;
		memcpy(a->host, s, hlen);
		a->host[hlen] = '\0';
	}
	if (colon != NULL) {
		char port[8];
		size_t plen = (size_t)(s + n - colon - 1);
		char *end;
		long v;

		if (plen == 0 || plen >= sizeof(port))
			return -1;
		memcpy(port, colon + 1, plen);
		port[plen] = '\0';
		v = strtol(port, &end, 10);
		if (*end != '\0' || v < 1 || v > 65535)
			return -1;
		a->port = (int)v;
	}
	return 0;
}

int redisconn_parse_url(const char *url, struct redis_addr *a, char *err, size_t errlen)
{
	const char *rest, *slash, *at;
	size_t authlen;

	memset(a, 0, sizeof(*a));
	a->port = 6379;
	if (strncmp(url, "unix://", 7) == 0)
		return parse_unix(url + 7, a, err, errlen);
	if (strncmp(url, "rediss://", 9) == 0) {
		snprintf(err, errlen,
		         "rediss:// (TLS) is not supported by the hiredis this was built with; "
		         "use redis:// through a TLS tunnel");
		return -1;
	}
	if (strncmp(url, "redis://", 8) != 0) {
		snprintf(err, errlen,
		         "expected redis://[[user]:password@]host[:port][/db] or "
		         "unix:///path");
		return -1;
	}
	rest = url + 8;
	slash = strchr(rest, '/');
	authlen = slash ? (size_t)(slash - rest) : strlen(rest);
	/* The last '@' ends the user info: a password may contain '@'. */
	at = memrchr(rest, '@', authlen);
	if (at != NULL) {
		if (parse_userinfo(rest, (size_t)(at - rest), a) != 0)
			goto bad;
		authlen -= (size_t)(at + 1 - rest);
		rest = at + 1;
	}
	if (parse_hostport(rest, authlen, a) != 0)
		goto bad;
	if (slash != NULL && parse_db(slash + 1, &a->db) != 0)
		goto bad;
	return 0;
bad:
	snprintf(err, errlen,
	         "expected redis://[[user]:password@]host[:port][/db] with a port "
	         "from 1 to 65535 and a database number");
	return -1;
}

static int expect_ok(redisContext *c, int argc, const char **argv, char *err, size_t errlen)
{
	redisReply *r = redisconn_cmdv(c, argc, argv);

	if (r == NULL) {
		snprintf(err, errlen, "%s: %s", argv[0], c->errstr);
		return -1;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "%s: %s", argv[0], r->str);
		freeReplyObject(r);
		return -1;
	}
	freeReplyObject(r);
	return 0;
}

/* Whether list is "host:port,host:port,..." with every port given. */
static int valid_hostports(const char *list)
{
	const char *p = list;

	for (;;) {
		size_t n = strcspn(p, ",");
		struct redis_addr one = {.port = 0};

		if (n == 0 || parse_hostport(p, n, &one) != 0 || one.port == 0 ||
		    one.host[0] == '\0')
			return 0;
		if (p[n] == '\0')
			return 1;
		p += n + 1;
	}
}

int redisconn_set_sentinels(struct redis_addr *a, const char *list, const char *master, char *err,
                            size_t errlen)
{
	const char *p = list != NULL ? list : "";

	a->sentinels[0] = a->master[0] = '\0';
	if (*p == '\0')
		return 0;
	if (strlen(p) >= sizeof(a->sentinels)) {
		snprintf(err, errlen, "REDIS_SENTINELS is too long");
		return -1;
	}
	if (!valid_hostports(p)) {
		snprintf(err, errlen, "REDIS_SENTINELS: expected host:port,host:port,...");
		return -1;
	}
	if (master == NULL || *master == '\0' || strlen(master) >= sizeof(a->master)) {
		snprintf(err, errlen,
		         "REDIS_SENTINEL_MASTER must name the master the sentinels watch");
		return -1;
	}
	snprintf(a->sentinels, sizeof(a->sentinels), "%s", list);
	snprintf(a->master, sizeof(a->master), "%s", master);
	return 0;
}

int redisconn_set_cluster(struct redis_addr *a, const char *list, char *err, size_t errlen)
{
	const char *p = list != NULL ? list : "";

	a->cluster[0] = '\0';
	if (*p == '\0')
		return 0;
	if (strlen(p) >= sizeof(a->cluster)) {
		snprintf(err, errlen, "REDIS_CLUSTER is too long");
		return -1;
	}
	if (!valid_hostports(p)) {
		snprintf(err, errlen, "REDIS_CLUSTER: expected host:port,host:port,...");
		return -1;
	}
	if (a->sentinels[0] != '\0') {
		snprintf(err, errlen, "REDIS_CLUSTER: set it or REDIS_SENTINELS, not both");
		return -1;
	}
	if (a->path[0] != '\0' || a->db != 0) {
		snprintf(err, errlen,
		         "REDIS_CLUSTER: a cluster has database 0 only and is reached over TCP; "
		         "REDIS_URL may give only its user and password");
		return -1;
	}
	snprintf(a->cluster, sizeof(a->cluster), "%s", list);
	return 0;
}

static redisContext *open_at(const struct redis_addr *a, const char *host, int port, int timeout_ms,
                             char *err, size_t errlen);

/* Whether c's server says it is a master. */
static int is_master(redisContext *c)
{
	const char *argv[] = {"ROLE"};
	redisReply *r = redisconn_cmdv(c, 1, argv);
	int yes = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	          r->element[0]->type == REDIS_REPLY_STRING &&
	          strcmp(r->element[0]->str, "master") == 0;

	freeReplyObject(r);
	return yes;
}

/* Asks one sentinel for the master's address. Returns 0 with host and *port, or -1. */
static int ask_sentinel(const struct redis_addr *a, const char *host, int sport, int timeout_ms,
                        char *mhost, size_t size, int *mport, char *err, size_t errlen)
{
	struct redis_addr plain = {.port = sport};
	const char *argv[] = {"SENTINEL", "get-master-addr-by-name", a->master};
	redisContext *s = open_at(&plain, host, sport, timeout_ms, err, errlen);
	redisReply *r = s ? redisconn_cmdv(s, 3, argv) : NULL;
	int rc = -1;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[1]->type == REDIS_REPLY_STRING) {
		snprintf(mhost, size, "%s", r->element[0]->str);
		*mport = (int)strtol(r->element[1]->str, NULL, 10);
		rc = 0;
	} else if (s != NULL) {
		snprintf(err, errlen, "sentinel %.200s:%d does not know a master named %.120s",
		         host, sport, a->master);
	}
	freeReplyObject(r);
	redisFree(s);
	return rc;
}

/* The master the sentinels name, connected; the first sentinel that names a server that
 * says it is a master wins. */
static redisContext *open_by_sentinels(const struct redis_addr *a, int timeout_ms, char *err,
                                       size_t errlen)
{
	const char *p = a->sentinels;
	char why[640] = "no sentinel answered";

	for (;;) {
		size_t n = strcspn(p, ",");
		struct redis_addr one = {.port = 0};
		char mhost[256];
		int mport = 0;
		redisContext *c;

		if (parse_hostport(p, n, &one) == 0 &&
		    ask_sentinel(a, one.host, one.port, timeout_ms, mhost, sizeof(mhost), &mport,
		                 why, sizeof(why)) == 0) {
			c = open_at(a, mhost, mport, timeout_ms, why, sizeof(why));
			if (c != NULL && is_master(c))
				return c;
			if (c != NULL)
				snprintf(why, sizeof(why),
				         "%.200s:%d, named by sentinel %.200s:%d, is not a master",
				         mhost, mport, one.host, one.port);
			redisFree(c);
		}
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	snprintf(err, errlen, "REDIS_SENTINELS (master %.120s): %.400s", a->master, why);
	return NULL;
}

/* The cluster this process talks to, shared by its threads: the masters last seen (asked
 * for the slot map before REDIS_CLUSTER's own nodes, which may be gone) and the credentials
 * an ASK redirection connects with. */
static struct {
	pthread_mutex_t lock;
	struct redis_addr addr;
	struct rslots_node *seen;
	int nseen;
} cluster = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Asks host:port for the slot map. Returns 0 with *m filled, or -1 with the reason. */
static int slots_from(const struct redis_addr *a, const char *host, int port, int timeout_ms,
                      struct rslots *m, char *err, size_t errlen)
{
	const char *argv[] = {"CLUSTER", "SLOTS"};
	redisContext *c = open_at(a, host, port, timeout_ms, err, errlen);
	redisReply *r;
	int rc = -1;

	if (c == NULL)
		return -1;
	r = redisconn_cmdv(c, 2, argv);
	if (r == NULL)
		snprintf(err, errlen, "CLUSTER SLOTS on %.200s:%d: %s", host, port, c->errstr);
	else
		rc = rslots_parse(r, host, m, err, errlen);
	if (rc == 0 && m->nnodes == 0) {
		snprintf(err, errlen, "%.200s:%d serves no slot (is it a cluster node?)", host,
		         port);
		rslots_free(m);
		rc = -1;
	}
	freeReplyObject(r);
	redisFree(c);
	return rc;
}

/* The slot map from the first node that gives one: the masters last seen, then the nodes of
 * REDIS_CLUSTER. Remembers the new masters. */
static int load_slots(const struct redis_addr *a, int timeout_ms, struct rslots *m, char *err,
                      size_t errlen)
{
	struct rslots_node *seen = NULL;
	int nseen = 0, rc = -1;
	const char *p = a->cluster;

	pthread_mutex_lock(&cluster.lock);
	cluster.addr = *a;
	if (cluster.nseen > 0 && (seen = malloc((size_t)cluster.nseen * sizeof(*seen))) != NULL) {
		memcpy(seen, cluster.seen, (size_t)cluster.nseen * sizeof(*seen));
		nseen = cluster.nseen;
	}
	pthread_mutex_unlock(&cluster.lock);
	for (int i = 0; i < nseen && rc != 0; i++)
		rc = slots_from(a, seen[i].host, seen[i].port, timeout_ms, m, err, errlen);
	while (rc != 0) {
		size_t n = strcspn(p, ",");
		struct redis_addr one = {.port = 0};

		if (parse_hostport(p, n, &one) == 0)
			rc = slots_from(a, one.host, one.port, timeout_ms, m, err, errlen);
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	free(seen);
	if (rc != 0)
		return -1;
	seen = malloc((size_t)m->nnodes * sizeof(*seen));
	if (seen != NULL) {
		memcpy(seen, m->nodes, (size_t)m->nnodes * sizeof(*seen));
		pthread_mutex_lock(&cluster.lock);
		free(cluster.seen);
		cluster.seen = seen;
		cluster.nseen = m->nnodes;
		pthread_mutex_unlock(&cluster.lock);
	}
	return 0;
}

/* The master of key's slot, connected. */
static redisContext *open_in_cluster(const struct redis_addr *a, const char *key, int timeout_ms,
                                     char *err, size_t errlen)
{
	struct rslots m;
	const struct rslots_node *n;
	unsigned slot = rslots_keyslot(key, strlen(key));
	char why[512];
	redisContext *c;

	if (load_slots(a, timeout_ms, &m, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "REDIS_CLUSTER: no node gave the slot map: %.400s", why);
		return NULL;
	}
	n = rslots_owner(&m, slot);
	if (n == NULL) {
		snprintf(err, errlen, "REDIS_CLUSTER: no master serves slot %u (of %.200s)", slot,
		         key);
		rslots_free(&m);
		return NULL;
	}
	c = open_at(a, n->host, n->port, timeout_ms, err, errlen);
	rslots_free(&m);
	return c;
}

redisContext *redisconn_open_key(const struct redis_addr *a, const char *key, int timeout_ms,
                                 char *err, size_t errlen)
{
	if (a->cluster[0] != '\0')
		return open_in_cluster(a, key, timeout_ms, err, errlen);
	if (a->sentinels[0] != '\0')
		return open_by_sentinels(a, timeout_ms, err, errlen);
	return open_at(a, a->host, a->port, timeout_ms, err, errlen);
}

redisContext *redisconn_open(const struct redis_addr *a, int timeout_ms, char *err, size_t errlen)
{
	return redisconn_open_key(a, "", timeout_ms, err, errlen);
}

/* Connects to host:port (or a's unix socket when a has one), with a's credentials and db. */
static redisContext *open_at(const struct redis_addr *a, const char *host, int port, int timeout_ms,
                             char *err, size_t errlen)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	redisContext *c;
	char db[16];

	if (a->path[0] != '\0')
		c = redisConnectUnixWithTimeout(a->path, tv);
	else
		c = redisConnectWithTimeout(host, port, tv);
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (c->err) {
		snprintf(err, errlen, "connect %s:%d: %s", a->path[0] ? a->path : host, port,
		         c->errstr);
		goto fail;
	}
	if (redisSetTimeout(c, tv) != REDIS_OK) {
		snprintf(err, errlen, "set timeout: %s", c->errstr);
		goto fail;
	}
	if (a->password[0] != '\0') {
		const char *auth2[] = {"AUTH", a->password};
		const char *auth3[] = {"AUTH", a->user, a->password};

		if (a->user[0] != '\0' ? expect_ok(c, 3, auth3, err, errlen) != 0
		                       : expect_ok(c, 2, auth2, err, errlen) != 0)
			goto fail;
	}
	if (a->db != 0) {
		const char *sel[] = {"SELECT", db};

		snprintf(db, sizeof(db), "%d", a->db);
		if (expect_ok(c, 2, sel, err, errlen) != 0)
			goto fail;
	}
	return c;
fail:
	redisFree(c);
	return NULL;
}

/* Sends the command to the node an ASK reply names, after ASKING. Returns that node's reply,
 * or NULL (*ask left to the caller) when it cannot be reached. */
static redisReply *follow_ask(const redisReply *ask, redisContext *from, int argc,
                              const char **argv, const size_t *lens)
{
	struct redis_addr a;
	char host[256], err[256];
	unsigned slot;
	int port;
	redisContext *c;
	redisReply *r = NULL, *ok;
	const char *asking[] = {"ASKING"};

	if (rslots_redirect(ask, &slot, host, sizeof(host), &port) != RSLOTS_ASK)
		return NULL;
	if (host[0] == '\0' && from->tcp.host != NULL)
		snprintf(host, sizeof(host), "%s", from->tcp.host);
	pthread_mutex_lock(&cluster.lock);
	a = cluster.addr;
	pthread_mutex_unlock(&cluster.lock);
	if (a.cluster[0] == '\0')
		return NULL;
	c = open_at(&a, host, port,
	            from->timeout
	                ? (int)(from->timeout->tv_sec * 1000 + from->timeout->tv_usec / 1000)
	                : 2000,
	            err, sizeof(err));
	if (c == NULL)
		return NULL;
	ok = redisCommandArgv(c, 1, asking, NULL);
	if (ok != NULL && ok->type == REDIS_REPLY_STATUS)
		r = redisCommandArgv(c, argc, argv, lens);
	freeReplyObject(ok);
	redisFree(c);
	return r;
}

redisReply *redisconn_cmd(redisContext *c, int argc, const char **argv, const size_t *lens)
{
	redisReply *r = redisCommandArgv(c, argc, argv, lens), *followed;

	if (r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "ASK ", 4) == 0 &&
	    (followed = follow_ask(r, c, argc, argv, lens)) != NULL) {
		freeReplyObject(r);
		return followed;
	}
	return r;
}

redisReply *redisconn_cmdv(redisContext *c, int argc, const char **argv)
{
	size_t lens[32];

	if (argc > 32)
		return NULL;
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	return redisconn_cmd(c, argc, argv, lens);
}

int redisconn_has_waitaof(redisContext *c)
{
	const char *argv[] = {"COMMAND", "INFO", "WAITAOF"};
	redisReply *r = redisconn_cmdv(c, 3, argv);
	int yes = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	          r->element[0]->type == REDIS_REPLY_ARRAY;

	freeReplyObject(r);
	return yes;
}

void redisconn_append_waitaof(redisContext *c, int timeout_ms)
{
	char timeout[24];
	const char *argv[] = {"WAITAOF", "1", "0", timeout};

	snprintf(timeout, sizeof(timeout), "%d", timeout_ms);
	redisAppendCommandArgv(c, 4, argv, NULL);
}

int redisconn_waitaof_synced(const redisReply *r)
{
	return r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	       r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer >= 1;
}

int redisconn_demoted(const redisReply *r)
{
	return r != NULL && r->type == REDIS_REPLY_ERROR &&
	       (strncmp(r->str, "READONLY", 8) == 0 || strncmp(r->str, "MASTERDOWN", 10) == 0 ||
	        strncmp(r->str, "MOVED ", 6) == 0 || strncmp(r->str, "ASK ", 4) == 0 ||
	        strncmp(r->str, "CLUSTERDOWN", 11) == 0 || strncmp(r->str, "TRYAGAIN", 8) == 0);
}

void redisconn_append_wait(redisContext *c, int replicas, int timeout_ms)
{
	char n[16], timeout[24];
	const char *argv[] = {"WAIT", n, timeout};

	snprintf(n, sizeof(n), "%d", replicas);
	snprintf(timeout, sizeof(timeout), "%d", timeout_ms);
	redisAppendCommandArgv(c, 3, argv, NULL);
}

int redisconn_wait_reached(const redisReply *r, int replicas)
{
	return r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= replicas;
}

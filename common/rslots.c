/* Redis Cluster slots: key hashing, the slot map, MOVED and ASK. */
#include "rslots.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), the hash Redis Cluster specifies. */
static uint16_t crc16(const char *buf, size_t len)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)((unsigned char)buf[i] << 8);
		for (int b = 0; b < 8; b++)
			crc =
			    (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

unsigned rslots_keyslot(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len);

	if (open != NULL) {
		size_t from = (size_t)(open - key) + 1;
		const char *close = memchr(open + 1, '}', len - from);

		if (close != NULL && close > open + 1)
			return crc16(open + 1, (size_t)(close - open - 1)) & (RSLOTS_COUNT - 1);
	}
	return crc16(key, len) & (RSLOTS_COUNT - 1);
}

/* The index + 1 of host:port in m's nodes, added when new; 0 when out of memory. */
static int node_index(struct rslots *m, const char *host, int port)
{
	struct rslots_node *grown;

	for (int i = 0; i < m->nnodes; i++)
		if (m->nodes[i].port == port && strcmp(m->nodes[i].host, host) == 0)
			return i + 1;
	grown = realloc(m->nodes, (size_t)(m->nnodes + 1) * sizeof(*grown));
	if (grown == NULL)
		return 0;
	m->nodes = grown;
	snprintf(grown[m->nnodes].host, sizeof(grown->host), "%s", host);
	grown[m->nnodes].port = port;
	return ++m->nnodes;
}

static int is_int(const redisReply *r)
{
	return r != NULL && r->type == REDIS_REPLY_INTEGER;
}

int rslots_parse(const redisReply *r, const char *asked_host, struct rslots *m, char *err,
                 size_t errlen)
{
	memset(m, 0, sizeof(*m));
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		snprintf(err, errlen, "CLUSTER SLOTS: %s",
		         r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
		return -1;
	}
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i], *master;
		const char *host;
		int idx;

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || !is_int(e->element[0]) ||
		    !is_int(e->element[1]) || e->element[2]->type != REDIS_REPLY_ARRAY)
			goto bad;
		master = e->element[2];
		if (master->elements < 2 || master->element[0]->type != REDIS_REPLY_STRING ||
		    !is_int(master->element[1]))
			goto bad;
		if (e->element[0]->integer < 0 || e->element[1]->integer >= RSLOTS_COUNT ||
		    e->element[0]->integer > e->element[1]->integer ||
		    master->element[1]->integer < 1 || master->element[1]->integer > 65535)
			goto bad;
		host = master->element[0]->str;
		if (host[0] == '\0' || strcmp(host, "?") == 0)
			host = asked_host;
		idx = node_index(m, host, (int)master->element[1]->integer);
		if (idx == 0) {
			snprintf(err, errlen, "CLUSTER SLOTS: out of memory");
			rslots_free(m);
			return -1;
		}
		for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++)
			m->owner[s] = (uint16_t)idx;
	}
	return 0;
bad:
	snprintf(err, errlen, "CLUSTER SLOTS: a reply of another shape");
	rslots_free(m);
	return -1;
}

void rslots_free(struct rslots *m)
{
	free(m->nodes);
	m->nodes = NULL;
	m->nnodes = 0;
}

const struct rslots_node *rslots_owner(const struct rslots *m, unsigned slot)
{
	if (slot >= RSLOTS_COUNT || m->owner[slot] == 0)
		return NULL;
	return &m->nodes[m->owner[slot] - 1];
}

enum rslots_redirect rslots_redirect(const redisReply *r, unsigned *slot, char *host,
                                     size_t hostlen, int *port)
{
	enum rslots_redirect kind;
	const char *p, *colon;
	char *end;
	unsigned long s;
	long pt;

	if (r == NULL || r->type != REDIS_REPLY_ERROR)
		return RSLOTS_NONE;
	if (strncmp(r->str, "MOVED ", 6) == 0)
		kind = RSLOTS_MOVED, p = r->str + 6;
	else if (strncmp(r->str, "ASK ", 4) == 0)
		kind = RSLOTS_ASK, p = r->str + 4;
	else
		return RSLOTS_NONE;
	s = strtoul(p, &end, 10);
	if (end == p || *end != ' ' || s >= RSLOTS_COUNT)
		return RSLOTS_NONE;
	p = end + 1;
	colon = strrchr(p, ':'); /* the last one: an IPv6 address has its own */
	if (colon == NULL || (size_t)(colon - p) >= hostlen)
		return RSLOTS_NONE;
	pt = strtol(colon + 1, &end, 10);
	if (end == colon + 1 || *end != '\0' || pt < 1 || pt > 65535)
		return RSLOTS_NONE;
	memcpy(host, p, (size_t)(colon - p));
	host[colon - p] = '\0';
	*slot = (unsigned)s;
	*port = (int)pt;
	return kind;
}

#ifndef SB_RSLOTS_H
#define SB_RSLOTS_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

/* Redis Cluster's key space, free of connections: the slot a key hashes to, the map of slots
 * to masters read from a CLUSTER SLOTS reply, and the MOVED and ASK redirections. The one
 * place that knows how a cluster is laid out; common/redisconn.c connects by it. */

#define RSLOTS_COUNT 16384

/* The slot of key[0..len): CRC16 (XMODEM) of the key, or of the part between the first '{'
 * and the next '}' when that part is not empty (a hash tag), modulo 16384. */
unsigned rslots_keyslot(const char *key, size_t len);

/* A master. */
struct rslots_node {
	char host[256];
	int port;
};

/* Which master serves each slot. */
struct rslots {
	struct rslots_node *nodes; /* the masters, each once */
	int nnodes;
	uint16_t owner[RSLOTS_COUNT]; /* index into nodes + 1; 0: no master serves the slot */
};

/* Fills *m from a CLUSTER SLOTS reply (RESP2: [start, end, [host, port, id, ...], replicas
 * ...] per range). A master whose host is empty or "?" (Redis names no preferred endpoint)
 * is given asked_host, the host the reply came from. Returns 0, or -1 with a reason in err
 * for another shape. Release with rslots_free(). */
int rslots_parse(const redisReply *r, const char *asked_host, struct rslots *m, char *err,
                 size_t errlen) __attribute__((warn_unused_result));

/* Releases m's nodes (m itself is the caller's). */
void rslots_free(struct rslots *m);

/* The master of slot in m, or NULL when none serves it. */
const struct rslots_node *rslots_owner(const struct rslots *m, unsigned slot);

/* What an error reply asks of the client. */
enum rslots_redirect {
	RSLOTS_NONE,  /* not a redirection */
	RSLOTS_MOVED, /* the slot lives on host:port now: ask it from now on */
	RSLOTS_ASK,   /* ask host:port for this one command, preceded by ASKING */
};

/* Reads a "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>" error reply into *slot,
 * host and *port. Anything else, or a malformed one, is RSLOTS_NONE. */
enum rslots_redirect rslots_redirect(const redisReply *r, unsigned *slot, char *host,
                                     size_t hostlen, int *port);

#endif

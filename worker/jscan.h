#ifndef SB_JSCAN_H
#define SB_JSCAN_H

#include <stddef.h>

/* One pass over a JSON text that validates all of it, as strictly as jansson's json_loadb
 * with no flags (UTF-8, escapes, no \u0000, integers that fit in 64 bits, nesting depth
 * counted as jansson does: every value is a level, a scalar leaf too, at most 2048), and
 * keeps only the values found at a few paths: no document tree is built. Duplicate keys
 * behave as in a tree: the last one wins, an object's earlier members included.
 *
 * Where it differs from jansson 2.14 on purpose: jansson silently drops one NUL byte that
 * follows a number or a literal ("[1\0]" and "{\"a\":null\0}" load); jscan refuses any
 * NUL outside a string, as RFC 8259 does. */

/* A node of the tree of paths wanted. kids ends with a node whose key is NULL. */
struct jscan_path {
	const char *key;               /* member name */
	int slot;                      /* index in the values array, or -1 */
	const struct jscan_path *kids; /* members wanted inside it, when it is an object */
};

enum jscan_kind {
	JSCAN_ABSENT, /* not in the document */
	JSCAN_STRING,
	JSCAN_INTEGER,
	JSCAN_REAL,
	JSCAN_OBJECT,
	JSCAN_OTHER, /* array, true, false or null */
};

/* A value found. */
struct jscan_value {
	enum jscan_kind kind;
	const char *str; /* JSCAN_STRING: unescaped, NUL-terminated, borrowed from the arena */
	size_t len;      /* its length in bytes */
	long long i;     /* JSCAN_INTEGER */
	double d;        /* JSCAN_REAL */
	const char *raw; /* the value's JSON text as in the document (any kind), borrowed from
	                  * the text parsed; not NUL-terminated */
	size_t raw_len;  /* its length in bytes */
};

/* Validates text[0..len) and fills vals[0..nvals) (slots of root's tree) with what is at
 * those paths. The document must be an object or an array. Strings kept are copied into a
 * new buffer in *arena (free it, also after a failure). Returns 0, or -1 with "line L
 * column C: reason" in err. */
int jscan_parse(const char *text, size_t len, const struct jscan_path *root,
                struct jscan_value *vals, size_t nvals, char **arena, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif

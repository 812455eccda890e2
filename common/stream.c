/* Reading and decoding stream entries; creating the consumer group. */
#include "stream.h"

#include "redisconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <zstd.h>

static int field_is(const redisReply *f, const char *name)
{
	return f->type == REDIS_REPLY_STRING && f->len == strlen(name) &&
	       memcmp(f->str, name, f->len) == 0;
}

int stream_entry_parse(const redisReply *r, struct stream_entry *e)
{
	const redisReply *fields;

	memset(e, 0, sizeof(*e));
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(e->id))
		return -1;
	memcpy(e->id, r->element[0]->str, r->element[0]->len);
	e->id[r->element[0]->len] = '\0';
	fields = r->element[1];
	if (fields->type == REDIS_REPLY_NIL)
		return 0;
	if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2 != 0)
		return -1;
	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		const redisReply *f = fields->element[i], *v = fields->element[i + 1];

		if (v->type != REDIS_REPLY_STRING)
			continue;
		if (field_is(f, STREAM_F_BODY)) {
			e->body = v->str;
			e->body_len = v->len;
		} else if (field_is(f, STREAM_F_RECEIVED_AT)) {
			e->received_at = strtoll(v->str, NULL, 10);
		} else if (field_is(f, STREAM_F_REQUEST_ID)) {
			e->request_id = v->str;
		} else if (field_is(f, STREAM_F_SOURCE)) {
			e->source = v->str;
		} else if (field_is(f, STREAM_F_ENC)) {
			e->enc = v->str;
		}
	}
	return 0;
}

/* zstd level for bodies at ingest: among the fastest, still about 4x on Vapi JSON. */
#define STREAM_ZSTD_LEVEL 1

static _Thread_local ZSTD_DCtx *dctx;

static int zstd_decode(const struct stream_entry *e, char **out, size_t *len, char *err,
                       size_t errlen)
{
	unsigned long long size = ZSTD_getFrameContentSize(e->body, e->body_len);
	size_t n;

	if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
	    size > (unsigned long long)STREAM_MAX_BODY) {
		snprintf(err, errlen, "zstd body: bad or oversized frame");
		return -1;
	}
	*out = malloc((size_t)size + 1);
	if (*out == NULL) {
		snprintf(err, errlen, "zstd body: out of memory for %llu bytes", size);
		return -1;
	}
	/* One decompression context per thread, kept: making one per body cost a tenth of a
	 * worker's time. */
	if (dctx == NULL && (dctx = ZSTD_createDCtx()) == NULL) {
		snprintf(err, errlen, "zstd body: out of memory");
		free(*out);
		*out = NULL;
		return -1;
	}
	n = ZSTD_decompressDCtx(dctx, *out, (size_t)size, e->body, e->body_len);
	if (ZSTD_isError(n) || n != size) {
		snprintf(err, errlen, "zstd body: %s",
		         ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size differs from the frame's");
		free(*out);
		*out = NULL;
		return -1;
	}
	(*out)[n] = '\0';
	*len = n;
	return 0;
}

int stream_entry_body(const struct stream_entry *e, const char **body, size_t *len, char **owned,
                      char *err, size_t errlen)
{
	*owned = NULL;
	if (e->body == NULL) {
		snprintf(err, errlen, "entry has no body field");
		return -1;
	}
	if (e->enc == NULL || *e->enc == '\0') {
		*body = e->body;
		*len = e->body_len;
		return 0;
	}
	if (strcmp(e->enc, "zstd") != 0) {
		snprintf(err, errlen, "unknown body encoding \"%.40s\"", e->enc);
		return -1;
	}
	if (zstd_decode(e, owned, len, err, errlen) != 0)
		return -1;
	*body = *owned;
	return 0;
}

/* Compression contexts are shared: a context holds a few hundred KiB, and only the threads
 * compressing at this instant need one, not every thread that ever did. */
#define STREAM_CCTX_POOL 8
static ZSTD_CCtx *cctx_pool[STREAM_CCTX_POOL];
static int cctx_free;
static pthread_mutex_t cctx_lock = PTHREAD_MUTEX_INITIALIZER;

static ZSTD_CCtx *cctx_take(void)
{
	ZSTD_CCtx *c = NULL;

	pthread_mutex_lock(&cctx_lock);
	if (cctx_free > 0)
		c = cctx_pool[--cctx_free];
	pthread_mutex_unlock(&cctx_lock);
	return c != NULL ? c : ZSTD_createCCtx();
}

static void cctx_give(ZSTD_CCtx *c)
{
	pthread_mutex_lock(&cctx_lock);
	if (cctx_free < STREAM_CCTX_POOL) {
		cctx_pool[cctx_free++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&cctx_lock);
	ZSTD_freeCCtx(c);
}

size_t stream_compress(struct stream_zbuf *z, const char *src, size_t len)
{
	size_t bound = ZSTD_compressBound(len), n;
	ZSTD_CCtx *c;

	if (z->cap < bound) {
		char *nb = realloc(z->buf, bound);

		if (nb == NULL)
			return 0;
		z->buf = nb;
		z->cap = bound;
	}
	c = cctx_take();
	if (c == NULL)
		return 0;
	n = ZSTD_compressCCtx(c, z->buf, z->cap, src, len, STREAM_ZSTD_LEVEL);
	cctx_give(c);
	return ZSTD_isError(n) || n >= len ? 0 : n;
}

void stream_zbuf_free(struct stream_zbuf *z)
{
	free(z->buf);
	memset(z, 0, sizeof(*z));
}

int stream_xadd_argv(const char *stream, const struct stream_new *e, const char **argv,
                     size_t *lens, char *recv)
{
	int n = 0;

#define ARG(s, l) (argv[n] = (s), lens[n] = (l), n++)
#define ARGS(s) ARG((s), strlen(s))
	ARGS("XADD");
	ARGS(stream);
	ARGS("*");
	ARGS(STREAM_F_BODY);
	ARG(e->body, e->body_len);
	snprintf(recv, 24, "%lld", (long long)e->received_at);
	ARGS(STREAM_F_RECEIVED_AT);
	ARGS(recv);
	if (e->request_id != NULL) {
		ARGS(STREAM_F_REQUEST_ID);
		ARGS(e->request_id);
	}
	ARGS(STREAM_F_SOURCE);
	ARGS(e->source);
	if (e->enc != NULL) {
		ARGS(STREAM_F_ENC);
		ARGS(e->enc);
	}
#undef ARG
#undef ARGS
	return n;
}

void stream_xadd_append(redisContext *c, const char *stream, const struct stream_new *e)
{
	char recv[24];
	const char *argv[STREAM_XADD_ARGS];
	size_t lens[STREAM_XADD_ARGS];
	int n = stream_xadd_argv(stream, e, argv, lens, recv);

	redisAppendCommandArgv(c, n, argv, lens);
}

int stream_xadd(redisContext *c, const char *stream, const struct stream_new *e, char *id,
                size_t idlen, char *err, size_t errlen)
{
	redisReply *r = NULL;

	stream_xadd_append(c, stream, e);
	if (redisGetReply(c, (void **)&r) != REDIS_OK)
		r = NULL;
	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		snprintf(err, errlen, "XADD %s: %s", stream,
		         r == NULL                      ? c->errstr
		         : r->type == REDIS_REPLY_ERROR ? r->str
		                                        : "odd reply");
		freeReplyObject(r);
		return -1;
	}
	snprintf(id, idlen, "%s", r->str);
	freeReplyObject(r);
	return 0;
}

int stream_ensure_group(redisContext *c, const char *stream, const char *group, char *err,
                        size_t errlen)
{
	const char *argv[] = {"XGROUP", "CREATE", stream, group, "0", "MKSTREAM"};
	redisReply *r = redisconn_cmdv(c, 6, argv);
	int rc = 1;

	if (r == NULL) {
		snprintf(err, errlen, "XGROUP CREATE: %s", c->errstr);
		return -1;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		rc = strncmp(r->str, "BUSYGROUP", 9) == 0 ? 0 : -1;
		if (rc < 0)
			snprintf(err, errlen, "XGROUP CREATE: %s", r->str);
	}
	freeReplyObject(r);
	return rc;
}

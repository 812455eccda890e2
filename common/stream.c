/* Reading and decoding stream entries; creating the consumer group. */
#include "stream.h"

#include "redisconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int stream_entry_body(const struct stream_entry *e, const char **body, size_t *len, char *err,
                      size_t errlen)
{
	if (e->body == NULL) {
		snprintf(err, errlen, "entry has no body field");
		return -1;
	}
	if (e->enc != NULL && *e->enc != '\0') {
		snprintf(err, errlen, "unknown body encoding \"%.40s\"", e->enc);
		return -1;
	}
	*body = e->body;
	*len = e->body_len;
	return 0;
}

int stream_xadd(redisContext *c, const char *stream, const struct stream_new *e, char *id,
                size_t idlen, char *err, size_t errlen)
{
	char recv[24];
	const char *argv[13];
	size_t lens[13];
	int n = 0;
	redisReply *r;

#define ARG(s, l) (argv[n] = (s), lens[n] = (l), n++)
#define ARGS(s) ARG((s), strlen(s))
	ARGS("XADD");
	ARGS(stream);
	ARGS("*");
	ARGS(STREAM_F_BODY);
	ARG(e->body, e->body_len);
	snprintf(recv, sizeof(recv), "%lld", (long long)e->received_at);
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
	r = redisconn_cmd(c, n, argv, lens);
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

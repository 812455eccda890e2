/* HTTP/1.x request framing (RFC 9112) on llhttp, with the checks llhttp leaves to us. */
#include "httpframe.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

enum { PH_HEAD, PH_BODY, PH_DONE, PH_ERROR };
enum { EV_NONE, EV_HEAD, EV_DONE };

/* Records why the request is refused; returned from a callback, it stops llhttp. */
static int refuse(struct httpframe *f, int status, const char *why)
{
	if (f->status == 0) {
		f->status = status;
		f->why = why;
	}
	return HPE_USER;
}

static unsigned offset_of(const struct httpframe *f, const char *at)
{
	return (unsigned)(at - f->buf);
}

/* Framing bytes (the head, and all of a chunked body but its data), checked as they come:
 * no NUL, CR and LF only as a pair, and no line that starts with a blank (obs-fold). The
 * pieces may split a pair: f->prev is the last byte of the previous one. memchr() finds
 * the few bytes that matter, so a head costs little more than its lines. */
static bool framing_ok(struct httpframe *f, const char *p, size_t n)
{
	const char *end = p + n, *q;

	if (n == 0)
		return true;
	if (memchr(p, '\0', n) != NULL || (f->prev == '\r') != (p[0] == '\n') ||
	    (f->prev == '\n' && (p[0] == ' ' || p[0] == '\t')))
		return false;
	for (q = p; (q = memchr(q, '\r', (size_t)(end - q))) != NULL; q++)
		if (q + 1 < end && q[1] != '\n')
			return false;
	for (q = p + 1; q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
		if (q[-1] != '\r' || (q + 1 < end && (q[1] == ' ' || q[1] == '\t')))
			return false;
	f->prev = end[-1];
	return true;
}

/* Chunk extensions and trailers share one budget per request (+1 per piece for its
 * separator). */
static int count_extra(struct httpframe *f, size_t n)
{
	f->extra += n + 1;
	if (f->extra > HTTPFRAME_MAX_EXTRA)
		return refuse(f, 431, "chunk extensions and trailers over 64 KiB");
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
	struct httpframe *f = p->data;

	if (f->url_end == 0)
		f->url = offset_of(f, at);
	f->url_end = offset_of(f, at) + (unsigned)n;
	return 0;
}

/* A trailer's name is kept (lower case, cut) only to be compared once complete. */
static int trailer_name(struct httpframe *f, const char *at, size_t n)
{
	if (!f->field_open) {
		f->tlen = 0;
		f->field_open = true;
	}
	for (size_t i = 0; i < n && f->tlen + i < sizeof(f->tname) - 1; i++)
		f->tname[f->tlen + i] = (char)tolower((unsigned char)at[i]);
	f->tlen += n;
	return count_extra(f, n);
}

static int trailer_done(struct httpframe *f)
{
	f->field_open = false;
	if (f->tlen >= sizeof(f->tname) - 1)
		return 0;
	f->tname[f->tlen] = '\0';
	if (strcmp(f->tname, "content-length") == 0 || strcmp(f->tname, "transfer-encoding") == 0 ||
	    strcmp(f->tname, "host") == 0)
		return refuse(f, 400, "Content-Length, Transfer-Encoding or Host in the trailers");
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct httpframe *f = p->data;

	if (f->phase == PH_BODY)
		return trailer_name(f, at, n);
	if (!f->field_open) {
		if (f->nh == HTTPFRAME_MAX_HEADERS)
			return refuse(f, 431, "more than 64 header lines");
		f->h[f->nh].name = offset_of(f, at);
		f->field_open = true;
	}
	f->name_end[f->nh] = offset_of(f, at) + (unsigned)n;
	return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
	struct httpframe *f = p->data;

	if (f->phase == PH_BODY)
		return trailer_done(f);
	/* Until a value arrives, the value is empty. */
	f->h[f->nh].value = f->value_end[f->nh] = f->name_end[f->nh];
	f->nh++;
	f->field_open = false;
	f->value_open = false;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct httpframe *f = p->data;
	int i = f->nh - 1;

	if (f->phase == PH_BODY)
		return count_extra(f, n);
	if (n == 0)
		return 0; /* llhttp reports an empty value where the next line starts */
	if (!f->value_open)
		f->h[i].value = offset_of(f, at);
	f->value_open = true;
	f->value_end[i] = offset_of(f, at) + (unsigned)n;
	return 0;
}

static int on_extension(llhttp_t *p, const char *at, size_t n)
{
	(void)at;
	return count_extra(p->data, n);
}

static int on_headers_complete(llhttp_t *p)
{
	((struct httpframe *)p->data)->event = EV_HEAD;
	return HPE_PAUSED; /* the caller looks at the head before the body is parsed */
}

/* Chunk data is moved up behind what is decoded so far; the framing between is checked. */
static int on_body(llhttp_t *p, const char *at, size_t n)
{
	struct httpframe *f = p->data;
	size_t off = offset_of(f, at);

	if (!framing_ok(f, f->buf + f->gap, off - f->gap) || f->prev == '\r')
		return refuse(f, 400, "NUL, bare CR or LF, or a folded line in the chunk framing");
	if ((long long)(f->out - f->head_len + n) > f->max_body)
		return refuse(f, 413, "body over the limit");
	if (off != f->out)
		memmove(f->buf + f->out, at, n);
	f->out += n;
	f->gap = off + n;
	f->prev = 'd'; /* any data byte */
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	((struct httpframe *)p->data)->event = EV_DONE;
	return HPE_PAUSED; /* what follows is the next request: not parsed yet */
}

static const llhttp_settings_t settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_chunk_extension_name = on_extension,
    .on_chunk_extension_value = on_extension,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void httpframe_init(struct httpframe *f, long long max_body)
{
	memset(f, 0, sizeof(*f));
	llhttp_init(&f->parser, HTTP_REQUEST, &settings);
	f->parser.data = f;
	f->max_body = max_body;
	f->content_length = -1;
}

void httpframe_next(struct httpframe *f)
{
	httpframe_init(f, f->max_body);
}

static enum httpframe_status fail(struct httpframe *f, int status, const char *why)
{
	(void)refuse(f, status, why);
	f->phase = PH_ERROR;
	return HTTPFRAME_ERROR;
}

/* The path, names and values become C strings in place (the head is parsed: llhttp no
 * longer reads it); values lose their trailing blanks. */
static void terminate_strings(struct httpframe *f)
{
	char *b = f->buf;
	char *q = memchr(b + f->url, '?', f->url_end - f->url);

	if (q != NULL)
		*q = '\0';
	b[f->url_end] = '\0'; /* the blank before the version */
	f->path = f->url;
	for (int i = 0; i < f->nh; i++) {
		unsigned v = f->h[i].value, e = f->value_end[i];

		b[f->name_end[i]] = '\0'; /* the colon */
		while (e > v && (b[e - 1] == ' ' || b[e - 1] == '\t'))
			e--;
		if (e == v)
			f->h[i].value = f->name_end[i]; /* an empty string */
		else
			b[e] = '\0';
	}
}

/* Host and Transfer-Encoding as RFC 9112 wants them, and Expect. */
static enum httpframe_status check_headers(struct httpframe *f)
{
	bool other_coding = false;
	int hosts = 0, codings = 0;

	for (int i = 0; i < f->nh; i++) {
		const char *n = f->buf + f->h[i].name, *v = f->buf + f->h[i].value;

		if (strcasecmp(n, "Host") == 0) {
			hosts++;
		} else if (strcasecmp(n, "Transfer-Encoding") == 0) {
			codings++;
			other_coding |= strcasecmp(v, "chunked") != 0;
		} else if (strcasecmp(n, "Expect") == 0 && strcasecmp(v, "100-continue") == 0) {
			f->expect_continue = true;
		}
	}
	if (codings > 1 || other_coding)
		return fail(f, 501, "a transfer coding other than exactly chunked");
	if (codings > 0 && f->minor == 0)
		return fail(f, 400, "Transfer-Encoding in an HTTP/1.0 request");
	if (hosts > 1 || (hosts == 0 && f->minor == 1))
		return fail(f, 400, hosts ? "more than one Host" : "no Host");
	return HTTPFRAME_HEAD;
}

/* The parser paused at the end of the head. */
static enum httpframe_status head_done(struct httpframe *f)
{
	llhttp_t *p = &f->parser;
	uint16_t fl = p->flags;

	f->head_len = (size_t)(llhttp_get_error_pos(p) - f->buf);
	llhttp_resume(p);
	if (f->head_len > HTTPFRAME_MAX_HEAD)
		return fail(f, 431, "request head over 16 KiB");
	f->prev = '\n';
	if (!framing_ok(f, f->buf, f->head_len))
		return fail(f, 400, "NUL, bare CR or LF, or a folded line in the head");
	if (p->http_major != 1 || p->http_minor > 1)
		return fail(f, 400, "not HTTP/1.0 or HTTP/1.1");
	f->minor = p->http_minor;
	f->method = llhttp_method_name((llhttp_method_t)p->method);
	terminate_strings(f);
	if (check_headers(f) != HTTPFRAME_HEAD)
		return HTTPFRAME_ERROR;
	f->chunked = (fl & F_CHUNKED) != 0;
	f->content_length = (fl & F_CONTENT_LENGTH) ? (long long)p->content_length : -1;
	/* An upgrade is not taken; the parser would not read another request after it. */
	f->keep_alive = llhttp_should_keep_alive(p) && p->method != HTTP_CONNECT &&
	                !((fl & F_UPGRADE) && (fl & F_CONNECTION_UPGRADE));
	f->phase = PH_BODY;
	f->fed = f->out = f->gap = f->head_len;
	return HTTPFRAME_HEAD;
}

/* The parser paused at the end of the request. */
static enum httpframe_status request_done(struct httpframe *f)
{
	f->end = (size_t)(llhttp_get_error_pos(&f->parser) - f->buf);
	if (!framing_ok(f, f->buf + f->gap, f->end - f->gap))
		return fail(f, 400, "NUL, bare CR or LF, or a folded line in the chunk framing");
	f->body_len = f->out - f->head_len;
	f->phase = PH_DONE;
	return HTTPFRAME_DONE;
}

enum httpframe_status httpframe_feed(struct httpframe *f, char *buf, size_t *len)
{
	llhttp_errno_t e;

	if (f->phase == PH_ERROR)
		return HTTPFRAME_ERROR;
	if (f->phase == PH_DONE)
		return HTTPFRAME_DONE;
	f->buf = buf;
	f->event = EV_NONE;
	e = llhttp_execute(&f->parser, buf + f->fed, *len - f->fed);
	if ((e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) && f->event == EV_HEAD)
		return head_done(f);
	if ((e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) && f->event == EV_DONE)
		return request_done(f);
	if (e != HPE_OK)
		return fail(f, e == HPE_INVALID_TRANSFER_ENCODING ? 501 : 400,
		            llhttp_get_error_reason(&f->parser));
	/* All of it was read. */
	if (f->phase == PH_HEAD) {
		f->fed = *len;
		return *len > HTTPFRAME_MAX_HEAD ? fail(f, 431, "request head over 16 KiB")
		                                 : HTTPFRAME_MORE;
	}
	if (!framing_ok(f, buf + f->gap, *len - f->gap))
		return fail(f, 400, "NUL, bare CR or LF, or a folded line in the chunk framing");
	/* Framing bytes already checked are dropped, so the buffer holds about the body. */
	*len = f->fed = f->gap = f->out;
	return HTTPFRAME_MORE;
}

const char *httpframe_header(const struct httpframe *f, const char *buf, const char *name)
{
	for (int i = 0; i < f->nh; i++)
		if (strcasecmp(buf + f->h[i].name, name) == 0)
			return buf + f->h[i].value;
	return NULL;
}

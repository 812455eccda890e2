/* HTTP/1.x request heads and chunked bodies (RFC 9112), parsed in place. */
#include "httpreq.h"

#include "util.h"

#include <string.h>
#include <strings.h>

enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LINE };

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The offset just past the blank line that ends the head, or 0. Lines end in CRLF or LF. */
static size_t head_end(const char *buf, size_t len, size_t *scan)
{
	size_t i = *scan > 2 ? *scan - 2 : 0;

	for (; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	*scan = len;
	return 0;
}

/* Cuts the line starting at p (ending before end) with a NUL; returns the next line. */
static char *cut_line(char *p, char *end)
{
	char *nl = memchr(p, '\n', (size_t)(end - p));

	if (nl == NULL)
		return end;
	*nl = '\0';
	if (nl > p && nl[-1] == '\r')
		nl[-1] = '\0';
	return nl + 1;
}

/* "METHOD target HTTP/1.x" at line (NUL-terminated). */
static int parse_request_line(char *buf, char *line, struct httpreq *r)
{
	char *p = line, *target, *q;

	while (is_tchar((unsigned char)*p))
		p++;
	if (p == line || *p != ' ')
		return -1;
	*p++ = '\0';
	target = p;
	while (*p != ' ' && *p != '\0')
		p++;
	if (p == target || *p != ' ')
		return -1;
	*p++ = '\0';
	if (strncmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != '\0')
		return -1;
	r->minor = p[7] - '0';
	q = strchr(target, '?');
	if (q != NULL)
		*q = '\0';
	r->method = (unsigned)(line - buf);
	r->path = (unsigned)(target - buf);
	return 0;
}

/* "Name: value" at line (NUL-terminated) into r->h. */
static int parse_header(char *buf, char *line, struct httpreq *r)
{
	char *p = line, *v, *e;

	while (is_tchar((unsigned char)*p))
		p++;
	if (p == line || *p != ':')
		return -1; /* also an obsolete folded line, which starts with a blank */
	if (r->nh == HTTPREQ_MAX_HEADERS)
		return -2;
	*p++ = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	v = p;
	e = v + strlen(v);
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	r->h[r->nh].name = (unsigned)(line - buf);
	r->h[r->nh].value = (unsigned)(v - buf);
	r->nh++;
	return 0;
}

/* Whether the comma-separated list s holds token (any case). */
static int has_token(const char *s, const char *token)
{
	size_t n = strlen(token);

	while (*s != '\0') {
		const char *end;

		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		end = s;
		while (*end != '\0' && *end != ',')
			end++;
		while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - s) == n && strncasecmp(s, token, n) == 0)
			return 1;
		s = *end ? end + 1 : end;
	}
	return 0;
}

/* Content-Length: digits only; repeated ones must agree. */
static int take_length(const char *v, long long *len)
{
	long long n = 0;

	if (*v == '\0' || strlen(v) > 18)
		return -1;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		n = n * 10 + (*p - '0');
	}
	if (*len >= 0 && *len != n)
		return -1;
	*len = n;
	return 0;
}

/* Transfer-Encoding: only chunked (last) is understood. */
static int take_coding(const char *v, struct httpreq *r)
{
	size_t n = strlen(v);

	if (n < 7 || strcasecmp(v + n - 7, "chunked") != 0 ||
	    (n > 7 && v[n - 8] != ',' && v[n - 8] != ' '))
		return -1;
	r->chunked = true;
	return 0;
}

/* The framing and connection headers. */
static int interpret(const char *buf, struct httpreq *r)
{
	int close = 0, keep = 0;

	for (int i = 0; i < r->nh; i++) {
		const char *n = buf + r->h[i].name, *v = buf + r->h[i].value;

		if (strcasecmp(n, "Content-Length") == 0 && take_length(v, &r->content_length) != 0)
			return -1;
		if (strcasecmp(n, "Transfer-Encoding") == 0 && take_coding(v, r) != 0)
			return -1;
		if (strcasecmp(n, "Connection") == 0) {
			close |= has_token(v, "close");
			keep |= has_token(v, "keep-alive");
		}
		if (strcasecmp(n, "Expect") == 0 && strcasecmp(v, "100-continue") == 0)
			r->expect_continue = true;
	}
	/* Both framings at once is how requests are smuggled past proxies: refuse it. */
	if (r->chunked && r->content_length >= 0)
		return -1;
	r->keep_alive = r->minor == 1 ? !close : keep && !close;
	return 0;
}

enum httpreq_status httpreq_parse(char *buf, size_t len, size_t *scan, struct httpreq *r)
{
	size_t end = head_end(buf, len, scan);
	char *p, *stop;
	int rc;

	if (end == 0)
		return len >= HTTPREQ_MAX_HEAD ? HTTPREQ_TOO_LARGE : HTTPREQ_MORE;
	if (end > HTTPREQ_MAX_HEAD)
		return HTTPREQ_TOO_LARGE;
	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	r->head_len = end;
	stop = buf + end;
	p = cut_line(buf, stop);
	if (parse_request_line(buf, buf, r) != 0)
		return HTTPREQ_BAD;
	while (p < stop && *p != '\r' && *p != '\n') {
		char *line = p;

		p = cut_line(p, stop);
		rc = parse_header(buf, line, r);
		if (rc != 0)
			return rc == -2 ? HTTPREQ_TOO_LARGE : HTTPREQ_BAD;
	}
	return interpret(buf, r) == 0 ? HTTPREQ_OK : HTTPREQ_BAD;
}

const char *httpreq_header(const char *buf, const struct httpreq *r, const char *name)
{
	for (int i = 0; i < r->nh; i++)
		if (strcasecmp(buf + r->h[i].name, name) == 0)
			return buf + r->h[i].value;
	return NULL;
}

/* One byte of the grammar outside chunk data. Returns 1 at the end of the body, 0 to go
 * on, -1 when malformed. */
static int chunk_step(struct httpchunk *c, char ch)
{
	int d;

	switch (c->state) {
	case CH_SIZE:
		d = util_hex_value((unsigned char)ch);
		if (d >= 0) {
			if (++c->digits > 15)
				return -1;
			c->remain = c->remain * 16 + (unsigned)d;
			return 0;
		}
		if (c->digits == 0)
			return -1;
		c->state = ch == '\r' ? CH_SIZE_LF : ch == '\n' ? CH_DATA : CH_EXT;
		if (ch != ';' && ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n')
			return -1;
		break;
	case CH_EXT: /* chunk extensions are ignored */
		if (ch != '\n')
			return 0;
		c->state = CH_DATA;
		break;
	case CH_SIZE_LF:
		if (ch != '\n')
			return -1;
		c->state = CH_DATA;
		break;
	case CH_DATA_CR:
		if (ch == '\n') {
			c->state = CH_SIZE;
			return 0;
		}
		if (ch != '\r')
			return -1;
		c->state = CH_DATA_LF;
		return 0;
	case CH_DATA_LF:
		if (ch != '\n')
			return -1;
		c->state = CH_SIZE;
		return 0;
	case CH_TRAILER: /* at the start of a trailer line: an empty one ends the body */
		if (ch == '\n')
			return 1;
		if (ch != '\r')
			c->state = CH_TRAILER_LINE;
		return 0;
	case CH_TRAILER_LINE:
		if (ch == '\n')
			c->state = CH_TRAILER;
		return 0;
	}
	if (c->state == CH_DATA) {
		c->digits = 0;
		if (c->remain == 0)
			c->state = CH_TRAILER;
	}
	return 0;
}

enum httpchunk_status httpchunk_decode(struct httpchunk *c, char *buf, size_t len, size_t *in,
                                       size_t *out, long long max)
{
	while (*in < len) {
		if (c->state == CH_DATA) {
			size_t n = len - *in;

			if (n > c->remain)
				n = (size_t)c->remain;
			if ((long long)(*out + n) > max)
				return HTTPCHUNK_TOO_LARGE;
			memmove(buf + *out, buf + *in, n);
			*out += n;
			*in += n;
			c->remain -= n;
			if (c->remain == 0)
				c->state = CH_DATA_CR;
			continue;
		}
		switch (chunk_step(c, buf[(*in)++])) {
		case 1:
			return HTTPCHUNK_DONE;
		case -1:
			return HTTPCHUNK_BAD;
		}
	}
	return HTTPCHUNK_MORE;
}

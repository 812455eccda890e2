/* libFuzzer target: the request framing (httpframe on llhttp) fed the input in pieces, as a
 * socket would deliver it, one request after another on the same connection, with the
 * buffer handling of ingest's server. The first byte picks the piece size. Checked: every
 * offset of a head lies inside it and every name and value is a string that ends inside
 * it; framing that ingest refuses (both lengths, chunked in HTTP/1.0, no or two Host in
 * HTTP/1.1) never gets through; a body never passes its limit or the bytes received; and
 * a refusal says 400, 413, 431 or 501 and stays refused. */
#include "httpframe.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BODY 4096

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_string(const char *buf, const struct httpframe *f, unsigned off)
{
	if (off >= f->head_len || memchr(buf + off, '\0', f->head_len - off) == NULL)
		abort();
}

static void check_head(const char *buf, size_t len, const struct httpframe *f)
{
	int hosts = 0;

	if (f->head_len == 0 || f->head_len > HTTPFRAME_MAX_HEAD || f->head_len > len ||
	    f->nh > HTTPFRAME_MAX_HEADERS || f->method == NULL)
		abort();
	check_string(buf, f, f->path);
	for (int i = 0; i < f->nh; i++) {
		check_string(buf, f, f->h[i].name);
		check_string(buf, f, f->h[i].value);
		if (httpframe_header(f, buf, buf + f->h[i].name) == NULL)
			abort();
		hosts += strcasecmp(buf + f->h[i].name, "Host") == 0;
	}
	if ((f->chunked && f->content_length >= 0) || (f->chunked && f->minor != 1) || hosts > 1 ||
	    (hosts == 0 && f->minor == 1))
		abort();
}

static void check_refusal(struct httpframe *f, char *buf, size_t *len)
{
	if (f->status != 400 && f->status != 413 && f->status != 431 && f->status != 501)
		abort();
	if (f->why == NULL || httpframe_feed(f, buf, len) != HTTPFRAME_ERROR)
		abort();
}

/* Feeds what the connection holds; returns the outcome of the current request, checked. */
static int feed(struct httpframe *f, char *buf, size_t *len)
{
	int rc = httpframe_feed(f, buf, len);

	if (rc == HTTPFRAME_HEAD) {
		check_head(buf, *len, f);
		rc = httpframe_feed(f, buf, len);
	}
	if (rc == HTTPFRAME_DONE &&
	    (f->head_len + f->body_len > f->end || f->end > *len || f->body_len > MAX_BODY))
		abort();
	if (rc == HTTPFRAME_ERROR)
		check_refusal(f, buf, len);
	return rc;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct httpframe f;
	size_t step, given = 0, len = 0;
	char *buf;
	int rc = HTTPFRAME_MORE;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	httpframe_init(&f, MAX_BODY);
	while (rc != HTTPFRAME_ERROR && given < size) {
		size_t n = size - given < step ? size - given : step;

		memcpy(buf + len, data + given, n);
		len += n;
		given += n;
		rc = feed(&f, buf, &len);
		while (rc == HTTPFRAME_DONE) { /* the next request, as the server moves it */
			len -= f.end;
			memmove(buf, buf + f.end, len);
			httpframe_next(&f);
			rc = len > 0 ? feed(&f, buf, &len) : HTTPFRAME_MORE;
		}
	}
	free(buf);
	return 0;
}

/* libFuzzer target: httpreq_parse() fed the input in pieces (as a socket would deliver it),
 * then httpchunk_decode() on what follows the head, also in pieces. The first byte picks
 * the piece size. Every offset the parser returns must lie inside the head, every name
 * and value must be a string that ends inside it, and the decoder's output never passes
 * its input or its limit. */
#include "httpreq.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_head(const char *buf, const struct httpreq *r)
{
	const unsigned offs[] = {r->method, r->path};

	if (r->head_len == 0 || r->head_len > HTTPREQ_MAX_HEAD || r->nh > HTTPREQ_MAX_HEADERS)
		abort();
	for (size_t i = 0; i < 2; i++)
		if (offs[i] >= r->head_len ||
		    memchr(buf + offs[i], '\0', r->head_len - offs[i]) == NULL)
			abort();
	for (int i = 0; i < r->nh; i++) {
		if (r->h[i].name >= r->head_len || r->h[i].value >= r->head_len ||
		    memchr(buf + r->h[i].value, '\0', r->head_len - r->h[i].value) == NULL)
			abort();
		if (httpreq_header(buf, r, buf + r->h[i].name) == NULL)
			abort();
	}
	if (r->chunked && r->content_length >= 0)
		abort();
}

static void decode_rest(char *buf, size_t start, size_t size, size_t step)
{
	struct httpchunk c = {0, 0, 0};
	size_t in = start, out = start, avail = start;
	long long max = (long long)start + 4096;
	int rc = HTTPCHUNK_MORE;

	while (rc == HTTPCHUNK_MORE && avail < size) {
		avail = avail + step < size ? avail + step : size;
		rc = httpchunk_decode(&c, buf, avail, &in, &out, max);
		if (out > in || in > avail || (long long)out > max)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct httpreq r;
	size_t step, scan = 0, avail = 0;
	char *buf;
	int rc = HTTPREQ_MORE;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	while (rc == HTTPREQ_MORE && avail < size) {
		avail = avail + step < size ? avail + step : size;
		rc = httpreq_parse(buf, avail, &scan, &r);
		if (scan > avail)
			abort();
	}
	if (rc == HTTPREQ_OK) {
		check_head(buf, &r);
		decode_rest(buf, r.head_len, size, step);
	}
	free(buf);
	return 0;
}

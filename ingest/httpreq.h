#ifndef SB_HTTPREQ_H
#define SB_HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>

/* HTTP/1.x request heads and chunked bodies, parsed from a buffer the caller owns: no
 * sockets, no allocation. The head is parsed in place (the separators after names and
 * values become NUL bytes), so names and values are C strings at offsets into the buffer,
 * and stay valid when the buffer is moved or grown. */

#define HTTPREQ_MAX_HEADERS 64
/* The longest head accepted; a longer one is refused (431). */
#define HTTPREQ_MAX_HEAD (16 << 10)

struct httpreq_header {
	unsigned name;  /* offset of the NUL-terminated name */
	unsigned value; /* offset of the NUL-terminated value, surrounding blanks removed */
};

struct httpreq {
	unsigned method;                              /* offset of the method, e.g. "POST" */
	unsigned path;                                /* offset of the target without its query */
	int minor;                                    /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
	struct httpreq_header h[HTTPREQ_MAX_HEADERS]; /* in the order received */
	int nh;                                       /* headers in h */
	long long content_length;                     /* -1 when absent */
	bool chunked;                                 /* Transfer-Encoding: chunked */
	bool keep_alive;                              /* the connection may serve another request */
	bool expect_continue;                         /* Expect: 100-continue */
	size_t head_len;                              /* bytes of the head, blank line included */
};

/* Outcomes of httpreq_parse(). */
enum httpreq_status {
	HTTPREQ_OK = 1,        /* a whole head, *r filled */
	HTTPREQ_MORE = 0,      /* the head is not complete yet */
	HTTPREQ_BAD = -1,      /* not a request we can read: answer 400 and close */
	HTTPREQ_TOO_LARGE = -2 /* head over HTTPREQ_MAX_HEAD or too many headers: 431 */
};

/* Looks for the end of the head in buf[0..len); *scan (start at 0) remembers how far it
 * looked, so each call reads only new bytes. When the head is complete it is parsed in
 * place into *r. */
enum httpreq_status httpreq_parse(char *buf, size_t len, size_t *scan, struct httpreq *r);

/* The value of header name (any case) in the parsed head at buf, or NULL. The first one
 * when the header is repeated. */
const char *httpreq_header(const char *buf, const struct httpreq *r, const char *name);

/* A chunked body being decoded. Zero-initialise before the first call. */
struct httpchunk {
	int state;                 /* where in the chunk grammar the decoder is */
	unsigned long long remain; /* data bytes left in the current chunk */
	int digits;                /* hex digits read of the current size line */
};

/* Outcomes of httpchunk_decode(). */
enum httpchunk_status {
	HTTPCHUNK_DONE = 1,      /* the last chunk and its trailers are read */
	HTTPCHUNK_MORE = 0,      /* more bytes are needed */
	HTTPCHUNK_BAD = -1,      /* not chunked encoding */
	HTTPCHUNK_TOO_LARGE = -2 /* the data would pass offset max */
};

/* Decodes in place: reads raw bytes buf[*in..len) and writes the data at buf[*out..], which
 * never passes *in, nor max (an offset in buf, like *out). Both advance; on DONE, *in is
 * just past the body. */
enum httpchunk_status httpchunk_decode(struct httpchunk *c, char *buf, size_t len, size_t *in,
                                       size_t *out, long long max);

#endif

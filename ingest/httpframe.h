#ifndef SB_HTTPFRAME_H
#define SB_HTTPFRAME_H

#include <llhttp.h>

#include <stdbool.h>
#include <stddef.h>

/* HTTP/1.x request framing on llhttp (the parser of Node.js), over a buffer the caller owns:
 * no sockets. One request at a time: the buffer holds the bytes of the current request from
 * its first byte on; the head stays where it arrived (names and values become NUL-terminated
 * strings in place, at offsets that stay valid when the buffer is moved or grown) and a
 * chunked body is decoded in place right after it.
 *
 * On top of what llhttp (built with LLHTTP_STRICT_MODE=1) refuses by itself, a request is
 * refused when: its transfer coding is anything but exactly one `chunked` (501); it is
 * HTTP/1.0 with Transfer-Encoding, or not HTTP/1.0 or 1.1; its head or chunk framing holds a
 * NUL, a CR not followed by LF, an LF not preceded by CR, or a folded line; an HTTP/1.1
 * request has no Host, or any request has more than one; a trailer is Content-Length,
 * Transfer-Encoding or Host; chunk extensions and trailers pass HTTPFRAME_MAX_EXTRA (431).
 * A refused request yields no body: the caller answers httpframe.status and closes. */

#define HTTPFRAME_MAX_HEADERS 64
/* The longest head accepted; a longer one is refused (431). */
#define HTTPFRAME_MAX_HEAD (16 << 10)
/* Bytes of chunk extensions and trailers accepted per request; more is refused (431). */
#define HTTPFRAME_MAX_EXTRA (64 << 10)

struct httpframe_header {
	unsigned name;  /* offset of the NUL-terminated name */
	unsigned value; /* offset of the NUL-terminated value, surrounding blanks removed */
};

/* Outcomes of httpframe_feed(). */
enum httpframe_status {
	HTTPFRAME_MORE = 0,  /* more bytes are needed */
	HTTPFRAME_HEAD = 1,  /* the head is in: the head fields are set; feed again for the body */
	HTTPFRAME_DONE = 2,  /* the request is complete: body fields and end are set */
	HTTPFRAME_ERROR = -1 /* refused: answer status and close the connection */
};

/* One connection's framing state. Set up with httpframe_init(); all fields are read-only
 * to the caller. */
struct httpframe {
	/* The head, once HTTPFRAME_HEAD was returned. */
	const char *method;                               /* e.g. "POST" (static) */
	unsigned path;                                    /* offset of the target without query */
	int minor;                                        /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
	struct httpframe_header h[HTTPFRAME_MAX_HEADERS]; /* in the order received */
	int nh;                                           /* headers in h */
	long long content_length;                         /* -1 when absent */
	bool chunked;                                     /* Transfer-Encoding: chunked */
	bool keep_alive;      /* the connection may serve another request after this one */
	bool expect_continue; /* Expect: 100-continue */
	size_t head_len;      /* bytes of the head; the body starts at this offset */
	/* The body, once HTTPFRAME_DONE was returned. */
	size_t body_len; /* decoded body bytes, at offset head_len */
	size_t end;      /* offset just past the request: the next one starts here */
	/* The refusal, once HTTPFRAME_ERROR was returned. */
	int status;      /* 400, 413, 431 or 501 */
	const char *why; /* what was wrong (static text, for logs) */
	/* Internal. */
	llhttp_t parser;
	char *buf;             /* the caller's buffer during httpframe_feed() */
	long long max_body;    /* decoded bodies longer than this are refused (413) */
	int phase;             /* head, body, done, error */
	int event;             /* what paused the parser */
	size_t fed;            /* bytes of buf given to the parser */
	size_t out;            /* decoded body ends here */
	size_t gap;            /* framing bytes not yet checked start here */
	char prev;             /* last framing byte checked */
	unsigned url, url_end; /* the request target */
	unsigned name_end[HTTPFRAME_MAX_HEADERS], value_end[HTTPFRAME_MAX_HEADERS];
	bool field_open, value_open;
	int hosts, codings; /* Host and Transfer-Encoding header lines */
	size_t extra;       /* bytes of chunk extensions and trailers */
	char tname[20];     /* the trailer name being read, lower case, cut */
	size_t tlen;        /* its length */
};

/* Prepares f for the first request of a connection; bodies over max_body are refused. */
void httpframe_init(struct httpframe *f, long long max_body);

/* Parses what is new in buf[0..*len) (bytes of the current request from its first byte).
 * While a chunked body arrives, the decoded data is moved up behind the head and *len
 * shrinks to drop framing bytes already read. Returns HTTPFRAME_HEAD once per request, when
 * its head is complete, then HTTPFRAME_DONE when the whole request is in (the bytes from
 * f->end on belong to the next request), or HTTPFRAME_ERROR. After HTTPFRAME_ERROR every
 * later call returns it again. */
enum httpframe_status httpframe_feed(struct httpframe *f, char *buf, size_t *len);

/* Gets f ready for the next request on the connection, once the caller has moved the bytes
 * from f->end on to the start of its buffer. */
void httpframe_next(struct httpframe *f);

/* The value of header name (any case) in the head at buf, or NULL. The first one when the
 * header is repeated. */
const char *httpframe_header(const struct httpframe *f, const char *buf, const char *name);

#endif

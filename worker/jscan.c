/* JSON validation with capture at fixed paths, in one pass and without a tree (RFC 8259, held
 * to jansson's limits so that what one accepts the other would). */
#include "jscan.h"

#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jansson's JSON_PARSER_MAX_DEPTH. */
#define JSCAN_MAX_DEPTH 2048
#define JSCAN_MAX_SLOTS 64
/* Keys longer than this are validated but never match a wanted path. */
#define JSCAN_MAX_KEY 128

struct scan {
	const unsigned char *p, *end, *start;
	struct jscan_value *vals;
	size_t nvals;
	size_t off[JSCAN_MAX_SLOTS]; /* arena offset of each string value */
	char *arena;
	size_t alen, acap;
	const unsigned char *err_at; /* set on the first failure */
	const char *why;
};

static int fail(struct scan *s, const unsigned char *at, const char *why)
{
	if (s->why == NULL) {
		s->err_at = at;
		s->why = why;
	}
	return -1;
}

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
		s->p++;
}

/* Length of the UTF-8 sequence at p (at most n bytes available), or 0 when it is not valid
 * UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0], cp;
	int len;

	if (c < 0x80)
		return 1;
	if (c < 0xC2 || c > 0xF4)
		return 0;
	len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
	if ((size_t)len > n)
		return 0;
	cp = c & (0x3F >> (len - 1));
	for (int i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

static int hex4(const unsigned char *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		int d = util_hex_value(p[i]);

		if (d < 0)
			return -1;
		v = v << 4 | (unsigned)d;
	}
	*out = v;
	return 0;
}

/* Reads the escape at p (just after the backslash): the code point in *cp, the bytes
 * taken in *used. Returns 0, or -1 with the reason. */
static int escape(struct scan *s, const unsigned char *p, unsigned *cp, int *used)
{
	static const char simple[] = "\"\\/bfnrt", value[] = "\"\\/\b\f\n\r\t";
	const char *k;
	unsigned lo;

	if (p >= s->end)
		return fail(s, p, "premature end of input");
	k = *p ? strchr(simple, *p) : NULL;
	if (k != NULL) {
		*cp = (unsigned char)value[k - simple];
		*used = 1;
		return 0;
	}
	if (*p != 'u' || s->end - p < 5 || hex4(p + 1, cp) != 0)
		return fail(s, p, "invalid escape");
	*used = 5;
	if (*cp == 0)
		return fail(s, p, "\\u0000 is not allowed");
	if (*cp >= 0xDC00 && *cp <= 0xDFFF)
		return fail(s, p, "invalid Unicode: lone low surrogate");
	if (*cp < 0xD800 || *cp > 0xDBFF)
		return 0;
	if (s->end - p < 11 || p[5] != '\\' || p[6] != 'u' || hex4(p + 7, &lo) != 0 ||
	    lo < 0xDC00 || lo > 0xDFFF)
		return fail(s, p, "invalid Unicode: high surrogate without its low half");
	*cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
	*used = 11;
	return 0;
}

static size_t put_utf8(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Validates the string at s->p (its opening quote) and leaves s->p after it. Its content
 * is [*a, *b) as written; *esc says whether it holds escapes. */
static int scan_string(struct scan *s, const unsigned char **a, const unsigned char **b, int *esc)
{
	const unsigned char *p = s->p + 1;

	*esc = 0;
	*a = p;
	while (p < s->end) {
		unsigned c = *p;

		if (c == '"') {
			*b = p;
			s->p = p + 1;
			return 0;
		}
		if (c == '\\') {
			unsigned cp;
			int used;

			if (escape(s, p + 1, &cp, &used) != 0)
				return -1;
			*esc = 1;
			p += 1 + used;
		} else if (c < 0x20) {
			return fail(s, p, "control character in a string");
		} else if (c < 0x80) {
			p++;
		} else {
			int n = utf8_len(p, (size_t)(s->end - p));

			if (n == 0)
				return fail(s, p, "invalid UTF-8");
			p += n;
		}
	}
	return fail(s, p, "premature end of input in a string");
}

/* Writes the unescaped content of [a, b) to out (room for b - a bytes); returns its
 * length. The escapes were validated by scan_string(). */
static size_t unescape(struct scan *s, const unsigned char *a, const unsigned char *b, char *out)
{
	size_t n = 0;

	while (a < b) {
		const unsigned char *bs = memchr(a, '\\', (size_t)(b - a));
		size_t run = (size_t)((bs ? bs : b) - a);
		unsigned cp;
		int used;

		memcpy(out + n, a, run);
		n += run;
		a += run;
		if (a == b)
			break;
		(void)escape(s, a + 1, &cp, &used);
		n += put_utf8(out + n, cp);
		a += 1 + used;
	}
	return n;
}

/* Copies a string value into the arena for slot. */
static int keep_string(struct scan *s, int slot, const unsigned char *a, const unsigned char *b,
                       int esc)
{
	size_t room = (size_t)(b - a) + 1;

	if (s->alen + room > s->acap) {
		size_t cap = s->acap ? s->acap : 256;
		char *na;

		while (cap < s->alen + room)
			cap *= 2;
		na = realloc(s->arena, cap);
		if (na == NULL)
			return fail(s, a, "out of memory");
		s->arena = na;
		s->acap = cap;
	}
	s->off[slot] = s->alen;
	s->vals[slot].kind = JSCAN_STRING;
	s->vals[slot].len = esc ? unescape(s, a, b, s->arena + s->alen) : (size_t)(b - a);
	if (!esc)
		memcpy(s->arena + s->alen, a, (size_t)(b - a));
	s->arena[s->alen + s->vals[slot].len] = '\0';
	s->alen += s->vals[slot].len + 1;
	return 0;
}

/* The number [a, b) as a C string in buf (or a new buffer when longer). */
static char *number_text(const unsigned char *a, const unsigned char *b, char *buf, size_t size)
{
	size_t n = (size_t)(b - a);
	char *t = n < size ? buf : malloc(n + 1);

	if (t != NULL) {
		memcpy(t, a, n);
		t[n] = '\0';
	}
	return t;
}

/* Converts the number [a, b): integers must fit in 64 bits and reals must not overflow
 * (jansson refuses the whole document otherwise). */
static int number_value(struct scan *s, const unsigned char *a, const unsigned char *b, int real,
                        struct jscan_value *v)
{
	char buf[64], *t = number_text(a, b, buf, sizeof(buf));
	int rc = 0;

	if (t == NULL)
		return fail(s, a, "out of memory");
	errno = 0;
	if (real) {
		v->kind = JSCAN_REAL;
		v->d = strtod(t, NULL);
		if (errno == ERANGE && (v->d > 1 || v->d < -1))
			rc = fail(s, a, "real number overflow");
	} else {
		v->kind = JSCAN_INTEGER;
		v->i = strtoll(t, NULL, 10);
		if (errno == ERANGE)
			rc = fail(s, a, "too big integer");
	}
	if (t != buf)
		free(t);
	return rc;
}

static int digits(struct scan *s)
{
	const unsigned char *from = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > from ? 0 : fail(s, s->p, "invalid number");
}

/* A number (RFC 8259 grammar); into v when v is not NULL. */
static int scan_number(struct scan *s, struct jscan_value *v)
{
	const unsigned char *a = s->p;
	int real = 0;
	struct jscan_value tmp;

	if (*s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (digits(s) != 0)
		return -1;
	if (s->p < s->end && *s->p == '.') {
		real = 1;
		s->p++;
		if (digits(s) != 0)
			return -1;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		real = 1;
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (digits(s) != 0)
			return -1;
	}
	/* Only long integers, and reals with an exponent or hundreds of digits, can be out
	 * of range. */
	if (v == NULL && (real ? memchr(a, 'e', (size_t)(s->p - a)) == NULL &&
	                             memchr(a, 'E', (size_t)(s->p - a)) == NULL && s->p - a < 300
	                       : s->p - a < 19))
		return 0;
	return number_value(s, a, s->p, real, v ? v : &tmp);
}

static int scan_literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return fail(s, s->p, "invalid token");
	s->p += n;
	return 0;
}

static void clear_tree(struct scan *s, const struct jscan_path *kids)
{
	for (; kids != NULL && kids->key != NULL; kids++) {
		if (kids->slot >= 0)
			s->vals[kids->slot].kind = JSCAN_ABSENT;
		clear_tree(s, kids->kids);
	}
}

static int scan_value(struct scan *s, const struct jscan_path *node, int depth);

/* The wanted member of kids named by the key [a, b) (escapes in it resolved), or NULL. */
static const struct jscan_path *match(struct scan *s, const struct jscan_path *kids,
                                      const unsigned char *a, const unsigned char *b, int esc)
{
	char key[JSCAN_MAX_KEY];
	size_t n = (size_t)(b - a);

	if (kids == NULL || n >= sizeof(key))
		return NULL;
	if (esc)
		n = unescape(s, a, b, key);
	else
		memcpy(key, a, n);
	key[n] = '\0';
	for (; kids->key != NULL; kids++)
		if (strlen(kids->key) == n && memcmp(kids->key, key, n) == 0)
			return kids;
	return NULL;
}

/* An object at s->p ('{'), capturing the members in kids. */
static int scan_object(struct scan *s, const struct jscan_path *kids, int depth)
{
	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	for (;;) {
		const unsigned char *a, *b;
		int esc;

		if (s->p >= s->end || *s->p != '"')
			return fail(s, s->p, "string or '}' expected");
		if (scan_string(s, &a, &b, &esc) != 0)
			return -1;
		skip_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return fail(s, s->p, "':' expected");
		s->p++;
		if (scan_value(s, match(s, kids, a, b, esc), depth) != 0)
			return -1;
		skip_ws(s);
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			return 0;
		}
		if (s->p >= s->end || *s->p != ',')
			return fail(s, s->p, "',' or '}' expected");
		s->p++;
		skip_ws(s);
	}
}

static int scan_array(struct scan *s, int depth)
{
	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 0;
	}
	for (;;) {
		if (scan_value(s, NULL, depth) != 0)
			return -1;
		skip_ws(s);
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			return 0;
		}
		if (s->p >= s->end || *s->p != ',')
			return fail(s, s->p, "',' or ']' expected");
		s->p++;
	}
}

/* The value at s->p, without its raw span (scan_value() adds it). */
static int scan_item(struct scan *s, const struct jscan_path *node, int depth)
{
	int slot =
	    node != NULL && node->slot >= 0 && (size_t)node->slot < s->nvals ? node->slot : -1;
	struct jscan_value *v = slot >= 0 ? &s->vals[slot] : NULL;
	const unsigned char *a, *b;
	int esc;

	skip_ws(s);
	if (s->p >= s->end)
		return fail(s, s->p, "premature end of input");
	/* Every value is a level, a scalar leaf too, as jansson counts. */
	if (depth + 1 > JSCAN_MAX_DEPTH)
		return fail(s, s->p, "maximum parsing depth reached");
	if (v != NULL)
		v->kind = JSCAN_OTHER;
	if (node != NULL)
		clear_tree(s, node->kids); /* a repeated key: only the last value counts */
	switch (*s->p) {
	case '{':
		if (v != NULL)
			v->kind = JSCAN_OBJECT;
		return scan_object(s, node ? node->kids : NULL, depth + 1);
	case '[':
		return scan_array(s, depth + 1);
	case '"':
		if (scan_string(s, &a, &b, &esc) != 0)
			return -1;
		return v != NULL ? keep_string(s, slot, a, b, esc) : 0;
	case 't':
		return scan_literal(s, "true");
	case 'f':
		return scan_literal(s, "false");
	case 'n':
		return scan_literal(s, "null");
	default:
		if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
			return scan_number(s, v);
		return fail(s, s->p, "invalid token");
	}
}

/* A value at s->p; node is the wanted path it sits at, or NULL. A wanted value also gets
 * its raw JSON text. */
static int scan_value(struct scan *s, const struct jscan_path *node, int depth)
{
	const unsigned char *a;
	struct jscan_value *v;

	skip_ws(s);
	a = s->p;
	if (scan_item(s, node, depth) != 0)
		return -1;
	if (node != NULL && node->slot >= 0 && (size_t)node->slot < s->nvals) {
		v = &s->vals[node->slot];
		v->raw = (const char *)a;
		v->raw_len = (size_t)(s->p - a);
	}
	return 0;
}

/* "line L column C: why" for the failure position. */
static void describe(const struct scan *s, char *err, size_t errlen)
{
	int line = 1;
	const unsigned char *bol = s->start;

	for (const unsigned char *q = s->start; q < s->err_at; q++)
		if (*q == '\n') {
			line++;
			bol = q + 1;
		}
	snprintf(err, errlen, "line %d column %d: %s", line, (int)(s->err_at - bol) + 1, s->why);
}

int jscan_parse(const char *text, size_t len, const struct jscan_path *root,
                struct jscan_value *vals, size_t nvals, char **arena, char *err, size_t errlen)
{
	struct scan s = {0};
	int rc = -1;

	s.start = s.p = (const unsigned char *)text;
	s.end = s.p + len;
	s.vals = vals;
	s.nvals = nvals < JSCAN_MAX_SLOTS ? nvals : JSCAN_MAX_SLOTS;
	memset(vals, 0, nvals * sizeof(*vals));
	skip_ws(&s);
	if (s.p >= s.end || (*s.p != '{' && *s.p != '['))
		fail(&s, s.p, "'[' or '{' expected");
	else if (scan_value(&s, &(struct jscan_path){"", -1, root}, 0) == 0) {
		skip_ws(&s);
		rc = s.p == s.end ? 0 : fail(&s, s.p, "end of file expected");
	}
	*arena = s.arena;
	if (rc != 0) {
		describe(&s, err, errlen);
		return -1;
	}
	for (size_t i = 0; i < s.nvals; i++)
		if (vals[i].kind == JSCAN_STRING)
			vals[i].str = s.arena + s.off[i];
	return 0;
}

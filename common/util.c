/* Time, backoff and small parsing helpers shared by ingest and worker. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void util_sleep_ms(int64_t ms, volatile int *stop)
{
	int64_t end = util_mono_ms() + ms;

	/* Sleep in short slices so that a stop request is seen within 100 ms. */
	for (int64_t now = util_mono_ms(); now < end; now = util_mono_ms()) {
		int64_t slice = end - now < 100 ? end - now : 100;
		struct timespec ts = {slice / 1000, (slice % 1000) * 1000000};

		if (stop != NULL && *stop)
			return;
		nanosleep(&ts, NULL);
	}
}

int64_t util_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms)
{
	int64_t d = base_ms;
	int64_t jitter;

	while (attempt-- > 0 && d < cap_ms)
		d *= 2;
	if (d > cap_ms)
		d = cap_ms;
	jitter = d * UTIL_BACKOFF_JITTER_PCT / 100;
	if (jitter <= 0)
		return d;
	return d - jitter + (int64_t)(random() % (jitter + 1));
}

void util_add_known(long long *total, long long v)
{
	*total = *total < 0 || v < 0 ? -1 : *total + v;
}

int util_parse_ll(const char *s, long long *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

struct unit {
	const char *suffix; /* compared without regard to case */
	long long mult;
};

/* A whole number followed by one of the units' suffixes, times that unit. */
static int parse_with_unit(const char *s, const struct unit *units, size_t n, long long *out)
{
	char *end;
	long long v;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(end, units[i].suffix) == 0) {
			if (v > (1LL << 62) / units[i].mult)
				return -1;
			*out = v * units[i].mult;
			return 0;
		}
	}
	return -1;
}

int util_parse_size(const char *s, long long *out)
{
	static const struct unit units[] = {
	    {"", 1},          {"b", 1},          {"k", 1024},        {"kb", 1024},
	    {"kib", 1024},    {"m", 1 << 20},    {"mb", 1 << 20},    {"mib", 1 << 20},
	    {"g", 1LL << 30}, {"gb", 1LL << 30}, {"gib", 1LL << 30},
	};

	return parse_with_unit(s, units, sizeof(units) / sizeof(units[0]), out);
}

int util_parse_duration_ms(const char *s, long long *ms)
{
	static const struct unit units[] = {{"", 1},      {"ms", 1},      {"s", 1000},
	                                    {"m", 60000}, {"h", 3600000}, {"d", 86400000}};

	return parse_with_unit(s, units, sizeof(units) / sizeof(units[0]), ms);
}

/* Days from 1970-01-01 to the given civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* Reads exactly n digits at *p into *out and advances *p. Returns 0, or -1. */
static int digits(const char **p, int n, int *out)
{
	*out = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (!isdigit((unsigned char)**p))
			return -1;
		*out = *out * 10 + (**p - '0');
	}
	return 0;
}

static int expect(const char **p, char c)
{
	return **p == c ? ((*p)++, 0) : -1;
}

/* "+hh:mm", "+hhmm" or "Z" at *p into seconds east of UTC. */
static int parse_offset(const char **p, int64_t *off)
{
	int sign, oh, om;

	if (**p == 'Z' || **p == 'z') {
		(*p)++;
		return 0;
	}
	if (**p != '+' && **p != '-')
		return 0;
	sign = *(*p)++ == '-' ? -1 : 1;
	if (digits(p, 2, &oh) != 0)
		return -1;
	if (**p == ':')
		(*p)++;
	if (digits(p, 2, &om) != 0 || oh > 14 || om > 59)
		return -1;
	*off = sign * ((int64_t)oh * 3600 + om * 60);
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

static int parse_iso8601(const char *s, int64_t *ms)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
	int64_t off = 0;
	const char *p = s;

	if (digits(&p, 4, &y) || expect(&p, '-') || digits(&p, 2, &mo) || expect(&p, '-') ||
	    digits(&p, 2, &d))
		return -1;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) || expect(&p, ':') || digits(&p, 2, &mi) || expect(&p, ':') ||
		    digits(&p, 2, &sec))
			return -1;
		if (*p == '.') {
			int scale = 100;

			if (!isdigit((unsigned char)*++p))
				return -1;
			for (; isdigit((unsigned char)*p); p++, scale /= 10)
				frac += (*p - '0') * scale;
		}
		if (parse_offset(&p, &off) != 0)
			return -1;
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
	    mi > 59 || sec > 60)
		return -1;
	*ms = (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
	       off) *
	          1000 +
	      frac;
	return 0;
}

int util_parse_time_ms(const char *s, int64_t *ms)
{
	long long v;

	if (util_parse_ll(s, &v) == 0) {
		/* Ten digits or fewer are seconds (until the year 2286). */
		*ms = v >= 10000000000LL || v <= -10000000000LL ? v : v * 1000;
		return 0;
	}
	return parse_iso8601(s, ms);
}

int util_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int util_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	const unsigned char *x = a, *y = b;
	unsigned char diff = alen != blen;

	/* Walk the expected value's length whatever was offered, so that the time taken says
	 * nothing about how many leading bytes matched. */
	for (size_t i = 0; i < blen; i++)
		diff |= (unsigned char)((i < alen ? x[i] : 0) ^ y[i]);
	return diff == 0;
}

const char *util_ms_text(int64_t ms, char *buf, size_t size)
{
	if (ms == 0)
		return NULL;
	snprintf(buf, size, "%lld", (long long)ms);
	return buf;
}

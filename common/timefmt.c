/* Times and durations as operators read them. */
#include "timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

char *timefmt_iso_ms(int64_t ms, char *buf, size_t size)
{
	time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int frac = (int)(ms - (int64_t)secs * 1000);
	struct tm tm;
	size_t n;

	if (gmtime_r(&secs, &tm) == NULL ||
	    (n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
		snprintf(buf, size, "%lld", (long long)ms);
		return buf;
	}
	snprintf(buf + n, size - n, ".%03dZ", frac);
	return buf;
}

char *timefmt_duration_ms(long long ms, char *buf, size_t size)
{
	static const struct {
		const char *name;
		long long ms;
	} units[] = {{"d", 86400000LL}, {"h", 3600000LL}, {"m", 60000LL}, {"s", 1000LL}};
	const char *sign = ms < 0 ? "-" : "";
	unsigned long long v = ms < 0 ? 0ULL - (unsigned long long)ms : (unsigned long long)ms;

	if (v < 1000) {
		snprintf(buf, size, "%s%llums", sign, v);
		return buf;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		unsigned long long u = (unsigned long long)units[i].ms, big = v / u;
		unsigned long long next = i + 1 < sizeof(units) / sizeof(units[0])
		                              ? (unsigned long long)units[i + 1].ms
		                              : 1;

		if (big == 0)
			continue;
		if (i + 1 < sizeof(units) / sizeof(units[0]) && (v % u) / next > 0)
			snprintf(buf, size, "%s%llu%s%llu%s", sign, big, units[i].name,
			         (v % u) / next, units[i + 1].name);
		else
			snprintf(buf, size, "%s%llu%s", sign, big, units[i].name);
		return buf;
	}
	snprintf(buf, size, "%s%llums", sign, v);
	return buf;
}

int64_t timefmt_stream_id_ms(const char *id)
{
	char *end;
	long long v;

	if (id == NULL || *id < '0' || *id > '9')
		return -1;
	v = strtoll(id, &end, 10);
	return *end == '-' || *end == '\0' ? (int64_t)v : -1;
}

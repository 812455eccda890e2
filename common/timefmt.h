#ifndef SB_TIMEFMT_H
#define SB_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Times and durations as operators read them. */

/* Writes epoch milliseconds ms as ISO-8601 UTC with milliseconds
 * ("2026-11-25T10:00:00.123Z") into buf (size >= 32 always suffices) and returns buf. */
char *timefmt_iso_ms(int64_t ms, char *buf, size_t size);

/* Writes a duration in milliseconds in its two largest units ("3m12s", "2h5m", "1d3h",
 * "12s", "450ms"; negative durations get a leading "-") into buf (size >= 24 always
 * suffices) and returns buf. */
char *timefmt_duration_ms(long long ms, char *buf, size_t size);

/* Epoch milliseconds of a Redis stream id ("1795629150045-0"), or -1 when it is none. */
int64_t timefmt_stream_id_ms(const char *id);

#endif

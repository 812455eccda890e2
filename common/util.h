#ifndef SB_UTIL_H
#define SB_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Backoff for reconnects and retries: the first delay, the cap, and the share of each delay
 * that is randomised so that many workers do not retry in step. */
#define UTIL_BACKOFF_BASE_MS 100
#define UTIL_BACKOFF_CAP_MS 10000
#define UTIL_BACKOFF_JITTER_PCT 50

/* Wall-clock milliseconds since the epoch. */
int64_t util_now_ms(void);

/* Monotonic milliseconds, for measuring intervals. */
int64_t util_mono_ms(void);

/* Monotonic microseconds, for latency metrics. */
int64_t util_mono_us(void);

/* Sleeps for ms milliseconds (restarting after signals unless *stop becomes non-zero;
 * stop may be NULL). */
void util_sleep_ms(int64_t ms, volatile int *stop);

/* Delay before retry number attempt (0-based): exponential from base_ms, capped at cap_ms,
 * with UTIL_BACKOFF_JITTER_PCT percent of it random. */
int64_t util_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms);

/* Parses a byte size such as "16MiB", "64k", "1048576" into *out. Returns 0, or -1 when
 * the text is not a size. */
int util_parse_size(const char *s, long long *out) __attribute__((warn_unused_result));

/* Parses a duration such as "500ms", "30s", "5m", "72h", "7d" (a bare number is
 * milliseconds) into *ms. Returns 0, or -1 when the text is not one. */
int util_parse_duration_ms(const char *s, long long *ms) __attribute__((warn_unused_result));

/* Parses a whole decimal number into *out; -1 unless the whole text is one. */
int util_parse_ll(const char *s, long long *out) __attribute__((warn_unused_result));

/* Adds the count v to *total, where -1 means unknown (in either, the sum is unknown). */
void util_add_known(long long *total, long long v);

/* Parses a time: epoch milliseconds (13 digits or more), epoch seconds, or ISO-8601
 * ("2024-07-27T21:24:05.712Z", offsets accepted). Returns 0 and *ms, or -1. */
int util_parse_time_ms(const char *s, int64_t *ms) __attribute__((warn_unused_result));

/* Epoch milliseconds as decimal text in buf (24 bytes are enough), or NULL for 0, which
 * stands for absent: the form SQL parameters take. Returns buf or NULL. */
const char *util_ms_text(int64_t ms, char *buf, size_t size);

/* The value of the hexadecimal digit c (either case), or -1 when it is none. */
int util_hex_value(int c);

/* Compares the offered bytes a with the expected secret b in time that depends only on
 * the secret's length. Returns 1 when equal. */
int util_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

#endif

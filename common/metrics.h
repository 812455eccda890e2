#ifndef SB_METRICS_H
#define SB_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Prometheus text exposition for a fixed set of counters and gauges declared by the
 * binary. Updates are lock-free. */
struct metric {
	const char *name;   /* switchboard_..., shared by the rows of one family */
	const char *labels; /* "{status=\"200\"}" or "" */
	const char *type;   /* "counter" or "gauge" */
	const char *help;   /* one line; written once per family */
	_Atomic int64_t value;
};

/* A latency histogram with fixed millisecond buckets. */
#define METRICS_BUCKETS 12
struct metric_hist {
	const char *name;
	const char *help;
	_Atomic int64_t counts[METRICS_BUCKETS + 1]; /* last: +Inf */
	_Atomic int64_t sum_us;
};

static inline void metric_add(struct metric *m, int64_t v)
{
	atomic_fetch_add_explicit(&m->value, v, memory_order_relaxed);
}

static inline void metric_set(struct metric *m, int64_t v)
{
	atomic_store_explicit(&m->value, v, memory_order_relaxed);
}

/* Records one observation of us microseconds. */
void metric_hist_observe(struct metric_hist *h, int64_t us);

/* Writes the n metrics (rows of one family adjacent) and the optional histogram to fp. */
void metrics_write(FILE *fp, struct metric *m, size_t n, struct metric_hist *h);

#endif

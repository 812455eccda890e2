/* Prometheus text format writer. */
#include "metrics.h"

#include <string.h>

static const double bucket_ms[METRICS_BUCKETS] = {0.25, 0.5, 1,   2,   5,    10,
                                                  25,   50,  100, 250, 1000, 5000};

void metric_hist_observe(struct metric_hist *h, int64_t us)
{
	size_t i = 0;

	while (i < METRICS_BUCKETS && (double)us > bucket_ms[i] * 1000)
		i++;
	atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

void metrics_write(FILE *fp, struct metric *m, size_t n, struct metric_hist *h)
{
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strcmp(m[i].name, m[i - 1].name) != 0)
			fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", m[i].name, m[i].help, m[i].name,
			        m[i].type);
		fprintf(fp, "%s%s %lld\n", m[i].name, m[i].labels,
		        (long long)atomic_load(&m[i].value));
	}
	if (h != NULL) {
		int64_t cum = 0;

		fprintf(fp, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
		for (size_t i = 0; i < METRICS_BUCKETS; i++) {
			cum += atomic_load(&h->counts[i]);
			fprintf(fp, "%s_bucket{le=\"%g\"} %lld\n", h->name, bucket_ms[i] / 1000,
			        (long long)cum);
		}
		cum += atomic_load(&h->counts[METRICS_BUCKETS]);
		fprintf(fp, "%s_bucket{le=\"+Inf\"} %lld\n%s_sum %.6f\n%s_count %lld\n", h->name,
		        (long long)cum, h->name, (double)atomic_load(&h->sum_us) / 1e6, h->name,
		        (long long)cum);
	}
}

/* sync --watch. */
#include "watch.h"

#include "timefmt.h"
#include "util.h"
#include "vctl.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

/* How often the wait between passes looks at the stop flag. */
#define WATCH_TICK_MS 100

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART; /* requests in flight carry on; the flag is read between them */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

int watch_run(long long interval_ms, watch_pass pass, void *arg)
{
	char t[40], d[24];

	install();
	for (unsigned long n = 1; !stop_requested; n++) {
		int64_t next = util_mono_ms() + interval_ms;
		int rc;

		printf("watch: pass %lu at %s\n", n, timefmt_iso_ms(util_now_ms(), t, sizeof(t)));
		fflush(stdout);
		rc = pass(arg);
		if (rc != VCTL_EXIT_OK)
			vctl_err("watch: pass %lu ended with exit code %d; next in %s", n, rc,
			         timefmt_duration_ms(next - util_mono_ms(), d, sizeof(d)));
		fflush(stdout);
		while (!stop_requested && util_mono_ms() < next)
			util_sleep_ms(WATCH_TICK_MS, (volatile int *)&stop_requested);
	}
	printf("watch: stopped\n");
	return VCTL_EXIT_OK;
}

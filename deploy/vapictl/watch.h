#ifndef VCTL_WATCH_H
#define VCTL_WATCH_H

/* sync --watch: run a pass, wait, run again, until SIGTERM or SIGINT. */

/* Shortest and longest --watch interval, milliseconds. */
#define WATCH_MIN_MS 1000LL
#define WATCH_MAX_MS (24LL * 3600 * 1000)

/* One pass; returns its exit code. */
typedef int (*watch_pass)(void *arg);

/* Runs pass every interval_ms (measured from the start of one pass to the start of the next;
 * a pass that takes longer is followed at once), printing "watch: pass N at TIME" on stdout
 * before each, until SIGTERM or SIGINT (a pass in progress is finished first). A failed pass
 * does not stop the watch. Returns VCTL_EXIT_OK once stopped. */
int watch_run(long long interval_ms, watch_pass pass, void *arg);

#endif

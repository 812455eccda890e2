#ifndef SB_PROGRESS_H
#define SB_PROGRESS_H

#include <stdio.h>

/* Progress of a long operation (replay, redrive, a sync): on a terminal one "what: N/M" line
 * rewritten in place; otherwise a line every PROGRESS_EVERY_ITEMS items or
 * PROGRESS_EVERY_MS, whichever comes first. The caller prints its own summary after
 * progress_end(). */

#define PROGRESS_EVERY_ITEMS 1000
#define PROGRESS_EVERY_MS 5000
/* On a terminal the line is redrawn at most this often. */
#define PROGRESS_TTY_MS 100

struct progress {
	FILE *fp;          /* where the lines go (borrowed; stderr in the tools) */
	const char *what;  /* the operation's name, first on each line (borrowed) */
	const char *unit;  /* what is counted ("entries"), after the numbers (borrowed) */
	long long total;   /* M, or -1 when not known */
	long long done;    /* N */
	long long shown;   /* N at the last line printed */
	long long last_ms; /* monotonic time of the last line */
	int tty;           /* fp is a terminal */
	int drawn;         /* an in-place line is on the terminal */
};

/* Starts counting; total is -1 when not known. Prints nothing yet. */
void progress_start(struct progress *p, FILE *fp, const char *what, const char *unit,
                    long long total);

/* Counts n more items done and prints a line when one is due. */
void progress_add(struct progress *p, long long n);

/* Sets the total once it becomes known (a pager that learns the count on its first page). */
void progress_set_total(struct progress *p, long long total);

/* Ends the in-place line on a terminal (so that the summary starts on a line of its own). */
void progress_end(struct progress *p);

#endif

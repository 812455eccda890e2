/* Progress lines of long operations. */
#include "progress.h"

#include "util.h"

#include <unistd.h>

void progress_start(struct progress *p, FILE *fp, const char *what, const char *unit,
                    long long total)
{
	p->fp = fp;
	p->what = what;
	p->unit = unit;
	p->total = total;
	p->done = p->shown = 0;
	p->last_ms = util_mono_ms();
	p->tty = isatty(fileno(fp));
	p->drawn = 0;
}

static void print_line(struct progress *p)
{
	if (p->tty)
		fputs("\r\033[K", p->fp);
	if (p->total >= 0)
		fprintf(p->fp, "%s: %lld/%lld %s", p->what, p->done, p->total, p->unit);
	else
		fprintf(p->fp, "%s: %lld %s", p->what, p->done, p->unit);
	if (p->total > 0 && !p->tty)
		fprintf(p->fp, " (%lld%%)", p->done * 100 / p->total);
	if (!p->tty)
		fputc('\n', p->fp);
	fflush(p->fp);
	p->drawn = p->tty;
	p->shown = p->done;
}

void progress_add(struct progress *p, long long n)
{
	long long now = util_mono_ms();

	p->done += n;
	if (p->tty ? now - p->last_ms >= PROGRESS_TTY_MS || p->done == p->total
	           : p->done / PROGRESS_EVERY_ITEMS > p->shown / PROGRESS_EVERY_ITEMS ||
	                 (now - p->last_ms >= PROGRESS_EVERY_MS && p->done > p->shown)) {
		print_line(p);
		p->last_ms = now;
	}
}

void progress_set_total(struct progress *p, long long total)
{
	p->total = total;
}

void progress_end(struct progress *p)
{
	if (p->tty && p->done != p->shown)
		print_line(p);
	if (p->drawn)
		fputc('\n', p->fp);
	p->drawn = 0;
	fflush(p->fp);
}

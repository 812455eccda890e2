#ifndef VCTL_H
#define VCTL_H

#include "vctl_cfg.h"

#include <stdbool.h>

struct vapi_api;

/* Exit codes of vapictl (README and --help list them). */
#define VCTL_EXIT_OK 0     /* everything done */
#define VCTL_EXIT_FAILED 1 /* an API or Redis call failed, or some items failed */
#define VCTL_EXIT_USAGE 2  /* bad command line, configuration or input file */
#define VCTL_EXIT_MANUAL 3 /* org set-server: the API refused; dashboard steps printed */

/* Calls carry transcripts and messages: backfill asks for fewer per page by default. */
#define VCTL_BACKFILL_PAGE 100

/* Command-line options; which ones a command accepts is checked in main.c. Strings borrow
 * from argv. */
struct vctl_opts {
	const char *url;           /* --url, else VAPI_WEBHOOK_URL */
	const char *messages;      /* --messages a,b: extra serverMessages */
	const char *file;          /* --file for assistants create */
	const char *since;         /* --since for backfill */
	const char *until;         /* --until for backfill */
	const char *org_id;        /* --org-id for org set-server */
	long long timeout_seconds; /* --timeout-seconds, else the configured default */
	long long page_size;     /* --page-size, items per list request; 0: the command's default */
	bool json;               /* --json */
	bool dry_run;            /* --dry-run */
	bool apply;              /* --apply (routing import) */
	const char *watch;       /* --watch D as given */
	long long watch_ms;      /* its value; 0: run once */
	bool keep_server;        /* --keep-server */
	bool include_unassigned; /* --include-unassigned */
	bool verbose;            /* -v / --verbose */
};

/* What every command gets: settings, options and a ready API client (all borrowed). */
struct vctl {
	const struct vctl_cfg *cfg;
	const struct vctl_opts *opts;
	struct vapi_api *api;
};

struct sync_desired;

/* The desired webhook URL: --url, else VAPI_WEBHOOK_URL, else NULL (borrowed). */
const char *vctl_url(const struct vctl *v);

/* Fills d with the desired server configuration from v (see sync_desired_init()). Prints
 * what is missing or wrong and returns VCTL_EXIT_USAGE, or returns VCTL_EXIT_OK. Release d
 * with sync_desired_free() in both cases. */
int vctl_desired(const struct vctl *v, struct sync_desired *d) __attribute__((warn_unused_result));

/* Prints "vapictl: <message>" and a newline on stderr. */
void vctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

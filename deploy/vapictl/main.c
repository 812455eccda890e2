/* vapictl: the command line. Parses arguments, loads settings, runs one command. */
#include "cmd_backfill.h"
#include "cmd_create.h"
#include "cmd_org.h"
#include "cmd_sync.h"
#include "util.h"
#include "vapi_api.h"
#include "vapi_pager.h"
#include "vctl.h"

#include <curl/curl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Options, as bits of what a command accepts. */
enum {
	O_URL = 1u << 0,
	O_MESSAGES = 1u << 1,
	O_FILE = 1u << 2,
	O_SINCE = 1u << 3,
	O_UNTIL = 1u << 4,
	O_ORG_ID = 1u << 5,
	O_TIMEOUT = 1u << 6,
	O_PAGE = 1u << 7,
	O_JSON = 1u << 8,
	O_DRY = 1u << 9,
	O_KEEP = 1u << 10,
	O_UNASSIGNED = 1u << 11,
	O_VERBOSE = 1u << 12,
};

enum opt_kind { OK_STR, OK_INT, OK_BOOL };

struct opt_def {
	const char *name; /* long form */
	unsigned bit;     /* O_* */
	enum opt_kind kind;
	long long min, max; /* range of OK_INT */
	size_t off;         /* field in struct vctl_opts */
};

#define F(field) offsetof(struct vctl_opts, field)

static const struct opt_def opt_defs[] = {
    {"--url", O_URL, OK_STR, 0, 0, F(url)},
    {"--messages", O_MESSAGES, OK_STR, 0, 0, F(messages)},
    {"--file", O_FILE, OK_STR, 0, 0, F(file)},
    {"--since", O_SINCE, OK_STR, 0, 0, F(since)},
    {"--until", O_UNTIL, OK_STR, 0, 0, F(until)},
    {"--org-id", O_ORG_ID, OK_STR, 0, 0, F(org_id)},
    {"--timeout-seconds", O_TIMEOUT, OK_INT, 1, 300, F(timeout_seconds)},
    {"--page-size", O_PAGE, OK_INT, 1, VAPI_PAGE_MAX, F(page_size)},
    {"--json", O_JSON, OK_BOOL, 0, 0, F(json)},
    {"--dry-run", O_DRY, OK_BOOL, 0, 0, F(dry_run)},
    {"--keep-server", O_KEEP, OK_BOOL, 0, 0, F(keep_server)},
    {"--include-unassigned", O_UNASSIGNED, OK_BOOL, 0, 0, F(include_unassigned)},
    {"--verbose", O_VERBOSE, OK_BOOL, 0, 0, F(verbose)},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Flags that would put a secret on the command line, where other users can read it. */
static const char *const secret_flags[] = {"--api-key", "--vapi-api-key", "--key",
                                           "--token",   "--secret",       "--webhook-secret"};

static int run_assistants_list(struct vctl *v)
{
	return cmd_list(v, SYNC_ASSISTANT);
}

static int run_assistants_sync(struct vctl *v)
{
	return cmd_sync(v, SYNC_ASSISTANT);
}

static int run_phones_list(struct vctl *v)
{
	return cmd_list(v, SYNC_PHONE_NUMBER);
}

static int run_phones_sync(struct vctl *v)
{
	return cmd_sync(v, SYNC_PHONE_NUMBER);
}

struct command {
	const char *noun;
	const char *verb; /* NULL for a one-word command */
	unsigned opts;    /* O_* accepted besides --verbose */
	unsigned need;    /* VCTL_NEED_* */
	int (*run)(struct vctl *v);
	const char *args; /* for the usage text */
};

#define LIST_OPTS (O_URL | O_MESSAGES | O_TIMEOUT | O_PAGE | O_JSON)
#define SYNC_OPTS (O_URL | O_MESSAGES | O_TIMEOUT | O_PAGE | O_DRY)

static const struct command commands[] = {
    {"assistants", "list", LIST_OPTS, 0, run_assistants_list, "[--url URL] [--json]"},
    {"assistants", "sync", SYNC_OPTS, VCTL_NEED_SECRET, run_assistants_sync,
     "[--url URL] [--messages a,b] [--timeout-seconds N] [--dry-run]"},
    {"assistants", "create", O_URL | O_MESSAGES | O_TIMEOUT | O_FILE | O_KEEP | O_JSON,
     VCTL_NEED_SECRET, cmd_create, "--file FILE [--url URL] [--keep-server] [--json]"},
    {"phone-numbers", "list", LIST_OPTS & ~O_MESSAGES, 0, run_phones_list, "[--url URL] [--json]"},
    {"phone-numbers", "sync", (SYNC_OPTS & ~O_MESSAGES) | O_UNASSIGNED, VCTL_NEED_SECRET,
     run_phones_sync, "[--url URL] [--timeout-seconds N] [--dry-run] [--include-unassigned]"},
    {"org", "set-server", O_URL | O_TIMEOUT | O_ORG_ID, VCTL_NEED_SECRET, cmd_org,
     "[--url URL] [--org-id ID] [--timeout-seconds N]"},
    {"backfill", NULL, O_SINCE | O_UNTIL | O_PAGE | O_DRY, VCTL_NEED_REDIS, cmd_backfill,
     "--since TIME [--until TIME] [--dry-run]"},
};

static void usage(FILE *fp)
{
	fprintf(fp, "usage: vapictl COMMAND [options]\n\nCommands:\n");
	for (size_t i = 0; i < COUNT(commands); i++)
		fprintf(fp, "  %s%s%s %s\n", commands[i].noun, commands[i].verb ? " " : "",
		        commands[i].verb ? commands[i].verb : "", commands[i].args);
	fprintf(fp,
	        "\nlist, sync and backfill take --page-size N (1..%d; default %d, for backfill\n"
	        "%d). Every command takes -v (--verbose) to show retries. --messages adds\n"
	        "serverMessages types to status-update, end-of-call-report and hang. TIME is\n"
	        "ISO-8601 or epoch ms.\n\n",
	        VAPI_PAGE_MAX, VAPI_PAGE_MAX, VCTL_BACKFILL_PAGE);
	vctl_cfg_usage(fp);
	fprintf(fp,
	        "Secrets are read from the environment or files only, never from arguments.\n"
	        "\nExit status:\n  %d  done\n  %d  an API or Redis call failed, or some items "
	        "failed\n  %d  bad arguments, settings or input\n  %d  org set-server: the API "
	        "refused; the dashboard steps were printed\n",
	        VCTL_EXIT_OK, VCTL_EXIT_FAILED, VCTL_EXIT_USAGE, VCTL_EXIT_MANUAL);
}

static const struct opt_def *find_opt(const char *arg, size_t len)
{
	if (len == 2 && strncmp(arg, "-v", 2) == 0) {
		arg = "--verbose";
		len = strlen(arg);
	}
	for (size_t i = 0; i < COUNT(opt_defs); i++)
		if (strlen(opt_defs[i].name) == len && strncmp(arg, opt_defs[i].name, len) == 0)
			return &opt_defs[i];
	return NULL;
}

static int refuse_secret_flag(const char *arg, size_t len)
{
	for (size_t i = 0; i < COUNT(secret_flags); i++) {
		if (strlen(secret_flags[i]) == len && strncmp(arg, secret_flags[i], len) == 0) {
			vctl_err(
			    "%.*s: secrets are never read from the command line (other users "
			    "see it): set VAPI_API_KEY and WEBHOOK_SECRET, or VAPI_API_KEY_FILE "
			    "and WEBHOOK_SECRET_FILE",
			    (int)len, arg);
			return -1;
		}
	}
	vctl_err("unknown option %.*s (see --help)", (int)len, arg);
	return -1;
}

static int set_opt(const struct opt_def *d, struct vctl_opts *o, const char *v)
{
	char why[200];
	long long n;

	if (d->kind == OK_STR) {
		if (d->bit == O_URL && vctl_cfg_check_url(v, why, sizeof(why)) != 0) {
			vctl_err("--url: %s", why);
			return -1;
		}
		*(const char **)((char *)o + d->off) = v;
		return 0;
	}
	if (util_parse_ll(v, &n) != 0 || n < d->min || n > d->max) {
		vctl_err("%s: expected a whole number from %lld to %lld", d->name, d->min, d->max);
		return -1;
	}
	*(long long *)((char *)o + d->off) = n;
	return 0;
}

/* Parses the option at argv[*i] (advancing *i past its value) into o; adds its bit. */
static int parse_opt(int argc, char **argv, int *i, struct vctl_opts *o, unsigned *given)
{
	const char *arg = argv[*i], *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	const struct opt_def *d = find_opt(arg, len);

	if (d == NULL)
		return refuse_secret_flag(arg, len);
	*given |= d->bit;
	if (d->kind == OK_BOOL) {
		if (eq != NULL) {
			vctl_err("%s takes no value", d->name);
			return -1;
		}
		*(bool *)((char *)o + d->off) = true;
		return 0;
	}
	if (eq == NULL && *i + 1 >= argc) {
		vctl_err("%s needs a value", d->name);
		return -1;
	}
	return set_opt(d, o, eq ? eq + 1 : argv[++*i]);
}

static const struct command *find_command(const char *noun, const char *verb)
{
	for (size_t i = 0; i < COUNT(commands); i++) {
		const struct command *c = &commands[i];

		if (strcmp(c->noun, noun) == 0 &&
		    (c->verb == NULL ? verb == NULL : verb != NULL && strcmp(c->verb, verb) == 0))
			return c;
	}
	return NULL;
}

/* Checks that every option given applies to c. */
static int check_opts(const struct command *c, unsigned given)
{
	unsigned extra = given & ~(c->opts | O_VERBOSE);

	for (size_t i = 0; i < COUNT(opt_defs); i++) {
		if (extra & opt_defs[i].bit) {
			vctl_err("%s does not apply to %s%s%s", opt_defs[i].name, c->noun,
			         c->verb ? " " : "", c->verb ? c->verb : "");
			return -1;
		}
	}
	return 0;
}

/* Fills o and *cmd from argv. Returns 0, 1 for --help, or -1 after printing why. */
static int parse_args(int argc, char **argv, struct vctl_opts *o, const struct command **cmd)
{
	const char *words[3] = {NULL, NULL, NULL};
	unsigned given = 0;
	int nwords = 0;

	memset(o, 0, sizeof(*o));
	o->timeout_seconds = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ||
		    (i == 1 && strcmp(argv[i], "help") == 0))
			return 1;
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			if (parse_opt(argc, argv, &i, o, &given) != 0)
				return -1;
		} else if (nwords < 3) {
			words[nwords++] = argv[i];
		}
	}
	*cmd = nwords >= 1 && nwords <= 2 ? find_command(words[0], words[1]) : NULL;
	if (*cmd == NULL) {
		vctl_err("unknown command%s%s%s%s (see --help)", nwords ? " \"" : "",
		         nwords ? words[0] : "", nwords > 1 ? " " : "", nwords > 1 ? words[1] : "");
		return -1;
	}
	return check_opts(*cmd, given);
}

static void on_retry(void *ud, const char *request, const char *reason, long long delay_ms)
{
	(void)ud;
	vctl_err("%s: %s, retrying in %lld ms", request, reason, delay_ms);
}

/* Runs cmd with the settings loaded. */
static int run(const struct command *cmd, struct vctl_opts *o, const struct vctl_cfg *cfg)
{
	struct vapi_error err;
	struct vapi_api_stats st;
	struct vctl v = {cfg, o, NULL};
	int rc;

	if (o->timeout_seconds < 0)
		o->timeout_seconds = cfg->timeout_seconds;
	v.api = vapi_api_new(cfg->base_url, cfg->api_key, &err);
	if (v.api == NULL) {
		vctl_err("%s", err.errstr);
		return VCTL_EXIT_FAILED;
	}
	if (o->verbose)
		vapi_api_set_retry_hook(v.api, on_retry, NULL);
	rc = cmd->run(&v);
	vapi_api_stats(v.api, &st);
	if (o->verbose)
		vctl_err("%lu requests, %lu of them retries", st.requests, st.retries);
	vapi_api_free(v.api);
	return rc;
}

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	struct vctl_cfg_error cerr;
	struct vctl_opts o;
	struct vctl_cfg cfg;
	int rc = parse_args(argc, argv, &o, &cmd);

	if (rc != 0) {
		if (rc > 0 || argc < 2)
			usage(rc > 0 ? stdout : stderr);
		return rc > 0 ? VCTL_EXIT_OK : VCTL_EXIT_USAGE;
	}
	if (vctl_cfg_load(&cfg, cmd->need, &cerr) != 0) {
		vctl_err("%s", cerr.errstr);
		vctl_cfg_free(&cfg);
		return VCTL_EXIT_USAGE;
	}
	/* A reader that goes away (vapictl ... | head) must not stop a sync half-way. */
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		vctl_err("cannot initialise libcurl");
		rc = VCTL_EXIT_FAILED;
	} else {
		rc = run(cmd, &o, &cfg);
		curl_global_cleanup();
	}
	vctl_cfg_free(&cfg);
	return rc;
}

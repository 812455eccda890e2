/* vapictl: the command line. Parses arguments, loads settings, runs one command. */
#include "cmd_backfill.h"
#include "cmd_create.h"
#include "cmd_org.h"
#include "cmd_routing.h"
#include "cmd_sync.h"
#include "util.h"
#include "vapi_api.h"
#include "vapi_pager.h"
#include "vctl.h"
#include "watch.h"

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
	O_APPLY = 1u << 13,
	O_WATCH = 1u << 14,
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
    {"--apply", O_APPLY, OK_BOOL, 0, 0, F(apply)},
    {"--watch", O_WATCH, OK_STR, 0, 0, F(watch)},
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
	const char *help; /* what it does, for COMMAND --help */
};

/* What a sync sets: the help of both syncs and of create says it. */
#define SETS_HELP                                                                                  \
	"It sets, on each one that differs, the whole server object:\n"                            \
	"  server.url             --url, else VAPI_WEBHOOK_URL\n"                                  \
	"  server.headers         {WEBHOOK_SECRET_HEADER: WEBHOOK_SECRET}, nothing else\n"         \
	"  server.timeoutSeconds  --timeout-seconds, else VAPI_WEBHOOK_TIMEOUT_SECONDS (20)\n"     \
	"  server.backoffPlan     exponential, 5 retries from 1 s, none on 400 401 403 404 405 "   \
	"413\n"
#define MESSAGES_HELP                                                                              \
	"  serverMessages         status-update, end-of-call-report, hang, and --messages a,b\n"

static const char assistants_list_help[] =
    "Lists every assistant: ID, NAME, whether server.url is the webhook URL (MATCH), and with\n"
    "WEBHOOK_SECRET set whether the whole server configuration is as sync would set it\n"
    "(SYNC). --json prints one JSON array. A refused key or a failed request prints nothing\n"
    "on stdout, the reason on stderr, and exits 1.\n";
static const char assistants_sync_help[] =
    "Makes every assistant send its notifications to the webhook URL.\n" SETS_HELP MESSAGES_HELP
    "Other fields are not touched. --dry-run prints each assistant that would change and\n"
    "why; a real sync prints only failures, progress on stderr (N assistants, a line every\n"
    "1000 or 5 s; in place on a terminal) and the summary; -v prints each change too.\n"
    "--watch D (30s, 5m, 1h) syncs again every D until SIGTERM or SIGINT, so that assistants\n"
    "created or edited in the dashboard get the configuration within D.\n"
    "Each assistant changed is read back (GET): with Vapi's assistant versioning an edit may\n"
    "only change a draft while inbound calls use the published version; such assistants are\n"
    "listed as \"unpublished\" (publish them in the dashboard) and the exit code is 1.\n";
static const char assistants_create_help[] =
    "Creates an assistant from the JSON in --file with the server configuration a sync\n"
    "sets (a server already in the file is refused unless --keep-server).\n";
static const char phones_list_help[] =
    "Lists every phone number: ID, NUMBER, PROVIDER, MATCH, SYNC as for assistants list.\n";
static const char phones_sync_help[] =
    "Makes every phone number send its notifications to the webhook URL.\n" SETS_HELP
    "Phone numbers without an assistant, squad or workflow are skipped (their server URL\n"
    "answers assistant-request) unless --include-unassigned. Output and --watch D as for\n"
    "assistants sync.\n";
static const char org_help[] =
    "Sets the organization-wide server URL. When the API refuses, prints the dashboard\n"
    "steps and exits 3.\n";
static const char routing_help[] =
    "Fills the routing tables (DATABASE_URL) from Vapi: an assistants row for each assistant\n"
    "with metadata.organizationId, a phone_numbers row for each phone number whose assistant\n"
    "has an organization (by its metadata, else by the assistants table). It only adds rows:\n"
    "a row that exists with another organization, or an organization missing from\n"
    "organizations, is printed as a conflict and left alone (exit 1). Running it again\n"
    "changes nothing. --dry-run prints what it would add; --apply adds it in one\n"
    "transaction; -v also names the items without an organization.\n";
static const char backfill_help[] =
    "Lists the calls of [--since, --until) through the Vapi API and, for each ended one,\n"
    "writes the end-of-call-report Vapi would have sent into the stream (source=backfill)\n"
    "for the workers to file, each to the next stream shard. Needs the Redis settings\n"
    "(REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER, SWITCHBOARD_STREAM, SWITCHBOARD_SHARDS) as\n"
    "ingest has them.\n";

#define LIST_OPTS (O_URL | O_MESSAGES | O_TIMEOUT | O_PAGE | O_JSON)
#define SYNC_OPTS (O_URL | O_MESSAGES | O_TIMEOUT | O_PAGE | O_DRY | O_WATCH)

static const struct command commands[] = {
    {"assistants", "list", LIST_OPTS, 0, run_assistants_list, "[--url URL] [--json]",
     assistants_list_help},
    {"assistants", "sync", SYNC_OPTS, VCTL_NEED_SECRET, run_assistants_sync,
     "[--url URL] [--messages a,b] [--timeout-seconds N] [--dry-run]", assistants_sync_help},
    {"assistants", "create", O_URL | O_MESSAGES | O_TIMEOUT | O_FILE | O_KEEP | O_JSON,
     VCTL_NEED_SECRET, cmd_create, "--file FILE [--url URL] [--keep-server] [--json]",
     assistants_create_help},
    {"phone-numbers", "list", LIST_OPTS & ~O_MESSAGES, 0, run_phones_list, "[--url URL] [--json]",
     phones_list_help},
    {"phone-numbers", "sync", (SYNC_OPTS & ~O_MESSAGES) | O_UNASSIGNED, VCTL_NEED_SECRET,
     run_phones_sync, "[--url URL] [--timeout-seconds N] [--dry-run] [--include-unassigned]",
     phones_sync_help},
    {"org", "set-server", O_URL | O_TIMEOUT | O_ORG_ID, VCTL_NEED_SECRET, cmd_org,
     "[--url URL] [--org-id ID] [--timeout-seconds N]", org_help},
    {"backfill", NULL, O_SINCE | O_UNTIL | O_PAGE | O_DRY, VCTL_NEED_REDIS, cmd_backfill,
     "--since TIME [--until TIME] [--dry-run]", backfill_help},
    {"routing", "import", O_DRY | O_APPLY | O_PAGE, VCTL_NEED_DB, cmd_routing_import,
     "--dry-run | --apply", routing_help},
};

/* COMMAND --help: its usage line, what it does, and where the settings are listed. */
static void command_usage(const struct command *c, FILE *fp)
{
	fprintf(fp, "usage: vapictl %s%s%s %s [-v]\n\n%s", c->noun, c->verb ? " " : "",
	        c->verb ? c->verb : "", c->args, c->help);
	if (c->opts & O_PAGE)
		fprintf(fp, "--page-size N: items per list request (1..%d).\n", VAPI_PAGE_MAX);
	fprintf(fp, "-v (--verbose) shows retries. Settings and exit codes: vapictl --help.\n");
}

static void usage(FILE *fp)
{
	fprintf(fp, "usage: vapictl COMMAND [options]\n\nCommands:\n");
	for (size_t i = 0; i < COUNT(commands); i++)
		fprintf(fp, "  %s%s%s %s\n", commands[i].noun, commands[i].verb ? " " : "",
		        commands[i].verb ? commands[i].verb : "", commands[i].args);
	fprintf(fp,
	        "\nCOMMAND --help says what a command does (and which fields a sync sets).\n"
	        "list, sync and backfill take --page-size N (1..%d; default %d, for backfill\n"
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
		if (d->bit == O_WATCH &&
		    (util_parse_duration_ms(v, &o->watch_ms) != 0 || o->watch_ms < WATCH_MIN_MS ||
		     o->watch_ms > WATCH_MAX_MS)) {
			vctl_err("--watch: expected a duration from 1s to 24h (30s, 5m, 1h)");
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

/* The command named by the words of argv (options skipped), or NULL; help says whether
 * --help, -h or a first word "help" is among them. */
static const struct command *command_of(int argc, char **argv, bool *help, const char **words,
                                        int *nwords)
{
	*nwords = 0;
	*help = false;
	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		const struct opt_def *d =
		    find_opt(argv[i], eq ? (size_t)(eq - argv[i]) : strlen(argv[i]));

		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ||
		    (i == 1 && strcmp(argv[i], "help") == 0))
			*help = true;
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			i += d != NULL && d->kind != OK_BOOL && eq == NULL; /* skip its value */
		else if (*nwords < 3)
			words[(*nwords)++] = argv[i];
	}
	return *nwords >= 1 && *nwords <= 2 ? find_command(words[0], words[1]) : NULL;
}

/* Fills o and *cmd from argv. Returns 0, 1 for --help (*cmd set when a command was named),
 * or -1 after printing why. */
static int parse_args(int argc, char **argv, struct vctl_opts *o, const struct command **cmd)
{
	const char *words[3] = {NULL, NULL, NULL};
	unsigned given = 0;
	int nwords;
	bool help;

	memset(o, 0, sizeof(*o));
	o->timeout_seconds = -1;
	*cmd = command_of(argc, argv, &help, words, &nwords);
	if (help)
		return 1;
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-' && argv[i][1] != '\0' &&
		    parse_opt(argc, argv, &i, o, &given) != 0)
			return -1;
	if (*cmd == NULL) {
		if (nwords == 0)
			vctl_err("which command? (see --help)");
		else
			vctl_err("unknown command \"%s%s%s\" (see --help)", words[0],
			         nwords > 1 ? " " : "", nwords > 1 ? words[1] : "");
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
/* One pass of a watched command. */
struct pass {
	const struct command *cmd;
	struct vctl *v;
};

static int run_pass(void *arg)
{
	struct pass *p = arg;

	return p->cmd->run(p->v);
}

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
	rc = o->watch_ms > 0 ? watch_run(o->watch_ms, run_pass, &(struct pass){cmd, &v})
	                     : cmd->run(&v);
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
		if (rc > 0 && cmd != NULL)
			command_usage(cmd, stdout);
		else if (rc > 0 || argc < 2)
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

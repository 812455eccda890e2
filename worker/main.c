/* switchboard-worker: consumes the webhook stream into PostgreSQL, and the operator
 * commands around it. */
#include "cfg.h"
#include "consumer.h"
#include "log.h"
#include "migrate.h"
#include "ops.h"
#include "pgfail.h"
#include "wmetrics.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: switchboard-worker [settings] [command]\n"
	        "commands:\n"
	        "  run                 consume the stream into PostgreSQL (the default)\n"
	        "  migrate             apply the SQL migrations and exit\n"
	        "  drain [--timeout D] consume until nothing is lagging or pending, then exit\n"
	        "  replay --since TIME [--until TIME] [--org ID] [--type TYPE] [--dry-run]\n"
	        "                      process retained entries again (idempotent)\n"
	        "  reroute             route parked (unrouted) messages again\n"
	        "  status [--json]     stream, group, consumers, dead letters, unrouted\n"
	        "  dlq list|show|edit|redrive|delete|purge\n"
	        "                      the dead letters\n"
	        "Settings go before the command. COMMAND --help shows a command's options; the\n"
	        "operator commands wait at most --timeout D (10s) for Redis and PostgreSQL.\n");
	cfg_usage(CFG_WORKER, fp);
}

static const char run_usage[] =
    "usage: switchboard-worker [settings] run   (also the default: no command)\n"
    "Consumes the stream into PostgreSQL until SIGTERM or SIGINT (then finishes and\n"
    "acknowledges the batch in hand and exits 0). Retries Redis and PostgreSQL while they\n"
    "are unreachable; exits 1 when REDIS_URL or DATABASE_URL cannot work (a database that\n"
    "does not exist, a wrong password). Takes no options: see switchboard-worker --help for\n"
    "the settings.\n";

static const char migrate_usage[] =
    "usage: switchboard-worker [settings] migrate\n"
    "Applies the SQL migrations compiled into this binary to DATABASE_URL, each in its own\n"
    "transaction under an advisory lock, and exits. Takes no options.\n";

/* run and migrate take no words after the command but --help. Returns -1 to go on, else the
 * exit code. */
static int no_args(const char *cmd, const char *usage, int argc, char **argv)
{
	if (argc < 2)
		return -1;
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	fprintf(stderr, "%s: unexpected argument \"%s\" (settings go before the command)\n", cmd,
	        argv[1]);
	return 2;
}

static int cmd_migrate(const struct cfg *c)
{
	char err[512];
	unsigned applied;

	if (migrate_apply(c->database_url, &applied, err, sizeof(err)) != 0) {
		log_error("migrate: %s%s",
		          pgfail_is_setting(c->database_url, err) ? "DATABASE_URL: " : "", err);
		return 1;
	}
	log_info("migrate: %u applied, schema at %s", applied,
	         migrations[migrations_count - 1].version);
	return 0;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int cmd_run(const struct cfg *c, int argc, char **argv)
{
	char err[256];
	int rc;

	if ((rc = no_args("run", run_usage, argc, argv)) >= 0)
		return rc;
	/* A batch must finish well within the claim timeout, or a live worker's entries would
	 * be taken over while it still works on them. */
	if (c->claim_idle_ms <= c->block_ms + c->batch * 20 + 10000)
		log_warn("WORKER_CLAIM_IDLE (%lld ms) is not well above the worst-case batch time "
		         "(about %lld ms): a slow batch may be taken over by another worker",
		         c->claim_idle_ms, c->block_ms + c->batch * 20 + 10000);
	if (c->metrics_listen[0] != '\0' && wmetrics_start(c, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return 1;
	}
	rc = consumer_run(c, &stop_requested);
	wmetrics_stop();
	return rc;
}

static int dispatch(const struct cfg *c, const char *cmd, int argc, char **argv)
{
	if (strcmp(cmd, "run") == 0)
		return cmd_run(c, argc, argv);
	if (strcmp(cmd, "migrate") == 0) {
		int rc = no_args("migrate", migrate_usage, argc, argv);

		return rc >= 0 ? rc : cmd_migrate(c);
	}
	if (strcmp(cmd, "drain") == 0)
		return ops_drain(c, &stop_requested, argc, argv);
	if (strcmp(cmd, "replay") == 0)
		return ops_replay(c, &stop_requested, argc, argv);
	if (strcmp(cmd, "reroute") == 0)
		return ops_reroute(c, &stop_requested, argc, argv);
	if (strcmp(cmd, "status") == 0)
		return ops_status(c, &stop_requested, argc, argv);
	if (strcmp(cmd, "dlq") == 0)
		return ops_dlq(c, &stop_requested, argc, argv);
	fprintf(stderr, "switchboard-worker: unknown command \"%s\"\n", cmd);
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	struct cfg c;
	struct cfg_error err;
	const char *cmd;
	int argi, rc;

	if (cfg_load(&c, CFG_WORKER, argc, argv, &argi, &err) != 0) {
		fprintf(stderr, "switchboard-worker: %s\n", err.errstr);
		cfg_free(&c);
		return 2;
	}
	if (c.help) {
		usage(stdout);
		cfg_free(&c);
		return 0;
	}
	if (c.check_only) {
		printf("switchboard-worker: configuration is valid\n");
		cfg_free(&c);
		return 0;
	}
	log_init("worker", (enum log_level)c.log_level);
	/* A batch is thousands of small JSON nodes freed next to megabyte-sized replies: with
	 * fastbins, every large free consolidates them first, a fifth of the worker's time. */
	mallopt(M_MXFAST, 0);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	install_signals();
	cmd = argi < argc ? argv[argi] : "run";
	rc = dispatch(&c, cmd, argc - argi, argv + argi);
	cfg_free(&c);
	return rc;
}

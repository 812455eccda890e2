/* switchboard-worker: consumes the webhook stream into PostgreSQL, and the operator
 * commands around it. */
#include "cfg.h"
#include "consumer.h"
#include "log.h"
#include "migrate.h"

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
	fprintf(fp, "usage: switchboard-worker [settings] [command]\n"
		    "commands:\n"
		    "  run       consume the stream into PostgreSQL (the default)\n"
		    "  migrate   apply the SQL migrations and exit\n");
	cfg_usage(CFG_WORKER, fp);
}

static int cmd_migrate(const struct cfg *c)
{
	char err[512];
	unsigned applied;

	if (migrate_apply(c->database_url, &applied, err, sizeof(err)) != 0) {
		log_error("migrate: %s", err);
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
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	install_signals();
	cmd = argi < argc ? argv[argi] : "run";
	if (strcmp(cmd, "run") == 0) {
		rc = consumer_run(&c, &stop_requested);
	} else if (strcmp(cmd, "migrate") == 0) {
		rc = cmd_migrate(&c);
	} else {
		fprintf(stderr, "switchboard-worker: unknown command \"%s\"\n", cmd);
		usage(stderr);
		rc = 2;
	}
	cfg_free(&c);
	return rc;
}

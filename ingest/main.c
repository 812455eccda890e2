/* switchboard-ingest: accepts Vapi server messages and appends them to the Redis stream. */
#include "cfg.h"
#include "log.h"
#include "server.h"
#include "shards.h"
#include "webhook.h"

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
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
	fprintf(
	    fp,
	    "usage: switchboard-ingest [settings]\n"
	    "Serves POST /api/vapi/webhook and GET /healthz; /metrics, /healthz and /readyz on\n"
	    "the admin listener (INGEST_ADMIN_LISTEN).\n");
	cfg_usage(CFG_INGEST, fp);
}

/* Each connection is a descriptor: allow as many as the hard limit, so that a burst of
 * connections waits in the queue instead of failing accept(). */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int serve(const struct cfg *c)
{
	char err[512];
	struct ingest *in;
	struct sigaction sa = {0};

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	/* A few shared heaps keep freed memory reusable instead of parked in one arena per
	 * thread. */
	mallopt(M_ARENA_MAX, 2);
	in = ingest_start(c, err, sizeof(err));
	if (in == NULL) {
		log_error("start: %s", err);
		return 1;
	}
	if (c->auth_disabled)
		log_warn("INGEST_AUTH_DISABLED=true: accepting webhooks without authentication");
	if (c->shards > 1) {
		log_info("listening on http://%s/api/vapi/webhook, streams %s:{0..%lld}", c->listen,
		         c->stream, c->shards - 1);
	} else {
		char stream[SHARDS_NAME];

		shards_stream(c, 0, stream, sizeof(stream));
		log_info("listening on http://%s/api/vapi/webhook, stream %s", c->listen, stream);
	}
	/* Signals interrupt the sleep; the slice bounds the wait should one land just before. */
	while (!stop_requested) {
		struct timespec ts = {0, 200 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	log_info("stopping");
	ingest_stop(in);
	log_info("stopped");
	return 0;
}

int main(int argc, char **argv)
{
	struct cfg c;
	struct cfg_error err;
	int argi, rc;

	if (cfg_load(&c, CFG_INGEST, argc, argv, &argi, &err) != 0) {
		fprintf(stderr, "switchboard-ingest: %s\n", err.errstr);
		cfg_free(&c);
		return 2;
	}
	if (c.help || argi < argc) {
		usage(c.help ? stdout : stderr);
		cfg_free(&c);
		return c.help ? 0 : 2;
	}
	if (c.check_only) {
		struct auth_cfg a;
		char why[512];

		if (webhook_auth_init(&a, &c, why, sizeof(why)) != 0) {
			fprintf(stderr, "switchboard-ingest: %s\n", why);
			cfg_free(&c);
			return 2;
		}
		auth_cfg_free_networks(&a);
		printf("switchboard-ingest: configuration is valid\n");
		cfg_free(&c);
		return 0;
	}
	log_init("ingest", (enum log_level)c.log_level);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	rc = serve(&c);
	cfg_free(&c);
	return rc;
}

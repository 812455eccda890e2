/* The operator commands' command line. */
#include "opscli.h"

#include "util.h"

#include <stdio.h>
#include <string.h>

/* One "--name" word: its option, or NULL. */
static const struct ops_opt *find_opt(const struct ops_opt *o, const char *name)
{
	while (o->name != NULL && strcmp(o->name, name) != 0)
		o++;
	return o->name != NULL ? o : NULL;
}

static int set_timeout(const char *cmd, const char *v, struct ops_args *a)
{
	if (util_parse_duration_ms(v, &a->timeout_ms) == 0 && a->timeout_ms > 0)
		return 0;
	fprintf(stderr, "%s: --timeout: expected a duration such as 10s, 90s or 5m, got \"%s\"\n",
	        cmd, v);
	return -1;
}

int ops_parse(int argc, char **argv, struct ops_args *a)
{
	a->nposv = 0;
	if (a->timeout_ms <= 0)
		a->timeout_ms = OPS_TIMEOUT_DEFAULT_MS;
	for (int i = 1; i < argc; i++) {
		const struct ops_opt *o;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(a->usage, stdout);
			return 1;
		}
		if (strncmp(argv[i], "--", 2) != 0) {
			if (a->nposv >= a->npos) {
				fprintf(stderr, "%s: unexpected argument \"%s\" (see %s --help)\n",
				        argv[0], argv[i], argv[0]);
				return -1;
			}
			a->pos[a->nposv++] = argv[i];
			continue;
		}
		o = find_opt(a->opts, argv[i] + 2);
		if (o == NULL && strcmp(argv[i], "--timeout") != 0) {
			fprintf(stderr,
			        "%s: unknown option %s (see %s --help; settings such as "
			        "--redis-url go before the command)\n",
			        argv[0], argv[i], argv[0]);
			return -1;
		}
		if (o != NULL && o->flag != NULL) {
			*o->flag = 1;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[i]);
			return -1;
		}
		i++;
		if (o != NULL)
			*o->value = argv[i];
		else if (set_timeout(argv[0], argv[i], a) != 0)
			return -1;
	}
	return 0;
}

int ops_time_opt(const char *cmd, const char *name, const char *v, int64_t *ms)
{
	if (util_parse_time_ms(v, ms) == 0)
		return 0;
	fprintf(stderr,
	        "%s: %s: expected an ISO-8601 time (2026-11-25T10:00:00Z) or epoch "
	        "milliseconds, got \"%s\"\n",
	        cmd, name, v);
	return -1;
}

int ops_fail(const struct consumer *c, const char *cmd)
{
	if (c->failed)
		fprintf(stderr, "%s: %s\n", cmd, c->why);
	else
		fprintf(stderr, "%s: interrupted\n", cmd);
	return 1;
}

int ops_connect(struct consumer *c, const struct cfg *cfg, volatile sig_atomic_t *stop,
                const char *cmd, long long timeout_ms, bool pg)
{
	if (consumer_init(c, cfg, stop) != 0) {
		fprintf(stderr, "%s: REDIS_URL \"%s\" cannot be parsed\n", cmd, cfg->redis_url);
		return 1;
	}
	c->give_up_ms = timeout_ms;
	if (consumer_redis_up_all(c) == 0 && (!pg || consumer_pg_up(c) == 0))
		return 0;
	ops_fail(c, cmd);
	consumer_close(c);
	return 1;
}

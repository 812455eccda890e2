/* cfg_load() (defaults, environment, flags, validation) and the parsers it relies on:
 * util_parse_time_ms(), util_parse_size(), util_ct_equal() and redisconn_parse_url().
 * Every cfg test starts and ends with none of our variables set, so the developer's own
 * environment cannot change a result. */
#include "cfg.h"
#include "shards.h"
#include "log.h"
#include "redisconn.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define SECRET "s3cret-from-vapi"

/* Every variable of the settings table in common/cfg.c: add new ones here too. */
static const char *const cfg_vars[] = {
    "REDIS_URL",
    "REDIS_TIMEOUT_MS",
    "SWITCHBOARD_STREAM",
    "SWITCHBOARD_GROUP",
    "SWITCHBOARD_DEAD_STREAM",
    "SWITCHBOARD_RETENTION",
    "LOG_LEVEL",
    "INGEST_LISTEN",
    "INGEST_THREADS",
    "INGEST_MAX_BODY",
    "INGEST_REQUEST_TIMEOUT_MS",
    "INGEST_IDLE_TIMEOUT",
    "INGEST_HEADER_TIMEOUT",
    "INGEST_WAIT_AOF",
    "INGEST_COMPRESS_MIN",
    "INGEST_SPOOL_DIR",
    "INGEST_SPOOL_MAX",
    "WEBHOOK_SECRET",
    "WEBHOOK_SECRET_PREVIOUS",
    "WEBHOOK_SECRET_HEADER",
    "WEBHOOK_BEARER_TOKEN",
    "WEBHOOK_BEARER_TOKEN_PREVIOUS",
    "WEBHOOK_BEARER_HEADER",
    "WEBHOOK_HMAC_SECRET",
    "WEBHOOK_HMAC_SECRET_PREVIOUS",
    "WEBHOOK_HMAC_ALGORITHM",
    "WEBHOOK_HMAC_SIGNATURE_HEADER",
    "WEBHOOK_HMAC_TIMESTAMP_HEADER",
    "WEBHOOK_HMAC_TOLERANCE",
    "INGEST_ALLOW_NETWORKS",
    "INGEST_TRUSTED_PROXIES",
    "INGEST_AUTH_DISABLED",
    "DATABASE_URL",
    "WORKER_BATCH",
    "WORKER_BLOCK_MS",
    "WORKER_CONSUMER",
    "WORKER_METRICS_LISTEN",
    "WORKER_CLAIM_IDLE",
    "WORKER_MAX_DELIVERIES",
    "WORKER_REROUTE_INTERVAL",
    "WORKER_TRIM_INTERVAL",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_CLUSTER",
    "SWITCHBOARD_SHARDS",
};

static int clear_env(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEMS(cfg_vars); i++)
		unsetenv(cfg_vars[i]);
	return 0;
}

/* Loads with only argv[0], so that only the environment speaks. */
static int load_env(struct cfg *c, unsigned user, struct cfg_error *err)
{
	char *argv[] = {"switchboard", NULL};
	int argi = -1;

	return cfg_load(c, user, 1, argv, &argi, err);
}

/* Loads and fails the test, with the reason, unless the load succeeds. */
static void must_load(struct cfg *c, unsigned user, int argc, char **argv, int *argi)
{
	struct cfg_error err = {""};

	if (cfg_load(c, user, argc, argv, argi, &err) != 0) {
		print_error("cfg_load failed: %s\n", err.errstr);
		cfg_free(c);
		fail();
	}
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void test_worker_defaults(void **state)
{
	char *argv[] = {"switchboard-worker", NULL};
	char pid[32];
	struct cfg c;
	int argi = -1;

	(void)state;
	must_load(&c, CFG_WORKER, 1, argv, &argi);
	assert_int_equal(argi, 1);
	assert_string_equal(c.redis_url, "redis://127.0.0.1:6379/0");
	assert_int_equal(c.redis_timeout_ms, 2000);
	assert_string_equal(c.stream, "switchboard:webhooks");
	assert_string_equal(c.group, "workers");
	assert_string_equal(c.dead_stream, "switchboard:webhooks:dead");
	assert_int_equal(c.log_level, LOGL_INFO);
	assert_string_equal(c.database_url, "postgresql://127.0.0.1:5432/switchboard");
	assert_int_equal(c.batch, 500);
	assert_int_equal(c.block_ms, 2000);
	assert_string_equal(c.metrics_listen, "");
	/* An empty consumer name becomes hostname-pid, unique per process. */
	snprintf(pid, sizeof(pid), "-%ld", (long)getpid());
	assert_true(strlen(c.consumer) > strlen(pid) && ends_with(c.consumer, pid));
	assert_false(c.check_only);
	assert_false(c.help);
	cfg_free(&c);
}

static void test_ingest_defaults(void **state)
{
	char *argv[] = {"switchboard-ingest", NULL};
	struct cfg c;
	int argi = -1;

	(void)state;
	setenv("WEBHOOK_SECRET", SECRET, 1);
	must_load(&c, CFG_INGEST, 1, argv, &argi);
	assert_string_equal(c.listen, "127.0.0.1:8080");
	assert_int_equal(c.threads, 2);
	assert_int_equal(c.header_timeout_ms, 1000);
	assert_int_equal(c.max_body, 16LL << 20);
	assert_int_equal(c.request_timeout_ms, 10000);
	assert_int_equal(c.idle_timeout_ms, 5000);
	assert_string_equal(c.spool_dir, "/var/lib/switchboard/spool");
	assert_int_equal(c.spool_max, 1LL << 30);
	assert_string_equal(c.hmac_alg, "sha256");
	assert_string_equal(c.secret, SECRET);
	assert_string_equal(c.secret_header, "X-Vapi-Secret");
	assert_false(c.auth_disabled);
	assert_string_equal(c.redis_url, "redis://127.0.0.1:6379/0");
	cfg_free(&c);
}

static void test_worker_env_overrides(void **state)
{
	struct cfg_error err;
	struct cfg c;

	(void)state;
	setenv("REDIS_URL", "redis://:pw@cache:6380/3", 1);
	setenv("REDIS_TIMEOUT_MS", "500", 1);
	setenv("SWITCHBOARD_STREAM", "sb:test", 1);
	setenv("SWITCHBOARD_GROUP", "g1", 1);
	setenv("SWITCHBOARD_DEAD_STREAM", "sb:test:dead", 1);
	setenv("LOG_LEVEL", "debug", 1);
	setenv("DATABASE_URL", "host=db dbname=sb", 1);
	setenv("WORKER_BATCH", "50", 1);
	setenv("WORKER_BLOCK_MS", "100", 1);
	setenv("WORKER_CONSUMER", "worker-a", 1);
	setenv("WORKER_METRICS_LISTEN", "127.0.0.1:9100", 1);
	assert_int_equal(load_env(&c, CFG_WORKER, &err), 0);
	assert_string_equal(c.redis_url, "redis://:pw@cache:6380/3");
	assert_int_equal(c.redis_timeout_ms, 500);
	assert_string_equal(c.stream, "sb:test");
	assert_string_equal(c.group, "g1");
	assert_string_equal(c.dead_stream, "sb:test:dead");
	assert_int_equal(c.log_level, LOGL_DEBUG);
	assert_string_equal(c.database_url, "host=db dbname=sb");
	assert_int_equal(c.batch, 50);
	assert_int_equal(c.block_ms, 100);
	assert_string_equal(c.consumer, "worker-a");
	assert_string_equal(c.metrics_listen, "127.0.0.1:9100");
	cfg_free(&c);
}

static void test_ingest_env_overrides(void **state)
{
	struct cfg_error err;
	struct cfg c;

	(void)state;
	setenv("INGEST_LISTEN", "[::]:8443", 1);
	setenv("INGEST_THREADS", "4", 1);
	setenv("INGEST_MAX_BODY", "1MiB", 1);
	setenv("INGEST_REQUEST_TIMEOUT_MS", "5000", 1);
	setenv("WEBHOOK_SECRET", SECRET, 1);
	setenv("WEBHOOK_SECRET_HEADER", "X-Switchboard-Secret", 1);
	setenv("INGEST_AUTH_DISABLED", "off", 1);
	setenv("LOG_LEVEL", "warn", 1);
	assert_int_equal(load_env(&c, CFG_INGEST, &err), 0);
	assert_string_equal(c.listen, "[::]:8443");
	assert_int_equal(c.threads, 4);
	assert_int_equal(c.max_body, 1 << 20);
	assert_int_equal(c.request_timeout_ms, 5000);
	assert_string_equal(c.secret, SECRET);
	assert_string_equal(c.secret_header, "X-Switchboard-Secret");
	assert_false(c.auth_disabled);
	assert_int_equal(c.log_level, LOGL_WARN);
	cfg_free(&c);
}

/* Both flag forms; the value after '=' may itself hold '=' (libpq key=value strings). */
static void test_flags_both_forms(void **state)
{
	char *argv[] = {"switchboard-worker",
	                "--redis-url=redis://a:1/2",
	                "--redis-timeout-ms",
	                "750",
	                "--database-url=host=db port=5433",
	                "--log-level",
	                "error",
	                NULL};
	struct cfg c;
	int argi = -1;

	(void)state;
	must_load(&c, CFG_WORKER, 7, argv, &argi);
	assert_int_equal(argi, 7);
	assert_string_equal(c.redis_url, "redis://a:1/2");
	assert_int_equal(c.redis_timeout_ms, 750);
	assert_string_equal(c.database_url, "host=db port=5433");
	assert_int_equal(c.log_level, LOGL_ERROR);
	cfg_free(&c);
}

static void test_flag_beats_env(void **state)
{
	char *argv[] = {"switchboard-worker", "--worker-batch=20", "--redis-url",
	                "redis://flag:6379", NULL};
	struct cfg c;
	int argi = -1;

	(void)state;
	setenv("WORKER_BATCH", "10", 1);
	setenv("REDIS_URL", "redis://env:6379", 1);
	must_load(&c, CFG_WORKER, 4, argv, &argi);
	assert_int_equal(c.batch, 20);
	assert_string_equal(c.redis_url, "redis://flag:6379");
	cfg_free(&c);
}

/* A bad value in the environment, the binary that reads it, and a piece of what the
 * error must say after the variable's name. */
struct bad_value {
	unsigned user;
	const char *var;
	const char *value;
	const char *says;
};

static const struct bad_value bad_values[] = {
    {CFG_INGEST, "INGEST_MAX_BODY", "abc", "a size in bytes"},
    {CFG_INGEST, "INGEST_MAX_BODY", "512", "from 1024"},
    {CFG_INGEST, "INGEST_MAX_BODY", "2GiB", "to 1073741824"},
    {CFG_INGEST, "INGEST_THREADS", "0", "from 1 to 1024"},
    {CFG_INGEST, "INGEST_LISTEN", "nope", "host:port"},
    {CFG_INGEST, "INGEST_LISTEN", "0.0.0.0:0", "port from 1 to 65535"},
    {CFG_INGEST, "INGEST_LISTEN", ":8080", "host:port"},
    {CFG_INGEST, "INGEST_AUTH_DISABLED", "maybe", "true or false"},
    {CFG_INGEST, "WEBHOOK_SECRET_HEADER", "", "must not be empty"},
    {CFG_WORKER, "WORKER_BATCH", "0", "whole number from 1 to 10000"},
    {CFG_WORKER, "WORKER_BATCH", "10k", "whole number"},
    {CFG_WORKER, "WORKER_BLOCK_MS", "-5", "from 1 to 60000"},
    {CFG_WORKER, "REDIS_URL", "http://x", "redis://"},
    {CFG_WORKER, "REDIS_URL", "rediss://cache.example.com:6380", "rediss://"},
    {CFG_WORKER, "REDIS_URL", "redis://cache:70000", "port from 1 to 65535"},
    {CFG_WORKER, "REDIS_TIMEOUT_MS", "10", "from 50"},
    {CFG_WORKER, "DATABASE_URL", "host=x port", "\"port\""},
    {CFG_WORKER, "LOG_LEVEL", "loud", "debug, info, warn or error"},
    {CFG_WORKER, "SWITCHBOARD_STREAM", "", "must not be empty"},
    {CFG_WORKER, "SWITCHBOARD_GROUP", "my workers", "white space"},
    {CFG_WORKER, "WORKER_METRICS_LISTEN", "9100", "host:port"},
    {CFG_INGEST, "WEBHOOK_HMAC_ALGORITHM", "md5", "one of sha256|sha512|sha1"},
    {CFG_INGEST, "WEBHOOK_HMAC_TOLERANCE", "5 minutes", "a duration"},
    {CFG_INGEST, "INGEST_IDLE_TIMEOUT", "1h", "a duration"},
    {CFG_INGEST, "INGEST_SPOOL_MAX", "1k", "a size in bytes"},
    {CFG_WORKER, "WORKER_CLAIM_IDLE", "10", "a duration"},
    {CFG_WORKER, "SWITCHBOARD_RETENTION", "forever", "a duration"},
};

/* Loads with the row's variable set. Returns 1 when the load did not fail as it should,
 * printed. */
static int check_bad_value(const struct bad_value *b)
{
	struct cfg_error err = {""};
	size_t n = strlen(b->var);
	struct cfg c;
	int rc;

	clear_env(NULL);
	setenv("WEBHOOK_SECRET", SECRET, 1);
	setenv(b->var, b->value, 1);
	rc = load_env(&c, b->user, &err);
	cfg_free(&c);
	if (rc == -1 && strncmp(err.errstr, b->var, n) == 0 &&
	    strncmp(err.errstr + n, ": invalid value: ", 17) == 0 &&
	    strstr(err.errstr, b->says) != NULL)
		return 0;
	print_error("%s=\"%s\": rc %d, error \"%s\" (wanted \"%s: invalid value: ...%s...\")\n",
	            b->var, b->value, rc, err.errstr, b->var, b->says);
	return 1;
}

static void test_bad_values_name_the_variable(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < NELEMS(bad_values); i++)
		bad += check_bad_value(&bad_values[i]);
	assert_int_equal(bad, 0);
}

static void test_bad_flag_value_names_the_variable(void **state)
{
	char *argv[] = {"switchboard-worker", "--worker-batch=abc", NULL};
	struct cfg_error err;
	struct cfg c;
	int argi = -1;

	(void)state;
	assert_int_equal(cfg_load(&c, CFG_WORKER, 2, argv, &argi, &err), -1);
	cfg_free(&c);
	assert_non_null(strstr(err.errstr, "WORKER_BATCH (flag): invalid value"));
	assert_ptr_equal(strstr(err.errstr, "WORKER_BATCH"), err.errstr);
}

static void test_ingest_requires_secret(void **state)
{
	static const char *const secrets[] = {NULL, ""};
	struct cfg_error err;
	struct cfg c;

	(void)state;
	for (size_t i = 0; i < NELEMS(secrets); i++) {
		if (secrets[i] != NULL)
			setenv("WEBHOOK_SECRET", secrets[i], 1);
		assert_int_equal(load_env(&c, CFG_INGEST, &err), -1);
		cfg_free(&c);
		assert_int_equal(strncmp(err.errstr, "WEBHOOK_SECRET", 14), 0);
		assert_non_null(strstr(err.errstr, "INGEST_AUTH_DISABLED=true"));
	}
	/* The worker never reads the secret. */
	assert_int_equal(load_env(&c, CFG_WORKER, &err), 0);
	cfg_free(&c);
	/* Any one credential of the three (or a previous one alone) is enough. */
	unsetenv("WEBHOOK_SECRET");
	for (size_t i = 0; i < 3; i++) {
		static const char *const one[] = {"WEBHOOK_BEARER_TOKEN", "WEBHOOK_HMAC_SECRET",
		                                  "WEBHOOK_SECRET_PREVIOUS"};

		setenv(one[i], "k3y", 1);
		assert_int_equal(load_env(&c, CFG_INGEST, &err), 0);
		cfg_free(&c);
		unsetenv(one[i]);
	}
}

static void test_auth_disabled_needs_no_secret(void **state)
{
	char *argv[] = {"switchboard-ingest", "--ingest-auth-disabled=yes", NULL};
	struct cfg_error err;
	struct cfg c;
	int argi = -1;

	(void)state;
	setenv("INGEST_AUTH_DISABLED", "true", 1);
	assert_int_equal(load_env(&c, CFG_INGEST, &err), 0);
	assert_true(c.auth_disabled);
	assert_null(c.secret);
	cfg_free(&c);

	unsetenv("INGEST_AUTH_DISABLED");
	must_load(&c, CFG_INGEST, 2, argv, &argi);
	assert_true(c.auth_disabled);
	cfg_free(&c);
}

static void test_sizes_with_units(void **state)
{
	static const struct {
		const char *text;
		long long bytes;
	} sizes[] = {
	    {"16MiB", 16LL << 20}, {"64k", 64 << 10},    {"64K", 64 << 10}, {"2mb", 2 << 20},
	    {"1G", 1LL << 30},     {"1048576", 1 << 20}, {"4096b", 4096},
	};
	struct cfg_error err;
	struct cfg c;

	(void)state;
	setenv("WEBHOOK_SECRET", SECRET, 1);
	for (size_t i = 0; i < NELEMS(sizes); i++) {
		setenv("INGEST_MAX_BODY", sizes[i].text, 1);
		assert_int_equal(load_env(&c, CFG_INGEST, &err), 0);
		assert_int_equal(c.max_body, sizes[i].bytes);
		cfg_free(&c);
	}
}

static void test_check_config_and_help(void **state)
{
	char *check[] = {"switchboard-worker", "--check-config", NULL};
	char *help[] = {"switchboard-worker", "--help", NULL};
	struct cfg c;
	int argi = -1;

	(void)state;
	must_load(&c, CFG_WORKER, 2, check, &argi);
	assert_true(c.check_only);
	assert_false(c.help);
	assert_int_equal(argi, 2);
	cfg_free(&c);

	must_load(&c, CFG_WORKER, 2, help, &argi);
	assert_true(c.help);
	assert_false(c.check_only);
	cfg_free(&c);
}

/* Unknown flags, flags of the other binary and a flag at the end without its value. */
static void test_flag_errors(void **state)
{
	static const struct {
		char *flag;
		const char *error;
	} cases[] = {
	    {"--bogus", "unknown flag --bogus"},
	    {"--bogus=1", "unknown flag --bogus "},
	    {"--ingest-listen=127.0.0.1:80", "unknown flag --ingest-listen "},
	    {"--redis-url", "--redis-url needs a value"},
	};
	struct cfg_error err;
	struct cfg c;
	int argi = -1;

	(void)state;
	for (size_t i = 0; i < NELEMS(cases); i++) {
		char *argv[] = {"switchboard-worker", cases[i].flag, NULL};

		assert_int_equal(cfg_load(&c, CFG_WORKER, 2, argv, &argi, &err), -1);
		cfg_free(&c);
		assert_non_null(strstr(err.errstr, cases[i].error));
	}
}

/* A subcommand ends the flags: what follows is the subcommand's, not ours. */
static void test_argi_stops_at_subcommand(void **state)
{
	char *argv[] = {"switchboard-worker", "--worker-batch=5", "migrate",
	                "--worker-batch=not-a-number", NULL};
	char *bare[] = {"switchboard-worker", "drain", NULL};
	struct cfg c;
	int argi = -1;

	(void)state;
	must_load(&c, CFG_WORKER, 4, argv, &argi);
	assert_int_equal(argi, 2);
	assert_string_equal(argv[argi], "migrate");
	assert_int_equal(c.batch, 5);
	cfg_free(&c);

	must_load(&c, CFG_WORKER, 2, bare, &argi);
	assert_int_equal(argi, 1);
	cfg_free(&c);
}

/* Each binary validates only what it reads: a bad ingest value does not stop a worker. */
static void test_other_binarys_settings_ignored(void **state)
{
	struct cfg_error err;
	struct cfg c;

	(void)state;
	setenv("INGEST_MAX_BODY", "abc", 1);
	assert_int_equal(load_env(&c, CFG_WORKER, &err), 0);
	cfg_free(&c);

	unsetenv("INGEST_MAX_BODY");
	setenv("WORKER_BATCH", "0", 1);
	setenv("WEBHOOK_SECRET", SECRET, 1);
	assert_int_equal(load_env(&c, CFG_INGEST, &err), 0);
	cfg_free(&c);
}

/* --help lists a binary's own settings with flag and default, and not the other's. */
static void test_usage_lists_own_settings(void **state)
{
	char *text = NULL;
	size_t size = 0;
	FILE *fp;

	(void)state;
	fp = open_memstream(&text, &size);
	assert_non_null(fp);
	cfg_usage(CFG_INGEST, fp);
	fclose(fp);
	assert_non_null(strstr(text, "INGEST_MAX_BODY"));
	assert_non_null(strstr(text, "--ingest-max-body"));
	assert_non_null(strstr(text, "[default: 16MiB]"));
	assert_non_null(strstr(text, "REDIS_URL"));
	assert_null(strstr(text, "WORKER_BATCH"));
	free(text);
}

static void test_cfg_free_is_null_safe(void **state)
{
	(void)state;
	cfg_free(NULL);
}

static void test_parse_time_ms(void **state)
{
	static const struct {
		const char *text;
		int64_t ms;
	} ok[] = {
	    {"2024-07-27T21:24:05Z", 1722115445000},
	    {"2024-07-27T21:24:05.712Z", 1722115445712},
	    {"2024-07-27T21:24:05.7Z", 1722115445700},
	    {"2024-07-27T21:24:05.712345Z", 1722115445712}, /* beyond ms is cut */
	    {"2024-07-27T23:24:05.712+02:00", 1722115445712},
	    {"2024-07-27T16:24:05.712-05:00", 1722115445712},
	    {"2024-07-27T23:24:05.712+0200", 1722115445712},
	    {"2024-07-27 21:24:05Z", 1722115445000},
	    {"2024-07-27", 1722038400000},
	    {"1722115445", 1722115445000},    /* ten digits: seconds */
	    {"1722115445712", 1722115445712}, /* thirteen: milliseconds */
	    {"9999999999", 9999999999000},    /* the last second read as seconds */
	    {"10000000000", 10000000000},
	    {"0", 0},
	};
	int64_t ms;

	(void)state;
	for (size_t i = 0; i < NELEMS(ok); i++) {
		ms = -1;
		if (util_parse_time_ms(ok[i].text, &ms) != 0 || ms != ok[i].ms) {
			print_error("%s: got %lld\n", ok[i].text, (long long)ms);
			fail();
		}
	}
}

static void test_parse_time_rejects(void **state)
{
	static const char *const bad[] = {
	    "",
	    "yesterday",
	    "2024-13-01T00:00:00Z",
	    "2024-07-32",
	    "2024-07-27T24:00:00Z",
	    "2024-07-27T21:24Z",
	    "2024-07-27T21:24:05+2",
	    "2024-07-27T21:24:05Zjunk",
	    "1722115445.5",
	    "2024-7-27",
	    "2024-07-27T-1:00:00Z",
	    "2024-02-31",
	    "2023-02-29",
	    "2024-07-27T21:24:05+99:00",
	    "2024-07-27T21:24:05.Z",
	    "+024-07-27",
	};
	int64_t ms;

	(void)state;
	for (size_t i = 0; i < NELEMS(bad); i++) {
		if (util_parse_time_ms(bad[i], &ms) != -1) {
			print_error("\"%s\" accepted as %lld\n", bad[i], (long long)ms);
			fail();
		}
	}
}

static void test_parse_size(void **state)
{
	static const struct {
		const char *text;
		long long bytes;
	} ok[] = {
	    {"16MiB", 16LL << 20}, {"64k", 65536}, {"64KB", 65536},
	    {"3GiB", 3LL << 30},   {"0", 0},       {"10b", 10},
	    {"1048576", 1 << 20},
	};
	static const char *const bad[] = {
	    "",
	    "abc",
	    "-1",
	    "+5",
	    " 5",
	    "16 MiB",
	    "1.5M",
	    "16MiBs",
	    "5T",
	    "99999999999999999999",
	    "4503599627370497k", /* times 1024 passes 2^62 */
	};
	long long v;

	(void)state;
	for (size_t i = 0; i < NELEMS(ok); i++) {
		assert_int_equal(util_parse_size(ok[i].text, &v), 0);
		assert_int_equal(v, ok[i].bytes);
	}
	for (size_t i = 0; i < NELEMS(bad); i++) {
		if (util_parse_size(bad[i], &v) != -1) {
			print_error("\"%s\" accepted as %lld\n", bad[i], v);
			fail();
		}
	}
	assert_int_equal(util_parse_size(NULL, &v), -1);
}

static void test_ct_equal(void **state)
{
	static const struct {
		const char *offered;
		size_t olen;
		const char *secret;
		size_t slen;
		int equal;
	} cases[] = {
	    {"s3cret", 6, "s3cret", 6, 1},
	    {"s3cre", 5, "s3cret", 6, 0},   /* prefix */
	    {"s3cret!", 7, "s3cret", 6, 0}, /* one byte more */
	    {"S3cret", 6, "s3cret", 6, 0},
	    {"", 0, "", 0, 1},
	    {"", 0, "x", 1, 0},
	    {"x", 1, "", 0, 0},
	    {"a\0b", 3, "a\0c", 3, 0}, /* bytes after a NUL count */
	    {"a\0b", 3, "a\0b", 3, 1},
	};

	(void)state;
	for (size_t i = 0; i < NELEMS(cases); i++)
		assert_int_equal(
		    util_ct_equal(cases[i].offered, cases[i].olen, cases[i].secret, cases[i].slen),
		    cases[i].equal);
}

static void test_redis_url_ok(void **state)
{
	static const struct {
		const char *url;
		struct redis_addr want;
	} cases[] = {
	    {"redis://127.0.0.1:6379/0", {.host = "127.0.0.1", .port = 6379}},
	    {"redis://cache.internal", {.host = "cache.internal", .port = 6379}},
	    {"redis://cache:6379/", {.host = "cache", .port = 6379}},
	    {"redis://:s3cret@cache:6380/2",
	     {.host = "cache", .port = 6380, .password = "s3cret", .db = 2}},
	    {"redis://app:s3cret@cache/5",
	     {.host = "cache", .port = 6379, .user = "app", .password = "s3cret", .db = 5}},
	    {"redis://app:p%40ss%2Fw@cache",
	     {.host = "cache", .port = 6379, .user = "app", .password = "p@ss/w"}},
	    {"redis://[::1]:6390", {.host = "::1", .port = 6390}},
	    {"redis://app:p@ss@cache:6390",
	     {.host = "cache", .port = 6390, .user = "app", .password = "p@ss"}},
	    {"redis://[::1]", {.host = "::1", .port = 6379}},
	    {"unix:///var/run/redis/redis.sock?db=2",
	     {.port = 6379, .path = "/var/run/redis/redis.sock", .db = 2}},
	    {"unix:///tmp/redis.sock", {.port = 6379, .path = "/tmp/redis.sock"}},
	};
	struct redis_addr a;
	char err[256];

	(void)state;
	for (size_t i = 0; i < NELEMS(cases); i++) {
		const struct redis_addr *w = &cases[i].want;

		assert_int_equal(redisconn_parse_url(cases[i].url, &a, err, sizeof(err)), 0);
		assert_string_equal(a.host, w->host);
		assert_int_equal(a.port, w->port);
		assert_string_equal(a.path, w->path);
		assert_string_equal(a.user, w->user);
		assert_string_equal(a.password, w->password);
		assert_int_equal(a.db, w->db);
	}
}

static void test_redis_url_bad(void **state)
{
	static const struct {
		const char *url;
		const char *says;
	} cases[] = {
	    {"redis://cache:0", "port from 1 to 65535"},
	    {"redis://cache:65536", "port from 1 to 65535"},
	    {"redis://cache:port", "port from 1 to 65535"},
	    {"redis://cache:", "port from 1 to 65535"},
	    {"redis://", "expected redis://"},
	    {"redis://:pw@", "expected redis://"},
	    {"redis://cache/db1", "database number"},
	    {"redis://cache/1001", "database number"},
	    {"redis://[::1", "expected redis://"},
	    {"redis://[::1]6379", "expected redis://"},
	    {"http://cache:6379", "expected redis://"},
	    {"", "expected redis://"},
	    {"rediss://cache:6380", "rediss:// (TLS) is not supported"},
	    {"unix://tmp/redis.sock", "absolute socket path"},
	    {"unix:///tmp/redis.sock?database=2", "only ?db=N"},
	};
	struct redis_addr a;
	char err[256];

	(void)state;
	for (size_t i = 0; i < NELEMS(cases); i++) {
		err[0] = '\0';
		if (redisconn_parse_url(cases[i].url, &a, err, sizeof(err)) != -1 ||
		    strstr(err, cases[i].says) == NULL) {
			print_error("\"%s\": error \"%s\", wanted \"%s\"\n", cases[i].url, err,
			            cases[i].says);
			fail();
		}
	}
}

#define CFG_TEST(f) cmocka_unit_test_setup_teardown(f, clear_env, clear_env)

/* Loads the worker's settings expecting a refusal whose text holds want. */
static void refused(const char *want)
{
	struct cfg c;
	struct cfg_error err = {""};

	if (load_env(&c, CFG_WORKER, &err) == 0) {
		cfg_free(&c);
		fail_msg("accepted; expected an error with \"%s\"", want);
	}
	if (strstr(err.errstr, want) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", err.errstr, want);
	cfg_free(&c);
}

/* Loads the worker's settings and checks shard i's stream and dead-letter names. */
static void shard_names(int i, const char *stream, const char *dead)
{
	struct cfg c;
	struct cfg_error err = {""};
	char name[SHARDS_NAME];

	assert_int_equal(load_env(&c, CFG_WORKER, &err), 0);
	shards_stream(&c, i, name, sizeof(name));
	assert_string_equal(name, stream);
	shards_dead(&c, i, name, sizeof(name));
	assert_string_equal(name, dead);
	cfg_free(&c);
}

static void test_cluster_and_shards(void **state)
{
	struct cfg c;
	struct cfg_error err = {""};
	struct redis_addr a;
	char name[SHARDS_NAME], why[256];

	(void)state;
	/* One shard and no cluster: today's names, untouched. */
	shard_names(0, "switchboard:webhooks", "switchboard:webhooks:dead");
	setenv("SWITCHBOARD_SHARDS", "8", 1);
	shard_names(7, "switchboard:webhooks:{7}", "switchboard:webhooks:dead:{7}");

	/* A cluster tags even one shard, so that its keys share a slot. */
	setenv("SWITCHBOARD_SHARDS", "1", 1);
	setenv("REDIS_URL", "redis://app:pw@ignored:1/0", 1);
	setenv("REDIS_CLUSTER", "10.0.0.1:7000,[::1]:7001", 1);
	assert_int_equal(load_env(&c, CFG_WORKER, &err), 0);
	shards_stream(&c, 0, name, sizeof(name));
	assert_string_equal(name, "switchboard:webhooks:{0}");
	assert_int_equal(cfg_redis_addr(&c, &a, why, sizeof(why)), 0);
	assert_string_equal(a.cluster, "10.0.0.1:7000,[::1]:7001");
	assert_string_equal(a.user, "app");
	assert_string_equal(a.password, "pw");
	cfg_free(&c);

	setenv("REDIS_CLUSTER", "10.0.0.1", 1);
	refused("REDIS_CLUSTER: expected host:port");
	setenv("REDIS_CLUSTER", "10.0.0.1:7000,", 1);
	refused("REDIS_CLUSTER: expected host:port");
	setenv("REDIS_CLUSTER", "10.0.0.1:7000", 1);
	setenv("REDIS_URL", "redis://127.0.0.1:6379/2", 1);
	refused("database 0 only");
	setenv("REDIS_URL", "redis://127.0.0.1:6379/0", 1);
	setenv("REDIS_SENTINELS", "127.0.0.1:26379", 1);
	setenv("REDIS_SENTINEL_MASTER", "m", 1);
	refused("not both");
	unsetenv("REDIS_SENTINELS");
	setenv("SWITCHBOARD_STREAM", "sb:{x}", 1);
	refused("SWITCHBOARD_STREAM: may not hold {");
	setenv("SWITCHBOARD_STREAM", "sb", 1);
	setenv("SWITCHBOARD_DEAD_STREAM", "sb:dead}", 1);
	refused("SWITCHBOARD_DEAD_STREAM: may not hold {");
	setenv("SWITCHBOARD_SHARDS", "257", 1);
	refused("SWITCHBOARD_SHARDS");
	setenv("SWITCHBOARD_SHARDS", "0", 1);
	refused("SWITCHBOARD_SHARDS");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    CFG_TEST(test_worker_defaults),
	    CFG_TEST(test_ingest_defaults),
	    CFG_TEST(test_worker_env_overrides),
	    CFG_TEST(test_ingest_env_overrides),
	    CFG_TEST(test_flags_both_forms),
	    CFG_TEST(test_flag_beats_env),
	    CFG_TEST(test_bad_values_name_the_variable),
	    CFG_TEST(test_bad_flag_value_names_the_variable),
	    CFG_TEST(test_ingest_requires_secret),
	    CFG_TEST(test_auth_disabled_needs_no_secret),
	    CFG_TEST(test_sizes_with_units),
	    CFG_TEST(test_check_config_and_help),
	    CFG_TEST(test_flag_errors),
	    CFG_TEST(test_argi_stops_at_subcommand),
	    CFG_TEST(test_other_binarys_settings_ignored),
	    CFG_TEST(test_usage_lists_own_settings),
	    cmocka_unit_test(test_cfg_free_is_null_safe),
	    cmocka_unit_test(test_parse_time_ms),
	    cmocka_unit_test(test_parse_time_rejects),
	    cmocka_unit_test(test_parse_size),
	    cmocka_unit_test(test_ct_equal),
	    cmocka_unit_test(test_redis_url_ok),
	    cmocka_unit_test(test_redis_url_bad),
	    cmocka_unit_test_setup_teardown(test_cluster_and_shards, clear_env, clear_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* vapictl's settings table: every environment variable, its default, range and meaning. */
#include "vctl_cfg.h"

#include "util.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Secret files larger than this are refused: a key or secret is a short line. */
#define SECRET_FILE_MAX 65536
/* A variable read by every command, and one that every command requires. */
#define SCOPE_ALL 0u
#define NEED_ALWAYS 0x100u

enum vctl_kind {
	K_SECRET, /* from NAME or the file NAME_FILE; one line without control characters */
	K_URL,    /* http:// or https:// URL */
	K_NAME,   /* non-empty text without white space */
	K_INT,    /* whole number in [min, max] */
	K_TEXT,   /* one line without control characters */
};

struct vctl_def {
	const char *env; /* environment variable */
	enum vctl_kind kind;
	unsigned scope;     /* read only when the command needs this (VCTL_NEED_*), or always */
	unsigned need;      /* required when the command needs this (VCTL_NEED_*, NEED_ALWAYS) */
	const char *def;    /* default text, NULL for none */
	long long min, max; /* range of K_INT */
	size_t off;         /* offset of the field in struct vctl_cfg */
	const char *help;   /* meaning, for --help */
};

#define F(field) offsetof(struct vctl_cfg, field)

static const struct vctl_def defs[] = {
    {"VAPI_API_KEY", K_SECRET, SCOPE_ALL, NEED_ALWAYS, NULL, 0, 0, F(api_key),
     "Vapi private API key"},
    {"WEBHOOK_SECRET", K_SECRET, SCOPE_ALL, VCTL_NEED_SECRET, NULL, 0, 0, F(secret),
     "secret Vapi sends to the webhook (the one ingest checks)"},
    {"WEBHOOK_SECRET_HEADER", K_NAME, SCOPE_ALL, 0, "X-Vapi-Secret", 0, 0, F(secret_header),
     "header that carries the secret"},
    {"VAPI_BASE_URL", K_URL, SCOPE_ALL, 0, "https://api.vapi.ai", 0, 0, F(base_url),
     "Vapi API base URL"},
    {"VAPI_WEBHOOK_URL", K_URL, SCOPE_ALL, 0, NULL, 0, 0, F(webhook_url),
     "the webhook URL every assistant and phone number should use (--url overrides it)"},
    {"VAPI_WEBHOOK_TIMEOUT_SECONDS", K_INT, SCOPE_ALL, 0, "20", 1, 300, F(timeout_seconds),
     "server.timeoutSeconds set on each assistant and phone number"},
    {"DATABASE_URL", K_TEXT, VCTL_NEED_DB, 0, "postgresql://127.0.0.1:5432/switchboard", 0, 0,
     F(database_url), "PostgreSQL with the routing tables (routing import), as the workers"},
};

#define NDEFS (sizeof(defs) / sizeof(defs[0]))

static char **str_slot(struct vctl_cfg *c, const struct vctl_def *d)
{
	return (char **)((char *)c + d->off);
}

/* 0 when s is one line of printable text (a header value or a JSON string we send). */
static int check_line(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return -1;
	return 0;
}

int vctl_cfg_check_url(const char *v, char *why, size_t n)
{
	const char *host;

	if (strncmp(v, "https://", 8) == 0)
		host = v + 8;
	else if (strncmp(v, "http://", 7) == 0)
		host = v + 7;
	else
		host = NULL;
	if (host == NULL || *host == '\0' || *host == '/' || strpbrk(v, " \t") != NULL ||
	    check_line(v) != 0) {
		snprintf(why, n, "expected an http:// or https:// URL");
		return -1;
	}
	return 0;
}

/* Validates v for d. Returns 0, or -1 with the reason in why. */
static int check_value(const struct vctl_def *d, const char *v, long long *num, char *why, size_t n)
{
	switch (d->kind) {
	case K_URL:
		return vctl_cfg_check_url(v, why, n);
	case K_INT:
		if (util_parse_ll(v, num) != 0 || *num < d->min || *num > d->max) {
			snprintf(why, n, "expected a whole number from %lld to %lld", d->min,
			         d->max);
			return -1;
		}
		return 0;
	case K_NAME:
		if (*v == '\0' || strpbrk(v, " \t") != NULL || check_line(v) != 0) {
			snprintf(why, n, "expected non-empty text without white space");
			return -1;
		}
		return 0;
	default:
		if (check_line(v) != 0) {
			snprintf(why, n, "must be one line without control characters");
			return -1;
		}
		return 0;
	}
}

static int store(const struct vctl_def *d, struct vctl_cfg *c, const char *v, const char *from,
                 struct vctl_cfg_error *err)
{
	char why[300];
	long long num = 0;
	char *copy;

	if (check_value(d, v, &num, why, sizeof(why)) != 0) {
		snprintf(err->errstr, sizeof(err->errstr), "%s%s: invalid value: %s", d->env, from,
		         why);
		return -1;
	}
	if (d->kind == K_INT) {
		*(long long *)((char *)c + d->off) = num;
		return 0;
	}
	copy = strdup(v);
	if (copy == NULL) {
		snprintf(err->errstr, sizeof(err->errstr), "%s: out of memory", d->env);
		return -1;
	}
	free(*str_slot(c, d));
	*str_slot(c, d) = copy;
	return 0;
}

/* Reads the secret in path into a new string (free()) with trailing white space removed.
 * Returns NULL with the reason in why. */
static char *read_secret_file(const char *path, char *why, size_t n)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	size_t len;

	if (fp == NULL) {
		int e = errno;

		snprintf(why, n, "cannot open %s: %s", path, strerror(e));
		return NULL;
	}
	buf = malloc(SECRET_FILE_MAX + 1);
	if (buf == NULL) {
		fclose(fp);
		snprintf(why, n, "out of memory");
		return NULL;
	}
	len = fread(buf, 1, SECRET_FILE_MAX + 1, fp);
	fclose(fp);
	if (len > SECRET_FILE_MAX) {
		snprintf(why, n, "%s is larger than %d bytes", path, SECRET_FILE_MAX);
		free(buf);
		return NULL;
	}
	while (len > 0 && strchr(" \t\r\n", buf[len - 1]) != NULL && buf[len - 1] != '\0')
		len--;
	buf[len] = '\0';
	if (len == 0 || strlen(buf) != len) {
		snprintf(why, n, "%s is empty or holds a NUL byte", path);
		free(buf);
		return NULL;
	}
	return buf;
}

/* A secret from NAME or NAME_FILE (not both). Leaves the slot NULL when neither is set. */
static int load_secret(const struct vctl_def *d, struct vctl_cfg *c, struct vctl_cfg_error *err)
{
	char fvar[64], why[400];
	const char *v = getenv(d->env), *path;
	char *secret;
	int rc;

	snprintf(fvar, sizeof(fvar), "%s_FILE", d->env);
	path = getenv(fvar);
	if (v != NULL && *v == '\0')
		v = NULL;
	if (path != NULL && *path == '\0')
		path = NULL;
	if (v != NULL && path != NULL) {
		snprintf(err->errstr, sizeof(err->errstr), "%s and %s are both set: use one",
		         d->env, fvar);
		return -1;
	}
	if (v != NULL)
		return store(d, c, v, "", err);
	if (path == NULL)
		return 0;
	secret = read_secret_file(path, why, sizeof(why));
	if (secret == NULL) {
		snprintf(err->errstr, sizeof(err->errstr), "%s: %s", fvar, why);
		return -1;
	}
	rc = store(d, c, secret, " (from its _FILE)", err);
	free(secret);
	return rc;
}

static int load_one(const struct vctl_def *d, struct vctl_cfg *c, struct vctl_cfg_error *err)
{
	const char *v = getenv(d->env);

	if (d->kind == K_SECRET)
		return load_secret(d, c, err);
	if (d->def != NULL && store(d, c, d->def, " (default)", err) != 0)
		return -1;
	if (v != NULL && *v != '\0')
		return store(d, c, v, "", err);
	return 0;
}

static int check_required(const struct vctl_def *d, const struct vctl_cfg *c, unsigned need,
                          struct vctl_cfg_error *err)
{
	if (d->kind == K_INT || !(d->need & (need | NEED_ALWAYS)))
		return 0;
	if (*str_slot((struct vctl_cfg *)c, d) != NULL)
		return 0;
	if (d->kind == K_SECRET)
		snprintf(err->errstr, sizeof(err->errstr),
		         "%s: required (%s); set it, or %s_FILE to a file holding it", d->env,
		         d->help, d->env);
	else
		snprintf(err->errstr, sizeof(err->errstr), "%s: required (%s)", d->env, d->help);
	return -1;
}

int vctl_cfg_load(struct vctl_cfg *c, unsigned need, struct vctl_cfg_error *err)
{
	size_t len;

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NDEFS; i++) {
		if (defs[i].scope != SCOPE_ALL && !(defs[i].scope & need))
			continue;
		if (load_one(&defs[i], c, err) != 0 || check_required(&defs[i], c, need, err) != 0)
			return -1;
	}
	if (need & VCTL_NEED_REDIS) {
		char *argv[] = {"vapictl", NULL};
		struct cfg_error cerr;
		int argi;

		if (cfg_load(&c->redis, CFG_VAPICTL, 1, argv, &argi, &cerr) != 0) {
			snprintf(err->errstr, sizeof(err->errstr), "%s", cerr.errstr);
			return -1;
		}
	}
	/* Paths are appended to the base URL, which therefore ends without a slash. */
	len = strlen(c->base_url);
	while (len > 0 && c->base_url[len - 1] == '/')
		c->base_url[--len] = '\0';
	return 0;
}

void vctl_cfg_free(struct vctl_cfg *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < NDEFS; i++) {
		if (defs[i].kind != K_INT) {
			free(*str_slot(c, &defs[i]));
			*str_slot(c, &defs[i]) = NULL;
		}
	}
	cfg_free(&c->redis);
}

void vctl_cfg_usage(FILE *fp)
{
	fprintf(fp, "Environment (NAME_FILE: a file holding the value):\n");
	char name[64];

	for (size_t i = 0; i < NDEFS; i++) {
		snprintf(name, sizeof(name), "%s%s", defs[i].env,
		         defs[i].kind == K_SECRET ? "[_FILE]" : "");
		fprintf(fp, "  %-29s %s", name, defs[i].help);
		if (defs[i].def != NULL)
			fprintf(fp, " [default: %s]", defs[i].def);
		fprintf(fp, "\n");
	}
	cfg_env_usage(CFG_VAPICTL, fp);
}

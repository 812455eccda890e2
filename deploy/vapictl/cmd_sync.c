/* assistants|phone-numbers list and sync: walk every item, compare, print or PATCH. */
#include "cmd_sync.h"

#include "progress.h"
#include "vapi_api.h"
#include "vapi_pager.h"

#include <stdio.h>
#include <string.h>

/* What differs per kind of resource. */
struct kind_info {
	const char *noun; /* as on the command line */
	const char *path; /* list endpoint; items are at path/{id} */
	const char *one;  /* one of them, in messages */
};

static const struct kind_info kinds[] = {
    [SYNC_ASSISTANT] = {"assistants", "/assistant", "assistant"},
    [SYNC_PHONE_NUMBER] = {"phone-numbers", "/phone-number", "phone-number"},
};

/* Outcome counts of a sync. */
struct tally {
	unsigned long changed;   /* PATCHed (or, in a dry run, would be) */
	unsigned long unchanged; /* already right */
	unsigned long failed;    /* PATCH refused or failed */
	unsigned long skipped;   /* phone numbers left alone on purpose */
	unsigned long drafts;    /* PATCHed, but the published version still differs */
};

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : dflt;
}

static void pager_start(struct vapi_pager *p, const struct vctl *v, enum sync_kind kind)
{
	int limit = v->opts->page_size > 0 ? (int)v->opts->page_size : VAPI_PAGE_MAX;

	vapi_pager_init(p, v->api, kinds[kind].path, limit, -1, -1);
}

static void pager_warn(const struct vapi_pager *p, const char *noun)
{
	if (p->ties_lost)
		vctl_err("warning: a whole page of %s shares one createdAt millisecond; more "
		         "created in it may be missing: run again with a larger --page-size",
		         noun);
}

/* ---- list ---- */

/* "url,headers" as a new array ["url", "headers"], or NULL when out of memory. */
static json_t *names_array(const char *names)
{
	json_t *a = json_array();

	while (a != NULL && *names != '\0') {
		size_t n = strcspn(names, ",");

		if (json_array_append_new(a, json_stringn(names, n)) != 0) {
			json_decref(a);
			return NULL;
		}
		names += n + (names[n] == ',');
	}
	return a;
}

/* One row as JSON: id, name, createdAt, serverUrl, matches[, inSync, differs][, phone
 * fields]. Returns a new reference or NULL. */
static json_t *list_row(enum sync_kind kind, const json_t *item, const char *want,
                        const struct sync_desired *d)
{
	const char *url = sync_server_url(item);
	json_t *row = json_pack("{s:s?, s:s?, s:s?, s:s?}", "id", str_or(item, "id", NULL), "name",
	                        str_or(item, "name", NULL), "createdAt",
	                        str_or(item, "createdAt", NULL), "serverUrl", url);
	char names[128];
	unsigned diff;
	int rc = 0;

	if (row == NULL)
		return NULL;
	rc |= json_object_set_new(
	    row, "matches",
	    want == NULL ? json_null() : json_boolean(url != NULL && strcmp(url, want) == 0));
	if (kind == SYNC_PHONE_NUMBER) {
		rc |= json_object_set_new(row, "number",
		                          json_pack("s?", str_or(item, "number", NULL)));
		rc |= json_object_set_new(row, "provider",
		                          json_pack("s?", str_or(item, "provider", NULL)));
		rc |= json_object_set_new(row, "assistantId",
		                          json_pack("s?", str_or(item, "assistantId", NULL)));
		rc |= json_object_set_new(row, "unassigned",
		                          json_boolean(sync_phone_unassigned(item)));
	}
	if (d != NULL) {
		diff = sync_diff(d, kind, item);
		rc |= json_object_set_new(row, "inSync", json_boolean(diff == 0));
		rc |= json_object_set_new(row, "differs",
		                          names_array(sync_diff_names(diff, names, sizeof(names))));
	}
	if (rc != 0) {
		json_decref(row);
		return NULL;
	}
	return row;
}

static void print_header(enum sync_kind kind, bool full)
{
	if (kind == SYNC_ASSISTANT)
		printf("%-36s  %-24s", "ID", "NAME");
	else
		printf("%-36s  %-16s  %-10s", "ID", "NUMBER", "PROVIDER");
	printf("  %-5s%s  %s\n", "MATCH", full ? "  SYNC   " : "", "SERVER URL");
}

static void print_row(enum sync_kind kind, const json_t *row)
{
	json_t *m = json_object_get(row, "matches");
	json_t *differs = json_object_get(row, "differs");

	if (kind == SYNC_ASSISTANT)
		printf("%-36s  %-24.24s", str_or(row, "id", "-"), str_or(row, "name", "-"));
	else
		printf("%-36s  %-16.16s  %-10.10s", str_or(row, "id", "-"),
		       str_or(row, "number", "-"), str_or(row, "provider", "-"));
	printf("  %-5s", json_is_null(m) ? "-" : json_is_true(m) ? "yes" : "no");
	if (differs != NULL)
		printf("  %-7s", json_array_size(differs) == 0 ? "ok" : "differs");
	printf("  %s\n", str_or(row, "serverUrl", "(none)"));
}

/* The table header, or the JSON array's "[": printed with the first item, or at the end of a
 * listing that succeeded with none, so that a refused key leaves stdout empty. */
static void list_open(const struct vctl *v, enum sync_kind kind, bool full)
{
	if (v->opts->json)
		printf("[");
	else
		print_header(kind, full);
}

/* Prints every item; counts them and the matching ones. Returns 0, or -1 after printing
 * why the listing stopped. */
static int list_all(struct vctl *v, enum sync_kind kind, const struct sync_desired *d,
                    unsigned long *n, unsigned long *matching)
{
	struct vapi_pager p;
	struct vapi_error err;
	json_t *item;
	int rc;

	pager_start(&p, v, kind);
	while ((rc = vapi_pager_next(&p, &item, &err)) == 1) {
		if (*n == 0)
			list_open(v, kind, d != NULL);
		json_t *row = list_row(kind, item, vctl_url(v), d);

		if (row == NULL) {
			snprintf(err.errstr, sizeof(err.errstr), "out of memory");
			rc = -1;
			break;
		}
		*matching += json_is_true(json_object_get(row, "matches"));
		if (v->opts->json) {
			printf("%s", *n ? ",\n" : "\n");
			json_dumpf(row, stdout, JSON_COMPACT);
		} else {
			print_row(kind, row);
		}
		(*n)++;
		json_decref(row);
	}
	if (rc < 0)
		vctl_err("%s", err.errstr);
	pager_warn(&p, kinds[kind].noun);
	vapi_pager_free(&p);
	return rc < 0 ? -1 : 0;
}

int cmd_list(struct vctl *v, enum sync_kind kind)
{
	struct sync_desired d;
	bool full = vctl_url(v) != NULL && v->cfg->secret != NULL;
	unsigned long n = 0, matching = 0;
	int rc;

	if (full && vctl_desired(v, &d) != VCTL_EXIT_OK) {
		sync_desired_free(&d);
		return VCTL_EXIT_USAGE;
	}
	rc = list_all(v, kind, full ? &d : NULL, &n, &matching);
	if (rc != 0 && n == 0) {
		/* Nothing listed (a refused key, an unreachable API): nothing on stdout. */
		if (full)
			sync_desired_free(&d);
		return VCTL_EXIT_FAILED;
	}
	if (n == 0)
		list_open(v, kind, full);
	if (rc != 0)
		vctl_err("the listing above is incomplete: it stopped after %lu %s", n,
		         kinds[kind].noun);
	if (v->opts->json)
		printf("%s]\n", n ? "\n" : "");
	else if (vctl_url(v) != NULL)
		printf("%lu %s, %lu with the webhook URL %s\n", n, kinds[kind].noun, matching,
		       vctl_url(v));
	else
		printf("%lu %s\n", n, kinds[kind].noun);
	if (full)
		sync_desired_free(&d);
	return rc == 0 ? VCTL_EXIT_OK : VCTL_EXIT_FAILED;
}

/* ---- sync ---- */

/* Reads an assistant back after its PATCH. With Vapi's assistant versioning (2026-08-17) an
 * edit may only change a draft, while GET answers with the current published version, the
 * one inbound calls use. Returns 0 when that is right, 1 with why when it still differs,
 * -1 with why when the GET failed. */
static int read_back(struct vctl *v, const struct sync_desired *d, const char *path, char *why,
                     size_t n)
{
	struct vapi_error err;
	char names[128];
	json_t *now = NULL;
	unsigned diff;

	if (vapi_api_call(v->api, "GET", path, NULL, &now, &err) != 0) {
		snprintf(why, n, "PATCH accepted, but reading it back failed: %s", err.errstr);
		return -1;
	}
	diff = sync_diff(d, SYNC_ASSISTANT, now);
	json_decref(now);
	if (diff == 0)
		return 0;
	snprintf(why, n,
	         "PATCH accepted, but GET %s (the published version inbound calls use) still "
	         "differs in %s: the change is a draft; publish it in Vapi's dashboard",
	         path, sync_diff_names(diff, names, sizeof(names)));
	return 1;
}

/* PATCHes item to d, then checks the answer and, for an assistant, reads it back. Returns 0;
 * 1 when only a draft changed; or -1; why says why. */
static int patch_item(struct vctl *v, const struct sync_desired *d, enum sync_kind kind,
                      const json_t *item, const char *id, char *why, size_t n)
{
	char path[320], esc[256], names[128];
	struct vapi_error err;
	json_t *body, *ans = NULL;
	unsigned after = 0;
	int rc;

	if (vapi_api_escape(id, esc, sizeof(esc)) != 0) {
		snprintf(why, n, "id too long");
		return -1;
	}
	body = sync_patch_body_new(d, kind, item, why, n);
	if (body == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", kinds[kind].path, esc);
	rc = vapi_api_call(v->api, "PATCH", path, body, &ans, &err);
	json_decref(body);
	if (rc != 0) {
		snprintf(why, n, "%s", err.errstr);
		return -1;
	}
	/* Whether PATCH merges or replaces `server` is not documented: check what it did. */
	if (json_object_get(ans, "server") != NULL)
		after = sync_diff(d, kind, ans);
	json_decref(ans);
	if (after != 0) {
		snprintf(why, n, "PATCH accepted, but the answer still differs in %s",
		         sync_diff_names(after, names, sizeof(names)));
		return -1;
	}
	return kind == SYNC_ASSISTANT ? read_back(v, d, path, why, n) : 0;
}

static void sync_item(struct vctl *v, const struct sync_desired *d, enum sync_kind kind,
                      const json_t *item, struct tally *t)
{
	unsigned diff = sync_diff(d, kind, item);
	const char *id = str_or(item, "id", "?"), *url = sync_server_url(item);
	const char *one = kinds[kind].one;
	char names[128], why[1400];
	int rc;

	if (diff == 0) {
		t->unchanged++;
		return;
	}
	sync_diff_names(diff, names, sizeof(names));
	if (kind == SYNC_PHONE_NUMBER && (diff & SYNC_D_URL) && sync_phone_unassigned(item) &&
	    !v->opts->include_unassigned) {
		t->skipped++;
		printf("skipped %s %s: no assistant, squad or workflow, so its server URL (%s) "
		       "answers assistant-request; --include-unassigned changes it anyway\n",
		       one, id, url != NULL ? url : "none");
		return;
	}
	if (v->opts->dry_run) {
		t->changed++;
		printf("would change %s %s: %s (url %s)\n", one, id, names,
		       url != NULL ? url : "none");
	} else if ((rc = patch_item(v, d, kind, item, id, why, sizeof(why))) == 0) {
		t->changed++;
		if (v->opts->verbose)
			printf("changed %s %s: %s\n", one, id, names);
	} else if (rc > 0) {
		t->drafts++;
		printf("unpublished %s %s: %s\n", one, id, why);
	} else {
		t->failed++;
		printf("failed %s %s: %s\n", one, id, why);
	}
}

int cmd_sync(struct vctl *v, enum sync_kind kind)
{
	struct sync_desired d;
	struct vapi_pager p;
	struct vapi_error err;
	struct tally t = {0, 0, 0, 0, 0};
	struct progress pr;
	json_t *item;
	int rc;

	if (vctl_desired(v, &d) != VCTL_EXIT_OK) {
		sync_desired_free(&d);
		return VCTL_EXIT_USAGE;
	}
	pager_start(&p, v, kind);
	progress_start(&pr, stderr, v->opts->dry_run ? "sync (dry run)" : "sync", kinds[kind].noun,
	               -1);
	while ((rc = vapi_pager_next(&p, &item, &err)) == 1) {
		sync_item(v, &d, kind, item, &t);
		progress_add(&pr, 1);
	}
	progress_end(&pr);
	if (rc < 0)
		vctl_err("listing stopped: %s", err.errstr);
	pager_warn(&p, kinds[kind].noun);
	if (rc < 0 && pr.done == 0) {
		/* Nothing was listed (a refused key): no summary that reads like a result. */
		vapi_pager_free(&p);
		sync_desired_free(&d);
		return VCTL_EXIT_FAILED;
	}
	printf("%s sync%s: %lu %s, %lu unchanged, %lu failed, %lu skipped", kinds[kind].noun,
	       v->opts->dry_run ? " (dry run)" : "", t.changed,
	       v->opts->dry_run ? "would change" : "changed", t.unchanged, t.failed, t.skipped);
	if (t.drafts > 0)
		printf(", %lu changed only as an unpublished draft", t.drafts);
	printf("%s\n", rc < 0 ? " (incomplete: the listing stopped)" : "");
	vapi_pager_free(&p);
	sync_desired_free(&d);
	return rc < 0 || t.failed > 0 || t.drafts > 0 ? VCTL_EXIT_FAILED : VCTL_EXIT_OK;
}

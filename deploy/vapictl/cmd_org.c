/* org set-server: the undocumented organization route, with the dashboard as the fallback. */
#include "cmd_org.h"

#include "sync.h"
#include "vapi_api.h"

#include <stdio.h>
#include <string.h>

/* Exit code for a failed API request: the route refused (a 4xx other than a bad key) means
 * "do it in the dashboard"; anything else is a plain failure. */
static int classify(const struct vapi_error *err)
{
	if (err->refused && err->status != 401 && err->status != 429)
		return VCTL_EXIT_MANUAL;
	vctl_err("%s", err->errstr);
	return VCTL_EXIT_FAILED;
}

static void print_steps(const struct vctl *v, const char *org_id, const char *why)
{
	printf("The Vapi API did not set the organization's server URL: %s\n", why);
	printf("Set it in the Vapi dashboard instead:\n");
	printf("  1. Sign in at https://dashboard.vapi.ai to the organization %s.\n",
	       org_id != NULL ? org_id : "that owns VAPI_API_KEY");
	printf("  2. Open the organization settings and find its Server URL.\n");
	printf("  3. Set the Server URL to %s\n", vctl_url(v));
	printf("  4. Where it offers a secret or headers, send the header %s with the value of "
	       "WEBHOOK_SECRET (without it ingest answers 401).\n",
	       v->cfg->secret_header);
	printf("  5. Set the timeout to %lld seconds, and save.\n", v->opts->timeout_seconds);
	printf("Assistants, phone numbers and tools with a server URL of their own take precedence "
	       "over this one: `vapictl assistants sync` and `vapictl phone-numbers sync` set "
	       "theirs.\n");
}

/* The id of the one organization GET /org lists, copied into id. Returns a VCTL_EXIT_*
 * code; for VCTL_EXIT_MANUAL the reason is in why. */
static int find_org(struct vctl *v, char *id, size_t size, char *why, size_t n)
{
	struct vapi_error err;
	json_t *ans, *org;
	int rc;

	if (vapi_api_call(v->api, "GET", "/org", NULL, &ans, &err) != 0) {
		snprintf(why, n, "%s", err.errstr);
		return classify(&err);
	}
	org = json_is_array(ans) && json_array_size(ans) == 1 ? json_array_get(ans, 0) : ans;
	rc = VCTL_EXIT_OK;
	if (json_is_array(org)) {
		vctl_err("GET /org lists %zu organizations: choose one with --org-id ID",
		         json_array_size(org));
		rc = VCTL_EXIT_USAGE;
	} else if (!json_is_string(json_object_get(org, "id"))) {
		vctl_err("GET /org: no organization id in the answer; give --org-id ID");
		rc = VCTL_EXIT_FAILED;
	} else {
		snprintf(id, size, "%s", json_string_value(json_object_get(org, "id")));
	}
	json_decref(ans);
	return rc;
}

static bool has_url(const json_t *org, const char *url)
{
	const char *have =
	    json_string_value(json_object_get(json_object_get(org, "server"), "url"));

	return have != NULL && strcmp(have, url) == 0;
}

/* PATCHes the organization and confirms with its answer or a GET. Returns a VCTL_EXIT_*
 * code; for VCTL_EXIT_MANUAL the reason is in why. */
static int patch_org(struct vctl *v, const struct sync_desired *d, const char *path, char *why,
                     size_t n)
{
	struct vapi_error err;
	json_t *body = json_pack("{s:o}", "server", sync_server_new(d)), *ans = NULL;
	bool ok;

	if (body == NULL) {
		vctl_err("out of memory");
		return VCTL_EXIT_FAILED;
	}
	if (vapi_api_call(v->api, "PATCH", path, body, &ans, &err) != 0) {
		json_decref(body);
		snprintf(why, n, "%s", err.errstr);
		return classify(&err);
	}
	json_decref(body);
	ok = has_url(ans, d->url);
	json_decref(ans);
	if (!ok && vapi_api_call(v->api, "GET", path, NULL, &ans, &err) == 0) {
		ok = has_url(ans, d->url);
		json_decref(ans);
	}
	if (ok)
		return VCTL_EXIT_OK;
	snprintf(why, n, "PATCH %s was accepted, but the organization does not show the URL", path);
	return VCTL_EXIT_MANUAL;
}

int cmd_org(struct vctl *v)
{
	struct sync_desired d;
	char id[256] = "", esc[768], path[800], why[1100] = "";
	int rc = vctl_desired(v, &d);

	if (rc != VCTL_EXIT_OK)
		goto out;
	if (v->opts->org_id != NULL)
		snprintf(id, sizeof(id), "%s", v->opts->org_id);
	else if ((rc = find_org(v, id, sizeof(id), why, sizeof(why))) != VCTL_EXIT_OK)
		goto out;
	if (vapi_api_escape(id, esc, sizeof(esc)) != 0) {
		vctl_err("--org-id: too long");
		rc = VCTL_EXIT_USAGE;
		goto out;
	}
	snprintf(path, sizeof(path), "/org/%s", esc);
	rc = patch_org(v, &d, path, why, sizeof(why));
	if (rc == VCTL_EXIT_OK)
		printf("organization %s: server URL set to %s\n", id, d.url);
out:
	if (rc == VCTL_EXIT_MANUAL)
		print_steps(v, id[0] != '\0' ? id : NULL, why);
	sync_desired_free(&d);
	return rc;
}

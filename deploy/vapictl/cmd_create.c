/* assistants create: a file's assistant, created with our server configuration. */
#include "cmd_create.h"

#include "sync.h"
#include "vapi_api.h"

#include <stdio.h>
#include <string.h>

/* Loads the assistant in path. Returns a new object, or NULL after printing why. */
static json_t *load_assistant(const char *path)
{
	static const char *const retired[] = {"serverUrl", "serverUrlSecret"};
	json_error_t jerr;
	json_t *a = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);

	if (a == NULL) {
		vctl_err("%s: line %d column %d: %s", path, jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(a)) {
		vctl_err("%s: expected a JSON object (one assistant)", path);
		json_decref(a);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(retired) / sizeof(retired[0]); i++) {
		if (json_object_get(a, retired[i]) != NULL) {
			vctl_err(
			    "%s: %s is no longer accepted by Vapi: remove it (the webhook goes "
			    "in server.url, which vapictl sets)",
			    path, retired[i]);
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* Puts d's server and serverMessages into a. Returns 0, or -1 after printing why. */
static int inject(json_t *a, const struct sync_desired *d, const char *path)
{
	json_t *had = json_object_get(a, "serverMessages");

	if (had != NULL && !json_equal(had, d->messages))
		vctl_err("note: %s: serverMessages replaced by the notifications this endpoint "
		         "files",
		         path);
	if (json_object_set_new(a, "server", sync_server_new(d)) != 0 ||
	    json_object_set_new(a, "serverMessages", json_deep_copy(d->messages)) != 0) {
		vctl_err("out of memory");
		return -1;
	}
	return 0;
}

/* Decides what to send. Returns VCTL_EXIT_OK with a ready, or another code after printing
 * why. */
static int prepare(const struct vctl *v, json_t *a, const struct sync_desired *d)
{
	const char *path = v->opts->file;
	const char *url = json_string_value(json_object_get(json_object_get(a, "server"), "url"));

	if (v->opts->keep_server && json_object_get(a, "server") != NULL)
		return VCTL_EXIT_OK;
	if (url != NULL && strcmp(url, d->url) != 0) {
		vctl_err("%s: server.url is %s, not the webhook URL %s: refusing to create an "
		         "assistant that reports elsewhere (--keep-server creates it as written)",
		         path, url, d->url);
		return VCTL_EXIT_USAGE;
	}
	return inject(a, d, path) == 0 ? VCTL_EXIT_OK : VCTL_EXIT_FAILED;
}

static void report(const struct vctl *v, json_t *created)
{
	const char *url;

	if (v->opts->json) {
		json_dumpf(created, stdout, JSON_COMPACT);
		printf("\n");
		return;
	}
	url = json_string_value(json_object_get(json_object_get(created, "server"), "url"));
	printf("created assistant %s with server URL %s\n",
	       json_string_value(json_object_get(created, "id")), url != NULL ? url : "(none)");
}

int cmd_create(struct vctl *v)
{
	struct sync_desired d;
	struct vapi_error err;
	json_t *a = NULL, *created = NULL;
	int rc = vctl_desired(v, &d);

	if (rc != VCTL_EXIT_OK)
		goto out;
	rc = VCTL_EXIT_USAGE;
	a = load_assistant(v->opts->file);
	if (a == NULL || (rc = prepare(v, a, &d)) != VCTL_EXIT_OK)
		goto out;
	if (vapi_api_call(v->api, "POST", "/assistant", a, &created, &err) != 0) {
		vctl_err("%s", err.errstr);
		rc = VCTL_EXIT_FAILED;
		goto out;
	}
	if (!json_is_string(json_object_get(created, "id"))) {
		vctl_err("POST /assistant: the answer has no id");
		rc = VCTL_EXIT_FAILED;
		goto out;
	}
	report(v, created);
out:
	json_decref(created);
	json_decref(a);
	sync_desired_free(&d);
	return rc;
}

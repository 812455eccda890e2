/* routing import's plan. */
#include "routing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends one planned row to plan. Returns 0, or -1 when out of memory. */
static int add_row(json_t *plan, const char *kind, const char *id, const char *org,
                   const char *label, const char *action, const char *why)
{
	return json_array_append_new(plan, json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s}", "kind",
	                                             kind, "id", id, "org", org, "label", label,
	                                             "action", action, "why", why));
}

/* Decides for a row Vapi ties to org (not NULL) against the table's map. */
static int decide(json_t *plan, const struct routing_input *in, const json_t *table,
                  const char *kind, const char *id, const char *org, const char *label,
                  const char *source)
{
	const char *have = json_string_value(json_object_get(table, id));
	char why[512];

	if (have != NULL && strcmp(have, org) == 0)
		return add_row(plan, kind, id, org, label, ROUTING_PRESENT, "");
	if (have != NULL) {
		snprintf(why, sizeof(why), "%s says %s, the table says %s; left as it is", source,
		         org, have);
		return add_row(plan, kind, id, org, label, ROUTING_CONFLICT, why);
	}
	if (json_object_get(in->orgs, org) == NULL) {
		snprintf(why, sizeof(why),
		         "organization %s (from %s) is not in organizations; not "
		         "added",
		         org, source);
		return add_row(plan, kind, id, org, label, ROUTING_CONFLICT, why);
	}
	return add_row(plan, kind, id, org, label, ROUTING_ADD, "");
}

static int plan_assistant(json_t *plan, const struct routing_input *in, const char *id,
                          const json_t *a)
{
	const char *org = json_string_value(json_object_get(a, "org"));
	const char *name = json_string_value(json_object_get(a, "name"));

	if (org == NULL || *org == '\0')
		return add_row(plan, "assistant", id, NULL, name, ROUTING_NO_ORG,
		               "no metadata.organizationId");
	return decide(plan, in, in->db_assistants, "assistant", id, org, name,
	              "metadata.organizationId");
}

static int plan_phone(json_t *plan, const struct routing_input *in, const char *id, const json_t *p)
{
	const char *aid = json_string_value(json_object_get(p, "assistantId"));
	const char *number = json_string_value(json_object_get(p, "number"));
	const char *org = NULL;
	char why[512], source[320];

	if (aid == NULL)
		return add_row(plan, "phone-number", id, NULL, number, ROUTING_NO_ORG,
		               "no assistantId (a squad, a workflow or none)");
	org = json_string_value(json_object_get(json_object_get(in->vapi_assistants, aid), "org"));
	if (org != NULL && *org != '\0') {
		snprintf(source, sizeof(source), "assistant %s's metadata.organizationId", aid);
	} else {
		org = json_string_value(json_object_get(in->db_assistants, aid));
		snprintf(source, sizeof(source), "the assistants row of %s", aid);
	}
	if (org == NULL || *org == '\0') {
		snprintf(why, sizeof(why), "its assistant %s has no organization", aid);
		return add_row(plan, "phone-number", id, NULL, number, ROUTING_NO_ORG, why);
	}
	return decide(plan, in, in->db_phones, "phone-number", id, org, number, source);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of o, sorted: a new array of borrowed strings (free()), or NULL. */
static const char **sorted_keys(const json_t *o, size_t *n)
{
	const char **keys = calloc(json_object_size(o) + 1, sizeof(*keys));
	const char *k;
	json_t *v;

	*n = 0;
	if (keys == NULL)
		return NULL;
	json_object_foreach((json_t *)o, k, v)
	{
		keys[(*n)++] = k;
	}
	qsort(keys, *n, sizeof(*keys), cmp_str);
	return keys;
}

json_t *routing_plan_new(const struct routing_input *in)
{
	json_t *plan = json_array();
	size_t na, np;
	const char **a = sorted_keys(in->vapi_assistants, &na);
	const char **p = sorted_keys(in->vapi_phones, &np);
	int rc = plan == NULL || a == NULL || p == NULL;

	for (size_t i = 0; rc == 0 && i < na; i++)
		rc = plan_assistant(plan, in, a[i], json_object_get(in->vapi_assistants, a[i]));
	for (size_t i = 0; rc == 0 && i < np; i++)
		rc = plan_phone(plan, in, p[i], json_object_get(in->vapi_phones, p[i]));
	free(a);
	free(p);
	if (rc != 0) {
		json_decref(plan);
		return NULL;
	}
	return plan;
}

/* routing import: Vapi's assistants and phone numbers in, rows of the routing tables out. */
#include "cmd_routing.h"

#include "progress.h"
#include "routing.h"
#include "vapi_api.h"
#include "vapi_pager.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

/* Everything routing_plan_new() compares (owned). */
struct routing_maps {
	json_t *vapi_assistants, *vapi_phones, *orgs, *db_assistants, *db_phones;
};

static void maps_free(struct routing_maps *m)
{
	json_decref(m->vapi_assistants);
	json_decref(m->vapi_phones);
	json_decref(m->orgs);
	json_decref(m->db_assistants);
	json_decref(m->db_phones);
}

/* Fills *out with {column 0: column 1 (or true)} of sql's rows. Returns 0, or -1 printed. */
static int load_map(PGconn *pg, const char *sql, json_t **out)
{
	PGresult *r = PQexec(pg, sql);

	*out = json_object();
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		vctl_err("DATABASE_URL: %s: %s", sql, PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++)
		json_object_set_new(*out, PQgetvalue(r, i, 0),
		                    PQnfields(r) > 1 ? json_string(PQgetvalue(r, i, 1))
		                                     : json_true());
	PQclear(r);
	return 0;
}

static int load_db(PGconn *pg, struct routing_maps *m)
{
	return load_map(pg, "SELECT id FROM organizations", &m->orgs) != 0 ||
	               load_map(pg, "SELECT provider_assistant_id, organization_id FROM assistants",
	                        &m->db_assistants) != 0 ||
	               load_map(pg, "SELECT provider_phone_id, organization_id FROM phone_numbers",
	                        &m->db_phones) != 0
	           ? -1
	           : 0;
}

/* What a plan row needs from one listed item. */
static json_t *assistant_entry(const json_t *a)
{
	const json_t *org = json_object_get(json_object_get(a, "metadata"), "organizationId");

	return json_pack("{s:s?, s:s?}", "org", json_string_value(org), "name",
	                 json_string_value(json_object_get(a, "name")));
}

static json_t *phone_entry(const json_t *p)
{
	return json_pack("{s:s?, s:s?}", "assistantId",
	                 json_string_value(json_object_get(p, "assistantId")), "number",
	                 json_string_value(json_object_get(p, "number")));
}

/* Lists every item at path into *out as {id: entry(item)}. Returns 0, or -1 printed. */
static int list_vapi(struct vctl *v, const char *path, const char *noun,
                     json_t *(*entry)(const json_t *), json_t **out)
{
	struct vapi_pager p;
	struct vapi_error err;
	struct progress pr;
	json_t *item;
	int rc;

	*out = json_object();
	vapi_pager_init(&p, v->api, path,
	                v->opts->page_size > 0 ? (int)v->opts->page_size : VAPI_PAGE_MAX, -1, -1);
	progress_start(&pr, stderr, "routing import: listing", noun, -1);
	while ((rc = vapi_pager_next(&p, &item, &err)) == 1) {
		const char *id = json_string_value(json_object_get(item, "id"));

		if (id != NULL)
			json_object_set_new(*out, id, entry(item));
		progress_add(&pr, 1);
	}
	progress_end(&pr);
	if (rc < 0)
		vctl_err("listing %s stopped: %s", noun, err.errstr);
	vapi_pager_free(&p);
	return rc < 0 ? -1 : 0;
}

/* Outcome counts per kind. */
struct counts {
	unsigned long add, present, conflict, no_org;
};

static int exec_ok(PGconn *pg, const char *sql)
{
	PGresult *r = PQexec(pg, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	if (!ok)
		vctl_err("DATABASE_URL: %s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	return ok ? 0 : -1;
}

/* Inserts one planned row. Returns 1 inserted, 0 when a row appeared meanwhile, -1 failed. */
static int insert_row(PGconn *pg, const json_t *row)
{
	static const char *const sql[] = {
	    "INSERT INTO assistants (provider_assistant_id, organization_id, name)"
	    " VALUES ($1, $2, $3) ON CONFLICT (provider_assistant_id) DO NOTHING",
	    "INSERT INTO phone_numbers (provider_phone_id, organization_id, number)"
	    " VALUES ($1, $2, $3) ON CONFLICT (provider_phone_id) DO NOTHING",
	};
	const char *vals[3] = {json_string_value(json_object_get(row, "id")),
	                       json_string_value(json_object_get(row, "org")),
	                       json_string_value(json_object_get(row, "label"))};
	int phone = strcmp(json_string_value(json_object_get(row, "kind")), "phone-number") == 0;
	PGresult *r = PQexecParams(pg, sql[phone], 3, NULL, vals, NULL, NULL, 0);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? strcmp(PQcmdTuples(r), "1") == 0 : -1;

	if (rc < 0)
		vctl_err("DATABASE_URL: inserting %s %s: %s", phone ? "phone number" : "assistant",
		         vals[0], PQresultErrorMessage(r));
	PQclear(r);
	return rc;
}

/* Prints a row worth a line and counts it; with apply, inserts the ones to add. Returns 0, or
 * -1 when an insert failed. */
static int handle_row(struct vctl *v, PGconn *pg, const json_t *row, struct counts *c)
{
	const char *action = json_string_value(json_object_get(row, "action"));
	const char *kind = json_string_value(json_object_get(row, "kind"));
	const char *id = json_string_value(json_object_get(row, "id"));
	const char *org = json_string_value(json_object_get(row, "org"));
	const char *why = json_string_value(json_object_get(row, "why"));
	int rc;

	if (strcmp(action, ROUTING_PRESENT) == 0) {
		c->present++;
	} else if (strcmp(action, ROUTING_NO_ORG) == 0) {
		c->no_org++;
		if (v->opts->verbose)
			printf("skipped %s %s: %s\n", kind, id, why);
	} else if (strcmp(action, ROUTING_CONFLICT) == 0) {
		c->conflict++;
		printf("conflict %s %s: %s\n", kind, id, why);
	} else if (v->opts->dry_run) {
		c->add++;
		printf("would add %s %s -> %s\n", kind, id, org);
	} else if ((rc = insert_row(pg, row)) < 0) {
		return -1;
	} else if (rc == 0) {
		c->conflict++;
		printf("conflict %s %s: a row appeared meanwhile; left as it is\n", kind, id);
	} else {
		c->add++;
		if (v->opts->verbose)
			printf("added %s %s -> %s\n", kind, id, org);
	}
	return 0;
}

static void print_counts(const char *noun, const struct counts *c, bool dry)
{
	printf("  %-14s %lu %s, %lu already there, %lu conflicts, %lu without an organization\n",
	       noun, c->add, dry ? "to add" : "added", c->present, c->conflict, c->no_org);
}

/* Carries the plan out (or, in a dry run, prints it) in one transaction. */
static int run_plan(struct vctl *v, PGconn *pg, const json_t *plan)
{
	struct counts c[2] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
	bool dry = v->opts->dry_run;
	size_t i;
	json_t *row;

	if (!dry && exec_ok(pg, "BEGIN") != 0)
		return VCTL_EXIT_FAILED;
	json_array_foreach(plan, i, row)
	{
		int phone =
		    strcmp(json_string_value(json_object_get(row, "kind")), "assistant") != 0;

		if (handle_row(v, pg, row, &c[phone]) != 0) {
			(void)exec_ok(pg, "ROLLBACK");
			vctl_err("nothing was added (rolled back)");
			return VCTL_EXIT_FAILED;
		}
	}
	if (!dry && exec_ok(pg, "COMMIT") != 0)
		return VCTL_EXIT_FAILED;
	printf("routing import%s:\n", dry ? " (dry run, nothing changed)" : "");
	print_counts("assistants", &c[0], dry);
	print_counts("phone numbers", &c[1], dry);
	return c[0].conflict + c[1].conflict > 0 ? VCTL_EXIT_FAILED : VCTL_EXIT_OK;
}

int cmd_routing_import(struct vctl *v)
{
	struct routing_maps m = {0};
	struct routing_input in;
	json_t *plan = NULL;
	PGconn *pg;
	int rc = VCTL_EXIT_FAILED;

	if (v->opts->dry_run == v->opts->apply) {
		vctl_err(
		    "routing import: say --dry-run (print the plan) or --apply (carry it out)");
		return VCTL_EXIT_USAGE;
	}
	pg = PQconnectdb(v->cfg->database_url);
	if (PQstatus(pg) != CONNECTION_OK) {
		vctl_err("DATABASE_URL: %s", PQerrorMessage(pg));
		PQfinish(pg);
		return VCTL_EXIT_FAILED;
	}
	if (load_db(pg, &m) != 0 ||
	    list_vapi(v, "/assistant", "assistants", assistant_entry, &m.vapi_assistants) != 0 ||
	    list_vapi(v, "/phone-number", "phone numbers", phone_entry, &m.vapi_phones) != 0)
		goto fail;
	in = (struct routing_input){m.vapi_assistants, m.vapi_phones, m.orgs, m.db_assistants,
	                            m.db_phones};
	plan = routing_plan_new(&in);
	if (plan == NULL) {
		vctl_err("out of memory");
		goto fail;
	}
	rc = run_plan(v, pg, plan);
fail:
	json_decref(plan);
	maps_free(&m);
	PQfinish(pg);
	return rc;
}

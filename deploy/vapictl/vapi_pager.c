/* Paging through Vapi's list endpoints by createdAt. */
#include "vapi_pager.h"

#include "util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void vapi_pager_init(struct vapi_pager *p, struct vapi_api *api, const char *path, int limit,
                     int64_t gt_ms, int64_t lt_ms)
{
	memset(p, 0, sizeof(*p));
	p->api = api;
	snprintf(p->path, sizeof(p->path), "%s", path);
	p->limit = limit < 1 ? 1 : limit > VAPI_PAGE_MAX ? VAPI_PAGE_MAX : limit;
	p->gt_ms = gt_ms;
	p->lt_ms = lt_ms;
	p->edge_ms = -1;
}

void vapi_pager_free(struct vapi_pager *p)
{
	if (p == NULL)
		return;
	json_decref(p->page);
	json_decref(p->edge_ids);
	p->page = NULL;
	p->edge_ids = NULL;
}

void vapi_pager_iso(int64_t ms, char *buf, size_t size)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* Appends "&name=<ISO time>" to q when ms is a bound. */
static void add_bound(char *q, size_t size, const char *name, int64_t ms)
{
	char iso[40], esc[120];
	size_t n = strlen(q);

	if (ms < 0)
		return;
	vapi_pager_iso(ms, iso, sizeof(iso));
	if (vapi_api_escape(iso, esc, sizeof(esc)) == 0)
		snprintf(q + n, size - n, "&%s=%s", name, esc);
}

/* The id and createdAt (ms) of a listed item. Returns 0, or -1 when either is missing. */
static int item_key(json_t *item, const char **id, int64_t *ms)
{
	const char *created = json_string_value(json_object_get(item, "createdAt"));

	*id = json_string_value(json_object_get(item, "id"));
	if (*id == NULL || created == NULL || util_parse_time_ms(created, ms) != 0)
		return -1;
	return 0;
}

/* Moves the edge to the oldest item of page: the ids created in that millisecond are those
 * the next request returns again. */
static int advance_edge(struct vapi_pager *p, json_t *page)
{
	int64_t oldest = -1, ms;
	const char *id;
	json_t *item;
	size_t i;

	json_array_foreach(page, i, item)
	{
		if (item_key(item, &id, &ms) == 0 && (oldest < 0 || ms < oldest))
			oldest = ms;
	}
	if (oldest != p->edge_ms) {
		json_decref(p->edge_ids);
		p->edge_ids = json_object();
		p->edge_ms = oldest;
	}
	json_array_foreach(page, i, item)
	{
		if (item_key(item, &id, &ms) == 0 && ms == oldest &&
		    json_object_set_new(p->edge_ids, id, json_true()) != 0)
			return -1;
	}
	return 0;
}

/* Keeps the items of page not returned before in p->page. */
static int take_new(struct vapi_pager *p, json_t *page, struct vapi_error *err)
{
	const char *id;
	int64_t ms;
	json_t *item;
	size_t i;

	json_decref(p->page);
	p->page = json_array();
	p->next = 0;
	json_array_foreach(page, i, item)
	{
		if (item_key(item, &id, &ms) != 0) {
			snprintf(err->errstr, sizeof(err->errstr),
			         "GET %s: item %zu has no id or no readable createdAt", p->path, i);
			return -1;
		}
		if (ms == p->edge_ms && json_object_get(p->edge_ids, id) != NULL)
			continue;
		if (json_array_append(p->page, item) != 0) {
			snprintf(err->errstr, sizeof(err->errstr), "GET %s: out of memory",
			         p->path);
			return -1;
		}
	}
	return 0;
}

/* Decides the bound of the next request after a full page. */
static void next_bound(struct vapi_pager *p)
{
	if (json_array_size(p->page) > 0) {
		p->lt_ms = p->edge_ms + 1;
		return;
	}
	/* A full page of items all seen before: `limit` items or more share the edge's
	 * millisecond. Step below it; any others created in it cannot be listed. */
	p->ties_lost = true;
	p->lt_ms = p->edge_ms;
	json_decref(p->edge_ids);
	p->edge_ids = NULL;
	p->edge_ms = -1;
}

static int fetch(struct vapi_pager *p, struct vapi_error *err)
{
	char q[512];
	json_t *page;
	int rc = -1;

	snprintf(q, sizeof(q), "%s?limit=%d", p->path, p->limit);
	add_bound(q, sizeof(q), "createdAtGt", p->gt_ms);
	add_bound(q, sizeof(q), "createdAtLt", p->lt_ms);
	if (vapi_api_call(p->api, "GET", q, NULL, &page, err) != 0)
		return -1;
	p->pages++;
	if (!json_is_array(page)) {
		snprintf(err->errstr, sizeof(err->errstr), "GET %s: expected a JSON array", q);
		goto out;
	}
	if (take_new(p, page, err) != 0)
		goto out;
	p->last = json_array_size(page) < (size_t)p->limit;
	if (advance_edge(p, page) != 0) {
		snprintf(err->errstr, sizeof(err->errstr), "GET %s: out of memory", p->path);
		goto out;
	}
	if (!p->last)
		next_bound(p);
	rc = 0;
out:
	json_decref(page);
	return rc;
}

int vapi_pager_next(struct vapi_pager *p, json_t **item, struct vapi_error *err)
{
	memset(err, 0, sizeof(*err));
	for (;;) {
		if (p->page != NULL && p->next < json_array_size(p->page)) {
			*item = json_array_get(p->page, p->next++);
			return 1;
		}
		if (p->last)
			return 0;
		if (fetch(p, err) != 0)
			return -1;
	}
}

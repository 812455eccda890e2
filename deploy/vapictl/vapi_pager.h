#ifndef VAPI_PAGER_H
#define VAPI_PAGER_H

#include "vapi_api.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Walks a Vapi list endpoint (GET /assistant, /phone-number, /call): a JSON array, newest
 * first, at most `limit` items, without a cursor. The next page is asked for with
 * createdAtLt, until a page comes back with fewer than `limit` items.
 *
 * Items created in the same millisecond as the oldest one of a page may be split across the
 * page boundary (and the API may store finer times than the milliseconds it shows), so the
 * next page is asked for below the oldest createdAt plus one millisecond, and the items
 * already seen at that millisecond are skipped. Every item is returned once. */

#define VAPI_PAGE_MAX 1000 /* the largest `limit` the API accepts */

struct vapi_pager {
	struct vapi_api *api; /* borrowed */
	char path[64];        /* "/assistant" */
	int limit;            /* items per page */
	int64_t gt_ms;        /* createdAtGt, or -1 for none */
	int64_t lt_ms;        /* createdAtLt of the next request, or -1 for none */
	json_t *page;         /* items of the current page not returned before, owned */
	size_t next;          /* index of the next item in page */
	bool last;            /* no page after the current one */
	int64_t edge_ms;      /* createdAt of the oldest item seen so far */
	json_t *edge_ids;     /* object: ids of the items seen at edge_ms, owned */
	unsigned long pages;  /* pages fetched */
	bool ties_lost;       /* a page was all one millisecond: items there may be missed */
};

/* Prepares p to walk path with `limit` items per page, created after gt_ms and before
 * lt_ms (-1 for no bound). Keeps api (borrowed). Release with vapi_pager_free(). */
void vapi_pager_init(struct vapi_pager *p, struct vapi_api *api, const char *path, int limit,
                     int64_t gt_ms, int64_t lt_ms);

/* Gives the next item in *item (borrowed from p: valid until the next call). Returns 1, 0
 * at the end, or -1 with err filled (an API failure or an item without id or createdAt). */
int vapi_pager_next(struct vapi_pager *p, json_t **item, struct vapi_error *err)
    __attribute__((warn_unused_result));

/* Releases what p holds (NULL-safe). */
void vapi_pager_free(struct vapi_pager *p);

/* Writes ms as ISO-8601 UTC with milliseconds ("2024-07-27T21:24:05.712Z") into buf. */
void vapi_pager_iso(int64_t ms, char *buf, size_t size);

#endif

/* Open-addressing table of routing facts with expiry. */
#include "orgcache.h"

#include <stdlib.h>
#include <string.h>

/* Slots probed for a key before the first of them is replaced. */
#define ORGCACHE_PROBES 8

struct slot {
	char *key;       /* "phone\x1fmeta\x1fassistant", NULL when empty */
	char *phone_org; /* facts; NULL when unknown */
	char *asst_org;
	int meta_exists;
	int64_t expires; /* ms */
};

struct orgcache {
	struct slot *slots;
	size_t n;
};

struct orgcache *orgcache_new(size_t slots)
{
	struct orgcache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->slots = calloc(slots, sizeof(*c->slots));
	if (c->slots == NULL) {
		free(c);
		return NULL;
	}
	c->n = slots;
	return c;
}

static void slot_clear(struct slot *s)
{
	free(s->key);
	free(s->phone_org);
	free(s->asst_org);
	memset(s, 0, sizeof(*s));
}

void orgcache_free(struct orgcache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		slot_clear(&c->slots[i]);
	free(c->slots);
	free(c);
}

/* Builds the key into a new string; NULL when out of memory. */
static char *make_key(const char *phone, const char *meta, const char *assistant)
{
	size_t a = phone ? strlen(phone) : 0, b = meta ? strlen(meta) : 0;
	size_t d = assistant ? strlen(assistant) : 0;
	char *k = malloc(a + b + d + 3);

	if (k == NULL)
		return NULL;
	memcpy(k, phone ? phone : "", a);
	k[a] = '\x1f';
	memcpy(k + a + 1, meta ? meta : "", b);
	k[a + 1 + b] = '\x1f';
	memcpy(k + a + b + 2, assistant ? assistant : "", d);
	k[a + b + d + 2] = '\0';
	return k;
}

static size_t hash(const char *s)
{
	size_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

int orgcache_get(struct orgcache *c, const char *phone, const char *meta, const char *assistant,
                 int64_t now_ms, struct route_facts *f)
{
	char *key = make_key(phone, meta, assistant);
	size_t h;
	int found = 0;

	if (key == NULL)
		return 0;
	h = hash(key);
	for (size_t i = 0; i < ORGCACHE_PROBES && !found; i++) {
		struct slot *s = &c->slots[(h + i) % c->n];

		if (s->key == NULL || s->expires <= now_ms || strcmp(s->key, key) != 0)
			continue;
		f->phone_org = dup_or_null(s->phone_org);
		f->assistant_org = dup_or_null(s->asst_org);
		f->meta_org_exists = s->meta_exists;
		found = (s->phone_org == NULL || f->phone_org != NULL) &&
		        (s->asst_org == NULL || f->assistant_org != NULL);
		if (!found)
			orgcache_facts_free(f);
	}
	free(key);
	return found;
}

void orgcache_put(struct orgcache *c, const char *phone, const char *meta, const char *assistant,
                  const struct route_facts *f, int64_t now_ms)
{
	char *key = make_key(phone, meta, assistant);
	struct slot *victim = NULL;
	size_t h;

	if (key == NULL)
		return;
	h = hash(key);
	for (size_t i = 0; i < ORGCACHE_PROBES; i++) {
		struct slot *s = &c->slots[(h + i) % c->n];

		if (s->key == NULL || s->expires <= now_ms || strcmp(s->key, key) == 0) {
			victim = s;
			break;
		}
	}
	if (victim == NULL)
		victim = &c->slots[h % c->n]; /* all probed slots live: replace the first */
	slot_clear(victim);
	victim->key = key;
	victim->phone_org = dup_or_null(f->phone_org);
	victim->asst_org = dup_or_null(f->assistant_org);
	victim->meta_exists = f->meta_org_exists;
	victim->expires = now_ms + ORGCACHE_TTL_MS;
	if ((f->phone_org != NULL && victim->phone_org == NULL) ||
	    (f->assistant_org != NULL && victim->asst_org == NULL))
		slot_clear(victim); /* out of memory: cache nothing rather than something wrong */
}

void orgcache_facts_free(struct route_facts *f)
{
	free((char *)f->phone_org);
	free((char *)f->assistant_org);
	f->phone_org = f->assistant_org = NULL;
}

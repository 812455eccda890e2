/* Names of the stream shards. */
#include "shards.h"

#include <stdio.h>

int shards_tagged(const struct cfg *c)
{
	return c->shards > 1 || (c->redis_cluster != NULL && c->redis_cluster[0] != '\0');
}

static void name(const struct cfg *c, const char *base, int i, char *out, size_t size)
{
	if (shards_tagged(c))
		snprintf(out, size, "%s:{%d}", base, i);
	else
		snprintf(out, size, "%s", base);
}

void shards_stream(const struct cfg *c, int i, char *out, size_t size)
{
	name(c, c->stream, i, out, size);
}

void shards_dead(const struct cfg *c, int i, char *out, size_t size)
{
	name(c, c->dead_stream, i, out, size);
}

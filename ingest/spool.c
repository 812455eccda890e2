/* Append-only spool file with group commit. */
#include "spool.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPOOL_MAGIC "SBS1"
#define SPOOL_HDR 12
#define SPOOL_FILE "spool.log"
/* The file is read through a window of this many bytes (more for a larger record), so
 * scanning and draining a spool of any size takes this much memory. */
#define SPOOL_READ_CHUNK (4 << 20)

struct spool {
	pthread_mutex_t lock;
	pthread_cond_t synced_cv;
	int fd;
	char path[4096];
	long long max_bytes;
	long long written;           /* the file's end */
	unsigned long long appended; /* bytes ever appended (never decreases) */
	unsigned long long durable;  /* of those, bytes known to be on disk */
	long long entries;           /* records in the file */
	int syncing;                 /* a leader is in fdatasync */
	int sync_err;                /* errno of the last failed fdatasync, 0 when fine */
};

static uint32_t crc32_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc32_table[i] = c;
	}
}

static uint32_t crc32(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len-- > 0)
		crc = crc32_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Parses the record at buf[0..avail). Returns its total length, 0 when it is incomplete,
 * -1 when it is not a valid record. Fills r when rec is non-NULL. */
static long long parse_rec(const unsigned char *buf, long long avail, struct spool_rec *r)
{
	uint32_t plen;
	uint16_t idlen;
	uint64_t ts = 0;

	if (avail < SPOOL_HDR)
		return 0;
	if (memcmp(buf, SPOOL_MAGIC, 4) != 0)
		return -1;
	plen = get_u32(buf + 4);
	if (plen < 10)
		return -1;
	if (avail < SPOOL_HDR + (long long)plen)
		return 0;
	if (crc32(0, buf + SPOOL_HDR, plen) != get_u32(buf + 8))
		return -1;
	idlen = (uint16_t)(buf[SPOOL_HDR + 8] | buf[SPOOL_HDR + 9] << 8);
	if (10u + idlen > plen)
		return -1;
	if (r != NULL) {
		for (int i = 7; i >= 0; i--)
			ts = ts << 8 | buf[SPOOL_HDR + i];
		r->received_at = (int64_t)ts;
		snprintf(r->request_id, sizeof(r->request_id), "%.*s",
		         idlen < sizeof(r->request_id) ? (int)idlen
		                                       : (int)sizeof(r->request_id) - 1,
		         (const char *)buf + SPOOL_HDR + 10);
		r->body = (const char *)buf + SPOOL_HDR + 10 + idlen;
		r->body_len = plen - 10 - idlen;
	}
	return SPOOL_HDR + (long long)plen;
}

/* Reads the file's [off, off+len) into buf. Returns 0, or -1 (errno set). */
static int read_full(int fd, unsigned char *buf, long long off, long long len)
{
	long long got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, (size_t)(len - got), off + got);

		if (n <= 0) {
			if (n == 0)
				errno = EIO; /* the file is shorter than we were told */
			return -1;
		}
		got += n;
	}
	return 0;
}

/* A read window over the file: buf holds the file's [base, base + len). */
struct window {
	int fd;
	long long base, len;
	unsigned char *buf;
	size_t cap;
};

/* Makes the window hold [off, off + want), cut at end. Returns 0, or -1 (errno set). */
static int window_load(struct window *w, long long off, long long want, long long end)
{
	long long len = end - off < want ? end - off : want;

	if (off >= w->base && off + len <= w->base + w->len)
		return 0;
	if ((size_t)len > w->cap) {
		unsigned char *nb = realloc(w->buf, (size_t)len);

		if (nb == NULL) {
			errno = ENOMEM;
			return -1;
		}
		w->buf = nb;
		w->cap = (size_t)len;
	}
	w->len = 0;
	if (read_full(w->fd, w->buf, off, len) != 0)
		return -1;
	w->base = off;
	w->len = len;
	return 0;
}

/* The record at file offset off as far as the window holds it: parse_rec()'s result (0 also
 * when the window does not hold it whole). r borrows from the window. */
static long long window_rec(const struct window *w, long long off, struct spool_rec *r)
{
	if (off < w->base || off >= w->base + w->len)
		return 0;
	return parse_rec(w->buf + (off - w->base), w->base + w->len - off, r);
}

/* The record at off (< end), moving the window to it when needed and growing it for a
 * record larger than SPOOL_READ_CHUNK. Returns parse_rec()'s result, or -2 when reading
 * failed (errno set). */
static long long window_next(struct window *w, long long off, long long end, struct spool_rec *r)
{
	long long want = SPOOL_READ_CHUNK, n;

	if ((n = window_rec(w, off, r)) != 0)
		return n;
	for (;;) {
		if (window_load(w, off, want, end) != 0)
			return -2;
		if ((n = window_rec(w, off, r)) != 0 || off + w->len >= end)
			return n;
		/* Cut short by the window: load the whole record its header announces. */
		want = SPOOL_HDR + (long long)get_u32(w->buf + (off - w->base) + 4);
		if (want <= w->len)
			return 0;
	}
}

/* Counts valid records from the start; truncates a torn or corrupt tail. */
static int scan(struct spool *s, char *err, size_t errlen)
{
	struct stat st;
	struct window w = {s->fd, 0, 0, NULL, 0};
	long long off = 0, n = 0;

	if (fstat(s->fd, &st) != 0) {
		snprintf(err, errlen, "stat %s: %s", s->path, strerror(errno));
		return -1;
	}
	while (off < st.st_size && (n = window_next(&w, off, st.st_size, NULL)) > 0) {
		off += n;
		s->entries++;
	}
	free(w.buf);
	if (n == -2) {
		snprintf(err, errlen, "read %s: %s", s->path, strerror(errno));
		return -1;
	}
	if (off < st.st_size) {
		log_error(
		    "spool %s: torn or corrupt record at byte %lld: dropped %lld bytes after "
		    "%lld good records (a crash while writing; that request was not answered)",
		    s->path, off, (long long)st.st_size - off, s->entries);
		if (ftruncate(s->fd, off) != 0 || fdatasync(s->fd) != 0) {
			snprintf(err, errlen, "truncate %s: %s", s->path, strerror(errno));
			return -1;
		}
	}
	s->written = off;
	return 0;
}

struct spool *spool_open(const char *dir, long long max_bytes, char *err, size_t errlen)
{
	struct spool *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->synced_cv, NULL);
	s->max_bytes = max_bytes;
	snprintf(s->path, sizeof(s->path), "%s/%s", dir, SPOOL_FILE);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
		goto fail;
	}
	s->fd = open(s->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (s->fd < 0) {
		snprintf(err, errlen, "open %s: %s", s->path, strerror(errno));
		goto fail;
	}
	if (scan(s, err, errlen) != 0)
		goto fail;
	return s;
fail:
	spool_close(s);
	return NULL;
}

void spool_close(struct spool *s)
{
	if (s == NULL)
		return;
	if (s->fd > 0)
		close(s->fd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->synced_cv);
	free(s);
}

/* Waits (lock held) until the first `upto` bytes ever appended are on disk, leading the
 * fdatasync when no one else is: concurrent appends share one sync. Returns 0, or the
 * errno of a failed sync. */
static int wait_synced(struct spool *s, unsigned long long upto)
{
	while (s->durable < upto) {
		unsigned long long target = s->appended;
		int fd = s->fd, rc;

		if (s->syncing) {
			pthread_cond_wait(&s->synced_cv, &s->lock);
			continue;
		}
		s->syncing = 1;
		pthread_mutex_unlock(&s->lock);
		rc = fdatasync(fd) == 0 ? 0 : errno;
		pthread_mutex_lock(&s->lock);
		s->syncing = 0;
		if (rc == 0 && target > s->durable)
			s->durable = target;
		pthread_cond_broadcast(&s->synced_cv);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static unsigned char *build_rec(const char *body, size_t len, int64_t received_at, const char *rid,
                                size_t *total)
{
	size_t idlen = strlen(rid), plen = 10 + idlen + len;
	unsigned char *rec = malloc(SPOOL_HDR + plen);

	if (rec == NULL || idlen > 0xffff || plen > 0xffffffffu) {
		free(rec);
		return NULL;
	}
	memcpy(rec, SPOOL_MAGIC, 4);
	put_u32(rec + 4, (uint32_t)plen);
	for (int i = 0; i < 8; i++)
		rec[SPOOL_HDR + i] = (unsigned char)((uint64_t)received_at >> (8 * i));
	rec[SPOOL_HDR + 8] = (unsigned char)idlen;
	rec[SPOOL_HDR + 9] = (unsigned char)(idlen >> 8);
	memcpy(rec + SPOOL_HDR + 10, rid, idlen);
	memcpy(rec + SPOOL_HDR + 10 + idlen, body, len);
	put_u32(rec + 8, crc32(0, rec + SPOOL_HDR, plen));
	*total = SPOOL_HDR + plen;
	return rec;
}

int spool_append(struct spool *s, const char *body, size_t len, int64_t received_at,
                 const char *request_id, char *err, size_t errlen)
{
	size_t total, done = 0;
	unsigned char *rec = build_rec(body, len, received_at, request_id, &total);
	int rc = 0;

	if (rec == NULL) {
		snprintf(err, errlen, "record too large or out of memory");
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	if (s->written + (long long)total > s->max_bytes) {
		rc = -2;
		goto out;
	}
	while (done < total) {
		ssize_t n = write(s->fd, rec + done, total - done);

		if (n < 0) {
			snprintf(err, errlen, "write %s: %s", s->path, strerror(errno));
			/* Cut off what part of the record made it, so the file stays readable. */
			if (ftruncate(s->fd, s->written) != 0)
				log_error("spool %s: could not cut a partial record", s->path);
			rc = -1;
			goto out;
		}
		done += (size_t)n;
	}
	s->written += (long long)total;
	s->appended += total;
	s->entries++;
	if ((rc = wait_synced(s, s->appended)) != 0) {
		snprintf(err, errlen, "fdatasync %s: %s", s->path, strerror(rc));
		rc = -1;
	}
out:
	pthread_mutex_unlock(&s->lock);
	free(rec);
	return rc;
}

/* Copies the file's [off, off + len) from fd to the end of out, a chunk at a time. */
static int copy_range(int fd, long long off, long long len, int out)
{
	unsigned char *buf = malloc(SPOOL_READ_CHUNK);
	int rc = buf != NULL ? 0 : -1;

	while (rc == 0 && len > 0) {
		long long n = len < SPOOL_READ_CHUNK ? len : SPOOL_READ_CHUNK;

		if (read_full(fd, buf, off, n) != 0 || write(out, buf, (size_t)n) != n)
			rc = -1;
		off += n;
		len -= n;
	}
	free(buf);
	return rc;
}

/* Removes the first `done` bytes (n records) of the file, under the lock. */
static int remove_head(struct spool *s, long long done, long long n, char *err, size_t errlen)
{
	char tmp[4200];
	long long restlen;
	int fd;

	while (s->syncing)
		pthread_cond_wait(&s->synced_cv, &s->lock);
	restlen = s->written - done;
	if (restlen == 0) {
		if (ftruncate(s->fd, 0) != 0 || fdatasync(s->fd) != 0)
			goto ioerr;
		s->written = 0;
		s->durable = s->appended;
		s->entries = 0;
		return 0;
	}
	/* Appends arrived meanwhile: keep them in a new file that replaces the old. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->path);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || copy_range(s->fd, done, restlen, fd) != 0 || fdatasync(fd) != 0 ||
	    rename(tmp, s->path) != 0) {
		if (fd >= 0)
			close(fd);
		goto ioerr;
	}
	close(s->fd);
	s->fd = fd;
	s->written = restlen;
	s->durable = s->appended; /* the new file was synced whole */
	s->entries -= n;
	return 0;
ioerr:
	snprintf(err, errlen, "rewrite %s: %s", s->path, strerror(errno));
	return -1;
}

int spool_drain(struct spool *s, spool_drain_fn fn, void *ctx, long long *moved, char *err,
                size_t errlen)
{
	struct window w = {-1, 0, 0, NULL, 0};
	struct spool_rec *recs = malloc(SPOOL_DRAIN_BATCH * sizeof(*recs));
	long long end, off = 0, n = 0, len = 0, lens[SPOOL_DRAIN_BATCH];
	int rc = 0, whole = 1;

	*moved = 0;
	if (recs == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	end = s->written;
	w.fd = s->fd; /* only the drain replaces the file, so this one stays valid */
	pthread_mutex_unlock(&s->lock);
	while (off < end && whole) {
		long long at = off;
		int k = 0, took;

		/* A batch: the records from off that the window holds whole, at least one, up to
		 * SPOOL_DRAIN_BATCH of them or SPOOL_DRAIN_BYTES. */
		len = window_next(&w, at, end, &recs[0]);
		while (len > 0) {
			lens[k++] = len;
			at += len;
			if (k == SPOOL_DRAIN_BATCH || at >= end || at - off >= SPOOL_DRAIN_BYTES)
				break;
			len = window_rec(&w, at, &recs[k]);
		}
		if (k == 0)
			break; /* -2: a read error; -1 or 0 cannot happen for synced bytes */
		took = fn(ctx, recs, k);
		for (int i = 0; i < took; i++) {
			off += lens[i];
			n++;
		}
		whole = took == k;
	}
	free(recs);
	free(w.buf);
	if (len == -2) {
		snprintf(err, errlen, "read %s: %s", s->path, strerror(errno));
		rc = -1;
	}
	if (off > 0) {
		pthread_mutex_lock(&s->lock);
		if (remove_head(s, off, n, err, errlen) == 0)
			*moved = n;
		else
			rc = -1;
		pthread_mutex_unlock(&s->lock);
	}
	return rc;
}

long long spool_entries(struct spool *s, long long *bytes)
{
	long long n;

	pthread_mutex_lock(&s->lock);
	n = s->entries;
	if (bytes != NULL)
		*bytes = s->written;
	pthread_mutex_unlock(&s->lock);
	return n;
}

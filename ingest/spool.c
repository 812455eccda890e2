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
/* Records are handed to the drain callback in chunks of about this many bytes. */
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

/* Reads [off, off+len) of the file into a new buffer (one spare byte), or NULL. */
static unsigned char *read_at(int fd, long long off, long long len)
{
	unsigned char *buf = malloc((size_t)len + 1);
	long long got = 0;

	while (buf != NULL && got < len) {
		ssize_t n = pread(fd, buf + got, (size_t)(len - got), off + got);

		if (n <= 0) {
			free(buf);
			return NULL;
		}
		got += n;
	}
	return buf;
}

/* Counts valid records from the start; truncates a torn or corrupt tail. */
static int scan(struct spool *s, char *err, size_t errlen)
{
	struct stat st;
	unsigned char *buf;
	long long off = 0;

	if (fstat(s->fd, &st) != 0) {
		snprintf(err, errlen, "stat %s: %s", s->path, strerror(errno));
		return -1;
	}
	if (st.st_size == 0)
		return 0;
	buf = read_at(s->fd, 0, st.st_size);
	if (buf == NULL) {
		snprintf(err, errlen, "read %s: %s", s->path, strerror(errno));
		return -1;
	}
	for (long long n; (n = parse_rec(buf + off, st.st_size - off, NULL)) > 0; off += n)
		s->entries++;
	free(buf);
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

/* Removes the first `done` bytes (n records) of the file, under the lock. */
static int remove_head(struct spool *s, long long done, long long n, char *err, size_t errlen)
{
	char tmp[4200];
	unsigned char *rest;
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
	rest = read_at(s->fd, done, restlen);
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->path);
	fd = rest ? open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600) : -1;
	if (fd < 0 || write(fd, rest, (size_t)restlen) != restlen || fdatasync(fd) != 0 ||
	    rename(tmp, s->path) != 0) {
		free(rest);
		if (fd >= 0)
			close(fd);
		goto ioerr;
	}
	free(rest);
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

int spool_drain(struct spool *s, int (*fn)(void *ctx, const struct spool_rec *r), void *ctx,
                long long *moved, char *err, size_t errlen)
{
	long long end, off = 0, n = 0;
	unsigned char *buf;
	int rc = 0, failed = 0;

	*moved = 0;
	pthread_mutex_lock(&s->lock);
	end = s->written;
	pthread_mutex_unlock(&s->lock);
	if (end == 0)
		return 0;
	buf = read_at(s->fd, 0, end);
	if (buf == NULL) {
		snprintf(err, errlen, "read %s: %s", s->path, strerror(errno));
		return -1;
	}
	while (off < end && !failed) {
		struct spool_rec r;
		long long len = parse_rec(buf + off, end - off, &r);
		unsigned char saved;

		if (len <= 0)
			break; /* cannot happen for synced bytes; never re-drive garbage */
		/* NUL-terminate the body in place for the callback, then restore. */
		saved = buf[off + len < end ? off + len : end];
		buf[off + len] = '\0';
		failed = fn(ctx, &r) != 0;
		if (off + len < end)
			buf[off + len] = saved;
		if (!failed) {
			off += len;
			n++;
		}
	}
	free(buf);
	if (off > 0) {
		pthread_mutex_lock(&s->lock);
		rc = remove_head(s, off, n, err, errlen);
		pthread_mutex_unlock(&s->lock);
		if (rc == 0)
			*moved = n;
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

// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libcowsnap: thin wrappers over the /dev/cowsnap ioctls, the resumable
 * list/diff protocols, and the dump format (docs/dump-format.md).
 *
 * Errors: a system call's errno is passed through unchanged; the library
 * adds only the ones libcowsnap(3) and docs/errors.md list.  No function
 * keeps state between calls, so all are thread-safe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "libcowsnap.h"
#include "libcowsnap-internal.h"

/* Copy a name or label into a UAPI buffer, which the caller zeroed. */
static int copy_name(char dst[COWSNAP_NAME_MAX], const char *src)
{
	size_t len;

	if (!src) {
		errno = EINVAL;
		return -1;
	}
	len = strnlen(src, COWSNAP_NAME_MAX);
	if (len >= COWSNAP_NAME_MAX) {
		/* As the module says of a name with no NUL in its buffer. */
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

int csnap__name_valid(const char *name)
{
	size_t i;

	if (!name || !name[0] || name[0] == '.')
		return 0;
	for (i = 0; name[i]; i++) {
		char c = name[i];

		if (i >= COWSNAP_NAME_MAX - 1)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

int csnap_open(int flags)
{
	struct cowsnap_api api = { .api = COWSNAP_API_VERSION };
	int acc = flags & O_ACCMODE;
	int fd, err;

	if ((flags & ~(O_ACCMODE | O_CLOEXEC)) ||
	    (acc != O_RDONLY && acc != O_RDWR)) {
		errno = EINVAL;
		return -1;
	}
	fd = open(CSNAP_DEVICE, acc | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ioctl(fd, COWSNAP_IOC_API, &api)) {
		/* The module refuses versions it does not speak with EINVAL. */
		err = errno == EINVAL ? EPROTONOSUPPORT : errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

int csnap_features(int fd, uint64_t *features, uint64_t *ioctls)
{
	struct cowsnap_api api = { .api = COWSNAP_API_VERSION };

	if (ioctl(fd, COWSNAP_IOC_API, &api))
		return -1;
	if (features)
		*features = api.features;
	if (ioctls)
		*ioctls = api.ioctls;
	return 0;
}

int csnap_region_create(int fd, const char *name, uint64_t size, mode_t mode)
{
	struct cowsnap_create c = { .size = size, .mode = mode };

	if (copy_name(c.name, name))
		return -1;
	return ioctl(fd, COWSNAP_IOC_CREATE, &c) ? -1 : 0;
}

static int name_ioctl(int fd, unsigned long cmd, const char *name)
{
	struct cowsnap_name n = { .flags = 0 };

	if (copy_name(n.name, name))
		return -1;
	return ioctl(fd, cmd, &n) ? -1 : 0;
}

int csnap_region_attach(int fd, const char *name)
{
	return name_ioctl(fd, COWSNAP_IOC_ATTACH, name);
}

int csnap_region_destroy(int fd, const char *name)
{
	return name_ioctl(fd, COWSNAP_IOC_DESTROY, name);
}

int csnap_region_info(int fd, struct cowsnap_info *info)
{
	memset(info, 0, sizeof(*info));
	return ioctl(fd, COWSNAP_IOC_INFO, info) ? -1 : 0;
}

void *csnap_region_map(int fd, size_t size, int prot)
{
	struct cowsnap_info info;
	void *p;

	if (!size) {
		if (csnap_region_info(fd, &info))
			return NULL;
		if (info.size > SIZE_MAX) {
			errno = EOVERFLOW;
			return NULL;
		}
		size = info.size;
	}
	p = mmap(NULL, size, prot, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

int csnap_snapshot_create(int fd, const char *label, uint64_t *id)
{
	struct cowsnap_snap_create s = { .flags = 0 };

	if (copy_name(s.label, label ? label : ""))
		return -1;
	if (ioctl(fd, COWSNAP_IOC_SNAP_CREATE, &s))
		return -1;
	if (id)
		*id = s.id;
	return 0;
}

/* Entries asked for per SNAP_LIST call. */
#define LIST_BATCH	64

ssize_t csnap_snapshot_list(int fd, struct cowsnap_snap_entry **entries)
{
	struct cowsnap_snap_entry *v = NULL, *nv;
	size_t n = 0, cap = 0;
	uint64_t start = 1;	/* ids start at 1 */
	int err;

	for (;;) {
		struct cowsnap_snap_list l = { .start_id = start };

		if (cap - n < LIST_BATCH) {
			cap = cap ? cap * 2 : LIST_BATCH;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				goto fail;
			v = nv;
		}
		l.entries = (uintptr_t)(v + n);
		l.count = cap - n > UINT32_MAX ? UINT32_MAX : cap - n;
		if (ioctl(fd, COWSNAP_IOC_SNAP_LIST, &l))
			goto fail;
		if (l.count > cap - n)
			goto bad;
		n += l.count;
		if (!l.next_id)
			break;
		/* A cursor that does not advance would loop for ever. */
		if (l.next_id <= start || (n && l.next_id <= v[n - 1].id))
			goto bad;
		start = l.next_id;
	}
	if (!n) {
		free(v);
		v = NULL;
	}
	*entries = v;
	return n;
bad:
	errno = EIO;
fail:
	err = errno;
	free(v);
	errno = err;
	return -1;
}

/* A decimal u64 with no sign, space or suffix. */
static int parse_id(const char *s, uint64_t *id)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	*id = v;
	return 0;
}

int csnap_snapshot_find(int fd, const char *spec, uint64_t *id)
{
	struct cowsnap_snap_entry *e;
	uint64_t want = 0, found = 0;
	int by_id, matches = 0;
	ssize_t n, i;

	if (!spec) {
		errno = EINVAL;
		return -1;
	}
	by_id = !parse_id(spec, &want);
	n = csnap_snapshot_list(fd, &e);
	if (n < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (by_id && e[i].id == want) {
			free(e);
			*id = want;
			return 0;
		}
		if (!strncmp(e[i].label, spec, COWSNAP_NAME_MAX)) {
			found = e[i].id;
			matches++;
		}
	}
	free(e);
	if (matches != 1) {
		errno = matches ? ENOTUNIQ : ENOENT;
		return -1;
	}
	*id = found;
	return 0;
}

int csnap_snapshot_delete(int fd, uint64_t id)
{
	struct cowsnap_snap_id s = { .id = id };

	return ioctl(fd, COWSNAP_IOC_SNAP_DELETE, &s) ? -1 : 0;
}

int csnap_snapshot_open(int fd, uint64_t id, int flags)
{
	struct cowsnap_snap_open o = { .id = id };

	if (flags & ~O_CLOEXEC) {
		errno = EINVAL;
		return -1;
	}
	if (flags & O_CLOEXEC)
		o.flags |= COWSNAP_OPEN_CLOEXEC;
	return ioctl(fd, COWSNAP_IOC_SNAP_OPEN, &o);
}

int csnap_restore(int fd, uint64_t id, uint64_t expect_newest,
		  uint64_t *pages)
{
	struct cowsnap_restore r = { .id = id, .expect_newest = expect_newest };

	if (ioctl(fd, COWSNAP_IOC_RESTORE, &r))
		return -1;
	if (pages)
		*pages = r.pages_restored;
	return 0;
}

/* Extents asked for per DIFF call. */
#define DIFF_BATCH	256

int csnap_diff_walk(int fd, uint64_t from, uint64_t to, csnap_extent_fn fn,
		    void *arg)
{
	struct cowsnap_extent buf[DIFF_BATCH], cur = { 0, 0 };
	uint64_t start = 0;
	unsigned int i;

	if (!fn) {
		errno = EINVAL;
		return -1;
	}
	for (;;) {
		struct cowsnap_diff d = {
			.from = from, .to = to, .start = start,
			.extents = (uintptr_t)buf, .count = DIFF_BATCH,
		};

		if (ioctl(fd, COWSNAP_IOC_DIFF, &d))
			return -1;
		if (d.count > DIFF_BATCH)
			goto bad;
		for (i = 0; i < d.count; i++) {
			/* Ascending, not overlapping, never empty. */
			if (!buf[i].count || buf[i].start < start ||
			    buf[i].start < cur.start + cur.count)
				goto bad;
			/* The kernel may split an extent at a batch boundary. */
			if (cur.count && cur.start + cur.count == buf[i].start) {
				cur.count += buf[i].count;
				continue;
			}
			if (cur.count && fn(cur.start, cur.count, arg))
				return 1;
			cur = buf[i];
		}
		if (!d.next)
			break;
		if (d.next <= start)
			goto bad;
		start = d.next;
	}
	if (cur.count && fn(cur.start, cur.count, arg))
		return 1;
	return 0;
bad:
	errno = EIO;
	return -1;
}

struct extent_vec {
	struct cowsnap_extent *v;
	size_t n, cap;
	int err;
};

static int extent_push(uint64_t start, uint64_t count, void *arg)
{
	struct extent_vec *ev = arg;
	struct cowsnap_extent *nv;

	if (ev->n == ev->cap) {
		ev->cap = ev->cap ? ev->cap * 2 : 64;
		nv = realloc(ev->v, ev->cap * sizeof(*nv));
		if (!nv) {
			ev->err = errno;
			return 1;
		}
		ev->v = nv;
	}
	ev->v[ev->n].start = start;
	ev->v[ev->n].count = count;
	ev->n++;
	return 0;
}

ssize_t csnap_diff(int fd, uint64_t from, uint64_t to,
		   struct cowsnap_extent **extents)
{
	struct extent_vec ev = { NULL, 0, 0, 0 };
	int ret, err;

	ret = csnap_diff_walk(fd, from, to, extent_push, &ev);
	if (ret) {
		err = ret > 0 ? ev.err : errno;
		free(ev.v);
		errno = err;
		return -1;
	}
	*extents = ev.v;
	return ev.n;
}

int csnap_clone(int fd, uint64_t id, const char *name, mode_t mode)
{
	struct cowsnap_clone c = { .id = id, .mode = mode };

	if (copy_name(c.name, name))
		return -1;
	return ioctl(fd, COWSNAP_IOC_CLONE, &c) ? -1 : 0;
}

int csnap__parse_size(const char *str, uint64_t *size)
{
	static const char suffixes[] = "kmgt";
	uint64_t v = 0;
	const char *s = str, *p;
	unsigned int shift = 0;

	if (!s || *s < '0' || *s > '9')
		goto inval;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (*s - '0')) / 10)
			goto range;
		v = v * 10 + (*s - '0');
	}
	if (*s) {
		p = strchr(suffixes, *s | 0x20);
		if (!p || s[1])
			goto inval;
		shift = 10 * (p - suffixes + 1);
	}
	if (!v)
		goto inval;
	if (v > UINT64_MAX >> shift)
		goto range;
	*size = v << shift;
	return 0;
inval:
	errno = EINVAL;
	return -1;
range:
	errno = ERANGE;
	return -1;
}

/* CRC-32C, slicing by 8; tables built once at load. */
static uint32_t crc_tab[8][256];

static void __attribute__((constructor)) crc_init(void)
{
	uint32_t c;
	int i, k;

	for (i = 0; i < 256; i++) {
		c = i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78 : c >> 1;
		crc_tab[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (k = 1; k < 8; k++)
			crc_tab[k][i] = crc_tab[0][crc_tab[k - 1][i] & 0xff] ^
					(crc_tab[k - 1][i] >> 8);
}

uint32_t csnap__crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t lo, hi;

	crc = ~crc;
	for (; len >= 8; len -= 8, p += 8) {
		lo = crc ^ (p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24);
		hi = p[4] | p[5] << 8 | p[6] << 16 | (uint32_t)p[7] << 24;
		crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		      crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
		      crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
		      crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
	}
	while (len--)
		crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/*
 * The dump format, little-endian (docs/dump-format.md):
 *   header   magic[8] version:u32 page_size:u32 size:u64 reserved:u64
 *   records  type:u32 reserved:u32 first:u64 count:u64 [count pages]
 *   END      type 2, first = data pages, count = data records
 *   trailer  crc32c:u32 of every byte before it, reserved:u32
 */
#define DUMP_HDR_LEN	32
#define DUMP_REC_LEN	24
#define DUMP_DATA	1
#define DUMP_END	2
#define DUMP_CHUNK	(1U << 20)	/* bytes read or written at a time */

/* sizeof(struct csnap_dump_info) in its first version: the least we take. */
#define DUMP_INFO_V1	208
_Static_assert(sizeof(struct csnap_dump_info) >= DUMP_INFO_V1,
	       "struct csnap_dump_info may only grow");

/* EINVAL unless @user is NULL or says how large it is. */
static int info_check(const struct csnap_dump_info *user)
{
	if (user && user->struct_size < DUMP_INFO_V1) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Hand what @di holds to the caller's @user, as far as both know. */
static void info_out(struct csnap_dump_info *user,
		     const struct csnap_dump_info *di)
{
	size_t want, n;

	if (!user)
		return;
	want = user->struct_size;
	n = want < sizeof(*di) ? want : sizeof(*di);
	memcpy(user, di, n);
	if (want > n)
		memset((char *)user + n, 0, want - n);
	user->struct_size = n;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

static void put_le64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

static uint32_t get_le32(const unsigned char *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const unsigned char *p)
{
	return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void __attribute__((format(printf, 2, 3)))
dump_error(struct csnap_dump_info *di, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(di->error, sizeof(di->error), fmt, ap);
	va_end(ap);
}

/* How a transfer reports progress and learns it was cancelled. */
struct progress {
	csnap_progress_fn fn;
	void *arg;
	uint64_t done, total;
};

/* After EINTR: 0 to retry, or -1 with ECANCELED if the caller says stop. */
static int interrupted(struct progress *pr)
{
	if (pr && pr->fn && pr->fn(pr->done, pr->total, pr->arg)) {
		errno = ECANCELED;
		return -1;
	}
	return 0;
}

/* Sequential dump output with a running checksum. */
struct dump_out {
	int fd;
	struct csnap_dump_info *di;
	struct progress *pr;
};

/* Write without checksumming: only the trailer itself. */
static int out_write_raw(struct dump_out *o, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = write(o->fd, p, len);
		if (n < 0 && errno == EINTR) {
			if (interrupted(o->pr))
				return -1;
			continue;
		}
		if (n <= 0) {
			if (!n)
				errno = EIO;
			dump_error(o->di, "writing dump: %s", strerror(errno));
			return -1;
		}
		p += n;
		len -= n;
		o->di->bytes += n;
		/* A signal during a pipe write shortens it: no EINTR. */
		if (len && interrupted(o->pr))
			return -1;
	}
	return 0;
}

static int out_write(struct dump_out *o, const void *buf, size_t len)
{
	o->di->checksum = csnap__crc32c(o->di->checksum, buf, len);
	return out_write_raw(o, buf, len);
}

static int out_record(struct dump_out *o, uint32_t type, uint64_t first,
		      uint64_t count)
{
	unsigned char rec[DUMP_REC_LEN] = { 0 };

	put_le32(rec, type);
	put_le64(rec + 8, first);
	put_le64(rec + 16, count);
	return out_write(o, rec, sizeof(rec));
}

static int page_is_zero(const unsigned char *p, size_t len)
{
	static const unsigned char zero[8];

	/* Equal to itself shifted by a word: zero iff the first word is. */
	return !memcmp(p, zero, 8) && !memcmp(p, p + 8, len - 8);
}

/* pread, or pwrite if @out, all @len bytes; an early end is EIO. */
static int pio_full(int fd, void *buf, size_t len, off_t off, int out)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		n = out ? pwrite(fd, p, len, off) : pread(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!n)
				errno = EIO;
			return -1;
		}
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Emit DATA records for the non-zero runs of one chunk read at @first. */
static int dump_chunk(struct dump_out *o, const unsigned char *buf,
		      uint64_t first, size_t pages, size_t ps)
{
	size_t i = 0, run;

	while (i < pages) {
		if (page_is_zero(buf + i * ps, ps)) {
			i++;
			continue;
		}
		for (run = 1; i + run < pages; run++)
			if (page_is_zero(buf + (i + run) * ps, ps))
				break;
		if (out_record(o, DUMP_DATA, first + i, run) ||
		    out_write(o, buf + i * ps, run * ps))
			return -1;
		o->di->data_pages += run;
		o->di->records++;
		i += run;
	}
	return 0;
}

static int dump_stream(int fd, uint64_t id, int out,
		       struct csnap_dump_info *di, struct progress *pr)
{
	struct dump_out o = { .fd = out, .di = di, .pr = pr };
	unsigned char hdr[DUMP_HDR_LEN] = CSNAP_DUMP_MAGIC;
	unsigned char *buf = NULL;
	struct cowsnap_info ri;
	uint64_t off, len;
	long ps = sysconf(_SC_PAGESIZE);
	int sfd = -1, err;

	di->version = CSNAP_DUMP_VERSION;
	di->page_size = ps;
	if (csnap_region_info(fd, &ri))
		return -1;
	di->size = ri.size;
	pr->total = ri.size;
	if (!ri.size || ri.size % ps) {
		errno = EINVAL;
		return -1;
	}
	sfd = csnap_snapshot_open(fd, id, O_CLOEXEC);
	if (sfd < 0)
		return -1;
	buf = malloc(DUMP_CHUNK);
	if (!buf)
		goto fail;
	put_le32(hdr + 8, di->version);
	put_le32(hdr + 12, di->page_size);
	put_le64(hdr + 16, di->size);
	if (out_write(&o, hdr, sizeof(hdr)))
		goto fail;
	for (off = 0; off < di->size; off += len) {
		len = di->size - off < DUMP_CHUNK ? di->size - off : DUMP_CHUNK;
		if (pio_full(sfd, buf, len, off, 0)) {
			dump_error(di, "reading snapshot %llu at byte %llu: %s",
				   (unsigned long long)id,
				   (unsigned long long)off, strerror(errno));
			goto fail;
		}
		if (dump_chunk(&o, buf, off / ps, len / ps, ps))
			goto fail;
		pr->done = off + len;
		if (pr->fn && pr->fn(pr->done, pr->total, pr->arg)) {
			errno = ECANCELED;
			goto fail;
		}
	}
	if (out_record(&o, DUMP_END, di->data_pages, di->records))
		goto fail;
	put_le32(hdr, di->checksum);
	put_le32(hdr + 4, 0);
	if (out_write_raw(&o, hdr, 8))
		goto fail;
	free(buf);
	close(sfd);
	return 0;
fail:
	err = errno;
	free(buf);
	close(sfd);
	errno = err;
	return -1;
}

int csnap_dump(int fd, uint64_t id, int out, struct csnap_dump_info *info,
	       csnap_progress_fn progress, void *arg)
{
	struct csnap_dump_info di = { .struct_size = sizeof(di) };
	struct progress pr = { progress, arg, 0, 0 };
	int ret;

	if (info_check(info))
		return -1;
	ret = dump_stream(fd, id, out, &di, &pr);
	info_out(info, &di);
	return ret;
}

/* Sequential dump input with a running checksum and position. */
struct dump_in {
	int fd;
	uint64_t pos;
	uint32_t crc;
	struct csnap_dump_info *di;
	struct progress *pr;
};

/* Read exactly @len bytes; a short read is a truncated dump. */
static int in_read(struct dump_in *in, void *buf, size_t len,
		   const char *what)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		n = read(in->fd, p, len);
		if (n < 0 && errno == EINTR) {
			if (interrupted(in->pr))
				return -1;
			continue;
		}
		if (n < 0) {
			dump_error(in->di, "reading dump: %s", strerror(errno));
			return -1;
		}
		if (!n) {
			dump_error(in->di, "truncated dump: it ends inside %s "
				   "(byte %llu)", what,
				   (unsigned long long)in->pos);
			errno = EBADMSG;
			return -1;
		}
		in->crc = csnap__crc32c(in->crc, p, n);
		in->pos += n;
		p += n;
		len -= n;
		/* A signal during a pipe read shortens it: no EINTR. */
		if (len && interrupted(in->pr))
			return -1;
	}
	return 0;
}

static int __attribute__((format(printf, 2, 3)))
corrupt(struct csnap_dump_info *di, const char *fmt, ...)
{
	char why[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	dump_error(di, "corrupt dump: %s", why);
	errno = EBADMSG;
	return -1;
}

static int check_header(struct dump_in *in)
{
	struct csnap_dump_info *di = in->di;
	unsigned char hdr[DUMP_HDR_LEN];

	if (in_read(in, hdr, sizeof(hdr), "the header"))
		return -1;
	if (memcmp(hdr, CSNAP_DUMP_MAGIC, 8)) {
		dump_error(di, "not a cowsnap dump (bad magic)");
		errno = EBADMSG;
		return -1;
	}
	di->version = get_le32(hdr + 8);
	if (di->version != CSNAP_DUMP_VERSION) {
		dump_error(di, "unsupported dump format version %u (this "
			   "cowsnap reads version %u)", di->version,
			   CSNAP_DUMP_VERSION);
		errno = EPROTONOSUPPORT;
		return -1;
	}
	di->page_size = get_le32(hdr + 12);
	di->size = get_le64(hdr + 16);
	if (di->page_size < 512 || di->page_size > (1U << 21) ||
	    (di->page_size & (di->page_size - 1)))
		return corrupt(di, "bad page size %u", di->page_size);
	if (!di->size || di->size % di->page_size)
		return corrupt(di, "bad region size %llu",
			       (unsigned long long)di->size);
	if (get_le64(hdr + 24))
		return corrupt(di, "reserved header field is not zero");
	return 0;
}

/*
 * Where a dump walk puts the pages: nowhere (@fd -1: validation only), the
 * region attached to @fd, or, if @name is set, a region it creates as
 * @name once the header is read (@created tells the caller to undo it).
 */
struct load_target {
	int fd;
	const char *name;
	mode_t mode;
	int created;
};

/* Read one DATA record's pages; write them to the target's region. */
static int load_data(struct dump_in *in, struct load_target *t,
		     unsigned char *buf, uint64_t first, uint64_t count)
{
	uint64_t off = first * in->di->page_size;
	uint64_t left = count * in->di->page_size;
	size_t len;

	while (left) {
		len = left < DUMP_CHUNK ? left : DUMP_CHUNK;
		if (in_read(in, buf, len, "page data"))
			return -1;
		/* An error here is the region's: no dump_error(). */
		if (t && pio_full(t->fd, buf, len, off, 1))
			return -1;
		off += len;
		left -= len;
	}
	return 0;
}

/* Walk a whole dump from the current position of @in_fd into @t. */
static int dump_walk(int in_fd, struct load_target *t,
		     struct csnap_dump_info *di, struct progress *pr,
		     int report)
{
	struct dump_in in = { .fd = in_fd, .di = di, .pr = pr };
	unsigned char rec[DUMP_REC_LEN], *buf;
	uint64_t pages, next = 0, first, count, rec_pos;
	uint32_t type, crc;
	ssize_t n;
	int ret = -1;

	memset(di, 0, sizeof(*di));
	di->struct_size = sizeof(*di);
	buf = malloc(DUMP_CHUNK);
	if (!buf)
		return -1;
	if (check_header(&in))
		goto out;
	pages = di->size / di->page_size;
	pr->total = di->size;
	if (t && t->name && !t->created) {
		if (csnap_region_create(t->fd, t->name, di->size, t->mode))
			goto out;
		t->created = 1;
	}
	for (;;) {
		rec_pos = in.pos;
		if (in_read(&in, rec, sizeof(rec), "a record header"))
			goto out;
		type = get_le32(rec);
		first = get_le64(rec + 8);
		count = get_le64(rec + 16);
		if (get_le32(rec + 4)) {
			corrupt(di, "reserved field set in record at byte %llu",
				(unsigned long long)rec_pos);
			goto out;
		}
		if (type == DUMP_END)
			break;
		if (type != DUMP_DATA) {
			corrupt(di, "unknown record type %u at byte %llu", type,
				(unsigned long long)rec_pos);
			goto out;
		}
		/* Ascending, non-overlapping, inside the region. */
		if (!count || first < next || first > pages ||
		    count > pages - first) {
			corrupt(di, "record at byte %llu covers pages "
				"%llu+%llu, outside the region or out of order",
				(unsigned long long)rec_pos,
				(unsigned long long)first,
				(unsigned long long)count);
			goto out;
		}
		if (load_data(&in, t, buf, first, count))
			goto out;
		next = first + count;
		di->data_pages += count;
		di->records++;
		pr->done = next * di->page_size;
		if (report && pr->fn && pr->fn(pr->done, pr->total, pr->arg)) {
			errno = ECANCELED;
			goto out;
		}
	}
	if (first != di->data_pages || count != di->records) {
		corrupt(di, "end record counts %llu pages in %llu records, "
			"the dump holds %llu in %llu",
			(unsigned long long)first, (unsigned long long)count,
			(unsigned long long)di->data_pages,
			(unsigned long long)di->records);
		goto out;
	}
	crc = in.crc;
	if (in_read(&in, rec, 8, "the checksum"))
		goto out;
	di->checksum = get_le32(rec);
	if (di->checksum != crc) {
		corrupt(di, "checksum mismatch (stored %08x, computed %08x)",
			di->checksum, crc);
		goto out;
	}
	if (get_le32(rec + 4)) {
		corrupt(di, "reserved trailer field is not zero");
		goto out;
	}
	/* Anything after the trailer means this is not what we think. */
	do {
		n = read(in_fd, rec, 1);
	} while (n < 0 && errno == EINTR && !interrupted(pr));
	if (n < 0 && errno == ECANCELED)
		goto out;
	if (n) {
		if (n < 0)
			dump_error(di, "reading dump: %s", strerror(errno));
		else
			corrupt(di, "data after the end of the dump");
		goto out;
	}
	di->bytes = in.pos;
	if (report && pr->fn && pr->fn(di->size, di->size, pr->arg)) {
		errno = ECANCELED;
		goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

int csnap_dump_check(int in, struct csnap_dump_info *info)
{
	struct csnap_dump_info di;
	struct progress pr = { NULL, NULL, 0, 0 };
	int ret;

	if (info_check(info))
		return -1;
	ret = dump_walk(in, NULL, &di, &pr, 0);
	info_out(info, &di);
	return ret;
}

static int load(int fd, const char *name, mode_t mode, int in,
		struct csnap_dump_info *di, struct progress *pr)
{
	struct load_target t = { .fd = fd, .name = name, .mode = mode };
	off_t start;
	int err;

	memset(di, 0, sizeof(*di));
	di->struct_size = sizeof(*di);
	if (!name) {
		errno = EINVAL;
		return -1;
	}
	start = lseek(in, 0, SEEK_CUR);
	if (start < 0 && errno != ESPIPE)
		return -1;
	if (start >= 0) {
		/* Check it all first: a bad dump creates nothing. */
		if (dump_walk(in, NULL, di, pr, 0))
			return -1;
		if (lseek(in, start, SEEK_SET) < 0)
			return -1;
		if (csnap_region_create(fd, name, di->size, mode))
			return -1;
		t.name = NULL;
		t.created = 1;
	}
	/* From a pipe, one pass: the region appears after the header. */
	if (!dump_walk(in, &t, di, pr, 1))
		return 0;
	if (t.created) {
		err = errno;
		csnap_region_destroy(fd, name);
		errno = err;
	}
	return -1;
}

int csnap_load(int fd, const char *name, mode_t mode, int in,
	       struct csnap_dump_info *info, csnap_progress_fn progress,
	       void *arg)
{
	struct csnap_dump_info di;
	struct progress pr = { progress, arg, 0, 0 };
	int ret;

	if (info_check(info))
		return -1;
	ret = load(fd, name, mode, in, &di, &pr);
	info_out(info, &di);
	return ret;
}

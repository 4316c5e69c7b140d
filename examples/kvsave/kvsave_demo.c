// SPDX-License-Identifier: GPL-2.0
/*
 * A forkless BGSAVE: a small key-value server whose hash table and values
 * live in a cowsnap region, measured beside Debian's redis-server.
 *
 * kvsave is a single-threaded server speaking a subset of the Redis
 * protocol (RESP) on a unix socket: SET, GET, DEL, DBSIZE, BGSAVE, INFO,
 * PING, SHUTDOWN.  Its table (buckets, entries, free lists) is in a
 * region, linked by region offsets, so a snapshot of the region is a
 * complete table.  BGSAVE takes a snapshot between two commands (the
 * server's only pause is the ioctl) and a save process, forked once at
 * start, reads the snapshot and writes every key and value to a file
 * while the server goes on serving writes.  Where Redis forks and lets the
 * kernel copy the pages the parent writes, kvsave lets cowsnap copy the
 * region pages the server writes.
 *
 * The program is the client of both servers, with the same code: it loads
 * the same keys over the socket, then a writer sends SET and DEL of random
 * keys, one request at a time, and issues BGSAVE itself.  It measures the
 * round trip of every request and reads each server's own figures from
 * INFO: latest_fork_usec and rdb_last_cow_size (kvsave reports its
 * snapshot ioctl and the pages the snapshot had to keep under those
 * names).
 *
 * The writer keeps a model of the table (a version per key), copied when
 * BGSAVE returns: every saved kvsave file is loaded into a new region's
 * table, which must hold exactly the model at the snapshot.
 *
 * "kvsave_demo --check" is a short correctness run of kvsave alone (exit
 * status 1 and a "FAIL ..." line on any mismatch); without arguments the
 * measured run adds redis-server (/usr/bin/redis-server, if present) and
 * prints a Markdown table.  Under QEMU TCG absolute numbers mean little:
 * compare the rows of one run with each other.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "libcowsnap.h"

#define REDIS		"/usr/bin/redis-server"
#define KEY_LEN		16		/* "key:%012u", like redis-benchmark */
#define VAL_MAX		4096
#define NCLASS		512		/* free lists by capacity / 16 */
#define MAX_ARGS	8
#define MAX_CLIENTS	8
#define MAX_SAVES	4
#define BATCH		500		/* pipelined SETs of the initial load */

struct config {
	int check;		/* --check: short, correctness only */
	uint32_t keys;		/* keys loaded, and the key space */
	uint32_t vmin, vmax;	/* value lengths */
	uint64_t region;	/* kvsave's region, bytes */
	double alone_s;		/* writer alone, the baseline */
	double between_s;	/* writer alone between two saves */
	int saves;		/* BGSAVEs per server */
	uint64_t min_window;	/* --check: writes before the save streams */
};

/* ---- The table, at offset 0 of a region; links are region offsets. ---- */

#define KV_MAGIC	"kvsave1"

struct kv_hdr {
	char magic[8];
	uint64_t size;		/* region bytes */
	uint64_t nbuckets;	/* a power of two */
	uint64_t buckets;	/* offset of uint64_t[nbuckets] */
	uint64_t heap;		/* offset of the first entry */
	uint64_t brk;		/* end of the entries allocated so far */
	uint64_t nkeys;
	uint64_t free[NCLASS];	/* freed entries by capacity / 16 */
};

struct kv_ent {
	uint64_t next;		/* next entry of the bucket, 0 at the end */
	uint64_t hash;
	uint32_t klen, vlen;
	uint32_t cap;		/* bytes for key + value, a multiple of 16 */
	uint32_t live;		/* in the table, not on a free list */
	unsigned char data[];	/* key, then value */
};

struct kv {
	unsigned char *base;
	struct kv_hdr *h;
};

static uint64_t hash_key(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n--)
		h = (h ^ *c++) * 0x100000001b3ULL;
	return h ^ h >> 32;
}

static struct kv_ent *kv_ent(const struct kv *kv, uint64_t off)
{
	return (struct kv_ent *)(kv->base + off);
}

static uint64_t *kv_bucket(const struct kv *kv, uint64_t hash)
{
	uint64_t *b = (uint64_t *)(kv->base + kv->h->buckets);

	return &b[hash & (kv->h->nbuckets - 1)];
}

/*
 * A fresh table in @size bytes at @base with a bucket per expected key:
 * there is no rehashing (Redis rehashes incrementally), so the table is
 * sized once.  Only the header and the buckets are written; the rest of
 * the region stays untouched, and so costs nothing, until it is used.
 */
static void kv_init(struct kv *kv, void *base, uint64_t size, uint64_t keys)
{
	struct kv_hdr *h = base;
	uint64_t n = 1;

	while (n < keys)
		n <<= 1;
	kv->base = base;
	kv->h = h;
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, KV_MAGIC, 8);
	h->size = size;
	h->nbuckets = n;
	h->buckets = (sizeof(*h) + 15) & ~15ULL;
	h->heap = h->buckets + n * 8;
	h->brk = h->heap;
	memset(kv->base + h->buckets, 0, n * 8);
}

/* The link that points at @key's entry, or at the 0 ending its bucket. */
static uint64_t *kv_find(const struct kv *kv, const void *key, uint32_t klen,
			 uint64_t hash)
{
	uint64_t *link = kv_bucket(kv, hash);
	struct kv_ent *e;

	for (; *link; link = &e->next) {
		e = kv_ent(kv, *link);
		if (e->hash == hash && e->klen == klen &&
		    !memcmp(e->data, key, klen))
			break;
	}
	return link;
}

/* Room for @need bytes of key and value: a freed entry, or the heap. */
static uint64_t kv_alloc(struct kv *kv, uint32_t need)
{
	uint32_t cap = (need + 15) & ~15U;
	struct kv_hdr *h = kv->h;
	uint64_t off = h->free[cap / 16];

	if (off) {
		h->free[cap / 16] = kv_ent(kv, off)->next;
	} else {
		if (h->brk + sizeof(struct kv_ent) + cap > h->size)
			return 0;
		off = h->brk;
		h->brk += sizeof(struct kv_ent) + cap;
	}
	kv_ent(kv, off)->cap = cap;
	kv_ent(kv, off)->live = 1;
	return off;
}

/* SET: 0, or -1 when the region is full (the table is unchanged). */
static int kv_set(struct kv *kv, const void *key, uint32_t klen,
		  const void *val, uint32_t vlen)
{
	uint64_t hash = hash_key(key, klen), *link, off;
	struct kv_ent *e;

	link = kv_find(kv, key, klen, hash);
	if (*link) {
		e = kv_ent(kv, *link);
		if (klen + vlen <= e->cap) {
			memcpy(e->data + klen, val, vlen);
			e->vlen = vlen;
			return 0;
		}
	}
	off = kv_alloc(kv, klen + vlen);
	if (!off)
		return -1;
	e = kv_ent(kv, off);
	e->hash = hash;
	e->klen = klen;
	e->vlen = vlen;
	memcpy(e->data, key, klen);
	memcpy(e->data + klen, val, vlen);
	if (*link) {
		/* Replace the old entry in its place in the chain. */
		struct kv_ent *old = kv_ent(kv, *link);

		e->next = old->next;
		old->live = 0;
		old->next = kv->h->free[old->cap / 16];
		kv->h->free[old->cap / 16] = *link;
		*link = off;
	} else {
		e->next = *kv_bucket(kv, hash);
		*kv_bucket(kv, hash) = off;
		kv->h->nkeys++;
	}
	return 0;
}

/* DEL: 1 if @key was there. */
static int kv_del(struct kv *kv, const void *key, uint32_t klen)
{
	uint64_t hash = hash_key(key, klen), *link, off;
	struct kv_ent *e;

	link = kv_find(kv, key, klen, hash);
	if (!*link)
		return 0;
	off = *link;
	e = kv_ent(kv, off);
	*link = e->next;
	e->live = 0;
	e->next = kv->h->free[e->cap / 16];
	kv->h->free[e->cap / 16] = off;
	kv->h->nkeys--;
	return 1;
}

static struct kv_ent *kv_get(const struct kv *kv, const void *key,
			     uint32_t klen)
{
	uint64_t *link = kv_find(kv, key, klen, hash_key(key, klen));

	return *link ? kv_ent(kv, *link) : NULL;
}

/* ---- Common helpers. ---- */

static pid_t main_pid, server_pid;
static char region_name[COWSNAP_NAME_MAX], load_name[COWSNAP_NAME_MAX];
static char kv_sock[64], kv_path[64];
static const char *const redis_sock = "/tmp/kvsave-redis.sock";
static const char *const redis_path = "/tmp/kvsave-redis.rdb";
static const char *const redis_log = "/tmp/kvsave-redis.log";
static int redis_started;

/* Destroy region *@name (if named) and forget it. */
static void destroy_region(char *name)
{
	int fd;

	if (!name[0])
		return;
	fd = csnap_open(O_RDWR);
	if (fd >= 0) {
		csnap_region_destroy(fd, name);
		close(fd);
	}
	name[0] = 0;
}

/* Remove what the run made, also when it fails. */
static void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	if (server_pid > 0) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
		server_pid = 0;
	}
	unlink(kv_sock);
	unlink(kv_path);
	unlink(redis_sock);
	unlink(redis_path);
	unlink(redis_log);
	destroy_region(region_name);
	destroy_region(load_name);
}

/* Every check fails loudly: one FAIL line, exit status 1. */
static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stdout, "FAIL kvsave_demo%s: ", getpid() == main_pid ?
		"" : " (server)");
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	if (getpid() == main_pid && redis_started) {
		char line[512];
		FILE *f = fopen(redis_log, "r");

		/* Redis says why it did not start or save. */
		while (f && fgets(line, sizeof(line), f))
			printf("| %s", line);
		if (f)
			fclose(f);
	}
	fflush(stdout);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ x >> 30) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ x >> 27) * 0x94d049bb133111ebULL;
	return x ^ x >> 31;
}

/*
 * The checksum of a save file, over its bytes before the trailer, a word
 * at a time: the writer feeds it whole buffers of a multiple of 8 bytes,
 * the reader the whole file, and both get the same sum.
 */
static uint64_t sum_bytes(uint64_t h, const unsigned char *p, size_t n)
{
	uint64_t w;

	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
	}
	if (n) {
		w = 0;
		memcpy(&w, p, n);
		h = (h ^ w ^ (uint64_t)n << 56) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
	}
	return h;
}

/*
 * Pin the calling thread to @cpu, on a guest with two CPUs or more.  The
 * client and the server's main thread share CPU 0 and the save (kvsave's
 * save process, Redis's child through bgsave_cpulist) has CPU 1: a request then
 * never waits for an idle CPU to wake up, which under TCG costs
 * milliseconds, and the save never competes with the server for a CPU.
 */
static void pin(int cpu)
{
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity: %s", strerror(errno));
}

/* The exclusive pages of snapshot @id: what it copied and alone holds. */
static int64_t snap_exclusive(int fd, uint64_t id)
{
	struct cowsnap_snap_entry *e;
	int64_t ret = -1;
	ssize_t n, i;

	n = csnap_snapshot_list(fd, &e);
	for (i = 0; i < n; i++)
		if (e[i].id == id)
			ret = e[i].exclusive_pages;
	free(e);
	return ret;
}

/* ---- Save files: "kvsave\0\1", then records, then the trailer. ---- */

#define FILE_MAGIC	"kvsave\0\1"
#define FILE_END	"kvend\0\0\1"

struct out {
	int fd;
	size_t n;
	uint64_t sum, bytes;
	unsigned char buf[1 << 16];
};

static int out_flush(struct out *o)
{
	size_t done = 0;
	ssize_t n;

	o->sum = sum_bytes(o->sum, o->buf, o->n);
	while (done < o->n) {
		n = write(o->fd, o->buf + done, o->n - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	o->bytes += o->n;
	o->n = 0;
	return 0;
}

/* Buffer @n bytes; only full buffers are flushed before the end. */
static int out_put(struct out *o, const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t k;

	while (n) {
		k = sizeof(o->buf) - o->n;
		if (k > n)
			k = n;
		memcpy(o->buf + o->n, c, k);
		o->n += k;
		c += k;
		n -= k;
		if (o->n == sizeof(o->buf) && out_flush(o))
			return -1;
	}
	return 0;
}

/*
 * Write every entry of the table in snapshot @sfd.  The heap is read in
 * order, a chunk at a time with pread(), and the entries in the table
 * (live) are written: no bucket walk, and no mapping of the snapshot.  A
 * mapped snapshot page shares the physical page of the live view until the
 * server writes it, and then every mapping of it must be zapped; read with
 * pread(), the snapshot's pages are never mapped, and the server's first
 * write to a page only gives the snapshot a copy.  The snapshot is a table
 * at rest, but a bug must not turn into a wild read: every entry is
 * checked against the heap, and the count against the header.
 */
#define CHUNK	(1 << 20)

static int save_scan(int sfd, uint64_t size, struct out *o, char *err,
		     size_t elen)
{
	uint64_t off, n = 0, start = 0, len = 0, trailer[2];
	unsigned char *buf = malloc(CHUNK);
	const struct kv_ent *e;
	struct kv_hdr h;
	uint32_t rec[2];

	if (!buf || pread(sfd, &h, sizeof(h), 0) != sizeof(h))
		goto io;
	if (memcmp(h.magic, KV_MAGIC, 8) || h.size != size || h.brk > size ||
	    h.heap != h.buckets + h.nbuckets * 8 || h.heap > h.brk) {
		snprintf(err, elen, "snapshot: bad table header");
		goto bad;
	}
	if (out_put(o, FILE_MAGIC, 8) || out_put(o, &h.nkeys, 8))
		goto io;
	for (off = h.heap; off < h.brk; off += sizeof(*e) + e->cap) {
		e = (const void *)(buf + off - start);
		if (off + sizeof(*e) > start + len ||
		    off + sizeof(*e) + e->cap > start + len) {
			/* An entry is smaller than a chunk: read from it on. */
			start = off;
			len = h.brk - off < CHUNK ? h.brk - off : CHUNK;
			if (pread(sfd, buf, len, off) != (ssize_t)len)
				goto io;
		}
		e = (const void *)(buf + off - start);
		if (off + sizeof(*e) > h.brk || e->cap % 16 ||
		    off + sizeof(*e) + e->cap > h.brk ||
		    e->klen + e->vlen > e->cap) {
			snprintf(err, elen, "snapshot: bad entry at %" PRIu64,
				 off);
			goto bad;
		}
		if (!e->live)
			continue;
		n++;
		rec[0] = e->klen;
		rec[1] = e->vlen;
		if (out_put(o, rec, 8) ||
		    out_put(o, e->data, e->klen + e->vlen))
			goto io;
	}
	if (n != h.nkeys) {
		snprintf(err, elen, "snapshot: %" PRIu64 " entries, header "
			 "says %" PRIu64, n, h.nkeys);
		goto bad;
	}
	free(buf);
	if (out_flush(o))
		goto io;
	trailer[0] = n;
	trailer[1] = o->sum;
	if (out_put(o, FILE_END, 8) || out_put(o, trailer, 16) ||
	    out_flush(o))
		goto io;
	return 0;
io:
	snprintf(err, elen, "read or write: %s", strerror(errno));
bad:
	free(buf);
	return -1;
}

/*
 * Load save file @path into the table of a new region @name: every record
 * is SET again, as a restart would.  Dies on a bad file.  Returns the
 * region's handle; the table is mapped at *@kv.
 */
static int load_file(const char *path, const char *name, uint64_t size,
		     uint64_t keys, struct kv *kv)
{
	uint64_t nkeys, n, trailer[2];
	unsigned char *f, *p, *end;
	uint32_t len[2];
	struct stat st;
	int in, fd;
	void *m;

	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st))
		die("open %s: %s", path, strerror(errno));
	if (st.st_size < 40)
		die("%s: %lld bytes, too short", path, (long long)st.st_size);
	f = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, in, 0);
	if (f == MAP_FAILED)
		die("mmap %s: %s", path, strerror(errno));
	close(in);
	end = f + st.st_size - 24;
	memcpy(trailer, end + 8, 16);
	if (memcmp(f, FILE_MAGIC, 8) || memcmp(end, FILE_END, 8))
		die("%s: bad magic", path);
	if (sum_bytes(0, f, end - f) != trailer[1])
		die("%s: checksum mismatch", path);
	memcpy(&nkeys, f + 8, 8);
	if (nkeys != trailer[0])
		die("%s: header says %" PRIu64 " keys, trailer %" PRIu64, path,
		    nkeys, trailer[0]);

	fd = csnap_open(O_RDWR);
	if (fd < 0)
		die("csnap_open: %s", strerror(errno));
	if (csnap_region_create(fd, name, size, 0600))
		die("csnap_region_create %s: %s", name, strerror(errno));
	m = csnap_region_map(fd, 0, PROT_READ | PROT_WRITE);
	if (!m)
		die("csnap_region_map: %s", strerror(errno));
	kv_init(kv, m, size, keys);
	for (p = f + 16, n = 0; p < end; n++) {
		if (end - p < 8)
			die("%s: truncated record %" PRIu64, path, n);
		memcpy(len, p, 8);
		p += 8;
		if (len[1] > VAL_MAX ||
		    (uint64_t)(end - p) < (uint64_t)len[0] + len[1])
			die("%s: bad record %" PRIu64, path, n);
		if (kv_get(kv, p, len[0]))
			die("%s: key %.*s twice", path, (int)len[0], p);
		if (kv_set(kv, p, len[0], p + len[0], len[1]))
			die("%s: region full at record %" PRIu64, path, n);
		p += len[0] + len[1];
	}
	if (n != nkeys || kv->h->nkeys != nkeys)
		die("%s: %" PRIu64 " records, %" PRIu64 " expected", path, n,
		    nkeys);
	munmap(f, st.st_size);
	return fd;
}

/* ---- The kvsave server (a child process). ---- */

struct sclient {
	int fd;
	unsigned char *in, *out;
	size_t nin, capin, nout, capout;
};

/* What the server and its save process share (MAP_SHARED memory). */
struct save_state {
	uint64_t writes;	/* SETs and DELs so far */
	int saving;		/* the handover to and from the save process */
	uint64_t snap_id, snap_writes;
	uint64_t saves, cow_bytes;
	int last_ok;
	char err[160];
};

struct server {
	const struct config *cfg;
	int fd;			/* handle attached to the region */
	struct kv kv;
	uint64_t size;		/* of the region */
	const char *path;	/* the save file */
	struct sclient cl[MAX_CLIENTS];
	uint64_t fork_usec;	/* the last snapshot ioctl */
	int quit;
	struct save_state *st;
	int req;		/* snapshot ids to the save process */
	pid_t saver;
};

static void cl_reply(struct sclient *c, const void *p, size_t n)
{
	if (c->nout + n > c->capout) {
		while (c->nout + n > c->capout)
			c->capout = c->capout ? 2 * c->capout : 4096;
		c->out = realloc(c->out, c->capout);
		if (!c->out)
			die("out of memory");
	}
	memcpy(c->out + c->nout, p, n);
	c->nout += n;
}

static void __attribute__((format(printf, 2, 3)))
cl_printf(struct sclient *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	cl_reply(c, buf, n);
}

static void save_one(struct server *s)
{
	struct save_state *st = s->st;
	char tmp[80];
	struct out *o;
	int sfd = -1, ok = 0;
	int64_t pages;

	/*
	 * The correctness run makes sure the walk reads pages the server has
	 * changed since the snapshot: it waits for a few of its writes.
	 */
	if (s->cfg->check)
		while (__atomic_load_n(&st->writes, __ATOMIC_RELAXED) <
		       st->snap_writes + s->cfg->min_window)
			usleep(1000);
	o = calloc(1, sizeof(*o));
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->path);
	sfd = csnap_snapshot_open(s->fd, st->snap_id, O_CLOEXEC);
	if (!o || sfd < 0) {
		snprintf(st->err, sizeof(st->err), "snapshot_open: %s",
			 strerror(errno));
		goto out;
	}
	o->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (o->fd < 0)
		snprintf(st->err, sizeof(st->err), "open %s: %s", tmp,
			 strerror(errno));
	else
		ok = !save_scan(sfd, s->size, o, st->err, sizeof(st->err));
	/* Like Redis: fsync, then rename into place. */
	if (ok && fsync(o->fd)) {
		snprintf(st->err, sizeof(st->err), "fsync: %s",
			 strerror(errno));
		ok = 0;
	}
	if (o->fd >= 0 && close(o->fd) && ok) {
		snprintf(st->err, sizeof(st->err), "close: %s",
			 strerror(errno));
		ok = 0;
	}
	if (ok && rename(tmp, s->path)) {
		snprintf(st->err, sizeof(st->err), "rename: %s",
			 strerror(errno));
		ok = 0;
	}
out:
	if (sfd >= 0)
		close(sfd);
	/* What the snapshot kept: pages the server wrote since it. */
	pages = snap_exclusive(s->fd, st->snap_id);
	st->cow_bytes = pages > 0 ? pages * 4096 : 0;
	if (csnap_snapshot_delete(s->fd, st->snap_id))
		ok = 0;
	free(o);
	st->last_ok = ok;
	st->saves++;
	__atomic_store_n(&st->saving, 0, __ATOMIC_RELEASE);
}

/*
 * The save process, forked once when the server starts (its table is
 * still empty then), not per save: it saves each snapshot whose id the
 * server sends, and shares no memory with the server but its status.
 */
static void __attribute__((noreturn)) saver_main(struct server *s, int req)
{
	uint64_t id;

	munmap(s->kv.base, s->size);
	pin(1);
	while (read(req, &id, sizeof(id)) == sizeof(id))
		save_one(s);
	_exit(0);
}

static void bgsave(struct server *s, struct sclient *c)
{
	double t;

	if (__atomic_load_n(&s->st->saving, __ATOMIC_ACQUIRE)) {
		cl_printf(c, "-ERR Background save already in progress\r\n");
		return;
	}
	/* Between two commands: the table is at rest. */
	t = now();
	if (csnap_snapshot_create(s->fd, "bgsave", &s->st->snap_id)) {
		cl_printf(c, "-ERR snapshot: %s\r\n", strerror(errno));
		return;
	}
	s->fork_usec = (now() - t) * 1e6;
	s->st->snap_writes = s->st->writes;
	s->st->err[0] = 0;
	s->st->saving = 1;
	if (write(s->req, &s->st->snap_id, 8) != 8)
		die("save process: %s", strerror(errno));
	cl_printf(c, "+Background saving started\r\n");
}

static void info(struct server *s, struct sclient *c)
{
	struct save_state *st = s->st;
	struct cowsnap_info ri;
	char buf[768];
	int saving = __atomic_load_n(&st->saving, __ATOMIC_ACQUIRE), n;

	if (csnap_region_info(s->fd, &ri))
		memset(&ri, 0, sizeof(ri));
	n = snprintf(buf, sizeof(buf),
		     "# Memory\r\nused_memory:%llu\r\n"
		     "# Persistence\r\nrdb_bgsave_in_progress:%d\r\n"
		     "rdb_last_bgsave_status:%s\r\nrdb_saves:%" PRIu64 "\r\n"
		     "rdb_last_cow_size:%" PRIu64 "\r\n"
		     "# Stats\r\nlatest_fork_usec:%" PRIu64 "\r\n"
		     "# Keyspace\r\ndb0:keys=%" PRIu64 "\r\n",
		     (unsigned long long)ri.resident_pages * 4096, saving,
		     saving || st->last_ok ? "ok" : "err", st->saves,
		     saving ? 0 : st->cow_bytes, s->fork_usec, s->kv.h->nkeys);
	cl_printf(c, "$%d\r\n%s\r\n", n, buf);
	if (!saving && !st->last_ok && st->err[0])
		fprintf(stderr, "kvsave: save failed: %s\n", st->err);
}

/* The check mode's save process waits for writes after its snapshot. */
static void count_write(struct save_state *st)
{
	__atomic_store_n(&st->writes, st->writes + 1, __ATOMIC_RELAXED);
}

static int arg_is(const char *a, size_t n, const char *name)
{
	return n == strlen(name) && !strncasecmp(a, name, n);
}

static void command(struct server *s, struct sclient *c, int argc,
		    char **argv, size_t *len)
{
	const char *cmd = argv[0];
	struct kv_ent *e;
	size_t n = len[0];

	if (arg_is(cmd, n, "SET") && argc == 3) {
		if (len[1] > 255 || len[2] > VAL_MAX)
			cl_printf(c, "-ERR key or value too long\r\n");
		else if (kv_set(&s->kv, argv[1], len[1], argv[2], len[2]))
			cl_printf(c, "-OOM region full\r\n");
		else
			cl_printf(c, "+OK\r\n");
		count_write(s->st);
	} else if (arg_is(cmd, n, "DEL") && argc == 2) {
		cl_printf(c, ":%d\r\n", kv_del(&s->kv, argv[1], len[1]));
		count_write(s->st);
	} else if (arg_is(cmd, n, "GET") && argc == 2) {
		e = kv_get(&s->kv, argv[1], len[1]);
		if (!e) {
			cl_printf(c, "$-1\r\n");
		} else {
			cl_printf(c, "$%u\r\n", e->vlen);
			cl_reply(c, e->data + e->klen, e->vlen);
			cl_reply(c, "\r\n", 2);
		}
	} else if (arg_is(cmd, n, "DBSIZE")) {
		cl_printf(c, ":%" PRIu64 "\r\n", s->kv.h->nkeys);
	} else if (arg_is(cmd, n, "BGSAVE")) {
		bgsave(s, c);
	} else if (arg_is(cmd, n, "INFO")) {
		info(s, c);
	} else if (arg_is(cmd, n, "PING")) {
		cl_printf(c, "+PONG\r\n");
	} else if (arg_is(cmd, n, "SHUTDOWN")) {
		s->quit = 1;
	} else {
		cl_printf(c, "-ERR unknown command or arity\r\n");
	}
}

/*
 * "<@type><digits>\r\n" at *@p: 1 and the number (*@p moves past it), 0
 * while incomplete, -1 when malformed.
 */
static int parse_num(unsigned char **p, unsigned char *end, char type,
		     long *v)
{
	unsigned char *q = *p, *digits;

	if (q == end)
		return 0;
	if (*q++ != type)
		return -1;
	*v = 0;
	for (digits = q; q < end && *q >= '0' && *q <= '9' && *v < (1L << 40);)
		*v = *v * 10 + *q++ - '0';
	if (end - q < 2)
		return 0;
	if (q == digits || q[0] != '\r' || q[1] != '\n')
		return -1;
	*p = q + 2;
	return 1;
}

/*
 * One RESP command (an array of bulk strings) at the start of the @n
 * bytes at @in: its length, 0 while incomplete, -1 when malformed.
 */
static long parse_cmd(unsigned char *in, size_t n_in, int *argc, char **argv,
		      size_t *len)
{
	unsigned char *p = in, *end = in + n_in;
	long n, l, i;
	int r;

	r = parse_num(&p, end, '*', &n);
	if (r <= 0)
		return r;
	if (n < 1 || n > MAX_ARGS)
		return -1;
	for (i = 0; i < n; i++) {
		r = parse_num(&p, end, '$', &l);
		if (r <= 0)
			return r;
		if (l > VAL_MAX + 64)
			return -1;
		if (end - p < l + 2)
			return 0;
		if (p[l] != '\r' || p[l + 1] != '\n')
			return -1;
		argv[i] = (char *)p;
		len[i] = l;
		p += l + 2;
	}
	*argc = n;
	return p - in;
}

static void cl_close(struct sclient *c)
{
	close(c->fd);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Read what @c sent and run every complete command in it. */
static void cl_input(struct server *s, struct sclient *c)
{
	char *argv[MAX_ARGS];
	size_t len[MAX_ARGS];
	long used, done = 0;
	ssize_t n;
	int argc;

	if (c->capin - c->nin < 4096) {
		c->capin = c->capin ? 2 * c->capin : 1 << 16;
		c->in = realloc(c->in, c->capin);
		if (!c->in)
			die("out of memory");
	}
	n = read(c->fd, c->in + c->nin, c->capin - c->nin);
	if (n <= 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		cl_close(c);
		return;
	}
	c->nin += n;
	for (;;) {
		used = parse_cmd(c->in + done, c->nin - done, &argc, argv, len);
		if (used < 0) {
			cl_close(c);
			return;
		}
		if (!used)
			break;
		command(s, c, argc, argv, len);
		done += used;
	}
	memmove(c->in, c->in + done, c->nin - done);
	c->nin -= done;
}

static void cl_output(struct sclient *c)
{
	ssize_t n = write(c->fd, c->out, c->nout);

	if (n < 0) {
		if (errno != EINTR && errno != EAGAIN)
			cl_close(c);
		return;
	}
	memmove(c->out, c->out + n, c->nout - n);
	c->nout -= n;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(fd, 16))
		die("listen on %s: %s", path, strerror(errno));
	return fd;
}

/* The event loop, like Redis's: one thread, poll(), commands in order. */
static void __attribute__((noreturn))
server_main(const struct config *cfg, const char *name)
{
	struct pollfd pfd[MAX_CLIENTS + 1];
	static struct server srv;
	struct server *s = &srv;
	int lfd, i, fd, req[2];
	void *m;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	s->cfg = cfg;
	s->path = kv_path;
	s->fd = csnap_open(O_RDWR);
	if (s->fd < 0)
		die("csnap_open: %s", strerror(errno));
	if (csnap_region_create(s->fd, name, cfg->region, 0600))
		die("csnap_region_create: %s", strerror(errno));
	m = csnap_region_map(s->fd, 0, PROT_READ | PROT_WRITE);
	if (!m)
		die("csnap_region_map: %s", strerror(errno));
	kv_init(&s->kv, m, cfg->region, cfg->keys);
	s->size = cfg->region;
	s->st = mmap(NULL, sizeof(*s->st), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s->st == MAP_FAILED || pipe2(req, O_CLOEXEC))
		die("mmap or pipe: %s", strerror(errno));
	s->st->last_ok = 1;
	s->saver = fork();
	if (s->saver < 0)
		die("fork: %s", strerror(errno));
	if (!s->saver) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(req[1]);
		saver_main(s, req[0]);
	}
	close(req[0]);
	s->req = req[1];
	for (i = 0; i < MAX_CLIENTS; i++)
		s->cl[i].fd = -1;
	lfd = listen_unix(kv_sock);
	while (!s->quit) {
		pfd[0].fd = lfd;
		pfd[0].events = POLLIN;
		for (i = 0; i < MAX_CLIENTS; i++) {
			pfd[i + 1].fd = s->cl[i].fd;
			pfd[i + 1].events = POLLIN |
					    (s->cl[i].nout ? POLLOUT : 0);
		}
		if (poll(pfd, MAX_CLIENTS + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		if (pfd[0].revents & POLLIN) {
			fd = accept4(lfd, NULL, NULL,
				     SOCK_CLOEXEC | SOCK_NONBLOCK);
			for (i = 0; fd >= 0 && i < MAX_CLIENTS; i++)
				if (s->cl[i].fd < 0) {
					s->cl[i].fd = fd;
					fd = -1;
				}
			if (fd >= 0)
				close(fd);
		}
		for (i = 0; i < MAX_CLIENTS && !s->quit; i++) {
			if (s->cl[i].fd < 0 || s->cl[i].fd != pfd[i + 1].fd)
				continue;
			if (pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR))
				cl_input(s, &s->cl[i]);
			if (s->cl[i].fd >= 0 && s->cl[i].nout)
				cl_output(&s->cl[i]);
		}
	}
	while (__atomic_load_n(&s->st->saving, __ATOMIC_ACQUIRE))
		usleep(1000);
	close(s->req);
	if (waitpid(s->saver, &i, 0) != s->saver || i)
		die("save process: status 0x%x", i);
	_exit(0);
}

/* ---- The client: one connection, requests one at a time. ---- */

struct conn {
	int fd;
	char *buf;		/* received, [r, w) not yet consumed */
	size_t r, w, cap;
	char *cmd;		/* the request being built */
	size_t ncmd, capcmd;
};

struct reply {
	char type;		/* '+', '-', ':', '$' (NULL bulk: len -1) */
	long long num;
	const char *str;	/* in the connection's buffer, NUL-ended */
	long len;
};

static void conn_open(struct conn *c, const char *path, double secs)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	double t0 = now();

	memset(c, 0, sizeof(*c));
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	for (;;) {
		c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			die("socket: %s", strerror(errno));
		if (!connect(c->fd, (struct sockaddr *)&a, sizeof(a)))
			return;
		close(c->fd);
		if (now() - t0 > secs)
			die("connect %s: %s", path, strerror(errno));
		usleep(20000);
	}
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c->buf);
	free(c->cmd);
}

static void cmd_put(struct conn *c, const void *p, size_t n)
{
	if (c->ncmd + n > c->capcmd) {
		while (c->ncmd + n > c->capcmd)
			c->capcmd = c->capcmd ? 2 * c->capcmd : 1 << 16;
		c->cmd = realloc(c->cmd, c->capcmd);
		if (!c->cmd)
			die("out of memory");
	}
	memcpy(c->cmd + c->ncmd, p, n);
	c->ncmd += n;
}

/* Append one request of @argc arguments (NUL-ended, or of @len bytes). */
static void cmd_add(struct conn *c, int argc, const char *const *argv,
		    const size_t *len)
{
	char hdr[32];
	size_t l;
	int i;

	cmd_put(c, hdr, snprintf(hdr, sizeof(hdr), "*%d\r\n", argc));
	for (i = 0; i < argc; i++) {
		l = len ? len[i] : strlen(argv[i]);
		cmd_put(c, hdr, snprintf(hdr, sizeof(hdr), "$%zu\r\n", l));
		cmd_put(c, argv[i], l);
		cmd_put(c, "\r\n", 2);
	}
}

static void cmd_send(struct conn *c)
{
	size_t done = 0;
	ssize_t n;

	while (done < c->ncmd) {
		n = write(c->fd, c->cmd + done, c->ncmd - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("send: %s", n ? strerror(errno) : "0");
		done += n;
	}
	c->ncmd = 0;
}

/* At least @n unconsumed bytes in the buffer. */
static void conn_need(struct conn *c, size_t n)
{
	ssize_t k;

	if (c->r == c->w)
		c->r = c->w = 0;
	while (c->w - c->r < n) {
		if (c->cap - c->r < n + 1 || c->cap - c->w < 4096) {
			memmove(c->buf, c->buf + c->r, c->w - c->r);
			c->w -= c->r;
			c->r = 0;
			while (c->cap < n + 4096 + 1)
				c->cap = c->cap ? 2 * c->cap : 1 << 16;
			c->buf = realloc(c->buf, c->cap);
			if (!c->buf)
				die("out of memory");
		}
		k = read(c->fd, c->buf + c->w, c->cap - c->w - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			die("server closed the connection (%s)",
			    k ? strerror(errno) : "EOF");
		c->w += k;
	}
}

/* One reply; its strings stay valid until the next call. */
static void read_reply(struct conn *c, struct reply *rp)
{
	char *nl;
	size_t off = 0;

	for (;;) {
		conn_need(c, off + 1);
		nl = memchr(c->buf + c->r + off, '\n', c->w - c->r - off);
		if (nl)
			break;
		off = c->w - c->r;
	}
	if (nl == c->buf + c->r || nl[-1] != '\r')
		die("malformed reply");
	nl[-1] = 0;
	rp->type = c->buf[c->r];
	rp->str = c->buf + c->r + 1;
	rp->num = strtoll(rp->str, NULL, 10);
	rp->len = strlen(rp->str);
	c->r = nl + 1 - c->buf;
	if (rp->type != '$' || rp->num < 0) {
		rp->len = rp->type == '$' ? -1 : rp->len;
		return;
	}
	rp->len = rp->num;
	conn_need(c, rp->len + 2);
	rp->str = c->buf + c->r;
	c->buf[c->r + rp->len] = 0;
	c->r += rp->len + 2;
}

static void expect_status(struct conn *c, const char *want, const char *what)
{
	struct reply r;

	read_reply(c, &r);
	if (r.type != '+' || strcmp(r.str, want))
		die("%s: reply %c%s, expected +%s", what, r.type, r.str, want);
}

static long long call_int(struct conn *c, const char *cmd)
{
	struct reply r;

	cmd_add(c, 1, &cmd, NULL);
	cmd_send(c);
	read_reply(c, &r);
	if (r.type != ':')
		die("%s: reply %c%s", cmd, r.type, r.str);
	return r.num;
}

/* Field @key of an INFO text, or -1. */
static long long info_field(const char *text, const char *key)
{
	size_t n = strlen(key);
	const char *p;

	for (p = text; (p = strstr(p, key)); p += n)
		if ((p == text || p[-1] == '\n') && p[n] == ':')
			return strtoll(p + n + 1, NULL, 10);
	return -1;
}

/* INFO, copied into @buf. */
static void call_info(struct conn *c, char *buf, size_t len)
{
	const char *cmd = "INFO";
	struct reply r;

	cmd_add(c, 1, &cmd, NULL);
	cmd_send(c);
	read_reply(c, &r);
	if (r.type != '$' || r.len < 0)
		die("INFO: reply %c%s", r.type, r.len < 0 ? "(nil)" : r.str);
	snprintf(buf, len, "%s", r.str);
}

/* ---- The writer and its model. ---- */

struct writer {
	const struct config *cfg;
	struct conn c;
	uint32_t *ver;		/* per key: 0 absent, else its version */
	uint32_t *snap;		/* ver when BGSAVE returned */
	uint32_t seq;
	uint64_t rng, ops;
	double *lat;		/* request round trips, seconds */
	size_t nlat, caplat;
};

/* What one BGSAVE measured. */
struct save_res {
	double reply;		/* BGSAVE round trip */
	double dur;		/* from BGSAVE sent to the file in place */
	double ops_s, p99, worst;	/* the writer meanwhile */
	long long fork_usec, cow_bytes;
	int64_t file_bytes;
	uint64_t writes;	/* the writer's requests meanwhile */
	double per_write;	/* cow_bytes / writes */
	uint64_t stale;		/* keys the live table changed meanwhile */
};

struct run_res {
	const char *name;
	double ops_s, p99, worst;	/* the writer alone */
	struct save_res s[MAX_SAVES];
	int n;
	long long mem;		/* INFO used_memory at the end */
};

static uint64_t rnd(struct writer *w)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 0x2545f4914f6cdd1dULL;
}

static void key_of(uint32_t id, char *key)
{
	char buf[KEY_LEN + 1];

	snprintf(buf, sizeof(buf), "key:%012u", id);
	memcpy(key, buf, KEY_LEN);
}

/* The value of version @ver of key @id: its length and bytes in @buf. */
static size_t value_of(const struct config *cfg, uint32_t id, uint32_t ver,
		       char *buf)
{
	uint64_t x = mix((uint64_t)id << 32 | ver);
	size_t len = cfg->vmin + x % (cfg->vmax - cfg->vmin + 1), i;

	for (i = 0; i < len; i++) {
		if (!(i % 8))
			x = mix(x);
		buf[i] = 'a' + (x >> 8 * (i % 8)) % 26;
	}
	return len;
}

static void lat_add(struct writer *w, double t)
{
	if (w->nlat == w->caplat) {
		w->caplat = w->caplat ? 2 * w->caplat : 1 << 16;
		w->lat = realloc(w->lat, w->caplat * sizeof(*w->lat));
		if (!w->lat)
			die("out of memory");
	}
	w->lat[w->nlat++] = t;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void lat_stats(struct writer *w, double secs, double *ops_s,
		      double *p99, double *worst)
{
	size_t n = w->nlat;

	*ops_s = n / secs;
	*p99 = *worst = 0;
	if (!n)
		return;
	qsort(w->lat, n, sizeof(*w->lat), cmp_double);
	*p99 = w->lat[(size_t)((n - 1) * 0.99)];
	*worst = w->lat[n - 1];
}

/* SET key version or DEL key, in the model too. */
static void add_write(struct writer *w, uint32_t id, int del)
{
	char key[KEY_LEN], val[VAL_MAX];
	const char *argv[3] = { del ? "DEL" : "SET", key, val };
	size_t len[3] = { 3, KEY_LEN, 0 };

	key_of(id, key);
	if (del) {
		w->ver[id] = 0;
	} else {
		w->ver[id] = ++w->seq;
		len[2] = value_of(w->cfg, id, w->seq, val);
	}
	cmd_add(&w->c, del ? 2 : 3, argv, len);
}

/*
 * One write, one request at a time: SET of a random key, or one time in
 * 16 DEL.  The reply must agree with the model; its round trip is a
 * latency sample.
 */
static void one_op(struct writer *w)
{
	uint32_t id = rnd(w) % w->cfg->keys;
	int del = !(rnd(w) % 16), had = w->ver[id] != 0;
	struct reply r;
	double t = now();

	add_write(w, id, del);
	cmd_send(&w->c);
	read_reply(&w->c, &r);
	lat_add(w, now() - t);
	w->ops++;
	if (del ? r.type != ':' || r.num != had :
		  r.type != '+' || strcmp(r.str, "OK"))
		die("%s key %u: reply %c%s", del ? "DEL" : "SET", id, r.type,
		    r.str);
}

static void writer_alone(struct writer *w, double secs, double *ops_s,
			 double *p99, double *worst)
{
	double t0 = now();

	w->nlat = 0;
	while (now() - t0 < secs)
		one_op(w);
	lat_stats(w, now() - t0, ops_s, p99, worst);
}

/* All keys, version 1 onwards, in pipelined batches. */
static void load_keys(struct writer *w)
{
	uint32_t id, i, n;

	for (id = 0; id < w->cfg->keys; id += n) {
		n = w->cfg->keys - id < BATCH ? w->cfg->keys - id : BATCH;
		for (i = 0; i < n; i++)
			add_write(w, id + i, 0);
		cmd_send(&w->c);
		for (i = 0; i < n; i++)
			expect_status(&w->c, "OK", "load SET");
	}
}

static uint64_t model_keys(const struct writer *w, const uint32_t *ver)
{
	uint64_t n = 0;
	uint32_t id;

	for (id = 0; id < w->cfg->keys; id++)
		n += ver[id] != 0;
	return n;
}

/* GET of every key, pipelined, and DBSIZE against the model. */
static void check_live(struct writer *w, const char *server)
{
	char key[KEY_LEN], val[VAL_MAX];
	const char *argv[2] = { "GET", key };
	size_t len[2] = { 3, KEY_LEN }, vlen;
	uint32_t id, i, n;
	struct reply r;

	for (id = 0; id < w->cfg->keys; id += n) {
		n = w->cfg->keys - id < BATCH ? w->cfg->keys - id : BATCH;
		for (i = 0; i < n; i++) {
			key_of(id + i, key);
			cmd_add(&w->c, 2, argv, len);
		}
		cmd_send(&w->c);
		for (i = id; i < id + n; i++) {
			read_reply(&w->c, &r);
			vlen = 0;
			if (w->ver[i])
				vlen = value_of(w->cfg, i, w->ver[i], val);
			if (r.type != '$' || (w->ver[i] ?
					      r.len != (long)vlen ||
					      memcmp(r.str, val, vlen) :
					      r.len != -1))
				die("%s: GET key %u does not return version %u",
				    server, i, w->ver[i]);
		}
	}
	if ((uint64_t)call_int(&w->c, "DBSIZE") != model_keys(w, w->ver))
		die("%s: DBSIZE %lld, the model has %" PRIu64, server,
		    call_int(&w->c, "DBSIZE"), model_keys(w, w->ver));
}

/*
 * The save file must hold exactly the model at BGSAVE: load it into a new
 * region's table and look every key up, present or not.
 */
static void check_kv_file(struct writer *w, struct save_res *sr)
{
	char key[KEY_LEN], val[VAL_MAX];
	struct kv_ent *e;
	struct kv kv;
	uint32_t id;
	size_t vlen;
	int fd;

	snprintf(load_name, sizeof(load_name), "kvsave-load-%d",
		 (int)main_pid);
	fd = load_file(kv_path, load_name, w->cfg->region, w->cfg->keys, &kv);
	if (kv.h->nkeys != model_keys(w, w->snap))
		die("saved file: %" PRIu64 " keys, %" PRIu64 " at the snapshot",
		    kv.h->nkeys, model_keys(w, w->snap));
	sr->stale = 0;
	for (id = 0; id < w->cfg->keys; id++) {
		key_of(id, key);
		e = kv_get(&kv, key, KEY_LEN);
		sr->stale += w->snap[id] != w->ver[id];
		if (!w->snap[id]) {
			if (e)
				die("saved file: key %u, deleted at the "
				    "snapshot, is there", id);
			continue;
		}
		vlen = value_of(w->cfg, id, w->snap[id], val);
		if (!e || e->vlen != vlen ||
		    memcmp(e->data + KEY_LEN, val, vlen))
			die("saved file: key %u is not version %u, its value "
			    "at the snapshot (live: %u)", id, w->snap[id],
			    w->ver[id]);
	}
	munmap(kv.base, w->cfg->region);
	close(fd);
	destroy_region(load_name);
	if (w->cfg->check && !sr->stale)
		die("no key changed during the save: nothing was checked");
}

/*
 * BGSAVE from the writer's connection, so that the model when it returns
 * is the table at the save's start; then the writer goes on until the
 * save's file is in place and INFO says the save is over.
 */
static void one_save(struct writer *w, const char *path, struct save_res *sr,
		     int is_kv)
{
	const char *cmd = "BGSAVE";
	char text[32768];
	struct stat st;
	double t0, t1;
	uint64_t ops0;

	unlink(path);
	t0 = now();
	cmd_add(&w->c, 1, &cmd, NULL);
	cmd_send(&w->c);
	expect_status(&w->c, "Background saving started", "BGSAVE");
	sr->reply = now() - t0;
	memcpy(w->snap, w->ver, w->cfg->keys * sizeof(*w->ver));
	w->nlat = 0;
	ops0 = w->ops;
	do {
		one_op(w);
		/* A failed save leaves no file (die() shows Redis's log). */
		if (now() - t0 > 60)
			die("no %s 60 s after BGSAVE", path);
	} while (stat(path, &st));
	t1 = now();
	sr->dur = t1 - t0;
	sr->writes = w->ops - ops0;
	sr->file_bytes = st.st_size;
	lat_stats(w, t1 - t0, &sr->ops_s, &sr->p99, &sr->worst);
	/* Redis notices its child's end in its cron, up to 100 ms later. */
	for (;;) {
		call_info(&w->c, text, sizeof(text));
		if (info_field(text, "rdb_bgsave_in_progress") == 0)
			break;
		if (now() - t1 > 30)
			die("BGSAVE still in progress 30 s after its file");
		usleep(5000);
	}
	if (!strstr(text, "rdb_last_bgsave_status:ok"))
		die("BGSAVE failed: rdb_last_bgsave_status is not ok");
	sr->fork_usec = info_field(text, "latest_fork_usec");
	sr->cow_bytes = info_field(text, "rdb_last_cow_size");
	sr->per_write = sr->writes ? (double)sr->cow_bytes / sr->writes : 0;
	if (is_kv) {
		check_kv_file(w, sr);
		printf("ok: save %s holds exactly the %" PRIu64 " keys of the "
		       "snapshot; %" PRIu64 " keys changed during the save, %"
		       PRIu64 " writes\n", path, model_keys(w, w->snap),
		       sr->stale, sr->writes);
	}
}

/* Fork the kvsave server, or exec redis-server; the socket to speak to. */
static const char *start_server(const struct config *cfg, int is_kv)
{
	char *const redis_argv[] = {
		"redis-server", "--port", "0", "--unixsocket",
		(char *)redis_sock, "--save", "", "--appendonly", "no",
		"--dir", "/tmp", "--dbfilename", "kvsave-redis.rdb",
		"--rdbcompression", "no", "--daemonize", "no",
		"--bgsave_cpulist", "1",
		"--logfile", (char *)redis_log, NULL
	};

	fflush(stdout);
	redis_started |= !is_kv;
	server_pid = fork();
	if (server_pid < 0)
		die("fork: %s", strerror(errno));
	if (!server_pid) {
		if (is_kv)
			server_main(cfg, region_name);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(REDIS, redis_argv);
		fprintf(stderr, "exec %s: %s\n", REDIS, strerror(errno));
		_exit(127);
	}
	return is_kv ? kv_sock : redis_sock;
}

static void stop_server(struct writer *w, const char *name)
{
	const char *argv[2] = { "SHUTDOWN", "NOSAVE" };
	int status;

	cmd_add(&w->c, 2, argv, NULL);
	cmd_send(&w->c);
	if (waitpid(server_pid, &status, 0) != server_pid)
		die("waitpid: %s", strerror(errno));
	server_pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		die("%s ended with status 0x%x", name, status);
	conn_close(&w->c);
}

/* One server: load, the writer alone, then the saves under the writer. */
static void run_server(struct writer *w, struct run_res *rr, int is_kv)
{
	const struct config *cfg = w->cfg;
	const char *path = is_kv ? kv_path : redis_path;
	char text[32768];
	double t;
	int i;

	memset(w->ver, 0, cfg->keys * sizeof(*w->ver));
	w->rng = 0x5eed5eedULL;
	conn_open(&w->c, start_server(cfg, is_kv), 30);
	t = now();
	load_keys(w);
	if ((uint64_t)call_int(&w->c, "DBSIZE") != cfg->keys)
		die("%s: DBSIZE after the load is not %u", rr->name, cfg->keys);
	printf("%s: loaded %u keys in %.2f s\n", rr->name, cfg->keys,
	       now() - t);
	writer_alone(w, cfg->alone_s, &rr->ops_s, &rr->p99, &rr->worst);
	printf("%s: writer alone %.0f ops/s, p99 %.2f ms, worst %.2f ms\n",
	       rr->name, rr->ops_s, rr->p99 * 1e3, rr->worst * 1e3);
	for (i = 0; i < cfg->saves; i++) {
		struct save_res *sr = &rr->s[i];

		if (i) {
			double a, b, c;

			writer_alone(w, cfg->between_s, &a, &b, &c);
		}
		one_save(w, path, sr, is_kv);
		printf("%s save %d: BGSAVE reply %.2f ms, latest_fork_usec "
		       "%lld, %.3f s to the file (%" PRId64 " KiB), "
		       "rdb_last_cow_size %lld KiB; writer %.0f ops/s, p99 "
		       "%.2f ms, worst %.2f ms\n",
		       rr->name, i + 1, sr->reply * 1e3, sr->fork_usec, sr->dur,
		       sr->file_bytes / 1024, sr->cow_bytes / 1024, sr->ops_s,
		       sr->p99 * 1e3, sr->worst * 1e3);
	}
	rr->n = cfg->saves;
	check_live(w, rr->name);
	printf("ok: %s: GET of every key and DBSIZE agree with the writer's "
	       "model\n", rr->name);
	call_info(&w->c, text, sizeof(text));
	rr->mem = info_field(text, "used_memory");
	stop_server(w, rr->name);
	unlink(path);
	/* The next server gets the memory back. */
	if (is_kv)
		destroy_region(region_name);
}

/* The median of field @off (a double or long long) over the saves. */
static double median(const struct run_res *rr, size_t off, int is_ll)
{
	double v[MAX_SAVES];
	int i;

	for (i = 0; i < rr->n; i++) {
		const char *p = (const char *)&rr->s[i] + off;

		v[i] = is_ll ? *(const long long *)p : *(const double *)p;
	}
	qsort(v, rr->n, sizeof(v[0]), cmp_double);
	return v[rr->n / 2];
}

#define MED(rr, f) median(rr, offsetof(struct save_res, f), 0)
#define MED_LL(rr, f) median(rr, offsetof(struct save_res, f), 1)

static void print_results(const struct config *cfg, const struct run_res *r,
			  int n)
{
	int i;

	printf("\n### BGSAVE under a write load\n\n");
	printf("%u keys of %u-byte values; the writer sends SET (or 1 in 16 "
	       "DEL) of a random key, one request at a time, over a unix "
	       "socket; median of %d saves.\n\n", cfg->keys, cfg->vmax,
	       cfg->saves);
	printf("| server | pause at save start | extra memory during the save "
	       "| writer p99 during the save | writer ops/s during the save | "
	       "save duration | writer alone: p99, ops/s | file |\n");
	printf("|---|---|---|---|---|---|---|---|\n");
	for (i = 0; i < n; i++)
		printf("| %s | %.2f ms %s (BGSAVE reply %.2f ms) | %.1f MiB "
		       "%s, %.1f KiB per write | %.2f ms (worst %.1f ms) | "
		       "%.0f | %.3f s | %.2f ms, %.0f | %.1f MiB |\n",
		       r[i].name, MED_LL(&r[i], fork_usec) / 1e3,
		       i ? "fork (latest_fork_usec)" : "snapshot ioctl",
		       MED(&r[i], reply) * 1e3,
		       MED_LL(&r[i], cow_bytes) / 1048576.0,
		       i ? "(rdb_last_cow_size)" : "copied by cowsnap",
		       MED(&r[i], per_write) / 1024,
		       MED(&r[i], p99) * 1e3, MED(&r[i], worst) * 1e3,
		       MED(&r[i], ops_s), MED(&r[i], dur), r[i].p99 * 1e3,
		       r[i].ops_s, r[i].s[0].file_bytes / 1048576.0);
	printf("\nData set in memory: ");
	for (i = 0; i < n; i++)
		printf("%s%s %.1f MiB", i ? ", " : "", r[i].name,
		       r[i].mem / 1048576.0);
	printf(" (kvsave: resident region pages; redis: used_memory).\n\n");
}

int main(int argc, char **argv)
{
	static const struct config check = {
		.check = 1, .keys = 3000, .vmin = 0, .vmax = 300,
		.region = 16 << 20, .alone_s = 0.1, .between_s = 0.05,
		.saves = 2, .min_window = 100,
	}, measure = {
		.keys = 200000, .vmin = 100, .vmax = 100, .region = 64 << 20,
		.alone_s = 2.0, .between_s = 0.5, .saves = 3,
	};
	struct run_res res[2] = {
		{ .name = "kvsave (cowsnap)" }, { .name = "redis-server" },
	};
	static struct writer wr;
	struct writer *w = &wr;
	double t0 = now();
	int n = 1;

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--check"))) {
		fprintf(stderr, "usage: %s [--check]\n", argv[0]);
		return 2;
	}
	w->cfg = argc == 2 ? &check : &measure;
	main_pid = getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	pin(0);
	snprintf(region_name, sizeof(region_name), "kvsave-%d", (int)main_pid);
	snprintf(kv_sock, sizeof(kv_sock), "/tmp/kvsave-%d.sock",
		 (int)main_pid);
	snprintf(kv_path, sizeof(kv_path), "/tmp/kvsave-%d.kv", (int)main_pid);
	atexit(cleanup);
	w->ver = calloc(w->cfg->keys, sizeof(*w->ver));
	w->snap = calloc(w->cfg->keys, sizeof(*w->snap));
	if (!w->ver || !w->snap)
		die("out of memory");

	printf("kvsave_demo: %u keys, values of %u..%u bytes, region %" PRIu64
	       " MiB\n", w->cfg->keys, w->cfg->vmin, w->cfg->vmax,
	       w->cfg->region >> 20);
	run_server(w, &res[0], 1);
	if (!w->cfg->check) {
		if (access(REDIS, X_OK)) {
			printf("SKIP redis: not in guest (%s)\n", REDIS);
		} else {
			run_server(w, &res[1], 0);
			n = 2;
		}
		print_results(w->cfg, res, n);
	}
	free(w->ver);
	free(w->snap);
	free(w->lat);
	cleanup();
	printf("kvsave_demo: all checks passed (%.1f s)\n", now() - t0);
	return 0;
}

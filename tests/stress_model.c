// SPDX-License-Identifier: GPL-2.0
/*
 * Model-checked stress test: seeded random sequences of operations on
 * regions, checked against a user-space model of every region and snapshot
 * while the kernel sees real concurrency.
 *
 * What it proves:
 *  - every byte read back (mappings, read()/pread(), snapshot fds by pread
 *    and mmap, dumps) equals the model after stores, write()/pwrite() (from
 *    plain buffers and from cowsnap mappings), O_DIRECT reads from a RAM
 *    disk and pread()s of snapshot fds into mappings, /proc/self/mem
 *    writes, restores of the base and of older snapshots, clones, loads,
 *    fork()ed writers, munmap/mremap/mprotect/MADV_DONTNEED, and ioctls
 *    whose argument or DIFF buffer lies in a region (their stores too);
 *  - snapshots never change: checker threads re-read them through their
 *    fds while the owner writes, restores, deletes and clones;
 *  - DIFF, RESTORE's pages_restored, INFO, SNAP_LIST (referenced and
 *    exclusive pages) and /proc/cowsnap match a model of page identity: a
 *    store to a hole or to a page something else owns gives the page a new
 *    identity, snapshots, restores and clones share identities, so a page
 *    is "changed" between two states iff a write or restore touched it;
 *  - the accounting (INFO and /proc shared pages, SNAP_LIST and /proc
 *    exclusive pages, pages_allocated and pages_shared) matches
 *    docs/semantics.md, "Accounting definitions": the model keeps, per
 *    region and page, the chain of history records the module keeps
 *    (pushed on the first change after the newest snapshot, popped by a
 *    restore of the newest, merged into the previous snapshot on delete)
 *    and counts owners (live entries and records, not images);
 *  - a snapshot or restore racing with stores is a consistent cut: per
 *    thread a prefix of the stores (to the word) is before it, the rest
 *    after (RACESNAP, RACERESTORE);
 *  - single-threaded, the global gauges (regions, snapshots,
 *    pages_allocated, pages_shared) are exact after every operation; every
 *    test leaves /proc/cowsnap as it found it (no region, no page).
 *
 * Design.  A worker owns a "family" (a region, its clones and loads) and
 * performs the state-changing operations on it one at a time, so the model
 * is exact.  Concurrency: four workers at once (three processes, one of
 * them running two workers as threads); in PAR operations two helper
 * threads and the owner write disjoint pages between two barriers; a
 * checker thread per family re-reads the snapshots the owner holds open,
 * except while a snapshot is being taken (a page reference held at that
 * instant makes the kernel copy the page into the snapshot); FORK children
 * write and verify through inherited or freshly attached mappings while
 * the parent writes other pages, and may take the next snapshot.  In
 * RACESNAP/RACERESTORE the helpers store while the owner snapshots or
 * restores: the contents give each thread's cut (then logged), and the
 * few pages the kernel copied at the cut are found with DIFF.
 *
 * Every worker logs its operations in epochs (a fresh family, a few
 * hundred ops, teardown).  On a mismatch the failing epoch is replayed
 * single-threaded on fresh regions in a child process and shrunk (delta
 * debugging over the ops, then over the writes inside PAR/FORK) while it
 * fails the same check; the shortest trace is printed one op per line.
 *
 * Environment: COWSNAP_SEED (master seed; else time-based, printed) and
 * COWSNAP_STRESS_SECONDS (time budget of the program, default 45: a
 * quarter single-threaded, the rest concurrent).
 */
#define _GNU_SOURCE
#define TH_TIMEOUT 900		/* raised per test from the time budget */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <linux/cowsnap.h>
#include "harness.h"
#include "util.h"
/* Guest programs are single static files: libcowsnap is compiled in. */
#include "../userspace/libcowsnap.c"

#define GOLDEN		0x9e3779b97f4a7c15ULL
#define DEV_SEED	0xd15c5eedULL	/* contents of the RAM disk */
#define SM_MAXW		4	/* families (workers) at most */
#define SM_HELPERS	2	/* writer threads per family besides its owner */
#define SM_PARTS	(SM_HELPERS + 1)
#define SM_MAXREG	5	/* live regions per family (generator's cap) */
#define SM_MAXSNAP	8	/* listed snapshots per region (generator's cap) */
#define SM_MAXMAP	4	/* mappings per region */
#define SM_MAXOPS	640	/* ops per epoch */
#define SM_MAXSUBS	8192	/* writes inside PAR/FORK ops per epoch */
#define SM_MAXTAGS	(SM_MAXOPS + 2)	/* an op creates one object at most */
#define SM_MAXWR	(16 * PG)	/* longest single write */
#define SM_CHUNK	(64 * 1024)	/* read buffer */
#define SM_BIG		(8 * 4096 + 128) /* pages: past the first 8*4096-page
					  * chunk a snapshot cleans */
#define SM_SMALL	2048	/* regions up to this many pages: check all */
#define SM_RAM_MAX	(1 << 20)

/* ---------------------------------------------------------------------- */
/* Operations and their log                                               */

enum {
	OP_NONE, OP_CREATE, OP_WRITE, OP_READ, OP_SNAP, OP_RESTORE, OP_DELETE,
	OP_DIFF, OP_CLONE, OP_DUMPLOAD, OP_DESTROY, OP_CLOSE, OP_ATTACH,
	OP_MAP, OP_MUNMAP, OP_MREMAP, OP_FORK, OP_PAR, OP_INFO, OP_LIST,
	OP_PROC, OP_VERIFY, OP_SFDOPEN, OP_SFDCLOSE, OP_SNAPCHK, OP_RACESNAP,
	OP_RACERESTORE, OP_MPROT, OP_END, OP__N
};

static const char *const op_names[OP__N] = {
	"NONE", "CREATE", "WRITE", "READ", "SNAP", "RESTORE", "DELETE",
	"DIFF", "CLONE", "DUMPLOAD", "DESTROY", "CLOSE", "ATTACH",
	"MAP", "MUNMAP", "MREMAP", "FORK", "PAR", "INFO", "LIST",
	"PROC", "VERIFY", "SFDOPEN", "SFDCLOSE", "SNAPCHK", "RACESNAP",
	"RACERESTORE", "MPROT", "END",
};

/* How a write reaches the region. */
enum {
	WR_MAP,		/* memcpy through a mapping */
	WR_PWRITE,	/* pwrite() on the handle */
	WR_WRITE,	/* lseek() and write() */
	WR_ODIRECT,	/* O_DIRECT pread() from the RAM disk into a mapping */
	WR_PROCMEM,	/* pwrite() to /proc/self/mem at a mapping (GUP) */
	WR_COPY,	/* pwrite() from a mapping of a family region */
	WR_READINTO,	/* pread() of a snapshot fd into a mapping */
	WR__N
};
static const char *const wr_names[WR__N] = {
	"store", "pwrite", "write", "odirect", "procmem", "copy", "readinto"
};

/*
 * One logged operation.  Regions and snapshots are named by tags that the
 * op creating them carries, so a shortened trace still means the same
 * objects; an op whose objects do not exist (any more) does nothing.
 *   CREATE   r2 new, len pages, x mode, var&1 no mapping
 *   WRITE    r, var WR_*, off/len bytes, seed (O_DIRECT: disk offset),
 *            x which covering mapping
 *   READ     r, s (0: live), var 0 mapping/mmap, 1 pread, 2 read; off/len
 *   SNAP     r, s new, x labelled, var&1 keep an fd open
 *   RESTORE  r, s, var expect_newest: 0 none, 1 the newest, 2 a wrong one
 *   DELETE   r, s
 *   DIFF     r, from s, to s2 (0: live), off start page, x extents per call
 *   CLONE    r, s, r2 new, x mode, var&1 onto an existing name
 *   DUMPLOAD r, s, r2 new, x mode, var&3 dump by lib/pread/mmap,
 *            var>>2 load all pages/non-zero pages/through a mapping
 *   DESTROY  r, var&1 also close and unmap;  CLOSE r, var&1 also unmap
 *   ATTACH   r, var&1 read-only handle
 *   MAP      r, off first page, len pages, var 1 read-only, 2 through a
 *            second handle, 4 past the end
 *   MUNMAP   r, x mapping, var 0 all, 1 head, 2 tail, 3 middle; off/len
 *   MREMAP   r, x mapping, var 0 move, 1 shrink, 2 grow, 3 grow MAYMOVE
 *   FORK     r, subs (who 0 parent, 1 child), var&1 child attaches by
 *            name, var&2 child takes snapshot s
 *   PAR      r, subs (who 0 owner, 1.. helpers)
 *   INFO r, LIST r (off start id, x entries per call), PROC, VERIFY,
 *   SFDOPEN r s, SFDCLOSE r s, SNAPCHK r s, END (verify, tear down)
 */
struct op {
	uint8_t kind, var;
	uint16_t r, r2, s, s2, nsub;
	uint32_t sub;
	uint64_t off, len, seed, x;
};

/* A write inside PAR or FORK. */
struct wr {
	uint8_t who, how, msel, pad;
	uint32_t len;
	uint64_t off, seed;
};

/* One worker's current epoch, in shared memory (survives its death). */
struct wlog {
	int nops, nsubs, epoch, pad;
	uint64_t seed;
	struct op ops[SM_MAXOPS];
	struct wr subs[SM_MAXSUBS];
};

/* Run control and results, shared by the test and its worker processes. */
struct ctl {
	volatile int stop, failed;
	int fail_wid, fail_idx, fail_kind, fail_epoch;
	char fail_what[48];
	char fail_msg[2048];
	volatile int cur[SM_MAXW];	/* op index being run */
	volatile int sig_wid;		/* worker whose thread got a signal */
	volatile uint64_t ops[SM_MAXW], epochs[SM_MAXW], chk[SM_MAXW];
	volatile uint64_t par[SM_MAXW], forks[SM_MAXW];
	volatile uint64_t races[SM_MAXW], race_mid[SM_MAXW];
	volatile uint64_t race_copies[SM_MAXW], race_unwritten[SM_MAXW];
	volatile uint64_t rr_extra[SM_MAXW];	/* racing restores: pages
						 * beyond the model */
	volatile uint64_t acct_lost[SM_MAXW];	/* regions whose counters a
						 * racing restore hid */
	uint64_t kinds[SM_MAXW][OP__N];	/* ops generated, by kind */
	uint64_t ran[SM_MAXW][OP__N];	/* of those, ops that did something */
};

/* ---------------------------------------------------------------------- */
/* Small helpers                                                          */

struct rng {
	uint64_t s;
};

static uint64_t mix64(uint64_t x)
{
	x += GOLDEN;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rnd(struct rng *g)
{
	g->s += GOLDEN;
	return mix64(g->s);
}

static uint64_t below(struct rng *g, uint64_t n)
{
	return n ? rnd(g) % n : 0;
}

static int chance(struct rng *g, int pct)
{
	return (int)below(g, 100) < pct;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fprintf(stderr, "stress_model: out of memory\n");
		_exit(3);
	}
	return p;
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (!p) {
		fprintf(stderr, "stress_model: out of memory\n");
		_exit(3);
	}
	return p;
}

static void *xmap_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		fprintf(stderr, "stress_model: mmap %zu: %s\n", len,
			strerror(errno));
		_exit(3);
	}
	return p;
}

/* The bytes seed @seed puts at region offset @off (seed 0: zeros). */
static void gen_fill(uint8_t *dst, uint64_t seed, uint64_t off, size_t len)
{
	if (!seed) {
		memset(dst, 0, len);
		return;
	}
	while (len) {
		uint64_t w = mix64(seed ^ ((off >> 3) * GOLDEN));
		size_t b = off & 7, n = 8 - b < len ? 8 - b : len;

		memcpy(dst, (uint8_t *)&w + b, n);
		dst += n;
		off += n;
		len -= n;
	}
}

/* All of @len bytes at @fd offset @off; 0, or -1 (errno EIO if short). */
static int pread_full(int fd, void *buf, size_t len, off_t off)
{
	return pio_full(fd, buf, len, off, 0);	/* libcowsnap.c's */
}

static int pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	return pio_full(fd, (void *)buf, len, off, 1);
}

static int io_full(int fd, void *buf, size_t len, int out)
{
	char *p = buf;

	while (len) {
		ssize_t n = out ? write(fd, p, len) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* The model                                                              */

static const uint8_t zpage[PG];

/* Page contents, shared between images and copied before a change. */
struct mbuf {
	unsigned int ref;
	uint8_t d[PG];
};

static struct mbuf *buf_new(const uint8_t *src)
{
	struct mbuf *b = xmalloc(sizeof(*b));

	b->ref = 1;
	memcpy(b->d, src ? src : zpage, PG);
	return b;
}

static void buf_get(struct mbuf *b)
{
	if (b)
		b->ref++;
}

static void buf_put(struct mbuf *b)
{
	if (b && !--b->ref)
		free(b);
}

static const uint8_t *buf_data(const struct mbuf *b)
{
	return b ? b->d : zpage;
}

/*
 * A region's live view or a snapshot: per page the identity of the kernel
 * page holding it (0: a hole) and its contents (NULL: zeros).  A hole has
 * no contents; equal identities always have equal contents.
 */
struct mimg {
	size_t n;
	uint64_t *id;
	struct mbuf **pg;
};

struct mmapping {
	uint8_t *addr;
	size_t pgoff, npages;
	int rw, maywrite;		/* PROT_WRITE now, may get it */
};

/*
 * One history record of a region's page, as the module keeps them
 * (module/history.c): a past state of the page (a page identity, or a
 * hole) with the newest snapshot that holds it.  Chains are newest first.
 */
struct mrec {
	struct mrec *older;
	uint64_t snap;			/* id of the snapshot owning it */
	uint64_t id;			/* its page's identity, 0: a hole */
};

struct mreg {
	int tag, alive, destroyed;
	int fd, rw;			/* handle (-1: none), may it write */
	char name[COWSNAP_NAME_MAX];
	size_t n;			/* pages */
	unsigned int mode;
	uint64_t next_id;		/* id the next snapshot gets */
	uint64_t base;			/* the generator's idea of the base */
	struct mimg live;
	struct mmapping map[SM_MAXMAP];
	int nmap;
	/* accounting: outlives the live view while a snapshot fd stays */
	struct mrec **hist;		/* per page: its records, newest first */
	uint8_t *inh;			/* live page a clone inherited, unwritten */
	int acct_lost;			/* a race left records the model cannot
					 * know: no counter checks (racerestore) */
};

struct msnap {
	int tag, rtag, listed;
	int fd;				/* snapshot fd, -1: none */
	int busy;			/* checkers reading it */
	uint64_t id;
	char label[COWSNAP_NAME_MAX];
	struct mimg img;		/* never changes */
};

/* Where a write goes, decided from the model alone. */
struct wplan {
	int skip, fd, err;
	uint8_t *addr;
	uint64_t off, len;
	const uint8_t *src;		/* COPY: the source, mapped */
	const struct mimg *srcimg;	/* COPY, READINTO: its model */
	uint64_t srcoff;
	int sfd;			/* READINTO: the snapshot fd */
};

/* A FORK child's own handle and mapping (attach by name). */
struct fork_env {
	uint8_t *map;
	int fd;
};

struct fam {
	int wid, solo, threads, can_fork, big;
	uint64_t seed;
	struct ctl *ctl;
	struct wlog *log;
	const uint8_t *suboff;		/* replay: writes left out */
	char prefix[32];
	int ramfd, memfd;		/* RAM disk, /proc/self/mem */
	uint64_t ram_bytes;
	struct mreg *reg[SM_MAXTAGS];
	struct msnap *snap[SM_MAXTAGS];
	int snap_rtag[SM_MAXTAGS];	/* region of a snapshot tag, 0: none */
	uint64_t snap_id[SM_MAXTAGS];
	int nrtag, nstag;		/* highest tags in use */
	int gen_rtag, gen_stag;		/* generator's last tags */
	uint32_t *cnt;			/* images holding each identity */
	uint64_t cntcap, next_ident;
	long nalloc, nshared;		/* identities in >= 1, >= 2 images */
	uint32_t *own;			/* owners (live entries and records)
					 * per identity: the module's */
	long oalloc, oshared;		/* identities with >= 1, >= 2 owners */
	int acct_lost;			/* some region's acct_lost: owner counts
					 * of the family are not exact */
	long long gbase[4];		/* solo: gauges with no family */
	uint8_t *scratch, *wbuf;
	struct rng vr;			/* sampling of big regions */
	jmp_buf jb;
	char what[48];
	char why[1536];
	/* helper and checker threads */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_rwlock_t snaplock;	/* checkers read, snapshots write */
	pthread_t th[SM_PARTS];
	int nth, quit;
	const struct op *par_op;
	struct mreg *par_reg;
	unsigned int par_gen, par_done;
	char par_err[SM_PARTS][600];
	int chk_fail, chk_tag;
	char chk_why[800];
	unsigned int race_prog[SM_PARTS];	/* RACESNAP: stores done */
	int ran;			/* the op got past its preconditions */
};

static int sm_inject;		/* self-test: a deliberately wrong model */
static int sm_procmem_ok;	/* /proc/self/mem writes work here */

static void __attribute__((noreturn, format(printf, 3, 4)))
fam_fail(struct fam *f, const char *what, const char *fmt, ...)
{
	va_list ap;

	snprintf(f->what, sizeof(f->what), "%s", what);
	va_start(ap, fmt);
	vsnprintf(f->why, sizeof(f->why), fmt, ap);
	va_end(ap);
	longjmp(f->jb, 1);
}

#define CHK(f, cond, what, ...) do {					\
	if (!(cond))							\
		fam_fail(f, what, __VA_ARGS__);				\
} while (0)

/* @ret of a call that must fail with @want (0: succeed). */
#define CHK_ERR(f, ret, want, what, desc) do {				\
	long long __r = (long long)(ret);				\
	int __e = errno, __w = (want);					\
	if (__w ? __r != -1 || __e != __w : __r < 0)			\
		fam_fail(f, what, "%s: got %lld/%s, want %s", desc,	\
			 __r, __r < 0 ? strerror(__e) : "ok",		\
			 __w ? strerror(__w) : "success");		\
} while (0)

static void cnt_grow(struct fam *f, uint64_t id)
{
	uint64_t cap = f->cntcap;

	if (id < cap)
		return;
	while (cap <= id)
		cap = cap ? 2 * cap : 4096;
	f->cnt = realloc(f->cnt, cap * sizeof(*f->cnt));
	f->own = realloc(f->own, cap * sizeof(*f->own));
	if (!f->cnt || !f->own) {
		fprintf(stderr, "stress_model: out of memory\n");
		_exit(3);
	}
	memset(f->cnt + f->cntcap, 0, (cap - f->cntcap) * sizeof(*f->cnt));
	memset(f->own + f->cntcap, 0, (cap - f->cntcap) * sizeof(*f->own));
	f->cntcap = cap;
}

static uint64_t ident_new(struct fam *f)
{
	uint64_t id = f->next_ident++;

	cnt_grow(f, id);
	return id;
}

static void cnt_inc(struct fam *f, uint64_t id)
{
	if (!id)
		return;
	if (++f->cnt[id] == 1)
		f->nalloc++;
	else if (f->cnt[id] == 2)
		f->nshared++;
}

static void cnt_dec(struct fam *f, uint64_t id)
{
	if (!id)
		return;
	if (!f->cnt[id])
		fam_fail(f, "model", "identity %llu has no owner left",
			 (unsigned long long)id);
	if (--f->cnt[id] == 0)
		f->nalloc--;
	else if (f->cnt[id] == 1)
		f->nshared--;
}

/* The module's owners of identity @id: one more, one less. */
static void own_inc(struct fam *f, uint64_t id)
{
	if (!id)
		return;
	if (++f->own[id] == 1)
		f->oalloc++;
	else if (f->own[id] == 2)
		f->oshared++;
}

static void own_dec(struct fam *f, uint64_t id)
{
	if (!id)
		return;
	if (!f->own[id]) {
		if (f->acct_lost)
			return;
		fam_fail(f, "model", "identity %llu has no owner left",
			 (unsigned long long)id);
	}
	if (--f->own[id] == 0)
		f->oalloc--;
	else if (f->own[id] == 1)
		f->oshared--;
}

static void img_init(struct mimg *m, size_t n)
{
	m->n = n;
	m->id = xcalloc(n, sizeof(*m->id));
	m->pg = xcalloc(n, sizeof(*m->pg));
}

static void img_set(struct fam *f, struct mimg *m, size_t p, uint64_t id,
		    struct mbuf *b)
{
	cnt_inc(f, id);
	cnt_dec(f, m->id[p]);
	m->id[p] = id;
	buf_get(b);
	buf_put(m->pg[p]);
	m->pg[p] = b;
}

/* @dst (uninitialised) becomes a copy of @src sharing its pages. */
static void img_clone(struct fam *f, struct mimg *dst, const struct mimg *src)
{
	size_t p;

	img_init(dst, src->n);
	for (p = 0; p < src->n; p++) {
		if (!src->id[p])
			continue;
		dst->id[p] = src->id[p];
		cnt_inc(f, src->id[p]);
		dst->pg[p] = src->pg[p];
		buf_get(src->pg[p]);
	}
}

static void img_drop(struct fam *f, struct mimg *m)
{
	size_t p;

	if (!m->id)
		return;
	for (p = 0; p < m->n; p++) {
		cnt_dec(f, m->id[p]);
		buf_put(m->pg[p]);
	}
	free(m->id);
	free(m->pg);
	m->id = NULL;
	m->pg = NULL;
}

static long img_present(const struct mimg *m)
{
	long k = 0;
	size_t p;

	for (p = 0; p < m->n; p++)
		k += !!m->id[p];
	return k;
}

static int page_zero(const struct mbuf *b)
{
	return !b || all_zero(b->d, PG);
}

/* ---------------------------------------------------------------------- */
/* Accounting: the module's history records and page owners               */

/*
 * The module counts owners, not images (docs/semantics.md, "Accounting
 * definitions"): a page's owners are the live entries and the history
 * records pointing at it, in every region (a clone's inherited pages are
 * its live entries' too).  The identities above say which images show the
 * same page; the records below say which entries own it.  They follow the
 * module's rules (module/history.c, pages.c, restore.c):
 *  - when a live page changes for the first time after its region's newest
 *    snapshot N (a store that copies or gives N a copy, a hole fill, a
 *    restore), the state it leaves (page or hole) is pushed as a record
 *    owned by N; a page whose newest record is N's changed since N
 *    ("fresh") and records nothing more for N;
 *  - RESTORE of S: where a record is owned by S or a newer snapshot, the
 *    oldest such record is the target; N's own record is popped back into
 *    the live view (no new owner), an older one gets the live view as one
 *    more owner, after N recorded the leaving state if it held it;
 *  - when a snapshot's last reference goes (deleted, no fd left), its
 *    records move to the previous snapshot P if P holds them too (no older
 *    record, or the next older one is of a snapshot older than P), the
 *    rest are freed; when the live view is retired (destroyed, no handle
 *    or mapping left) the pages the newest snapshot holds become its
 *    records, the others are freed.
 * "Snapshots" here are the ones the module still has: the listed ones and
 * the deleted ones whose fd is open.  The counters are then derived from
 * the records as docs/semantics.md defines them (acct_shared(),
 * acct_excl(), own[] for the global gauges).
 */

/* A model invariant of the accounting, unless a race made it unknowable. */
#define ACHK(f, cond, ...) do {						\
	if (!(f)->acct_lost)						\
		CHK(f, cond, "model.acct", __VA_ARGS__);		\
} while (0)

/* The newest snapshot of @r the module has (listed or with an fd), or 0. */
static uint64_t hist_newest(struct fam *f, struct mreg *r)
{
	uint64_t best = 0;
	int t;

	for (t = 1; t <= f->nstag; t++) {
		struct msnap *s = f->snap[t];

		if (s && s->rtag == r->tag && s->id > best)
			best = s->id;
	}
	return best;
}

/* The snapshot of @r before @id the module has, or 0. */
static uint64_t hist_prev(struct fam *f, struct mreg *r, uint64_t id)
{
	uint64_t best = 0;
	int t;

	for (t = 1; t <= f->nstag; t++) {
		struct msnap *s = f->snap[t];

		if (s && s->rtag == r->tag && s->id < id && s->id > best)
			best = s->id;
	}
	return best;
}

/* Has page @p of @r changed since snapshot @newest (or is there none)? */
static int hist_fresh(const struct mreg *r, size_t p, uint64_t newest)
{
	return !newest || (r->hist[p] && r->hist[p]->snap == newest);
}

/* A record of state @id (0: a hole) of page @p, owned by snapshot @snap. */
static void hist_push(struct mreg *r, size_t p, uint64_t snap, uint64_t id)
{
	struct mrec *e = xmalloc(sizeof(*e));

	e->older = r->hist[p];
	e->snap = snap;
	e->id = id;
	r->hist[p] = e;
}

static void hist_free(struct mreg *r)
{
	size_t p;

	for (p = 0; r->hist && p < r->n; p++)
		while (r->hist[p]) {
			struct mrec *e = r->hist[p];

			r->hist[p] = e->older;
			free(e);
		}
}

/*
 * A store to live page @p of @r, which the model gave identity @nid
 * (@oid before; the same: written in place).  The module writes in place
 * a page changed since the newest snapshot that nothing else owns; any
 * other store records the leaving state for the newest snapshot if that
 * holds it (the owner passes to the record), or drops the live owner.
 * Written, the page is no longer what a clone inherited.
 */
static void acct_store(struct fam *f, struct mreg *r, size_t p, uint64_t oid,
		       uint64_t nid)
{
	uint64_t n = hist_newest(f, r);
	int fresh = hist_fresh(r, p, n);

	r->inh[p] = 0;
	ACHK(f, (nid == oid) == (oid && fresh && f->own[oid] == 1),
	     "store to page %zu of %s: the model %s, but the page %s changed "
	     "since snapshot %llu and has %u owners", p, r->name,
	     nid == oid ? "writes in place" : "copies", fresh ? "has" :
	     "has not", (unsigned long long)n, oid ? f->own[oid] : 0);
	if (nid == oid)
		return;
	if (!fresh)
		hist_push(r, p, n, oid);
	else
		own_dec(f, oid);
	own_inc(f, nid);
}

/*
 * RESTORE of @s on @r, before the model's live view takes @s's image: the
 * module's changes to records and owners (module/restore.c).  Returns the
 * pages it changes, which must be those where the live view differs.
 */
static long acct_restore(struct fam *f, struct mreg *r, const struct msnap *s)
{
	uint64_t n = hist_newest(f, r);
	long k = 0;
	size_t p;

	for (p = 0; p < r->n; p++) {
		uint64_t oid = r->live.id[p];
		int fresh = hist_fresh(r, p, n);
		struct mrec **ep, **tp = NULL, *t;

		/* The oldest record owned by @s or a newer snapshot. */
		for (ep = &r->hist[p]; *ep && (*ep)->snap >= s->id;
		     ep = &(*ep)->older)
			tp = ep;
		if (!tp) {
			ACHK(f, oid == s->img.id[p], "restore of %s to %llu: "
			     "page %zu has no record from it on, yet the live "
			     "view differs from it", r->name,
			     (unsigned long long)s->id, p);
			continue;
		}
		t = *tp;
		ACHK(f, t->id == s->img.id[p], "restore of %s to %llu: page "
		     "%zu's record of snapshot %llu is not its image", r->name,
		     (unsigned long long)s->id, p, (unsigned long long)t->snap);
		if (t->id == oid)
			continue;
		k++;
		r->inh[p] = 0;
		if (t->snap == n) {
			/* The newest's own record comes back: an undo. */
			*tp = t->older;
			free(t);
			own_dec(f, oid);
			continue;
		}
		if (!fresh)
			hist_push(r, p, n, oid);
		else
			own_dec(f, oid);
		own_inc(f, t->id);
	}
	return k;
}

/*
 * The last reference to snapshot @s of @r goes (deleted and no fd left;
 * still in f->snap): its records move to the previous snapshot if that
 * holds them too, the rest are freed.
 */
static void acct_merge(struct fam *f, struct mreg *r, const struct msnap *s)
{
	uint64_t prev = hist_prev(f, r, s->id);
	size_t p;

	for (p = 0; p < r->n; p++) {
		struct mrec **ep = &r->hist[p], *e;

		while (*ep && (*ep)->snap > s->id)
			ep = &(*ep)->older;
		e = *ep;
		if (!e || e->snap != s->id)
			continue;
		if (prev && (!e->older || e->older->snap < prev)) {
			e->snap = prev;
			continue;
		}
		*ep = e->older;
		own_dec(f, e->id);
		free(e);
	}
}

/*
 * The live view of @r is retired (its snapshots without an fd are gone
 * already): the pages the newest snapshot left holds become its records,
 * the others lose their live owner.
 */
static void acct_retire(struct fam *f, struct mreg *r)
{
	uint64_t n = hist_newest(f, r);
	size_t p;

	for (p = 0; p < r->n; p++) {
		uint64_t id = r->live.id[p];

		if (!id)
			continue;
		if (!hist_fresh(r, p, n))
			hist_push(r, p, n, id);
		else
			own_dec(f, id);
		r->inh[p] = 0;
	}
}

/* Clone @nr just took its live pages from a snapshot: inherited. */
static void acct_clone(struct fam *f, struct mreg *nr)
{
	size_t p;

	for (p = 0; p < nr->n; p++)
		if (nr->live.id[p]) {
			own_inc(f, nr->live.id[p]);
			nr->inh[p] = 1;
		}
}

/*
 * INFO/proc shared pages of @r: resident minus the live pages nothing else
 * in the region holds, that is, changed since the newest snapshot (or
 * there is none), not a clone's inherited page, and held by no record of
 * the region (a record whose page a restore put back).
 */
static long acct_shared(struct fam *f, struct mreg *r)
{
	uint64_t n = hist_newest(f, r);
	long res = 0, solo = 0;
	size_t p;

	for (p = 0; p < r->n; p++) {
		uint64_t id = r->live.id[p];
		struct mrec *e;

		if (!id)
			continue;
		res++;
		if (!hist_fresh(r, p, n) || r->inh[p])
			continue;
		for (e = r->hist[p]; e && e->id != id; e = e->older)
			;
		solo += !e;
	}
	return res - solo;
}

/*
 * SNAP_LIST/proc exclusive pages of snapshot @s of @r: its records that
 * hold a page, that the previous snapshot does not hold too (the next
 * older record is exactly that snapshot's; with no previous snapshot
 * every record counts), and whose page no other entry of the region
 * holds (other regions, i.e. clones, do not count).
 */
static long acct_excl(struct fam *f, struct mreg *r, const struct msnap *s)
{
	uint64_t prev = hist_prev(f, r, s->id);
	long k = 0;
	size_t p;

	for (p = 0; p < r->n; p++) {
		struct mrec *e, *o;

		for (e = r->hist[p]; e && e->snap > s->id; e = e->older)
			;
		if (!e || e->snap != s->id || !e->id)
			continue;
		if (prev && !(e->older && e->older->snap == prev))
			continue;
		if (r->live.id && r->live.id[p] == e->id)
			continue;
		for (o = r->hist[p]; o && (o == e || o->id != e->id);
		     o = o->older)
			;
		k += !o;
	}
	return k;
}

/*
 * A threaded RACESNAP: DIFF showed that the module copied racing page @p
 * for the new snapshot @sid where the model shared it, and the model gave
 * the snapshot's image identity @nid instead of @oid.  gen_race() picks
 * pages that nothing but this region's live view and listed snapshots
 * holds, so DIFF sees every copy that changes the records.  Two ways:
 *  - not written after the cut: something (a store's fault) referenced
 *    the page at the cut, so the snapshot took a copy at once: a record
 *    of @sid (the page was changed since the previous snapshot, as the
 *    only candidates are pages made writable since or copied at it);
 *  - written after the cut: that store's fault prepared the page before
 *    the cut and its bytes landed after.  The fault recorded the page for
 *    the previous snapshot if that held it (the owner passing to the
 *    record), and the store after the cut gave @sid a copy of what it
 *    left, a page the model did not have: the record the model pushed
 *    for @sid holds that copy, and the previous snapshot's record @oid.
 */
static void acct_race_copy(struct fam *f, struct mreg *r, uint64_t sid,
			   size_t p, uint64_t oid, uint64_t nid)
{
	uint64_t prev = hist_prev(f, r, sid);
	struct mrec *e = r->hist[p], *u;

	own_inc(f, nid);
	if (!e || e->snap != sid) {
		hist_push(r, p, sid, nid);
		return;
	}
	ACHK(f, e->id == oid, "racing snapshot %llu of %s: page %zu's record "
	     "is not the model's image", (unsigned long long)sid, r->name, p);
	e->id = nid;
	if (prev && !(e->older && e->older->snap == prev)) {
		u = xmalloc(sizeof(*u));
		u->older = e->older;
		u->snap = prev;
		u->id = oid;
		e->older = u;
		own_inc(f, oid);
	}
	own_dec(f, oid);
}

/*
 * A store to live page @p of @r: a hole gets a page, a page with another
 * owner is copied (both a new identity), an exclusive one is written in
 * place.  Returns the page's model bytes for the caller to change.
 */
static uint8_t *live_store(struct fam *f, struct mreg *r, size_t p)
{
	struct mimg *l = &r->live;
	uint64_t id = l->id[p];
	struct mbuf *b = l->pg[p], *nb;

	if (!id || f->cnt[id] > 1)
		id = ident_new(f);
	acct_store(f, r, p, l->id[p], id);
	nb = b && b->ref == 1 ? b : buf_new(buf_data(b));
	if (id != l->id[p] || nb != b)
		img_set(f, l, p, id, nb);
	if (nb != b)
		buf_put(nb);
	return nb->d;
}

static void snap_lock(struct fam *f)
{
	if (f->threads)
		pthread_rwlock_wrlock(&f->snaplock);
}

static void snap_unlock(struct fam *f)
{
	if (f->threads)
		pthread_rwlock_unlock(&f->snaplock);
}

static struct mreg *reg_get(struct fam *f, unsigned int tag)
{
	struct mreg *r = tag && tag < SM_MAXTAGS ? f->reg[tag] : NULL;

	return r && r->alive ? r : NULL;
}

/* Snapshot tag @t of @r: its id (0: no such snapshot of @r) and object. */
static uint64_t snap_ref(struct fam *f, struct mreg *r, unsigned int t,
			 struct msnap **sp)
{
	*sp = NULL;
	if (!t || t >= SM_MAXTAGS || f->snap_rtag[t] != r->tag)
		return 0;
	*sp = f->snap[t];
	return f->snap_id[t];
}

/* Listed snapshots of @r in id order; returns how many. */
static int reg_snaps(struct fam *f, struct mreg *r, struct msnap **out,
		     int max)
{
	int t, n = 0, i, j;

	for (t = 1; t <= f->nstag; t++) {
		struct msnap *s = f->snap[t];

		if (s && s->listed && s->rtag == r->tag && n < max)
			out[n++] = s;
	}
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && out[j - 1]->id > out[j]->id; j--) {
			struct msnap *x = out[j];

			out[j] = out[j - 1];
			out[j - 1] = x;
		}
	return n;
}

static uint64_t reg_newest(struct fam *f, struct mreg *r)
{
	struct msnap *v[SM_MAXTAGS];
	int n = reg_snaps(f, r, v, SM_MAXTAGS);

	return n ? v[n - 1]->id : 0;
}

static void reg_name(struct fam *f, unsigned int tag, char *name)
{
	snprintf(name, COWSNAP_NAME_MAX, "%s%u", f->prefix, tag);
}

static struct mreg *reg_alloc(struct fam *f, unsigned int tag, size_t n,
			      unsigned int mode)
{
	struct mreg *r = xcalloc(1, sizeof(*r));

	r->tag = tag;
	r->n = n;
	r->mode = mode;
	r->fd = -1;
	r->next_id = 1;
	r->hist = xcalloc(n, sizeof(*r->hist));
	r->inh = xcalloc(n, 1);
	reg_name(f, tag, r->name);
	return r;
}

/* Free model region @r (its live image dropped already). */
static void reg_release(struct mreg *r)
{
	hist_free(r);
	free(r->hist);
	free(r->inh);
	free(r);
}

/* @r exists in the kernel now, attached to @fd; the live image is empty. */
static void reg_add(struct fam *f, struct mreg *r, int fd, int rw)
{
	r->alive = 1;
	r->fd = fd;
	r->rw = rw;
	img_init(&r->live, r->n);
	f->reg[r->tag] = r;
	if (r->tag > f->nrtag)
		f->nrtag = r->tag;
}

static struct msnap *snap_add(struct fam *f, struct mreg *r, unsigned int t,
			      uint64_t id, const char *label)
{
	struct msnap *s = xcalloc(1, sizeof(*s));

	s->tag = t;
	s->rtag = r->tag;
	s->listed = 1;
	s->fd = -1;
	s->id = id;
	snprintf(s->label, sizeof(s->label), "%s", label);
	img_clone(f, &s->img, &r->live);
	f->snap_rtag[t] = r->tag;
	f->snap_id[t] = id;
	pthread_mutex_lock(&f->mu);
	f->snap[t] = s;
	if ((int)t > f->nstag)
		f->nstag = t;
	pthread_mutex_unlock(&f->mu);
	r->next_id = id + 1;
	r->base = id;
	return s;
}

/* The module lets go of @s (deleted, no fd left): it merges its history. */
static void snap_free(struct fam *f, struct msnap *s)
{
	acct_merge(f, f->reg[s->rtag], s);
	pthread_mutex_lock(&f->mu);
	f->snap[s->tag] = NULL;
	pthread_mutex_unlock(&f->mu);
	img_drop(f, &s->img);
	free(s);
}

/* Close @s's fd once no checker reads it; a deleted snapshot goes then. */
static void sfd_close(struct fam *f, struct msnap *s)
{
	int fd;

	pthread_mutex_lock(&f->mu);
	while (s->busy)
		pthread_cond_wait(&f->cv, &f->mu);
	fd = s->fd;
	s->fd = -1;
	pthread_mutex_unlock(&f->mu);
	close(fd);
	if (!s->listed)
		snap_free(f, s);
}

static void sfd_publish(struct fam *f, struct msnap *s, int fd)
{
	pthread_mutex_lock(&f->mu);
	s->fd = fd;
	pthread_mutex_unlock(&f->mu);
}

static void snap_unlist(struct fam *f, struct mreg *r, struct msnap *s)
{
	s->listed = 0;
	if (r->base == s->id)
		r->base = 0;
	if (s->fd < 0)
		snap_free(f, s);
}

/*
 * A region object lives while its name, a handle or a mapping holds it
 * (snapshot fds hold only their snapshot).  Model its release.
 */
static void reg_maybe_free(struct fam *f, struct mreg *r)
{
	struct msnap *v[SM_MAXTAGS];
	int n;

	if (!r->alive || !r->destroyed || r->fd >= 0 || r->nmap)
		return;
	/* As the module: delete the snapshots newest first, then retire. */
	n = reg_snaps(f, r, v, SM_MAXTAGS);
	while (n--)
		snap_unlist(f, r, v[n]);
	acct_retire(f, r);
	r->alive = 0;
	img_drop(f, &r->live);
}

static long fam_alive(struct fam *f)
{
	long k = 0;
	int t;

	for (t = 1; t <= f->nrtag; t++)
		k += f->reg[t] && f->reg[t]->alive;
	return k;
}

static long fam_listed(struct fam *f)
{
	long k = 0;
	int t;

	for (t = 1; t <= f->nstag; t++)
		k += f->snap[t] && f->snap[t]->listed;
	return k;
}

/* The @sel-th mapping of @r covering [@off, @off+@len), writable if @rw. */
static struct mmapping *map_pick(struct mreg *r, uint64_t off, uint64_t len,
				 int rw, unsigned int sel)
{
	struct mmapping *c[SM_MAXMAP];
	int i, k = 0;

	for (i = 0; i < r->nmap; i++) {
		struct mmapping *m = &r->map[i];

		if ((rw && !m->rw) || off < m->pgoff * PG ||
		    off + len > (m->pgoff + m->npages) * PG)
			continue;
		c[k++] = m;
	}
	return k ? c[sel % k] : NULL;
}

static uint8_t *map_addr(const struct mmapping *m, uint64_t off)
{
	return m->addr + off - m->pgoff * PG;
}

static int sub_off(struct fam *f, uint32_t i)
{
	return f->suboff && f->suboff[i];
}

/* Check page @p of an image?  All of small ones, a sample of big ones. */
static int sample_page(struct rng *g, const struct mimg *img, size_t p)
{
	if (img->n <= SM_SMALL || img->id[p])
		return 1;
	return p < 4 || p + 4 > img->n || (p >= 32764 && p < 32772) ||
	       !below(g, 1024);
}

/* ---------------------------------------------------------------------- */
/* Comparing what the kernel returns with the model                       */

/* First byte of [@off, @off+@len) where @got differs from @img, or -1. */
static long long img_diff(const struct mimg *img, const uint8_t *got,
			  uint64_t off, uint64_t len)
{
	uint64_t x = off, end = off + len;

	while (x < end) {
		size_t p = x / PG, o = x % PG, n = PG - o;
		const uint8_t *e;

		if (n > end - x)
			n = end - x;
		e = buf_data(img->pg[p]) + o;
		if (memcmp(got + (x - off), e, n)) {
			size_t k = 0;

			while (got[x - off + k] == e[k])
				k++;
			return x + k;
		}
		x += n;
	}
	return -1;
}

/* Describe the mismatch at byte @bad of a read of [@off, @off+@len). */
static void mis_fmt(char *buf, size_t blen, const char *how,
		    const struct mimg *img, const uint8_t *got, uint64_t off,
		    uint64_t len, uint64_t bad)
{
	size_t p = bad / PG, o = bad % PG;
	uint64_t ps = p * PG > off ? p * PG : off;
	uint64_t pe = (p + 1) * PG < off + len ? (p + 1) * PG : off + len;
	const uint8_t *e = buf_data(img->pg[p]);

	snprintf(buf, blen, "%s: byte 0x%llx (page %zu +0x%zx) reads 0x%02x, "
		 "model 0x%02x; the page reads %s, the model has %s "
		 "(identity %llu)", how, (unsigned long long)bad, p, o,
		 got[bad - off], e[o],
		 all_zero(got + (ps - off), pe - ps) ? "zeros" : "data",
		 !img->id[p] ? "a hole" : img->pg[p] ? "data" : "zeros",
		 (unsigned long long)img->id[p]);
}

/* Compare [@off, @off+@len) read through @addr with @img. */
static int cmp_mem(const struct mimg *img, const uint8_t *addr, uint64_t off,
		   uint64_t len, const char *how, char *why, size_t wlen)
{
	long long bad = img_diff(img, addr, off, len);

	if (bad < 0)
		return 0;
	mis_fmt(why, wlen, how, img, addr, off, len, bad);
	return -1;
}

/* Compare [@off, @off+@len) read from @fd (pread, or lseek+read). */
static int cmp_fd(const struct mimg *img, int fd, int use_read, uint64_t off,
		  uint64_t len, uint8_t *buf, const char *how, char *why,
		  size_t wlen)
{
	while (len) {
		uint64_t n = len < SM_CHUNK ? len : SM_CHUNK;
		int rc;

		if (use_read) {
			rc = lseek(fd, off, SEEK_SET) == (off_t)off ?
			     io_full(fd, buf, n, 0) : -1;
			if (rc && !errno)
				errno = EIO;
		} else {
			rc = pread_full(fd, buf, n, off);
		}
		if (rc) {
			snprintf(why, wlen, "%s at 0x%llx+%llu: %s", how,
				 (unsigned long long)off,
				 (unsigned long long)n, strerror(errno));
			return -1;
		}
		if (cmp_mem(img, buf, off, n, how, why, wlen))
			return -1;
		off += n;
		len -= n;
	}
	return 0;
}

/* Compare a snapshot fd's [@off, @off+@len) by pread or a fresh mapping. */
static int cmp_snapfd(const struct mimg *img, int sfd, int use_mmap,
		      uint64_t off, uint64_t len, uint8_t *buf, char *why,
		      size_t wlen)
{
	size_t pg0 = off / PG, npg = (off + len + PG - 1) / PG - pg0;
	uint8_t *m;
	int rc;

	if (!use_mmap)
		return cmp_fd(img, sfd, 0, off, len, buf, "snapshot pread",
			      why, wlen);
	m = mmap(NULL, npg * PG, PROT_READ, MAP_SHARED, sfd, pg0 * PG);
	if (m == MAP_FAILED) {
		snprintf(why, wlen, "mmap of snapshot pages %zu+%zu: %s", pg0,
			 npg, strerror(errno));
		return -1;
	}
	rc = cmp_mem(img, m + (off - pg0 * PG), off, len, "snapshot mmap",
		     why, wlen);
	munmap(m, npg * PG);
	return rc;
}

/* A whole image read through @addr (covering pages @pg0..) or @fd. */
static int cmp_all(const struct mimg *img, const uint8_t *addr, size_t pg0,
		   size_t npg, int fd, int snap_mmap, uint8_t *buf,
		   struct rng *g, const char *how, char *why, size_t wlen)
{
	size_t p;

	if (img->n <= SM_SMALL) {
		if (addr)
			return cmp_mem(img, addr, pg0 * PG, npg * PG, how, why,
				       wlen);
		if (snap_mmap)
			return cmp_snapfd(img, fd, 1, pg0 * PG, npg * PG, buf,
					  why, wlen);
		return cmp_fd(img, fd, 0, pg0 * PG, npg * PG, buf, how, why,
			      wlen);
	}
	for (p = pg0; p < pg0 + npg; p++) {
		int rc;

		if (!sample_page(g, img, p))
			continue;
		if (addr)
			rc = cmp_mem(img, addr + (p - pg0) * PG, p * PG, PG,
				     how, why, wlen);
		else if (snap_mmap)
			rc = cmp_snapfd(img, fd, 1, p * PG, PG, buf, why, wlen);
		else
			rc = cmp_fd(img, fd, 0, p * PG, PG, buf, how, why,
				    wlen);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * The live view of @r against the model through every mapping (or the
 * FORK child's own) and through pread() on the handle.
 */
static int cmp_live_all(struct mreg *r, const struct fork_env *fe,
			uint8_t *buf, struct rng *g, char *why, size_t wlen)
{
	int i, fd = fe && fe->fd >= 0 ? fe->fd : r->fd;

	if (fe && fe->map) {
		if (cmp_all(&r->live, fe->map, 0, r->n, -1, 0, buf, g,
			    "child's mapping", why, wlen))
			return -1;
	} else {
		for (i = 0; i < r->nmap; i++)
			if (cmp_all(&r->live, r->map[i].addr, r->map[i].pgoff,
				    r->map[i].npages, -1, 0, buf, g,
				    "mapping", why, wlen))
				return -1;
	}
	if (fd >= 0 && cmp_all(&r->live, NULL, 0, r->n, fd, 0, buf, g,
			       "pread", why, wlen))
		return -1;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Writes                                                                 */

/*
 * Plan write @w to @r from the model only (the same decision for the model
 * and for whoever performs it): the address or fd, the bytes written, or
 * the errno expected.  @fe: a FORK child that attached its own handle.
 */
static void wr_plan(struct fam *f, struct mreg *r, const struct wr *w,
		    const struct fork_env *fe, struct wplan *pl)
{
	uint64_t size = r->n * PG;
	struct mmapping *m;

	memset(pl, 0, sizeof(*pl));
	pl->fd = -1;
	pl->off = w->off;
	pl->len = w->len;
	switch (w->how) {
	case WR_READINTO: {
		unsigned int t = w->seed >> 48;
		struct msnap *s = t < SM_MAXTAGS ? f->snap[t] : NULL;

		pl->srcoff = w->seed & ((1ULL << 48) - 1);
		if (fe || !s || s->fd < 0 ||
		    pl->srcoff + w->len > s->img.n * PG)
			goto skip;
		pl->sfd = s->fd;
		pl->srcimg = &s->img;
		goto mapped;
	}
	case WR_PROCMEM:
		if (fe || f->memfd < 0)
			goto skip;
		goto mapped;
	case WR_ODIRECT:
		if (f->ramfd < 0 || ((w->off | w->len | w->seed) & 511) ||
		    w->seed + w->len > f->ram_bytes)
			goto skip;
		/* fall through */
	case WR_MAP:
mapped:
		if (!w->len || w->off + w->len > size)
			goto skip;
		if (fe && fe->map) {
			pl->addr = fe->map + w->off;
			break;
		}
		m = map_pick(r, w->off, w->len, 1, w->msel);
		if (!m)
			goto skip;
		pl->addr = map_addr(m, w->off);
		break;
	case WR_COPY: {
		struct mreg *src = reg_get(f, w->seed >> 48);

		pl->srcoff = w->seed & ((1ULL << 48) - 1);
		if (fe || !src || w->off + w->len > size)
			goto skip;
		m = map_pick(src, pl->srcoff, w->len, 0, w->msel);
		/* From the same pages, or from others. */
		if (!m || (src == r && pl->srcoff != w->off &&
			   pl->srcoff < w->off + w->len &&
			   w->off < pl->srcoff + w->len))
			goto skip;
		pl->src = map_addr(m, pl->srcoff);
		pl->srcimg = &src->live;
	}
		/* fall through */
	default:
		pl->fd = fe && fe->fd >= 0 ? fe->fd : r->fd;
		if (pl->fd < 0 || !w->len)
			goto skip;
		if (!(fe && fe->fd >= 0) && !r->rw) {
			pl->err = EBADF;
			pl->len = 0;
		} else if (w->off >= size) {
			pl->err = ENOSPC;
			pl->len = 0;
		} else if (w->off + w->len > size) {
			pl->len = size - w->off;
		}
		break;
	}
	return;
skip:
	pl->skip = 1;
}

/* The model's bytes [@off, @off+@len) of @img into @dst. */
static void img_bytes(const struct mimg *img, uint64_t off, uint64_t len,
		      uint8_t *dst)
{
	while (len) {
		size_t p = off / PG, o = off % PG, n = PG - o;

		if (n > len)
			n = len;
		memcpy(dst, buf_data(img->pg[p]) + o, n);
		dst += n;
		off += n;
		len -= n;
	}
}

/* A store of @src (NULL: the bytes there) at [@off, @off+@len) of @r. */
static void model_store(struct fam *f, struct mreg *r, uint64_t off,
			uint64_t len, const void *src)
{
	uint64_t x = off, end = off + len;

	while (x < end) {
		size_t p = x / PG, o = x % PG, n = PG - o;
		uint8_t *d;

		if (n > end - x)
			n = end - x;
		d = live_store(f, r, p);
		if (src)
			memcpy(d + o, (const uint8_t *)src + (x - off), n);
		x += n;
	}
}

/* Apply planned write @w to the model. */
static void model_write(struct fam *f, struct mreg *r, const struct wr *w,
			const struct wplan *pl)
{
	uint64_t x = pl->off, end = pl->off + pl->len;

	if (pl->srcimg) {
		uint8_t *b = xmalloc(pl->len);

		img_bytes(pl->srcimg, pl->srcoff, pl->len, b);
		model_store(f, r, pl->off, pl->len, b);
		free(b);
		return;
	}
	while (x < end) {
		size_t p = x / PG, o = x % PG, n = PG - o;
		uint8_t *d;

		if (n > end - x)
			n = end - x;
		d = live_store(f, r, p);
		if (w->how == WR_ODIRECT)
			gen_fill(d + o, DEV_SEED, w->seed + (x - w->off), n);
		else
			gen_fill(d + o, w->seed, x, n);
		x += n;
	}
}

/* Perform planned write @w (any thread, a FORK child too); 0 or -1. */
static int wr_do(struct fam *f, const struct wr *w, const struct wplan *pl,
		 uint8_t *buf, char *why, size_t wlen)
{
	ssize_t n;

	switch (w->how) {
	case WR_MAP:
		gen_fill(buf, w->seed, w->off, w->len);
		memcpy(pl->addr, buf, w->len);
		return 0;
	case WR_ODIRECT:
	case WR_PROCMEM:
	case WR_READINTO:
		if (w->how == WR_ODIRECT) {
			n = pread(f->ramfd, pl->addr, w->len, w->seed);
		} else if (w->how == WR_READINTO) {
			n = pread(pl->sfd, pl->addr, w->len, pl->srcoff);
		} else {
			gen_fill(buf, w->seed, w->off, w->len);
			n = pwrite(f->memfd, buf, w->len,
				   (off_t)(uintptr_t)pl->addr);
		}
		if (n == (ssize_t)w->len)
			return 0;
		snprintf(why, wlen, "%s of %u bytes into the mapping at 0x%llx:"
			 " %zd (%s)", wr_names[w->how], w->len,
			 (unsigned long long)w->off, n,
			 n < 0 ? strerror(errno) : "short");
		return -1;
	default:
		gen_fill(buf, w->seed, w->off, w->len);
		errno = 0;
		if (w->how == WR_COPY) {
			n = pwrite(pl->fd, pl->src, w->len, w->off);
		} else if (w->how == WR_WRITE) {
			n = lseek(pl->fd, w->off, SEEK_SET);
			if (n == (ssize_t)w->off)
				n = write(pl->fd, buf, w->len);
		} else {
			n = pwrite(pl->fd, buf, w->len, w->off);
		}
		if (pl->err ? n == -1 && errno == pl->err :
			      n == (ssize_t)pl->len)
			return 0;
		snprintf(why, wlen, "%s of %u bytes at 0x%llx: %zd (%s), want "
			 "%s%llu", wr_names[w->how], w->len,
			 (unsigned long long)w->off, n, strerror(errno),
			 pl->err ? strerror(pl->err) : "",
			 (unsigned long long)(pl->err ? 0 : pl->len));
		return -1;
	}
}

/*
 * The writes of participant @who in PAR/FORK op @o, then every range
 * written read back (pages of other participants are never touched, and
 * the model is already final).  0 or -1 with @why.
 */
static int subs_run(struct fam *f, struct mreg *r, const struct op *o,
		    int who, const struct fork_env *fe, uint8_t *buf,
		    char *why, size_t wlen)
{
	struct wplan pl;
	unsigned int i;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < o->nsub; i++) {
			const struct wr *w = &f->log->subs[o->sub + i];

			if (w->who != who || sub_off(f, o->sub + i))
				continue;
			wr_plan(f, r, w, fe, &pl);
			if (pl.skip)
				continue;
			if (!pass) {
				if (wr_do(f, w, &pl, buf, why, wlen))
					return -1;
				continue;
			}
			if (pl.err || !pl.len)
				continue;
			if (pl.addr ? cmp_mem(&r->live, pl.addr, pl.off,
					      pl.len, "read-back (mapping)",
					      why, wlen) :
				      cmp_fd(&r->live, pl.fd, 0, pl.off, pl.len,
					     buf, "read-back (pread)", why,
					     wlen))
				return -1;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Owner-side checks: a mismatch fails the op                             */

static void chk_live_all(struct fam *f, struct mreg *r, const char *what)
{
	char why[900];

	if (cmp_live_all(r, NULL, f->scratch, &f->vr, why, sizeof(why)))
		fam_fail(f, what, "%s: %s", r->name, why);
}

/* Snapshot @s through @sfd: pread and a mapping. */
static void chk_snap_all(struct fam *f, struct msnap *s, int sfd,
			 const char *what)
{
	char why[900];

	if (cmp_all(&s->img, NULL, 0, s->img.n, sfd, 0, f->scratch, &f->vr,
		    "snapshot pread", why, sizeof(why)) ||
	    cmp_all(&s->img, NULL, 0, s->img.n, sfd, 1, f->scratch, &f->vr,
		    "snapshot mmap", why, sizeof(why)))
		fam_fail(f, what, "snapshot %llu (tag s%d): %s",
			 (unsigned long long)s->id, s->tag, why);
}

/* @nr random pages of @r through a mapping and pread (after a change). */
static void chk_live_some(struct fam *f, struct mreg *r, uint64_t seed,
			  int nr, const char *what)
{
	struct rng g = { seed ^ 0x5a5a };
	char why[900];
	int i;

	for (i = 0; i < nr; i++) {
		size_t p = below(&g, r->n);
		struct mmapping *m = map_pick(r, p * PG, PG, 0, rnd(&g));

		if (m && cmp_mem(&r->live, map_addr(m, p * PG), p * PG, PG,
				 "mapping", why, sizeof(why)))
			fam_fail(f, what, "%s: %s", r->name, why);
		if (r->fd >= 0 && cmp_fd(&r->live, r->fd, 0, p * PG, PG,
					 f->scratch, "pread", why, sizeof(why)))
			fam_fail(f, what, "%s: %s", r->name, why);
	}
}

/* The regions, snapshots and page gauges of /proc/cowsnap. */
static int read_gauges(long long g[4])
{
	static const char *const names[4] = {
		"regions", "snapshots", "pages_allocated", "pages_shared"
	};
	FILE *fp = fopen("/proc/cowsnap", "r");
	char line[256], key[64];
	long long v;
	int i, found = 0;

	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp) && line[0] != '#') {
		if (sscanf(line, "%63s %lld", key, &v) != 2)
			continue;
		for (i = 0; i < 4; i++)
			if (!strcmp(key, names[i])) {
				g[i] = v;
				found |= 1 << i;
			}
	}
	fclose(fp);
	return found == 15 ? 0 : -1;
}

/* Solo: the global gauges equal the model plus what was there before. */
static void chk_gauges(struct fam *f)
{
	static const char *const what[4] = {
		"gauge.regions", "gauge.snapshots", "gauge.pages_allocated",
		"gauge.pages_shared"
	};
	long long g[4], want[4];
	int i;

	want[0] = f->gbase[0] + fam_alive(f);
	want[1] = f->gbase[1] + fam_listed(f);
	/* Pages with >= 1 and >= 2 owners (live entries and records). */
	want[2] = f->gbase[2] + f->oalloc;
	want[3] = f->gbase[3] + f->oshared;
	CHK(f, !read_gauges(g), "errno", "reading /proc/cowsnap: %s",
	    strerror(errno));
	/* acct_lost needs a threaded race: never solo. */
	for (i = 0; i < (f->acct_lost ? 2 : 4); i++)
		CHK(f, g[i] == want[i], what[i], "/proc/cowsnap %s is %lld, "
		    "model %lld", what[i] + 6, g[i], want[i]);
}

/* All of /proc/cowsnap in a malloc'd string. */
static char *read_proc(void)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = xmalloc(cap);
	int fd = open("/proc/cowsnap", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		free(buf);
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				_exit(3);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = 0;
	return buf;
}

/* The line of @text starting with @key, or NULL. */
static const char *proc_line(const char *text, const char *key)
{
	size_t kl = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, kl))
			return p;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* Executing operations against the kernel and the model                  */

static void map_new(struct fam *f, struct mreg *r, size_t pgoff, size_t np,
		    int rw, int maywrite, int fd)
{
	void *a = mmap(NULL, np * PG, PROT_READ | (rw ? PROT_WRITE : 0),
		       MAP_SHARED, fd, pgoff * PG);
	struct mmapping *m;

	CHK(f, a != MAP_FAILED, "errno", "mmap of %s pages %zu+%zu: %s",
	    r->name, pgoff, np, strerror(errno));
	m = &r->map[r->nmap++];
	m->addr = a;
	m->pgoff = pgoff;
	m->npages = np;
	m->rw = rw;
	m->maywrite = maywrite;
}

/* A writable mapping of region @tag at [@off, @off+@len), or NULL. */
static uint8_t *arg_addr(struct fam *f, unsigned int tag, uint64_t off,
			 uint64_t len, struct mreg **rp)
{
	struct mreg *r = reg_get(f, tag);
	struct mmapping *m;

	*rp = r;
	if (!r || off + len > r->n * PG)
		return NULL;
	m = map_pick(r, off, len, 1, 0);
	return m ? map_addr(m, off) : NULL;
}

static void map_remove(struct mreg *r, int i)
{
	memmove(&r->map[i], &r->map[i + 1],
		(r->nmap - i - 1) * sizeof(r->map[0]));
	r->nmap--;
}

/* Close @r's handle and, if @unmap, every mapping. */
static void reg_close(struct fam *f, struct mreg *r, int unmap)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	while (unmap && r->nmap) {
		struct mmapping *m = &r->map[r->nmap - 1];

		CHK(f, !munmap(m->addr, m->npages * PG), "errno",
		    "munmap: %s", strerror(errno));
		r->nmap--;
	}
}

static void ex_create(struct fam *f, const struct op *o)
{
	unsigned int t = o->r2;
	struct mreg *r;
	int fd;

	if (!t || t >= SM_MAXTAGS || f->reg[t])
		return;
	f->ran = 1;
	r = reg_alloc(f, t, o->len, o->x);
	fd = cs_open();
	CHK(f, fd >= 0, "errno", "open " COWSNAP_DEV ": %s", strerror(errno));
	CHK_ERR(f, cs_create(fd, r->name, r->n * PG, r->mode), 0, "errno",
		"CREATE");
	reg_add(f, r, fd, 1);
	if (!(o->var & 1))
		map_new(f, r, 0, r->n, 1, 1, fd);
}

static void op_wr(const struct op *o, struct wr *w)
{
	memset(w, 0, sizeof(*w));
	w->how = o->var;
	w->msel = o->x;
	w->len = o->len;
	w->off = o->off;
	w->seed = o->seed;
}

static void ex_write(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r);
	struct wplan pl;
	char why[600];
	struct wr w;

	if (!r)
		return;
	op_wr(o, &w);
	wr_plan(f, r, &w, NULL, &pl);
	if (pl.skip)
		return;
	f->ran = 1;
	if (wr_do(f, &w, &pl, f->wbuf, why, sizeof(why)))
		fam_fail(f, "write", "%s: %s", r->name, why);
	if (pl.err || !pl.len)
		return;
	model_write(f, r, &w, &pl);
	/* Read it back the other way. */
	if (w.how == WR_PWRITE || w.how == WR_WRITE || w.how == WR_COPY) {
		struct mmapping *m = map_pick(r, pl.off, pl.len, 0, w.msel);

		if (m && cmp_mem(&r->live, map_addr(m, pl.off), pl.off, pl.len,
				 "mapping after write", why, sizeof(why)))
			fam_fail(f, "write.readback", "%s: %s", r->name, why);
	} else if (r->fd >= 0 &&
		   cmp_fd(&r->live, r->fd, 0, pl.off, pl.len, f->scratch,
			  "pread after store", why, sizeof(why))) {
		fam_fail(f, "write.readback", "%s: %s", r->name, why);
	}
}

static void ex_read(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r);
	struct mmapping *m;
	struct msnap *s;
	char why[900];
	uint64_t id;
	int sfd, rc;

	if (!r || !o->len || o->off + o->len > r->n * PG)
		return;
	f->ran = 1;
	if (!o->s) {
		if (!o->var) {
			m = map_pick(r, o->off, o->len, 0, o->x);
			if (m && cmp_mem(&r->live, map_addr(m, o->off), o->off,
					 o->len, "mapping", why, sizeof(why)))
				fam_fail(f, "read.map", "%s: %s", r->name, why);
		} else if (r->fd >= 0 &&
			   cmp_fd(&r->live, r->fd, o->var == 2, o->off, o->len,
				  f->scratch, o->var == 2 ? "read" : "pread",
				  why, sizeof(why))) {
			fam_fail(f, "read.fd", "%s: %s", r->name, why);
		}
		return;
	}
	id = snap_ref(f, r, o->s, &s);
	if (!id)
		return;
	if (s && s->fd >= 0) {
		sfd = s->fd;
	} else {
		if (r->fd < 0)
			return;
		sfd = cs_snap_open(r->fd, id);
		if (!s || !s->listed) {
			CHK_ERR(f, sfd, ENOENT, "snapopen.errno",
				"SNAP_OPEN of a deleted snapshot");
			return;
		}
		CHK_ERR(f, sfd, 0, "errno", "SNAP_OPEN");
	}
	rc = cmp_snapfd(&s->img, sfd, !o->var, o->off, o->len, f->scratch,
			why, sizeof(why));
	if (sfd != s->fd)
		close(sfd);
	if (rc)
		fam_fail(f, "snap.content", "snapshot %llu (s%d) of %s: %s",
			 (unsigned long long)id, s->tag, r->name, why);
}

static void ex_snap(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r), *ar = NULL;
	struct cowsnap_snap_create sc, *arg = &sc;
	unsigned int t = o->s;
	uint8_t *abuf = NULL;
	struct msnap *s;
	int ret, e;

	if (!r || r->fd < 0 || !t || t >= SM_MAXTAGS || f->snap_rtag[t])
		return;
	f->ran = 1;
	memset(&sc, 0, sizeof(sc));
	if (o->x)
		snprintf(sc.label, sizeof(sc.label), "l%u", t);
	/* The argument inside a region: the kernel's stores to it count. */
	if (o->var & 2)
		abuf = arg_addr(f, o->r2, o->off, sizeof(sc), &ar);
	if (abuf) {
		memcpy(abuf, &sc, sizeof(sc));
		model_store(f, ar, o->off, sizeof(sc), &sc);
		arg = (struct cowsnap_snap_create *)abuf;
	}
	snap_lock(f);
	ret = ioctl(r->fd, COWSNAP_IOC_SNAP_CREATE, arg);
	e = errno;
	snap_unlock(f);
	errno = e;
	if (!r->rw) {
		CHK_ERR(f, ret, EACCES, "snap.errno", "SNAP_CREATE read-only");
		return;
	}
	CHK_ERR(f, ret, 0, "errno", "SNAP_CREATE");
	if (abuf) {
		/* Written back once before the snapshot, with the id after. */
		model_store(f, ar, o->off, sizeof(sc), NULL);
		sc.id = arg->id;
	}
	CHK(f, sc.id == r->next_id, "snap.id", "SNAP_CREATE of %s: id %llu, "
	    "model %llu", r->name, (unsigned long long)sc.id,
	    (unsigned long long)r->next_id);
	s = snap_add(f, r, t, sc.id, sc.label);
	if (abuf)
		model_store(f, ar, o->off, sizeof(sc), &sc);
	if (o->var & 1) {
		int fd = cs_snap_open(r->fd, s->id);

		CHK_ERR(f, fd, 0, "errno", "SNAP_OPEN");
		sfd_publish(f, s, fd);
	}
}

/* Pages where @a and @b differ, for messages. */
static void diff_pages(const struct mimg *a, const struct mimg *b, char *buf,
		       size_t len)
{
	size_t p, k = 0;
	int n = 0;

	buf[0] = 0;
	for (p = 0; p < a->n && k + 24 < len; p++) {
		if (a->id[p] == b->id[p])
			continue;
		if (++n > 12) {
			snprintf(buf + k, len - k, " ...");
			return;
		}
		k += snprintf(buf + k, len - k, " %zu", p);
	}
	if (!n)
		snprintf(buf, len, " none");
}

static void ex_restore(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r), *ar = NULL;
	struct cowsnap_restore rs, *arg = &rs;
	uint64_t id, newest, expect = 0;
	long long got, want;
	uint8_t *abuf = NULL;
	char pages[200];
	struct msnap *s;
	int err, ret, e;
	long acct;
	size_t p;

	if (!r || r->fd < 0)
		return;
	id = snap_ref(f, r, o->s, &s);
	if (!id)
		return;
	f->ran = 1;
	newest = reg_newest(f, r);
	if ((o->var & 3) == 1)
		expect = newest;
	else if ((o->var & 3) == 2)
		expect = newest + 1 + o->x % 3;
	err = !r->rw ? EACCES : !s || !s->listed ? ENOENT :
	      expect && expect != newest ? EXDEV : 0;
	memset(&rs, 0, sizeof(rs));
	rs.id = id;
	rs.expect_newest = expect;
	if (o->var & 16)
		abuf = arg_addr(f, o->r2, o->off, sizeof(rs), &ar);
	if (abuf) {
		memcpy(abuf, &rs, sizeof(rs));
		model_store(f, ar, o->off, sizeof(rs), &rs);
		arg = (struct cowsnap_restore *)abuf;
	}
	ret = ioctl(r->fd, COWSNAP_IOC_RESTORE, arg);
	e = errno;
	got = ret ? -1 : (long long)arg->pages_restored;
	/* The argument is written back before restoring (not on EACCES). */
	if (abuf && r->rw)
		model_store(f, ar, o->off, sizeof(rs), NULL);
	errno = e;
	if (err) {
		CHK_ERR(f, ret, err, "restore.errno", "RESTORE");
		return;
	}
	CHK_ERR(f, ret, 0, "errno", "RESTORE");
	diff_pages(&r->live, &s->img, pages, sizeof(pages));
	acct = acct_restore(f, r, s);
	want = 0;
	for (p = 0; p < r->n; p++) {
		if (r->live.id[p] == s->img.id[p])
			continue;
		img_set(f, &r->live, p, s->img.id[p], s->img.pg[p]);
		want++;
	}
	ACHK(f, acct == want, "restore of %s to %llu: the records change %ld "
	     "pages, the images differ in %lld", r->name,
	     (unsigned long long)id, acct, want);
	if (sm_inject == 1 && id != newest && want > 0)
		want--;
	r->base = id;
	if (abuf) {
		rs.pages_restored = got;
		model_store(f, ar, o->off, sizeof(rs), &rs);
	}
	CHK(f, got == want, "restore.count", "RESTORE %s to %llu (s%d%s): "
	    "pages_restored %lld, model %lld (pages touched since:%s)",
	    r->name, (unsigned long long)id, s->tag,
	    id == newest ? ", the newest" : "", got, want, pages);
	chk_live_some(f, r, o->seed, 4, "restore.content");
}

static void ex_delete(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r);
	struct msnap *s;
	uint64_t id;
	int err;

	if (!r || r->fd < 0)
		return;
	id = snap_ref(f, r, o->s, &s);
	if (!id)
		return;
	f->ran = 1;
	err = !r->rw ? EACCES : !s || !s->listed ? ENOENT : 0;
	CHK_ERR(f, cs_snap_delete(r->fd, id), err,
		err ? "delete.errno" : "errno", "SNAP_DELETE");
	if (!err)
		snap_unlist(f, r, s);
}

/* The next run [*s, *s+*c) from *p where @a and @b differ; 0 if none. */
static int next_ext(const struct mimg *a, const struct mimg *b, uint64_t *p,
		    uint64_t *s, uint64_t *c)
{
	uint64_t i = *p, n = a->n;

	while (i < n && a->id[i] == b->id[i])
		i++;
	if (i >= n) {
		*p = n;
		return 0;
	}
	*s = i;
	while (i < n && a->id[i] != b->id[i])
		i++;
	*c = i - *s;
	*p = i;
	return 1;
}

static void ex_diff(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r), *ar = NULL;
	struct cowsnap_extent *ext = (struct cowsnap_extent *)f->scratch;
	unsigned int tag[2] = { o->s, o->s2 }, cap, i, nexp;
	const struct mimg *img[2];
	uint64_t id[2], p, *es, *ec;
	char desc[200], pages[200];
	struct cowsnap_diff d;
	uint8_t *abuf = NULL;
	int k, err = 0;

	if (!r || r->fd < 0)
		return;
	for (k = 0; k < 2; k++) {
		struct msnap *s;

		id[k] = 0;
		img[k] = &r->live;
		if (!tag[k])
			continue;
		id[k] = snap_ref(f, r, tag[k], &s);
		if (!id[k])
			return;
		if (!s || !s->listed)
			err = ENOENT;
		else
			img[k] = &s->img;
	}
	f->ran = 1;
	cap = o->x && o->x <= 1024 ? o->x : 1;
	/* The extents buffer inside a region: its stores count. */
	if (o->var & 1)
		abuf = arg_addr(f, o->r2, o->seed, cap * sizeof(*ext), &ar);
	if (abuf)
		ext = (struct cowsnap_extent *)abuf;
	snprintf(desc, sizeof(desc), "DIFF %s from %llu to %llu, start %llu, "
		 "%u per call%s", r->name, (unsigned long long)id[0],
		 (unsigned long long)id[1], (unsigned long long)o->off, cap,
		 abuf ? ", into a region" : "");
	memset(&d, 0, sizeof(d));
	d.from = id[0];
	d.to = id[1];
	d.start = o->off;
	d.extents = (uintptr_t)ext;
	d.count = cap;
	if (err) {
		CHK_ERR(f, ioctl(r->fd, COWSNAP_IOC_DIFF, &d), err,
			"diff.errno", desc);
		return;
	}
	es = xmalloc(2 * (cap + 1) * sizeof(*es));
	ec = es + cap + 1;
	for (;;) {
		/* What this call must return: the model now, from d.start. */
		p = d.start;
		for (nexp = 0; nexp <= cap &&
		     next_ext(img[0], img[1], &p, &es[nexp], &ec[nexp]); nexp++)
			;
		diff_pages(img[0], img[1], pages, sizeof(pages));
		d.count = cap;
		CHK_ERR(f, ioctl(r->fd, COWSNAP_IOC_DIFF, &d), 0, "errno",
			desc);
		CHK(f, d.count <= cap, "diff.count", "%s: %u extents", desc,
		    d.count);
		for (i = 0; i < d.count; i++)
			CHK(f, i < nexp && ext[i].start == es[i] &&
			    ext[i].count == ec[i], "diff.extent", "%s: from "
			    "%llu, extent %u is %llu+%llu, model %s%llu+%llu "
			    "(identities differ at:%s)", desc,
			    (unsigned long long)d.start, i,
			    (unsigned long long)ext[i].start,
			    (unsigned long long)ext[i].count,
			    i < nexp ? "" : "none, last ",
			    (unsigned long long)(nexp ? es[i < nexp ? i :
							   nexp - 1] : 0),
			    (unsigned long long)(nexp ? ec[i < nexp ? i :
							   nexp - 1] : 0),
			    pages);
		if (d.next)
			CHK(f, d.count == cap && nexp > cap &&
			    d.next == es[cap], "diff.next", "%s: next %llu "
			    "after %u extents, model %s %llu", desc,
			    (unsigned long long)d.next, d.count,
			    nexp > cap ? "next extent at" : "done",
			    (unsigned long long)(nexp > cap ? es[cap] : 0));
		else
			CHK(f, nexp == d.count, "diff.missing", "%s: from "
			    "%llu, %u extents and done, model has %u "
			    "(identities differ at:%s)", desc,
			    (unsigned long long)d.start, d.count, nexp, pages);
		if (abuf && d.count)
			model_store(f, ar, o->seed, d.count * sizeof(*ext),
				    ext);
		if (!d.next)
			break;
		d.start = d.next;
	}
	free(es);
}

static void ex_clone(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r), *nr;
	struct msnap *s;
	uint64_t id;
	int err, fd;

	if (!r || r->fd < 0)
		return;
	id = snap_ref(f, r, o->s, &s);
	if (!id)
		return;
	f->ran = 1;
	if (o->var & 1) {
		if (r->destroyed)
			return;
		CHK_ERR(f, cs_clone(r->fd, id, r->name, o->x),
			r->rw ? EEXIST : EACCES, "clone.errno",
			"CLONE onto an existing name");
		return;
	}
	if (!o->r2 || o->r2 >= SM_MAXTAGS || f->reg[o->r2])
		return;
	nr = reg_alloc(f, o->r2, r->n, o->x);
	err = !r->rw ? EACCES : !s || !s->listed ? ENOENT : 0;
	CHK_ERR(f, cs_clone(r->fd, id, nr->name, nr->mode), err,
		err ? "clone.errno" : "errno", "CLONE");
	if (err) {
		reg_release(nr);
		return;
	}
	fd = cs_open();
	CHK(f, fd >= 0, "errno", "open: %s", strerror(errno));
	CHK_ERR(f, cs_attach(fd, nr->name), 0, "errno", "ATTACH to a clone");
	f->reg[nr->tag] = nr;
	if (nr->tag > f->nrtag)
		f->nrtag = nr->tag;
	nr->alive = 1;
	nr->fd = fd;
	nr->rw = 1;
	img_clone(f, &nr->live, &s->img);
	acct_clone(f, nr);
	map_new(f, nr, 0, nr->n, 1, 1, fd);
}

/*
 * Dump a snapshot and load it into a new region: by libcowsnap through a
 * memfd, or raw (read through the snapshot fd, written back by pwrite or a
 * mapping).  The loaded region holds new pages where data was written.
 */
static void ex_dumpload(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r), *nr;
	int dump = o->var & 3, load = o->var >> 2, fd, sfd, own = 0;
	struct csnap_dump_info di = { .struct_size = sizeof(di) };
	uint8_t *buf = NULL, *m;
	struct msnap *s;
	size_t p, len;
	long nz = 0;
	uint64_t id;
	char why[900];

	if (!r || r->n > 4096 || !o->r2 || o->r2 >= SM_MAXTAGS ||
	    f->reg[o->r2])
		return;
	id = snap_ref(f, r, o->s, &s);
	if (!id)
		return;
	nr = reg_alloc(f, o->r2, r->n, o->x);
	f->ran = 1;
	len = r->n * PG;
	if (s)
		for (p = 0; p < s->img.n; p++)
			nz += !page_zero(s->img.pg[p]);
	if (dump == 0) {
		int mfd;

		if (r->fd < 0) {
			reg_release(nr);
			return;
		}
		mfd = memfd_create("sm-dump", MFD_CLOEXEC);
		CHK(f, mfd >= 0, "errno", "memfd_create: %s", strerror(errno));
		if (!s || !s->listed) {
			CHK_ERR(f, csnap_dump(r->fd, id, mfd, &di, NULL, NULL),
				ENOENT, "dump.errno", "cowsnap_dump of a "
				"deleted snapshot");
			close(mfd);
			reg_release(nr);
			return;
		}
		CHK_ERR(f, csnap_dump(r->fd, id, mfd, &di, NULL, NULL), 0,
			"errno", "cowsnap_dump");
		CHK(f, (long)di.data_pages == nz, "dump.pages", "dump of %llu "
		    "holds %llu pages, model %ld non-zero",
		    (unsigned long long)id,
		    (unsigned long long)di.data_pages, nz);
		CHK(f, lseek(mfd, 0, SEEK_SET) == 0, "errno", "lseek");
		CHK_ERR(f, csnap_dump_check(mfd, &di), 0, "dump.check",
			"cowsnap_dump_check");
		CHK(f, lseek(mfd, 0, SEEK_SET) == 0, "errno", "lseek");
		fd = cs_open();
		CHK(f, fd >= 0, "errno", "open: %s", strerror(errno));
		CHK_ERR(f, csnap_load(fd, nr->name, nr->mode, mfd, &di, NULL,
					NULL), 0, "errno", "cowsnap_load");
		close(mfd);
		reg_add(f, nr, fd, 1);
		load = 1;
	} else {
		if (s && s->fd >= 0) {
			sfd = s->fd;
		} else {
			if (r->fd < 0) {
				reg_release(nr);
				return;
			}
			sfd = cs_snap_open(r->fd, id);
			if (!s || !s->listed) {
				CHK_ERR(f, sfd, ENOENT, "snapopen.errno",
					"SNAP_OPEN of a deleted snapshot");
				reg_release(nr);
				return;
			}
			CHK_ERR(f, sfd, 0, "errno", "SNAP_OPEN");
			own = 1;
		}
		buf = xmalloc(len);
		if (dump == 1) {
			CHK(f, !pread_full(sfd, buf, len, 0), "errno",
			    "pread of the snapshot: %s", strerror(errno));
		} else {
			m = mmap(NULL, len, PROT_READ, MAP_SHARED, sfd, 0);
			CHK(f, m != MAP_FAILED, "errno", "mmap of the "
			    "snapshot: %s", strerror(errno));
			memcpy(buf, m, len);
			munmap(m, len);
		}
		if (own)
			close(sfd);
		if (cmp_mem(&s->img, buf, 0, len, dump == 1 ? "dump by pread" :
			    "dump by mmap", why, sizeof(why))) {
			free(buf);
			fam_fail(f, "dump.content", "snapshot %llu (s%d) of "
				 "%s: %s", (unsigned long long)id, s->tag,
				 r->name, why);
		}
		fd = cs_open();
		CHK(f, fd >= 0, "errno", "open: %s", strerror(errno));
		CHK_ERR(f, cs_create(fd, nr->name, len, nr->mode), 0,
			"errno", "CREATE for a load");
		reg_add(f, nr, fd, 1);
		if (load == 2) {
			map_new(f, nr, 0, nr->n, 1, 1, fd);
			for (p = 0; p < nr->n; p++)
				if (!page_zero(s->img.pg[p]))
					memcpy(nr->map[0].addr + p * PG,
					       buf + p * PG, PG);
		} else {
			for (p = 0; p < nr->n; p++)
				if (load == 0 || !page_zero(s->img.pg[p]))
					CHK(f, !pwrite_full(fd, buf + p * PG,
							    PG, p * PG),
					    "errno", "pwrite of a load: %s",
					    strerror(errno));
		}
		free(buf);
	}
	/* Written pages are new pages; zero pages skipped stay holes. */
	for (p = 0; p < nr->n; p++)
		if (load == 0 || !page_zero(s->img.pg[p])) {
			img_set(f, &nr->live, p, ident_new(f), s->img.pg[p]);
			acct_store(f, nr, p, 0, nr->live.id[p]);
		}
	if (!nr->nmap)
		map_new(f, nr, 0, nr->n, 1, 1, nr->fd);
	chk_live_all(f, nr, "load.content");
}

static void ex_destroy(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r);
	int fd, ret, e;

	if (!r)
		return;
	f->ran = 1;
	fd = r->fd >= 0 ? r->fd : cs_open();
	CHK(f, fd >= 0, "errno", "open: %s", strerror(errno));
	ret = cs_destroy(fd, r->name);
	e = errno;
	if (fd != r->fd)
		close(fd);
	errno = e;
	CHK_ERR(f, ret, r->destroyed ? ENOENT : 0,
		r->destroyed ? "destroy.errno" : "errno", "DESTROY");
	r->destroyed = 1;
	if (o->var & 1)
		reg_close(f, r, 1);
	reg_maybe_free(f, r);
}

static void ex_close(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r);

	if (!r || r->fd < 0)
		return;
	f->ran = 1;
	reg_close(f, r, o->var & 1);
	reg_maybe_free(f, r);
}

static void ex_attach(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r);
	int fd;

	if (!r || r->fd >= 0)
		return;
	f->ran = 1;
	fd = open(COWSNAP_DEV, (o->var & 1 ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	CHK(f, fd >= 0, "errno", "open: %s", strerror(errno));
	if (r->destroyed) {
		CHK_ERR(f, cs_attach(fd, r->name), ENOENT, "attach.errno",
			"ATTACH to a destroyed name");
		close(fd);
		return;
	}
	CHK_ERR(f, cs_attach(fd, r->name), 0, "errno", "ATTACH");
	r->fd = fd;
	r->rw = !(o->var & 1);
}

static void ex_map(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r);
	int ro = o->var & 1, second = o->var & 2, hfd, hrw, prot;
	size_t pgoff, np;
	void *a;

	if (!r || r->nmap >= SM_MAXMAP)
		return;
	f->ran = 1;
	pgoff = o->off < r->n ? o->off : o->off % r->n;
	np = o->len && o->len <= r->n - pgoff ? o->len : r->n - pgoff;
	if (second && !r->destroyed) {
		hfd = cs_open();
		CHK(f, hfd >= 0, "errno", "open: %s", strerror(errno));
		CHK_ERR(f, cs_attach(hfd, r->name), 0, "errno",
			"ATTACH of a second handle");
		hrw = 1;
	} else {
		if (r->fd < 0)
			return;
		second = 0;
		hfd = r->fd;
		hrw = r->rw;
	}
	prot = PROT_READ | (ro ? 0 : PROT_WRITE);
	if (o->var & 4) {
		/* One page past the end: EINVAL (EACCES first if read-only). */
		a = mmap(NULL, (r->n - pgoff + 1) * PG, prot, MAP_SHARED, hfd,
			 pgoff * PG);
		if (a != MAP_FAILED)
			munmap(a, (r->n - pgoff + 1) * PG);
		CHK_ERR(f, a == MAP_FAILED ? -1 : 0,
			!ro && !hrw ? EACCES : EINVAL, "map.errno",
			"mmap past the end");
	} else if (!ro && !hrw) {
		a = mmap(NULL, np * PG, prot, MAP_SHARED, hfd, pgoff * PG);
		if (a != MAP_FAILED)
			munmap(a, np * PG);
		CHK_ERR(f, a == MAP_FAILED ? -1 : 0, EACCES, "map.errno",
			"mmap PROT_WRITE of a read-only handle");
	} else {
		map_new(f, r, pgoff, np, !ro, hrw, hfd);
		chk_live_some(f, r, o->seed, 2, "map.content");
	}
	if (second)
		close(hfd);
}

static void ex_munmap(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r);
	struct mmapping *m;
	size_t k, a;
	int how;

	if (!r || !r->nmap)
		return;
	f->ran = 1;
	m = &r->map[o->x % r->nmap];
	how = m->npages < 2 ? 0 : o->var & 3;
	if (how == 3 && (m->npages < 3 || r->nmap >= SM_MAXMAP))
		how = 1;
	k = o->len && o->len < m->npages ? o->len : 1;
	switch (how) {
	case 0:
		CHK(f, !munmap(m->addr, m->npages * PG), "errno", "munmap: %s",
		    strerror(errno));
		map_remove(r, m - r->map);
		break;
	case 1:
		CHK(f, !munmap(m->addr, k * PG), "errno", "munmap: %s",
		    strerror(errno));
		m->addr += k * PG;
		m->pgoff += k;
		m->npages -= k;
		break;
	case 2:
		CHK(f, !munmap(m->addr + (m->npages - k) * PG, k * PG),
		    "errno", "munmap: %s", strerror(errno));
		m->npages -= k;
		break;
	default:
		a = o->off && o->off <= m->npages - 2 ? o->off : 1;
		if (a + k >= m->npages)
			k = 1;
		CHK(f, !munmap(m->addr + a * PG, k * PG), "errno",
		    "munmap: %s", strerror(errno));
		r->map[r->nmap] = *m;
		r->map[r->nmap].addr = m->addr + (a + k) * PG;
		r->map[r->nmap].pgoff = m->pgoff + a + k;
		r->map[r->nmap].npages = m->npages - a - k;
		r->nmap++;
		m->npages = a;
		break;
	}
	reg_maybe_free(f, r);
	if (r->alive)
		chk_live_some(f, r, o->seed, 2, "munmap.content");
}

static void ex_mremap(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r);
	struct mmapping *m;
	size_t len, k;
	void *a, *res;
	char why[900];

	if (!r || !r->nmap)
		return;
	f->ran = 1;
	m = &r->map[o->x % r->nmap];
	len = m->npages * PG;
	switch (o->var & 3) {
	case 0:
		res = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
		CHK(f, res != MAP_FAILED, "errno", "mmap: %s", strerror(errno));
		a = mremap(m->addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
			   res);
		CHK(f, a == res, "mremap", "mremap move of %zu pages: %s",
		    m->npages, strerror(errno));
		m->addr = a;
		break;
	case 1:
		if (m->npages < 2)
			return;
		k = o->len && o->len < m->npages ? o->len : 1;
		a = mremap(m->addr, len, len - k * PG, 0);
		CHK(f, a == m->addr, "mremap", "mremap shrink: %s",
		    strerror(errno));
		m->npages -= k;
		break;
	default:
		/* Mappings cannot grow (VM_DONTEXPAND). */
		a = mremap(m->addr, len, len + PG,
			   (o->var & 3) == 3 ? MREMAP_MAYMOVE : 0);
		if (a != MAP_FAILED)
			munmap(a, len + PG);
		CHK(f, a == MAP_FAILED, "mremap", "mremap grew a mapping of "
		    "%s to %zu pages", r->name, m->npages + 1);
		break;
	}
	if (cmp_all(&r->live, m->addr, m->pgoff, m->npages, -1, 0,
		    f->scratch, &f->vr, "mapping after mremap", why,
		    sizeof(why)))
		fam_fail(f, "mremap.content", "%s: %s", r->name, why);
}

/* mprotect() and madvise(MADV_DONTNEED) on a mapping. */
static void ex_mprot(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r);
	struct mmapping *m;
	char why[900];
	size_t len;
	int ret;

	if (!r || !r->nmap)
		return;
	f->ran = 1;
	m = &r->map[o->x % r->nmap];
	len = m->npages * PG;
	if ((o->var & 3) == 2) {
		CHK(f, !madvise(m->addr, len, MADV_DONTNEED), "errno",
		    "madvise: %s", strerror(errno));
	} else {
		if ((o->var & 3) != 1) {
			CHK(f, !mprotect(m->addr, len, PROT_READ), "errno",
			    "mprotect: %s", strerror(errno));
			m->rw = 0;
		}
		if (o->var & 1) {
			ret = mprotect(m->addr, len, PROT_READ | PROT_WRITE);
			CHK_ERR(f, ret, m->maywrite ? 0 : EACCES, "mprot.errno",
				"mprotect PROT_WRITE");
			m->rw = m->maywrite;
		}
	}
	if (cmp_all(&r->live, m->addr, m->pgoff, m->npages, -1, 0,
		    f->scratch, &f->vr, "mapping after mprotect/madvise", why,
		    sizeof(why)))
		fam_fail(f, "mprot.content", "%s: %s", r->name, why);
}

static void ex_info(struct fam *f, struct mreg *r)
{
	struct cowsnap_info in;
	const char *name = r->destroyed ? "" : r->name;
	unsigned int flags = (r->rw ? COWSNAP_INFO_WRITABLE : 0) |
			     (r->destroyed ? COWSNAP_INFO_DESTROYED : 0);
	struct msnap *v[SM_MAXTAGS];
	int n = reg_snaps(f, r, v, SM_MAXTAGS);

	CHK_ERR(f, cs_info(r->fd, &in), 0, "errno", "INFO");
	CHK(f, !strcmp(in.name, name), "info.name", "INFO name \"%s\", model "
	    "\"%s\"", in.name, name);
	CHK(f, in.flags == flags, "info.flags", "INFO of %s: flags %#x, model "
	    "%#x", r->name, in.flags, flags);
	CHK(f, in.size == r->n * PG && in.mode == r->mode &&
	    in.uid == getuid() && in.gid == getgid(), "info.attr",
	    "INFO of %s: size %llu mode %o uid %u gid %u", r->name,
	    (unsigned long long)in.size, in.mode, in.uid, in.gid);
	CHK(f, (long)in.resident_pages == img_present(&r->live),
	    "info.resident", "INFO of %s: resident_pages %llu, model %ld",
	    r->name, (unsigned long long)in.resident_pages,
	    img_present(&r->live));
	if (!r->acct_lost) {
		long sh = acct_shared(f, r);

		CHK(f, (long)in.shared_pages == sh, "info.shared", "INFO of "
		    "%s: shared_pages %llu, model %ld", r->name,
		    (unsigned long long)in.shared_pages, sh);
	}
	CHK(f, in.nr_snapshots == (uint64_t)n, "info.snapshots", "INFO of %s: "
	    "nr_snapshots %llu, model %d", r->name,
	    (unsigned long long)in.nr_snapshots, n);
	CHK(f, in.newest_snapshot == (n ? v[n - 1]->id : 0), "info.newest",
	    "INFO of %s: newest %llu, model %llu", r->name,
	    (unsigned long long)in.newest_snapshot,
	    (unsigned long long)(n ? v[n - 1]->id : 0));
}

/* SNAP_LIST from id @start, @cap entries per call, against the model. */
static void ex_list(struct fam *f, struct mreg *r, uint64_t start,
		    unsigned int cap)
{
	struct cowsnap_snap_entry *e = (struct cowsnap_snap_entry *)f->scratch;
	struct msnap *v[SM_MAXTAGS];
	int n = reg_snaps(f, r, v, SM_MAXTAGS), k = 0;
	struct cowsnap_snap_list l;
	uint64_t last_ctime = 0;
	unsigned int i;

	if (!cap || cap > 64)
		cap = 64;
	while (k < n && v[k]->id < start)
		k++;
	memset(&l, 0, sizeof(l));
	l.start_id = start;
	l.entries = (uintptr_t)e;
	for (;;) {
		l.count = cap;
		CHK_ERR(f, ioctl(r->fd, COWSNAP_IOC_SNAP_LIST, &l), 0, "errno",
			"SNAP_LIST");
		CHK(f, l.count <= cap, "list.count", "SNAP_LIST: %u entries",
		    l.count);
		for (i = 0; i < l.count; i++, k++) {
			struct msnap *s = k < n ? v[k] : NULL;
			long ref, excl;

			CHK(f, s && e[i].id == s->id, "list.id", "SNAP_LIST of "
			    "%s: entry %llu, model %llu", r->name,
			    (unsigned long long)e[i].id,
			    (unsigned long long)(s ? s->id : 0));
			ref = img_present(&s->img);
			excl = acct_excl(f, r, s);
			CHK(f, !strcmp(e[i].label, s->label), "list.label",
			    "snapshot %llu label \"%s\", model \"%s\"",
			    (unsigned long long)s->id, e[i].label, s->label);
			CHK(f, (long)e[i].referenced_pages == ref,
			    "list.referenced", "SNAP_LIST of %s: snapshot %llu "
			    "referenced %llu, model %ld", r->name,
			    (unsigned long long)s->id,
			    (unsigned long long)e[i].referenced_pages, ref);
			CHK(f, r->acct_lost ||
			    (long)e[i].exclusive_pages == excl,
			    "list.exclusive", "SNAP_LIST of %s: snapshot %llu "
			    "exclusive %llu, model %ld", r->name,
			    (unsigned long long)s->id,
			    (unsigned long long)e[i].exclusive_pages, excl);
			CHK(f, e[i].ctime_ns && e[i].ctime_ns >= last_ctime,
			    "list.ctime", "snapshot %llu ctime %llu after %llu",
			    (unsigned long long)s->id,
			    (unsigned long long)e[i].ctime_ns,
			    (unsigned long long)last_ctime);
			last_ctime = e[i].ctime_ns;
		}
		if (!l.next_id)
			break;
		CHK(f, l.count == cap && k < n && l.next_id == v[k]->id,
		    "list.next", "SNAP_LIST of %s: next %llu after %u entries",
		    r->name, (unsigned long long)l.next_id, l.count);
		l.start_id = l.next_id;
	}
	CHK(f, k == n, "list.missing", "SNAP_LIST of %s ended, model has "
	    "snapshot %llu", r->name, (unsigned long long)v[k]->id);
}

/* Solo: /proc/cowsnap's records of the family's regions and snapshots. */
static void ex_proc(struct fam *f)
{
	char *text = read_proc(), key[160], label[COWSNAP_NAME_MAX];
	unsigned long long v[6];
	unsigned int uid, gid, mode;
	const char *ln;
	int t, i, n;
	long sh;

	CHK(f, text, "errno", "reading /proc/cowsnap: %s", strerror(errno));
	for (t = 1; t <= f->nrtag; t++) {
		struct mreg *r = reg_get(f, t);
		struct msnap *sv[SM_MAXTAGS];

		if (!f->reg[t])
			continue;
		snprintf(key, sizeof(key), "region %s ", f->reg[t]->name);
		ln = proc_line(text, key);
		if (!r || r->destroyed) {
			CHK(f, !ln, "proc.region", "/proc/cowsnap lists %s, "
			    "which is destroyed", f->reg[t]->name);
			continue;
		}
		CHK(f, ln && sscanf(ln + strlen(key), "%llu %llu %llu %llu "
				    "%llu %u %u %o", &v[0], &v[1], &v[2],
				    &v[3], &v[4], &uid, &gid, &mode) == 8,
		    "proc.region", "/proc/cowsnap has no record of %s", r->name);
		n = reg_snaps(f, r, sv, SM_MAXTAGS);
		sh = acct_shared(f, r);
		CHK(f, v[0] == r->n * PG && (long)v[1] == img_present(&r->live) &&
		    (r->acct_lost || (long)v[2] == sh) &&
		    v[3] == (unsigned long long)n &&
		    v[4] == (n ? sv[n - 1]->id : 0) && mode == r->mode,
		    "proc.region", "/proc/cowsnap: %s %llu %llu %llu %llu %llu "
		    "%o, model %zu %ld %ld %d %llu %o", r->name, v[0], v[1],
		    v[2], v[3], v[4], mode, r->n * PG, img_present(&r->live),
		    sh, n, (unsigned long long)(n ? sv[n - 1]->id : 0),
		    r->mode);
		for (i = 0; i < n; i++) {
			struct msnap *s = sv[i];
			long ex = acct_excl(f, r, s);

			snprintf(key, sizeof(key), "snapshot %s %llu ", r->name,
				 (unsigned long long)s->id);
			ln = proc_line(text, key);
			CHK(f, ln && sscanf(ln + strlen(key), "%63s %llu %llu "
					    "%llu", label, &v[0], &v[1],
					    &v[2]) == 4, "proc.snapshot",
			    "/proc/cowsnap has no record of %s snapshot %llu",
			    r->name, (unsigned long long)s->id);
			CHK(f, !strcmp(label, s->label[0] ? s->label : "-") &&
			    (long)v[1] == img_present(&s->img) &&
			    (r->acct_lost || (long)v[2] == ex),
			    "proc.snapshot", "/proc/cowsnap: %s snapshot %llu "
			    "%s ref %llu excl %llu, model %s %ld %ld", r->name,
			    (unsigned long long)s->id, label, v[1], v[2],
			    s->label, img_present(&s->img), ex);
		}
	}
	free(text);
}

static void ex_verify(struct fam *f)
{
	int t;

	for (t = 1; t <= f->nrtag; t++) {
		struct mreg *r = reg_get(f, t);

		if (!r)
			continue;
		chk_live_all(f, r, "verify.live");
		if (r->fd >= 0) {
			ex_info(f, r);
			ex_list(f, r, 0, 64);
		}
	}
	for (t = 1; t <= f->nstag; t++) {
		struct msnap *s = f->snap[t];
		struct mreg *r;
		int sfd;

		if (!s)
			continue;
		if (s->fd >= 0) {
			chk_snap_all(f, s, s->fd, "verify.snap");
			continue;
		}
		r = reg_get(f, s->rtag);
		if (!r || r->fd < 0)
			continue;
		sfd = cs_snap_open(r->fd, s->id);
		CHK_ERR(f, sfd, 0, "errno", "SNAP_OPEN");
		chk_snap_all(f, s, sfd, "verify.snap");
		close(sfd);
	}
}

static void ex_sfdopen(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r);
	struct msnap *s;
	uint64_t id;
	int fd;

	if (!r || r->fd < 0)
		return;
	id = snap_ref(f, r, o->s, &s);
	if (!id || (s && s->fd >= 0))
		return;
	f->ran = 1;
	fd = cs_snap_open(r->fd, id);
	if (!s || !s->listed) {
		CHK_ERR(f, fd, ENOENT, "snapopen.errno",
			"SNAP_OPEN of a deleted snapshot");
		return;
	}
	CHK_ERR(f, fd, 0, "errno", "SNAP_OPEN");
	sfd_publish(f, s, fd);
	chk_snap_all(f, s, fd, "snap.content");
}

static void ex_sfdclose(struct fam *f, const struct op *o)
{
	struct msnap *s = o->s < SM_MAXTAGS ? f->snap[o->s] : NULL;

	if (s && s->fd >= 0) {
		f->ran = 1;
		sfd_close(f, s);
	}
}

static void ex_snapchk(struct fam *f, const struct op *o)
{
	struct msnap *s = o->s < SM_MAXTAGS ? f->snap[o->s] : NULL;
	struct mreg *r;
	int sfd;

	if (!s)
		return;
	f->ran = 1;
	if (s->fd >= 0) {
		chk_snap_all(f, s, s->fd, "snap.content");
		return;
	}
	r = reg_get(f, s->rtag);
	if (!r || r->fd < 0 || !s->listed)
		return;
	sfd = cs_snap_open(r->fd, s->id);
	CHK_ERR(f, sfd, 0, "errno", "SNAP_OPEN");
	chk_snap_all(f, s, sfd, "snap.content");
	close(sfd);
}

/* Close every fd and mapping and destroy every name; quiet (failures). */
static void fam_cleanup(struct fam *f)
{
	int t, fd = cs_open();

	for (t = 1; t <= f->nstag; t++) {
		struct msnap *s = f->snap[t];

		if (s && s->fd >= 0) {
			pthread_mutex_lock(&f->mu);
			while (s->busy)
				pthread_cond_wait(&f->cv, &f->mu);
			close(s->fd);
			s->fd = -1;
			pthread_mutex_unlock(&f->mu);
		}
	}
	for (t = 1; t <= f->nrtag; t++) {
		struct mreg *r = f->reg[t];

		if (!r)
			continue;
		if (r->fd >= 0)
			close(r->fd);
		r->fd = -1;
		while (r->nmap) {
			r->nmap--;
			munmap(r->map[r->nmap].addr,
			       r->map[r->nmap].npages * PG);
		}
		if (fd >= 0)
			cs_destroy(fd, r->name);
	}
	if (fd >= 0)
		close(fd);
}

/* Verify everything, then close, unmap and destroy it all. */
static void ex_end(struct fam *f)
{
	int t, fd;

	ex_verify(f);
	for (t = 1; t <= f->nstag; t++)
		if (f->snap[t] && f->snap[t]->fd >= 0)
			sfd_close(f, f->snap[t]);
	for (t = 1; t <= f->nrtag; t++) {
		struct mreg *r = reg_get(f, t);

		if (!r)
			continue;
		reg_close(f, r, 1);
		if (!r->destroyed) {
			fd = cs_open();
			CHK(f, fd >= 0, "errno", "open: %s", strerror(errno));
			CHK_ERR(f, cs_destroy(fd, r->name), 0, "errno",
				"DESTROY");
			close(fd);
			r->destroyed = 1;
		}
		reg_maybe_free(f, r);
	}
	CHK(f, !f->nalloc && !fam_alive(f) && !fam_listed(f), "model",
	    "model not empty after teardown: %ld pages", f->nalloc);
	ACHK(f, !f->oalloc, "model owns %ld pages after teardown", f->oalloc);
}

/* Model all writes of a PAR/FORK op (disjoint pages: order is moot). */
static void model_subs(struct fam *f, struct mreg *r, const struct op *o,
		       const struct fork_env *child_fe)
{
	struct wplan pl;
	unsigned int i;

	for (i = 0; i < o->nsub; i++) {
		const struct wr *w = &f->log->subs[o->sub + i];

		if (sub_off(f, o->sub + i))
			continue;
		wr_plan(f, r, w, w->who ? child_fe : NULL, &pl);
		if (!pl.skip && !pl.err && pl.len)
			model_write(f, r, w, &pl);
	}
}

/*
 * The owner and the helper threads write disjoint pages of @r at once,
 * each reading its pages back; the model is final before they start.
 */
static void ex_par(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r);
	int who, rc[SM_PARTS];

	if (!r)
		return;
	f->ran = 1;
	model_subs(f, r, o, NULL);
	if (f->ctl)
		f->ctl->par[f->wid]++;
	if (!f->threads) {
		for (who = 0; who < SM_PARTS; who++)
			if (subs_run(f, r, o, who, NULL, f->wbuf,
				     f->par_err[0], sizeof(f->par_err[0])))
				fam_fail(f, "par", "%s: writer %d: %s", r->name,
					 who, f->par_err[0]);
		return;
	}
	pthread_mutex_lock(&f->mu);
	f->par_op = o;
	f->par_reg = r;
	f->par_done = 0;
	f->par_gen++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	rc[0] = subs_run(f, r, o, 0, NULL, f->wbuf, f->par_err[0],
			 sizeof(f->par_err[0]));
	pthread_mutex_lock(&f->mu);
	while (f->par_done < SM_HELPERS)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
	for (who = 0; who < SM_PARTS; who++)
		if (who ? f->par_err[who][0] : rc[0])
			fam_fail(f, "par", "%s: writer %d: %s", r->name, who,
				 f->par_err[who]);
}

struct fork_msg {
	int rc;
	char why[700];
};

/* FORK child: its writes, the whole region once the parent's are done. */
static void __attribute__((noreturn))
fork_child(struct fam *f, struct mreg *r, const struct op *o, int attach,
	   int tx, int rx)
{
	struct fork_env fe = { NULL, -1 };
	struct rng g = { o->seed };
	struct fork_msg msg;
	uint64_t id;
	char c;

	memset(&msg, 0, sizeof(msg));
	if (attach) {
		fe.fd = cs_open();
		if (fe.fd < 0 || cs_attach(fe.fd, r->name)) {
			msg.rc = 1;
			snprintf(msg.why, sizeof(msg.why), "ATTACH %s: %s",
				 r->name, strerror(errno));
		} else {
			fe.map = mmap(NULL, r->n * PG, PROT_READ | PROT_WRITE,
				      MAP_SHARED, fe.fd, 0);
			if (fe.map == MAP_FAILED) {
				fe.map = NULL;
				msg.rc = 1;
				snprintf(msg.why, sizeof(msg.why), "mmap: %s",
					 strerror(errno));
			}
		}
	}
	if (!msg.rc && subs_run(f, r, o, 1, attach ? &fe : NULL, f->wbuf,
				msg.why, sizeof(msg.why)))
		msg.rc = 1;
	if (io_full(tx, &msg, sizeof(msg), 1) || io_full(rx, &c, 1, 0))
		_exit(2);
	if (!msg.rc && cmp_live_all(r, attach ? &fe : NULL, f->scratch, &g,
				    msg.why, sizeof(msg.why)))
		msg.rc = 1;
	if (io_full(tx, &msg, sizeof(msg), 1) || io_full(rx, &c, 1, 0))
		_exit(2);
	if (c == 's') {
		id = cs_snap(attach ? fe.fd : r->fd, NULL);
		if (io_full(tx, &id, sizeof(id), 1))
			_exit(2);
	}
	_exit(0);
}

/*
 * fork(): the child writes its pages through the inherited mappings and
 * handle (or a handle it attaches by name) while the parent writes the
 * others; both verify everything; the child may take the next snapshot.
 */
static void ex_fork(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r);
	struct fork_env fev = { (uint8_t *)PG, 0 };
	int attach, want_snap, tx[2], rx[2], status, rc;
	unsigned int t = o->s;
	struct fork_msg msg;
	char why[800], c;
	uint64_t id = 0;
	pid_t pid;

	if (!r)
		return;
	f->ran = 1;
	attach = (o->var & 1) && !r->destroyed;
	want_snap = (o->var & 2) && t && t < SM_MAXTAGS && !f->snap_rtag[t] &&
		    (attach || (r->fd >= 0 && r->rw));
	model_subs(f, r, o, attach ? &fev : NULL);
	CHK(f, !pipe(tx), "errno", "pipe: %s", strerror(errno));
	CHK(f, !pipe(rx), "errno", "pipe: %s", strerror(errno));
	pid = fork();
	CHK(f, pid >= 0, "errno", "fork: %s", strerror(errno));
	if (!pid) {
		close(tx[0]);
		close(rx[1]);
		fork_child(f, r, o, attach, tx[1], rx[0]);
	}
	close(tx[1]);
	close(rx[0]);
	why[0] = 0;
	rc = subs_run(f, r, o, 0, NULL, f->wbuf, why, sizeof(why));
	if (io_full(tx[0], &msg, sizeof(msg), 0)) {
		rc = 1;
		snprintf(why, sizeof(why), "the child died");
	} else if (msg.rc && !rc) {
		rc = 1;
		snprintf(why, sizeof(why), "child: %s", msg.why);
	}
	c = 'g';
	if (!rc) {
		if (io_full(rx[1], &c, 1, 1) ||
		    io_full(tx[0], &msg, sizeof(msg), 0)) {
			rc = 1;
			snprintf(why, sizeof(why), "the child died");
		} else if (msg.rc) {
			rc = 1;
			snprintf(why, sizeof(why), "child, after both wrote: "
				 "%s", msg.why);
		}
	}
	if (!rc && cmp_live_all(r, NULL, f->scratch, &f->vr, why,
				sizeof(why)))
		rc = 1;
	if (!rc && want_snap) {
		snap_lock(f);
		c = 's';
		if (io_full(rx[1], &c, 1, 1) ||
		    io_full(tx[0], &id, sizeof(id), 0)) {
			rc = 1;
			snprintf(why, sizeof(why), "the child died");
		}
		snap_unlock(f);
	} else if (!rc) {
		c = 'x';
		io_full(rx[1], &c, 1, 1);
	}
	close(tx[0]);
	close(rx[1]);
	if (rc)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	if (rc)
		fam_fail(f, "fork", "%s: %s", r->name, why);
	CHK(f, WIFEXITED(status) && !WEXITSTATUS(status), "fork",
	    "the child ended with status %#x", status);
	if (want_snap) {
		CHK(f, id == r->next_id, "snap.id", "the child's SNAP_CREATE "
		    "of %s: id %llu, model %llu", r->name,
		    (unsigned long long)id, (unsigned long long)r->next_id);
		snap_add(f, r, t, id, "");
	}
	if (f->ctl)
		f->ctl->forks[f->wid]++;
}

/*
 * RACESNAP: the helpers store whole pages (ascending 8-byte words) while
 * the owner takes a snapshot.  What the snapshot holds of their pages must
 * be a per-thread prefix of their stores (README: a consistent cut); that
 * cut, recorded in the log, then orders the writes for the model.  Only
 * the racing pages may have been copied into the snapshot (a writer held a
 * reference at the cut, or copied the page before its store) where the
 * model shares them: DIFF tells, the model takes it, and every other page
 * and pair must match exactly.  Single-threaded (replays), the recorded or
 * a seeded cut is executed in order and nothing may differ.
 */
#define RACE_REC	(1ULL << 63)	/* op.x holds the cut */
#define RACE_MAXW	64		/* writes per helper */

struct race_w {
	const struct wr *w;
	uint8_t *addr;
};

/* Bytes [@from, @to) of full-page write (@seed, @off), ascending words. */
static void race_store(uint8_t *page, uint64_t seed, uint64_t off,
		       size_t from, size_t to)
{
	volatile uint64_t *w = (volatile uint64_t *)page;
	size_t i;

	for (i = from / 8; i < to / 8; i++)
		w[i] = mix64(seed ^ ((off / 8 + i) * GOLDEN));
}

/* The racing writes of @o by helper @who that do something. */
static int race_writes(struct fam *f, struct mreg *r, const struct op *o,
		       int who, struct race_w *rw)
{
	struct wplan pl;
	unsigned int i;
	int m = 0;

	for (i = 0; i < o->nsub && m < RACE_MAXW; i++) {
		const struct wr *w = &f->log->subs[o->sub + i];

		if (w->who != who || w->how != WR_MAP || w->len != PG ||
		    w->off % PG)
			continue;
		wr_plan(f, r, w, NULL, &pl);
		if (pl.skip)
			continue;
		rw[m].w = w;
		rw[m].addr = pl.addr;
		m++;
	}
	return m;
}

/* A helper's part of a RACESNAP: store, and publish its progress. */
static void race_run(struct fam *f, struct mreg *r, const struct op *o,
		     int who)
{
	struct race_w rw[RACE_MAXW];
	int m = race_writes(f, r, o, who, rw), i;

	for (i = 0; i < m; i++) {
		race_store(rw[i].addr, rw[i].w->seed, rw[i].w->off, 0, PG);
		__atomic_store_n(&f->race_prog[who], i + 1, __ATOMIC_RELEASE);
	}
}

/*
 * The cut of one helper's writes @rw[0..@m) (write i to distinct page
 * @wu[i] of @nu; @pre: their contents before, @snap: in the snapshot):
 * writes [0, *k) complete, the first *j bytes of write *k, nothing later.
 * -1 if the snapshot holds no such prefix.
 */
static int race_cut(const struct race_w *rw, int m, const int *wu, int nu,
		    uint8_t **pre, uint8_t **snap, uint8_t *wc, int *k, int *j)
{
	const uint8_t *state[RACE_MAXW];
	int kk, u, i, jj = 0, ok;

	for (u = 0; u < nu; u++)
		state[u] = pre[u];
	for (i = 0; i < m; i++)
		gen_fill(wc + i * PG, rw[i].w->seed, rw[i].w->off, PG);
	for (kk = 0; kk <= m; kk++) {
		for (ok = 1, u = 0; u < nu && ok; u++) {
			if (kk < m && wu[kk] == u) {
				for (jj = 0; jj < (int)PG &&
				     !memcmp(snap[u] + jj, wc + kk * PG + jj, 8);
				     jj += 8)
					;
				ok = !memcmp(snap[u] + jj, state[u] + jj,
					     PG - jj);
			} else {
				ok = !memcmp(snap[u], state[u], PG);
			}
		}
		if (ok) {
			*k = kk;
			*j = kk < m ? jj : 0;
			return 0;
		}
		if (kk < m)
			state[wu[kk]] = wc + kk * PG;
	}
	return -1;
}

/* Mark in @bits (one byte per page) where the kernel's DIFF says differ. */
static void race_kdiff(struct fam *f, struct mreg *r, uint64_t from,
		       uint64_t to, uint8_t *bits)
{
	struct cowsnap_extent *ext = (struct cowsnap_extent *)f->scratch;
	struct cowsnap_diff d;
	uint64_t e, p;

	memset(&d, 0, sizeof(d));
	d.from = from;
	d.to = to;
	d.extents = (uintptr_t)ext;
	do {
		d.count = 1024;
		CHK_ERR(f, ioctl(r->fd, COWSNAP_IOC_DIFF, &d), 0, "errno",
			"DIFF");
		for (e = 0; e < d.count; e++)
			for (p = ext[e].start; p < ext[e].start + ext[e].count &&
			     p < r->n; p++)
				bits[p] = 1;
		d.start = d.next;
	} while (d.next);
}

/*
 * Compare the new snapshot @s with the live view and every other listed
 * snapshot, by DIFF.  Racing pages (@racing) the kernel copied where the
 * model shares get a new identity (if @may_adjust); then all must match.
 */
static int race_resolve(struct fam *f, struct mreg *r, struct msnap *s,
			const uint8_t *racing, int may_adjust, int *unwritten)
{
	struct msnap *v[SM_MAXTAGS];
	int n = reg_snaps(f, r, v, SM_MAXTAGS), z, nz = 0, adjusted = 0;
	const struct mimg *img[SM_MAXTAGS + 1];
	uint64_t zid[SM_MAXTAGS + 1], oid;
	uint8_t *kd;
	size_t p;

	img[nz] = &r->live;
	zid[nz++] = 0;
	for (z = 0; z < n; z++)
		if (v[z] != s) {
			img[nz] = &v[z]->img;
			zid[nz++] = v[z]->id;
		}
	kd = xcalloc(nz, r->n);
	for (z = 0; z < nz; z++)
		race_kdiff(f, r, s->id, zid[z], kd + z * r->n);
	for (p = 0; may_adjust && p < r->n; p++) {
		if (!racing[p])
			continue;
		for (z = 0; z < nz; z++)
			if (s->img.id[p] == img[z]->id[p] && kd[z * r->n + p])
				break;
		if (z == nz)
			continue;
		/* Not written after the cut, yet not the live page. */
		*unwritten += s->img.id[p] == r->live.id[p];
		oid = s->img.id[p];
		img_set(f, &s->img, p, ident_new(f), s->img.pg[p]);
		acct_race_copy(f, r, s->id, p, oid, s->img.id[p]);
		adjusted++;
	}
	for (z = 0; z < nz; z++)
		for (p = 0; p < r->n; p++) {
			int md = s->img.id[p] != img[z]->id[p];

			if (md == kd[z * r->n + p])
				continue;
			free(kd);
			fam_fail(f, "race.identity", "DIFF of the new snapshot "
				 "%llu and %s%llu: page %zu %s, model %s (%s "
				 "page)", (unsigned long long)s->id,
				 zid[z] ? "snapshot " : "the live view",
				 (unsigned long long)zid[z], p,
				 md ? "same" : "differs",
				 md ? "differs" : "same",
				 racing[p] ? "a racing" : "an untouched");
		}
	free(kd);
	return adjusted;
}

static void ex_racesnap(struct fam *f, const struct op *o)
{
	struct op *wo = (struct op *)o;	/* the cut is recorded in the log */
	struct mreg *r = reg_get(f, o->r);
	static __thread struct race_w rw[SM_PARTS][RACE_MAXW];
	int m[SM_PARTS] = { 0 }, k[SM_PARTS] = { 0 }, j[SM_PARTS] = { 0 };
	uint8_t *pre[RACE_MAXW], *snap[RACE_MAXW], *racing, *wc, *sbuf;
	int wu_first[RACE_MAXW];
	unsigned int t = o->s, done;
	int h, i, threaded, total = 0, sfd, ret, e, adj, unwritten = 0;
	struct cowsnap_snap_create sc;
	struct msnap *s;
	struct wplan pl;
	struct wr w;

	if (!r || r->fd < 0 || !r->rw || r->n > 4096 || !t ||
	    t >= SM_MAXTAGS || f->snap_rtag[t])
		return;
	f->ran = 1;
	for (h = 1; h < SM_PARTS; h++)
		total += m[h] = race_writes(f, r, o, h, rw[h]);
	threaded = f->threads && !(o->x & RACE_REC);
	memset(&sc, 0, sizeof(sc));
	if (threaded) {
		struct rng g = { o->seed };
		unsigned int target = below(&g, total + 1);

		memset(f->race_prog, 0, sizeof(f->race_prog));
		pthread_mutex_lock(&f->mu);
		f->par_op = o;
		f->par_reg = r;
		f->par_done = 0;
		f->par_gen++;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		for (;;) {
			for (done = 0, h = 1; h < SM_PARTS; h++)
				done += __atomic_load_n(&f->race_prog[h],
							__ATOMIC_ACQUIRE);
			if (done >= target ||
			    __atomic_load_n(&f->par_done, __ATOMIC_ACQUIRE) ==
			    SM_HELPERS)
				break;
			sched_yield();
		}
		snap_lock(f);
		ret = ioctl(r->fd, COWSNAP_IOC_SNAP_CREATE, &sc);
		e = errno;
		snap_unlock(f);
		pthread_mutex_lock(&f->mu);
		while (f->par_done < SM_HELPERS)
			pthread_cond_wait(&f->cv, &f->mu);
		pthread_mutex_unlock(&f->mu);
		if (f->ctl)
			f->ctl->races[f->wid]++;
	} else {
		struct rng g = { o->seed ^ 0xc07 };

		for (h = 1; h < SM_PARTS; h++) {
			if (o->x & RACE_REC) {
				k[h] = o->x >> (20 * (h - 1)) & 0xff;
				j[h] = (o->x >> (20 * (h - 1) + 8) & 0x3ff) * 8;
			} else {
				k[h] = below(&g, m[h] + 1);
				j[h] = k[h] < m[h] ? 8 * below(&g, PG / 8 + 1) : 0;
			}
			if (k[h] > m[h])
				k[h] = m[h];
			for (i = 0; i < k[h]; i++)
				race_store(rw[h][i].addr, rw[h][i].w->seed,
					   rw[h][i].w->off, 0, PG);
			if (k[h] < m[h])
				race_store(rw[h][i].addr, rw[h][i].w->seed,
					   rw[h][i].w->off, 0, j[h]);
		}
		ret = ioctl(r->fd, COWSNAP_IOC_SNAP_CREATE, &sc);
		e = errno;
		for (h = 1; h < SM_PARTS; h++) {
			for (i = k[h]; i < m[h]; i++)
				race_store(rw[h][i].addr, rw[h][i].w->seed,
					   rw[h][i].w->off, i == k[h] ? j[h] : 0,
					   PG);
		}
	}
	errno = e;
	CHK_ERR(f, ret, 0, "errno", "SNAP_CREATE");
	CHK(f, sc.id == r->next_id, "snap.id", "SNAP_CREATE of %s: id %llu, "
	    "model %llu", r->name, (unsigned long long)sc.id,
	    (unsigned long long)r->next_id);
	sfd = cs_snap_open(r->fd, sc.id);
	CHK_ERR(f, sfd, 0, "errno", "SNAP_OPEN");
	/* Each helper's cut, from what the snapshot holds of its pages. */
	sbuf = xmalloc(RACE_MAXW * PG);
	wc = xmalloc(RACE_MAXW * PG);
	racing = xcalloc(r->n, 1);
	for (h = 1; h < SM_PARTS; h++) {
		int kk, jj, wu[RACE_MAXW], nu = 0, u;

		for (i = 0; i < m[h]; i++) {
			size_t p = rw[h][i].w->off / PG;

			for (u = 0; u < nu && rw[h][wu_first[u]].w->off !=
			     rw[h][i].w->off; u++)
				;
			wu[i] = u;
			if (u < nu)
				continue;
			wu_first[nu++] = i;
			racing[p] = 1;
			pre[u] = (uint8_t *)buf_data(r->live.pg[p]);
			snap[u] = sbuf + u * PG;
			CHK(f, !pread_full(sfd, snap[u], PG, p * PG), "errno",
			    "pread of the snapshot: %s", strerror(errno));
		}
		if (m[h] && race_cut(rw[h], m[h], wu, nu, pre, snap, wc, &kk,
				     &jj))
			fam_fail(f, "race.cut", "%s, snapshot %llu: what it "
				 "holds of helper %d's %d page stores is no "
				 "prefix of them (first page %llu)", r->name,
				 (unsigned long long)sc.id, h, m[h],
				 (unsigned long long)rw[h][0].w->off / PG);
		if (m[h] && threaded) {
			k[h] = kk;
			j[h] = jj;
		}
	}
	free(sbuf);
	free(wc);
	if (threaded) {
		int mid = 0;

		wo->x = RACE_REC;
		for (h = 1; h < SM_PARTS; h++) {
			wo->x |= (uint64_t)(k[h] | (j[h] / 8) << 8) <<
				 (20 * (h - 1));
			mid |= (k[h] && k[h] < m[h]) || j[h];
		}
		if (f->ctl && mid)
			f->ctl->race_mid[f->wid]++;
	}
	/* The model: stores before the cut, the snapshot, the rest. */
	for (h = 1; h < SM_PARTS; h++)
		for (i = 0; i <= k[h] && i < m[h]; i++) {
			w = *rw[h][i].w;
			if (i == k[h]) {
				if (!j[h])
					break;
				w.len = j[h];
			}
			wr_plan(f, r, &w, NULL, &pl);
			model_write(f, r, &w, &pl);
		}
	s = snap_add(f, r, t, sc.id, "");
	for (h = 1; h < SM_PARTS; h++)
		for (i = k[h]; i < m[h]; i++) {
			if (i == k[h] && j[h] == (int)PG)
				continue;
			wr_plan(f, r, rw[h][i].w, NULL, &pl);
			model_write(f, r, rw[h][i].w, &pl);
		}
	adj = race_resolve(f, r, s, racing, threaded, &unwritten);
	free(racing);
	if (f->ctl) {
		f->ctl->race_copies[f->wid] += adj;
		f->ctl->race_unwritten[f->wid] += unwritten;
	}
	chk_snap_all(f, s, sfd, "race.snapshot");
	chk_live_all(f, r, "race.live");
	if (o->var & 1)
		sfd_publish(f, s, sfd);
	else
		close(sfd);
}

/*
 * The cut of one helper's writes @rw[0..@m) in the live view after a
 * restore raced with them (@live: the pages now, @rest: the snapshot's):
 * bytes landing before the restore went to pages it replaced, so the live
 * view holds the snapshot's page with the stores after the cut, the first
 * *j bytes of write *k being lost.  -1 if no cut explains it.
 */
static int race_rcut(const struct race_w *rw, int m, const int *wu, int nu,
		     uint8_t **rest, uint8_t **live, uint8_t *wc, int *k,
		     int *j)
{
	int kk, u, i, jj, jk = 0, ok, last;

	for (i = 0; i < m; i++)
		gen_fill(wc + i * PG, rw[i].w->seed, rw[i].w->off, PG);
	for (kk = 0; kk <= m; kk++) {
		for (ok = 1, u = 0; u < nu && ok; u++) {
			for (last = -1, i = kk; i < m; i++)
				if (wu[i] == u)
					last = i;
			if (last > kk) {
				ok = !memcmp(live[u], wc + last * PG, PG);
			} else if (last == kk) {
				for (jj = 0; jj < (int)PG &&
				     !memcmp(live[u] + jj, rest[u] + jj, 8);
				     jj += 8)
					;
				ok = !memcmp(live[u] + jj, wc + kk * PG + jj,
					     PG - jj);
				jk = jj;
			} else {
				ok = !memcmp(live[u], rest[u], PG);
			}
		}
		if (ok) {
			*k = kk;
			*j = 0;
			/* Write kk's lost bytes show only if it is its page's last. */
			if (kk < m) {
				for (last = kk, i = kk + 1; i < m; i++)
					if (wu[i] == wu[kk])
						last = i;
				if (last == kk)
					*j = jk;
			}
			return 0;
		}
	}
	return -1;
}

/*
 * RACERESTORE: the helpers store whole pages while the owner restores
 * snapshot s.  The live view must then be the snapshot overwritten by a
 * per-thread suffix of the stores.  pages_restored is exact but for the
 * racing pages a store had faulted on (copying the page) just before the
 * restore while its bytes landed after: at most that many more.
 */
static void ex_racerestore(struct fam *f, const struct op *o)
{
	struct op *wo = (struct op *)o;	/* the cut is recorded in the log */
	struct mreg *r = reg_get(f, o->r);
	static __thread struct race_w rw[SM_PARTS][RACE_MAXW];
	int m[SM_PARTS] = { 0 }, k[SM_PARTS] = { 0 }, j[SM_PARTS] = { 0 };
	uint8_t *rest[RACE_MAXW], *live[RACE_MAXW], *post, *wc, *lbuf;
	int h, i, threaded, total = 0, e, wu_first[RACE_MAXW];
	long long got, want = 0, slack = 0;
	unsigned int done;
	long acct, risky = 0;
	struct msnap *s;
	struct wplan pl;
	uint64_t id;
	struct wr w;
	size_t p;

	if (!r || r->fd < 0 || !r->rw || r->n > 4096)
		return;
	id = snap_ref(f, r, o->s, &s);
	if (!id || !s || !s->listed)
		return;
	f->ran = 1;
	for (h = 1; h < SM_PARTS; h++)
		total += m[h] = race_writes(f, r, o, h, rw[h]);
	threaded = f->threads && !(o->x & RACE_REC);
	if (threaded) {
		struct rng g = { o->seed };
		unsigned int target = below(&g, total + 1);

		memset(f->race_prog, 0, sizeof(f->race_prog));
		pthread_mutex_lock(&f->mu);
		f->par_op = o;
		f->par_reg = r;
		f->par_done = 0;
		f->par_gen++;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		for (;;) {
			for (done = 0, h = 1; h < SM_PARTS; h++)
				done += __atomic_load_n(&f->race_prog[h],
							__ATOMIC_ACQUIRE);
			if (done >= target ||
			    __atomic_load_n(&f->par_done, __ATOMIC_ACQUIRE) ==
			    SM_HELPERS)
				break;
			sched_yield();
		}
		got = cs_restore(r->fd, id, 0);
		e = errno;
		pthread_mutex_lock(&f->mu);
		while (f->par_done < SM_HELPERS)
			pthread_cond_wait(&f->cv, &f->mu);
		pthread_mutex_unlock(&f->mu);
		if (f->ctl)
			f->ctl->races[f->wid]++;
	} else {
		struct rng g = { o->seed ^ 0xc07 };

		for (h = 1; h < SM_PARTS; h++) {
			if (o->x & RACE_REC) {
				k[h] = o->x >> (20 * (h - 1)) & 0xff;
				j[h] = (o->x >> (20 * (h - 1) + 8) & 0x3ff) * 8;
			} else {
				k[h] = below(&g, m[h] + 1);
				j[h] = k[h] < m[h] ? 8 * below(&g, PG / 8 + 1) : 0;
			}
			if (k[h] > m[h])
				k[h] = m[h];
			for (i = 0; i < k[h]; i++)
				race_store(rw[h][i].addr, rw[h][i].w->seed,
					   rw[h][i].w->off, 0, PG);
			if (k[h] < m[h])
				race_store(rw[h][i].addr, rw[h][i].w->seed,
					   rw[h][i].w->off, 0, j[h]);
		}
		got = cs_restore(r->fd, id, 0);
		e = errno;
		for (h = 1; h < SM_PARTS; h++)
			for (i = k[h]; i < m[h]; i++)
				race_store(rw[h][i].addr, rw[h][i].w->seed,
					   rw[h][i].w->off, i == k[h] ? j[h] : 0,
					   PG);
	}
	errno = e;
	CHK_ERR(f, got, 0, "errno", "RESTORE");
	/* Each helper's cut, from the live view now. */
	lbuf = xmalloc(RACE_MAXW * PG);
	wc = xmalloc(RACE_MAXW * PG);
	for (h = 1; h < SM_PARTS; h++) {
		int kk, jj, wu[RACE_MAXW], nu = 0, u;

		for (i = 0; i < m[h]; i++) {
			p = rw[h][i].w->off / PG;
			for (u = 0; u < nu && rw[h][wu_first[u]].w->off !=
			     rw[h][i].w->off; u++)
				;
			wu[i] = u;
			if (u < nu)
				continue;
			wu_first[nu++] = i;
			rest[u] = (uint8_t *)buf_data(s->img.pg[p]);
			live[u] = lbuf + u * PG;
			CHK(f, !pread_full(r->fd, live[u], PG, p * PG), "errno",
			    "pread: %s", strerror(errno));
		}
		if (m[h] && race_rcut(rw[h], m[h], wu, nu, rest, live, wc, &kk,
				      &jj))
			fam_fail(f, "race.cut", "%s after restoring %llu: "
				 "helper %d's %d page stores are no suffix of "
				 "what it holds (first page %llu)", r->name,
				 (unsigned long long)id, h, m[h],
				 (unsigned long long)rw[h][0].w->off / PG);
		if (m[h] && threaded) {
			k[h] = kk;
			j[h] = jj;
		}
	}
	free(lbuf);
	free(wc);
	if (threaded) {
		wo->x = RACE_REC;
		for (h = 1; h < SM_PARTS; h++)
			wo->x |= (uint64_t)(k[h] | (j[h] / 8) << 8) <<
				 (20 * (h - 1));
	}
	/* The model: stores before the cut, the restore, the rest. */
	post = xcalloc(r->n, 1);
	for (h = 1; h < SM_PARTS; h++)
		for (i = 0; i < m[h]; i++) {
			w = *rw[h][i].w;
			if (i > k[h] || (i == k[h] && j[h] < (int)PG))
				post[w.off / PG] = 1;
			if (i > k[h] || (i == k[h] && !j[h]))
				continue;
			if (i == k[h])
				w.len = j[h];
			wr_plan(f, r, &w, NULL, &pl);
			model_write(f, r, &w, &pl);
		}
	/*
	 * A store whose fault copied a slack page (written after the cut,
	 * the same in the snapshot and the live view) just before the
	 * restore, its bytes landing after it, is a change the model does not
	 * see: the restore then counts the page (got > want) and the module's
	 * records there may differ from the model's.  Where no record is of
	 * the snapshot or a newer one, they do not: the fault's record is the
	 * newest snapshot's, which the restore undoes, so only the page's
	 * inherited mark goes (the model cannot tell which page).  Elsewhere
	 * (the live page is also a record's, or a hole a hole record's) the
	 * restore can leave a record the model does not have, or undo one it
	 * has, and later shared and exclusive counts of the region differ.
	 */
	for (p = 0; threaded && p < r->n; p++)
		if (post[p] && r->live.id[p] == s->img.id[p] &&
		    ((r->hist[p] && r->hist[p]->snap >= id) || r->inh[p]))
			risky++;
	acct = acct_restore(f, r, s);
	for (p = 0; p < r->n; p++) {
		if (r->live.id[p] != s->img.id[p]) {
			img_set(f, &r->live, p, s->img.id[p], s->img.pg[p]);
			want++;
		} else if (post[p] && threaded) {
			slack++;
		}
	}
	free(post);
	ACHK(f, acct == want, "racing restore of %s to %llu: the records "
	     "change %ld pages, the images differ in %lld", r->name,
	     (unsigned long long)id, acct, want);
	r->base = id;
	/*
	 * Which slack page a store's fault copied, the module does not tell:
	 * if it may have left records the model cannot know, no counter
	 * checks for this region from here on (and no owner counts, but races
	 * are never solo).
	 */
	if (got > want && risky && !r->acct_lost) {
		r->acct_lost = f->acct_lost = 1;
		if (f->ctl)
			f->ctl->acct_lost[f->wid]++;
	}
	if (f->ctl)
		f->ctl->rr_extra[f->wid] += got - want;
	CHK(f, got >= want && got <= want + slack, "restore.count",
	    "RESTORE %s to %llu racing stores: pages_restored %lld, model "
	    "%lld..%lld", r->name, (unsigned long long)id, got, want,
	    want + slack);
	for (h = 1; h < SM_PARTS; h++)
		for (i = k[h]; i < m[h]; i++) {
			w = *rw[h][i].w;
			if (i == k[h]) {
				if (j[h] == (int)PG)
					continue;
				w.off += j[h];
				w.len -= j[h];
			}
			wr_plan(f, r, &w, NULL, &pl);
			model_write(f, r, &w, &pl);
		}
	chk_live_all(f, r, "race.live");
}

static void exec_op(struct fam *f, const struct op *o)
{
	struct mreg *r = reg_get(f, o->r);

	switch (o->kind) {
	case OP_CREATE:
		ex_create(f, o);
		break;
	case OP_WRITE:
		ex_write(f, o);
		break;
	case OP_READ:
		ex_read(f, o);
		break;
	case OP_SNAP:
		ex_snap(f, o);
		break;
	case OP_RESTORE:
		ex_restore(f, o);
		break;
	case OP_DELETE:
		ex_delete(f, o);
		break;
	case OP_DIFF:
		ex_diff(f, o);
		break;
	case OP_CLONE:
		ex_clone(f, o);
		break;
	case OP_DUMPLOAD:
		ex_dumpload(f, o);
		break;
	case OP_DESTROY:
		ex_destroy(f, o);
		break;
	case OP_CLOSE:
		ex_close(f, o);
		break;
	case OP_ATTACH:
		ex_attach(f, o);
		break;
	case OP_MAP:
		ex_map(f, o);
		break;
	case OP_MUNMAP:
		ex_munmap(f, o);
		break;
	case OP_MREMAP:
		ex_mremap(f, o);
		break;
	case OP_FORK:
		ex_fork(f, o);
		break;
	case OP_PAR:
		ex_par(f, o);
		break;
	case OP_INFO:
		if (r && r->fd >= 0)
			ex_info(f, r);
		f->ran = r && r->fd >= 0;
		break;
	case OP_LIST:
		if (r && r->fd >= 0)
			ex_list(f, r, o->off, o->x);
		f->ran = r && r->fd >= 0;
		break;
	case OP_PROC:
		if (f->solo)
			ex_proc(f);
		f->ran = f->solo;
		break;
	case OP_VERIFY:
		ex_verify(f);
		f->ran = 1;
		break;
	case OP_SFDOPEN:
		ex_sfdopen(f, o);
		break;
	case OP_SFDCLOSE:
		ex_sfdclose(f, o);
		break;
	case OP_SNAPCHK:
		ex_snapchk(f, o);
		break;
	case OP_RACESNAP:
		ex_racesnap(f, o);
		break;
	case OP_RACERESTORE:
		ex_racerestore(f, o);
		break;
	case OP_MPROT:
		ex_mprot(f, o);
		break;
	case OP_END:
		ex_end(f);
		f->ran = 1;
		break;
	}
	if (f->solo)
		chk_gauges(f);
}

/* ---------------------------------------------------------------------- */
/* Generating operations (from the model's state; logged before they run) */

static const int gen_w[OP__N] = {
	[OP_CREATE] = 2, [OP_WRITE] = 28, [OP_READ] = 8, [OP_SNAP] = 9,
	[OP_RESTORE] = 9, [OP_DELETE] = 3, [OP_DIFF] = 7, [OP_CLONE] = 2,
	[OP_DUMPLOAD] = 1, [OP_DESTROY] = 1, [OP_CLOSE] = 1, [OP_ATTACH] = 2,
	[OP_MAP] = 3, [OP_MUNMAP] = 2, [OP_MREMAP] = 2, [OP_FORK] = 1,
	[OP_PAR] = 4, [OP_INFO] = 3, [OP_LIST] = 2, [OP_PROC] = 1,
	[OP_VERIFY] = 1, [OP_SFDOPEN] = 2, [OP_SFDCLOSE] = 2,
	[OP_RACESNAP] = 3, [OP_RACERESTORE] = 3, [OP_MPROT] = 2,
};

/* Region filters for gen_reg(). */
#define NEED_FD		1	/* a handle */
#define NEED_WRITE	2	/* a writable mapping or a writable handle */
#define NEED_MAP	4	/* a mapping */
#define NEED_HOLE	8	/* no handle */

static int reg_can_store(struct mreg *r)
{
	int i;

	for (i = 0; i < r->nmap; i++)
		if (r->map[i].rw)
			return 1;
	return 0;
}

static struct mreg *gen_reg(struct fam *f, struct rng *g, int need)
{
	struct mreg *c[SM_MAXTAGS];
	int t, k = 0;

	for (t = 1; t <= f->nrtag; t++) {
		struct mreg *r = reg_get(f, t);

		if (!r || ((need & NEED_FD) && r->fd < 0) ||
		    ((need & NEED_HOLE) && r->fd >= 0) ||
		    ((need & NEED_MAP) && !r->nmap) ||
		    ((need & NEED_WRITE) && !reg_can_store(r) &&
		     !(r->fd >= 0 && r->rw)))
			continue;
		c[k++] = r;
	}
	return k ? c[below(g, k)] : NULL;
}

/*
 * A snapshot tag of @r: a listed one (@mode 0), the base or else the
 * newest (1), or any ever taken, deleted ones too (2).  0 if none.
 */
static int gen_snap(struct fam *f, struct rng *g, struct mreg *r, int mode)
{
	int c[SM_MAXTAGS], k = 0, t, newest = 0;

	for (t = 1; t <= f->nstag; t++) {
		struct msnap *s = f->snap[t];
		int listed = s && s->listed;

		if (f->snap_rtag[t] != r->tag || (mode != 2 && !listed))
			continue;
		if (mode == 1 && s->id == r->base)
			return t;
		c[k++] = t;
		newest = t;
	}
	if (mode == 1)
		return newest;
	return k ? c[below(g, k)] : 0;
}

static size_t gen_page(struct rng *g, size_t lo, size_t hi)
{
	/* Big regions: the start and the edge of the first 8*4096 pages. */
	if (!lo && hi > 32800) {
		switch (below(g, 4)) {
		case 0:
			return below(g, 64);
		case 1:
			return 32768 - 32 + below(g, 64);
		}
	}
	return lo + below(g, hi - lo);
}

/* A byte range inside pages [@lo, @hi). */
static void gen_range(struct rng *g, size_t lo, size_t hi, uint64_t *off,
		      uint64_t *len)
{
	size_t p = gen_page(g, lo, hi), k;
	uint64_t o, room;

	switch (below(g, 10)) {
	case 0: case 1: case 2: case 3: case 4:
		o = chance(g, 30) ? 0 : below(g, PG);
		*off = p * PG + o;
		*len = o ? 1 + below(g, PG - o) : PG;
		break;
	case 5: case 6: case 7:
		k = hi - p < 4 ? hi - p : 4;
		*off = p * PG;
		*len = (1 + below(g, k)) * PG;
		break;
	default:
		*off = p * PG + below(g, PG);
		room = hi * PG - *off;
		*len = 1 + below(g, room < 3 * PG ? room : 3 * PG);
		break;
	}
}

/* An O_DIRECT range (512-byte units) inside pages [@lo, @hi). */
static int gen_orange(struct fam *f, struct rng *g, size_t lo, size_t hi,
		      uint64_t *off, uint64_t *len, uint64_t *dev)
{
	uint64_t units;

	if (f->ramfd < 0)
		return 0;
	*off = gen_page(g, lo, hi) * PG + 512 * below(g, 8);
	units = (hi * PG - *off) / 512;
	if (units > 32)
		units = 32;
	*len = 512 * (1 + below(g, units));
	*dev = 512 * below(g, (f->ram_bytes - *len) / 512 + 1);
	return 1;
}

static uint64_t gen_seed(struct rng *g)
{
	return chance(g, 8) ? 0 : rnd(g) | 1;
}

/* Writes for participant @who inside pages [@lo, @hi); 0 if no room. */
static int gen_subs(struct fam *f, struct rng *g, struct mreg *r, int who,
		    size_t lo, size_t hi, int k, int procmem)
{
	struct wlog *lg = f->log;

	while (k-- > 0) {
		struct wr *w;
		uint64_t off, len;

		if (lo >= hi || lg->nsubs >= SM_MAXSUBS)
			return 0;
		w = &lg->subs[lg->nsubs++];
		memset(w, 0, sizeof(*w));
		w->who = who;
		w->msel = below(g, 4);
		if (chance(g, 15) && gen_orange(f, g, lo, hi, &off, &len,
						&w->seed)) {
			w->how = WR_ODIRECT;
		} else {
			w->how = chance(g, 30) ? WR_PWRITE : WR_MAP;
			if (procmem && sm_procmem_ok && chance(g, 10))
				w->how = WR_PROCMEM;
			gen_range(g, lo, hi, &off, &len);
			w->seed = gen_seed(g);
		}
		w->off = off;
		w->len = len;
	}
	return 1;
}

static int gen_par(struct fam *f, struct rng *g, struct op *o,
		   struct mreg *r)
{
	size_t n = r->n, nb, b, nbw;
	int parts = n < SM_PARTS ? (int)n : SM_PARTS, who;

	if (f->log->nsubs + 64 > SM_MAXSUBS)
		return 0;
	nb = parts * (1 + below(g, 2));
	if (nb > n)
		nb = n;
	o->sub = f->log->nsubs;
	for (who = 0; who < parts; who++) {
		int k = 2 + below(g, 5);

		while (k--) {
			nbw = (nb - who + parts - 1) / parts;
			b = who + parts * below(g, nbw);
			gen_subs(f, g, r, who, b * n / nb, (b + 1) * n / nb, 1,
				 1);
		}
	}
	o->nsub = f->log->nsubs - o->sub;
	return o->nsub > 0;
}

static int gen_fork(struct fam *f, struct rng *g, struct op *o,
		    struct mreg *r)
{
	size_t n = r->n, a = n > 1 ? 1 + below(g, n - 1) : n;
	int child_low = chance(g, 50);

	if (f->log->nsubs + 16 > SM_MAXSUBS)
		return 0;
	o->sub = f->log->nsubs;
	gen_subs(f, g, r, child_low ? 1 : 0, 0, a, 1 + below(g, 4), 0);
	gen_subs(f, g, r, child_low ? 0 : 1, a, n, 1 + below(g, 4), 0);
	o->nsub = f->log->nsubs - o->sub;
	o->var = chance(g, 40) | (chance(g, 40) << 1);
	if (o->var & 2)
		o->s = ++f->gen_stag;
	o->seed = rnd(g);
	return 1;
}

/* @len bytes inside a writable mapping of some region: tag and offset. */
static int gen_argbuf(struct fam *f, struct rng *g, uint64_t len,
		      uint16_t *tag, uint64_t *off)
{
	struct mreg *r = gen_reg(f, g, NEED_MAP);
	struct mmapping *m;

	if (!r)
		return 0;
	m = &r->map[below(g, r->nmap)];
	if (!m->rw || len > m->npages * PG)
		return 0;
	*tag = r->tag;
	*off = m->pgoff * PG + 8 * below(g, (m->npages * PG - len) / 8 + 1);
	return 1;
}

/* WRITE by pread() from an open snapshot fd into a mapping of @r. */
static int gen_readinto(struct fam *f, struct rng *g, struct mreg *r,
			struct op *o)
{
	int c[SM_MAXTAGS], k = 0, t;
	struct msnap *s;

	for (t = 1; t <= f->nstag; t++)
		if (f->snap[t] && f->snap[t]->fd >= 0)
			c[k++] = t;
	if (!k)
		return 0;
	t = c[below(g, k)];
	s = f->snap[t];
	gen_range(g, 0, r->n, &o->off, &o->len);
	if (o->len > s->img.n * PG)
		return 0;
	o->var = WR_READINTO;
	o->seed = (uint64_t)t << 48 | below(g, s->img.n * PG - o->len + 1);
	return 1;
}

/* WRITE by pwrite() whose source is a mapping of a family region. */
static int gen_copy(struct fam *f, struct rng *g, struct mreg *r,
		    struct op *o)
{
	struct mreg *src = gen_reg(f, g, NEED_MAP);
	struct mmapping *m;
	uint64_t so;

	if (!src)
		return 0;
	m = &src->map[below(g, src->nmap)];
	gen_range(g, 0, r->n, &o->off, &o->len);
	if (o->len > m->npages * PG)
		return 0;
	so = m->pgoff * PG + below(g, m->npages * PG - o->len + 1);
	/* From the same region: its own bytes, or other pages. */
	if (src == r && (chance(g, 30) ||
			 (so < o->off + o->len && o->off < so + o->len)))
		so = o->off;
	o->var = WR_COPY;
	o->seed = (uint64_t)src->tag << 48 | so;
	return 1;
}

/*
 * RACESNAP: whole-page stores by the helpers on present pages whose page
 * nothing outside this region's live view and listed snapshots holds (so
 * that DIFF can tell where the kernel copied one at the cut).
 */
static int gen_race(struct fam *f, struct rng *g, struct op *o,
		    struct mreg *r)
{
	struct msnap *v[SM_MAXTAGS];
	int nv, e = 0, who, i, q;
	size_t p, *el;

	if (!r->rw || r->n > 4096 || !reg_can_store(r) ||
	    f->log->nsubs + SM_HELPERS * RACE_MAXW > SM_MAXSUBS)
		return 0;
	nv = reg_snaps(f, r, v, SM_MAXTAGS);
	if (o->kind == OP_RACERESTORE) {
		o->s = gen_snap(f, g, r, chance(g, 50) ? 1 : 0);
		if (!o->s)
			return 0;
	} else if (nv >= SM_MAXSNAP) {
		return 0;
	}
	el = xmalloc(r->n * sizeof(*el));
	for (p = 0; p < r->n; p++) {
		uint64_t id = r->live.id[p];
		uint32_t in = 1;

		if (!map_pick(r, p * PG, PG, 1, 0))
			continue;
		/* A restore may race on any page, holes too. */
		if (o->kind == OP_RACERESTORE) {
			el[e++] = p;
			continue;
		}
		if (!id)
			continue;
		for (q = 0; q < nv; q++)
			in += v[q]->img.id[p] == id;
		if (in == f->cnt[id])
			el[e++] = p;
	}
	if (e < SM_HELPERS) {
		free(el);
		return 0;
	}
	o->sub = f->log->nsubs;
	for (who = 1; who <= SM_HELPERS; who++) {
		int mm = 4 + below(g, 29);
		int np = (e - (who - 1) + SM_HELPERS - 1) / SM_HELPERS;

		for (i = 0; i < mm; i++) {
			struct wr *w = &f->log->subs[f->log->nsubs++];

			memset(w, 0, sizeof(*w));
			w->who = who;
			w->how = WR_MAP;
			w->msel = below(g, 4);
			w->len = PG;
			w->off = el[who - 1 + SM_HELPERS * below(g, np)] * PG;
			w->seed = rnd(g) | 1;
		}
	}
	free(el);
	o->nsub = f->log->nsubs - o->sub;
	if (o->kind == OP_RACESNAP) {
		o->s = ++f->gen_stag;
		o->var = chance(g, 30);
	}
	o->seed = rnd(g);
	return 1;
}

static int gen_kind(struct fam *f, struct rng *g, struct op *o)
{
	struct mreg *r = NULL;
	int nsnap;

	switch (o->kind) {
	case OP_CREATE:
		if (fam_alive(f) >= SM_MAXREG)
			return 0;
		o->r2 = ++f->gen_rtag;
		if (f->big && chance(g, 4))
			o->len = SM_BIG + below(g, 64);
		else if (chance(g, 30))
			o->len = 49 + below(g, 400);
		else
			o->len = 1 + below(g, 48);
		o->x = chance(g, 70) ? 0600 : chance(g, 50) ? 0640 : 0644;
		o->var = chance(g, 10);
		return 1;
	case OP_WRITE:
		r = gen_reg(f, g, NEED_WRITE);
		if (!r)
			return 0;
		o->x = below(g, 4);
		if (reg_can_store(r) && chance(g, 12) &&
		    gen_orange(f, g, 0, r->n, &o->off, &o->len, &o->seed)) {
			o->var = WR_ODIRECT;
			break;
		}
		if (reg_can_store(r) && sm_procmem_ok && chance(g, 6)) {
			o->var = WR_PROCMEM;
			o->seed = gen_seed(g);
			gen_range(g, 0, r->n, &o->off, &o->len);
			break;
		}
		if ((reg_can_store(r) && chance(g, 7) &&
		     gen_readinto(f, g, r, o)) ||
		    (r->fd >= 0 && r->rw && chance(g, 8) &&
		     gen_copy(f, g, r, o)))
			break;
		o->seed = gen_seed(g);
		if (reg_can_store(r) && (r->fd < 0 || !r->rw || chance(g, 55)))
			o->var = WR_MAP;
		else
			o->var = chance(g, 70) ? WR_PWRITE : WR_WRITE;
		gen_range(g, 0, r->n, &o->off, &o->len);
		if (o->var != WR_MAP && chance(g, 4)) {
			/* Across or at the end: short write or ENOSPC. */
			o->off = r->n * PG - (chance(g, 30) ? 0 :
					      1 + below(g, 100));
			o->len = 200 + below(g, PG);
		}
		break;
	case OP_READ:
		r = gen_reg(f, g, 0);
		if (!r)
			return 0;
		if (chance(g, 25))
			o->s = gen_snap(f, g, r, chance(g, 10) ? 2 : 0);
		if (o->s)
			o->var = below(g, 2);
		else
			o->var = r->nmap && (r->fd < 0 || chance(g, 50)) ? 0 :
				 chance(g, 70) ? 1 : 2;
		o->x = below(g, 4);
		gen_range(g, 0, r->n, &o->off, &o->len);
		break;
	case OP_SNAP:
		r = gen_reg(f, g, NEED_FD);
		if (!r)
			return 0;
		{
			struct msnap *v[SM_MAXTAGS];

			nsnap = reg_snaps(f, r, v, SM_MAXTAGS);
		}
		if (nsnap >= SM_MAXSNAP) {
			o->kind = OP_DELETE;
			o->s = gen_snap(f, g, r, 0);
			break;
		}
		o->s = ++f->gen_stag;
		o->x = chance(g, 30);
		o->var = chance(g, 30);
		if (chance(g, 15) && gen_argbuf(f, g, 80, &o->r2, &o->off))
			o->var |= 2;
		break;
	case OP_RESTORE:
		r = gen_reg(f, g, NEED_FD);
		if (!r)
			return 0;
		o->s = gen_snap(f, g, r, chance(g, 55) ? 1 :
					 chance(g, 90) ? 0 : 2);
		o->var = chance(g, 75) ? 0 : chance(g, 60) ? 1 : 2;
		o->x = below(g, 3);
		o->seed = rnd(g);
		if (chance(g, 15) && gen_argbuf(f, g, 32, &o->r2, &o->off))
			o->var |= 16;
		break;
	case OP_DELETE:
	case OP_SFDOPEN:
		r = gen_reg(f, g, NEED_FD);
		if (!r)
			return 0;
		o->s = gen_snap(f, g, r, chance(g, 95) ? 0 : 2);
		break;
	case OP_DIFF:
		r = gen_reg(f, g, NEED_FD);
		if (!r)
			return 0;
		if (chance(g, 65))
			o->s = gen_snap(f, g, r, chance(g, 95) ? 0 : 2);
		if (chance(g, 50))
			o->s2 = gen_snap(f, g, r, chance(g, 95) ? 0 : 2);
		o->off = chance(g, 70) ? 0 : below(g, r->n + 1);
		o->x = chance(g, 50) ? 1 + below(g, 4) :
		       chance(g, 50) ? 1024 : 1 + below(g, 64);
		if (chance(g, 20) && gen_argbuf(f, g, o->x * 16, &o->r2,
						&o->seed))
			o->var = 1;
		break;
	case OP_CLONE:
	case OP_DUMPLOAD:
		if (fam_alive(f) >= SM_MAXREG)
			return 0;
		r = gen_reg(f, g, NEED_FD);
		if (!r || (o->kind == OP_DUMPLOAD && r->n > 4096))
			return 0;
		o->s = gen_snap(f, g, r, chance(g, 95) ? 0 : 2);
		o->r2 = ++f->gen_rtag;
		o->x = chance(g, 70) ? 0600 : 0640;
		if (o->kind == OP_CLONE)
			o->var = chance(g, 5);
		else
			o->var = below(g, 3) | below(g, 3) << 2;
		break;
	case OP_DESTROY:
		r = gen_reg(f, g, 0);
		if (!r || (r->destroyed && !chance(g, 10)))
			return 0;
		o->var = chance(g, 50);
		break;
	case OP_CLOSE:
		r = gen_reg(f, g, NEED_FD);
		o->var = chance(g, 50);
		break;
	case OP_ATTACH:
		r = gen_reg(f, g, NEED_HOLE);
		o->var = chance(g, 20);
		break;
	case OP_MAP:
		r = gen_reg(f, g, 0);
		if (!r || r->nmap >= SM_MAXMAP || (r->fd < 0 && r->destroyed))
			return 0;
		o->off = chance(g, 50) ? 0 : below(g, r->n);
		o->len = chance(g, 50) ? r->n - o->off :
			 1 + below(g, r->n - o->off);
		o->var = chance(g, 20) | chance(g, 25) << 1 | chance(g, 4) << 2;
		o->seed = rnd(g);
		break;
	case OP_MUNMAP:
	case OP_MREMAP:
		r = gen_reg(f, g, NEED_MAP);
		if (!r)
			return 0;
		o->x = below(g, r->nmap);
		o->seed = rnd(g);
		{
			size_t np = r->map[o->x].npages;

			if (o->kind == OP_MUNMAP)
				o->var = below(g, 4);
			else
				o->var = chance(g, 40) ? 0 : chance(g, 50) ?
					 1 : 2 + below(g, 2);
			if (np >= 2)
				o->len = 1 + below(g, np - 1);
			if (o->var == 3 && o->kind == OP_MUNMAP && np >= 3) {
				o->off = 1 + below(g, np - 2);
				o->len = 1 + below(g, np - 1 - o->off);
			}
		}
		break;
	case OP_MPROT:
		r = gen_reg(f, g, NEED_MAP);
		if (!r)
			return 0;
		o->x = below(g, r->nmap);
		o->var = below(g, 4);
		break;
	case OP_FORK:
		if (!f->can_fork)
			return 0;
		r = gen_reg(f, g, NEED_WRITE);
		if (!r || !gen_fork(f, g, o, r))
			return 0;
		break;
	case OP_PAR:
		r = gen_reg(f, g, NEED_WRITE);
		if (!r || !gen_par(f, g, o, r))
			return 0;
		break;
	case OP_INFO:
		r = gen_reg(f, g, NEED_FD);
		break;
	case OP_LIST:
		r = gen_reg(f, g, NEED_FD);
		if (!r)
			return 0;
		o->off = chance(g, 70) ? 0 : below(g, r->next_id + 1);
		o->x = chance(g, 50) ? 1 + below(g, 3) : 64;
		break;
	case OP_PROC:
		return f->solo;
	case OP_VERIFY:
		return 1;
	case OP_RACESNAP:
	case OP_RACERESTORE:
		r = gen_reg(f, g, NEED_FD);
		if (!r || !gen_race(f, g, o, r))
			return 0;
		break;
	case OP_SFDCLOSE: {
		int c[SM_MAXTAGS], k = 0, t;

		for (t = 1; t <= f->nstag; t++)
			if (f->snap[t] && f->snap[t]->fd >= 0)
				c[k++] = t;
		if (!k)
			return 0;
		o->s = c[below(g, k)];
		o->r = f->snap[o->s]->rtag;
		return 1;
	}
	default:
		return 0;
	}
	if (!r)
		return 0;
	o->r = r->tag;
	/* Ops on a snapshot need one. */
	if (!o->s && (o->kind == OP_RESTORE || o->kind == OP_DELETE ||
		      o->kind == OP_SFDOPEN || o->kind == OP_CLONE ||
		      o->kind == OP_DUMPLOAD))
		return 0;
	return 1;
}

static void gen_op(struct fam *f, struct rng *g, struct op *o)
{
	int total = 0, k, tries, nsubs = f->log->nsubs;

	for (k = 0; k < OP__N; k++)
		total += gen_w[k];
	if (!fam_alive(f)) {
		memset(o, 0, sizeof(*o));
		o->kind = OP_CREATE;
		gen_kind(f, g, o);
		return;
	}
	for (tries = 0; tries < 100; tries++) {
		int roll = below(g, total), rt = f->gen_rtag, st = f->gen_stag;

		memset(o, 0, sizeof(*o));
		for (k = 0; roll >= gen_w[k]; k++)
			roll -= gen_w[k];
		o->kind = k;
		if (gen_kind(f, g, o))
			return;
		/* Not applicable now: take nothing back into the log. */
		f->log->nsubs = nsubs;
		f->gen_rtag = rt;
		f->gen_stag = st;
	}
	memset(o, 0, sizeof(*o));
	o->kind = OP_VERIFY;
}

/* ---------------------------------------------------------------------- */
/* Printing operations                                                    */

static void wr_fmt(const struct wr *w, char *b, size_t n)
{
	if (w->how == WR_COPY || w->how == WR_READINTO)
		snprintf(b, n, "%s off=0x%llx len=%u from %c%llu+0x%llx map#%u",
			 wr_names[w->how], (unsigned long long)w->off, w->len,
			 w->how == WR_COPY ? 'r' : 's',
			 (unsigned long long)(w->seed >> 48),
			 (unsigned long long)(w->seed & ((1ULL << 48) - 1)),
			 w->msel);
	else if (w->how == WR_ODIRECT)
		snprintf(b, n, "odirect off=0x%llx len=%u disk=0x%llx map#%u",
			 (unsigned long long)w->off, w->len,
			 (unsigned long long)w->seed, w->msel);
	else if (w->how == WR_MAP || w->how == WR_PROCMEM)
		snprintf(b, n, "%s off=0x%llx len=%u seed=%#llx map#%u",
			 wr_names[w->how], (unsigned long long)w->off, w->len,
			 (unsigned long long)w->seed, w->msel);
	else
		snprintf(b, n, "%s off=0x%llx len=%u seed=%#llx",
			 wr_names[w->how], (unsigned long long)w->off, w->len,
			 (unsigned long long)w->seed);
}

static const char *tagstr(unsigned int tag, char *buf)
{
	if (!tag)
		return "live";
	snprintf(buf, 16, "s%u", tag);
	return buf;
}

static void op_fmt(const struct op *o, char *b, size_t n)
{
	static const char *const expect[] = { "", " expect=newest",
					      " expect=wrong" };
	static const char *const dumps[] = { "lib", "pread", "mmap", "?" };
	static const char *const loads[] = { "all-pages", "non-zero",
					     "mapping", "?" };
	static const char *const unmaps[] = { "all", "head", "tail",
					      "middle" };
	static const char *const remaps[] = { "move", "shrink", "grow",
					      "grow-maymove" };
	unsigned long long off = o->off, len = o->len, x = o->x;
	int k = snprintf(b, n, "%-8s", op_names[o->kind]);
	char t1[16], t2[16];
	struct wr w;

	b += k;
	n -= k;
	switch (o->kind) {
	case OP_CREATE:
		snprintf(b, n, " r%u pages=%llu mode=%04llo%s", o->r2, len, x,
			 o->var & 1 ? " unmapped" : "");
		break;
	case OP_WRITE:
		op_wr(o, &w);
		k = snprintf(b, n, " r%u ", o->r);
		wr_fmt(&w, b + k, n - k);
		break;
	case OP_READ:
		if (o->s)
			snprintf(b, n, " r%u s%u %s off=0x%llx len=%llu", o->r,
				 o->s, o->var ? "pread" : "mmap", off, len);
		else
			snprintf(b, n, " r%u live %s off=0x%llx len=%llu "
				 "map#%llu", o->r, o->var == 2 ? "read" :
				 o->var ? "pread" : "mapping", off, len, x);
		break;
	case OP_SNAP:
		k = snprintf(b, n, " r%u -> s%u%s%s", o->r, o->s,
			     x ? " labelled" : "", o->var & 1 ? " +fd" : "");
		if (o->var & 2)
			snprintf(b + k, n - k, " arg-at=r%u+0x%llx", o->r2, off);
		break;
	case OP_RESTORE:
		k = snprintf(b, n, " r%u s%u%s", o->r, o->s,
			     expect[(o->var & 3) % 3]);
		if (o->var & 16)
			snprintf(b + k, n - k, " arg-at=r%u+0x%llx", o->r2, off);
		break;
	case OP_MPROT:
		snprintf(b, n, " r%u map#%llu %s", o->r, x,
			 (const char *const[]){ "read-only", "read-write",
						"madvise-dontneed",
						"read-only,read-write" }
			 [o->var & 3]);
		break;
	case OP_DIFF:
		k = snprintf(b, n, " r%u from=%s to=%s start=%llu "
			     "per-call=%llu", o->r, tagstr(o->s, t1),
			     tagstr(o->s2, t2), off, x);
		if (o->var & 1)
			snprintf(b + k, n - k, " extents-at=r%u+0x%llx", o->r2,
				 (unsigned long long)o->seed);
		break;
	case OP_CLONE:
		if (o->var & 1)
			snprintf(b, n, " r%u s%u onto r%u's own name", o->r,
				 o->s, o->r);
		else
			snprintf(b, n, " r%u s%u -> r%u mode=%04llo", o->r,
				 o->s, o->r2, x);
		break;
	case OP_DUMPLOAD:
		snprintf(b, n, " r%u s%u -> r%u dump=%s load=%s", o->r, o->s,
			 o->r2, dumps[o->var & 3],
			 (o->var & 3) ? loads[(o->var >> 2) & 3] : "lib");
		break;
	case OP_DESTROY:
		snprintf(b, n, " r%u%s", o->r, o->var & 1 ? " +close+unmap" :
			 "");
		break;
	case OP_CLOSE:
		snprintf(b, n, " r%u%s", o->r, o->var & 1 ? " +unmap" : "");
		break;
	case OP_ATTACH:
		snprintf(b, n, " r%u%s", o->r, o->var & 1 ? " read-only" : "");
		break;
	case OP_MAP:
		snprintf(b, n, " r%u pages %llu+%llu%s%s%s", o->r, off, len,
			 o->var & 1 ? " read-only" : "",
			 o->var & 2 ? " via-2nd-handle" : "",
			 o->var & 4 ? " past-the-end" : "");
		break;
	case OP_MUNMAP:
		snprintf(b, n, " r%u map#%llu %s at=%llu pages=%llu", o->r, x,
			 unmaps[o->var & 3], off, len);
		break;
	case OP_MREMAP:
		snprintf(b, n, " r%u map#%llu %s pages=%llu", o->r, x,
			 remaps[o->var & 3], len);
		break;
	case OP_FORK:
		snprintf(b, n, " r%u%s%s%s", o->r,
			 o->var & 1 ? " child-attaches" : " inherited",
			 o->var & 2 ? " child-snaps -> " : "",
			 o->var & 2 ? tagstr(o->s, t1) : "");
		break;
	case OP_LIST:
		snprintf(b, n, " r%u start=%llu per-call=%llu", o->r, off, x);
		break;
	case OP_RACESNAP:
	case OP_RACERESTORE:
		k = snprintf(b, n, o->kind == OP_RACESNAP ? " r%u -> s%u%s" :
			     " r%u s%u%s", o->r, o->s,
			     o->kind == OP_RACESNAP && o->var & 1 ? " +fd" : "");
		if (x & RACE_REC)
			snprintf(b + k, n - k, " cut: helper 1 after %llu "
				 "stores + %llu bytes, helper 2 after %llu + "
				 "%llu", x & 0xff, (x >> 8 & 0x3ff) * 8,
				 x >> 20 & 0xff, (x >> 28 & 0x3ff) * 8);
		else
			snprintf(b + k, n - k, " cut: seeded");
		break;
	case OP_PAR:
	case OP_INFO:
		snprintf(b, n, " r%u", o->r);
		break;
	case OP_DELETE:
	case OP_SFDOPEN:
	case OP_SFDCLOSE:
	case OP_SNAPCHK:
		snprintf(b, n, " r%u s%u", o->r, o->s);
		break;
	default:
		b[0] = 0;
		break;
	}
}

/* Ops @idx[0..n) of @lg, one per line, with the writes of PAR and FORK. */
static void trace_print(const struct wlog *lg, const int *idx, int n,
			const uint8_t *suboff)
{
	char buf[256];
	int i, j;

	for (i = 0; i < n; i++) {
		const struct op *o = &lg->ops[idx[i]];

		op_fmt(o, buf, sizeof(buf));
		printf("#   [%d] %s\n", idx[i], buf);
		for (j = 0; j < o->nsub; j++) {
			const struct wr *w = &lg->subs[o->sub + j];

			if (suboff && suboff[o->sub + j])
				continue;
			wr_fmt(w, buf, sizeof(buf));
			printf("#       %s: %s\n", o->kind == OP_FORK ?
			       (w->who ? "child " : "parent") :
			       (w->who ? "helper" : "owner "), buf);
		}
	}
	fflush(stdout);
}

/* ---------------------------------------------------------------------- */
/* Helper and checker threads                                             */

struct helper_arg {
	struct fam *f;
	int who;
};

static void *helper_main(void *arg)
{
	struct helper_arg *ha = arg;
	struct fam *f = ha->f;
	uint8_t *buf = xmalloc(SM_CHUNK > SM_MAXWR ? SM_CHUNK : SM_MAXWR);
	unsigned int seen = 0;
	char why[600];

	for (;;) {
		const struct op *o;
		struct mreg *r;
		int rc;

		pthread_mutex_lock(&f->mu);
		while (f->par_gen == seen && !f->quit)
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->quit) {
			pthread_mutex_unlock(&f->mu);
			break;
		}
		seen = f->par_gen;
		o = f->par_op;
		r = f->par_reg;
		pthread_mutex_unlock(&f->mu);
		why[0] = 0;
		if (o->kind == OP_RACESNAP || o->kind == OP_RACERESTORE) {
			race_run(f, r, o, ha->who);
			rc = 0;
		} else {
			rc = subs_run(f, r, o, ha->who, NULL, buf, why,
				      sizeof(why));
		}
		pthread_mutex_lock(&f->mu);
		snprintf(f->par_err[ha->who], sizeof(f->par_err[0]), "%s",
			 rc ? (why[0] ? why : "failed") : "");
		f->par_done++;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
	}
	free(buf);
	free(ha);
	return NULL;
}

/* A few pages of snapshot @s through its fd (all of a small one). */
static int chk_quiet(struct msnap *s, struct rng *g, uint8_t *buf, char *why,
		     size_t wlen)
{
	const struct mimg *img = &s->img;
	int use_mmap = below(g, 2), i, rc = 0;
	uint8_t *m = NULL;

	if (img->n <= 64)
		return cmp_snapfd(img, s->fd, use_mmap, 0, img->n * PG, buf,
				  why, wlen);
	if (use_mmap) {
		m = mmap(NULL, img->n * PG, PROT_READ, MAP_SHARED, s->fd, 0);
		if (m == MAP_FAILED) {
			snprintf(why, wlen, "mmap: %s", strerror(errno));
			return -1;
		}
	}
	for (i = 0; i < 16 && !rc; i++) {
		size_t p = img->n > 32800 && i < 8 ? below(g, 64) :
			   below(g, img->n);

		rc = m ? cmp_mem(img, m + p * PG, p * PG, PG, "snapshot mmap",
				 why, wlen) :
			 cmp_fd(img, s->fd, 0, p * PG, PG, buf, "snapshot pread",
				why, wlen);
	}
	if (m)
		munmap(m, img->n * PG);
	return rc;
}

/*
 * Re-read the snapshots the owner holds open, while it works; never while
 * a snapshot is being taken (snaplock).
 */
static void *checker_main(void *arg)
{
	struct fam *f = arg;
	uint8_t *buf = xmalloc(SM_CHUNK);
	struct rng g = { f->seed ^ 0xc3ec3e };
	char why[700];

	for (;;) {
		struct msnap *s = NULL;
		int c[64], k = 0, t, bad;

		pthread_mutex_lock(&f->mu);
		if (f->quit) {
			pthread_mutex_unlock(&f->mu);
			break;
		}
		for (t = 1; t <= f->nstag && k < 64; t++)
			if (f->snap[t] && f->snap[t]->fd >= 0)
				c[k++] = t;
		if (k) {
			s = f->snap[c[below(&g, k)]];
			s->busy++;
		}
		pthread_mutex_unlock(&f->mu);
		if (!s) {
			usleep(2000);
			continue;
		}
		pthread_rwlock_rdlock(&f->snaplock);
		bad = chk_quiet(s, &g, buf, why, sizeof(why));
		pthread_rwlock_unlock(&f->snaplock);
		pthread_mutex_lock(&f->mu);
		s->busy--;
		if (bad && !f->chk_fail) {
			snprintf(f->chk_why, sizeof(f->chk_why), "snapshot %llu "
				 "(s%d): %s", (unsigned long long)s->id, s->tag,
				 why);
			f->chk_tag = s->tag;
			__atomic_store_n(&f->chk_fail, 1, __ATOMIC_RELEASE);
		}
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		if (bad)
			break;
		if (f->ctl)
			__atomic_add_fetch(&f->ctl->chk[f->wid], 1,
					   __ATOMIC_RELAXED);
		usleep(500);
	}
	free(buf);
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* Workers                                                                */

static struct fam *fam_new(int wid, struct ctl *ctl, struct wlog *lg)
{
	struct fam *f = xcalloc(1, sizeof(*f));
	pthread_rwlockattr_t a;

	f->wid = wid;
	f->ctl = ctl;
	f->log = lg;
	f->ramfd = open("/dev/ram0", O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (f->ramfd >= 0) {
		off_t sz = lseek(f->ramfd, 0, SEEK_END);

		f->ram_bytes = sz > SM_RAM_MAX ? SM_RAM_MAX : sz;
		if (f->ram_bytes < 64 * 1024) {
			close(f->ramfd);
			f->ramfd = -1;
		}
	}
	f->memfd = sm_procmem_ok ? open("/proc/self/mem", O_RDWR | O_CLOEXEC) :
				   -1;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a,
			PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&f->snaplock, &a);
	f->scratch = xmalloc(SM_CHUNK);
	f->wbuf = xmalloc(SM_MAXWR);
	f->next_ident = 1;
	return f;
}

/* Forget the last epoch's model (its kernel objects are gone). */
static void fam_reset(struct fam *f)
{
	int t;

	pthread_mutex_lock(&f->mu);
	for (t = 0; t < SM_MAXTAGS; t++) {
		struct msnap *s = f->snap[t];
		struct mreg *r = f->reg[t];

		if (s) {
			f->snap[t] = NULL;
			img_drop(f, &s->img);
			free(s);
		}
		if (r) {
			img_drop(f, &r->live);
			reg_release(r);
			f->reg[t] = NULL;
		}
	}
	f->nrtag = f->nstag = f->gen_rtag = f->gen_stag = 0;
	memset(f->snap_rtag, 0, sizeof(f->snap_rtag));
	pthread_mutex_unlock(&f->mu);
	free(f->cnt);
	f->cnt = NULL;
	free(f->own);
	f->own = NULL;
	f->cntcap = 0;
	f->next_ident = 1;
	f->nalloc = f->nshared = 0;
	f->oalloc = f->oshared = 0;
	f->acct_lost = 0;
}

static void fam_threads(struct fam *f, int start)
{
	int i;

	if (!f->threads)
		return;
	if (!start) {
		pthread_mutex_lock(&f->mu);
		f->quit = 1;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		for (i = 0; i < f->nth; i++)
			pthread_join(f->th[i], NULL);
		f->nth = 0;
		return;
	}
	for (i = 0; i < SM_HELPERS; i++) {
		struct helper_arg *ha = xmalloc(sizeof(*ha));

		ha->f = f;
		ha->who = i + 1;
		if (!pthread_create(&f->th[f->nth], NULL, helper_main, ha))
			f->nth++;
	}
	if (!pthread_create(&f->th[f->nth], NULL, checker_main, f))
		f->nth++;
}

static __thread int sm_cur_wid = -1;
static struct ctl *sm_sig_ctl;

static void sm_on_signal(int sig)
{
	if (sm_sig_ctl && sm_cur_wid >= 0)
		sm_sig_ctl->sig_wid = sm_cur_wid;
	/* SA_RESETHAND: the faulting access repeats and kills us. */
}

/* One epoch: generate, log and run ops until the end; -1 on a failure. */
static int epoch_run(struct fam *f, struct rng *g, int target)
{
	struct wlog *lg = f->log;

	if (setjmp(f->jb))
		return -1;
	for (;;) {
		struct op *o = &lg->ops[lg->nops];

		if (lg->nops >= target || lg->nops >= SM_MAXOPS - 2 ||
		    f->ctl->stop || f->gen_rtag >= SM_MAXTAGS - 2 ||
		    f->gen_stag >= SM_MAXTAGS - 2) {
			memset(o, 0, sizeof(*o));
			o->kind = OP_END;
		} else {
			gen_op(f, g, o);
		}
		f->ctl->cur[f->wid] = lg->nops++;
		f->ran = 0;
		exec_op(f, o);
		f->ctl->ops[f->wid]++;
		f->ctl->kinds[f->wid][o->kind]++;
		f->ctl->ran[f->wid][o->kind] += f->ran;
		if (__atomic_load_n(&f->chk_fail, __ATOMIC_ACQUIRE)) {
			/* Log the check so that a replay makes it too. */
			o = &lg->ops[lg->nops];
			memset(o, 0, sizeof(*o));
			o->kind = OP_SNAPCHK;
			o->s = f->chk_tag;
			o->r = f->snap_rtag[f->chk_tag];
			f->ctl->cur[f->wid] = lg->nops++;
			fam_fail(f, "snap.content", "checker thread: %s",
				 f->chk_why);
		}
		if (o->kind == OP_END)
			return 0;
	}
}

struct sm_cfg {
	const char *name;
	int nw, nproc;
	int proc_of[SM_MAXW], can_fork[SM_MAXW];
	int solo, threads, big;
	int ops_min, ops_max;
	double seconds;
	/* filled by sm_go() */
	struct ctl *ctl;
	struct wlog *logs;
	long long gbase[4];
	double elapsed;
};

static uint64_t sm_seed;

/* Worker @wid's seed: from the master seed, the test and @wid. */
static uint64_t wseed_of(const struct sm_cfg *cfg, int wid)
{
	uint64_t h = sm_seed;
	const char *c;

	for (c = cfg->name; *c; c++)
		h = mix64(h ^ (uint8_t)*c);
	return mix64(h ^ (uint64_t)(wid + 1) * GOLDEN);
}

static void worker(struct sm_cfg *cfg, int wid)
{
	struct fam *f = fam_new(wid, cfg->ctl, &cfg->logs[wid]);
	struct wlog *lg = f->log;
	uint64_t ws = wseed_of(cfg, wid);
	int epoch;

	sm_cur_wid = wid;
	f->solo = cfg->solo;
	f->threads = cfg->threads;
	f->can_fork = cfg->can_fork[wid];
	f->big = cfg->big;
	f->seed = ws;
	memcpy(f->gbase, cfg->gbase, sizeof(f->gbase));
	fam_threads(f, 1);
	for (epoch = 0; !cfg->ctl->stop; epoch++) {
		struct rng g = { mix64(ws + epoch) };
		int target = cfg->ops_min +
			     below(&g, cfg->ops_max - cfg->ops_min + 1);

		fam_reset(f);
		snprintf(f->prefix, sizeof(f->prefix), "sm-%d-w%d-e%d-",
			 getpid(), wid, epoch);
		f->vr.s = g.s ^ 1;
		lg->nops = 0;
		lg->nsubs = 0;
		lg->epoch = epoch;
		lg->seed = g.s;
		if (epoch_run(f, &g, target)) {
			struct ctl *c = cfg->ctl;

			if (__sync_bool_compare_and_swap(&c->failed, 0, 1)) {
				c->fail_wid = wid;
				c->fail_idx = lg->nops - 1;
				c->fail_kind = lg->ops[c->fail_idx].kind;
				c->fail_epoch = epoch;
				snprintf(c->fail_what, sizeof(c->fail_what),
					 "%s", f->what);
				snprintf(c->fail_msg, sizeof(c->fail_msg),
					 "%s", f->why);
			}
			c->stop = 1;
			fam_cleanup(f);
			break;
		}
		cfg->ctl->epochs[wid]++;
	}
	cfg->ctl->cur[wid] = -1;
	fam_threads(f, 0);
}

struct wthread {
	struct sm_cfg *cfg;
	int wid;
};

static void *worker_thread(void *arg)
{
	struct wthread *wt = arg;

	worker(wt->cfg, wt->wid);
	return NULL;
}

static void __attribute__((noreturn)) worker_proc(struct sm_cfg *cfg, int p)
{
	struct wthread wt[SM_MAXW];
	pthread_t th[SM_MAXW];
	struct sigaction sa;
	int w, n = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sm_on_signal;
	sa.sa_flags = SA_RESETHAND;
	sm_sig_ctl = cfg->ctl;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (w = 0; w < cfg->nw; w++) {
		if (cfg->proc_of[w] != p)
			continue;
		wt[n].cfg = cfg;
		wt[n].wid = w;
		n++;
	}
	if (n == 1) {
		worker(cfg, wt[0].wid);
		_exit(0);
	}
	for (w = 0; w < n; w++)
		pthread_create(&th[w], NULL, worker_thread, &wt[w]);
	for (w = 0; w < n; w++)
		pthread_join(th[w], NULL);
	_exit(0);
}

/* ---------------------------------------------------------------------- */
/* Replaying and shrinking a failing trace                                */

struct rres {
	int failed, idx, kind;
	char what[48];
	char msg[1536];
};

#define SM_REPLAY_TIMEOUT 120

/*
 * Run ops @idx[0..@n) of @lg (leaving out the writes marked in @suboff)
 * single-threaded on fresh regions, in a child process; the first failure
 * in @res.
 */
static void replay(const struct sm_cfg *cfg, const struct wlog *lg,
		   const int *idx, int n, const uint8_t *suboff,
		   struct rres *res)
{
	struct rres *sh = xmap_shared(sizeof(*sh));
	double t0 = th_now();
	int status = 0, i, timed_out = 0;
	pid_t pid;

	memset(sh, 0, sizeof(*sh));
	sh->idx = -1;
	fflush(NULL);
	pid = fork();
	if (!pid) {
		struct fam *f = fam_new(0, NULL, (struct wlog *)lg);

		signal(SIGPIPE, SIG_IGN);
		alarm(0);
		f->solo = cfg->solo;
		f->can_fork = 1;
		f->big = 1;
		f->suboff = suboff;
		f->seed = lg->seed;
		f->vr.s = lg->seed ^ 1;
		snprintf(f->prefix, sizeof(f->prefix), "sm-%d-r-", getpid());
		if (f->solo && read_gauges(f->gbase))
			_exit(3);
		if (setjmp(f->jb)) {
			sh->failed = 1;
			snprintf(sh->what, sizeof(sh->what), "%s", f->what);
			snprintf(sh->msg, sizeof(sh->msg), "%s", f->why);
			fam_cleanup(f);
			_exit(0);
		}
		for (i = 0; i < n; i++) {
			sh->idx = idx[i];
			sh->kind = lg->ops[idx[i]].kind;
			exec_op(f, &lg->ops[idx[i]]);
		}
		fam_cleanup(f);
		_exit(0);
	}
	if (pid < 0) {
		memset(res, 0, sizeof(*res));
		snprintf(res->msg, sizeof(res->msg), "fork: %s", strerror(errno));
		munmap(sh, sizeof(*sh));
		return;
	}
	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (th_now() - t0 > SM_REPLAY_TIMEOUT) {
			/* A task stuck in the kernel may never go: 10 s more. */
			kill(pid, SIGKILL);
			for (i = 0; i < 1000 &&
			     waitpid(pid, &status, WNOHANG) != pid; i++)
				usleep(10000);
			timed_out = 1;
			break;
		}
		usleep(10000);
	}
	*res = *sh;
	if (timed_out) {
		res->failed = 1;
		snprintf(res->what, sizeof(res->what), "timeout");
		snprintf(res->msg, sizeof(res->msg), "op [%d] did not finish "
			 "in %d s", sh->idx, SM_REPLAY_TIMEOUT);
	} else if (WIFSIGNALED(status)) {
		res->failed = 1;
		snprintf(res->what, sizeof(res->what), "signal %d",
			 WTERMSIG(status));
		snprintf(res->msg, sizeof(res->msg), "killed by signal %d in "
			 "op [%d]", WTERMSIG(status), sh->idx);
	} else if (WEXITSTATUS(status)) {
		res->failed = 1;
		snprintf(res->what, sizeof(res->what), "exit %d",
			 WEXITSTATUS(status));
		snprintf(res->msg, sizeof(res->msg), "exited %d in op [%d]",
			 WEXITSTATUS(status), sh->idx);
	}
	munmap(sh, sizeof(*sh));
}

struct shrink {
	const struct sm_cfg *cfg;
	const struct wlog *lg;
	int kind;
	char what[48];
	int *cur, m;		/* the trace; its last op fails */
	uint8_t *suboff;
	double until;
	int replays;
	struct rres last;	/* the last replay's result */
	struct rres good;	/* the last one that failed the same way */
};

/* Replay @cand; if it fails the same way, it becomes the trace (cut after
 * the failing op). */
static int try_trace(struct shrink *sh, const int *cand, int n)
{
	int i;

	sh->replays++;
	replay(sh->cfg, sh->lg, cand, n, sh->suboff, &sh->last);
	if (!sh->last.failed || sh->last.kind != sh->kind ||
	    strcmp(sh->last.what, sh->what))
		return 0;
	for (i = 0; i < n && cand[i] != sh->last.idx; i++)
		;
	if (cand != sh->cur)
		memmove(sh->cur, cand, n * sizeof(*cand));
	sh->m = i < n ? i + 1 : n;
	sh->good = sh->last;
	return 1;
}

/* Delta debugging: drop chunks of ops (never the failing one) while the
 * failure stays. */
static void shrink_ops(struct shrink *sh)
{
	int *cand = xmalloc(sh->m * sizeof(*cand));
	int gran = 2;

	while (sh->m > 1 && th_now() < sh->until) {
		int body = sh->m - 1, chunk = (body + gran - 1) / gran;
		int start, done = 0;

		for (start = 0; start < body && th_now() < sh->until;
		     start += chunk) {
			int k = 0, i;

			for (i = 0; i < sh->m; i++)
				if (i < start || i >= start + chunk ||
				    i == sh->m - 1)
					cand[k++] = sh->cur[i];
			if (try_trace(sh, cand, k)) {
				gran = gran > 2 ? gran - 1 : 2;
				done = 1;
				break;
			}
		}
		if (!done) {
			if (chunk <= 1)
				break;
			gran = gran * 2 < body ? gran * 2 : body;
		}
	}
	free(cand);
}

/* Then the writes inside the PAR and FORK ops left, one at a time. */
static void shrink_subs(struct shrink *sh)
{
	int *cand = xmalloc(sh->m * sizeof(*cand));
	int i, j;

	for (i = 0; i < sh->m && th_now() < sh->until; i++) {
		const struct op *o = &sh->lg->ops[sh->cur[i]];

		/* A recorded cut counts RACESNAP's writes: keep them all. */
		for (j = 0; o->kind != OP_RACESNAP &&
		     o->kind != OP_RACERESTORE && j < o->nsub &&
		     th_now() < sh->until; j++) {
			uint32_t s = o->sub + j;

			if (sh->suboff[s])
				continue;
			sh->suboff[s] = 1;
			memcpy(cand, sh->cur, sh->m * sizeof(*cand));
			if (!try_trace(sh, cand, sh->m))
				sh->suboff[s] = 0;
		}
	}
	free(cand);
}

struct fail_info {
	int reproduced, complete, orig, min, last_kind;
};

/*
 * Report the recorded failure: replay the failing worker's epoch
 * single-threaded, shrink it for up to @budget seconds, print the
 * shortest trace (or the whole one if it does not reproduce).
 */
static void handle_failure(struct sm_cfg *cfg, double budget,
			   struct fail_info *fi)
{
	struct ctl *c = cfg->ctl;
	int wid = c->fail_wid, n = c->fail_idx + 1, i;
	const struct wlog *lg = &cfg->logs[wid];
	struct shrink sh;
	char buf[256];
	double t0 = th_now();

	memset(fi, 0, sizeof(*fi));
	if (n < 1)
		n = 1;
	op_fmt(&lg->ops[n - 1], buf, sizeof(buf));
	printf("# %s: MISMATCH in worker %d (COWSNAP_SEED=%#llx, worker seed "
	       "%#llx, epoch %d) at op [%d] %s\n", cfg->name, wid,
	       (unsigned long long)sm_seed, (unsigned long long)wseed_of(cfg, wid),
	       lg->epoch, n - 1, buf);
	printf("#   %s: %s\n", c->fail_what, c->fail_msg);
	memset(&sh, 0, sizeof(sh));
	sh.cfg = cfg;
	sh.lg = lg;
	sh.kind = c->fail_kind;
	snprintf(sh.what, sizeof(sh.what), "%s",
		 strcmp(c->fail_what, "hang") ? c->fail_what : "timeout");
	sh.cur = xmalloc(SM_MAXOPS * sizeof(*sh.cur));
	for (i = 0; i < n; i++)
		sh.cur[i] = i;
	sh.m = n;
	sh.suboff = xcalloc(SM_MAXSUBS, 1);
	sh.until = t0 + budget;
	fi->orig = n;
	if (!strcmp(sh.what, "timeout")) {
		/* The replay may hang too: the whole trace first. */
		printf("# worker %d's epoch %d up to the op that hung:\n", wid,
		       lg->epoch);
		trace_print(lg, sh.cur, n, NULL);
	}
	printf("# replaying worker %d's %d ops single-threaded on fresh "
	       "regions\n", wid, n);
	fflush(stdout);
	if (!try_trace(&sh, sh.cur, n) &&
	    (!strcmp(sh.what, "timeout") || !try_trace(&sh, sh.cur, n))) {
		printf("# the failure does NOT reproduce single-threaded "
		       "(replay: %s%s%s); worker %d's whole epoch %d:\n",
		       sh.last.failed ? sh.last.what : "passed",
		       sh.last.failed ? ": " : "",
		       sh.last.failed ? sh.last.msg : "", wid, lg->epoch);
		for (i = 0; i < lg->nops; i++)
			sh.cur[i] = i;
		trace_print(lg, sh.cur, lg->nops, NULL);
		goto out;
	}
	fi->reproduced = 1;
	if (strcmp(sh.what, "timeout")) {
		shrink_ops(&sh);
		shrink_subs(&sh);
	}
	fi->complete = th_now() < sh.until;
	fi->min = sh.m;
	fi->last_kind = lg->ops[sh.cur[sh.m - 1]].kind;
	printf("# reproduced single-threaded; shortest trace%s: %d of %d ops "
	       "(%d replays, %.1f s), one op per line:\n",
	       fi->complete ? "" : " found in the time allowed", sh.m, n,
	       sh.replays, th_now() - t0);
	trace_print(lg, sh.cur, sh.m, sh.suboff);
	printf("#   => %s: %s\n", sh.good.what, sh.good.msg);
out:
	fflush(stdout);
	free(sh.cur);
	free(sh.suboff);
}

/* ---------------------------------------------------------------------- */
/* Running workers                                                        */

static void worker_died(struct sm_cfg *cfg, int p, int status)
{
	struct ctl *c = cfg->ctl;
	int w, wid = -1;

	for (w = 0; w < cfg->nw; w++)
		if (cfg->proc_of[w] == p && (wid < 0 || w == c->sig_wid))
			wid = w;
	if (c->failed || wid < 0)
		return;
	c->failed = 1;
	c->stop = 1;
	c->fail_wid = wid;
	c->fail_idx = c->cur[wid] >= 0 ? c->cur[wid] :
		      cfg->logs[wid].nops - 1;
	if (c->fail_idx < 0)
		c->fail_idx = 0;
	c->fail_kind = cfg->logs[wid].ops[c->fail_idx].kind;
	c->fail_epoch = cfg->logs[wid].epoch;
	if (WIFSIGNALED(status))
		snprintf(c->fail_what, sizeof(c->fail_what), "signal %d",
			 WTERMSIG(status));
	else
		snprintf(c->fail_what, sizeof(c->fail_what), "exit %d",
			 WEXITSTATUS(status));
	snprintf(c->fail_msg, sizeof(c->fail_msg), "worker process %d ended "
		 "(%s) in op [%d]", p, c->fail_what, c->fail_idx);
}

/* Workers that stopped making progress: blocked tasks to the kernel log. */
static void workers_hung(struct sm_cfg *cfg, const pid_t *pid, const int *done)
{
	struct ctl *c = cfg->ctl;
	char buf[256];
	int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC), p, w;

	if (fd >= 0) {
		if (write(fd, "w", 1) != 1)
			printf("# (sysrq-w failed: %s)\n", strerror(errno));
		close(fd);
	}
	th_dump_blocked();
	for (w = 0; w < cfg->nw; w++) {
		if (done[cfg->proc_of[w]] || c->cur[w] < 0)
			continue;
		op_fmt(&cfg->logs[w].ops[c->cur[w]], buf, sizeof(buf));
		printf("# HANG: worker %d still in op [%d] %s\n", w, c->cur[w],
		       buf);
		if (!c->failed) {
			c->failed = 1;
			c->fail_wid = w;
			c->fail_idx = c->cur[w];
			c->fail_kind = cfg->logs[w].ops[c->cur[w]].kind;
			c->fail_epoch = cfg->logs[w].epoch;
			snprintf(c->fail_what, sizeof(c->fail_what), "hang");
			snprintf(c->fail_msg, sizeof(c->fail_msg), "no end "
				 "in time (blocked tasks are in the kernel "
				 "log)");
		}
	}
	for (p = 0; p < cfg->nproc; p++)
		if (!done[p])
			kill(pid[p], SIGKILL);
}

/* Start the workers, stop them at the deadline, collect them. */
static void sm_go(struct sm_cfg *cfg)
{
	pid_t pid[SM_MAXW];
	int done[SM_MAXW] = { 0 }, ndone = 0, status, p, w;
	double t0, deadline, grace;

	cfg->ctl = xmap_shared(sizeof(*cfg->ctl));
	cfg->logs = xmap_shared(cfg->nw * sizeof(*cfg->logs));
	cfg->ctl->sig_wid = -1;
	for (w = 0; w < SM_MAXW; w++)
		cfg->ctl->cur[w] = -1;
	fflush(NULL);
	t0 = th_now();
	deadline = t0 + cfg->seconds;
	grace = 90 + cfg->seconds / 2;
	for (p = 0; p < cfg->nproc; p++) {
		pid[p] = fork();
		if (!pid[p])
			worker_proc(cfg, p);
		if (pid[p] < 0) {
			cfg->ctl->stop = 1;
			FAIL("fork: %s", strerror(errno));
		}
	}
	while (ndone < cfg->nproc) {
		usleep(50000);
		if (th_now() >= deadline || cfg->ctl->failed)
			cfg->ctl->stop = 1;
		for (p = 0; p < cfg->nproc; p++) {
			if (done[p] || waitpid(pid[p], &status, WNOHANG) != pid[p])
				continue;
			done[p] = 1;
			ndone++;
			if (!WIFEXITED(status) || WEXITSTATUS(status))
				worker_died(cfg, p, status);
		}
		if (ndone < cfg->nproc && th_now() > deadline + grace) {
			workers_hung(cfg, pid, done);
			break;
		}
	}
	cfg->elapsed = th_now() - t0;
}

/* ---------------------------------------------------------------------- */
/* The tests                                                              */

static void __attribute__((constructor)) sm_init(void)
{
	const char *e = getenv("COWSNAP_SEED");
	struct timespec ts;

	if (e && *e) {
		sm_seed = strtoull(e, NULL, 0);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	sm_seed = mix64((uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec) ^
		  getpid();
}

static double sm_budget(void)
{
	const char *e = getenv("COWSNAP_STRESS_SECONDS");
	double s = e && *e ? atof(e) : 45;

	return s > 0 ? s : 45;
}

/* Destroy regions named sm-* (left by a crash); returns how many. */
static int sm_sweep(void)
{
	char *text = read_proc(), *p, name[COWSNAP_NAME_MAX];
	int n = 0, fd = cs_open();

	for (p = text; p && fd >= 0 && (p = strstr(p, "\nregion sm-")); p++)
		if (sscanf(p + 8, "%63s", name) == 1 && !cs_destroy(fd, name))
			n++;
	if (fd >= 0)
		close(fd);
	free(text);
	return n;
}

/* The RAM disk for O_DIRECT (brd), filled with DEV_SEED's bytes. */
static void sm_ramdisk(void)
{
	uint8_t *buf;
	off_t size;
	int fd, ko;

	if (access("/dev/ram0", F_OK)) {
		ko = open("/lib/modules/brd.ko", O_RDONLY | O_CLOEXEC);
		if (ko >= 0) {
			syscall(SYS_finit_module, ko, "rd_nr=1 rd_size=1024", 0);
			close(ko);
		}
	}
	fd = open("/dev/ram0", O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		printf("# no RAM disk (/dev/ram0): no O_DIRECT writes\n");
		return;
	}
	size = lseek(fd, 0, SEEK_END);
	if (size > SM_RAM_MAX)
		size = SM_RAM_MAX;
	if (size >= 64 * 1024 && !posix_memalign((void **)&buf, PG, size)) {
		gen_fill(buf, DEV_SEED, 0, size);
		ASSERT_EQ(pwrite_full(fd, buf, size, 0), 0);
		free(buf);
	}
	close(fd);
}

/* Do writes to /proc/self/mem reach a MAP_SHARED mapping here? */
static int sm_procmem_probe(void)
{
	uint8_t *a = mmap(NULL, PG, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC), ok;

	ok = a != MAP_FAILED && fd >= 0 &&
	     pwrite(fd, "x", 1, (off_t)(uintptr_t)a) == 1 && a[0] == 'x';
	if (fd >= 0)
		close(fd);
	if (a != MAP_FAILED)
		munmap(a, PG);
	return ok;
}

static void sm_begin(struct sm_cfg *cfg)
{
	struct utsname u;
	int left = sm_sweep();

	uname(&u);
	printf("# stress_model.%s: COWSNAP_SEED=%#llx, %.0f s, kernel %s\n",
	       cfg->name, (unsigned long long)sm_seed, cfg->seconds,
	       u.release);
	if (left)
		printf("# destroyed %d sm-* regions left from before\n", left);
	sm_ramdisk();
	sm_procmem_ok = sm_procmem_probe();
	if (!sm_procmem_ok)
		printf("# writes to /proc/self/mem do not work: not used\n");
	ASSERT_EQ(read_gauges(cfg->gbase), 0);
	if (cfg->gbase[0] || cfg->gbase[2])
		printf("# note: /proc/cowsnap already had %lld regions, %lld "
		       "pages before the test\n", cfg->gbase[0],
		       cfg->gbase[2]);
	alarm((unsigned int)(cfg->seconds * 1.5) + 600);
}

static void sm_stats(struct sm_cfg *cfg)
{
	unsigned long long ops = 0, ep = 0, chk = 0, par = 0, forks = 0;
	unsigned long long races = 0, copies = 0, mid = 0, unw = 0, rrx = 0;
	unsigned long long lost = 0;
	struct utsname u;
	char mix[1000];
	int w, k, n;

	for (w = 0; w < cfg->nw; w++) {
		ops += cfg->ctl->ops[w];
		ep += cfg->ctl->epochs[w];
		chk += cfg->ctl->chk[w];
		par += cfg->ctl->par[w];
		forks += cfg->ctl->forks[w];
		races += cfg->ctl->races[w];
		mid += cfg->ctl->race_mid[w];
		unw += cfg->ctl->race_unwritten[w];
		rrx += cfg->ctl->rr_extra[w];
		lost += cfg->ctl->acct_lost[w];
		copies += cfg->ctl->race_copies[w];
	}
	uname(&u);
	mix[0] = 0;
	for (k = 1, n = 0; k < OP__N; k++) {
		unsigned long long v = 0;

		unsigned long long ran = 0;

		for (w = 0; w < cfg->nw; w++) {
			v += cfg->ctl->kinds[w][k];
			ran += cfg->ctl->ran[w][k];
		}
		if (v)
			n += snprintf(mix + n, sizeof(mix) - n, " %s %llu/%llu",
				      op_names[k], ran, v);
	}
	printf("# stress_model.%s: %d worker%s in %d process%s: %llu ops in "
	       "%.1f s = %.0f ops/s (%llu epochs, %llu PAR, %llu FORK, %llu "
	       "racing snapshots/restores (%llu snapshots cut inside the "
	       "stores), %llu checker rounds), kernel %s\n",
	       cfg->name, cfg->nw, cfg->nw > 1 ? "s" : "", cfg->nproc,
	       cfg->nproc > 1 ? "es" : "", ops, cfg->elapsed,
	       ops / (cfg->elapsed > 0 ? cfg->elapsed : 1), ep, par, forks,
	       races, mid, chk, u.release);
	printf("# stress_model.%s: ops by kind (did something/generated):%s\n",
	       cfg->name, mix);
	if (races)
		printf("# stress_model.%s: racing snapshots copied %llu pages at "
		       "the cut (%llu of them not written after it, so DIFF "
		       "against the live view reports them); racing restores "
		       "restored %llu pages that a store had copied just "
		       "before them (%llu regions' counters unchecked after "
		       "that)\n", cfg->name, copies, unw, rrx, lost);
}

/* Everything is gone: /proc/cowsnap as before the test. */
static void sm_end(struct sm_cfg *cfg)
{
	static const char *const names[4] = {
		"regions", "snapshots", "pages_allocated", "pages_shared"
	};
	long long g[4];
	int left = sm_sweep(), i;

	if (left)
		FAIL("%d sm-* regions were left behind", left);
	ASSERT_EQ(read_gauges(g), 0);
	for (i = 0; i < 4; i++)
		if (g[i] != cfg->gbase[i])
			FAIL("/proc/cowsnap %s is %lld after the test, %lld "
			     "before", names[i], g[i], cfg->gbase[i]);
}

static void sm_test(struct sm_cfg *cfg)
{
	struct fail_info fi;
	struct ctl *c;

	sm_begin(cfg);
	sm_go(cfg);
	sm_stats(cfg);
	c = cfg->ctl;
	if (c->failed) {
		handle_failure(cfg, 150, &fi);
		sm_sweep();
		FAIL("worker %d (COWSNAP_SEED=%#llx, epoch %d) op [%d] %s: %s: "
		     "%s", c->fail_wid, (unsigned long long)sm_seed,
		     c->fail_epoch, c->fail_idx, op_names[c->fail_kind],
		     c->fail_what, c->fail_msg);
	}
	sm_end(cfg);
}

/*
 * The shrinker itself: with a model that miscounts restores of older
 * snapshots, the failure must be caught, reproduce single-threaded and
 * shrink to a handful of ops ending in that RESTORE.
 */
TEST(stress_model_shrinker_selftest)
{
	struct sm_cfg cfg = {
		.name = "shrinker_selftest", .nw = 1, .nproc = 1,
		.ops_min = 30, .ops_max = 80, .seconds = 30,
	};
	struct fail_info fi;

	sm_begin(&cfg);
	sm_inject = 1;
	sm_go(&cfg);
	if (!cfg.ctl->failed) {
		sm_sweep();
		FAIL("the injected model bug was not caught in %.0f s",
		     cfg.seconds);
	}
	printf("# (self-test: the failure below is the injected one)\n");
	handle_failure(&cfg, 60, &fi);
	sm_sweep();
	/* The injected error never concerns a restore of the newest. */
	if (strcmp(cfg.ctl->fail_what, "restore.count") ||
	    strstr(cfg.ctl->fail_msg, "the newest"))
		FAIL("caught \"%s: %s\", not the injected error",
		     cfg.ctl->fail_what, cfg.ctl->fail_msg);
	ASSERT_TRUE(fi.reproduced);
	ASSERT_EQ(fi.last_kind, OP_RESTORE);
	if (fi.complete)
		ASSERT_LE(fi.min, 8);
	sm_end(&cfg);
}

/* One family, single-threaded: the global gauges are exact throughout. */
TEST(stress_model_solo)
{
	struct sm_cfg cfg = {
		.name = "solo", .nw = 1, .nproc = 1, .can_fork = { 1 },
		.solo = 1, .big = 1, .ops_min = 100, .ops_max = 400,
	};

	cfg.seconds = sm_budget() / 4;
	sm_test(&cfg);
}

/*
 * Four families at once: two processes that fork, one process with two
 * worker threads; helpers and checkers in every family.
 */
TEST(stress_model_concurrent)
{
	struct sm_cfg cfg = {
		.name = "concurrent", .nw = 4, .nproc = 3,
		.proc_of = { 0, 1, 2, 2 }, .can_fork = { 1, 1, 0, 0 },
		.threads = 1, .big = 1, .ops_min = 100, .ops_max = 400,
	};

	cfg.seconds = sm_budget() * 3 / 4;
	sm_test(&cfg);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Restore, diff and clone (SPEC semantics 3 and 5).
 *
 * Every test runs on regions named after the test ("rst_..."), destroyed
 * in the fixture's teardown.  Expected contents and page identities come
 * from a small model of each region: for every page the fill_page() seed
 * it holds (0: zeros) and an identity number that changes whenever the
 * module must have given the page a new struct page (a write to a hole or
 * to a page a snapshot shares).  Restore counts and diffs are compared
 * with the identities, contents with the seeds.
 *
 * Reading a hole through a mapping may allocate a page (first touch), and
 * a page that appears that way differs from the hole by identity.  Exact
 * counts are therefore asserted only while no test has read a hole through
 * a mapping since the last restore; the live view is checked through
 * pread() (which allocates nothing) and through the mapping for present
 * pages, and holes through the mapping at the end of a phase, followed by
 * a "resync" restore whose count is bounded by the holes read.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/cowsnap.h>
#include "harness.h"
#include "util.h"

#define RST_MAXSNAP	8
#define GOLDEN		0x9e3779b97f4a7c15ULL

/* ---------------------------------------------------------------------- */
/* Small helpers                                                          */

static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static size_t rng_below(size_t n)
{
	return rng() % n;
}

/* Word @k of fill_page(@p, @seed). */
static uint64_t pat(size_t p, size_t k, uint64_t seed)
{
	return ((uint64_t)p << 32) ^ (seed * GOLDEN) ^ k;
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n, sz);

	if (!p)
		FAIL("out of memory");
	return p;
}

static long long restore_raw(int fd, struct cowsnap_restore *r)
{
	return ioctl(fd, COWSNAP_IOC_RESTORE, r);
}

static int clone_raw(int fd, struct cowsnap_clone *c)
{
	return ioctl(fd, COWSNAP_IOC_CLONE, c);
}

static int read_full(int fd, void *buf, size_t len)
{
	char *b = buf;

	while (len) {
		ssize_t r = read(fd, b, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		len -= r;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const char *b = buf;

	while (len) {
		ssize_t r = write(fd, b, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		len -= r;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* The model of a region                                                  */

struct rst_img {
	uint64_t id;		/* snapshot id; 0: the live view */
	int deleted;
	uint64_t *seed;		/* per page: fill_page seed, 0: zeros */
	uint64_t *ident;	/* per page: identity, 0: hole */
};

struct rst_model {
	int fd;
	uint8_t *map;
	size_t n;
	struct rst_img live;
	struct rst_img snap[RST_MAXSNAP];
	int nsnap;
	uint64_t next_ident;
};

static void img_alloc(struct rst_img *img, size_t n)
{
	img->seed = xcalloc(n, sizeof(uint64_t));
	img->ident = xcalloc(n, sizeof(uint64_t));
}

static void img_copy(struct rst_img *dst, const struct rst_img *src, size_t n)
{
	memcpy(dst->seed, src->seed, n * sizeof(uint64_t));
	memcpy(dst->ident, src->ident, n * sizeof(uint64_t));
}

static void m_init(struct rst_model *m, int fd, uint8_t *map, size_t n)
{
	memset(m, 0, sizeof(*m));
	m->fd = fd;
	m->map = map;
	m->n = n;
	img_alloc(&m->live, n);
	m->next_ident = 1;
}

/* The image of snapshot @id (0: live); fails the test if unknown. */
static struct rst_img *m_img(struct rst_model *m, uint64_t id)
{
	int i;

	if (!id)
		return &m->live;
	for (i = 0; i < m->nsnap; i++)
		if (m->snap[i].id == id && !m->snap[i].deleted)
			return &m->snap[i];
	FAIL("model: no snapshot %llu", (unsigned long long)id);
}

/* Does a snapshot share live page @p (so a write must copy it)? */
static int m_shared(struct rst_model *m, size_t p)
{
	int i;

	for (i = 0; i < m->nsnap; i++)
		if (!m->snap[i].deleted && m->snap[i].ident[p] &&
		    m->snap[i].ident[p] == m->live.ident[p])
			return 1;
	return 0;
}

/* Record a store to page @p (new identity if it was a hole or shared). */
static void m_note_store(struct rst_model *m, size_t p)
{
	if (!m->live.ident[p] || m_shared(m, p))
		m->live.ident[p] = m->next_ident++;
}

/* Write page @p with fill_page(@seed) through the mapping. */
static void m_write(struct rst_model *m, size_t p, uint64_t seed)
{
	m_note_store(m, p);
	fill_page(m->map, p, seed);
	m->live.seed[p] = seed;
}

/* Store to every word of page @p the value it already holds. */
static void m_rewrite_same(struct rst_model *m, size_t p)
{
	volatile uint64_t *w = (volatile uint64_t *)(m->map + p * PG);
	size_t k;

	m_note_store(m, p);
	for (k = 0; k < PG / 8; k++)
		w[k] = w[k];
}

static uint64_t m_snap(struct rst_model *m)
{
	uint64_t id = cs_snap(m->fd, NULL);
	struct rst_img *s;

	ASSERT_NE(id, 0);
	if (m->nsnap == RST_MAXSNAP)
		FAIL("model: too many snapshots");
	s = &m->snap[m->nsnap++];
	img_alloc(s, m->n);
	img_copy(s, &m->live, m->n);
	s->id = id;
	return id;
}

static void m_delete(struct rst_model *m, uint64_t id)
{
	ASSERT_EQ(cs_snap_delete(m->fd, id), 0);
	m_img(m, id)->deleted = 1;
}

/* Pages whose identity differs between live and snapshot @id. */
static long long m_differs(struct rst_model *m, uint64_t id)
{
	struct rst_img *s = m_img(m, id);
	long long d = 0;
	size_t p;

	for (p = 0; p < m->n; p++)
		d += m->live.ident[p] != s->ident[p];
	return d;
}

static long long m_live_holes(struct rst_model *m)
{
	long long h = 0;
	size_t p;

	for (p = 0; p < m->n; p++)
		h += !m->live.ident[p];
	return h;
}

/*
 * Restore snapshot @id and check pages_restored: exactly the pages that
 * differ if @exact, else at most that plus the live holes (which a read
 * through a mapping may have filled).  Returns pages_restored.
 */
static long long m_restore(struct rst_model *m, uint64_t id, int exact)
{
	long long want = m_differs(m, id), slack = m_live_holes(m);
	long long got = cs_restore(m->fd, id, 0);

	ASSERT_GE(got, 0);
	if (exact)
		ASSERT_EQ(got, want);
	else if (got < want || got > want + slack)
		FAIL("restore %llu: pages_restored %lld, want %lld..%lld",
		     (unsigned long long)id, got, want, want + slack);
	img_copy(&m->live, m_img(m, id), m->n);
	return got;
}

static void check_one(const uint8_t *base, size_t p, uint64_t seed,
		      const char *what)
{
	if (seed ? !check_page(base, p, seed) : !all_zero(base + p * PG, PG))
		FAIL("%s: page %zu should hold %s %llu, word0 %#llx", what, p,
		     seed ? "seed" : "zeros", (unsigned long long)seed,
		     (unsigned long long)((const uint64_t *)(base + p * PG))[0]);
}

/* Check @base (n pages) against @img; @present_only skips live holes. */
static void check_img(const uint8_t *base, size_t n,
		      const struct rst_img *img, int present_only,
		      const char *what)
{
	size_t p;

	for (p = 0; p < n; p++) {
		if (present_only && !img->ident[p])
			continue;
		check_one(base, p, img->seed[p], what);
	}
}

/* Read region pages through pread() on @fd and check against @img. */
static void check_pread(int fd, size_t n, const struct rst_img *img,
			const char *what)
{
	uint8_t *buf = xcalloc(1, PG);
	size_t p;

	for (p = 0; p < n; p++) {
		ASSERT_EQ(pread(fd, buf, PG, p * PG), (long long)PG);
		if (img->seed[p] ? !check_page(buf - p * PG, p, img->seed[p])
				 : !all_zero(buf, PG))
			FAIL("%s (pread): page %zu should hold %s %llu", what,
			     p, img->seed[p] ? "seed" : "zeros",
			     (unsigned long long)img->seed[p]);
	}
	free(buf);
}

/*
 * Live view without allocating: every page through pread(), the present
 * ones through the mapping as well.
 */
static void m_check_live(struct rst_model *m, const char *what)
{
	check_pread(m->fd, m->n, &m->live, what);
	check_img(m->map, m->n, &m->live, 1, what);
}

/* Every page through the mapping, holes included (may fill holes). */
static void m_check_live_map(struct rst_model *m, const char *what)
{
	check_img(m->map, m->n, &m->live, 0, what);
}

/* Snapshot @id through a snapshot fd: mmap and pread. */
static void m_check_snap(struct rst_model *m, uint64_t id)
{
	struct rst_img *s = m_img(m, id);
	int sfd = cs_snap_open(m->fd, id);
	uint8_t *p;

	ASSERT_GE(sfd, 0);
	p = mmap(NULL, m->n * PG, PROT_READ, MAP_SHARED, sfd, 0);
	ASSERT_TRUE(p != MAP_FAILED);
	check_img(p, m->n, s, 0, "snapshot");
	check_pread(sfd, m->n, s, "snapshot");
	munmap(p, m->n * PG);
	close(sfd);
}

static void m_check_all_snaps(struct rst_model *m)
{
	int i;

	for (i = 0; i < m->nsnap; i++)
		if (!m->snap[i].deleted)
			m_check_snap(m, m->snap[i].id);
}

/* ---------------------------------------------------------------------- */
/* Fixture: one region named after the test, plus extra names to destroy  */

FIXTURE(rst) {
	char name[COWSNAP_NAME_MAX];
	char extra[4][COWSNAP_NAME_MAX];
	int nextra;
	int fd;
	uint8_t *map;
	size_t n;
	struct rst_model m;
};

FIXTURE_SETUP(rst)
{
	memset(self, 0, sizeof(*self));
	snprintf(self->name, sizeof(self->name), "%.52s", th_cur);
	self->fd = -1;
}

FIXTURE_TEARDOWN(rst)
{
	int i;

	if (self->map)
		munmap(self->map, self->n * PG);
	if (self->fd >= 0)
		close(self->fd);
	cs_destroy_quiet(self->name);
	for (i = 0; i < self->nextra; i++)
		cs_destroy_quiet(self->extra[i]);
}

/* Create the test's region of @n pages, map it, start its model. */
static struct rst_model *rst_open(struct th_fx_rst *self, size_t n)
{
	self->fd = cs_region(self->name, n * PG);
	ASSERT_GE(self->fd, 0);
	self->n = n;
	self->map = cs_map(self->fd, n * PG);
	ASSERT_TRUE(self->map != NULL);
	m_init(&self->m, self->fd, self->map, n);
	return &self->m;
}

/* A second name for this test ("<name>-<suffix>"), destroyed at the end. */
static const char *rst_extra(struct th_fx_rst *self, const char *suffix)
{
	char *e = self->extra[self->nextra++];
	char buf[COWSNAP_NAME_MAX];

	snprintf(buf, sizeof(buf), "%.52s-%.8s", self->name, suffix);
	memcpy(e, buf, sizeof(buf));
	cs_destroy_quiet(e);
	return e;
}

/* Destroy region @name from a fresh handle; 0 or -1/errno. */
static int cs_destroy_quiet_checked(const char *name)
{
	int fd = cs_open(), ret;

	if (fd < 0)
		return -1;
	ret = cs_destroy(fd, name);
	close(fd);
	return ret;
}

/* Attach a new handle to region @name and map @n pages of it. */
static int rst_attach_map(const char *name, size_t n, uint8_t **map)
{
	int fd = cs_open();

	ASSERT_GE(fd, 0);
	ASSERT_EQ(cs_attach(fd, name), 0);
	*map = cs_map(fd, n * PG);
	ASSERT_TRUE(*map != NULL);
	return fd;
}

/* ---------------------------------------------------------------------- */
/* Restore                                                                */

TEST_F(rst, restore_newest_returns_every_page)
{
	struct rst_model *m = rst_open(self, 64);
	long long r0 = proc_counter("restores");
	long long pr0 = proc_counter("pages_restored");
	uint64_t id;
	size_t p;

	/* Even pages and the last one present; odd pages holes. */
	for (p = 0; p < 64; p += 2)
		m_write(m, p, 11);
	m_write(m, 63, 11);
	id = m_snap(m);
	ASSERT_EQ(id, 1);

	/* 16 dirty pages: 8 present in the snapshot, 8 holes in it. */
	for (p = 0; p < 8; p++) {
		m_write(m, 4 * p, 22);
		m_write(m, 4 * p + 1, 22);
	}
	ASSERT_EQ(m_differs(m, id), 16);
	m_check_live(m, "before restore");

	ASSERT_EQ(m_restore(m, id, 1), 16);
	ASSERT_EQ(proc_counter("restores"), r0 + 1);
	ASSERT_EQ(proc_counter("pages_restored"), pr0 + 16);
	m_check_live(m, "after restore");

	/* Nothing written since: a repeat restores nothing. */
	ASSERT_EQ(m_restore(m, id, 1), 0);

	/* Again 16 dirty pages, other seed: restore repeats. */
	for (p = 0; p < 8; p++) {
		m_write(m, 4 * p + 2, 33);
		m_write(m, 4 * p + 3, 33);
	}
	ASSERT_EQ(m_restore(m, id, 1), 16);
	ASSERT_EQ(proc_counter("restores"), r0 + 3);
	ASSERT_EQ(proc_counter("pages_restored"), pr0 + 32);
	m_check_live(m, "after second restore");

	/* Every page through the mapping: former holes read as zeros. */
	m_check_live_map(m, "mapping after restore");
	m_check_snap(m, id);
}

TEST_F(rst, restore_counts_each_page_once)
{
	struct rst_model *m = rst_open(self, 16);
	uint64_t id;
	size_t p;

	for (p = 0; p < 16; p++)
		m_write(m, p, 1);
	id = m_snap(m);
	/* Page 5 written three times, page 9 twice, page 0 once. */
	m_write(m, 5, 2);
	m_write(m, 5, 3);
	m_write(m, 5, 4);
	m_write(m, 9, 2);
	m_write(m, 9, 5);
	m_write(m, 0, 2);
	ASSERT_EQ(m_restore(m, id, 1), 3);
	m_check_live_map(m, "after restore");
	ASSERT_EQ(m_restore(m, id, 1), 0);
}

TEST_F(rst, restore_older_keeps_every_snapshot)
{
	struct rst_model *m = rst_open(self, 96);
	struct cowsnap_info info;
	uint64_t s1, s2, s3, s4;
	size_t p;

	/* snap 1: pages 0..31 present, 32..95 holes. */
	for (p = 0; p < 32; p++)
		m_write(m, p, 101);
	s1 = m_snap(m);
	/* snap 2: 16..47 rewritten / filled. */
	for (p = 16; p < 48; p++)
		m_write(m, p, 102);
	s2 = m_snap(m);
	/* Back to 1: pages 32..47 become holes again. */
	ASSERT_EQ(m_restore(m, s1, 1), 32);
	m_check_live(m, "restored 1");
	/* snap 3: 40..55 written; 32..39 present in snap 2, absent in 3. */
	for (p = 40; p < 56; p++)
		m_write(m, p, 103);
	m_write(m, 0, 103);
	s3 = m_snap(m);
	ASSERT_EQ(s3, 3);
	/* Live after the newest: dirty present pages and former holes. */
	for (p = 0; p < 96; p += 5)
		m_write(m, p, 104);
	ASSERT_EQ(cs_info(m->fd, &info), 0);
	ASSERT_EQ(info.nr_snapshots, 3);
	ASSERT_EQ(info.newest_snapshot, 3);

	/* Newest: only the pages written since. */
	ASSERT_EQ(m_restore(m, s3, 1), 20);
	m_check_live(m, "restored 3");

	/* Older one: 0 and 40..55 differ from snap 1. */
	ASSERT_EQ(m_restore(m, s1, 1), 17);
	m_check_live(m, "restored 1 again");
	ASSERT_EQ(cs_info(m->fd, &info), 0);
	ASSERT_EQ(info.nr_snapshots, 3);
	ASSERT_EQ(info.newest_snapshot, 3);

	/* Snap 2 from 1: 16..47 differ. */
	ASSERT_EQ(m_restore(m, s2, 1), 32);
	m_check_live(m, "restored 2");
	for (p = 32; p < 48; p++)
		ASSERT_NE(m->live.ident[p], 0);

	/*
	 * Newer snap 3 after an older one: pages 0 and 16..55 differ from
	 * snap 2; 32..39 become holes again.
	 */
	ASSERT_EQ(m_differs(m, s3), 41);
	ASSERT_EQ(m_restore(m, s3, 1), 41);
	ASSERT_EQ(m->live.ident[32], 0);
	m_check_live(m, "restored 3 again");
	m_check_live_map(m, "mapping restored 3");
	m_restore(m, s3, 0);	/* resync the holes the mapping read */

	/* And snap 2 once more, every page through the mapping. */
	m_restore(m, s2, 1);
	m_check_live(m, "restored 2 again");
	m_check_live_map(m, "mapping restored 2");

	/* Every snapshot intact; ids continue after the newest. */
	m_check_all_snaps(m);
	s4 = m_snap(m);
	ASSERT_EQ(s4, 4);
	ASSERT_EQ(cs_info(m->fd, &info), 0);
	ASSERT_EQ(info.nr_snapshots, 4);
}

/* Two processes: the helper runs ops on the region on the parent's request. */
enum { OP_VERIFY = 1, OP_WRITE, OP_EXIT };
#define RST_PROC_PAGES 32

struct rst_msg {
	uint32_t op;
	uint32_t page;
	uint64_t seed;
	uint64_t seeds[RST_PROC_PAGES];
};

static void __attribute__((noreturn))
rst_child(int rfd, int wfd, const char *name, uint8_t *map)
{
	struct rst_msg msg;
	int32_t res = 0;
	size_t p;

	th_teardown = NULL;	/* the parent cleans up */
	if (!map) {
		int fd = cs_open();

		if (fd < 0 || cs_attach(fd, name))
			_exit(2);
		map = cs_map(fd, RST_PROC_PAGES * PG);
		if (!map)
			_exit(3);
	}
	if (write_full(wfd, &res, sizeof(res)))
		_exit(4);
	for (;;) {
		if (read_full(rfd, &msg, sizeof(msg)))
			_exit(5);
		res = 0;
		switch (msg.op) {
		case OP_VERIFY:
			for (p = 0; p < RST_PROC_PAGES && !res; p++)
				if (msg.seeds[p] ?
				    !check_page(map, p, msg.seeds[p]) :
				    !all_zero(map + p * PG, PG))
					res = p + 1;
			break;
		case OP_WRITE:
			fill_page(map, msg.page, msg.seed);
			break;
		default:
			_exit(0);
		}
		if (write_full(wfd, &res, sizeof(res)))
			_exit(6);
	}
}

struct rst_peer {
	pid_t pid;
	int wfd, rfd;
};

static void peer_ask(struct rst_peer *pr, struct rst_msg *msg, const char *what)
{
	int32_t res;

	ASSERT_EQ(write_full(pr->wfd, msg, sizeof(*msg)), 0);
	if (read_full(pr->rfd, &res, sizeof(res)))
		FAIL("%s: helper process died", what);
	if (res)
		FAIL("%s: helper process sees page %d wrong", what, res - 1);
}

static void peer_verify(struct rst_peer *pr, struct rst_model *m,
			const char *what)
{
	struct rst_msg msg = { .op = OP_VERIFY };

	memcpy(msg.seeds, m->live.seed, sizeof(msg.seeds));
	peer_ask(pr, &msg, what);
}

static void rst_two_processes(struct th_fx_rst *self, int attach)
{
	struct rst_model *m = rst_open(self, RST_PROC_PAGES);
	struct rst_peer pr;
	struct rst_msg msg;
	int p2c[2], c2p[2], status, r;
	int32_t res;
	uint64_t id;
	size_t p;

	for (p = 0; p < 24; p++)
		m_write(m, p, 1);
	id = m_snap(m);

	ASSERT_EQ(pipe(p2c), 0);
	ASSERT_EQ(pipe(c2p), 0);
	pr.pid = fork();
	ASSERT_GE(pr.pid, 0);
	if (!pr.pid) {
		close(p2c[1]);
		close(c2p[0]);
		if (attach)
			munmap(m->map, RST_PROC_PAGES * PG);
		rst_child(p2c[0], c2p[1], self->name, attach ? NULL : m->map);
	}
	close(p2c[0]);
	close(c2p[1]);
	pr.wfd = p2c[1];
	pr.rfd = c2p[0];
	ASSERT_EQ(read_full(pr.rfd, &res, sizeof(res)), 0);
	ASSERT_EQ(res, 0);
	peer_verify(&pr, m, "initial");

	for (r = 0; r < 3; r++) {
		/* Parent writes (some holes of the snapshot), helper sees. */
		m_write(m, r, 10 + r);
		m_write(m, 5 + r, 10 + r);
		m_write(m, 24 + r, 10 + r);
		m_write(m, 30, 10 + r);
		/* Helper writes, parent sees. */
		msg = (struct rst_msg){ .op = OP_WRITE, .page = 12 + r,
					.seed = 40 + r };
		peer_ask(&pr, &msg, "helper write");
		m_note_store(m, 12 + r);
		m->live.seed[12 + r] = 40 + r;
		check_img(m->map, m->n, &m->live, 0, "parent sees helper");
		/* Helper maps every page before the restore. */
		peer_verify(&pr, m, "helper sees parent");

		m_restore(m, id, 0);
		/* Right after the ioctl, without remapping. */
		peer_verify(&pr, m, "helper after restore");
		check_img(m->map, m->n, &m->live, 0, "parent after restore");
	}

	msg = (struct rst_msg){ .op = OP_EXIT };
	ASSERT_EQ(write_full(pr.wfd, &msg, sizeof(msg)), 0);
	ASSERT_EQ(waitpid(pr.pid, &status, 0), pr.pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	close(pr.wfd);
	close(pr.rfd);
	m_check_snap(m, id);
}

TEST_F(rst, restore_seen_by_process_attached_by_name)
{
	rst_two_processes(self, 1);
}

TEST_F(rst, restore_seen_through_inherited_mapping)
{
	rst_two_processes(self, 0);
}

/*
 * Writer threads store a tagged counter to word 0 of their own pages while
 * the main thread restores; a reader thread checks every page throughout.
 */
#define RACE_THREADS	3
#define RACE_PER	16
#define RACE_PAGES	(RACE_THREADS * RACE_PER)
#define RACE_TAG	(1ULL << 63)
#define RACE_CMASK	((1ULL << 48) - 1)

static struct {
	volatile uint64_t *base;
	uint64_t seed;
	int stop;
	uint64_t done[RACE_THREADS];	/* last value stored, per writer */
	int bad;
	size_t bad_page, bad_word;
	uint64_t bad_val;
	uint64_t scans;
} race;

static void *race_writer(void *arg)
{
	uint64_t t = (uintptr_t)arg, c = 0;

	while (!__atomic_load_n(&race.stop, __ATOMIC_RELAXED)) {
		size_t p;

		c++;
		p = t * RACE_PER + c % RACE_PER;
		__atomic_store_n(&race.base[p * (PG / 8)],
				 RACE_TAG | t << 48 | c, __ATOMIC_RELAXED);
		__atomic_store_n(&race.done[t], c, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Word 0 of page @p: the snapshot's, or its writer's value in (@after, @upto]. */
static int race_word0_ok(size_t p, uint64_t v, uint64_t after, uint64_t upto)
{
	uint64_t t = p / RACE_PER, c = v & RACE_CMASK;

	if (v == pat(p, 0, race.seed))
		return 1;
	return (v & ~RACE_CMASK) == (RACE_TAG | t << 48) &&
	       c % RACE_PER == p % RACE_PER && c > after && c <= upto;
}

static void *race_reader(void *arg)
{
	while (!__atomic_load_n(&race.stop, __ATOMIC_RELAXED)) {
		size_t p, k;

		for (p = 0; p < RACE_PAGES; p++) {
			volatile uint64_t *w = race.base + p * (PG / 8);
			uint64_t v = w[0];

			if (!race_word0_ok(p, v, 0, RACE_CMASK)) {
				k = 0;
				goto bad;
			}
			for (k = 1; k < PG / 8; k++) {
				v = w[k];
				if (v != pat(p, k, race.seed))
					goto bad;
			}
			continue;
bad:
			race.bad_page = p;
			race.bad_word = k;
			race.bad_val = v;
			__atomic_store_n(&race.bad, 1, __ATOMIC_RELEASE);
			return NULL;
		}
		__atomic_add_fetch(&race.scans, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/*
 * Wait until every writer stored RACE_PER more values than @last and the
 * reader finished a scan after @scans, so each restore meets dirty pages
 * and a reader at work.  0 if @deadline passed first.
 */
static int race_wait_progress(const uint64_t *last, uint64_t scans,
			      double deadline)
{
	for (;;) {
		int ok = __atomic_load_n(&race.scans, __ATOMIC_ACQUIRE) > scans;
		int t;

		for (t = 0; t < RACE_THREADS; t++)
			ok &= __atomic_load_n(&race.done[t], __ATOMIC_ACQUIRE) >=
			      last[t] + RACE_PER;
		if (ok)
			return 1;
		if (__atomic_load_n(&race.bad, __ATOMIC_ACQUIRE) ||
		    th_now() > deadline)
			return 0;
		sched_yield();
	}
}

TEST_F(rst, restore_racing_writers_never_tears)
{
	struct rst_model *m = rst_open(self, RACE_PAGES);
	uint64_t last[RACE_THREADS], final[RACE_THREADS];
	pthread_t wr[RACE_THREADS], rd;
	long long n, total = 0, dirty = 0;
	int rounds = 0, err = 0, t;
	uint64_t scans;
	double t0;
	uint64_t id;
	size_t p, k;

	/* A seed whose word 0 can never carry the writers' tag bit. */
	for (race.seed = 101; (race.seed * GOLDEN) >> 62; race.seed++)
		;
	race.base = (volatile uint64_t *)m->map;
	for (p = 0; p < RACE_PAGES; p++)
		m_write(m, p, race.seed);
	id = m_snap(m);

	for (t = 0; t < RACE_THREADS; t++)
		ASSERT_EQ(pthread_create(&wr[t], NULL, race_writer,
					 (void *)(uintptr_t)t), 0);
	ASSERT_EQ(pthread_create(&rd, NULL, race_reader, NULL), 0);
	t0 = th_now();
	memset(last, 0, sizeof(last));
	scans = 0;
	while (rounds < 200 && race_wait_progress(last, scans, t0 + 12)) {
		scans = __atomic_load_n(&race.scans, __ATOMIC_ACQUIRE);
		for (t = 0; t < RACE_THREADS; t++)
			last[t] = __atomic_load_n(&race.done[t],
						  __ATOMIC_ACQUIRE);
		n = cs_restore(m->fd, id, 0);
		if (n < 0) {
			err = errno;
			break;
		}
		total += n;
		rounds++;
		if (__atomic_load_n(&race.bad, __ATOMIC_ACQUIRE))
			break;
	}
	__atomic_store_n(&race.stop, 1, __ATOMIC_RELAXED);
	for (t = 0; t < RACE_THREADS; t++)
		pthread_join(wr[t], NULL);
	pthread_join(rd, NULL);
	ASSERT_EQ(err, 0);
	if (race.bad)
		FAIL("reader saw page %zu word %zu = %#llx during restores",
		     race.bad_page, race.bad_word,
		     (unsigned long long)race.bad_val);

	for (t = 0; t < RACE_THREADS; t++) {
		final[t] = race.done[t];
		ASSERT_GT(final[t], RACE_PER);	/* writers made progress */
	}
	/*
	 * Enough restores met busy writers and reader to mean something
	 * (a loaded TCG host may manage only a few dozen in the time).
	 */
	ASSERT_GE(rounds, 20);
	ASSERT_GE(total, rounds);
	ASSERT_GE(race.scans, rounds);
	for (p = 0; p < RACE_PAGES; p++) {
		uint64_t v = race.base[p * (PG / 8)];

		t = p / RACE_PER;
		if (!race_word0_ok(p, v, last[t], final[t]))
			FAIL("page %zu word 0 = %#llx: neither restored nor "
			     "written after the last restore (>%llu, <=%llu)",
			     p, (unsigned long long)v,
			     (unsigned long long)last[t],
			     (unsigned long long)final[t]);
		for (k = 1; k < PG / 8; k++)
			if (race.base[p * (PG / 8) + k] != pat(p, k, race.seed))
				FAIL("page %zu word %zu torn", p, k);
		dirty += v != pat(p, 0, race.seed);
	}
	/* Writers stopped: a restore gives exactly the snapshot back. */
	ASSERT_EQ(cs_restore(m->fd, id, 0), dirty);
	for (p = 0; p < RACE_PAGES; p++)
		check_one(m->map, p, race.seed, "after last restore");
	m_check_snap(m, id);
	fprintf(stderr, "rst_restore_racing_writers_never_tears: %d restores "
		"in %.1f s, %lld pages restored, %llu reader scans\n", rounds,
		th_now() - t0, total, (unsigned long long)race.scans);
}

TEST_F(rst, restore_10000_rounds_leaks_nothing)
{
	const size_t n = 64;
	const int rounds = 10000;
	long long pa0, meta0, rec0, mf0, mf1, got;
	struct rst_model *m;
	double t0, dt;
	uint64_t id;
	size_t p;
	int r, k;

	/* Warm up slab caches and per-CPU lists with one small cycle. */
	m = rst_open(self, n);
	for (p = 0; p < n; p++)
		m_write(m, p, 1);
	id = m_snap(m);
	for (r = 0; r < 50; r++) {
		m_write(m, r % n, 2);
		ASSERT_EQ(cs_restore(m->fd, id, 0), 1);
	}
	munmap(self->map, n * PG);
	self->map = NULL;
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(cs_destroy_quiet_checked(self->name), 0);

	pa0 = proc_counter("pages_allocated");
	meta0 = proc_counter("meta_bytes");
	rec0 = proc_counter("records");
	mf0 = mem_free_kb();
	ASSERT_GE(pa0, 0);
	ASSERT_GT(mf0, 0);

	m = rst_open(self, n);
	for (p = 0; p < n; p += 2)	/* odd pages stay holes */
		m_write(m, p, 1);
	id = m_snap(m);
	ASSERT_EQ(proc_counter("pages_allocated"), pa0 + (long long)n / 2);
	t0 = th_now();
	for (r = 0; r < rounds; r++) {
		for (k = 0; k < 4; k++)
			fill_page(m->map, (r * 5 + k * 16) % n, 2 + r);
		got = cs_restore(m->fd, id, 0);
		if (got != 4)
			FAIL("round %d: pages_restored %lld, want 4", r, got);
	}
	dt = th_now() - t0;
	fprintf(stderr, "rst_restore_10000_rounds_leaks_nothing: %d rounds "
		"in %.1f s\n", rounds, dt);
	ASSERT_EQ(proc_counter("pages_allocated"), pa0 + (long long)n / 2);
	m_check_live(m, "after rounds");
	m_check_live_map(m, "mapping after rounds");
	m_check_snap(m, id);

	munmap(self->map, n * PG);
	self->map = NULL;
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(cs_destroy_quiet_checked(self->name), 0);
	ASSERT_EQ(proc_counter("pages_allocated"), pa0);
	ASSERT_EQ(proc_counter("meta_bytes"), meta0);
	ASSERT_EQ(proc_counter("records"), rec0);
	mf1 = mem_free_kb();
	/*
	 * Only a drop is a leak.  KASAN's quarantine keeps freed records
	 * for a while, so there the module's own counters above and the
	 * kmemleak scans at the end of the run judge.
	 */
	if (!kernel_is_debug() && mf1 < mf0 - 2048)
		FAIL("MemFree %lld kB before, %lld kB after", mf0, mf1);
}

TEST_F(rst, restore_expect_newest_mismatch_is_exdev)
{
	struct rst_model *m = rst_open(self, 16);
	long long r0;
	uint64_t s1, s2;
	size_t p;

	for (p = 0; p < 16; p++)
		m_write(m, p, 1);
	s1 = m_snap(m);
	for (p = 0; p < 4; p++)
		m_write(m, p, 2);
	s2 = m_snap(m);
	for (p = 4; p < 8; p++)
		m_write(m, p, 3);

	r0 = proc_counter("restores");
	ASSERT_ERRNO(cs_restore(m->fd, s1, s1), EXDEV);
	ASSERT_ERRNO(cs_restore(m->fd, s2, s1), EXDEV);
	ASSERT_ERRNO(cs_restore(m->fd, s1, s2 + 1), EXDEV);
	ASSERT_ERRNO(cs_restore(m->fd, s1, 99), EXDEV);
	ASSERT_EQ(proc_counter("restores"), r0);
	m_check_live(m, "after EXDEV");

	/* The right newest id: restores (pages 0..7 differ from snap 1). */
	{
		struct cowsnap_restore a = { .id = s1, .expect_newest = s2 };

		ASSERT_EQ(restore_raw(m->fd, &a), 0);
		ASSERT_EQ(a.pages_restored, 8);
		img_copy(&m->live, m_img(m, s1), m->n);
	}
	m_check_live(m, "after restore");

	/* The newest changes when it is deleted. */
	m_delete(m, s2);
	m_write(m, 3, 4);
	ASSERT_ERRNO(cs_restore(m->fd, s1, s2), EXDEV);
	m_check_live(m, "after EXDEV 2");
	ASSERT_EQ(cs_restore(m->fd, s1, s1), 1);
	img_copy(&m->live, m_img(m, s1), m->n);
	m_check_live(m, "after restore 2");
	m_check_live_map(m, "mapping");
}

/* ---------------------------------------------------------------------- */
/* Diff                                                                   */

/* Expected extents of diff(@from, @to) from page @start on, from the model. */
static size_t m_diff_model(struct rst_model *m, uint64_t from, uint64_t to,
			   uint64_t start, struct cowsnap_extent *out)
{
	struct rst_img *a = m_img(m, from), *b = m_img(m, to);
	size_t n = 0, p;

	for (p = start; p < m->n; p++) {
		if (a->ident[p] == b->ident[p])
			continue;
		if (n && out[n - 1].start + out[n - 1].count == p) {
			out[n - 1].count++;
		} else {
			out[n].start = p;
			out[n].count = 1;
			n++;
		}
	}
	return n;
}

/*
 * Walk diff(@from, @to) from @start with a buffer of @cap extents, using
 * next as the next start until it is 0.  Checks the resumption protocol;
 * returns the extents gathered in @out (room for @outcap).
 */
static size_t diff_walk(int fd, size_t npages, uint64_t from, uint64_t to,
			uint64_t start, uint32_t cap, struct cowsnap_extent *out,
			size_t outcap)
{
	struct cowsnap_extent *buf = xcalloc(cap + 1, sizeof(*buf));
	size_t n = 0, calls = 0, i;

	for (;;) {
		struct cowsnap_diff d = {
			.from = from, .to = to, .start = start,
			.extents = (uintptr_t)buf, .count = cap,
		};

		buf[cap].start = 0xdead;	/* never written */
		ASSERT_EQ(ioctl(fd, COWSNAP_IOC_DIFF, &d), 0);
		ASSERT_LE(d.count, cap);
		ASSERT_EQ(buf[cap].start, 0xdead);
		if (d.next)
			ASSERT_GE(d.count, 1);
		for (i = 0; i < d.count; i++) {
			ASSERT_GE(buf[i].start, start);
			ASSERT_GE(buf[i].count, 1);
			ASSERT_LE(buf[i].start + buf[i].count, npages);
			if (n == outcap)
				FAIL("diff: more than %zu extents", outcap);
			out[n++] = buf[i];
		}
		if (!d.next)
			break;
		/* Resume past the last extent, never adjacent to it. */
		ASSERT_GT(d.next, buf[d.count - 1].start +
				  buf[d.count - 1].count);
		ASSERT_LT(d.next, npages);
		start = d.next;
		if (++calls > npages + 2)
			FAIL("diff: resumption does not end");
	}
	/* Ascending and maximal over the whole walk. */
	for (i = 1; i < n; i++)
		if (out[i].start <= out[i - 1].start + out[i - 1].count)
			FAIL("diff %llu/%llu cap %u: extent %zu (%llu+%llu) "
			     "not after %llu+%llu with a gap",
			     (unsigned long long)from, (unsigned long long)to,
			     cap, i, (unsigned long long)out[i].start,
			     (unsigned long long)out[i].count,
			     (unsigned long long)out[i - 1].start,
			     (unsigned long long)out[i - 1].count);
	free(buf);
	return n;
}

/* diff(@from, @to) from @start with buffer @cap equals the model. */
static void m_expect_diff(struct rst_model *m, uint64_t from, uint64_t to,
			  uint64_t start, uint32_t cap)
{
	size_t room = m->n / 2 + 2, nw, ng, i;
	struct cowsnap_extent *want = xcalloc(room, sizeof(*want));
	struct cowsnap_extent *got = xcalloc(room, sizeof(*got));

	nw = m_diff_model(m, from, to, start, want);
	ng = diff_walk(m->fd, m->n, from, to, start, cap, got, room);
	for (i = 0; i < nw || i < ng; i++) {
		if (i < nw && i < ng && want[i].start == got[i].start &&
		    want[i].count == got[i].count)
			continue;
		FAIL("diff from %llu to %llu start %llu cap %u: extent %zu is "
		     "%llu+%llu, want %llu+%llu (%zu vs %zu extents)",
		     (unsigned long long)from, (unsigned long long)to,
		     (unsigned long long)start, cap, i,
		     i < ng ? (unsigned long long)got[i].start : 0ULL,
		     i < ng ? (unsigned long long)got[i].count : 0ULL,
		     i < nw ? (unsigned long long)want[i].start : 0ULL,
		     i < nw ? (unsigned long long)want[i].count : 0ULL,
		     ng, nw);
	}
	free(want);
	free(got);
}

static void rand_writes(struct rst_model *m, uint64_t seed, int runs,
			size_t maxrun, int singles)
{
	size_t len, s, p;
	int i;

	for (i = 0; i < runs; i++) {
		len = 1 + rng_below(maxrun);
		s = rng_below(m->n - len + 1);
		for (p = s; p < s + len; p++)
			m_write(m, p, seed);
	}
	for (i = 0; i < singles; i++)
		m_write(m, rng_below(m->n), seed);
}

TEST_F(rst, diff_matches_written_page_model)
{
	static const uint32_t caps[] = { 4096, 1, 2, 7 };
	struct rst_model *m = rst_open(self, 1024);
	uint64_t ids[3], s1, s2, starts[8];
	size_t p, nw;
	unsigned int a, b, c, i;
	struct cowsnap_extent *ext;

	rng_state = 0x636f77736e6170ULL;	/* fixed: reproducible sets */
	rand_writes(m, 1, 10, 48, 30);
	m_write(m, 0, 1);
	m_write(m, m->n - 1, 1);
	s1 = m_snap(m);
	ASSERT_EQ(m_differs(m, s1), 0);

	rand_writes(m, 2, 8, 64, 25);
	m_write(m, m->n - 1, 2);
	for (i = 0; i < 5; i++)
		m_rewrite_same(m, rng_below(m->n));
	s2 = m_snap(m);

	rand_writes(m, 3, 6, 100, 20);
	for (p = 300; p < 500; p++)	/* one extent of 200 pages */
		m_write(m, p, 3);
	m_write(m, 0, 3);
	m_write(m, m->n - 1, 3);
	m_write(m, m->n - 1, 4);	/* twice: still one change */
	for (i = 0; i < 5; i++)
		m_rewrite_same(m, rng_below(m->n));

	ids[0] = 0;
	ids[1] = s1;
	ids[2] = s2;
	for (a = 0; a < 3; a++)
		for (b = 0; b < 3; b++)
			for (c = 0; c < sizeof(caps) / sizeof(caps[0]); c++)
				m_expect_diff(m, ids[a], ids[b], 0, caps[c]);

	/* The model has what the test needs: many extents, both ends. */
	ext = xcalloc(m->n, sizeof(*ext));
	nw = m_diff_model(m, s1, 0, 0, ext);
	ASSERT_GT(nw, 10);
	ASSERT_EQ(ext[0].start, 0);
	ASSERT_EQ(ext[nw - 1].start + ext[nw - 1].count, m->n);
	for (i = 0; i < nw && ext[i].count < 200; i++)
		;
	ASSERT_LT(i, nw);
	ASSERT_EQ(m_diff_model(m, s1, s1, 0, ext), 0);

	/* Starting inside an extent clips it; past the end, nothing. */
	nw = m_diff_model(m, s2, 0, 0, ext);
	ASSERT_GT(nw, 3);
	starts[0] = 1;
	starts[1] = 400;			/* inside 300..499 */
	starts[2] = ext[nw / 2].start + ext[nw / 2].count - 1;
	starts[3] = ext[nw / 2].start + ext[nw / 2].count;
	starts[4] = m->n - 1;
	starts[5] = m->n;
	starts[6] = m->n + 5;
	starts[7] = ~0ULL;
	free(ext);
	for (i = 0; i < 8; i++) {
		if (starts[i] >= m->n) {
			struct cowsnap_extent e = { 7, 7 };
			struct cowsnap_diff d = {
				.from = s2, .start = starts[i],
				.extents = (uintptr_t)&e, .count = 1,
			};

			ASSERT_EQ(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), 0);
			ASSERT_EQ(d.count, 0);
			ASSERT_EQ(d.next, 0);
			continue;
		}
		m_expect_diff(m, s2, 0, starts[i], 4096);
		m_expect_diff(m, 0, s1, starts[i], 1);
	}

	/* Diff changed nothing. */
	m_check_live(m, "after diffs");
	m_check_all_snaps(m);
	ASSERT_GT(m_restore(m, s2, 1), 0);
}

TEST_F(rst, diff_counts_rewrite_with_same_bytes)
{
	struct rst_model *m = rst_open(self, 8);
	struct cowsnap_extent e[4];
	struct cowsnap_diff d;
	uint64_t id;
	size_t p;

	for (p = 0; p < 6; p++)		/* 6 and 7 are holes */
		m_write(m, p, 1);
	id = m_snap(m);
	m_rewrite_same(m, 3);
	m_rewrite_same(m, 5);
	m_rewrite_same(m, 5);
	memset(m->map + 7 * PG, 0, PG);	/* zeros over a hole */
	m_note_store(m, 7);
	check_one(m->map, 3, 1, "rewritten");
	check_one(m->map, 5, 1, "rewritten");

	d = (struct cowsnap_diff){ .from = id, .to = 0,
				   .extents = (uintptr_t)e, .count = 4 };
	ASSERT_EQ(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), 0);
	ASSERT_EQ(d.count, 3);
	ASSERT_EQ(d.next, 0);
	ASSERT_EQ(e[0].start, 3);
	ASSERT_EQ(e[0].count, 1);
	ASSERT_EQ(e[1].start, 5);
	ASSERT_EQ(e[1].count, 1);
	ASSERT_EQ(e[2].start, 7);
	ASSERT_EQ(e[2].count, 1);
	m_expect_diff(m, 0, id, 0, 1);

	/* Identity, not content: restore replaces them all. */
	ASSERT_EQ(m_restore(m, id, 1), 3);
	m_check_live(m, "after restore");
	d = (struct cowsnap_diff){ .from = id, .to = 0,
				   .extents = (uintptr_t)e, .count = 4 };
	ASSERT_EQ(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), 0);
	ASSERT_EQ(d.count, 0);
	ASSERT_EQ(d.next, 0);
}

TEST_F(rst, diff_resumes_past_kernel_batch)
{
	const size_t n = 4100;
	struct rst_model *m = rst_open(self, n);
	uint64_t id;
	size_t p;

	id = m_snap(m);		/* empty */
	for (p = 0; p < n; p += 2)
		m_write(m, p, 5);
	m_write(m, n - 1, 5);	/* the last two pages merge */
	/* 2050 extents: more than any single call returns. */
	m_expect_diff(m, id, 0, 0, 4096);
	m_expect_diff(m, 0, id, 0, 1024);
	m_expect_diff(m, id, 0, 0, 1);
	{
		struct cowsnap_extent *e = xcalloc(4096, sizeof(*e));
		struct cowsnap_diff d = { .from = id, .extents = (uintptr_t)e,
					  .count = 4096 };

		ASSERT_EQ(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), 0);
		ASSERT_GE(d.count, 1);
		ASSERT_NE(d.next, 0);
		ASSERT_EQ(d.next, 2 * d.count);
		free(e);
	}
}

TEST_F(rst, ioctl_args_inside_own_mapping)
{
	struct rst_model *m = rst_open(self, 16);
	struct cowsnap_extent *e;
	struct cowsnap_diff *d;
	struct cowsnap_restore *ra;
	uint64_t id;
	size_t p;

	for (p = 0; p < 8; p++)
		m_write(m, p, 1);
	id = m_snap(m);
	m_write(m, 2, 2);

	/* Diff struct in page 12, extents in page 13: both holes. */
	d = (struct cowsnap_diff *)(m->map + 12 * PG);
	e = (struct cowsnap_extent *)(m->map + 13 * PG);
	memset(d, 0, sizeof(*d));
	d->from = id;
	d->extents = (uintptr_t)e;
	d->count = 8;
	ASSERT_EQ(ioctl(m->fd, COWSNAP_IOC_DIFF, d), 0);
	ASSERT_EQ(d->count, 2);
	ASSERT_EQ(d->next, 0);
	ASSERT_EQ(e[0].start, 2);
	ASSERT_EQ(e[0].count, 1);
	ASSERT_EQ(e[1].start, 12);
	ASSERT_EQ(e[1].count, 1);

	/* Restore struct in page 14 (a hole): 2, 12, 13, 14 are restored. */
	ra = (struct cowsnap_restore *)(m->map + 14 * PG);
	memset(ra, 0, sizeof(*ra));
	ra->id = id;
	ASSERT_EQ(ioctl(m->fd, COWSNAP_IOC_RESTORE, ra), 0);
	ASSERT_EQ(ra->pages_restored, 4);
	ASSERT_EQ(ra->id, id);
	for (p = 0; p < 16; p++)
		if (p != 14)
			check_one(m->map, p, p < 8 ? 1 : 0, "after restore");
}

/* ---------------------------------------------------------------------- */
/* Clone                                                                  */

/* Model of a clone of @m's snapshot @id, attached through @fd at @map. */
static void m_clone_model(struct rst_model *c, struct rst_model *m,
			  uint64_t id, int fd, uint8_t *map)
{
	m_init(c, fd, map, m->n);
	img_copy(&c->live, m_img(m, id), m->n);
	c->next_ident = m->next_ident + (1ULL << 40);
}

TEST_F(rst, clone_equals_snapshot_and_shares_pages)
{
	struct rst_model *m = rst_open(self, 64), c;
	const char *cname = rst_extra(self, "c1");
	long long clones0, pa0, regions0;
	struct cowsnap_info info;
	uint8_t *cmap;
	uint64_t id;
	int cfd;
	size_t p;

	for (p = 0; p < 40; p++)
		m_write(m, p, 1);
	m_write(m, 63, 1);
	id = m_snap(m);
	for (p = 0; p < 10; p++)	/* live differs from the snapshot */
		m_write(m, p, 2);
	m_write(m, 50, 2);

	clones0 = proc_counter("clones");
	regions0 = proc_counter("regions");
	pa0 = proc_counter("pages_allocated");
	ASSERT_EQ(cs_clone(m->fd, id, cname, 0640), 0);
	ASSERT_EQ(proc_counter("clones"), clones0 + 1);
	ASSERT_EQ(proc_counter("regions"), regions0 + 1);
	ASSERT_EQ(proc_counter("pages_allocated"), pa0);	/* shared */

	cfd = rst_attach_map(cname, 64, &cmap);
	m_clone_model(&c, m, id, cfd, cmap);
	ASSERT_EQ(cs_info(cfd, &info), 0);
	ASSERT_EQ(info.size, 64 * PG);
	ASSERT_EQ(info.resident_pages, 41);
	ASSERT_EQ(info.shared_pages, 41);
	ASSERT_EQ(info.nr_snapshots, 0);
	ASSERT_EQ(info.newest_snapshot, 0);
	ASSERT_EQ(info.mode, 0640);
	if (strcmp(info.name, cname))
		FAIL("clone info name \"%s\", want \"%s\"", info.name, cname);

	m_check_live(&c, "clone");
	ASSERT_EQ(proc_counter("pages_allocated"), pa0);
	m_check_live_map(&c, "clone mapping");
	m_check_live(m, "origin");
	m_check_snap(m, id);
}

TEST_F(rst, clone_and_origin_are_independent)
{
	struct rst_model *m = rst_open(self, 32), c;
	const char *cname = rst_extra(self, "c1");
	long long pa0;
	uint8_t *cmap;
	uint64_t id;
	size_t p;
	int cfd;

	for (p = 0; p < 32; p += 2)
		m_write(m, p, 1);
	id = m_snap(m);
	ASSERT_EQ(cs_clone(m->fd, id, cname, 0600), 0);
	cfd = rst_attach_map(cname, 32, &cmap);
	m_clone_model(&c, m, id, cfd, cmap);

	/* Writes in the clone: 0, 2 shared (copied), 1, 31 holes (filled). */
	pa0 = proc_counter("pages_allocated");
	m_write(&c, 0, 5);
	m_write(&c, 1, 5);
	m_write(&c, 2, 5);
	m_write(&c, 31, 5);
	ASSERT_EQ(proc_counter("pages_allocated"), pa0 + 4);
	m_check_live(m, "origin after clone writes");
	m_check_live(&c, "clone after clone writes");

	/* Writes in the origin: 0, 4 shared, 3, 31 holes. */
	m_write(m, 0, 6);
	m_write(m, 3, 6);
	m_write(m, 4, 6);
	m_write(m, 31, 6);
	ASSERT_EQ(proc_counter("pages_allocated"), pa0 + 8);
	m_check_live(&c, "clone after origin writes");
	m_check_live(m, "origin after origin writes");
	m_check_snap(m, id);

	/* Restoring the origin leaves the clone alone. */
	m_restore(m, id, 1);
	m_check_live_map(m, "origin restored");
	m_check_live_map(&c, "clone after origin restore");
}

TEST_F(rst, clone_of_clone_survives_origin_destroy)
{
	struct rst_model *m = rst_open(self, 32), c1, c2;
	const char *n1 = rst_extra(self, "c1");
	const char *n2 = rst_extra(self, "c2");
	long long pa_start, clones0;
	uint8_t *map1, *map2;
	uint64_t id, id1, id2;
	int fd1, fd2;
	size_t p;

	/* Nothing of an earlier test is left in the module. */
	pa_start = proc_counter("pages_allocated");
	clones0 = proc_counter("clones");
	for (p = 0; p < 24; p++)
		m_write(m, p, 1);
	id = m_snap(m);
	m_write(m, 0, 2);
	ASSERT_EQ(cs_clone(m->fd, id, n1, 0600), 0);
	fd1 = rst_attach_map(n1, 32, &map1);
	m_clone_model(&c1, m, id, fd1, map1);

	for (p = 20; p < 28; p++)
		m_write(&c1, p, 7);
	id1 = m_snap(&c1);
	ASSERT_EQ(id1, 1);			/* ids are per region */
	m_write(&c1, 21, 8);
	ASSERT_EQ(cs_clone(fd1, id1, n2, 0600), 0);
	ASSERT_EQ(proc_counter("clones"), clones0 + 2);
	fd2 = rst_attach_map(n2, 32, &map2);
	m_clone_model(&c2, &c1, id1, fd2, map2);
	m_check_live(&c2, "clone of clone");

	/* The origin goes away: snapshot deleted, region destroyed. */
	m_delete(m, id);
	munmap(self->map, 32 * PG);
	self->map = NULL;
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(cs_destroy_quiet_checked(self->name), 0);
	m_check_live(&c1, "clone after origin destroyed");
	m_check_live(&c2, "clone of clone after origin destroyed");
	m_check_snap(&c1, id1);

	/* And the middle clone too. */
	m_delete(&c1, id1);
	munmap(map1, 32 * PG);
	close(fd1);
	ASSERT_EQ(cs_destroy_quiet_checked(n1), 0);
	m_check_live_map(&c2, "clone of clone alone");

	/* Still a working region: write, snapshot, restore. */
	id2 = m_snap(&c2);
	m_write(&c2, 5, 9);
	m_write(&c2, 30, 9);
	ASSERT_EQ(m_restore(&c2, id2, 1), 2);
	m_check_live_map(&c2, "clone of clone restored");

	munmap(map2, 32 * PG);
	close(fd2);
	ASSERT_EQ(cs_destroy_quiet_checked(n2), 0);
	ASSERT_EQ(proc_counter("pages_allocated"), pa_start);
}

/* ---------------------------------------------------------------------- */
/* Bad input                                                              */

/* A region of 16 pages with snapshot 1 and two dirty pages; returns id 1. */
static uint64_t rst_bad_setup(struct th_fx_rst *self)
{
	struct rst_model *m = rst_open(self, 16);
	uint64_t id;
	size_t p;

	for (p = 0; p < 12; p++)
		m_write(m, p, 1);
	id = m_snap(m);
	m_write(m, 0, 2);
	m_write(m, 13, 2);
	return id;
}

/* Nothing changed: data, snapshots, counters as given. */
static void rst_bad_check(struct rst_model *m, long long restores,
			  long long clones, long long regions, uint64_t nsnap)
{
	struct cowsnap_info info;

	ASSERT_EQ(proc_counter("restores"), restores);
	ASSERT_EQ(proc_counter("clones"), clones);
	ASSERT_EQ(proc_counter("regions"), regions);
	ASSERT_EQ(cs_info(m->fd, &info), 0);
	ASSERT_EQ(info.nr_snapshots, nsnap);
	m_check_live(m, "after bad input");
	m_check_all_snaps(m);
	m_expect_diff(m, m->snap[0].id, 0, 0, 16);
}

TEST_F(rst, bad_ids_are_enoent)
{
	uint64_t id = rst_bad_setup(self);
	struct rst_model *m = &self->m;
	const char *other = rst_extra(self, "other");
	const char *cname = rst_extra(self, "c1");
	long long restores, clones, regions;
	struct cowsnap_extent e[4];
	struct cowsnap_diff d;
	uint64_t gone;
	int ofd, fd;

	/* Another region with snapshots 1..3. */
	ofd = cs_region(other, 4 * PG);
	ASSERT_GE(ofd, 0);
	ASSERT_EQ(cs_snap(ofd, NULL), 1);
	ASSERT_EQ(cs_snap(ofd, NULL), 2);
	ASSERT_EQ(cs_snap(ofd, NULL), 3);

	/* A deleted snapshot. */
	gone = m_snap(m);
	ASSERT_EQ(gone, 2);
	m_delete(m, gone);

	restores = proc_counter("restores");
	clones = proc_counter("clones");
	regions = proc_counter("regions");

	ASSERT_ERRNO(cs_restore(m->fd, 99, 0), ENOENT);
	ASSERT_ERRNO(cs_restore(m->fd, 3, 0), ENOENT);
	ASSERT_ERRNO(cs_restore(m->fd, ~0ULL, 0), ENOENT);
	ASSERT_ERRNO(cs_restore(m->fd, gone, 0), ENOENT);
	ASSERT_ERRNO(cs_restore(m->fd, gone, gone), ENOENT);

	d = (struct cowsnap_diff){ .from = 99, .extents = (uintptr_t)e,
				   .count = 4 };
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), ENOENT);
	d = (struct cowsnap_diff){ .from = id, .to = 99,
				   .extents = (uintptr_t)e, .count = 4 };
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), ENOENT);
	d = (struct cowsnap_diff){ .from = 3, .to = id,
				   .extents = (uintptr_t)e, .count = 4 };
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), ENOENT);
	d = (struct cowsnap_diff){ .from = 0, .to = 3,
				   .extents = (uintptr_t)e, .count = 4 };
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), ENOENT);
	d = (struct cowsnap_diff){ .from = gone, .to = 0,
				   .extents = (uintptr_t)e, .count = 4 };
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), ENOENT);
	d = (struct cowsnap_diff){ .from = id, .to = gone,
				   .extents = (uintptr_t)e, .count = 4 };
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), ENOENT);

	ASSERT_ERRNO(cs_clone(m->fd, 99, cname, 0600), ENOENT);
	ASSERT_ERRNO(cs_clone(m->fd, 3, cname, 0600), ENOENT);
	ASSERT_ERRNO(cs_clone(m->fd, gone, cname, 0600), ENOENT);
	fd = cs_open();
	ASSERT_GE(fd, 0);
	ASSERT_ERRNO(cs_attach(fd, cname), ENOENT);
	close(fd);

	rst_bad_check(m, restores, clones, regions, 1);
	/* The other region's snapshots are untouched too. */
	{
		struct cowsnap_info info;

		ASSERT_EQ(cs_info(ofd, &info), 0);
		ASSERT_EQ(info.nr_snapshots, 3);
	}
	close(ofd);
}

TEST_F(rst, clone_to_existing_name_is_eexist)
{
	uint64_t id = rst_bad_setup(self);
	struct rst_model *m = &self->m;
	const char *other = rst_extra(self, "other");
	long long restores, clones, regions;
	uint8_t *omap;
	int ofd;

	ofd = cs_region(other, 4 * PG);
	ASSERT_GE(ofd, 0);
	omap = cs_map(ofd, 4 * PG);
	ASSERT_TRUE(omap != NULL);
	fill_page(omap, 1, 77);

	restores = proc_counter("restores");
	clones = proc_counter("clones");
	regions = proc_counter("regions");
	ASSERT_ERRNO(cs_clone(m->fd, id, self->name, 0600), EEXIST);
	ASSERT_ERRNO(cs_clone(m->fd, id, other, 0600), EEXIST);
	rst_bad_check(m, restores, clones, regions, 1);
	/* The existing region keeps its size and data. */
	{
		struct cowsnap_info info;

		ASSERT_EQ(cs_info(ofd, &info), 0);
		ASSERT_EQ(info.size, 4 * PG);
		ASSERT_TRUE(check_page(omap, 1, 77));
		ASSERT_TRUE(all_zero(omap, PG));
	}
	close(ofd);
}

TEST_F(rst, bad_flags_reserved_names_modes_are_einval)
{
	static const char *const bad_names[] = {
		"", ".hidden", "a/b", "a b", "tab\there", "caf\xc3\xa9",
		"semi;colon", "star*",
	};
	uint64_t id = rst_bad_setup(self);
	struct rst_model *m = &self->m;
	const char *cname = rst_extra(self, "c1");
	long long restores, clones, regions;
	struct cowsnap_extent e[4];
	struct cowsnap_restore r;
	struct cowsnap_clone c;
	struct cowsnap_diff d;
	unsigned int i;

	restores = proc_counter("restores");
	clones = proc_counter("clones");
	regions = proc_counter("regions");

	r = (struct cowsnap_restore){ .id = id, .flags = 1 };
	ASSERT_ERRNO(restore_raw(m->fd, &r), EINVAL);
	r = (struct cowsnap_restore){ .id = id, .flags = 1U << 31 };
	ASSERT_ERRNO(restore_raw(m->fd, &r), EINVAL);
	r = (struct cowsnap_restore){ .id = id, .reserved = 1 };
	ASSERT_ERRNO(restore_raw(m->fd, &r), EINVAL);
	r = (struct cowsnap_restore){ .id = id, .reserved = 1U << 31 };
	ASSERT_ERRNO(restore_raw(m->fd, &r), EINVAL);

	d = (struct cowsnap_diff){ .from = id, .extents = (uintptr_t)e,
				   .count = 4, .flags = 1 };
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), EINVAL);
	d = (struct cowsnap_diff){ .from = id, .extents = (uintptr_t)e,
				   .count = 4, .flags = 1U << 31 };
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), EINVAL);
	d = (struct cowsnap_diff){ .from = id, .extents = (uintptr_t)e,
				   .count = 0 };
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), EINVAL);

	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		c = (struct cowsnap_clone){ .id = id, .mode = 0600 };
		strncpy(c.name, bad_names[i], sizeof(c.name) - 1);
		errno = 0;
		if (clone_raw(m->fd, &c) != -1 || errno != EINVAL)
			FAIL("clone to name \"%s\": errno %d, want EINVAL",
			     bad_names[i], errno);
	}
	c = (struct cowsnap_clone){ .id = id, .mode = 0600 };
	memset(c.name, 'a', sizeof(c.name));	/* no NUL: too long */
	ASSERT_ERRNO(clone_raw(m->fd, &c), ENAMETOOLONG);

	c = (struct cowsnap_clone){ .id = id, .mode = 01000 };
	strcpy(c.name, cname);
	ASSERT_ERRNO(clone_raw(m->fd, &c), EINVAL);
	c.mode = 04755;
	ASSERT_ERRNO(clone_raw(m->fd, &c), EINVAL);
	c.mode = 0x10000;
	ASSERT_ERRNO(clone_raw(m->fd, &c), EINVAL);
	c.mode = 0600;
	c.flags = 1;
	ASSERT_ERRNO(clone_raw(m->fd, &c), EINVAL);
	c.flags = 1U << 31;
	ASSERT_ERRNO(clone_raw(m->fd, &c), EINVAL);
	c.flags = 0;
	c.reserved = 1;
	ASSERT_ERRNO(clone_raw(m->fd, &c), EINVAL);
	c.reserved = 1ULL << 63;
	ASSERT_ERRNO(clone_raw(m->fd, &c), EINVAL);

	rst_bad_check(m, restores, clones, regions, 1);

	/* The same clone, valid, works (a 63-byte name included). */
	c.reserved = 0;
	ASSERT_EQ(clone_raw(m->fd, &c), 0);
	{
		char *lname = self->extra[self->nextra++];

		size_t l = strlen(self->name);

		memset(lname, 'z', COWSNAP_NAME_MAX - 1);
		lname[COWSNAP_NAME_MAX - 1] = 0;
		memcpy(lname, self->name, l);
		lname[l] = '-';
		cs_destroy_quiet(lname);
		c = (struct cowsnap_clone){ .id = id, .mode = 0600 };
		memcpy(c.name, lname, COWSNAP_NAME_MAX);
		ASSERT_EQ(clone_raw(m->fd, &c), 0);
	}
	ASSERT_EQ(proc_counter("clones"), clones + 2);
}

TEST_F(rst, bad_pointers_are_efault)
{
	uint64_t id = rst_bad_setup(self);
	struct rst_model *m = &self->m;
	const char *cname = rst_extra(self, "c1");
	void *kaddr = (void *)0xffff888000000000UL;
	long long restores, clones, regions;
	struct cowsnap_diff d;
	void *ro;
	int fd;

	restores = proc_counter("restores");
	clones = proc_counter("clones");
	regions = proc_counter("regions");

	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_RESTORE, NULL), EFAULT);
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_RESTORE, (void *)8), EFAULT);
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_RESTORE, kaddr), EFAULT);
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_DIFF, NULL), EFAULT);
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_DIFF, kaddr), EFAULT);
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_CLONE, NULL), EFAULT);
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_CLONE, kaddr), EFAULT);

	/* Extents buffer: unmapped, kernel, read-only (there are changes). */
	d = (struct cowsnap_diff){ .from = id, .extents = 8, .count = 4 };
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), EFAULT);
	d = (struct cowsnap_diff){ .from = id, .extents = (uintptr_t)kaddr,
				   .count = 4 };
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), EFAULT);
	ro = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(ro != MAP_FAILED);
	d = (struct cowsnap_diff){ .from = id, .extents = (uintptr_t)ro,
				   .count = 4 };
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_DIFF, &d), EFAULT);
	ASSERT_TRUE(all_zero(ro, PG));
	munmap(ro, PG);

	fd = cs_open();
	ASSERT_GE(fd, 0);
	ASSERT_ERRNO(cs_attach(fd, cname), ENOENT);
	close(fd);
	rst_bad_check(m, restores, clones, regions, 1);
}

TEST_F(rst, restore_with_readonly_arg_fails_before_restoring)
{
	uint64_t id = rst_bad_setup(self);
	struct rst_model *m = &self->m;
	struct cowsnap_restore *ra;
	long long restores;

	ra = mmap(NULL, PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(ra != MAP_FAILED);
	ra->id = id;
	ASSERT_EQ(mprotect(ra, PG, PROT_READ), 0);
	restores = proc_counter("restores");
	ASSERT_ERRNO(ioctl(m->fd, COWSNAP_IOC_RESTORE, ra), EFAULT);
	/* EFAULT must mean "not done": the live view keeps its changes. */
	m_check_live(m, "after EFAULT restore");
	ASSERT_EQ(proc_counter("restores"), restores);
	munmap(ra, PG);
}

TEST_F(rst, readonly_handle_may_diff_not_restore_or_clone)
{
	uint64_t id = rst_bad_setup(self);
	struct rst_model *m = &self->m;
	const char *cname = rst_extra(self, "c1");
	long long restores, clones, regions;
	struct cowsnap_extent e[4];
	struct cowsnap_info info;
	struct cowsnap_diff d;
	uint8_t *rmap;
	int rfd, fd;

	rfd = open(COWSNAP_DEV, O_RDONLY | O_CLOEXEC);
	ASSERT_GE(rfd, 0);
	ASSERT_EQ(cs_attach(rfd, self->name), 0);
	ASSERT_EQ(cs_info(rfd, &info), 0);
	ASSERT_EQ(info.flags & COWSNAP_INFO_WRITABLE, 0);

	restores = proc_counter("restores");
	clones = proc_counter("clones");
	regions = proc_counter("regions");
	ASSERT_ERRNO(cs_restore(rfd, id, 0), EACCES);
	ASSERT_ERRNO(cs_restore(rfd, id, id), EACCES);
	ASSERT_ERRNO(cs_clone(rfd, id, cname, 0600), EACCES);
	fd = cs_open();
	ASSERT_GE(fd, 0);
	ASSERT_ERRNO(cs_attach(fd, cname), ENOENT);
	close(fd);

	/* Diff works and sees the same as the writable handle. */
	d = (struct cowsnap_diff){ .from = id, .extents = (uintptr_t)e,
				   .count = 4 };
	ASSERT_EQ(ioctl(rfd, COWSNAP_IOC_DIFF, &d), 0);
	ASSERT_EQ(d.count, 2);
	ASSERT_EQ(d.next, 0);
	ASSERT_EQ(e[0].start, 0);
	ASSERT_EQ(e[0].count, 1);
	ASSERT_EQ(e[1].start, 13);
	ASSERT_EQ(e[1].count, 1);
	m->fd = rfd;
	m_expect_diff(m, 0, id, 0, 1);
	m_check_live(m, "read-only handle");
	m->fd = self->fd;

	rmap = mmap(NULL, 16 * PG, PROT_READ, MAP_SHARED, rfd, 0);
	ASSERT_TRUE(rmap != MAP_FAILED);
	check_img(rmap, 16, &m->live, 1, "read-only mapping");
	munmap(rmap, 16 * PG);
	rst_bad_check(m, restores, clones, regions, 1);
	close(rfd);
}

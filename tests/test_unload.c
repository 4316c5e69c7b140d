// SPDX-License-Identifier: GPL-2.0
/*
 * Unloading under churn.  100 cycles (30 on the KASAN kernel) of load,
 * work (regions written, snapshots, CoW, base and walking restores, a
 * clone, a mapped snapshot
 * fd, diff), destroy and close everything, unload: the module's counters
 * are exact during and zero after each cycle, its reference count is 0
 * before each unload and rmmod succeeds, and neither free pages nor
 * unreclaimable slab drift across the cycles (measured after a warm-up
 * cycle, with caches dropped and slab caches shrunk, which also empties
 * KASAN's quarantine).  Then rmmod is refused (EAGAIN) while a handle is
 * open, a region exists without any handle, only a snapshot fd is open,
 * only a mapping of the live view or only a mapping of a snapshot
 * remains; each unloads cleanly once its last holder goes.  The module is
 * left loaded with default parameters.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <time.h>
#include <sys/mman.h>
#define TH_TIMEOUT 800
#include "harness.h"
#include "util.h"

#define UL_CYCLES	100
#define UL_PAGES	4096			/* region ul-a, 16 MiB */
#define UL_SZ		((size_t)UL_PAGES * PG)
#define UL_C_PAGES	64			/* region ul-c */
/* Module pages one cycle holds at its peak (see ul_work()). */
#define UL_CYCLE_PAGES	(UL_PAGES + 8 + 8 + UL_C_PAGES)
/* A leak of a quarter of one cycle's pages fails, over any number. */
#define UL_FREE_TOL	(UL_CYCLE_PAGES / 4)
#define UL_SLAB_TOL_KB	4096

static const char *const ul_names[] = { "ul-a", "ul-b", "ul-c", "ul-r" };

FIXTURE(unload) {
	int fd[4];		/* handles */
	int sfd;
	char *map[3];
	size_t maplen[3];
	char *data;		/* UL_SZ bytes of pattern */
};

FIXTURE_SETUP(unload)
{
	int i;

	for (i = 0; i < 4; i++)
		self->fd[i] = -1;
	self->sfd = -1;
	memset(self->map, 0, sizeof(self->map));
	self->data = NULL;
	if (!mod_loaded())
		ASSERT_EQ(mod_load(""), 0);
}

/*
 * Close and unmap what a test left, destroy its regions, leave the module
 * loaded with default parameters for the programs that follow.
 */
FIXTURE_TEARDOWN(unload)
{
	unsigned int i;
	int fd;

	for (i = 0; i < 3; i++)
		if (self->map[i])
			munmap(self->map[i], self->maplen[i]);
	if (self->sfd >= 0)
		close(self->sfd);
	for (i = 0; i < 4; i++)
		if (self->fd[i] >= 0)
			close(self->fd[i]);
	if (!mod_loaded() && mod_load(""))
		fprintf(stderr, "unload teardown: load: %s\n", strerror(errno));
	fd = cs_open();
	for (i = 0; fd >= 0 && i < sizeof(ul_names) / sizeof(ul_names[0]); i++)
		cs_destroy(fd, ul_names[i]);
	if (fd >= 0)
		close(fd);
}

static void ul_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, val, strlen(val)) < 0)
		fprintf(stderr, "write %s: %s\n", path, strerror(errno));
	close(fd);
}

static long long ul_refcnt(void)
{
	char buf[32] = "";
	int fd = open("/sys/module/cowsnap/refcnt", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atoll(buf) : -1;
}

/* A field of /proc/meminfo, in KiB. */
static long long ul_meminfo(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256], name[64];
	long long v, ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63[^:]: %lld", name, &v) == 2 &&
		    !strcmp(name, key)) {
			ret = v;
			break;
		}
	fclose(f);
	return ret;
}

/* Free pages: the buddy allocator's plus those on per-cpu lists. */
static long long ul_free_pages(void)
{
	FILE *f = fopen("/proc/zoneinfo", "r");
	long long pcp = 0, v;
	char line[256];

	ASSERT_TRUE(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " count: %lld", &v) == 1)
			pcp += v;
	fclose(f);
	return ul_meminfo("MemFree") / (PG / 1024) + pcp;
}

/*
 * Let kernel-wide numbers settle: drop caches, wait for RCU frees, shrink
 * every slab cache (which also empties KASAN's quarantine of it).
 */
static void ul_settle(void)
{
	struct dirent *de;
	char path[320];
	DIR *d;

	ul_write("/proc/sys/vm/drop_caches", "3");
	usleep(300 * 1000);
	d = opendir("/sys/kernel/slab");
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || de->d_type == DT_LNK)
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink",
			 de->d_name);
		ul_write(path, "1");
	}
	if (d)
		closedir(d);
	ul_write("/proc/sys/vm/drop_caches", "3");
}

/* Assert the module's gauges. */
static void ul_counters(long long regions, long long snaps, long long alloc,
			long long shared)
{
	ASSERT_EQ(proc_counter("regions"), regions);
	ASSERT_EQ(proc_counter("snapshots"), snaps);
	ASSERT_EQ(proc_counter("pages_allocated"), alloc);
	ASSERT_EQ(proc_counter("pages_shared"), shared);
}

static int ul_handle(const char *name)
{
	int fd = cs_open();

	ASSERT_GE(fd, 0);
	ASSERT_EQ(cs_attach(fd, name), 0);
	return fd;
}

static void ul_destroy(const char *name)
{
	int fd = cs_open();

	ASSERT_GE(fd, 0);
	ASSERT_EQ(cs_destroy(fd, name), 0);
	close(fd);
}

static void ul_unmap(struct th_fx_unload *self, int i)
{
	ASSERT_EQ(munmap(self->map[i], self->maplen[i]), 0);
	self->map[i] = NULL;
}

static void ul_close(int *fd)
{
	ASSERT_EQ(close(*fd), 0);
	*fd = -1;
}

/* Unload, which must work now: nothing holds the module. */
static void ul_unload(void)
{
	ASSERT_EQ(ul_refcnt(), 0);
	ASSERT_EQ(mod_unload(), 0);
	ASSERT_FALSE(mod_loaded());
}

/*
 * One cycle's work on a loaded module; leaves nothing behind.  Pages:
 * ul-a's 4096 (P), snapshot 1 = P; 16 copied and restored away; 0-7
 * copied (N2), snapshot 2 = P with N2; 100-107 copied and restored away
 * by a walk to 1; clone ul-b of 2 copies 200-207 (N4); ul-c has 64.
 * Peak: 4096 + 8 + 8 + 64 pages, 4096 + 8 of them shared.
 */
static void ul_work(struct th_fx_unload *self)
{
	struct cowsnap_extent ext[4];
	struct cowsnap_diff d = { .from = 1, .to = 2, .count = 4,
				  .extents = (uintptr_t)ext };
	static char buf[UL_SZ];
	char *pa, *pb, *ps;
	unsigned int i;

	self->fd[0] = cs_open();
	ASSERT_GE(self->fd[0], 0);
	ASSERT_EQ(cs_create(self->fd[0], "ul-a", UL_SZ, 0600), 0);
	ASSERT_EQ(pwrite(self->fd[0], self->data, UL_SZ, 0), UL_SZ);
	pa = cs_map(self->fd[0], UL_SZ);
	ASSERT_TRUE(pa != NULL);
	self->map[0] = pa;
	self->maplen[0] = UL_SZ;
	ASSERT_EQ(cs_snap(self->fd[0], "ul-1"), 1);
	for (i = 0; i < 16; i++)
		pa[i * 256 * PG] ^= 1;			/* CoW */
	ASSERT_EQ(cs_restore(self->fd[0], 1, 0), 16);	/* the base */
	for (i = 0; i < 8; i++)
		pa[i * PG] ^= 2;
	ASSERT_EQ(cs_snap(self->fd[0], NULL), 2);
	for (i = 0; i < 8; i++)
		pa[(100 + i) * PG] ^= 3;
	ASSERT_EQ(cs_restore(self->fd[0], 1, 0), 16);	/* a walk */
	ASSERT_EQ(pread(self->fd[0], buf, UL_SZ, 0), UL_SZ);
	ASSERT_EQ(memcmp(buf, self->data, UL_SZ), 0);

	ASSERT_EQ(cs_clone(self->fd[0], 2, "ul-b", 0600), 0);
	self->fd[1] = ul_handle("ul-b");
	pb = cs_map(self->fd[1], UL_SZ);
	ASSERT_TRUE(pb != NULL);
	self->map[1] = pb;
	self->maplen[1] = UL_SZ;
	ASSERT_EQ(pb[0], self->data[0] ^ 2);
	ASSERT_EQ(pb[100 * PG], self->data[100 * PG]);
	for (i = 0; i < 8; i++)
		pb[(200 + i) * PG] ^= 4;

	self->fd[2] = cs_region("ul-c", UL_C_PAGES * PG);
	ASSERT_GE(self->fd[2], 0);
	ASSERT_EQ(write(self->fd[2], self->data, UL_C_PAGES * PG),
		  UL_C_PAGES * PG);

	self->sfd = cs_snap_open(self->fd[0], 2);
	ASSERT_GE(self->sfd, 0);
	ps = mmap(NULL, UL_SZ, PROT_READ, MAP_SHARED, self->sfd, 0);
	ASSERT_TRUE(ps != MAP_FAILED);
	self->map[2] = ps;
	self->maplen[2] = UL_SZ;
	ASSERT_EQ(ps[0], self->data[0] ^ 2);
	ASSERT_EQ(ps[8 * PG], self->data[8 * PG]);
	ASSERT_EQ(ps[100 * PG], self->data[100 * PG]);
	ASSERT_EQ(ioctl(self->fd[0], COWSNAP_IOC_DIFF, &d), 0);
	ASSERT_EQ(d.count, 1);
	ASSERT_EQ(ext[0].start, 0);
	ASSERT_EQ(ext[0].count, 8);

	/*
	 * Pages with two owners: ul-b's pages inherited from snapshot 2 and
	 * not rewritten (UL_PAGES - 8), and the 8 pages the walk restored,
	 * held by ul-a's live view and by snapshot 1's history.
	 */
	ul_counters(3, 2, UL_CYCLE_PAGES, UL_PAGES);

	/* Tear down in an order that leaves the snapshot fd last. */
	ul_unmap(self, 0);
	ul_unmap(self, 1);
	ul_destroy("ul-a");
	ul_destroy("ul-b");
	ul_destroy("ul-c");
	ul_close(&self->fd[0]);
	ul_close(&self->fd[1]);
	ul_close(&self->fd[2]);
	ASSERT_EQ(ps[0], self->data[0] ^ 2);	/* still readable */
	ASSERT_EQ(proc_counter("regions"), 0);
	ASSERT_EQ(proc_counter("snapshots"), 0);
	ul_unmap(self, 2);
	ul_close(&self->sfd);
	ul_counters(0, 0, 0, 0);
}

static long long ul_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Load, work, unload a hundred times: no pages, slab or references leak. */
TEST_F(unload, cycles_leak_nothing)
{
	/* 100 cycles; 30 under KASAN, where each takes ~3 s of TCG. */
	unsigned int cycles = kernel_is_debug() ? 30 : UL_CYCLES, c, i;
	long long free0, slab0, free1 = 0, slab1 = 0, t0, worst = 0;

	self->data = malloc(UL_SZ);
	ASSERT_TRUE(self->data != NULL);
	for (i = 0; i < UL_PAGES; i++)
		fill_page(self->data, i, 7);
	if (mod_loaded())
		ASSERT_EQ(mod_unload(), 0);

	/* Warm-up: the first cycle fills caches for good. */
	ASSERT_EQ(mod_load(""), 0);
	ul_work(self);
	ul_unload();
	ul_settle();
	free0 = ul_free_pages();
	slab0 = ul_meminfo("SUnreclaim");
	ASSERT_GT(free0, 0);
	ASSERT_GT(slab0, 0);

	t0 = ul_ms();
	for (c = 1; c <= cycles; c++) {
		ASSERT_EQ(mod_load(""), 0);
		ASSERT_EQ(ul_refcnt(), 0);
		ul_counters(0, 0, 0, 0);
		ul_work(self);
		ul_unload();
		if (c % 10)
			continue;
		ul_settle();
		free1 = ul_free_pages();
		slab1 = ul_meminfo("SUnreclaim");
		if (free0 - free1 > worst)
			worst = free0 - free1;
		if (free0 - free1 > UL_FREE_TOL)
			FAIL("after %u cycles %lld pages less free (tolerance "
			     "%d, one cycle holds %d)", c, free0 - free1,
			     UL_FREE_TOL, UL_CYCLE_PAGES);
		if (slab1 - slab0 > UL_SLAB_TOL_KB)
			FAIL("after %u cycles SUnreclaim grew by %lld KiB "
			     "(tolerance %d KiB)", c, slab1 - slab0,
			     UL_SLAB_TOL_KB);
	}
	fprintf(stderr, "unload: %d cycles in %lld ms; free pages drift %lld "
		"(worst %lld, tolerance %d), SUnreclaim drift %lld KiB\n",
		cycles, ul_ms() - t0, free0 - free1, worst, UL_FREE_TOL,
		slab1 - slab0);
	ASSERT_EQ(mod_load(""), 0);
}

/* A fresh module with nothing in it. */
static void ul_fresh(void)
{
	if (mod_loaded())
		ASSERT_EQ(mod_unload(), 0);
	ASSERT_EQ(mod_load(""), 0);
	ul_counters(0, 0, 0, 0);
}

/* rmmod refused and the module still there and held. */
static void ul_refused(void)
{
	ASSERT_ERRNO(mod_unload(), EAGAIN);
	ASSERT_TRUE(mod_loaded());
	ASSERT_GT(ul_refcnt(), 0);
	ASSERT_EQ(access(COWSNAP_DEV, F_OK), 0);
}

/* The last holder went: unload, then load again for the next test. */
static void ul_unloads(void)
{
	ul_counters(0, 0, 0, 0);
	ul_unload();
	ASSERT_EQ(mod_load(""), 0);
}

/* Region ul-r of 8 pages, page i filled with seed 1; its handle. */
static int ul_region8(struct th_fx_unload *self)
{
	int fd = cs_region("ul-r", 8 * PG);
	static char buf[8 * PG];
	unsigned int i;

	ASSERT_GE(fd, 0);
	for (i = 0; i < 8; i++)
		fill_page(buf, i, 1);
	ASSERT_EQ(pwrite(fd, buf, sizeof(buf), 0), sizeof(buf));
	return fd;
}

TEST_F(unload, refused_while_handle_open)
{
	ul_fresh();
	self->fd[0] = cs_open();
	ASSERT_GE(self->fd[0], 0);
	ul_refused();
	ul_close(&self->fd[0]);
	ul_unloads();
}

TEST_F(unload, refused_while_region_exists_without_handle)
{
	ul_fresh();
	self->fd[0] = ul_region8(self);
	ul_close(&self->fd[0]);
	ul_counters(1, 0, 8, 0);
	ul_refused();
	/* The data is all there. */
	self->fd[0] = ul_handle("ul-r");
	{
		char buf[8 * PG];
		unsigned int i;

		ASSERT_EQ(pread(self->fd[0], buf, sizeof(buf), 0), sizeof(buf));
		for (i = 0; i < 8; i++)
			ASSERT_TRUE(check_page(buf, i, 1));
	}
	ul_destroy("ul-r");
	ul_close(&self->fd[0]);
	ul_unloads();
}

TEST_F(unload, refused_while_only_snapshot_fd_open)
{
	char buf[8 * PG];
	unsigned int i;

	ul_fresh();
	self->fd[0] = ul_region8(self);
	ASSERT_EQ(cs_snap(self->fd[0], NULL), 1);
	self->sfd = cs_snap_open(self->fd[0], 1);
	ASSERT_GE(self->sfd, 0);
	ul_destroy("ul-r");
	ul_close(&self->fd[0]);
	/* Only the snapshot fd: the region is gone, its snapshot's pages stay. */
	ul_counters(0, 0, 8, 0);
	ul_refused();
	ASSERT_EQ(pread(self->sfd, buf, sizeof(buf), 0), sizeof(buf));
	for (i = 0; i < 8; i++)
		ASSERT_TRUE(check_page(buf, i, 1));
	ul_close(&self->sfd);
	ul_unloads();
}

TEST_F(unload, refused_while_only_live_mapping)
{
	unsigned int i;
	char *p;

	ul_fresh();
	self->fd[0] = ul_region8(self);
	p = cs_map(self->fd[0], 8 * PG);
	ASSERT_TRUE(p != NULL);
	self->map[0] = p;
	self->maplen[0] = 8 * PG;
	ul_destroy("ul-r");
	ul_close(&self->fd[0]);
	/* The mapping keeps the (destroyed) region alive. */
	ul_counters(1, 0, 8, 0);
	ul_refused();
	for (i = 0; i < 8; i++)
		ASSERT_TRUE(check_page(p, i, 1));
	p[0] = 1;			/* still writable */
	ul_refused();
	ul_unmap(self, 0);
	ul_unloads();
}

TEST_F(unload, refused_while_only_snapshot_mapping)
{
	unsigned int i;
	char *p;

	ul_fresh();
	self->fd[0] = ul_region8(self);
	ASSERT_EQ(cs_snap(self->fd[0], NULL), 1);
	self->sfd = cs_snap_open(self->fd[0], 1);
	ASSERT_GE(self->sfd, 0);
	p = mmap(NULL, 8 * PG, PROT_READ, MAP_SHARED, self->sfd, 0);
	ASSERT_TRUE(p != MAP_FAILED);
	self->map[0] = p;
	self->maplen[0] = 8 * PG;
	ul_close(&self->sfd);
	ul_destroy("ul-r");
	ul_close(&self->fd[0]);
	ul_counters(0, 0, 8, 0);
	ul_refused();
	for (i = 0; i < 8; i++)
		ASSERT_TRUE(check_page(p, i, 1));
	ul_unmap(self, 0);
	ul_unloads();
}

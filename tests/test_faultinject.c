// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation failure everywhere.  With the kernel's fault injection
 * (failslab, fail_page_alloc, fail_usercopy) /proc/thread-self/fail-nth
 * makes the n-th injection point this task reaches fail; every path of the
 * module that allocates is walked with n = 1, 2, ... until the operation
 * completes without reaching the n-th point: region create, snapshot (also
 * with a pinned page), restore (base snapshot and walk, filling and
 * erasing), clone, CoW and hole fill by store fault (also in a second
 * thread) and by write(), snapshot open + mmap, diff, SNAP_LIST/INFO/
 * delete, /proc/cowsnap and the CLI's dump sequence.  fi_NAME walks slab
 * and page points apart (single failures); fi_NAME_and_all_after fails
 * point n and every allocation after it (retries and fallbacks fail too).
 * fi_random_storm fails allocations at random over 400 operations.
 * After each failure it proves:
 *  - the call failed cleanly (ENOMEM; EFAULT from a usercopy point; SIGBUS
 *    for a store fault, in the faulting thread only; a short write()) or
 *    succeeded, and never failed with nothing injected;
 *  - every live view and snapshot holds what a model of page identities
 *    says, through read() and through mappings;
 *  - /proc/cowsnap, INFO and SNAP_LIST agree with each other and with the
 *    model (regions, snapshots, pages_allocated, resident, referenced,
 *    newest); pages_shared, shared and exclusive pages equal those of the
 *    same state reached without a failure;
 *  - nothing was OOM-killed and the kernel log has no report or trace;
 *  - destroying everything frees every page (pages_allocated 0), and a
 *    kmemleak scan at the end finds nothing from cowsnap.
 * fi_nofail_every_operation_agrees_with_the_model runs the same operations
 * without failures on every kernel.  The walks need CONFIG_FAULT_INJECTION
 * (the "dbg" kernel) and skip elsewhere.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/uio.h>
#define TH_TIMEOUT 600
#include "harness.h"
#include "util.h"

#define FI_NP		256		/* pages per region */
#define FI_SZ		(FI_NP * PG)
#define FI_NSNAP	16		/* snapshot slots per region */
#define FI_MAXID	(1 << 16)	/* page ids per model */
#define FI_MAX_N	5000		/* give up: a walk that never ends */
#define FI_SIGBUS	1000		/* "errno" of a store that got SIGBUS */
#define FI_SHORT	1001		/* "errno" of a short write() */
#define FI_DBG		"/sys/kernel/debug"
#define FI_STORM_OPS	400
#define FI_STORM_PCT	5

enum { FI_A, FI_CLONE, FI_NEW, FI_NREG };
static const char *const fi_names[FI_NREG] = { "fi-a", "fi-clone", "fi-new" };

/*
 * The model: every view (live or snapshot) is an array of page ids, 0 for
 * a hole; a page's owners are the view entries holding its id, as in the
 * module.  fi_seed[id] is what the page holds (fi_fill()).
 */
struct fi_view {
	int used;		/* alive: listed, or held by @sfd */
	int listed;		/* in its region's snapshot list */
	uint64_t id;
	int sfd;		/* open snapshot fd, or -1 */
	char *smap;		/* its mapping, or NULL */
	unsigned int pg[FI_NP];
};

struct fi_reg {
	int used;		/* the region object exists */
	int fd;			/* attached handle, or -1 */
	char *map;		/* live mapping, or NULL */
	uint64_t next_id;
	struct fi_view live;
	struct fi_view snap[FI_NSNAP];
};

static struct fi_reg fr[FI_NREG];
static unsigned int fi_seed[FI_MAXID];
static unsigned short fi_cnt[FI_MAXID];	/* owners, by fi_count_owners() */
static unsigned int fi_npg = 1, fi_nseed = 1;
static int fi_pipe[2] = { -1, -1 };

/* Arguments and results of the operation under test. */
static struct {
	int r;
	unsigned int n;			/* entries of idx[] */
	unsigned int idx[8];
	unsigned int len[8];		/* pages per write(), 0 for a store */
	unsigned int seed[8];		/* of each page in fi_src[] */
	uint64_t id;
	uint64_t pairs[3][2];		/* diff from, to */
	volatile unsigned int done;	/* steps completed */
	int fd, sfd;
	char *map;
	uint64_t got;			/* id or pages restored */
	int eof;
	size_t off;
	struct cowsnap_diff diff[3];
	struct cowsnap_snap_list list;
	struct cowsnap_info info;
} A;

static char fi_src[8][PG] __attribute__((aligned(PG)));	/* data to write */
static char fi_buf[FI_SZ] __attribute__((aligned(PG)));
static char fi_out[FI_SZ] __attribute__((aligned(PG)));	/* dump, proc text */
static char fi_want[PG] __attribute__((aligned(PG)));
static struct cowsnap_extent fi_ext[3][1024];
static struct cowsnap_snap_entry fi_ent[64];

/* Injection state. */
static int fi_nth_fd = -1, fi_mif_fd = -1, fi_kmsg = -1;
static sigjmp_buf fi_jb, *fi_jbp = &fi_jb;
static volatile pid_t fi_bus_tid;	/* thread that got the last SIGBUS */
static volatile int fi_storm_on;
static long long fi_oom0;
static unsigned int fi_committed;	/* EFAULT after the change was made */
static char fi_ctx[128];		/* the operation and fail-nth, for messages */
static unsigned int fi_limit = ~0U;	/* steps an act() may take (references) */
static int fi_cut;			/* act() stopped at fi_limit */

#define FI_FAIL(fmt, ...) FAIL("%s: " fmt, fi_ctx, ##__VA_ARGS__)

/* ---- the model ---- */

static void fi_fill(void *dst, unsigned int idx, unsigned int seed)
{
	uint64_t *w = dst;
	size_t k;

	for (k = 0; k < PG / 8; k++)
		w[k] = ((uint64_t)idx << 32) ^
		       (seed * 0x9e3779b97f4a7c15ULL) ^ (k * 0x100000001ULL);
}

static void fi_count_view(const struct fi_view *v)
{
	unsigned int i;

	for (i = 0; i < FI_NP; i++)
		if (v->pg[i])
			fi_cnt[v->pg[i]]++;
}

static void fi_count_owners(void)
{
	int r, s;

	memset(fi_cnt, 0, sizeof(fi_cnt[0]) * fi_npg);
	for (r = 0; r < FI_NREG; r++) {
		if (fr[r].used)
			fi_count_view(&fr[r].live);
		for (s = 0; s < FI_NSNAP; s++)
			if (fr[r].snap[s].used)
				fi_count_view(&fr[r].snap[s]);
	}
}

static unsigned int fi_new_page(unsigned int seed)
{
	if (fi_npg >= FI_MAXID)
		FAIL("model: out of page ids");
	fi_seed[fi_npg] = seed;
	return fi_npg++;
}

/* Live page @idx of @r now holds @seed: in place if unshared, else a copy. */
static void fi_model_write(int r, unsigned int idx, unsigned int seed)
{
	unsigned int p = fr[r].live.pg[idx];

	fi_count_owners();
	if (p && fi_cnt[p] == 1)
		fi_seed[p] = seed;
	else
		fr[r].live.pg[idx] = fi_new_page(seed);
}

static struct fi_view *fi_snap(int r, uint64_t id)
{
	int s;

	for (s = 0; s < FI_NSNAP; s++)
		if (fr[r].snap[s].used && fr[r].snap[s].id == id)
			return &fr[r].snap[s];
	return NULL;
}

static struct fi_view *fi_model_snap(int r)
{
	struct fi_view *v = NULL;
	int s;

	for (s = 0; s < FI_NSNAP && !v; s++)
		if (!fr[r].snap[s].used)
			v = &fr[r].snap[s];
	if (!v)
		FAIL("model: out of snapshot slots");
	memcpy(v->pg, fr[r].live.pg, sizeof(v->pg));
	v->used = v->listed = 1;
	v->id = fr[r].next_id++;
	v->sfd = -1;
	v->smap = NULL;
	return v;
}

static void fi_model_unlist(struct fi_view *v)
{
	v->listed = 0;
	if (v->sfd < 0)
		v->used = 0;
}

static uint64_t fi_newest(int r)
{
	uint64_t n = 0;
	int s;

	for (s = 0; s < FI_NSNAP; s++)
		if (fr[r].snap[s].listed && fr[r].snap[s].id > n)
			n = fr[r].snap[s].id;
	return n;
}

/* Indexes where @a and @b hold different pages. */
static unsigned int fi_ndiff(const unsigned int *a, const unsigned int *b)
{
	unsigned int i, n = 0;

	for (i = 0; i < FI_NP; i++)
		n += a[i] != b[i];
	return n;
}

/* ---- small helpers ---- */

static const char *fi_strerr(int err)
{
	if (err == FI_SIGBUS)
		return "SIGBUS";
	if (err == FI_SHORT)
		return "short write";
	return err ? strerror(err) : "success";
}

static void fi_write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		FAIL("open %s: %s", path, strerror(errno));
	n = write(fd, val, strlen(val));
	if (n != (ssize_t)strlen(val))
		FAIL("write %s to %s: %s", val, path, strerror(errno));
	close(fd);
}

static long long fi_vmstat(const char *key)
{
	static char text[16384];
	size_t kl = strlen(key);
	char *l;

	if (th_read_file("/proc/vmstat", text, sizeof(text)) < 0)
		return -1;
	for (l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : l)
		if (!strncmp(l, key, kl) && l[kl] == ' ')
			return atoll(l + kl + 1);
	return -1;
}

/* Fail on any report the bench would count, naming the operation. */
static void fi_klog_check(const char *ctx)
{
	static const char *const bad[] = {
		"Call Trace", "WARNING:", "BUG:", "BUG ", "Oops", "KASAN",
		"page allocation failure", "vmalloc error", "Out of memory",
		"oom-kill", "Killed process", "VM_FAULT_OOM", "refcount_t",
		"Bad page", "general protection", "kmemleak:", "lockdep",
		"Poison overwritten", "Redzone", "UBSAN", "FAULT_INJECTION",
		"list_add corruption", "list_del corruption",
	};
	static char rec[8192];
	unsigned int i;
	ssize_t n;

	if (fi_kmsg < 0)
		return;
	for (;;) {
		n = read(fi_kmsg, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records */
		if (n <= 0)
			break;
		rec[n] = 0;
		/*
		 * kmemleak's own bookkeeping for a vmalloc() that kvmalloc()
		 * fell back to (alloc_vmap_area() adds a scan area) is a slab
		 * allocation of this task, so failslab fails it too; kmemleak
		 * then scans the whole object, which can neither hide a leak
		 * nor invent one.  Every other kmemleak line still fails.
		 */
		if (strstr(rec, "kmemleak: Cannot allocate a scan area"))
			continue;
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			if (strstr(rec, bad[i]))
				FAIL("%s: kernel log: %s", ctx,
				     strchr(rec, ';') ? strchr(rec, ';') + 1 : rec);
	}
}

/* ---- fault injection control ---- */

/* Saved debugfs settings, restored by the teardown. */
static struct {
	char path[128];
	char val[32];
} fi_saved[64];
static int fi_nsaved;

static void fi_set(const char *attr, const char *file, const char *val)
{
	char path[128];
	int i;

	snprintf(path, sizeof(path), FI_DBG "/%s/%s", attr, file);
	for (i = 0; i < fi_nsaved; i++)
		if (!strcmp(fi_saved[i].path, path))
			break;
	if (i == fi_nsaved && fi_nsaved < 64) {
		if (th_read_file(path, fi_saved[i].val,
				 sizeof(fi_saved[i].val)) < 0)
			return;	/* this kernel lacks it */
		strcpy(fi_saved[i].path, path);
		fi_nsaved++;
	}
	fi_write_file(path, val);
}

static void fi_put(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, val, strlen(val)) < 0)
		fprintf(stderr, "restore %s: %s\n", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/*
 * Probabilities go to 0 first and come back last: task-filter=N with a
 * probability set would fail every task's allocations, this one's too.
 */
static void fi_config_restore(void)
{
	int i, pass;

	for (pass = 0; pass < 3; pass++) {
		for (i = 0; i < fi_nsaved; i++) {
			int prob = strstr(fi_saved[i].path, "/probability") != NULL;

			if (pass == 0 && prob)
				fi_put(fi_saved[i].path, "0");
			else if (pass == 1 && !prob)
				fi_put(fi_saved[i].path, fi_saved[i].val);
			else if (pass == 2 && prob)
				fi_put(fi_saved[i].path, fi_saved[i].val);
		}
	}
	fi_nsaved = 0;
}

/* Which injection points count (and so can fail). */
#define FI_SLAB		1
#define FI_PAGE		2
#define FI_ALL		(FI_SLAB | FI_PAGE)

/*
 * failslab and fail_page_alloc fail at @pct percent, fail_usercopy at
 * @upct, for tasks with make-it-fail set (0: only fail-nth); GFP_KERNEL,
 * highmem and order-0 allocations eligible, no dumps.  @kinds leaves out
 * slab (cache-filter with no cache marked) or page allocations (an order
 * above the largest); usercopy points always count.  Every other fault
 * attribute is made quiet, as fail-nth counts them all.
 */
static void fi_config(int pct, int upct, int kinds)
{
	static const char *const attrs[] = {
		"failslab", "fail_page_alloc", "fail_usercopy",
	};
	char p[16], up[16], dpath[320];
	struct dirent *de;
	unsigned int i;
	DIR *d;

	snprintf(p, sizeof(p), "%d", pct);
	snprintf(up, sizeof(up), "%d", upct);
	for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		snprintf(dpath, sizeof(dpath), FI_DBG "/%s", attrs[i]);
		if (access(dpath, F_OK))
			continue;
		fi_set(attrs[i], "verbose", "0");
		fi_set(attrs[i], "task-filter", "Y");
		fi_set(attrs[i], "probability", i == 2 ? up : p);
		fi_set(attrs[i], "interval", "1");
		fi_set(attrs[i], "times", "-1");
		fi_set(attrs[i], "space", "0");
	}
	fi_set("failslab", "ignore-gfp-wait", "N");
	fi_set("failslab", "cache-filter", kinds & FI_SLAB ? "N" : "Y");
	fi_set("fail_page_alloc", "ignore-gfp-wait", "N");
	fi_set("fail_page_alloc", "ignore-gfp-highmem", "N");
	fi_set("fail_page_alloc", "min-order", kinds & FI_PAGE ? "0" : "11");
	d = opendir(FI_DBG);
	while (d && (de = readdir(d))) {
		snprintf(dpath, sizeof(dpath), FI_DBG "/%s/verbose", de->d_name);
		if (!strncmp(de->d_name, "fail", 4) && !access(dpath, F_OK))
			fi_set(de->d_name, "verbose", "0");
	}
	if (d)
		closedir(d);
}

/* Make the @n-th injection point of this thread fail. */
static void fi_arm(unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	if (pwrite(fi_nth_fd, buf, len, 0) != len)
		FAIL("arm fail-nth %u: %s", n, strerror(errno));
}

/*
 * Stop injecting.  Returns 1 if the armed point was reached; *@left is how
 * many points were still to go.  Reading fail-nth is itself an injection
 * point (its copy-out): EFAULT there means one was left.
 */
static int fi_disarm(unsigned int *left)
{
	char buf[16] = "";
	ssize_t r;

	r = pread(fi_nth_fd, buf, sizeof(buf) - 1, 0);
	if (r < 0 && errno == EFAULT)
		*left = 1;
	else if (r > 0)
		*left = strtoul(buf, NULL, 10);
	else
		FAIL("read fail-nth: %s", strerror(errno));
	while (pwrite(fi_nth_fd, "0", 1, 0) != 1)
		if (errno != EFAULT)
			FAIL("reset fail-nth: %s", strerror(errno));
	return *left == 0;
}

/* make-it-fail for this thread; writing it may itself be failed. */
static void fi_mif(int on)
{
	while (pwrite(fi_mif_fd, on ? "1" : "0", 1, 0) != 1)
		if (errno != EFAULT)
			_exit(3);
}

static void fi_sigbus(int sig)
{
	/* siglongjmp restores the mask with a syscall: stop failing first. */
	if (fi_storm_on)
		fi_mif(0);
	fi_bus_tid = syscall(SYS_gettid);
	siglongjmp(*fi_jbp, 1);
}

/*
 * Touch a deep stack; the caller then locks every page we have: no user
 * page fault (and no page-table allocation) happens while injecting.
 */
static void __attribute__((noinline)) fi_prefault_stack(void)
{
	volatile char deep[256 << 10];

	memset((char *)deep, 1, sizeof(deep));
}

/* ---- regions (setup steps, never injected) ---- */

/* Map all of @fd in one 2 MiB-aligned slot: one page table serves it. */
static char *fi_map_aligned(int fd, int prot)
{
	const size_t slot = 2UL << 20;
	char *res, *a;

	res = mmap(NULL, 2 * slot, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_TRUE(res != MAP_FAILED);
	a = (char *)(((uintptr_t)res + slot - 1) & ~(slot - 1));
	ASSERT_TRUE(mmap(a, FI_SZ, prot, MAP_SHARED | MAP_FIXED, fd, 0) == a);
	if (a > res)
		munmap(res, a - res);
	munmap(a + FI_SZ, res + 2 * slot - (a + FI_SZ));
	return a;
}

static void fi_new_region(int r)
{
	int fd = cs_open();

	ASSERT_GE(fd, 0);
	ASSERT_EQ(cs_create(fd, fi_names[r], FI_SZ, 0600), 0);
	memset(&fr[r], 0, sizeof(fr[r]));
	fr[r].used = 1;
	fr[r].fd = fd;
	fr[r].next_id = 1;
	fr[r].map = fi_map_aligned(fd, PROT_READ | PROT_WRITE);
}

/* Attach a new handle to @r (after it was cloned or created elsewhere). */
static void fi_attach(int r)
{
	int fd = cs_open();

	ASSERT_GE(fd, 0);
	ASSERT_EQ(cs_attach(fd, fi_names[r]), 0);
	fr[r].fd = fd;
}

static void fi_store(int r, unsigned int idx)
{
	unsigned int seed = fi_nseed++;

	fi_fill(fr[r].map + idx * PG, idx, seed);
	fi_model_write(r, idx, seed);
}

static void fi_touch(int r, unsigned int idx)
{
	volatile char c = fr[r].map[idx * PG];

	(void)c;
}

static void fi_snapshot(int r)
{
	uint64_t want = fr[r].next_id;

	ASSERT_EQ(cs_snap(fr[r].fd, "fi-setup"), want);
	fi_model_snap(r);
}

static void fi_restore(int r, uint64_t id)
{
	struct fi_view *v = fi_snap(r, id);

	ASSERT_EQ(cs_restore(fr[r].fd, id, 0), fi_ndiff(fr[r].live.pg, v->pg));
	memcpy(fr[r].live.pg, v->pg, sizeof(v->pg));
}

static int fi_exists(const char *name)
{
	int fd = cs_open(), ret;

	ASSERT_GE(fd, 0);
	ret = cs_attach(fd, name);
	if (ret && errno != ENOENT)
		FAIL("attach %s: %s", name, strerror(errno));
	close(fd);
	return !ret;
}

/* Drop every fd, mapping and region; with @check, all must be freed. */
static void fi_reset(int check)
{
	int r, s, fd;

	for (r = 0; r < FI_NREG; r++) {
		for (s = 0; s < FI_NSNAP; s++) {
			struct fi_view *v = &fr[r].snap[s];

			if (v->used && v->smap)
				munmap(v->smap, FI_SZ);
			if (v->used && v->sfd >= 0)
				close(v->sfd);
		}
		if (fr[r].used && fr[r].map)
			munmap(fr[r].map, FI_SZ);
		if (fr[r].used && fr[r].fd >= 0)
			close(fr[r].fd);
	}
	for (s = 0; s < 2; s++)
		if (fi_pipe[s] >= 0)
			close(fi_pipe[s]);
	fi_pipe[0] = fi_pipe[1] = -1;
	fd = cs_open();
	for (r = 0; r < FI_NREG && fd >= 0; r++)
		cs_destroy(fd, fi_names[r]);
	if (fd >= 0)
		close(fd);
	memset(fr, 0, sizeof(fr));
	fi_npg = 1;
	if (!check)
		return;
	ASSERT_EQ(proc_counter("regions"), 0);
	ASSERT_EQ(proc_counter("snapshots"), 0);
	ASSERT_EQ(proc_counter("pages_allocated"), 0);
	ASSERT_EQ(proc_counter("pages_shared"), 0);
}

/* ---- checking the module against the model ---- */

static int fi_reg_by_name(const char *name)
{
	int r;

	for (r = 0; r < FI_NREG; r++)
		if (!strcmp(name, fi_names[r]))
			return r;
	return -1;
}

/* Region numbers from the model; fi_count_owners() first. */
static void fi_reg_stats(int r, long long *res, long long *sh, long long *ns)
{
	unsigned int i, p;
	int s;

	*res = *sh = *ns = 0;
	for (i = 0; i < FI_NP; i++) {
		p = fr[r].live.pg[i];
		*res += !!p;
		*sh += p && fi_cnt[p] >= 2;
	}
	for (s = 0; s < FI_NSNAP; s++)
		*ns += fr[r].snap[s].listed;
}

static void fi_snap_stats(const struct fi_view *v, long long *ref,
			  long long *excl)
{
	unsigned int i, p;

	*ref = *excl = 0;
	for (i = 0; i < FI_NP; i++) {
		p = v->pg[i];
		*ref += !!p;
		*excl += p && fi_cnt[p] == 1;
	}
}

/*
 * What the module says: /proc/cowsnap parsed.  The counters every design
 * must agree on (regions, snapshots, pages_allocated, resident, referenced,
 * newest) are checked against the model; pages_shared, a region's shared
 * and a snapshot's exclusive pages depend on how the module keeps its
 * pages (history records, docs/semantics.md), so a walk checks them
 * against the same state reached without a failure (fi_ref_*), and every
 * check that INFO, SNAP_LIST and /proc agree.  Their exact definitions are
 * asserted by tests/stress_model.c's model of the records.
 */

struct fi_proc {
	long long regions, snapshots, alloc, shared;
	int nreg, nsnap, hdr;
	struct { int r; long long size, res, sh, ns, newest; } reg[FI_NREG];
	struct { int r; long long id, ref, excl; } snap[64];
};

static struct fi_proc fi_p;
static struct fi_proc fi_p_read;	/* /proc/cowsnap as a walk read it */
static int fi_have_read;

static void fi_parse_proc(const char *text, struct fi_proc *p, const char *ctx)
{
	char line[512], name[64], label[64];
	const char *l = text, *e;
	unsigned long long ct;
	long long v[5];

	memset(p, 0, sizeof(*p));
	p->regions = p->snapshots = p->alloc = p->shared = -1;
	for (; *l; l = *e ? e + 1 : e) {
		e = strchr(l, '\n');
		if (!e)
			e = l + strlen(l);
		snprintf(line, sizeof(line), "%.*s", (int)(e - l), l);
		if (sscanf(line, "regions %lld", &v[0]) == 1) {
			p->regions = v[0];
		} else if (sscanf(line, "snapshots %lld", &v[0]) == 1) {
			p->snapshots = v[0];
		} else if (sscanf(line, "pages_allocated %lld", &v[0]) == 1) {
			p->alloc = v[0];
		} else if (sscanf(line, "pages_shared %lld", &v[0]) == 1) {
			p->shared = v[0];
		} else if (!strncmp(line, "# ", 2)) {
			p->hdr++;
		} else if (!strncmp(line, "region ", 7)) {
			if (p->nreg == FI_NREG ||
			    sscanf(line, "region %63s %lld %lld %lld %lld %lld",
				   name, &v[0], &v[1], &v[2], &v[3], &v[4]) != 6)
				FAIL("%s: unexpected record: %s", ctx, line);
			p->reg[p->nreg].r = fi_reg_by_name(name);
			if (p->reg[p->nreg].r < 0)
				FAIL("%s: unexpected region: %s", ctx, line);
			p->reg[p->nreg].size = v[0];
			p->reg[p->nreg].res = v[1];
			p->reg[p->nreg].sh = v[2];
			p->reg[p->nreg].ns = v[3];
			p->reg[p->nreg].newest = v[4];
			p->nreg++;
		} else if (!strncmp(line, "snapshot ", 9)) {
			if (p->nsnap == 64 ||
			    sscanf(line, "snapshot %63s %lld %63s %llu %lld %lld",
				   name, &v[0], label, &ct, &v[1], &v[2]) != 6)
				FAIL("%s: unexpected record: %s", ctx, line);
			p->snap[p->nsnap].r = fi_reg_by_name(name);
			p->snap[p->nsnap].id = v[0];
			p->snap[p->nsnap].ref = v[1];
			p->snap[p->nsnap].excl = v[2];
			p->nsnap++;
		}
	}
	if (p->hdr != 2)
		FAIL("%s: /proc/cowsnap has %d of its 2 header lines (records "
		     "silently dropped?):\n%s", ctx, p->hdr, text);
}

/* /proc/cowsnap text @text against the model; leaves it in fi_p. */
static void fi_check_proc(const char *text, const char *ctx)
{
	long long m_regions = 0, m_snaps = 0, m_alloc = 0, m_shared = 0;
	long long res, sh, ns, ref, excl;
	struct fi_proc *p = &fi_p;
	int seen[FI_NREG] = { 0 }, r, s, i;
	struct fi_view *sv;
	unsigned int k;

	fi_parse_proc(text, p, ctx);
	fi_count_owners();
	for (k = 1; k < fi_npg; k++) {
		m_alloc += fi_cnt[k] > 0;
		m_shared += fi_cnt[k] > 1;
	}
	for (r = 0; r < FI_NREG; r++) {
		m_regions += fr[r].used;
		for (s = 0; s < FI_NSNAP; s++)
			m_snaps += fr[r].snap[s].listed;
	}
	if (p->regions != m_regions || p->snapshots != m_snaps ||
	    p->alloc != m_alloc)
		FAIL("%s: /proc/cowsnap regions %lld snapshots %lld "
		     "pages_allocated %lld pages_shared %lld, the model %lld %lld "
		     "%lld %lld", ctx, p->regions, p->snapshots, p->alloc,
		     p->shared, m_regions, m_snaps, m_alloc, m_shared);
	for (i = 0; i < p->nreg; i++) {
		r = p->reg[i].r;
		if (!fr[r].used || seen[r]++)
			FAIL("%s: /proc/cowsnap lists region %s unexpectedly:\n%s",
			     ctx, fi_names[r], text);
		fi_reg_stats(r, &res, &sh, &ns);
		if (p->reg[i].size != FI_SZ || p->reg[i].res != res ||
		    p->reg[i].ns != ns ||
		    p->reg[i].newest != (long long)fi_newest(r))
			FAIL("%s: /proc: region %s resident %lld shared %lld "
			     "snapshots %lld newest %lld, the model %lld %lld %lld "
			     "%llu", ctx, fi_names[r], p->reg[i].res, p->reg[i].sh,
			     p->reg[i].ns, p->reg[i].newest, res, sh, ns,
			     (unsigned long long)fi_newest(r));
	}
	for (r = 0; r < FI_NREG; r++)
		if (fr[r].used && !seen[r])
			FAIL("%s: /proc/cowsnap lacks region %s:\n%s", ctx,
			     fi_names[r], text);
	if (p->nsnap != m_snaps)
		FAIL("%s: /proc/cowsnap lists %d snapshots, the model %lld:\n%s",
		     ctx, p->nsnap, m_snaps, text);
	for (i = 0; i < p->nsnap; i++) {
		sv = p->snap[i].r < 0 ? NULL : fi_snap(p->snap[i].r,
							 p->snap[i].id);
		if (!sv || !sv->listed)
			FAIL("%s: /proc lists snapshot %lld unexpectedly:\n%s",
			     ctx, p->snap[i].id, text);
		fi_snap_stats(sv, &ref, &excl);
		if (p->snap[i].ref != ref)
			FAIL("%s: /proc: snapshot %s %lld referenced %lld "
			     "exclusive %lld, the model %lld %lld", ctx,
			     fi_names[p->snap[i].r], p->snap[i].id, p->snap[i].ref,
			     p->snap[i].excl, ref, excl);
	}
}

/* SNAP_LIST results of region @r against the model and /proc (fi_p). */
static void fi_check_list(int r, const struct cowsnap_snap_entry *ent,
			  unsigned int count, uint64_t next, const char *ctx)
{
	uint64_t last = 0;
	long long ref, excl;
	unsigned int i, want = 0;
	int s, j;

	fi_count_owners();
	for (s = 0; s < FI_NSNAP; s++)
		want += fr[r].snap[s].listed;
	if (count != want || next)
		FAIL("%s: SNAP_LIST of %s: %u entries, next %llu; the model %u",
		     ctx, fi_names[r], count, (unsigned long long)next, want);
	for (i = 0; i < count; i++) {
		struct fi_view *v = fi_snap(r, ent[i].id);

		if (!v || !v->listed || ent[i].id <= last)
			FAIL("%s: SNAP_LIST of %s: unexpected id %llu", ctx,
			     fi_names[r], (unsigned long long)ent[i].id);
		last = ent[i].id;
		fi_snap_stats(v, &ref, &excl);
		for (j = 0; j < fi_p.nsnap; j++)
			if (fi_p.snap[j].r == r &&
			    fi_p.snap[j].id == (long long)ent[i].id)
				break;
		if ((long long)ent[i].referenced_pages != ref ||
		    j == fi_p.nsnap ||
		    fi_p.snap[j].excl != (long long)ent[i].exclusive_pages)
			FAIL("%s: SNAP_LIST %s id %llu: referenced %llu exclusive "
			     "%llu; the model %lld %lld, /proc exclusive %lld", ctx,
			     fi_names[r], (unsigned long long)ent[i].id,
			     (unsigned long long)ent[i].referenced_pages,
			     (unsigned long long)ent[i].exclusive_pages, ref, excl,
			     j < fi_p.nsnap ? fi_p.snap[j].excl : -1);
	}
}

/* INFO of region @r against the model and /proc (fi_p). */
static void fi_check_info(int r, const struct cowsnap_info *info,
			  const char *ctx)
{
	long long res, sh, ns, psh = -1;
	int i;

	for (i = 0; i < fi_p.nreg; i++)
		if (fi_p.reg[i].r == r)
			psh = fi_p.reg[i].sh;
	fi_count_owners();
	fi_reg_stats(r, &res, &sh, &ns);
	if (info->size != FI_SZ || (long long)info->resident_pages != res ||
	    (long long)info->shared_pages != psh ||
	    (long long)info->nr_snapshots != ns ||
	    info->newest_snapshot != fi_newest(r) ||
	    strcmp(info->name, fi_names[r]))
		FAIL("%s: INFO of %s: resident %llu shared %llu snapshots %llu "
		     "newest %llu; the model %lld %lld %lld %llu, /proc shared "
		     "%lld", ctx, fi_names[r],
		     (unsigned long long)info->resident_pages,
		     (unsigned long long)info->shared_pages,
		     (unsigned long long)info->nr_snapshots,
		     (unsigned long long)info->newest_snapshot, res, sh, ns,
		     (unsigned long long)fi_newest(r), psh);
}

/*
 * References for a walk: the representation-dependent numbers of each
 * state the operation can leave (by the model's page structure), from
 * runs without a failure.  After an injected failure the same state must
 * show the same numbers.
 */
struct fi_ref {
	uint64_t key;
	long long shared, rsh[FI_NREG];
	long long excl[64], sid[64], sr[64];
	long long nsnap;
};

static struct fi_ref fi_refs[16];
static int fi_nrefs;

static uint64_t fi_model_key(void)
{
	uint64_t h = 1469598103934665603ULL;
	unsigned int i;
	int r, s;

#define FI_MIX(x) (h = (h ^ (uint64_t)(x)) * 1099511628211ULL)
	for (r = 0; r < FI_NREG; r++) {
		FI_MIX(fr[r].used);
		FI_MIX(fr[r].used && fr[r].map);
		for (i = 0; i < FI_NP; i++)
			FI_MIX(fr[r].used ? fr[r].live.pg[i] : 0);
		for (s = 0; s < FI_NSNAP; s++) {
			const struct fi_view *v = &fr[r].snap[s];

			FI_MIX(v->used);
			if (!v->used)
				continue;
			FI_MIX(v->listed);
			FI_MIX(v->id);
			FI_MIX(v->sfd >= 0);
			for (i = 0; i < FI_NP; i++)
				FI_MIX(v->pg[i]);
		}
	}
#undef FI_MIX
	return h;
}

/* The numbers of fi_p in region-name and snapshot-id terms. */
static void fi_ref_fill(struct fi_ref *f, uint64_t key)
{
	int i;

	memset(f, 0, sizeof(*f));
	f->key = key;
	f->shared = fi_p.shared;
	for (i = 0; i < FI_NREG; i++)
		f->rsh[i] = -1;
	for (i = 0; i < fi_p.nreg; i++)
		f->rsh[fi_p.reg[i].r] = fi_p.reg[i].sh;
	f->nsnap = fi_p.nsnap;
	for (i = 0; i < fi_p.nsnap; i++) {
		f->sr[i] = fi_p.snap[i].r;
		f->sid[i] = fi_p.snap[i].id;
		f->excl[i] = fi_p.snap[i].excl;
	}
}

/* Record the current state (fi_p from the last verify) as a reference. */
static void fi_ref_add(void)
{
	uint64_t key = fi_model_key();
	int i;

	for (i = 0; i < fi_nrefs; i++)
		if (fi_refs[i].key == key)
			return;
	if (fi_nrefs == 16)
		FAIL("too many reference states");
	fi_ref_fill(&fi_refs[fi_nrefs++], key);
}

/* The current state's numbers against its reference. */
static void fi_ref_check(const char *ctx)
{
	uint64_t key = fi_model_key();
	struct fi_ref now;
	int i;

	for (i = 0; i < fi_nrefs && fi_refs[i].key != key; i++)
		;
	if (i == fi_nrefs)
		FAIL("%s: a state no failure-free run of the operation leaves",
		     ctx);
	fi_ref_fill(&now, key);
	if (memcmp(&now, &fi_refs[i], sizeof(now)))
		FAIL("%s: pages_shared %lld, shared or exclusive pages differ "
		     "from the same state reached without a failure "
		     "(pages_shared %lld there):\n%s", ctx, now.shared,
		     fi_refs[i].shared, fi_out);
}

/* Page @i of @data against page id @p; 1 if equal. */
static int fi_page_is(const char *data, unsigned int i, unsigned int p)
{
	if (!p)
		return all_zero(data + i * PG, PG);
	fi_fill(fi_want, i, fi_seed[p]);
	return !memcmp(data + i * PG, fi_want, PG);
}

/* 1 if @data (FI_SZ bytes) holds page ids @pg. */
static int fi_data_is(const char *data, const unsigned int *pg)
{
	unsigned int i;

	for (i = 0; i < FI_NP; i++)
		if (!fi_page_is(data, i, pg[i]))
			return 0;
	return 1;
}

/* @data (FI_SZ bytes of view @what) against page ids @pg. */
static void fi_check_data(const char *data, const unsigned int *pg,
			  const char *what, const char *ctx)
{
	unsigned int i;

	for (i = 0; i < FI_NP; i++)
		if (!fi_page_is(data, i, pg[i]))
			FAIL("%s: %s page %u: not what the model holds (%s)",
			     ctx, what, i, pg[i] ? "data" : "zeros");
}

static void fi_pread_all(int fd, char *buf, const char *ctx)
{
	size_t off = 0;
	ssize_t n;

	while (off < FI_SZ) {
		n = pread(fd, buf + off, FI_SZ - off, off);
		if (n <= 0)
			FAIL("%s: pread: %s", ctx, n ? strerror(errno) : "EOF");
		off += n;
	}
}

/* Everything the module shows, through fds and mappings, vs the model. */
static void fi_verify(const char *ctx)
{
	struct cowsnap_snap_list sl;
	struct cowsnap_info info;
	char what[64];
	int r, s, sfd;

	if (th_read_file("/proc/cowsnap", fi_out, sizeof(fi_out)) < 0)
		FAIL("%s: read /proc/cowsnap: %s", ctx, strerror(errno));
	fi_check_proc(fi_out, ctx);
	if (fi_have_read && memcmp(&fi_p_read, &fi_p, sizeof(fi_p)))
		FAIL("%s: /proc/cowsnap read differs from a read right after",
		     ctx);
	fi_have_read = 0;
	for (r = 0; r < FI_NREG; r++) {
		if (!fr[r].used)
			continue;
		ASSERT_EQ(cs_info(fr[r].fd, &info), 0);
		fi_check_info(r, &info, ctx);
		memset(&sl, 0, sizeof(sl));
		sl.entries = (uintptr_t)fi_ent;
		sl.count = 64;
		ASSERT_EQ(ioctl(fr[r].fd, COWSNAP_IOC_SNAP_LIST, &sl), 0);
		fi_check_list(r, fi_ent, sl.count, sl.next_id, ctx);
		fi_pread_all(fr[r].fd, fi_buf, ctx);
		snprintf(what, sizeof(what), "%s live view", fi_names[r]);
		fi_check_data(fi_buf, fr[r].live.pg, what, ctx);
		if (fr[r].map && memcmp(fr[r].map, fi_buf, FI_SZ))
			FAIL("%s: mapping of %s differs from read()", ctx,
			     fi_names[r]);
	}
	for (r = 0; r < FI_NREG; r++) {
		for (s = 0; s < FI_NSNAP; s++) {
			struct fi_view *v = &fr[r].snap[s];

			if (!v->used)
				continue;
			sfd = v->sfd >= 0 ? v->sfd : cs_snap_open(fr[r].fd, v->id);
			if (sfd < 0)
				FAIL("%s: open snapshot %llu of %s: %s", ctx,
				     (unsigned long long)v->id, fi_names[r],
				     strerror(errno));
			fi_pread_all(sfd, fi_buf, ctx);
			if (sfd != v->sfd)
				close(sfd);
			snprintf(what, sizeof(what), "%s snapshot %llu",
				 fi_names[r], (unsigned long long)v->id);
			fi_check_data(fi_buf, v->pg, what, ctx);
			if (v->smap && memcmp(v->smap, fi_buf, FI_SZ))
				FAIL("%s: mapping of %s differs", ctx, what);
		}
	}
	if (fi_vmstat("oom_kill") != fi_oom0)
		FAIL("%s: the OOM killer ran", ctx);
	fi_klog_check(ctx);
}

/* ---- the states operations start from ---- */

/*
 * fi-a, 256 pages: 0-9 written, snapshot 1; 0-69, 130, 150 written (0-9
 * copied), snapshot 2 (the base); 3, 10 copied and 140 filled since; 5
 * mapped read-only, 200 a read hole (the zero page mapped).  Pages span
 * four xarray nodes; a snapshot takes two batches.
 */
static void fi_setup_base(void)
{
	unsigned int i;

	fi_new_region(FI_A);
	for (i = 0; i < 10; i++)
		fi_store(FI_A, i);
	fi_snapshot(FI_A);
	for (i = 0; i < 70; i++)
		fi_store(FI_A, i);
	fi_store(FI_A, 130);
	fi_store(FI_A, 150);
	fi_snapshot(FI_A);
	fi_store(FI_A, 3);
	fi_store(FI_A, 10);
	fi_store(FI_A, 140);
	fi_touch(FI_A, 5);
	fi_touch(FI_A, 200);
}

/*
 * The base state, then snapshot 1 restored (a walk) and page 5 copied:
 * restoring 2 now fills 62 holes over erased xarray nodes.
 */
static void fi_setup_restored(void)
{
	fi_setup_base();
	fi_restore(FI_A, 1);
	fi_store(FI_A, 5);
}

/* The base state with page 3 referenced by a pipe (vmsplice). */
static void fi_setup_pinned(void)
{
	struct iovec iov;

	fi_setup_base();
	iov.iov_base = fr[FI_A].map + 3 * PG;
	iov.iov_len = PG;
	ASSERT_EQ(pipe(fi_pipe), 0);
	ASSERT_EQ(vmsplice(fi_pipe[1], &iov, 1, 0), PG);
}

/* ---- operations: act() runs injected, apply() updates the model ---- */

struct fi_op {
	const char *name;
	void (*setup)(void);
	void (*prep)(void);
	int (*act)(void);
	void (*apply)(int err);
	int thread;		/* act() runs in a second thread */
	void (*extra_ref)(void);	/* another state it may leave */
};

/* Fresh data for the pages at A.idx[] of region A.r, in fi_src[]. */
static void prep_data(void)
{
	unsigned int k, j, at;

	for (k = 0, at = 0; k < A.n; k++) {
		for (j = 0; j < (A.len[k] ? A.len[k] : 1); j++, at++) {
			A.seed[at] = fi_nseed++;
			fi_fill(fi_src[at], A.idx[k] + j, A.seed[at]);
		}
	}
}

/* Region create: open a handle, CREATE, mmap. */
static int act_create(void)
{
	A.fd = open(COWSNAP_DEV, O_RDWR | O_CLOEXEC);
	if (A.fd < 0)
		return errno;
	if (cs_create(A.fd, fi_names[FI_NEW], FI_SZ, 0600))
		return errno;
	A.done = 1;
	if (fi_limit < 2) {
		fi_cut = 1;
		return 0;
	}
	A.map = mmap(NULL, FI_SZ, PROT_READ | PROT_WRITE, MAP_SHARED, A.fd, 0);
	if (A.map == MAP_FAILED)
		return errno;
	A.done = 2;
	return 0;
}

static void apply_create(int err)
{
	if (!A.done) {
		if (A.fd >= 0)
			close(A.fd);
		if (fi_exists(fi_names[FI_NEW]))
			FI_FAIL("create failed (%s) but the region exists",
				fi_strerr(err));
		return;
	}
	memset(&fr[FI_NEW], 0, sizeof(fr[FI_NEW]));
	fr[FI_NEW].used = 1;
	fr[FI_NEW].fd = A.fd;
	fr[FI_NEW].next_id = 1;
	fr[FI_NEW].map = A.done == 2 ? A.map : NULL;
}

static void prep_create(void)
{
	A.fd = -1;
}

/*
 * Stores through the mapping: CoW, CoW of a read-only PTE, the zero page
 * (a new xarray node), a hole, CoW.
 */
static void prep_faults(void)
{
	static const unsigned int idx[] = { 4, 5, 200, 90, 11 };

	A.r = FI_A;
	A.n = 5;
	memcpy(A.idx, idx, sizeof(idx));
	prep_data();
}

static int act_stores(void)
{
	unsigned int k;

	for (k = 0; k < A.n; k++) {
		if (k >= fi_limit) {
			fi_cut = 1;
			return 0;
		}
		memcpy(fr[A.r].map + A.idx[k] * PG, fi_src[k], PG);
		A.done = k + 1;
	}
	return 0;
}

static void apply_stores(int err)
{
	unsigned int k;

	for (k = 0; k < A.done; k++)	/* one page each: fi_src[k] */
		fi_model_write(A.r, A.idx[k], A.seed[k]);
}

/*
 * write(): CoW of one page, of three (may come back short), a hole in a
 * new xarray node, CoW.
 */
static void prep_writes(void)
{
	A.r = FI_A;
	A.n = 4;
	A.idx[0] = 6;
	A.len[0] = 1;
	A.idx[1] = 7;
	A.len[1] = 3;
	A.idx[2] = 251;
	A.len[2] = 1;
	A.idx[3] = 60;
	A.len[3] = 1;
	prep_data();
}

static int act_writes(void)
{
	unsigned int k, at = 0;
	ssize_t n;

	for (k = 0; k < A.n; k++) {
		unsigned int len = A.len[k];

		if (at + len > fi_limit) {	/* a reference: stop there */
			len = fi_limit - at;
			fi_cut = 1;
		}
		n = len ? pwrite(fr[A.r].fd, fi_src[at], len * PG,
				 A.idx[k] * PG) : 0;
		if (n < 0)
			return errno;
		A.done += n / PG;	/* pages, in order */
		if (n % PG)
			return EPROTO;
		if (n != (ssize_t)(len * PG))
			return FI_SHORT;
		if (fi_cut)
			return 0;
		at += len;
	}
	return 0;
}

static void apply_writes(int err)
{
	unsigned int k, j, at = 0;

	for (k = 0; k < A.n; k++)
		for (j = 0; j < A.len[k]; j++, at++)
			if (at < A.done)
				fi_model_write(A.r, A.idx[k] + j, A.seed[at]);
}

/* SNAP_CREATE. */
static void prep_snap(void)
{
	A.r = FI_A;
}

static int act_snap(void)
{
	struct cowsnap_snap_create sc = { .label = "fi-snap" };

	if (ioctl(fr[A.r].fd, COWSNAP_IOC_SNAP_CREATE, &sc))
		return errno;
	A.got = sc.id;
	return 0;
}

/*
 * Did a snapshot that returned EFAULT happen anyway?  Its final copy-out
 * comes after the snapshot exists (the module says so): the call is then
 * all done, never half done.
 */
static int fi_snap_committed(int r)
{
	struct cowsnap_info info;

	ASSERT_EQ(cs_info(fr[r].fd, &info), 0);
	return info.newest_snapshot == fr[r].next_id;
}

static void apply_snap(int err)
{
	if (!err && A.got != fr[A.r].next_id)
		FI_FAIL("snapshot id %llu, want %llu", (unsigned long long)A.got,
			(unsigned long long)fr[A.r].next_id);
	if (err == EFAULT && fi_snap_committed(A.r))
		fi_committed++;
	else if (err)
		return;
	fi_model_snap(A.r);
}

/* Snapshot with page 3 pinned: the snapshot gets a copy of it. */
static long long fi_pinned0;

static void prep_snap_pinned(void)
{
	A.r = FI_A;
	fi_pinned0 = proc_counter("pinned_copies");
}

static void apply_snap_pinned(int err)
{
	long long pinned = proc_counter("pinned_copies");
	struct fi_view *v;
	unsigned int p;

	if (!err && A.got != fr[A.r].next_id)
		FI_FAIL("snapshot id %llu, want %llu", (unsigned long long)A.got,
			(unsigned long long)fr[A.r].next_id);
	if (err == EFAULT && fi_snap_committed(A.r)) {
		fi_committed++;
	} else if (err) {
		if (pinned != fi_pinned0)
			FI_FAIL("failed snapshot (%s) counted %lld pinned copies",
				fi_strerr(err), pinned - fi_pinned0);
		return;
	}
	if (pinned != fi_pinned0 + 1)
		FI_FAIL("snapshot of a pinned page: pinned_copies +%lld, want +1",
			pinned - fi_pinned0);
	v = fi_model_snap(A.r);
	p = v->pg[3];
	v->pg[3] = fi_new_page(fi_seed[p]);
}

/* RESTORE of snapshot A.id. */
static int act_restore(void)
{
	struct cowsnap_restore rs = { .id = A.id };

	if (ioctl(fr[A.r].fd, COWSNAP_IOC_RESTORE, &rs))
		return errno;
	A.got = rs.pages_restored;
	return 0;
}

static void apply_restore(int err)
{
	struct fi_view *v = fi_snap(A.r, A.id);
	unsigned int n = fi_ndiff(fr[A.r].live.pg, v->pg);

	if (!err && A.got != n)
		FI_FAIL("restore of %llu: %llu pages restored, the model %u",
			(unsigned long long)A.id, (unsigned long long)A.got, n);
	/*
	 * The copy-out of pages_restored may fail after the restore: then
	 * the live view must be all the snapshot (else verify sees a mix).
	 */
	fi_pread_all(fr[A.r].fd, fi_buf, fi_ctx);
	if (err == EFAULT && n && fi_data_is(fi_buf, v->pg))
		fi_committed++;
	else if (err)
		return;
	memcpy(fr[A.r].live.pg, v->pg, sizeof(v->pg));
}

static void prep_restore_base(void)
{
	A.r = FI_A;
	A.id = 2;
}

static void prep_restore_old(void)
{
	A.r = FI_A;
	A.id = 1;
}

/* CLONE of snapshot A.id into fi-clone. */
static int act_clone(void)
{
	if (cs_clone(fr[A.r].fd, A.id, fi_names[FI_CLONE], 0600))
		return errno;
	return 0;
}

static void apply_clone(int err)
{
	if (err) {
		if (fi_exists(fi_names[FI_CLONE]))
			FI_FAIL("clone failed (%s) but the region exists",
				fi_strerr(err));
		return;
	}
	memset(&fr[FI_CLONE], 0, sizeof(fr[FI_CLONE]));
	fr[FI_CLONE].used = 1;
	fr[FI_CLONE].next_id = 1;
	memcpy(fr[FI_CLONE].live.pg, fi_snap(A.r, A.id)->pg,
	       sizeof(fr[FI_CLONE].live.pg));
	fi_attach(FI_CLONE);
	fr[FI_CLONE].map = fi_map_aligned(fr[FI_CLONE].fd,
					  PROT_READ | PROT_WRITE);
}

/* SNAP_DELETE of A.id (storm). */
static int act_delete(void)
{
	return cs_snap_delete(fr[A.r].fd, A.id) ? errno : 0;
}

static void apply_delete(int err)
{
	if (!err)
		fi_model_unlist(fi_snap(A.r, A.id));
}

/* DESTROY of region A.r, then its handle and mapping go (storm). */
static int act_destroy(void)
{
	return cs_destroy(fr[A.r].fd, fi_names[A.r]) ? errno : 0;
}

static void apply_destroy(int err)
{
	int s;

	if (err) {
		if (!fi_exists(fi_names[A.r]))
			FI_FAIL("destroy failed (%s) but the region is gone",
				fi_strerr(err));
		return;
	}
	munmap(fr[A.r].map, FI_SZ);
	close(fr[A.r].fd);
	fr[A.r].map = NULL;
	fr[A.r].fd = -1;
	fr[A.r].used = 0;
	for (s = 0; s < FI_NSNAP; s++)
		if (fr[A.r].snap[s].listed)
			fi_model_unlist(&fr[A.r].snap[s]);
}

/* SNAP_OPEN of A.id, then mmap of the snapshot fd. */
static int act_snap_open(void)
{
	struct cowsnap_snap_open so = { .id = A.id,
					.flags = COWSNAP_OPEN_CLOEXEC };

	A.sfd = ioctl(fr[A.r].fd, COWSNAP_IOC_SNAP_OPEN, &so);
	if (A.sfd < 0)
		return errno;
	A.map = mmap(NULL, FI_SZ, PROT_READ, MAP_SHARED, A.sfd, 0);
	if (A.map == MAP_FAILED)
		return errno;
	A.done = 1;
	return 0;
}

static void prep_snap_open(void)
{
	A.r = FI_A;
	A.id = 1;
	A.sfd = -1;
}

static void apply_snap_open(int err)
{
	struct fi_view *v = fi_snap(A.r, A.id);

	if (!A.done) {
		if (A.sfd >= 0)
			close(A.sfd);	/* as a caller whose mmap failed */
		return;
	}
	if (v->sfd >= 0) {
		munmap(v->smap, FI_SZ);
		close(v->sfd);
	}
	v->sfd = A.sfd;
	v->smap = A.map;
}

/* DIFFs of A.pairs[] (0: live); the walk diffs 1-live, 2-live, 1-2. */
static void prep_diff(void)
{
	static const uint64_t pairs[3][2] = { { 1, 0 }, { 2, 0 }, { 1, 2 } };

	A.r = FI_A;
	A.n = 3;
	memcpy(A.pairs, pairs, sizeof(pairs));
}

static int act_diff(void)
{
	unsigned int k;

	for (k = 0; k < A.n; k++) {
		struct cowsnap_diff *d = &A.diff[k];

		memset(d, 0, sizeof(*d));
		d->from = A.pairs[k][0];
		d->to = A.pairs[k][1];
		d->extents = (uintptr_t)fi_ext[k];
		d->count = 1024;
		if (ioctl(fr[A.r].fd, COWSNAP_IOC_DIFF, d))
			return errno;
		A.done = k + 1;
	}
	return 0;
}

static const unsigned int *fi_view_pg(int r, uint64_t id)
{
	return id ? fi_snap(r, id)->pg : fr[r].live.pg;
}

static void apply_diff(int err)
{
	unsigned int k, i, n;

	for (k = 0; k < A.done; k++) {
		const unsigned int *a = fi_view_pg(A.r, A.pairs[k][0]);
		const unsigned int *b = fi_view_pg(A.r, A.pairs[k][1]);
		struct cowsnap_extent want[FI_NP];

		for (i = 0, n = 0; i < FI_NP; i++) {
			if (a[i] == b[i])
				continue;
			if (n && want[n - 1].start + want[n - 1].count == i) {
				want[n - 1].count++;
			} else {
				want[n].start = i;
				want[n].count = 1;
				n++;
			}
		}
		if (A.diff[k].count != n || A.diff[k].next ||
		    memcmp(fi_ext[k], want, n * sizeof(want[0])))
			FI_FAIL("diff %llu..%llu: %u extents (next %llu), the "
				"model %u", (unsigned long long)A.diff[k].from,
				(unsigned long long)A.diff[k].to, A.diff[k].count,
				(unsigned long long)A.diff[k].next, n);
	}
}

/* SNAP_LIST, INFO, then SNAP_DELETE of A.id unless 0. */
static void prep_list(void)
{
	A.r = FI_A;
	A.id = 1;
	/*
	 * SNAP_LIST and INFO change nothing: they must agree with /proc as
	 * it is before the act (fi_p held the previous walk step's state).
	 */
	if (th_read_file("/proc/cowsnap", fi_out, sizeof(fi_out)) < 0)
		FAIL("%s: read /proc/cowsnap: %s", fi_ctx, strerror(errno));
	fi_parse_proc(fi_out, &fi_p, fi_ctx);
}

static int act_list(void)
{
	struct cowsnap_snap_id del = { .id = A.id };

	memset(&A.list, 0, sizeof(A.list));
	A.list.entries = (uintptr_t)fi_ent;
	A.list.count = 64;
	if (ioctl(fr[A.r].fd, COWSNAP_IOC_SNAP_LIST, &A.list))
		return errno;
	A.done = 1;
	memset(&A.info, 0, sizeof(A.info));
	if (ioctl(fr[A.r].fd, COWSNAP_IOC_INFO, &A.info))
		return errno;
	A.done = 2;
	if (A.id && ioctl(fr[A.r].fd, COWSNAP_IOC_SNAP_DELETE, &del))
		return errno;
	A.done = 3;
	return 0;
}

static void apply_list(int err)
{
	if (A.done >= 1)
		fi_check_list(A.r, fi_ent, A.list.count, A.list.next_id,
			      fi_ctx);
	if (A.done >= 2)
		fi_check_info(A.r, &A.info, fi_ctx);
	if (A.done == 3 && A.id)
		fi_model_unlist(fi_snap(A.r, A.id));
}

/* Read /proc/cowsnap (what `cowsnap list` does). */
static int act_proc(void)
{
	int fd = open("/proc/cowsnap", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	A.off = 0;
	if (fd < 0)
		return errno;
	while ((n = read(fd, fi_out + A.off, sizeof(fi_out) - 1 - A.off)) > 0)
		A.off += n;
	if (n < 0) {
		n = errno;
		close(fd);
		return n;
	}
	close(fd);
	fi_out[A.off] = 0;
	return 0;
}

static void apply_proc(int err)
{
	/* A read that succeeded is complete and exact (fi_verify compares). */
	if (!err) {
		fi_check_proc(fi_out, fi_ctx);
		fi_p_read = fi_p;
		fi_have_read = 1;
	}
}

/*
 * The CLI's dump of fi-a (no @SNAP): open a handle, attach, snapshot,
 * open the snapshot, read all of it, close it, delete the snapshot.
 */
static int act_dump(void)
{
	struct cowsnap_snap_create sc = { .label = "" };
	struct cowsnap_snap_open so = { .flags = COWSNAP_OPEN_CLOEXEC };
	struct cowsnap_snap_id del = { 0 };
	ssize_t n;

	A.fd = open(COWSNAP_DEV, O_RDWR | O_CLOEXEC);
	if (A.fd < 0)
		return errno;
	if (cs_attach(A.fd, fi_names[FI_A]))
		return errno;
	if (ioctl(A.fd, COWSNAP_IOC_SNAP_CREATE, &sc))
		return errno;
	A.got = so.id = sc.id;
	A.sfd = ioctl(A.fd, COWSNAP_IOC_SNAP_OPEN, &so);
	if (A.sfd < 0)
		return errno;
	for (A.off = 0; A.off < FI_SZ; A.off += n) {
		n = pread(A.sfd, fi_out + A.off, FI_SZ - A.off, A.off);
		if (n < 0)
			return errno;
		if (!n)
			return EIO;
	}
	A.eof = 1;
	close(A.sfd);
	A.sfd = -1;
	del.id = A.got;
	if (ioctl(A.fd, COWSNAP_IOC_SNAP_DELETE, &del))
		return errno;
	A.got = 0;
	close(A.fd);
	A.fd = -1;
	return 0;
}

static void prep_dump(void)
{
	A.fd = A.sfd = -1;
}

/* The state a dump leaves when SNAP_CREATE said EFAULT after the fact. */
static void ref_dump_leftover(void)
{
	fi_snapshot(FI_A);
}

static void apply_dump(int err)
{
	if (A.eof)	/* the dump holds the live view of that moment */
		fi_check_data(fi_out, fr[FI_A].live.pg, "dump", fi_ctx);
	if (A.sfd >= 0)
		close(A.sfd);
	if (A.got) {
		/* The CLI deletes the snapshot it took, if it knows its id. */
		ASSERT_EQ(cs_snap_delete(A.fd, A.got), 0);
		fr[FI_A].next_id++;
	} else if (err == EFAULT && A.fd >= 0 && fi_snap_committed(FI_A)) {
		/* SNAP_CREATE said EFAULT after making it: it stays. */
		fi_committed++;
		fi_model_snap(FI_A);
	} else if (!err) {
		fr[FI_A].next_id++;
	}
	if (A.fd >= 0)
		close(A.fd);
}

/* ---- the walk ---- */

/*
 * The walk's modes: fail only the n-th injection point, or (fi_tail) the
 * n-th and, through make-it-fail at 100%, every allocation after it (an
 * xarray node allocation is retried after a first failure, a kvmalloc()
 * falls back to vmalloc: only this reaches what comes after).  Usercopy
 * stays at 0% then, or the task could not even switch it off again.
 */
static int fi_tail;

static void fi_start(unsigned int n)
{
	if (fi_tail) {
		fi_storm_on = 1;	/* the SIGBUS handler switches it off */
		fi_mif(1);
	}
	fi_arm(n);
}

static int fi_stop(unsigned int *left)
{
	int fired = fi_disarm(left);

	if (fi_tail) {
		fi_mif(0);
		fi_storm_on = 0;
	}
	return fired;
}

/* A walk's act() in a second thread, which arms its own fail-nth. */
static struct {
	const struct fi_op *op;
	unsigned int n, left;
	int err, fired;
	pid_t tid;
} fi_thr;

/* Its stack: in .bss, so mlockall() has made it present. */
static char fi_tstack[256 << 10] __attribute__((aligned(PG)));

static void *fi_thread_main(void *arg)
{
	int fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	int mfd = open("/proc/thread-self/make-it-fail", O_RDWR | O_CLOEXEC);
	int main_fd = fi_nth_fd, main_mfd = fi_mif_fd;
	volatile int err = 0;
	sigjmp_buf jb;

	ASSERT_GE(fd, 0);
	ASSERT_GE(mfd, 0);
	fi_thr.tid = syscall(SYS_gettid);
	fi_nth_fd = fd;		/* the main thread only waits meanwhile */
	fi_mif_fd = mfd;
	fi_jbp = &jb;
	if (sigsetjmp(jb, 1)) {
		err = FI_SIGBUS;
	} else {
		fi_start(fi_thr.n);
		err = fi_thr.op->act();
	}
	fi_thr.fired = fi_stop(&fi_thr.left);
	fi_thr.err = err;
	fi_jbp = &fi_jb;
	fi_nth_fd = main_fd;
	fi_mif_fd = main_mfd;
	close(fd);
	close(mfd);
	return NULL;
}

static int fi_act_thread(const struct fi_op *op, unsigned int n, int *fired,
			 unsigned int *left)
{
	pthread_attr_t at;
	pthread_t t;

	fi_thr.op = op;
	fi_thr.n = n;
	fi_bus_tid = 0;
	ASSERT_EQ(pthread_attr_init(&at), 0);
	ASSERT_EQ(pthread_attr_setstack(&at, fi_tstack, sizeof(fi_tstack)), 0);
	ASSERT_EQ(pthread_create(&t, &at, fi_thread_main, NULL), 0);
	ASSERT_EQ(pthread_join(t, NULL), 0);
	pthread_attr_destroy(&at);
	if (fi_thr.err == FI_SIGBUS && fi_bus_tid != fi_thr.tid)
		FI_FAIL("SIGBUS reached thread %d, the store was in %d",
			(int)fi_bus_tid, (int)fi_thr.tid);
	if (fi_thr.err != FI_SIGBUS && fi_bus_tid)
		FI_FAIL("a SIGBUS reached thread %d without a failed store",
			(int)fi_bus_tid);
	*fired = fi_thr.fired;
	*left = fi_thr.left;
	return fi_thr.err;
}

/* Run @op->act with the @n-th injection point failing. */
static int fi_act(const struct fi_op *op, unsigned int n, int *fired,
		  unsigned int *left)
{
	volatile int err = 0;

	if (op->thread)
		return fi_act_thread(op, n, fired, left);
	if (sigsetjmp(fi_jb, 1)) {
		err = FI_SIGBUS;
	} else {
		fi_start(n);
		err = op->act();
	}
	*fired = fi_stop(left);
	return err;
}

static void fi_judge(const char *ctx, int err, int fired)
{
	if (err && !fired)
		FAIL("%s: %s with no fault injected", ctx, fi_strerr(err));
	if (err && err != ENOMEM && err != EFAULT && err != FI_SIGBUS &&
	    err != FI_SHORT)
		FAIL("%s: unclean failure: %s", ctx, fi_strerr(err));
}

/*
 * For n = 1, 2, ...: build the start state, run the operation with the
 * n-th injection point failing, check everything, tear down and check
 * that every page is freed; until it completes without reaching point n.
 * Slab refills and KASAN's stack depot allocate pages now and then, which
 * shifts the numbering between runs and could skip a point: single
 * failures walk slab and page points apart (slab points then come in the
 * same order every time); the tail mode counts them all.
 */
enum { FI_W_SLAB, FI_W_PAGE, FI_W_TAIL };

/*
 * The states the operation leaves without a failure when cut after 0, 1,
 * 2, ... of its steps (and @op->extra_ref's), as references.
 */
static void fi_references(const struct fi_op *op)
{
	unsigned int lim;
	int err;

	fi_nrefs = 0;
	for (lim = 0; ; lim++) {
		snprintf(fi_ctx, sizeof(fi_ctx), "%s, failure-free, %u steps",
			 op->name, lim);
		fi_reset(1);
		memset(&A, 0, sizeof(A));
		if (op->setup)
			op->setup();
		if (op->prep)
			op->prep();
		fi_cut = 0;
		if (lim) {
			fi_limit = lim;
			err = op->act();
			fi_limit = ~0U;
			if (err)
				FAIL("%s: %s", fi_ctx, fi_strerr(err));
			op->apply(0);
		}
		fi_verify(fi_ctx);
		fi_ref_add();
		if (lim && !fi_cut)
			break;
	}
	if (op->extra_ref) {
		snprintf(fi_ctx, sizeof(fi_ctx), "%s, failure-free, other",
			 op->name);
		fi_reset(1);
		memset(&A, 0, sizeof(A));
		op->setup();
		op->extra_ref();
		fi_verify(fi_ctx);
		fi_ref_add();
	}
}

static void fi_walk(const struct fi_op *op, int how)
{
	static const char *const modes[] = {
		" (slab, usercopy)", " (page, usercopy)", " and all after",
	};
	unsigned int n, left = 0, failed = 0, absorbed = 0;
	const char *mode = modes[how];
	char *ctx = fi_ctx;
	int err, fired = 1;

	fi_references(op);
	fi_tail = how == FI_W_TAIL;
	fi_committed = 0;
	if (how == FI_W_SLAB)
		fi_config(0, 0, FI_SLAB);
	else if (how == FI_W_PAGE)
		fi_config(0, 0, FI_PAGE);
	else
		fi_config(100, 0, FI_ALL);
	for (n = 1; n <= FI_MAX_N && fired; n++) {
		snprintf(ctx, sizeof(fi_ctx), "%s, fail-nth %u%s", op->name, n,
			 mode);
		fi_reset(1);
		memset(&A, 0, sizeof(A));
		if (op->setup)
			op->setup();
		if (op->prep)
			op->prep();
		err = fi_act(op, n, &fired, &left);
		fi_judge(ctx, err, fired);
		op->apply(err);
		fi_verify(ctx);
		fi_ref_check(ctx);
		if (fired)
			err ? failed++ : absorbed++;
	}
	if (fired)
		FAIL("%s: still failing at fail-nth %u", op->name, n - 1);
	fi_tail = 0;
	fi_config(0, 0, FI_ALL);
	fi_reset(1);
	fprintf(stderr, "fi: %s%s: %u injection points; %u failed cleanly, "
		"%u absorbed, %u EFAULT after the change\n", op->name, mode,
		n - 1 - left, failed, absorbed, fi_committed);
}

/* ---- the fixture ---- */

FIXTURE(fi) {
	int unused;
};

FIXTURE_SETUP(fi)
{
	struct sigaction sa;

	if (access(FI_DBG "/failslab", F_OK))
		SKIP("no %s/failslab: the kernel lacks CONFIG_FAULT_INJECTION "
		     "(the dbg kernel has it)", FI_DBG);
	if (!mod_loaded())
		ASSERT_EQ(mod_load(""), 0);
	if (proc_counter("regions") || proc_counter("pages_allocated"))
		FAIL("regions or pages left by an earlier program");
	fi_config(0, 0, FI_ALL);
	fi_nth_fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	ASSERT_GE(fi_nth_fd, 0);
	fi_mif_fd = open("/proc/thread-self/make-it-fail", O_RDWR | O_CLOEXEC);
	ASSERT_GE(fi_mif_fd, 0);
	fi_kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fi_kmsg >= 0)
		lseek(fi_kmsg, 0, SEEK_END);
	fi_oom0 = fi_vmstat("oom_kill");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fi_sigbus;	/* no SA_SIGINFO: no siginfo copy-out */
	ASSERT_EQ(sigaction(SIGBUS, &sa, NULL), 0);
	memset(fi_buf, 0, sizeof(fi_buf));
	memset(fi_out, 0, sizeof(fi_out));
	memset(fi_ext, 0, sizeof(fi_ext));
	memset(fi_ent, 0, sizeof(fi_ent));
	fi_prefault_stack();
	ASSERT_EQ(mlockall(MCL_CURRENT), 0);
	memset(fr, 0, sizeof(fr));
}

FIXTURE_TEARDOWN(fi)
{
	unsigned int left;

	/* Stop random failures first: the rest must not fail, nor others. */
	fi_storm_on = 0;
	if (fi_mif_fd >= 0)
		fi_mif(0);
	fi_config_restore();
	if (fi_nth_fd >= 0)
		fi_disarm(&left);
	fi_reset(0);
	munlockall();
}

/* Two tests per operation: fi_NAME and fi_NAME_and_all_after. */
#define FI_WALK2(tname, setup_fn, prep_fn, act_fn, apply_fn, extra)	\
	static const struct fi_op fi_op_##tname = {			\
		.name = #tname, .setup = setup_fn, .prep = prep_fn,	\
		.act = act_fn, .apply = apply_fn, .extra_ref = extra,	\
	};								\
	TEST_F(fi, tname)						\
	{								\
		fi_walk(&fi_op_##tname, FI_W_SLAB);			\
		fi_walk(&fi_op_##tname, FI_W_PAGE);			\
	}								\
	TEST_F(fi, tname##_and_all_after)				\
	{								\
		fi_walk(&fi_op_##tname, FI_W_TAIL);			\
	}
#define FI_WALK(tname, setup_fn, prep_fn, act_fn, apply_fn)		\
	FI_WALK2(tname, setup_fn, prep_fn, act_fn, apply_fn, NULL)

FI_WALK(region_create, NULL, prep_create, act_create, apply_create)
FI_WALK(snapshot, fi_setup_base, prep_snap, act_snap, apply_snap)
FI_WALK(snapshot_pinned_page, fi_setup_pinned, prep_snap_pinned, act_snap,
	apply_snap_pinned)
FI_WALK(restore_base, fi_setup_base, prep_restore_base, act_restore,
	apply_restore)
FI_WALK(restore_walk_erase, fi_setup_base, prep_restore_old, act_restore,
	apply_restore)
FI_WALK(restore_walk_fill, fi_setup_restored, prep_restore_base, act_restore,
	apply_restore)
FI_WALK(clone, fi_setup_base, prep_restore_base, act_clone, apply_clone)
FI_WALK(store_faults_sigbus, fi_setup_base, prep_faults, act_stores,
	apply_stores)

/* The same stores by a second thread: the SIGBUS is that thread's. */
static const struct fi_op fi_op_thread = {
	.name = "store_faults_sigbus_thread", .setup = fi_setup_base,
	.prep = prep_faults, .act = act_stores, .apply = apply_stores,
	.thread = 1,
};

TEST_F(fi, store_faults_sigbus_thread)
{
	fi_walk(&fi_op_thread, FI_W_SLAB);
	fi_walk(&fi_op_thread, FI_W_PAGE);
}

TEST_F(fi, store_faults_sigbus_thread_and_all_after)
{
	fi_walk(&fi_op_thread, FI_W_TAIL);
}
FI_WALK(write_enomem, fi_setup_base, prep_writes, act_writes, apply_writes)
FI_WALK(snapshot_open_map, fi_setup_base, prep_snap_open, act_snap_open,
	apply_snap_open)
FI_WALK(diff, fi_setup_base, prep_diff, act_diff, apply_diff)
FI_WALK(list_info_delete, fi_setup_base, prep_list, act_list, apply_list)
FI_WALK(proc_read, fi_setup_base, NULL, act_proc, apply_proc)
FI_WALK2(dump, fi_setup_base, prep_dump, act_dump, apply_dump,
	 ref_dump_leftover)

/*
 * Without any failure, every operation the walks use leaves contents and
 * the design-independent counters as the model says, and INFO, SNAP_LIST
 * and /proc agreeing.  Needs no fault injection: runs everywhere.
 */
FIXTURE(fi_nofail) {
	int unused;
};

FIXTURE_SETUP(fi_nofail)
{
	if (!mod_loaded())
		ASSERT_EQ(mod_load(""), 0);
	fi_oom0 = fi_vmstat("oom_kill");
}

/* Regions outlive the process: a failed test must not leave fi-a. */
FIXTURE_TEARDOWN(fi_nofail)
{
	fi_reset(0);
}

TEST_F(fi_nofail, every_operation_agrees_with_the_model)
{
	static const struct fi_op *const ops[] = {
		&fi_op_region_create, &fi_op_snapshot,
		&fi_op_snapshot_pinned_page, &fi_op_restore_base,
		&fi_op_restore_walk_erase, &fi_op_restore_walk_fill,
		&fi_op_clone, &fi_op_store_faults_sigbus, &fi_op_write_enomem,
		&fi_op_snapshot_open_map, &fi_op_diff, &fi_op_list_info_delete,
		&fi_op_proc_read, &fi_op_dump,
	};
	unsigned int i;
	int err;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		snprintf(fi_ctx, sizeof(fi_ctx), "%s, no failure", ops[i]->name);
		fi_reset(1);
		memset(&A, 0, sizeof(A));
		if (ops[i]->setup)
			ops[i]->setup();
		fi_verify(fi_ctx);
		if (ops[i]->prep)
			ops[i]->prep();
		err = ops[i]->act();
		if (err)
			FAIL("%s: %s", fi_ctx, fi_strerr(err));
		ops[i]->apply(0);
		fi_verify(fi_ctx);
	}
	fi_reset(1);
}

/* ---- random failures over a long run ---- */

static const struct fi_op fi_storm_ops[] = {
	{ .name = "store", .act = act_stores, .apply = apply_stores },
	{ .name = "write", .act = act_writes, .apply = apply_writes },
	{ .name = "snapshot", .act = act_snap, .apply = apply_snap },
	{ .name = "restore", .act = act_restore, .apply = apply_restore },
	{ .name = "delete", .act = act_delete, .apply = apply_delete },
	{ .name = "clone", .act = act_clone, .apply = apply_clone },
	{ .name = "destroy", .act = act_destroy, .apply = apply_destroy },
	{ .name = "snapshot-open", .act = act_snap_open, .apply = apply_snap_open },
	{ .name = "diff", .act = act_diff, .apply = apply_diff },
	{ .name = "list", .act = act_list, .apply = apply_list },
	{ .name = "proc", .act = act_proc, .apply = apply_proc },
	{ .name = "dump", .act = act_dump, .apply = apply_dump },
};

/* A random listed snapshot id of @r, or 0. */
static uint64_t fi_any_snap(int r)
{
	uint64_t ids[FI_NSNAP];
	int s, n = 0;

	for (s = 0; s < FI_NSNAP; s++)
		if (fr[r].snap[s].listed)
			ids[n++] = fr[r].snap[s].id;
	return n ? ids[random() % n] : 0;
}

static int fi_nused(int r)
{
	int s, n = 0;

	for (s = 0; s < FI_NSNAP; s++)
		n += fr[r].snap[s].used;
	return n;
}

/* Close a random held snapshot fd of fi-a (not injected). */
static void fi_storm_close_sfd(void)
{
	int s = random() % FI_NSNAP;
	struct fi_view *v = &fr[FI_A].snap[s];

	if (!v->used || v->sfd < 0)
		return;
	munmap(v->smap, FI_SZ);
	close(v->sfd);
	v->sfd = -1;
	v->smap = NULL;
	if (!v->listed)
		v->used = 0;
}

/* Pick an operation that makes sense now and set its arguments. */
static const struct fi_op *fi_storm_pick(void)
{
	unsigned int k, nops = sizeof(fi_storm_ops) / sizeof(fi_storm_ops[0]);
	const struct fi_op *op;

	for (;;) {
		memset(&A, 0, sizeof(A));
		A.fd = A.sfd = -1;
		op = &fi_storm_ops[random() % nops];
		A.r = fr[FI_CLONE].used && random() % 3 == 0 ? FI_CLONE : FI_A;
		A.id = fi_any_snap(A.r);
		if (op->act == act_stores || op->act == act_writes) {
			A.n = 1 + random() % 3;
			for (k = 0; k < A.n; k++) {
				A.len[k] = op->act == act_writes ?
					   1 + random() % 2 : 0;
				A.idx[k] = random() % (FI_NP - 1);
			}
			prep_data();
			if (op->act == act_stores)
				for (k = 0; k < A.n; k++)
					A.len[k] = 0;
		} else if (op->act == act_snap) {
			if (fi_nused(A.r) >= 8)
				continue;
		} else if (op->act == act_restore || op->act == act_delete) {
			if (!A.id)
				continue;
		} else if (op->act == act_clone) {
			if (fr[FI_CLONE].used || !A.id || A.r != FI_A)
				continue;
		} else if (op->act == act_destroy) {
			if (!fr[FI_CLONE].used)
				continue;
			A.r = FI_CLONE;
		} else if (op->act == act_snap_open) {
			A.r = FI_A;
			A.id = fi_any_snap(FI_A);
			if (!A.id)
				continue;
		} else if (op->act == act_diff) {
			A.n = 1;
			A.pairs[0][0] = random() % 2 ? A.id : 0;
			A.pairs[0][1] = fi_any_snap(A.r);
		} else if (op->act == act_list) {
			if (random() % 2)
				A.id = 0;
		}
		return op;
	}
}

/* Run @op->act with make-it-fail set: random failures at FI_STORM_PCT. */
static int fi_storm_act(const struct fi_op *op)
{
	/* A store's SIGBUS frame copy-out may fail: no usercopy faults then. */
	int store = op->act == act_stores;
	char pct[16];
	volatile int err = 0;

	snprintf(pct, sizeof(pct), "%d", FI_STORM_PCT);
	if (store && !access(FI_DBG "/fail_usercopy", F_OK))
		fi_set("fail_usercopy", "probability", "0");
	if (sigsetjmp(fi_jb, 1)) {
		err = FI_SIGBUS;
	} else {
		fi_storm_on = 1;
		fi_mif(1);
		err = op->act();
		fi_mif(0);
	}
	fi_storm_on = 0;
	if (store && !access(FI_DBG "/fail_usercopy", F_OK))
		fi_set("fail_usercopy", "probability", pct);
	return err;
}

TEST_F(fi, random_storm)
{
	const char *env = getenv("COWSNAP_SEED");
	unsigned int i, seed = env ? strtoul(env, NULL, 0) : 1, failed = 0;
	const struct fi_op *op;
	int err;

	srandom(seed);
	fi_reset(1);
	fi_setup_base();
	fi_verify("storm setup");
	fi_config(FI_STORM_PCT, FI_STORM_PCT, FI_ALL);
	for (i = 0; i < FI_STORM_OPS; i++) {
		if (random() % 8 == 0)
			fi_storm_close_sfd();
		op = fi_storm_pick();
		snprintf(fi_ctx, sizeof(fi_ctx), "storm op %u (%s of %s, seed "
			 "%u)", i, op->name, fi_names[A.r], seed);
		err = fi_storm_act(op);
		fi_judge(fi_ctx, err, 1);
		failed += !!err;
		op->apply(err);
		fi_verify(fi_ctx);
	}
	fi_config(0, 0, FI_ALL);
	fi_reset(1);
	fprintf(stderr, "fi: random_storm: %u operations, %u failed cleanly, "
		"%u EFAULT after the change (seed %u)\n", FI_STORM_OPS, failed,
		fi_committed, seed);
}

/*
 * Last: a kmemleak scan, so that a filtered run (the guest's own scan runs
 * only without a filter) attributes a leak from an error path to these
 * walks.  It neither clears nor stops kmemleak: the guest's scan still
 * sees everything.
 */
TEST_F(fi, kmemleak_after_walks)
{
	const char *leaks = FI_DBG "/kmemleak";
	static char text[1 << 20];

	if (access(leaks, F_OK))
		SKIP("no %s", leaks);
	fi_write_file(leaks, "scan");
	sleep(6);	/* objects younger than 5 s are not reported */
	fi_write_file(leaks, "scan");
	if (th_read_file(leaks, text, sizeof(text)) < 0)
		FAIL("read %s: %s", leaks, strerror(errno));
	if (strstr(text, "cowsnap"))
		FAIL("kmemleak suspects from cowsnap:\n%.4000s", text);
}

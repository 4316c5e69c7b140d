// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmarks, run in the guest by `make bench` (scripts/guest-init.sh runs
 * every /bin/bench_* and sends stdout to the results log).  Under QEMU TCG
 * absolute times mean little, so every cowsnap number stands beside a
 * baseline measured in the same boot, and the ratio is what is judged.
 *
 *  1. point-in-time save baselines for N bytes, fully written, 4 KiB pages:
 *     fork() with MADV_NOHUGEPAGE, fork() with MADV_HUGEPAGE (THP use read
 *     back from /proc/self/smaps), UFFDIO_WRITEPROTECT of the range
 *     (registered with UFFDIO_REGISTER_MODE_WP; only the ioctl is timed),
 *     memcpy of N bytes;
 *  2. the first cowsnap snapshot of a region fully written through a
 *     mapping (measured interleaved with part 1, rep by rep);
 *  3. snapshots after k changed pages, k = 1, 64, 4096: (a) region written
 *     with pwrite() and never mapped, (b) mapped (faulted in, fully
 *     written) but changed with pwrite(), (c) changed through the mapping;
 *     time against part 2, and the kernel memory each snapshot adds (Slab
 *     of /proc/meminfo, meta_bytes of /proc/cowsnap) over 50 snapshots
 *     (400 for k = 1);
 *  4. 4096 snapshots (the max_snapshots default) of the largest region,
 *     one page changed through the mapping between each: total growth;
 *  5. a read pass (one byte per page) right after a snapshot against the
 *     same pass just before it, the mapping faulted in;
 *  6. the first store to each page after a snapshot, against the parent's
 *     anonymous CoW after fork() and a userfaultfd-WP handler thread that
 *     copies the page away and unprotects it;
 *  7. restore of 16 dirty pages (the same indexes at every size) in a fully
 *     resident region, against a 4 MiB region and memcpy of the region;
 *  8. diff of two adjacent snapshots with 64 pages changed between them,
 *     against a 4 MiB region and a page-by-page memcmp scan of the region;
 *  9. reading /proc/cowsnap, SNAP_LIST and INFO of a fully resident region
 *     against a 4 MiB one with the same snapshots and records, round by
 *     round: they must cost O(records), not O(pages);
 * 10. where the first snapshot's time goes: the ioctl split into the
 *     kernel functions it calls (ftrace function_graph, filtered to a few
 *     functions so that tracing costs next to nothing), beside the same
 *     split of UFFDIO_WRITEPROTECT and fork().  Diagnostics, no targets.
 *
 * Each part runs in its own child process (a crash or SIGBUS ends only that
 * part, reported as ERROR) and prints an aligned table.  At the end come
 * the machine-readable lines scripts/bench-report.sh parses:
 *   INFO <key> <value...>
 *   DATA <part> <kernel> <size_mib> <case> <metric> <value>
 *   TARGET <part> <kernel> <size_mib> <check> <measured> <op> <limit> <PASS|MISS|N/A>
 *   NOTE <part> <kernel> <size_mib> <case> <text...>
 *   ERROR <part> <kernel> <text...>
 *   KLOG <part> <kernel> <kernel log line>
 *
 * Environment (scripts/vm.sh passes them on the kernel command line):
 *   COWSNAP_BENCH_SIZES  region sizes in MiB, comma-separated (64,256,1024)
 *   COWSNAP_BENCH_PARTS  parts to run, comma-separated (1,2,...,10)
 *   COWSNAP_BENCH_REPS   repetitions of the large operations, "N" or
 *                        "N,M" with M for sizes of 1 GiB and more (5,3:
 *                        at 1 GiB a rep of parts 1 and 6 costs minutes of
 *                        TCG time, and `make bench` must fit ~25 minutes)
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <linux/userfaultfd.h>
#include "util.h"

#define MIB (1024UL * 1024)
#define MAX_SIZES 8
#define REF_MIB 4		/* the small region parts 7 and 8 compare with */

/* Part 3 */
#define INC_SNAPS 50
/*
 * One page per snapshot adds a few hundred bytes, below what Slab of
 * /proc/meminfo (in KiB, slab pages) resolves over 50 snapshots.
 */
#define INC_SNAPS_K1 400
static const unsigned int inc_k[] = { 1, 64, 4096 };
/* Part 4 */
#define MANY_SNAPS 4096
/* Part 7 */
#define RESTORE_ROUNDS 300
#define RESTORE_DIRTY 16
/* Part 8 */
#define DIFF_ROUNDS 100
#define DIFF_CHANGED 64
/* Part 9 */
#define LIST_SNAPS 16
#define LIST_CHANGED 64
#define LIST_ROUNDS 300
/* Part 10 */
#define TRACEFS "/sys/kernel/tracing"
#define NPARTS 10

/* Targets (the issue tracker's). */
#define T_SNAP_VS_UFFD 1.5	/* cowsnap first snapshot / UFFDIO_WRITEPROTECT <= */
#define T_FORK_VS_SNAP 2.0	/* fork 4K / cowsnap first snapshot >= */
#define T_INC_VS_FIRST 0.2	/* k=64 snapshot / first snapshot <=, (a) (b), 256 MiB */
#define T_INC_BYTES 0.25	/* slab bytes per snapshot per resident page <=, k=64, 256 MiB */
#define T_MANY_MIB 64.0		/* growth over 4096 snapshots <= (MiB) */
#define T_READ 1.05		/* read pass after / before <= */
#define T_COW_VS_FORK 1.25	/* cowsnap first write / anonymous CoW <= */
#define T_UFFD_VS_COW 5.0	/* uffd handler / cowsnap first write >= */
#define T_FLAT 1.25		/* restore, diff, /proc: size / 4 MiB <= ("flat") */
#define INC_TARGET_MIB 256

static char kver[128];
static size_t sizes[MAX_SIZES];	/* bytes */
static int nsizes;
static int reps = 5;
static int reps_large = 3;	/* at LARGE_MIB and above */
#define LARGE_MIB 1024
static bool part_on[NPARTS + 1];
static int cur_part;
static char phase[160];		/* what a part is doing, for crash reports */
static const char *data_path = "/tmp/bench-data";
static volatile uint64_t sink;

/* ---- utilities ---- */

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Repetitions of the large operations at @size. */
static int reps_at(size_t size)
{
	return size >= LARGE_MIB * MIB && reps_large < reps ? reps_large : reps;
}

/* "5" or "5 (3 at >= 1024 MiB)", for table titles. */
static const char *reps_desc(void)
{
	static char buf[64];

	if (reps_large < reps)
		snprintf(buf, sizeof(buf), "%d (%d at >= %d MiB)", reps,
			 reps_large, LARGE_MIB);
	else
		snprintf(buf, sizeof(buf), "%d", reps);
	return buf;
}

/*
 * Seconds a part spent creating, filling and releasing regions and
 * anonymous memory: not measured, but most of the run time, so printed
 * with each part's time to show where a run's minutes go.
 */
static double setup_us;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct stat5 {
	double med, q1, q3, min, max;
};

/* Median and quartiles of @n values (NaNs, for failed runs, excluded). */
static struct stat5 stats(const double *v, int n)
{
	struct stat5 s = { NAN, NAN, NAN, NAN, NAN };
	double *c = malloc(sizeof(*c) * (n ? n : 1));
	int i, m = 0;

	for (i = 0; i < n; i++)
		if (!isnan(v[i]))
			c[m++] = v[i];
	if (m) {
		qsort(c, m, sizeof(*c), cmp_double);
		s.med = m % 2 ? c[m / 2] : (c[m / 2 - 1] + c[m / 2]) / 2;
		s.q1 = c[m / 4];
		s.q3 = c[(3 * m) / 4 < m ? (3 * m) / 4 : m - 1];
		s.min = c[0];
		s.max = c[m - 1];
	}
	free(c);
	return s;
}

/* Interquartile spread as a percentage of the median. */
static double spread_pct(struct stat5 s)
{
	return s.med > 0 ? 100 * (s.q3 - s.q1) / s.med : NAN;
}

/* Append one machine-readable line to the data file. */
static void rec(const char *fmt, ...)
{
	FILE *f = fopen(data_path, "a");
	va_list ap;

	if (!f)
		return;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

static void data(int part, size_t mib, const char *cas, const char *metric,
		 double v)
{
	rec("DATA %d %s %zu %s %s %.6g", part, kver, mib, cas, metric, v);
}

/* Look a DATA value up (from an earlier part); NAN if absent. */
static double data_get(int part, size_t mib, const char *cas,
		       const char *metric)
{
	FILE *f = fopen(data_path, "r");
	char line[512], c[64], m[64];
	double v, ret = NAN;
	size_t s;
	int p;

	if (!f)
		return NAN;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "DATA %d %*s %zu %63s %63s %lf", &p, &s, c, m,
			   &v) == 5 && p == part && s == mib &&
		    !strcmp(c, cas) && !strcmp(m, metric))
			ret = v;
	fclose(f);
	return ret;
}

/* Record a target check; returns "PASS", "MISS" or "N/A" for the table. */
static const char *check(int part, size_t mib, const char *name, double v,
			 const char *op, double limit)
{
	const char *verdict;

	if (isnan(v))
		verdict = "N/A";
	else if (op[0] == '<')
		verdict = v <= limit ? "PASS" : "MISS";
	else
		verdict = v >= limit ? "PASS" : "MISS";
	rec("TARGET %d %s %zu %s %.4g %s %g %s", part, kver, mib, name, v, op,
	    limit, verdict);
	return verdict;
}

static void note(int part, size_t mib, const char *cas, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	rec("NOTE %d %s %zu %s %s", part, kver, mib, cas, buf);
	printf("note: %s\n", buf);
}

/* A part failed: say why, record it, end the part's process. */
static void __attribute__((noreturn, format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	char buf[256];
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("ERROR part %d: %s: %s (during: %s)\n", cur_part, buf,
	       strerror(e), phase);
	rec("ERROR %d %s %s: %s (during: %s)", cur_part, kver, buf,
	    strerror(e), phase);
	fflush(stdout);
	_exit(1);
}

static void on_fatal_signal(int sig, siginfo_t *si, void *ctx)
{
	char buf[320];
	int n;

	n = snprintf(buf, sizeof(buf),
		     "ERROR %d %s %s at %p (during: %s)\n", cur_part, kver,
		     sig == SIGBUS ? "SIGBUS" : strsignal(sig), si->si_addr,
		     phase);
	/* Not async-signal-safe in theory; the process ends here anyway. */
	{
		FILE *f = fopen(data_path, "a");

		if (f) {
			fputs(buf, f);
			fclose(f);
		}
	}
	if (write(1, buf, n) < 0)
		_exit(3);
	_exit(2);
}

#define PHASE(...) snprintf(phase, sizeof(phase), __VA_ARGS__)

static long long meminfo_kb(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	size_t n = strlen(key);
	char line[256];
	long long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			v = atoll(line + n + 1);
			break;
		}
	fclose(f);
	return v;
}

/* Field @key (kB) of the VMA holding @addr in /proc/self/smaps, or -1. */
static long long smaps_kb(const void *addr, const char *key)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	unsigned long a = (unsigned long)addr, s, e;
	size_t n = strlen(key);
	char line[512];
	long long v = -1;
	bool in = false;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			in = s <= a && a < e;
			continue;
		}
		if (in && !strncmp(line, key, n) && line[n] == ':') {
			v = atoll(line + n + 1);
			break;
		}
	}
	fclose(f);
	return v;
}

static void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	buf[0] = 0;
	if (f) {
		if (!fgets(buf, len, f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
}

/* The bracketed choice of a sysfs setting such as "always [madvise] never". */
static void sysfs_choice(const char *path, char *buf, size_t len)
{
	char line[256], *a, *b;

	read_line(path, line, sizeof(line));
	a = strchr(line, '[');
	b = a ? strchr(a, ']') : NULL;
	if (a && b) {
		*b = 0;
		snprintf(buf, len, "%s", a + 1);
	} else {
		snprintf(buf, len, "%.63s", line[0] ? line : "unknown");
	}
}

/* memset() that counts as setup. */
static void fill(void *p, int val, size_t len)
{
	double t0 = now_us();

	memset(p, val, len);
	setup_us += now_us() - t0;
}

/* munmap() that counts as setup. */
static void unmap(void *p, size_t len)
{
	double t0 = now_us();

	munmap(p, len);
	setup_us += now_us() - t0;
}

static char *anon_map(size_t size, int advice)
{
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		fail("mmap %zu MiB anonymous", size / MIB);
	if (advice >= 0 && madvise(p, size, advice))
		fail("madvise %d", advice);
	return p;
}

/* Anonymous memory aligned to 2 MiB, so that THP can back all of it. */
static char *anon_map_thp(size_t size)
{
	const size_t huge = 2 * MIB;
	char *raw = mmap(NULL, size + huge, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;
	char *p;

	if (raw == MAP_FAILED)
		fail("mmap %zu MiB anonymous", size / MIB);
	a = ((uintptr_t)raw + huge - 1) & ~(huge - 1);
	p = (char *)a;
	if (p > raw)
		munmap(raw, p - raw);
	if (p + size < raw + size + huge)
		munmap(p + size, raw + size + huge - (p + size));
	if (madvise(p, size, MADV_HUGEPAGE))
		fail("madvise MADV_HUGEPAGE");
	return p;
}

/* One byte read from every page; nothing written. */
static double read_pass(const char *p, size_t size)
{
	const volatile char *v = p;
	uint64_t sum = 0;
	double t0 = now_us();
	size_t off;

	for (off = 0; off < size; off += PG)
		sum += v[off];
	sink += sum;
	return now_us() - t0;
}

/* One byte stored to every page. */
static void store_pass(char *p, size_t size, char val)
{
	volatile char *v = p;
	size_t off;

	for (off = 0; off < size; off += PG)
		v[off] = val;
}

/* k distinct pages spread over the region; @round shifts them. */
static size_t change_idx(size_t npages, unsigned int k, unsigned int j,
			 unsigned int round)
{
	size_t stride = npages / k;

	return (j * stride + (round * 7919UL) % (stride ? stride : 1)) %
	       npages;
}

/* ---- cowsnap regions ---- */

struct reg {
	int fd;
	char *p;
	size_t size;
	char name[32];
};

static void reg_create(struct reg *r, const char *name, size_t size,
		       bool map)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->size = size;
	r->fd = cs_region(name, size);
	if (r->fd < 0)
		fail("create region %s of %zu MiB", name, size / MIB);
	if (map) {
		r->p = cs_map(r->fd, size);
		if (!r->p)
			fail("mmap region %s", name);
	}
}

static void reg_fill_map(struct reg *r, int val)
{
	fill(r->p, val, r->size);
}

static void reg_fill_pwrite(struct reg *r, int val)
{
	size_t chunk = MIB, off;
	char *buf = malloc(chunk);
	double t0 = now_us();

	if (!buf)
		fail("malloc");
	memset(buf, val, chunk);
	for (off = 0; off < r->size; off += chunk)
		if (pwrite(r->fd, buf, chunk, off) != (ssize_t)chunk)
			fail("pwrite region at %zu", off);
	free(buf);
	setup_us += now_us() - t0;
}

static void reg_destroy(struct reg *r)
{
	double t0 = now_us();

	if (cs_destroy(r->fd, r->name))
		fail("destroy region %s", r->name);
	if (r->p)
		munmap(r->p, r->size);
	close(r->fd);
	r->fd = -1;
	r->p = NULL;
	setup_us += now_us() - t0;
}

static uint64_t snap(struct reg *r)
{
	uint64_t id = cs_snap(r->fd, NULL);

	if (!id)
		fail("snapshot of %s", r->name);
	return id;
}

static double timed_snap(struct reg *r, uint64_t *id)
{
	double t0 = now_us();
	uint64_t i = snap(r);

	if (id)
		*id = i;
	return now_us() - t0;
}

static long long resident_pages(struct reg *r)
{
	struct cowsnap_info info;

	if (cs_info(r->fd, &info))
		fail("info of %s", r->name);
	return info.resident_pages;
}

static long long proc_counter_or_fail(const char *name)
{
	long long v = proc_counter(name);

	if (v < 0)
		fail("/proc/cowsnap has no %s", name);
	return v;
}

/* ---- part 1 and 2: point-in-time save ---- */

/* fork() of @size bytes of fully written anonymous memory. */
static double save_fork(size_t size, bool thp, double *thp_pct)
{
	char *p = thp ? anon_map_thp(size) : anon_map(size, MADV_NOHUGEPAGE);
	int pf[2];
	double t0, t;
	pid_t pid;

	fill(p, 0x5a, size);
	if (thp_pct) {
		long long kb = smaps_kb(p, "AnonHugePages");

		*thp_pct = kb < 0 ? NAN : 100.0 * kb * 1024 / size;
	}
	if (pipe(pf))
		fail("pipe");
	t0 = now_us();
	pid = fork();
	if (!pid) {
		char c;

		close(pf[1]);
		/* Stay alive, sharing everything, until the parent is done. */
		if (read(pf[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	t = now_us() - t0;
	if (pid < 0)
		fail("fork");
	close(pf[0]);
	close(pf[1]);
	waitpid(pid, NULL, 0);
	unmap(p, size);
	return t;
}

/*
 * A userfaultfd registered for write-protect faults on [@p, @p + @size);
 * -1 with @why filled when the kernel cannot.
 */
static int uffd_wp_open(char *p, size_t size, int flags, char *why,
			size_t whylen)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)p, .len = size },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC | flags);

	if (uffd < 0) {
		snprintf(why, whylen, "userfaultfd(): %s", strerror(errno));
		return -1;
	}
	if (ioctl(uffd, UFFDIO_API, &api)) {
		snprintf(why, whylen, "UFFDIO_API: %s", strerror(errno));
		goto out;
	}
	if (!(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
		snprintf(why, whylen,
			 "UFFDIO_API: no UFFD_FEATURE_PAGEFAULT_FLAG_WP (features %#llx)",
			 (unsigned long long)api.features);
		goto out;
	}
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		snprintf(why, whylen, "UFFDIO_REGISTER_MODE_WP: %s",
			 strerror(errno));
		goto out;
	}
	if (!(reg.ioctls & (1ULL << _UFFDIO_WRITEPROTECT))) {
		snprintf(why, whylen,
			 "UFFDIO_REGISTER: UFFDIO_WRITEPROTECT not offered (ioctls %#llx)",
			 (unsigned long long)reg.ioctls);
		goto out;
	}
	return uffd;
out:
	close(uffd);
	return -1;
}

static int uffd_wp(int uffd, void *p, size_t len, bool protect)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};
	int ret;

	do
		ret = ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
	while (ret && errno == EAGAIN);
	return ret;
}

/* UFFDIO_WRITEPROTECT of @size bytes, fully written; NAN if unsupported. */
static double save_uffd(size_t size, char *why, size_t whylen)
{
	char *p = anon_map(size, MADV_NOHUGEPAGE);
	double t0, t = NAN;
	int uffd;

	fill(p, 0x5a, size);
	uffd = uffd_wp_open(p, size, O_NONBLOCK, why, whylen);
	if (uffd >= 0) {
		t0 = now_us();
		if (uffd_wp(uffd, p, size, true))
			snprintf(why, whylen, "UFFDIO_WRITEPROTECT: %s",
				 strerror(errno));
		else
			t = now_us() - t0;
		close(uffd);
	}
	unmap(p, size);
	return t;
}

static double save_memcpy(size_t size)
{
	char *src = anon_map(size, MADV_NOHUGEPAGE);
	char *dst = anon_map(size, MADV_NOHUGEPAGE);
	double t0, t;

	fill(src, 0x5a, size);
	fill(dst, 0, size);
	t0 = now_us();
	memcpy(dst, src, size);
	t = now_us() - t0;
	sink += dst[size / 2];
	unmap(src, size);
	unmap(dst, size);
	return t;
}

/* The first snapshot of a region fully written through its mapping. */
static double save_cowsnap(size_t size)
{
	struct reg r;
	double t;

	reg_create(&r, "bench", size, true);
	reg_fill_map(&r, 0x5a);
	if (resident_pages(&r) != (long long)(size / PG))
		fail("region not fully resident");
	t = timed_snap(&r, NULL);
	reg_destroy(&r);
	return t;
}

static void part_save(void)
{
	struct {
		struct stat5 fork4k, forkthp, uffd, memcpy, snap;
		double thp_pct;
		char why[160];
	} res[MAX_SIZES];
	int s, i;

	for (s = 0; s < nsizes; s++) {
		size_t size = sizes[s], mib = size / MIB;
		double f4[16], fh[16], uf[16], mc[16], sn[16], thp = 100, pct;
		int n = reps_at(size);
		char why[160] = "";

		printf("# parts 1-2: %zu MiB, %d reps\n", mib, n);
		fflush(stdout);
		/* Interleaved, rep by rep: drift hits every method alike. */
		for (i = 0; i < n; i++) {
			PHASE("part 1: fork 4K %zu MiB rep %d", mib, i);
			f4[i] = save_fork(size, false, NULL);
			PHASE("part 1: fork THP %zu MiB rep %d", mib, i);
			fh[i] = save_fork(size, true, &pct);
			if (!(pct >= thp))
				thp = pct;	/* the worst rep */
			PHASE("part 1: UFFDIO_WRITEPROTECT %zu MiB rep %d", mib, i);
			uf[i] = save_uffd(size, why, sizeof(why));
			PHASE("part 1: memcpy %zu MiB rep %d", mib, i);
			mc[i] = save_memcpy(size);
			PHASE("part 2: cowsnap first snapshot %zu MiB rep %d", mib, i);
			sn[i] = save_cowsnap(size);
		}
		res[s].fork4k = stats(f4, n);
		res[s].forkthp = stats(fh, n);
		res[s].uffd = stats(uf, n);
		res[s].memcpy = stats(mc, n);
		res[s].snap = stats(sn, n);
		res[s].thp_pct = thp;
		snprintf(res[s].why, sizeof(res[s].why), "%s", why);

		data(1, mib, "fork4k", "time_us", res[s].fork4k.med);
		data(1, mib, "fork4k", "spread_pct", spread_pct(res[s].fork4k));
		data(1, mib, "forkthp", "time_us", res[s].forkthp.med);
		data(1, mib, "forkthp", "spread_pct", spread_pct(res[s].forkthp));
		data(1, mib, "forkthp", "thp_pct", thp);
		data(1, mib, "uffdwp", "time_us", res[s].uffd.med);
		data(1, mib, "uffdwp", "spread_pct", spread_pct(res[s].uffd));
		data(1, mib, "memcpy", "time_us", res[s].memcpy.med);
		data(1, mib, "memcpy", "spread_pct", spread_pct(res[s].memcpy));
		data(2, mib, "cowsnap", "time_us", res[s].snap.med);
		data(2, mib, "cowsnap", "spread_pct", spread_pct(res[s].snap));
		data(2, mib, "cowsnap", "vs_uffdwp",
		     res[s].snap.med / res[s].uffd.med);
		data(2, mib, "cowsnap", "fork4k_speedup",
		     res[s].fork4k.med / res[s].snap.med);
		if (isnan(res[s].uffd.med))
			note(1, mib, "uffdwp", "UFFDIO_WRITEPROTECT unavailable: %s",
			     why);
		if (thp < 90)
			note(1, mib, "forkthp",
			     "THP backed only %.0f%% of the MADV_HUGEPAGE range (AnonHugePages)",
			     thp);
	}

	if (part_on[1]) {
		printf("\n== 1. point-in-time save baselines: N bytes fully written (median of %s, us; +-%% = interquartile spread) ==\n",
		       reps_desc());
		printf("%8s  %16s  %16s  %6s  %16s  %16s\n", "size_MiB",
		       "fork_4K", "fork_THP", "THP%", "UFFDIO_WP", "memcpy");
		for (s = 0; s < nsizes; s++)
			printf("%8zu  %10.0f +-%2.0f%%  %10.0f +-%2.0f%%  %6.0f  %10.0f +-%2.0f%%  %10.0f +-%2.0f%%\n",
			       sizes[s] / MIB, res[s].fork4k.med,
			       spread_pct(res[s].fork4k), res[s].forkthp.med,
			       spread_pct(res[s].forkthp), res[s].thp_pct,
			       res[s].uffd.med, spread_pct(res[s].uffd),
			       res[s].memcpy.med, spread_pct(res[s].memcpy));
		printf("(fork_4K: MADV_NOHUGEPAGE; fork_THP: MADV_HUGEPAGE, THP%% = AnonHugePages / N; UFFDIO_WP: the ioctl only)\n");
	}
	if (part_on[2]) {
		printf("\n== 2. cowsnap snapshot of a fully mapped, fully written region (first snapshot; median of %s) ==\n",
		       reps_desc());
		printf("%8s  %16s  %10s  %8s  %7s  %5s  %10s  %9s  %7s  %5s\n",
		       "size_MiB", "cowsnap_us", "uffdwp_us", "snap/wp",
		       "target", "", "fork4k_us", "fork/snap", "target",
		       "");
		for (s = 0; s < nsizes; s++) {
			size_t mib = sizes[s] / MIB;
			double r1 = res[s].snap.med / res[s].uffd.med;
			double r2 = res[s].fork4k.med / res[s].snap.med;
			const char *v1 = check(2, mib, "snap/uffdwp", r1, "<=",
					       T_SNAP_VS_UFFD);
			const char *v2 = check(2, mib, "fork4k/snap", r2, ">=",
					       T_FORK_VS_SNAP);

			printf("%8zu  %10.0f +-%2.0f%%  %10.0f  %8.2f  %7s  %5s  %10.0f  %9.2f  %7s  %5s\n",
			       mib, res[s].snap.med, spread_pct(res[s].snap),
			       res[s].uffd.med, r1, "<=1.5", v1,
			       res[s].fork4k.med, r2, ">=2", v2);
		}
	}
}

/* ---- part 3: snapshots after k changed pages ---- */

struct inc_res {
	double snap_us, max_us, first_us, vs_first;
	double slab_snap, meta_snap, pages_snap, slab_page, meta_page;
};

static void inc_change(struct reg *r, char variant, unsigned int k,
		       unsigned int round)
{
	size_t npages = r->size / PG;
	uint64_t val = round + 1;
	unsigned int j;

	for (j = 0; j < k; j++) {
		size_t idx = change_idx(npages, k, j, round);

		if (variant == 'c') {
			*(volatile uint64_t *)(r->p + idx * PG) = val;
		} else if (pwrite(r->fd, &val, sizeof(val), idx * PG) !=
			   sizeof(val)) {
			fail("pwrite page %zu", idx);
		}
	}
}

static struct inc_res inc_run(size_t size, char variant, unsigned int k)
{
	size_t mib = size / MIB, npages = size / PG;
	int nsnap = k == 1 ? INC_SNAPS_K1 : INC_SNAPS;
	double t[INC_SNAPS_K1];
	long long slab0, slab1, meta0, meta1, pg0, pg1, res;
	struct inc_res out;
	struct stat5 st;
	struct reg r;
	int i;

	PHASE("part 3 (%c) k=%u %zu MiB: populate", variant, k, mib);
	reg_create(&r, "bench", size, variant != 'a');
	if (variant == 'a')
		reg_fill_pwrite(&r, 0x5a);
	else
		reg_fill_map(&r, 0x5a);
	res = resident_pages(&r);
	if (res != (long long)npages)
		fail("region not fully resident (%lld pages)", res);
	PHASE("part 3 (%c) k=%u %zu MiB: first snapshot", variant, k, mib);
	out.first_us = timed_snap(&r, NULL);
	slab0 = meminfo_kb("Slab");
	meta0 = proc_counter_or_fail("meta_bytes");
	pg0 = proc_counter_or_fail("pages_allocated");
	for (i = 0; i < nsnap; i++) {
		PHASE("part 3 (%c) k=%u %zu MiB: snapshot %d", variant, k, mib,
		      i + 2);
		inc_change(&r, variant, k, i);
		t[i] = timed_snap(&r, NULL);
	}
	slab1 = meminfo_kb("Slab");
	meta1 = proc_counter_or_fail("meta_bytes");
	pg1 = proc_counter_or_fail("pages_allocated");
	PHASE("part 3 (%c) k=%u %zu MiB: destroy", variant, k, mib);
	reg_destroy(&r);

	st = stats(t, nsnap);
	out.snap_us = st.med;
	out.max_us = st.max;
	out.slab_snap = (slab1 - slab0) * 1024.0 / nsnap;
	out.meta_snap = (double)(meta1 - meta0) / nsnap;
	out.pages_snap = (double)(pg1 - pg0) / nsnap;
	out.slab_page = out.slab_snap / npages;
	out.meta_page = out.meta_snap / npages;
	return out;
}

static void part_incremental(void)
{
	static const char variants[] = { 'a', 'b', 'c' };
	int s, v, ki;

	printf("\n== 3. snapshot after k changed pages (median of %d snapshots, %d for k=1, k pages changed before each) ==\n",
	       INC_SNAPS, INC_SNAPS_K1);
	printf("(a) written with pwrite, never mapped; (b) mapped and faulted in, changed with pwrite; (c) changed through the mapping\n");
	printf("vs_first = snapshot / the first snapshot of a fully written mapped region (part 2); memory per snapshot over all of them\n");
	printf("%8s %3s %5s  %9s %9s %9s %8s %6s %5s  %10s %9s %10s %9s %6s %5s %8s\n",
	       "size_MiB", "var", "k", "snap_us", "max_us", "own_first", "vs_first",
	       "target", "", "slab_B/snp", "slab_B/pg", "meta_B/snp",
	       "meta_B/pg", "target", "", "pages/snp");
	for (s = 0; s < nsizes; s++) {
		size_t size = sizes[s], mib = size / MIB;
		double first = data_get(2, mib, "cowsnap", "time_us");

		printf("# part 3: %zu MiB\n", mib);
		fflush(stdout);
		if (isnan(first)) {
			/* Part 2 did not run: measure its snapshot here. */
			double f[16];
			int i, n = reps_at(size);

			for (i = 0; i < n; i++) {
				PHASE("part 3: first snapshot %zu MiB rep %d",
				      mib, i);
				f[i] = save_cowsnap(size);
			}
			first = stats(f, n).med;
			data(3, mib, "first", "snap_us", first);
		}
		for (v = 0; v < 3; v++) {
			for (ki = 0; ki < 3; ki++) {
				unsigned int k = inc_k[ki];
				struct inc_res o = inc_run(size, variants[v], k);
				bool targeted = k == 64 && mib == INC_TARGET_MIB;
				char cas[32], name[48];
				const char *v1 = "", *v2 = "";

				snprintf(cas, sizeof(cas), "%c:k=%u", variants[v], k);
				o.vs_first = o.snap_us / first;
				data(3, mib, cas, "snap_us", o.snap_us);
				data(3, mib, cas, "max_us", o.max_us);
				data(3, mib, cas, "own_first_us", o.first_us);
				data(3, mib, cas, "vs_first", o.vs_first);
				data(3, mib, cas, "slab_per_snap", o.slab_snap);
				data(3, mib, cas, "slab_per_page", o.slab_page);
				data(3, mib, cas, "meta_per_snap", o.meta_snap);
				data(3, mib, cas, "meta_per_page", o.meta_page);
				data(3, mib, cas, "pages_per_snap", o.pages_snap);
				if (targeted && variants[v] != 'c') {
					snprintf(name, sizeof(name),
						 "%c:k=64_snap/first", variants[v]);
					v1 = check(3, mib, name, o.vs_first, "<=",
						   T_INC_VS_FIRST);
				}
				if (targeted) {
					snprintf(name, sizeof(name),
						 "%c:k=64_slab_B/page", variants[v]);
					v2 = check(3, mib, name, o.slab_page, "<=",
						   T_INC_BYTES);
					snprintf(name, sizeof(name),
						 "%c:k=64_meta_B/page", variants[v]);
					check(3, mib, name, o.meta_page, "<=",
					      T_INC_BYTES);
				}
				printf("%8zu %3c %5u  %9.1f %9.1f %9.1f %8.3f %6s %5s  %10.0f %9.4f %10.0f %9.4f %6s %5s %8.1f\n",
				       mib, variants[v], k, o.snap_us, o.max_us,
				       o.first_us, o.vs_first,
				       *v1 ? "<=0.2" : "", v1, o.slab_snap,
				       o.slab_page, o.meta_snap, o.meta_page,
				       *v2 ? "<=0.25" : "", v2, o.pages_snap);
				fflush(stdout);
			}
		}
	}
	printf("(targets at k=64, %d MiB; slab = Slab of /proc/meminfo, meta = meta_bytes of /proc/cowsnap; B/pg = per resident page; pages/snp = data pages kept per snapshot)\n",
	       INC_TARGET_MIB);
}

/* ---- part 4: 4096 snapshots, one page changed between each ---- */

static void part_many(void)
{
	size_t size = 0, mib, npages;
	long long slab_pre, meta_pre, slab0, meta0, slab1, meta1, slab2, meta2;
	double *t = calloc(MANY_SNAPS, sizeof(*t)), t0, release;
	struct stat5 head, tail, all;
	const char *v1, *v2;
	int i, n = 0, extra_errno = 0;
	struct reg r;

	/* 1 GiB, or the largest size chosen. */
	for (i = 0; i < nsizes; i++)
		if (size != 1024 * MIB && (sizes[i] == 1024 * MIB ||
					   sizes[i] > size))
			size = sizes[i];
	mib = size / MIB;
	npages = size / PG;
	if (!t)
		fail("calloc");
	printf("# part 4: %zu MiB\n", mib);
	fflush(stdout);
	slab_pre = meminfo_kb("Slab");
	meta_pre = proc_counter_or_fail("meta_bytes");
	PHASE("part 4: populate %zu MiB", mib);
	reg_create(&r, "bench", size, true);
	reg_fill_map(&r, 0x5a);
	slab0 = meminfo_kb("Slab");
	meta0 = proc_counter_or_fail("meta_bytes");
	for (i = 0; i < MANY_SNAPS; i++) {
		PHASE("part 4: snapshot %d of %zu MiB", i + 1, mib);
		if (i)
			*(volatile uint64_t *)(r.p +
					       ((i * 7919UL) % npages) * PG) = i;
		t0 = now_us();
		if (!cs_snap(r.fd, NULL)) {
			if (errno == ENOSPC)
				break;
			fail("snapshot %d", i + 1);
		}
		t[i] = now_us() - t0;
		n++;
	}
	slab1 = meminfo_kb("Slab");
	meta1 = proc_counter_or_fail("meta_bytes");
	/* The cap: one more must fail with ENOSPC. */
	if (cs_snap(r.fd, NULL))
		extra_errno = -1;
	else
		extra_errno = errno;
	PHASE("part 4: release the region and %d snapshots", n);
	t0 = now_us();
	reg_destroy(&r);
	release = now_us() - t0;
	usleep(500 * 1000);	/* records are freed after an RCU grace period */
	slab2 = meminfo_kb("Slab");
	meta2 = proc_counter_or_fail("meta_bytes");

	all = stats(t, n);
	head = stats(t, n < 256 ? n : 256);
	tail = stats(t + (n > 256 ? n - 256 : 0), n < 256 ? n : 256);
	{
		double slab_mib = (slab1 - slab0) / 1024.0;
		double meta_mib = (meta1 - meta0) / (double)MIB;

		data(4, mib, "k=1", "snapshots", n);
		data(4, mib, "k=1", "slab_growth_mib", slab_mib);
		data(4, mib, "k=1", "meta_growth_mib", meta_mib);
		data(4, mib, "k=1", "slab_per_snap", (slab1 - slab0) * 1024.0 / n);
		data(4, mib, "k=1", "meta_per_snap", (double)(meta1 - meta0) / n);
		data(4, mib, "k=1", "snap_us", all.med);
		data(4, mib, "k=1", "snap_us_first256", head.med);
		data(4, mib, "k=1", "snap_us_last256", tail.med);
		data(4, mib, "k=1", "snap_us_max", all.max);
		data(4, mib, "k=1", "release_ms", release / 1000);
		data(4, mib, "k=1", "slab_left_kib", (double)(slab2 - slab_pre));
		data(4, mib, "k=1", "meta_left", (double)(meta2 - meta_pre));
		v1 = check(4, mib, "slab_growth_MiB", slab_mib, "<=", T_MANY_MIB);
		v2 = check(4, mib, "meta_growth_MiB", meta_mib, "<=", T_MANY_MIB);
		if (n != MANY_SNAPS)
			note(4, mib, "k=1", "only %d snapshots before ENOSPC", n);
		if (extra_errno != ENOSPC)
			note(4, mib, "k=1", "snapshot %d beyond the cap: %s", n + 1,
			     extra_errno < 0 ? "succeeded" : strerror(extra_errno));

		printf("\n== 4. %d snapshots of a %zu MiB region, one page changed through the mapping between each ==\n",
		       n, mib);
		printf("%-36s %14s %10s %5s\n", "measure", "value", "target", "");
		printf("%-36s %14.2f %10s %5s\n", "Slab growth, MiB", slab_mib,
		       "<=64", v1);
		printf("%-36s %14.2f %10s %5s\n", "meta_bytes growth, MiB",
		       meta_mib, "<=64", v2);
		printf("%-36s %14.0f\n", "Slab per snapshot, bytes",
		       (slab1 - slab0) * 1024.0 / n);
		printf("%-36s %14.0f\n", "meta_bytes per snapshot",
		       (double)(meta1 - meta0) / n);
		printf("%-36s %14.1f\n", "snapshot us, median of all", all.med);
		printf("%-36s %14.1f\n", "snapshot us, median of first 256",
		       head.med);
		printf("%-36s %14.1f\n", "snapshot us, median of last 256",
		       tail.med);
		printf("%-36s %14.1f\n", "snapshot us, max", all.max);
		printf("%-36s %14.1f\n", "release (destroy, munmap, close), ms",
		       release / 1000);
		printf("%-36s %14lld\n", "Slab left after release, KiB",
		       slab2 - slab_pre);
		printf("%-36s %14lld\n", "meta_bytes left after release",
		       meta2 - meta_pre);
		printf("%-36s %14s\n", "snapshot beyond the cap",
		       extra_errno == ENOSPC ? "ENOSPC" :
		       extra_errno < 0 ? "succeeded!" : strerror(extra_errno));
	}
	free(t);
}

/* ---- part 5: read pass after a snapshot ---- */

/*
 * Flush this mm's TLB and nothing else: munmap() of more pages than the
 * kernel flushes one by one (tlb_single_page_flush_ceiling, 33) flushes it
 * all.  Under TCG refilling QEMU's software TLB is what a pass after any
 * flush pays, so this is the control for part 5.
 */
static void tlb_flush_mm(void)
{
	size_t len = 64 * PG;
	char *d = anon_map(len, MADV_NOHUGEPAGE);

	memset(d, 1, len);
	munmap(d, len);
}

/* The same passes around fork() of anonymous memory: the baseline. */
static void read_fork(size_t size, double *before, double *after)
{
	char *p = anon_map(size, MADV_NOHUGEPAGE);
	int pf[2];
	pid_t pid;

	fill(p, 0x5a, size);
	read_pass(p, size);
	*before = read_pass(p, size);
	if (pipe(pf))
		fail("pipe");
	pid = fork();
	if (pid < 0)
		fail("fork");
	if (!pid) {
		char c;

		close(pf[1]);
		if (read(pf[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	*after = read_pass(p, size);
	close(pf[0]);
	close(pf[1]);
	waitpid(pid, NULL, 0);
	unmap(p, size);
}

static void part_read(void)
{
	int s, i;

	printf("\n== 5. read pass (one byte per page, mapping faulted in): right after a snapshot vs just before it ==\n");
	printf("%8s %4s  %16s  %16s  %7s  %7s  %5s  %6s  %9s  %8s  %10s\n",
	       "size_MiB", "reps", "before_us", "after_us", "ratio", "target",
	       "", "faults", "flush/bef", "snap/fl", "fork_ratio");
	for (s = 0; s < nsizes; s++) {
		size_t size = sizes[s], mib = size / MIB;
		/* A pass is short: more reps where populating is cheap. */
		int n = mib <= 256 ? 15 : reps_at(size);
		double b[16], a[16], fl[16], faults[16], fb[16], fa[16];
		double ratio, fr, flr, sfr;
		struct stat5 sb, sa, sf, sfl;
		const char *v;

		printf("# part 5: %zu MiB\n", mib);
		fflush(stdout);
		for (i = 0; i < n; i++) {
			struct reg r;
			long long f0;

			PHASE("part 5: %zu MiB rep %d", mib, i);
			reg_create(&r, "bench", size, true);
			reg_fill_map(&r, 0x5a);
			read_pass(r.p, size);	/* PTEs and caches as after use */
			b[i] = read_pass(r.p, size);
			tlb_flush_mm();
			fl[i] = read_pass(r.p, size);
			snap(&r);
			f0 = proc_counter_or_fail("read_faults");
			a[i] = read_pass(r.p, size);
			faults[i] = proc_counter_or_fail("read_faults") - f0;
			reg_destroy(&r);
			PHASE("part 5: fork baseline %zu MiB rep %d", mib, i);
			read_fork(size, &fb[i], &fa[i]);
		}
		sb = stats(b, n);
		sa = stats(a, n);
		sf = stats(faults, n);
		sfl = stats(fl, n);
		ratio = sa.med / sb.med;
		flr = sfl.med / sb.med;
		sfr = sa.med / sfl.med;
		fr = stats(fa, n).med / stats(fb, n).med;
		data(5, mib, "read", "before_us", sb.med);
		data(5, mib, "read", "after_us", sa.med);
		data(5, mib, "read", "ratio", ratio);
		data(5, mib, "read", "read_faults_after", sf.med);
		data(5, mib, "read", "after_tlb_flush_us", sfl.med);
		data(5, mib, "read", "flush_ratio", flr);
		data(5, mib, "read", "snap_vs_flush", sfr);
		data(5, mib, "fork", "before_us", stats(fb, n).med);
		data(5, mib, "fork", "after_us", stats(fa, n).med);
		data(5, mib, "fork", "ratio", fr);
		v = check(5, mib, "after/before", ratio, "<=", T_READ);
		/* Not the target: the same limit against the control. */
		check(5, mib, "control:after/after_flush", sfr, "<=", T_READ);
		printf("%8zu %4d  %10.0f +-%2.0f%%  %10.0f +-%2.0f%%  %7.3f  %7s  %5s  %6.0f  %9.3f  %8.3f  %10.3f\n",
		       mib, n, sb.med, spread_pct(sb), sa.med, spread_pct(sa),
		       ratio, "<=1.05", v, sf.med, flr, sfr, fr);
		fflush(stdout);
	}
	printf("(faults: cowsnap read faults during the pass after the snapshot; flush/bef: a pass right after a TLB flush of the process\n"
	       " (munmap of another mapping), over the pass before; snap/fl: after the snapshot over after that flush; fork_ratio: the\n"
	       " passes around fork() of anonymous memory, in the parent, after/before)\n");
}

/* ---- part 6: the first write to each page after a save ---- */

static double first_write_cowsnap(size_t size, double *cow)
{
	size_t npages = size / PG;
	struct reg r;
	long long c0;
	double t0, t;

	reg_create(&r, "bench", size, true);
	reg_fill_map(&r, 0x5a);
	snap(&r);
	c0 = proc_counter_or_fail("cow_faults");
	t0 = now_us();
	store_pass(r.p, size, 1);
	t = (now_us() - t0) / npages;
	*cow = proc_counter_or_fail("cow_faults") - c0;
	reg_destroy(&r);
	return t;
}

static double first_write_fork(size_t size)
{
	char *p = anon_map(size, MADV_NOHUGEPAGE);
	double t0, t;
	int pf[2];
	pid_t pid;

	fill(p, 0x5a, size);
	if (pipe(pf))
		fail("pipe");
	pid = fork();
	if (pid < 0)
		fail("fork");
	if (!pid) {
		char c;

		close(pf[1]);
		/* Sleep, keeping every page shared, until the parent is done. */
		if (read(pf[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(pf[0]);
	t0 = now_us();
	store_pass(p, size, 1);
	t = (now_us() - t0) / (size / PG);
	close(pf[1]);
	waitpid(pid, NULL, 0);
	unmap(p, size);
	return t;
}

struct uffd_ctx {
	int uffd;
	char *base, *save;
	size_t size;		/* the sentinel page follows */
	volatile int stop;
	long faults, errors;
};

/* Copy the page away, then unprotect it (which wakes the writer). */
static void *uffd_handler(void *arg)
{
	struct uffd_ctx *c = arg;
	struct uffd_msg msg[16];

	for (;;) {
		ssize_t n = read(c->uffd, msg, sizeof(msg));
		int i;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			c->errors++;
			return NULL;
		}
		for (i = 0; i < n / (ssize_t)sizeof(msg[0]); i++) {
			uintptr_t a;
			size_t off;

			if (msg[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			a = msg[i].arg.pagefault.address & ~(PG - 1);
			off = a - (uintptr_t)c->base;
			if (off < c->size)
				memcpy(c->save + off, (void *)a, PG);
			if (uffd_wp(c->uffd, (void *)a, PG, false))
				c->errors++;
			c->faults++;
			if (off >= c->size && c->stop)
				return NULL;
		}
	}
}

static double first_write_uffd(size_t size, char *why, size_t whylen,
			       double *faults)
{
	struct uffd_ctx c = { .size = size };
	pthread_t th;
	double t0, t;

	c.base = anon_map(size + PG, MADV_NOHUGEPAGE);
	c.save = anon_map(size, MADV_NOHUGEPAGE);
	fill(c.base, 0x5a, size + PG);
	fill(c.save, 0, size);
	c.uffd = uffd_wp_open(c.base, size + PG, 0, why, whylen);
	if (c.uffd < 0) {
		unmap(c.base, size + PG);
		unmap(c.save, size);
		return NAN;
	}
	if (uffd_wp(c.uffd, c.base, size + PG, true))
		fail("UFFDIO_WRITEPROTECT");
	if (pthread_create(&th, NULL, uffd_handler, &c))
		fail("pthread_create");
	t0 = now_us();
	store_pass(c.base, size, 1);
	t = (now_us() - t0) / (size / PG);
	c.stop = 1;
	c.base[size] = 1;	/* the sentinel: the handler ends after it */
	pthread_join(th, NULL);
	*faults = c.faults - 1;
	if (c.errors)
		note(6, size / MIB, "uffd", "%ld handler errors", c.errors);
	close(c.uffd);
	unmap(c.base, size + PG);
	unmap(c.save, size);
	return t;
}

static void part_first_write(void)
{
	int s, i;

	printf("\n== 6. first write to each page after a save, us per page (median of %s) ==\n",
	       reps_desc());
	printf("%8s  %14s  %14s  %14s  %9s  %7s  %5s  %10s  %7s  %5s\n",
	       "size_MiB", "cowsnap", "fork_anon_CoW", "uffd_handler",
	       "cs/fork", "target", "", "uffd/cs", "target", "");
	for (s = 0; s < nsizes; s++) {
		size_t size = sizes[s], mib = size / MIB, npages = size / PG;
		double cs[16], fk[16], uf[16], cow[16], uff[16];
		struct stat5 scs, sfk, suf;
		char why[160] = "";
		double r1, r2;
		const char *v1, *v2;
		int n = reps_at(size);

		printf("# part 6: %zu MiB\n", mib);
		fflush(stdout);
		for (i = 0; i < n; i++) {
			PHASE("part 6: cowsnap first writes %zu MiB rep %d", mib, i);
			cs[i] = first_write_cowsnap(size, &cow[i]);
			PHASE("part 6: fork CoW %zu MiB rep %d", mib, i);
			fk[i] = first_write_fork(size);
			PHASE("part 6: uffd handler %zu MiB rep %d", mib, i);
			uff[i] = NAN;
			uf[i] = first_write_uffd(size, why, sizeof(why), &uff[i]);
		}
		scs = stats(cs, n);
		sfk = stats(fk, n);
		suf = stats(uf, n);
		r1 = scs.med / sfk.med;
		r2 = suf.med / scs.med;
		data(6, mib, "cowsnap", "us_per_page", scs.med);
		data(6, mib, "cowsnap", "spread_pct", spread_pct(scs));
		data(6, mib, "cowsnap", "cow_faults_per_page",
		     stats(cow, n).med / npages);
		data(6, mib, "fork", "us_per_page", sfk.med);
		data(6, mib, "fork", "spread_pct", spread_pct(sfk));
		data(6, mib, "uffd", "us_per_page", suf.med);
		data(6, mib, "uffd", "spread_pct", spread_pct(suf));
		data(6, mib, "uffd", "faults_per_page",
		     stats(uff, n).med / npages);
		data(6, mib, "cowsnap", "vs_fork", r1);
		data(6, mib, "cowsnap", "uffd_speedup", r2);
		if (isnan(suf.med))
			note(6, mib, "uffd", "userfaultfd WP unavailable: %s", why);
		v1 = check(6, mib, "cowsnap/fork", r1, "<=", T_COW_VS_FORK);
		v2 = check(6, mib, "uffd/cowsnap", r2, ">=", T_UFFD_VS_COW);
		printf("%8zu  %8.2f +-%2.0f%%  %8.2f +-%2.0f%%  %8.2f +-%2.0f%%  %9.2f  %7s  %5s  %10.2f  %7s  %5s\n",
		       mib, scs.med, spread_pct(scs), sfk.med, spread_pct(sfk),
		       suf.med, spread_pct(suf), r1, "<=1.25", v1, r2, ">=5",
		       v2);
		fflush(stdout);
	}
	printf("(cowsnap: store to each page of a snapshotted region; fork: the parent stores while the child sleeps; uffd: a handler thread copies the page away and unprotects it)\n");
}

/* ---- parts 7 and 8: restore and diff, flat in region size ---- */

/* The reference size first, then the chosen sizes. */
static int flat_sizes(size_t *out)
{
	int n = 0, s;

	out[n++] = REF_MIB * MIB;
	for (s = 0; s < nsizes; s++)
		if (sizes[s] != REF_MIB * MIB)
			out[n++] = sizes[s];
	return n;
}

/* memcpy of @size bytes: from part 1 when it ran, else measured here. */
static double memcpy_baseline(int part, size_t size)
{
	double v = data_get(1, size / MIB, "memcpy", "time_us"), m[16];
	int i, n = reps_at(size);

	if (!isnan(v))
		return v;
	for (i = 0; i < n; i++) {
		PHASE("part %d: memcpy baseline %zu MiB rep %d", part,
		      size / MIB, i);
		m[i] = save_memcpy(size);
	}
	return stats(m, n).med;
}

static void part_restore(void)
{
	size_t fs[MAX_SIZES + 1];
	int n = flat_sizes(fs), s, i, k;
	struct reg r[MAX_SIZES + 1];
	uint64_t id[MAX_SIZES + 1];
	double *t = calloc((size_t)n * RESTORE_ROUNDS, sizeof(*t));
	double med[MAX_SIZES + 1];
	long bad = 0;

	if (!t)
		fail("calloc");
	printf("# part 7: %d sizes\n", n);
	fflush(stdout);
	for (s = 0; s < n; s++) {
		char name[32];

		snprintf(name, sizeof(name), "bench-r%zu", fs[s] / MIB);
		PHASE("part 7: populate %zu MiB", fs[s] / MIB);
		reg_create(&r[s], name, fs[s], true);
		reg_fill_map(&r[s], 0x5a);
		id[s] = snap(&r[s]);
	}
	/* Round by round over every size: drift hits every size alike. */
	for (i = 0; i < RESTORE_ROUNDS; i++) {
		for (s = 0; s < n; s++) {
			long long got;
			double t0;

			PHASE("part 7: restore %zu MiB round %d", fs[s] / MIB, i);
			/* The same 16 indexes, within the first 4 MiB. */
			for (k = 0; k < RESTORE_DIRTY; k++)
				r[s].p[(k * 61 + 3) * PG] = i;
			t0 = now_us();
			got = cs_restore(r[s].fd, id[s], 0);
			t[s * RESTORE_ROUNDS + i] = now_us() - t0;
			if (got < 0)
				fail("restore of %zu MiB", fs[s] / MIB);
			if (got != RESTORE_DIRTY)
				bad++;
		}
	}
	for (s = 0; s < n; s++) {
		PHASE("part 7: destroy %zu MiB", fs[s] / MIB);
		reg_destroy(&r[s]);
		med[s] = stats(t + s * RESTORE_ROUNDS, RESTORE_ROUNDS).med;
	}
	if (bad)
		note(7, 0, "restore16", "%ld restores did not report %d pages",
		     bad, RESTORE_DIRTY);

	printf("\n== 7. restore of %d dirty pages (same indexes at every size) in a fully resident region (median of %d) ==\n",
	       RESTORE_DIRTY, RESTORE_ROUNDS);
	printf("%8s  %12s  %10s  %7s  %5s  %14s  %10s\n", "size_MiB",
	       "restore_us", "vs_4MiB", "target", "", "memcpy_all_us",
	       "speedup");
	for (s = 0; s < n; s++) {
		size_t mib = fs[s] / MIB;
		double mc = memcpy_baseline(7, fs[s]);
		double ratio = med[s] / med[0];
		const char *v = "";
		char name[32];
		struct stat5 st = stats(t + s * RESTORE_ROUNDS, RESTORE_ROUNDS);

		data(7, mib, "restore16", "restore_us", med[s]);
		data(7, mib, "restore16", "spread_pct", spread_pct(st));
		data(7, mib, "restore16", "vs_4mib", ratio);
		data(7, mib, "restore16", "memcpy_us", mc);
		data(7, mib, "restore16", "memcpy_speedup", mc / med[s]);
		if (s) {
			snprintf(name, sizeof(name), "restore_%zuMiB/%dMiB", mib,
				 REF_MIB);
			v = check(7, mib, name, ratio, "<=", T_FLAT);
		}
		printf("%8zu  %8.1f +-%2.0f%%  %10.3f  %7s  %5s  %14.0f  %9.0fx\n",
		       mib, med[s], spread_pct(st), ratio, s ? "<=1.25" : "",
		       v, mc, mc / med[s]);
	}
	printf("(vs_4MiB: restore time / the 4 MiB region's; \"flat\" is judged as <= %.2f)\n",
	       T_FLAT);
	free(t);
}

/* Pages that differ between @from and @to, extents in *@next; -1 on error. */
static long long diff_pages(int fd, uint64_t from, uint64_t to, long *next)
{
	static struct cowsnap_extent ext[1024];
	struct cowsnap_diff d = {
		.from = from, .to = to,
		.extents = (uintptr_t)ext,
	};
	long long pages = 0;
	unsigned int i;

	*next = 0;
	for (;;) {
		d.count = 1024;
		if (ioctl(fd, COWSNAP_IOC_DIFF, &d))
			return -1;
		for (i = 0; i < d.count; i++)
			pages += ext[i].count;
		*next += d.count;
		if (!d.next)
			return pages;
		d.start = d.next;
	}
}

/* Without snapshots: compare the region with a saved copy, page by page. */
static double diff_scan(size_t size)
{
	char *a = anon_map(size, MADV_NOHUGEPAGE);
	char *b = anon_map(size, MADV_NOHUGEPAGE);
	size_t npages = size / PG, i, n = 0;
	double t0, t;

	fill(a, 0x5a, size);
	fill(b, 0x5a, size);
	for (i = 0; i < DIFF_CHANGED; i++)
		b[change_idx(npages, DIFF_CHANGED, i, 0) * PG] = 1;
	t0 = now_us();
	for (i = 0; i < npages; i++)
		n += memcmp(a + i * PG, b + i * PG, PG) != 0;
	t = now_us() - t0;
	if (n != DIFF_CHANGED)
		fail("scan found %zu pages", n);
	unmap(a, size);
	unmap(b, size);
	return t;
}

static void part_diff(void)
{
	size_t fs[MAX_SIZES + 1];
	int n = flat_sizes(fs), s, i;
	struct reg r[MAX_SIZES + 1];
	uint64_t prev[MAX_SIZES + 1];
	double *t = calloc((size_t)n * DIFF_ROUNDS, sizeof(*t));
	double med[MAX_SIZES + 1];
	long bad = 0;

	if (!t)
		fail("calloc");
	printf("# part 8: %d sizes\n", n);
	fflush(stdout);
	for (s = 0; s < n; s++) {
		char name[32];

		snprintf(name, sizeof(name), "bench-d%zu", fs[s] / MIB);
		PHASE("part 8: populate %zu MiB", fs[s] / MIB);
		reg_create(&r[s], name, fs[s], true);
		reg_fill_map(&r[s], 0x5a);
		prev[s] = snap(&r[s]);
	}
	for (i = 0; i < DIFF_ROUNDS; i++) {
		for (s = 0; s < n; s++) {
			size_t npages = fs[s] / PG;
			long long pages;
			uint64_t next;
			long extents;
			double t0;
			int j;

			PHASE("part 8: diff %zu MiB round %d", fs[s] / MIB, i);
			for (j = 0; j < DIFF_CHANGED; j++)
				*(volatile uint64_t *)(r[s].p +
					change_idx(npages, DIFF_CHANGED, j, i) * PG) = i + 1;
			next = snap(&r[s]);
			t0 = now_us();
			pages = diff_pages(r[s].fd, prev[s], next, &extents);
			t[s * DIFF_ROUNDS + i] = now_us() - t0;
			if (pages < 0)
				fail("diff %llu..%llu of %zu MiB",
				     (unsigned long long)prev[s],
				     (unsigned long long)next, fs[s] / MIB);
			if (pages != DIFF_CHANGED)
				bad++;
			prev[s] = next;
		}
	}
	for (s = 0; s < n; s++) {
		PHASE("part 8: destroy %zu MiB", fs[s] / MIB);
		reg_destroy(&r[s]);
		med[s] = stats(t + s * DIFF_ROUNDS, DIFF_ROUNDS).med;
	}
	if (bad)
		note(8, 0, "diff64", "%ld diffs did not report %d pages", bad,
		     DIFF_CHANGED);

	printf("\n== 8. diff of two adjacent snapshots, %d pages changed between them (median of %d) ==\n",
	       DIFF_CHANGED, DIFF_ROUNDS);
	printf("%8s  %12s  %10s  %7s  %5s  %14s  %10s\n", "size_MiB",
	       "diff_us", "vs_4MiB", "target", "", "memcmp_scan_us",
	       "speedup");
	for (s = 0; s < n; s++) {
		size_t mib = fs[s] / MIB;
		struct stat5 st = stats(t + s * DIFF_ROUNDS, DIFF_ROUNDS);
		double sc[16], scan, ratio = med[s] / med[0];
		int nr = reps_at(fs[s]);
		const char *v = "";
		char name[32];

		for (i = 0; i < nr; i++) {
			PHASE("part 8: scan baseline %zu MiB rep %d", mib, i);
			sc[i] = diff_scan(fs[s]);
		}
		scan = stats(sc, nr).med;
		data(8, mib, "diff64", "diff_us", med[s]);
		data(8, mib, "diff64", "spread_pct", spread_pct(st));
		data(8, mib, "diff64", "vs_4mib", ratio);
		data(8, mib, "diff64", "scan_us", scan);
		data(8, mib, "diff64", "scan_speedup", scan / med[s]);
		if (s) {
			snprintf(name, sizeof(name), "diff_%zuMiB/%dMiB", mib,
				 REF_MIB);
			v = check(8, mib, name, ratio, "<=", T_FLAT);
		}
		printf("%8zu  %8.1f +-%2.0f%%  %10.3f  %7s  %5s  %14.0f  %9.0fx\n",
		       mib, med[s], spread_pct(st), ratio, s ? "<=1.25" : "",
		       v, scan, scan / med[s]);
		fflush(stdout);
	}
	printf("(memcmp_scan: compare the region with a saved copy page by page, what a diff costs without snapshots)\n");
	free(t);
}

/* ---- part 9: /proc/cowsnap, SNAP_LIST and INFO cost O(records) ---- */

/* Read /proc/cowsnap to its end; returns the bytes read. */
static long proc_read_all(void)
{
	static char buf[1 << 16];
	int fd = open("/proc/cowsnap", O_RDONLY | O_CLOEXEC);
	long total = 0;
	ssize_t n;

	if (fd < 0)
		fail("open /proc/cowsnap");
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	if (n < 0)
		fail("read /proc/cowsnap");
	close(fd);
	return total;
}

/* Every snapshot of @fd's region through SNAP_LIST; returns how many. */
static long snap_list_all(int fd)
{
	static struct cowsnap_snap_entry ent[64];
	struct cowsnap_snap_list l = { .entries = (uintptr_t)ent };
	long n = 0;

	for (;;) {
		l.count = 64;
		if (ioctl(fd, COWSNAP_IOC_SNAP_LIST, &l))
			fail("SNAP_LIST from id %llu",
			     (unsigned long long)l.start_id);
		n += l.count;
		if (!l.next_id)
			return n;
		l.start_id = l.next_id;
	}
}

/*
 * Two regions live side by side: the 4 MiB reference, mode 0604, and the
 * one of the size measured, mode 0640, both root's, each with the same
 * LIST_SNAPS snapshots and LIST_CHANGED pages stored between them, so the
 * same records.  /proc/cowsnap prints only the regions its reader may
 * read: two readers without capabilities, uid 1000, one in group 1000
 * (so "other": it sees the reference only), one in group 0 (it sees the
 * measured region only), take turns round by round.  Both walk the same
 * two regions; only the resident pages of what they print differ, and
 * drift or a busy host hits both alike.  SNAP_LIST and INFO of the two
 * alternate the same way.
 */
struct list_shm {
	double t[2][LIST_ROUNDS];
	long bytes[2];
	int regions[2];		/* region lines the reader saw */
};

static int proc_regions_seen(void)
{
	FILE *f = fopen("/proc/cowsnap", "r");
	char line[512];
	int n = 0;

	while (f && fgets(line, sizeof(line), f))
		n += !strncmp(line, "region ", 7);
	if (f)
		fclose(f);
	return n;
}

/* Reader @which (0: the reference, 1: the measured region). */
static void __attribute__((noreturn))
proc_reader(int which, int in, int out, struct list_shm *sh)
{
	gid_t g = which ? 0 : 1000;
	int i = 0;
	char c;

	PHASE("part 9: /proc reader %d", which);
	if (setgroups(0, NULL) || setresgid(g, g, g) ||
	    setresuid(1000, 1000, 1000))
		fail("drop to uid 1000, gid %d", (int)g);
	sh->regions[which] = proc_regions_seen();
	/* Done after its rounds: no EOF needed to end it. */
	while (i < LIST_ROUNDS && read(in, &c, 1) == 1) {
		double t0 = now_us();

		sh->bytes[which] = proc_read_all();
		sh->t[which][i++] = now_us() - t0;
		if (write(out, &c, 1) != 1)
			break;
	}
	_exit(0);
}

static void list_region(struct reg *r, const char *name, size_t size,
			unsigned int mode)
{
	size_t npages = size / PG;
	int i, j;

	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->size = size;
	r->fd = cs_open();
	if (r->fd < 0)
		fail("open " COWSNAP_DEV);
	cs_destroy(r->fd, name);
	if (cs_create(r->fd, name, size, mode))
		fail("create region %s of %zu MiB", name, size / MIB);
	r->p = cs_map(r->fd, size);
	if (!r->p)
		fail("mmap region %s", name);
	reg_fill_map(r, 0x5a);
	for (i = 0; i < LIST_SNAPS; i++) {
		for (j = 0; j < LIST_CHANGED; j++)
			*(volatile uint64_t *)(r->p +
				change_idx(npages, LIST_CHANGED, j, 0) * PG) =
				i + 1;
		snap(r);
	}
}

static void part_list(void)
{
	struct list_shm *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double *t = calloc(4 * LIST_ROUNDS, sizeof(*t));
	struct reg ref, r;
	int s, i, w;

	if (sh == MAP_FAILED || !t)
		fail("memory for part 9");
	printf("\n== 9. /proc/cowsnap, SNAP_LIST and INFO: a fully resident region vs a 4 MiB one, %d snapshots, %d pages changed between them, same records (median of %d, interleaved) ==\n",
	       LIST_SNAPS, LIST_CHANGED, LIST_ROUNDS);
	printf("%8s %7s %6s  %14s %8s %6s %5s  %13s %8s %6s %5s  %11s %8s\n",
	       "size_MiB", "records", "bytes", "proc_read_us", "vs_4MiB",
	       "target", "", "snap_list_us", "vs_4MiB", "target", "",
	       "info_us", "vs_4MiB");
	PHASE("part 9: populate the %d MiB reference", REF_MIB);
	/* Names of one length: the two readers print the same bytes. */
	list_region(&ref, "bench-a", REF_MIB * MIB, 0604);
	for (s = 0; s < nsizes; s++) {
		size_t size = sizes[s], mib = size / MIB;
		struct stat5 st[2][3];
		int to[2][2], from[2][2];
		pid_t pid[2];
		long long recs;
		const char *v1, *v2;
		double rp, rl, ri;
		char name[48];

		if (size == REF_MIB * MIB)
			continue;
		printf("# part 9: %zu MiB\n", mib);
		fflush(stdout);
		PHASE("part 9: populate %zu MiB", mib);
		list_region(&r, "bench-b", size, 0640);
		recs = proc_counter_or_fail("records");
		memset(sh, 0, sizeof(*sh));
		for (w = 0; w < 2; w++) {
			if (pipe(to[w]) || pipe(from[w]))
				fail("pipe");
			pid[w] = fork();
			if (pid[w] < 0)
				fail("fork");
			if (!pid[w]) {
				int o;

				/* The parent's ends, this reader's and others'. */
				for (o = 0; o <= w; o++) {
					close(to[o][1]);
					close(from[o][0]);
				}
				proc_reader(w, to[w][0], from[w][1], sh);
			}
			close(to[w][0]);
			close(from[w][1]);
		}
		for (i = 0; i < LIST_ROUNDS; i++) {
			PHASE("part 9: %zu MiB round %d", mib, i);
			for (w = 0; w < 2; w++) {
				/* Alternate who goes first. */
				int x = (w + i) % 2;
				struct reg *rr = x ? &r : &ref;
				struct cowsnap_info info;
				char c = 'r';
				double t0;

				if (write(to[x][1], &c, 1) != 1 ||
				    read(from[x][0], &c, 1) != 1)
					fail("/proc reader %d", x);
				t0 = now_us();
				if (snap_list_all(rr->fd) != LIST_SNAPS)
					fail("SNAP_LIST of %s", rr->name);
				t[x * LIST_ROUNDS + i] = now_us() - t0;
				t0 = now_us();
				if (cs_info(rr->fd, &info))
					fail("INFO");
				t[(2 + x) * LIST_ROUNDS + i] = now_us() - t0;
			}
		}
		for (w = 0; w < 2; w++) {
			close(to[w][1]);
			close(from[w][0]);
			waitpid(pid[w], NULL, 0);
		}
		PHASE("part 9: destroy %zu MiB", mib);
		reg_destroy(&r);
		for (w = 0; w < 2; w++) {
			st[w][0] = stats(sh->t[w], LIST_ROUNDS);
			st[w][1] = stats(t + w * LIST_ROUNDS, LIST_ROUNDS);
			st[w][2] = stats(t + (2 + w) * LIST_ROUNDS, LIST_ROUNDS);
		}
		rp = st[1][0].med / st[0][0].med;
		if (sh->regions[0] != 1 || sh->regions[1] != 1) {
			note(9, mib, "proc", "the /proc readers saw %d and %d regions, not one each: not measured",
			     sh->regions[0], sh->regions[1]);
			rp = NAN;
		}
		rl = st[1][1].med / st[0][1].med;
		ri = st[1][2].med / st[0][2].med;
		data(9, mib, "proc", "read_us", st[1][0].med);
		data(9, mib, "proc", "spread_pct", spread_pct(st[1][0]));
		data(9, mib, "proc", "ref_read_us", st[0][0].med);
		data(9, mib, "proc", "vs_4mib", rp);
		data(9, mib, "proc", "bytes", sh->bytes[1]);
		data(9, mib, "proc", "ref_bytes", sh->bytes[0]);
		data(9, mib, "proc", "records_both", recs);
		data(9, mib, "snap_list", "read_us", st[1][1].med);
		data(9, mib, "snap_list", "spread_pct", spread_pct(st[1][1]));
		data(9, mib, "snap_list", "ref_read_us", st[0][1].med);
		data(9, mib, "snap_list", "vs_4mib", rl);
		data(9, mib, "info", "read_us", st[1][2].med);
		data(9, mib, "info", "spread_pct", spread_pct(st[1][2]));
		data(9, mib, "info", "ref_read_us", st[0][2].med);
		data(9, mib, "info", "vs_4mib", ri);
		snprintf(name, sizeof(name), "proc_%zuMiB/%dMiB", mib, REF_MIB);
		v1 = check(9, mib, name, rp, "<=", T_FLAT);
		snprintf(name, sizeof(name), "snap_list_%zuMiB/%dMiB", mib,
			 REF_MIB);
		v2 = check(9, mib, name, rl, "<=", T_FLAT);
		printf("%8d %7lld %6ld  %8.1f +-%2.0f%% %8s %6s %5s  %7.1f +-%2.0f%% %8s %6s %5s  %5.1f +-%2.0f%% %8s\n",
		       REF_MIB, recs / 2, sh->bytes[0], st[0][0].med,
		       spread_pct(st[0][0]), "", "", "", st[0][1].med,
		       spread_pct(st[0][1]), "", "", "", st[0][2].med,
		       spread_pct(st[0][2]), "");
		printf("%8zu %7lld %6ld  %8.1f +-%2.0f%% %8.3f %6s %5s  %7.1f +-%2.0f%% %8.3f %6s %5s  %5.1f +-%2.0f%% %8.3f\n",
		       mib, recs / 2, sh->bytes[1], st[1][0].med,
		       spread_pct(st[1][0]), rp, "<=1.25", v1, st[1][1].med,
		       spread_pct(st[1][1]), rl, "<=1.25", v2, st[1][2].med,
		       spread_pct(st[1][2]), ri);
		fflush(stdout);
	}
	PHASE("part 9: destroy the reference");
	reg_destroy(&ref);
	printf("(records: of each region; proc_read: open, read to the end and close /proc/cowsnap by a reader that sees that region only;\n"
	       " snap_list: SNAP_LIST of every snapshot; vs_4MiB: time / the 4 MiB region's in the same rounds, \"O(records), not\n"
	       " O(pages)\" judged as <= %.2f)\n", T_FLAT);
	free(t);
	munmap(sh, sizeof(*sh));
}

/* ---- part 10: where the first snapshot's time goes ---- */

/*
 * The functions function_graph times.  Only these are patched, so tracing
 * adds a few microseconds per call and the split is of an operation as
 * fast as untraced (the table prints both walls).  cowsnap_snap_take()
 * inlines the xarray passes (drain, pin check, copies, clearing the
 * writable marks); cowsnap_protect_run() is one run of pages, chunked by
 * COWSNAP_CLEAN_CHUNK, each chunk three walks of the mapping's PTEs:
 * clean_record (1), wp (2), clean_record (3).
 */
enum {
	F_IOC, F_TAKE, F_RUN, F_CLEAN, F_WP, F_ZAP,
	F_MWP, F_CHPROT, F_CLONE, F_COPY, NFUNC
};

static const char *const tr_fn[NFUNC] = {
	"cowsnap_ioc_snap_create", "cowsnap_snap_take", "cowsnap_protect_run",
	"clean_record_shared_mapping_range", "wp_shared_mapping_range",
	"unmap_mapping_pages",
	"mwriteprotect_range", "change_protection",
	"kernel_clone", "copy_page_range",
};

static bool tr_ok[NFUNC];

struct tr_sum {
	double us[NFUNC];
	double clean1, clean3;	/* clean_record walks 1 and 3 */
	int calls[NFUNC];
	/*
	 * Timestamps (s, funcgraph-abstime) of cowsnap_snap_take()'s entry
	 * and exit and of its first and last cowsnap_protect_run(): they
	 * split the xarray passes inlined in it into the one before the
	 * walks and those after.
	 */
	double take_in, take_out, run_in, run_out;
};

static bool tr_abstime;

static int tracefs_write(const char *file, const char *val, bool append)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), TRACEFS "/%s", file);
	fd = open(path, O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_TRUNC));
	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static void trace_off(void)
{
	tracefs_write("options/funcgraph-abstime", "0", false);
	tracefs_write("tracing_on", "0", false);
	tracefs_write("current_tracer", "nop", false);
	tracefs_write("set_ftrace_filter", "", false);
	tracefs_write("set_ftrace_pid", "", false);
}

/*
 * Which of tr_fn[] the filter holds.  A name the kernel lacks (inlined,
 * renamed: dup_mmap() is inlined on 6.12) fails only when parsed, which
 * without a newline is at close, where the error is lost: read it back.
 */
static void trace_filter_check(void)
{
	FILE *f = fopen(TRACEFS "/set_ftrace_filter", "r");
	char line[256];
	int i;

	for (i = 0; i < NFUNC; i++)
		tr_ok[i] = false;
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, " \n")] = 0;
		for (i = 0; i < NFUNC; i++)
			if (!strcmp(line, tr_fn[i]))
				tr_ok[i] = true;
	}
	if (f)
		fclose(f);
}

/* function_graph on the functions of tr_fn[] that exist; -1 and @why. */
static int trace_setup(char *why, size_t len)
{
	int f;

	mkdir(TRACEFS, 0755);
	if (access(TRACEFS "/current_tracer", F_OK) &&
	    mount("tracefs", TRACEFS, "tracefs", 0, NULL)) {
		snprintf(why, len, "mount tracefs: %s", strerror(errno));
		return -1;
	}
	trace_off();
	for (f = 0; f < NFUNC; f++) {
		char name[80];

		snprintf(name, sizeof(name), "%s\n", tr_fn[f]);
		tracefs_write("set_ftrace_filter", name, true);
	}
	trace_filter_check();
	/* This process only: nothing else should run, but a shell might. */
	snprintf(why, len, "%d", (int)getpid());
	tracefs_write("set_ftrace_pid", why, false);
	why[0] = 0;
	/*
	 * An empty filter would trace every function in the kernel: go on
	 * only when the ioctl itself can be traced.
	 */
	if (!tr_ok[F_IOC]) {
		snprintf(why, len, "cannot trace %s (set_ftrace_filter)",
			 tr_fn[F_IOC]);
		trace_off();
		return -1;
	}
	tracefs_write("options/funcgraph-irqs", "0", false);
	tr_abstime = !tracefs_write("options/funcgraph-abstime", "1", false);
	tracefs_write("tracing_on", "0", false);
	if (tracefs_write("current_tracer", "function_graph", false)) {
		snprintf(why, len, "function_graph tracer: %s",
			 strerror(errno));
		trace_off();
		return -1;
	}
	return 0;
}

static void trace_start(void)
{
	tracefs_write("trace", "", false);	/* O_TRUNC empties it */
	tracefs_write("tracing_on", "1", false);
}

static int tr_index(const char *name, size_t len)
{
	int f;

	for (f = 0; f < NFUNC; f++)
		if (strlen(tr_fn[f]) == len && !strncmp(name, tr_fn[f], len))
			return f;
	return -1;
}

/*
 * Stop tracing and sum the durations in the function_graph output: a
 * leaf is "name();" with its duration, a call with traced callees opens
 * with "name() {" and closes with a brace line carrying the duration
 * (and the name too with funcgraph-tail).  A stack matches them, so
 * either setting of that option does.
 */
static void trace_stop(struct tr_sum *t)
{
	static char buf[1 << 20];
	int stack[32], depth = 0, fd;
	bool after_wp = false;
	char *line, *save;
	size_t len = 0;
	ssize_t n;

	memset(t, 0, sizeof(*t));
	tracefs_write("tracing_on", "0", false);
	fd = open(TRACEFS "/trace", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("open " TRACEFS "/trace");
	while (len < sizeof(buf) - 1 &&
	       (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	close(fd);
	buf[len] = 0;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *bar, *name, *us;
		double dur = NAN, ts = NAN;
		int f;

		if (line[0] == '#')
			continue;
		if (tr_abstime) {
			/* "  1234.567890 |   0)  ...": the time comes first. */
			ts = strtod(line, &name);
			bar = name == line ? NULL : strchr(name, '|');
			if (!bar)
				continue;
			line = bar + 1;
		}
		bar = strchr(line, '|');
		if (!bar)
			continue;
		*bar = 0;
		us = strstr(line, " us");
		if (us) {
			while (us > line && (isdigit(us[-1]) || us[-1] == '.'))
				us--;
			dur = strtod(us, NULL);
		}
		name = bar + 1;
		while (*name == ' ')
			name++;
		if (*name == '}') {
			if (!depth)
				continue;
			f = stack[--depth];
			if (f == F_TAKE)
				t->take_out = ts;
			if (f == F_RUN)
				t->run_out = ts;
		} else {
			f = tr_index(name, strcspn(name, " ("));
			if (strchr(name, '{')) {
				if (f == F_TAKE)
					t->take_in = ts;
				if (f == F_RUN && !t->run_in)
					t->run_in = ts;
				if (depth < 32)
					stack[depth++] = f;
				continue;
			}
		}
		if (f < 0 || isnan(dur))
			continue;
		t->us[f] += dur;
		t->calls[f]++;
		/* Leaves finish in call order: clean, wp, clean, per chunk. */
		if (f == F_WP)
			after_wp = true;
		if (f == F_CLEAN) {
			if (after_wp)
				t->clean3 += dur;
			else
				t->clean1 += dur;
			after_wp = false;
		}
	}
}

/* A traced value, or NAN when the function could not be traced. */
static double tr_us(const struct tr_sum *t, int f)
{
	return tr_ok[f] ? t->us[f] : NAN;
}

enum {
	P_CS_WALL, P_CS_IOC, P_CS_W1, P_CS_W2, P_CS_W3, P_CS_ZAP,
	P_CS_RUNREST, P_CS_XA, P_CS_DRAIN, P_CS_PIN, P_CS_REST,
	P_UM_WALL, P_UM_IOC,
	P_WP_WALL, P_WP_MWP, P_WP_CHPROT,
	P_FK_WALL, P_FK_CLONE, P_FK_COPY,
	NPHASE
};

static const struct {
	const char *key, *text;
	int whole;		/* the phase it is a part of */
} phases[NPHASE] = {
	[P_CS_WALL] = { "cowsnap:wall",
		"cowsnap SNAP_CREATE, fully written mapped region, whole call",
		P_CS_WALL },
	[P_CS_IOC] = { "cowsnap:ioctl",
		"  cowsnap_ioc_snap_create()", P_CS_WALL },
	[P_CS_W1] = { "cowsnap:walk1_clean",
		"    PTE walk 1: clean_record_shared_mapping_range()",
		P_CS_WALL },
	[P_CS_W2] = { "cowsnap:walk2_wp",
		"    PTE walk 2: wp_shared_mapping_range()", P_CS_WALL },
	[P_CS_W3] = { "cowsnap:walk3_clean",
		"    PTE walk 3: clean_record_shared_mapping_range()",
		P_CS_WALL },
	[P_CS_ZAP] = { "cowsnap:zap",
		"    unmap_mapping_pages() of PTEs dirtied meanwhile",
		P_CS_WALL },
	[P_CS_RUNREST] = { "cowsnap:run_other",
		"    rest of cowsnap_protect_run() (bitmaps)", P_CS_WALL },
	[P_CS_XA] = { "cowsnap:xarray",
		"    xarray passes of cowsnap_snap_take(), of which:", P_CS_WALL },
	[P_CS_DRAIN] = { "cowsnap:xa_drain",
		"      before the walks: drain, finding the runs of writable pages",
		P_CS_WALL },
	[P_CS_PIN] = { "cowsnap:xa_pin_marks",
		"      after the walks: pin check, pinned copies, clear marks",
		P_CS_WALL },
	[P_CS_REST] = { "cowsnap:ioctl_other",
		"    rest of the ioctl (locks, allocation, copy to user)",
		P_CS_WALL },
	[P_UM_WALL] = { "unmapped:wall",
		"cowsnap SNAP_CREATE, region written with pwrite(), never mapped",
		P_UM_WALL },
	[P_UM_IOC] = { "unmapped:ioctl",
		"  cowsnap_ioc_snap_create()", P_UM_WALL },
	[P_WP_WALL] = { "uffdwp:wall",
		"UFFDIO_WRITEPROTECT, whole call", P_WP_WALL },
	[P_WP_MWP] = { "uffdwp:mwriteprotect_range",
		"  mwriteprotect_range()", P_WP_WALL },
	[P_WP_CHPROT] = { "uffdwp:change_protection",
		"    PTE walk: change_protection()", P_WP_WALL },
	[P_FK_WALL] = { "fork4k:wall",
		"fork() of 4K-page memory, whole call", P_FK_WALL },
	[P_FK_CLONE] = { "fork4k:kernel_clone", "  kernel_clone()", P_FK_WALL },
	[P_FK_COPY] = { "fork4k:copy_page_range",
		"    PTE copy: copy_page_range(), every VMA", P_FK_WALL },
};

/* One traced first snapshot of a region filled through a mapping or not. */
static void phase_cowsnap(size_t size, bool mapped, double *ph)
{
	struct tr_sum t;
	struct reg r;
	double wall;

	reg_create(&r, "bench", size, mapped);
	if (mapped)
		reg_fill_map(&r, 0x5a);
	else
		reg_fill_pwrite(&r, 0x5a);
	trace_start();
	wall = timed_snap(&r, NULL);
	trace_stop(&t);
	reg_destroy(&r);
	if (!mapped) {
		ph[P_UM_WALL] = wall;
		ph[P_UM_IOC] = tr_us(&t, F_IOC);
		return;
	}
	ph[P_CS_WALL] = wall;
	ph[P_CS_IOC] = tr_us(&t, F_IOC);
	ph[P_CS_W1] = tr_ok[F_CLEAN] ? t.clean1 : NAN;
	ph[P_CS_W2] = tr_us(&t, F_WP);
	ph[P_CS_W3] = tr_ok[F_CLEAN] ? t.clean3 : NAN;
	ph[P_CS_ZAP] = tr_us(&t, F_ZAP);
	ph[P_CS_RUNREST] = tr_us(&t, F_RUN) - tr_us(&t, F_CLEAN) -
			   tr_us(&t, F_WP) - tr_us(&t, F_ZAP);
	ph[P_CS_XA] = tr_us(&t, F_TAKE) - tr_us(&t, F_RUN);
	if (t.take_in && t.run_in && t.take_out && t.run_out) {
		ph[P_CS_DRAIN] = (t.run_in - t.take_in) * 1e6;
		ph[P_CS_PIN] = (t.take_out - t.run_out) * 1e6;
	}
	ph[P_CS_REST] = tr_us(&t, F_IOC) - tr_us(&t, F_TAKE);
}

static void phase_uffd(size_t size, double *ph, char *why, size_t len)
{
	char *p = anon_map(size, MADV_NOHUGEPAGE);
	struct tr_sum t;
	double t0;
	int uffd;

	fill(p, 0x5a, size);
	uffd = uffd_wp_open(p, size, O_NONBLOCK, why, len);
	if (uffd >= 0) {
		trace_start();
		t0 = now_us();
		if (!uffd_wp(uffd, p, size, true))
			ph[P_WP_WALL] = now_us() - t0;
		trace_stop(&t);
		ph[P_WP_MWP] = tr_us(&t, F_MWP);
		ph[P_WP_CHPROT] = tr_us(&t, F_CHPROT);
		close(uffd);
	}
	unmap(p, size);
}

static void phase_fork(size_t size, double *ph)
{
	char *p = anon_map(size, MADV_NOHUGEPAGE);
	struct tr_sum t;
	int pf[2];
	double t0;
	pid_t pid;

	fill(p, 0x5a, size);
	if (pipe(pf))
		fail("pipe");
	trace_start();
	t0 = now_us();
	pid = fork();
	if (!pid) {
		char c;

		close(pf[1]);
		if (read(pf[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	ph[P_FK_WALL] = now_us() - t0;
	trace_stop(&t);
	if (pid < 0)
		fail("fork");
	ph[P_FK_CLONE] = tr_us(&t, F_CLONE);
	ph[P_FK_COPY] = tr_us(&t, F_COPY);
	close(pf[0]);
	close(pf[1]);
	waitpid(pid, NULL, 0);
	unmap(p, size);
}

static void part_phases(void)
{
	char why[160] = "", missing[256] = "";
	int s, i, f, k;

	if (trace_setup(why, sizeof(why))) {
		printf("\n== 10. phase split: not measured (%s) ==\n", why);
		note(10, 0, "trace", "phase split not measured: %s", why);
		return;
	}
	for (f = 0; f < NFUNC; f++)
		if (!tr_ok[f])
			snprintf(missing + strlen(missing),
				 sizeof(missing) - strlen(missing), " %s",
				 tr_fn[f]);
	if (*missing)
		note(10, 0, "trace", "not traceable here (inlined or absent):%s",
		     missing);

	printf("\n== 10. where the time goes: first snapshot and its baselines, split by ftrace function_graph (median per phase) ==\n");
	printf("%8s %4s  %-72s %10s %8s %9s\n", "size_MiB", "reps", "phase",
	       "us", "% of op", "vs_uf_walk");
	for (s = 0; s < nsizes; s++) {
		size_t size = sizes[s], mib = size / MIB;
		/* A diagnostic: three reps are enough to split a median. */
		int n = reps_at(size) < 3 ? reps_at(size) : 3;
		double ph[NPHASE][16], med[NPHASE], untraced;

		printf("# part 10: %zu MiB\n", mib);
		fflush(stdout);
		for (i = 0; i < n; i++) {
			double one[NPHASE];

			for (k = 0; k < NPHASE; k++)
				one[k] = NAN;
			PHASE("part 10: cowsnap %zu MiB rep %d", mib, i);
			phase_cowsnap(size, true, one);
			PHASE("part 10: cowsnap unmapped %zu MiB rep %d", mib, i);
			phase_cowsnap(size, false, one);
			PHASE("part 10: UFFDIO_WRITEPROTECT %zu MiB rep %d", mib,
			      i);
			phase_uffd(size, one, why, sizeof(why));
			PHASE("part 10: fork %zu MiB rep %d", mib, i);
			phase_fork(size, one);
			for (k = 0; k < NPHASE; k++)
				ph[k][i] = one[k];
		}
		for (k = 0; k < NPHASE; k++)
			med[k] = stats(ph[k], n).med;
		for (k = 0; k < NPHASE; k++) {
			double pct = 100 * med[k] / med[phases[k].whole];
			double vs = med[k] / med[P_WP_CHPROT];

			data(10, mib, phases[k].key, "us", med[k]);
			data(10, mib, phases[k].key, "pct_of_op", pct);
			data(10, mib, phases[k].key, "vs_uffd_walk", vs);
			printf("%8zu %4d  %-72s %10.0f %7.1f%% %9.2f\n", mib, n,
			       phases[k].text, med[k], pct, vs);
		}
		untraced = data_get(2, mib, "cowsnap", "time_us");
		if (!isnan(untraced)) {
			data(10, mib, "cowsnap:wall", "vs_untraced",
			     med[P_CS_WALL] / untraced);
			printf("%8zu %4s  %-72s %10.0f %7.1f%%\n", mib, "",
			       "(part 2's untraced first snapshot, for scale)",
			       untraced, 100 * untraced / med[P_CS_WALL]);
		}
		fflush(stdout);
	}
	printf("(us: median per phase over the reps; %% of op: of the whole call it belongs to; vs_uf_walk: phase / UFFDIO_WRITEPROTECT's change_protection()\n"
	       " walk of the same memory; the three cowsnap PTE walks each cover every PTE of the region)\n");
	trace_off();
}

/* ---- driver ---- */

static int kmsg_fd = -1;

/* Kernel log lines that are reports, not chatter (as scripts/check.sh). */
static bool klog_bad(const char *msg)
{
	static const char *const pat[] = {
		"WARNING:", "BUG:", "BUG ", "Oops", "general protection",
		"refcount_t", "Bad page", "Call Trace", "soft lockup",
		"blocked for more than", "Kernel panic", "list_add corruption",
		"list_del corruption", "UBSAN", "KASAN", "KFENCE:",
		"page allocation failure", "rcu_preempt detected stall",
		"rcu: INFO",
	};
	unsigned int i;

	for (i = 0; i < sizeof(pat) / sizeof(pat[0]); i++)
		if (strstr(msg, pat[i]))
			return true;
	return false;
}

/* Print and record kernel reports logged since the last call. */
static void klog_scan(int part)
{
	char buf[2048];
	int shown = 0;
	ssize_t n;

	if (kmsg_fd < 0)
		return;
	while ((n = read(kmsg_fd, buf, sizeof(buf) - 1)) != 0) {
		char *msg;

		if (n < 0) {
			if (errno == EPIPE)
				continue;	/* overwritten records */
			break;		/* EAGAIN: nothing more */
		}
		buf[n] = 0;
		msg = strchr(buf, ';');
		msg = msg ? msg + 1 : buf;
		msg[strcspn(msg, "\n")] = 0;
		if (!klog_bad(msg))
			continue;
		if (shown++ < 20)
			printf("kernel log (after part %d): %s\n", part, msg);
		rec("KLOG %d %s %s", part, kver, msg);
	}
}

static void run_part(int part, void (*fn)(void))
{
	double t0 = now_us();
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (!pid) {
		struct sigaction sa = { .sa_sigaction = on_fatal_signal,
					.sa_flags = SA_SIGINFO };

		sigaction(SIGBUS, &sa, NULL);
		sigaction(SIGSEGV, &sa, NULL);
		cur_part = part;
		PHASE("part %d: start", part);
		fn();
		printf("# part %d: %.0f s of it filling and releasing memory\n",
		       part, setup_us / 1e6);
		rec("INFO part%d_setup_seconds %.0f", part, setup_us / 1e6);
		fflush(stdout);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status)) {
		printf("ERROR part %d: killed by signal %d (%s)\n", part,
		       WTERMSIG(status), strsignal(WTERMSIG(status)));
		rec("ERROR %d %s killed by signal %d (%s)", part, kver,
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	}
	/* A region a failed part left behind would skew the next one. */
	cs_destroy_quiet("bench");
	cs_destroy_quiet("bench-a");
	cs_destroy_quiet("bench-b");
	printf("# part %d took %.0f s\n", part, (now_us() - t0) / 1e6);
	rec("INFO part%d_seconds %.0f", part, (now_us() - t0) / 1e6);
	klog_scan(part);
	fflush(stdout);
}

static void parse_env(void)
{
	const char *e = getenv("COWSNAP_BENCH_SIZES");
	char buf[256], *tok, *save;
	int i;

	if (!e || !*e)
		e = "64,256,1024";
	snprintf(buf, sizeof(buf), "%s", e);
	for (tok = strtok_r(buf, ",: ", &save); tok && nsizes < MAX_SIZES;
	     tok = strtok_r(NULL, ",: ", &save)) {
		long v = atol(tok);

		if (v > 0)
			sizes[nsizes++] = v * MIB;
	}
	if (!nsizes)
		sizes[nsizes++] = 64 * MIB;
	/* "N" or "N,M": M reps at LARGE_MIB and above (default 3). */
	e = getenv("COWSNAP_BENCH_REPS");
	if (e && atoi(e) > 0) {
		const char *c = strpbrk(e, ",:");

		reps = atoi(e) > 15 ? 15 : atoi(e);
		if (c && atoi(c + 1) > 0)
			reps_large = atoi(c + 1) > 15 ? 15 : atoi(c + 1);
	}
	e = getenv("COWSNAP_BENCH_PARTS");
	if (!e || !*e || !strcmp(e, "all")) {
		for (i = 1; i <= NPARTS; i++)
			part_on[i] = true;
	} else {
		snprintf(buf, sizeof(buf), "%s", e);
		for (tok = strtok_r(buf, ",: ", &save); tok;
		     tok = strtok_r(NULL, ",: ", &save))
			if (atoi(tok) >= 1 && atoi(tok) <= NPARTS)
				part_on[atoi(tok)] = true;
	}
}

int main(void)
{
	struct utsname u;
	char thp[64], defrag[64], cs[64], list[128] = "", params[64];
	long long mem_kb;
	unsigned long max_pages;
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_env();
	uname(&u);
	snprintf(kver, sizeof(kver), "%s", u.release);
	unlink(data_path);

	/* Budget: 3/4 of RAM (the default, half, is too tight for 1 GiB). */
	mem_kb = meminfo_kb("MemTotal");
	max_pages = mem_kb / 4 * 3 / 4;
	if (mod_loaded() && mod_unload()) {
		perror("rmmod cowsnap");
		return 1;
	}
	snprintf(params, sizeof(params), "max_pages=%lu", max_pages);
	if (mod_load(params)) {
		perror("insmod cowsnap");
		return 1;
	}
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	sysfs_choice("/sys/kernel/mm/transparent_hugepage/enabled", thp,
		     sizeof(thp));
	sysfs_choice("/sys/kernel/mm/transparent_hugepage/defrag", defrag,
		     sizeof(defrag));
	read_line("/sys/devices/system/clocksource/clocksource0/current_clocksource",
		  cs, sizeof(cs));
	for (i = 0; i < nsizes; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
			 "%s%zu", i ? "," : "", sizes[i] / MIB);
	rec("INFO kernel %s", kver);
	rec("INFO mem_total_kib %lld", mem_kb);
	rec("INFO cpus %ld", sysconf(_SC_NPROCESSORS_ONLN));
	rec("INFO thp_enabled %s", thp);
	rec("INFO thp_defrag %s", defrag);
	rec("INFO clocksource %s", cs);
	rec("INFO sizes_mib %s", list);
	rec("INFO reps %d", reps);
	rec("INFO reps_large %d %d", reps_at(LARGE_MIB * MIB), LARGE_MIB);
	rec("INFO max_pages %lu", max_pages);
	printf("cowsnap benchmark: kernel %s, %lld MiB RAM, %ld CPUs, THP %s (defrag %s), clocksource %s\n",
	       kver, mem_kb / 1024, sysconf(_SC_NPROCESSORS_ONLN), thp,
	       defrag, cs);
	printf("sizes %s MiB, %s reps of the large operations, module loaded with %s\n",
	       list, reps_desc(), params);
	printf("Times under QEMU TCG: judge the ratios, each against a baseline from this boot.\n");
	klog_scan(0);

	if (part_on[1] || part_on[2])
		run_part(part_on[1] ? 1 : 2, part_save);
	if (part_on[3])
		run_part(3, part_incremental);
	if (part_on[4])
		run_part(4, part_many);
	if (part_on[5])
		run_part(5, part_read);
	if (part_on[6])
		run_part(6, part_first_write);
	if (part_on[7])
		run_part(7, part_restore);
	if (part_on[8])
		run_part(8, part_diff);
	if (part_on[9])
		run_part(9, part_list);
	if (part_on[10])
		run_part(10, part_phases);

	/* The verdicts, then every machine-readable line. */
	{
		FILE *f = fopen(data_path, "r");
		char line[1024], name[64], val[32], op[4], lim[32], v[8];
		size_t mib;
		int p, pass = 0, miss = 0;

		printf("\n== targets ==\n");
		printf("%4s  %8s  %-28s  %10s  %8s  %5s\n", "part", "size_MiB",
		       "check", "measured", "target", "");
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "TARGET %d %*s %zu %63s %31s %3s %31s %7s",
				   &p, &mib, name, val, op, lim, v) == 7) {
				printf("%4d  %8zu  %-28s  %10s  %5s%-3s  %5s\n",
				       p, mib, name, val, op, lim, v);
				pass += !strcmp(v, "PASS");
				miss += strcmp(v, "PASS") != 0;
			}
		printf("%d met, %d missed or not measured\n\n", pass, miss);
		if (f) {
			rewind(f);
			while (fgets(line, sizeof(line), f))
				fputs(line, stdout);
			fclose(f);
		}
	}
	fflush(stdout);
	return 0;
}

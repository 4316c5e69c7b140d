// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmarks, run in the guest by `make bench`.  Under TCG absolute times
 * mean little, so every number is printed beside a baseline measured in the
 * same boot, and the ratio is what matters:
 *
 *  1. restore of 16 dirty pages in fully resident 64 MiB, 256 MiB and 1 GiB
 *     regions (must be flat in region size), against memcpy of the whole
 *     region from a saved copy (what a fuzzer without snapshots does);
 *  2. taking a snapshot of a resident region, against fork() of a process
 *     holding the same amount of anonymous memory, and against memcpy;
 *  3. the first write to a page after a snapshot (cowsnap CoW fault),
 *     against the first write to an anonymous page after fork().
 *
 * Output: one aligned table per part, median of the repetitions.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include "util.h"

#define MIB (1024UL * 1024)

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* A fully resident region of @size; returns its handle, maps it at *@p. */
static int resident_region(const char *name, size_t size, char **p)
{
	int fd = cs_region(name, size);

	if (fd < 0)
		die("create");
	*p = cs_map(fd, size);
	if (!*p)
		die("mmap");
	memset(*p, 0x11, size);
	return fd;
}

static void bench_restore(void)
{
	static const size_t sizes[] = { 64 * MIB, 256 * MIB, 1024 * MIB };
	enum { ROUNDS = 500, DIRTY = 16 };
	unsigned int s;

	printf("\n== restore of %d dirty pages (median of %d) ==\n", DIRTY,
	       ROUNDS);
	printf("%-10s %14s %16s %10s\n", "region", "cowsnap_us",
	       "memcpy_all_us", "speedup");
	for (s = 0; s < 3; s++) {
		size_t size = sizes[s];
		double t[ROUNDS], m[5];
		char *p, *saved;
		int fd, i, k;

		fd = resident_region("bench-restore", size, &p);
		if (!cs_snap(fd, NULL))
			die("snapshot");
		for (i = 0; i < ROUNDS; i++) {
			double t0;

			/* The same pages in every size: only the size varies. */
			for (k = 0; k < DIRTY; k++)
				p[((size_t)(i * 7919 + k * 104729) %
				   (64 * MIB / PG)) * PG] = i;
			t0 = now_us();
			if (cs_restore(fd, 1, 0) < 0)
				die("restore");
			t[i] = now_us() - t0;
		}
		munmap(p, size);
		close(fd);
		cs_destroy_quiet("bench-restore");

		/* Baseline: copy the whole region back from a saved image. */
		saved = malloc(size);
		p = malloc(size);
		if (!saved || !p)
			die("malloc");
		memset(saved, 0x11, size);
		memset(p, 0x22, size);
		for (i = 0; i < 5; i++) {
			double t0 = now_us();

			memcpy(p, saved, size);
			m[i] = now_us() - t0;
		}
		free(saved);
		free(p);
		{
			double c = median(t, ROUNDS), b = median(m, 5);

			printf("%-10zu %14.1f %16.1f %9.0fx\n", size / MIB, c, b,
			       b / c);
		}
	}
	printf("(region in MiB; cowsnap_us flat in size = restore costs the "
	       "dirty pages only)\n");
}

static void bench_snapshot(void)
{
	enum { REPS = 5 };
	const size_t size = 256 * MIB;
	double ts[REPS], tf[REPS], tm[REPS];
	char *p, *anon, *copy;
	int fd, i;

	fd = resident_region("bench-snap", size, &p);
	anon = mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	copy = malloc(size);
	if (anon == MAP_FAILED || !copy)
		die("alloc");
	memset(anon, 0x33, size);
	memset(copy, 0, size);
	for (i = 0; i < REPS; i++) {
		double t0 = now_us();
		uint64_t id = cs_snap(fd, NULL);
		pid_t pid;

		ts[i] = now_us() - t0;
		if (!id || cs_snap_delete(fd, id))
			die("snapshot");
		/* fork() shares the same amount of anonymous memory. */
		t0 = now_us();
		pid = fork();
		if (!pid)
			_exit(0);
		tf[i] = now_us() - t0;
		waitpid(pid, NULL, 0);
		t0 = now_us();
		memcpy(copy, p, size);
		tm[i] = now_us() - t0;
	}
	printf("\n== point-in-time save of 256 MiB resident (median of %d) ==\n",
	       REPS);
	printf("%-22s %12s %8s\n", "method", "time_us", "ratio");
	printf("%-22s %12.1f %8.2f\n", "cowsnap snapshot", median(ts, REPS), 1.0);
	printf("%-22s %12.1f %8.2f\n", "fork()", median(tf, REPS),
	       median(tf, REPS) / median(ts, REPS));
	printf("%-22s %12.1f %8.2f\n", "memcpy", median(tm, REPS),
	       median(tm, REPS) / median(ts, REPS));
	munmap(p, size);
	munmap(anon, size);
	free(copy);
	close(fd);
	cs_destroy_quiet("bench-snap");
}

static void bench_cow(void)
{
	const size_t size = 64 * MIB, npages = size / PG;
	double tc, ta;
	int fd, pipefd[2];
	char *p, *anon;
	size_t i;
	pid_t pid;

	fd = resident_region("bench-cow", size, &p);
	if (!cs_snap(fd, NULL))
		die("snapshot");
	tc = now_us();
	for (i = 0; i < npages; i++)
		p[i * PG] = 1;
	tc = (now_us() - tc) / npages;

	anon = mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED || pipe(pipefd))
		die("anon");
	memset(anon, 0x44, size);
	pid = fork();
	if (!pid) {
		char c;

		read(pipefd[0], &c, 1);	/* keep the pages shared */
		_exit(0);
	}
	ta = now_us();
	for (i = 0; i < npages; i++)
		anon[i * PG] = 1;
	ta = (now_us() - ta) / npages;
	write(pipefd[1], "x", 1);
	waitpid(pid, NULL, 0);
	printf("\n== first write to a page after the save (64 MiB, per page) ==\n");
	printf("%-28s %10s %8s\n", "method", "us/page", "ratio");
	printf("%-28s %10.2f %8.2f\n", "cowsnap CoW fault", tc, 1.0);
	printf("%-28s %10.2f %8.2f\n", "anonymous CoW after fork()", ta, ta / tc);
	munmap(p, size);
	munmap(anon, size);
	close(fd);
	cs_destroy_quiet("bench-cow");
}

int main(void)
{
	/* The default budget is half of RAM; the 1 GiB case needs more. */
	if (mod_loaded() && mod_unload())
		die("rmmod");
	if (mod_load("max_pages=700000"))
		die("insmod");
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_restore();
	bench_snapshot();
	bench_cow();
	return 0;
}

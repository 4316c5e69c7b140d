// SPDX-License-Identifier: GPL-2.0
/*
 * Regions, live mappings, snapshots, copy-on-write and accounting
 * (docs/semantics.md: objects, guarantees 1, 2, 4 and 6, bad input).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include "harness.h"
#include "util.h"

#define NPG 64
#define SZ (NPG * PG)

FIXTURE(region) {
	int fd;
	char *p;
	char name[32];
};

FIXTURE_SETUP(region)
{
	snprintf(self->name, sizeof(self->name), "core-%d", getpid());
	self->fd = cs_region(self->name, SZ);
	ASSERT_GE(self->fd, 0);
	self->p = cs_map(self->fd, SZ);
	ASSERT_TRUE(self->p != NULL);
}

FIXTURE_TEARDOWN(region)
{
	cs_destroy_quiet(self->name);
}

/* Read snapshot @id of the region on @fd into a new buffer of @size. */
static char *snap_read(int fd, uint64_t id, size_t size)
{
	char *buf = malloc(size);
	int sfd = cs_snap_open(fd, id);

	ASSERT_GE(sfd, 0);
	ASSERT_EQ(pread(sfd, buf, size, 0), size);
	close(sfd);
	return buf;
}

TEST_F(region, new_region_reads_zero)
{
	struct cowsnap_info info;
	char buf[PG];

	ASSERT_TRUE(all_zero(self->p, SZ));
	ASSERT_EQ(pread(self->fd, buf, PG, 5 * PG), PG);
	ASSERT_TRUE(all_zero(buf, PG));
	ASSERT_EQ(cs_info(self->fd, &info), 0);
	ASSERT_EQ(info.size, SZ);
	ASSERT_EQ(info.nr_snapshots, 0);
	ASSERT_EQ(info.newest_snapshot, 0);
	ASSERT_EQ(info.mode, 0600);
	ASSERT_EQ(info.uid, 0);
	ASSERT_TRUE(info.flags & COWSNAP_INFO_WRITABLE);
	ASSERT_EQ(strcmp(info.name, self->name), 0);
	ASSERT_LE(info.resident_pages, NPG);
}

TEST_F(region, data_survives_remap_reattach_and_other_process)
{
	int fd2, status;
	char *q;
	pid_t pid;
	size_t i;

	for (i = 0; i < NPG; i++)
		fill_page(self->p, i, 1);
	ASSERT_EQ(munmap(self->p, SZ), 0);
	self->p = cs_map(self->fd, SZ);
	for (i = 0; i < NPG; i++)
		ASSERT_TRUE(check_page(self->p, i, 1));
	ASSERT_EQ(munmap(self->p, SZ), 0);
	close(self->fd);

	fd2 = cs_open();
	ASSERT_EQ(cs_attach(fd2, self->name), 0);
	q = cs_map(fd2, SZ);
	ASSERT_TRUE(q != NULL);
	for (i = 0; i < NPG; i++)
		ASSERT_TRUE(check_page(q, i, 1));

	pid = fork();
	if (!pid) {
		int fd3 = cs_open();
		char *r;

		if (cs_attach(fd3, self->name))
			_exit(2);
		r = cs_map(fd3, SZ);
		if (!r)
			_exit(3);
		for (i = 0; i < NPG; i++)
			if (!check_page(r, i, 1))
				_exit(4);
		fill_page(r, 7, 2);
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(status, 0);
	ASSERT_TRUE(check_page(q, 7, 2));
	self->fd = fd2;
	self->p = q;
}

/* A second process maps the region; both write and read around a snapshot. */
TEST_F(region, two_processes_stay_coherent_across_snapshot_and_cow)
{
	int to_child[2], to_parent[2], status;
	volatile uint64_t *w = (volatile uint64_t *)self->p;
	pid_t pid;
	char c;

	ASSERT_EQ(pipe(to_child), 0);
	ASSERT_EQ(pipe(to_parent), 0);
	w[0] = 1;
	pid = fork();
	if (!pid) {
		int fd = cs_open();
		volatile uint64_t *v;

		if (cs_attach(fd, self->name))
			_exit(2);
		v = cs_map(fd, SZ);
		if (!v)
			_exit(3);
		/* Step 1: sees the parent's store; stores back. */
		if (v[0] != 1)
			_exit(4);
		v[0] = 2;
		write(to_parent[1], "a", 1);
		/* Step 2: after the parent's snapshot and CoW write. */
		read(to_child[0], &c, 1);
		if (v[0] != 3)
			_exit(5);
		v[512] = 4;	/* page 1, shared with the snapshot: CoW */
		write(to_parent[1], "b", 1);
		/* Step 3: after the parent's write to page 1. */
		read(to_child[0], &c, 1);
		if (v[512] != 5)
			_exit(6);
		_exit(0);
	}
	ASSERT_EQ(read(to_parent[0], &c, 1), 1);
	ASSERT_EQ(w[0], 2);
	ASSERT_NE(cs_snap(self->fd, NULL), 0);
	w[0] = 3;		/* CoW in the parent */
	ASSERT_EQ(write(to_child[1], "x", 1), 1);
	ASSERT_EQ(read(to_parent[0], &c, 1), 1);
	ASSERT_EQ(w[512], 4);	/* the child's copy is the live page */
	w[512] = 5;
	ASSERT_EQ(write(to_child[1], "y", 1), 1);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(status, 0);
}

struct writer {
	char *p;
	size_t npages;
	atomic_int stop;
	atomic_ulong rounds;
};

/* Store a round number into every word of every page, forever. */
static void *writer_fn(void *arg)
{
	struct writer *wr = arg;
	uint64_t round = 0;

	while (!atomic_load(&wr->stop)) {
		size_t i, k;

		round++;
		for (i = 0; i < wr->npages; i++) {
			uint64_t *w = (uint64_t *)(wr->p + i * PG);

			for (k = 0; k < PG / 8; k += 64)
				w[k] = round;
		}
		atomic_store(&wr->rounds, round);
	}
	return NULL;
}

TEST_F(region, snapshot_unchanged_while_threads_write_every_page)
{
	struct writer wr = { .p = self->p, .npages = NPG };
	pthread_t t[2];
	int round, i;

	for (i = 0; i < 2; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, writer_fn, &wr), 0);
	for (round = 0; round < 20; round++) {
		uint64_t id = cs_snap(self->fd, NULL);
		char *a, *b;

		ASSERT_NE(id, 0);
		a = snap_read(self->fd, id, SZ);
		usleep(20000);		/* writers keep writing */
		b = snap_read(self->fd, id, SZ);
		if (memcmp(a, b, SZ))
			FAIL("round %d: snapshot %llu changed", round,
			     (unsigned long long)id);
		/* The mapped snapshot agrees with pread. */
		{
			int sfd = cs_snap_open(self->fd, id);
			char *m = mmap(NULL, SZ, PROT_READ, MAP_SHARED, sfd, 0);

			ASSERT_TRUE(m != MAP_FAILED);
			usleep(5000);
			ASSERT_EQ(memcmp(a, m, SZ), 0);
			munmap(m, SZ);
			close(sfd);
		}
		free(a);
		free(b);
		ASSERT_EQ(cs_snap_delete(self->fd, id), 0);
	}
	atomic_store(&wr.stop, 1);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	ASSERT_GT(atomic_load(&wr.rounds), 20);
}

struct ab {
	volatile uint64_t *a, *b;
	atomic_int stop;
};

/* Store n to page A, then n to page B: B never runs ahead of A. */
static void *ab_writer(void *arg)
{
	struct ab *ab = arg;
	uint64_t n = 0;

	while (!atomic_load(&ab->stop)) {
		n++;
		*ab->a = n;
		atomic_thread_fence(memory_order_seq_cst);
		*ab->b = n;
	}
	return NULL;
}

TEST_F(region, snapshot_is_a_consistent_cut)
{
	struct ab ab;
	pthread_t t;
	int round;

	/* A and B in different pages, B before A in the region. */
	ab.a = (volatile uint64_t *)(self->p + 40 * PG);
	ab.b = (volatile uint64_t *)(self->p + 3 * PG);
	atomic_init(&ab.stop, 0);
	ASSERT_EQ(pthread_create(&t, NULL, ab_writer, &ab), 0);
	for (round = 0; round < 200; round++) {
		uint64_t id = cs_snap(self->fd, NULL), a, b;
		int sfd;

		ASSERT_NE(id, 0);
		sfd = cs_snap_open(self->fd, id);
		ASSERT_EQ(pread(sfd, &a, 8, 40 * PG), 8);
		ASSERT_EQ(pread(sfd, &b, 8, 3 * PG), 8);
		close(sfd);
		if (b > a)
			FAIL("round %d: snapshot holds B=%llu but A=%llu", round,
			     (unsigned long long)b, (unsigned long long)a);
		ASSERT_EQ(cs_snap_delete(self->fd, id), 0);
	}
	atomic_store(&ab.stop, 1);
	pthread_join(t, NULL);
	ASSERT_GT(*ab.a, 100);
}

TEST_F(region, cow_copies_each_written_page_once)
{
	long long cow0, copied0, alloc0;
	size_t i;

	for (i = 0; i < NPG; i++)
		fill_page(self->p, i, 1);
	/* Unshared pages are written in place. */
	cow0 = proc_counter("cow_faults");
	for (i = 0; i < NPG; i++)
		fill_page(self->p, i, 2);
	ASSERT_EQ(proc_counter("cow_faults"), cow0);

	ASSERT_NE(cs_snap(self->fd, NULL), 0);
	cow0 = proc_counter("cow_faults");
	copied0 = proc_counter("bytes_copied");
	alloc0 = proc_counter("pages_allocated");
	/* Reads copy nothing. */
	for (i = 0; i < NPG; i++)
		ASSERT_TRUE(check_page(self->p, i, 2));
	ASSERT_EQ(proc_counter("cow_faults"), cow0);
	/* 10 distinct pages written, twice each. */
	for (i = 0; i < 10; i++)
		fill_page(self->p, i * 5, 3);
	for (i = 0; i < 10; i++)
		fill_page(self->p, i * 5, 4);
	ASSERT_EQ(proc_counter("cow_faults"), cow0 + 10);
	ASSERT_EQ(proc_counter("bytes_copied"), copied0 + 10 * PG);
	ASSERT_EQ(proc_counter("pages_allocated"), alloc0 + 10);
	/* pwrite is a store too: one more page copied, once. */
	{
		char buf[PG];

		memset(buf, 0x5a, PG);
		ASSERT_EQ(pwrite(self->fd, buf, PG, 1 * PG), PG);
		ASSERT_EQ(pwrite(self->fd, buf, PG, 1 * PG), PG);
		ASSERT_EQ(proc_counter("cow_faults"), cow0 + 11);
		ASSERT_EQ(memcmp(self->p + PG, buf, PG), 0);
	}
}

TEST_F(region, hundred_snapshots_each_keep_their_contents)
{
	uint64_t ids[100];
	int n, i;

	for (n = 0; n < 100; n++) {
		/* Each generation rewrites a different subset. */
		for (i = 0; i < NPG; i++)
			if ((i + n) % 3 == 0 || n == 0)
				fill_page(self->p, i, 1000 + n);
		ids[n] = cs_snap(self->fd, NULL);
		ASSERT_EQ(ids[n], n + 1);
	}
	for (n = 0; n < 100; n++) {
		char *s = snap_read(self->fd, ids[n], SZ);

		for (i = 0; i < NPG; i++) {
			int g;

			/* The last generation <= n that wrote page i. */
			for (g = n; g > 0 && (i + g) % 3 != 0; g--)
				;
			if (!check_page(s, i, 1000 + g))
				FAIL("snapshot %d page %d", n + 1, i);
		}
		free(s);
	}
}

/* Delete 4 snapshots in every order: pages return to what live needs. */
TEST_F(region, delete_in_any_order_frees_exactly)
{
	static const int perms[24][4] = {
		{0,1,2,3},{0,1,3,2},{0,2,1,3},{0,2,3,1},{0,3,1,2},{0,3,2,1},
		{1,0,2,3},{1,0,3,2},{1,2,0,3},{1,2,3,0},{1,3,0,2},{1,3,2,0},
		{2,0,1,3},{2,0,3,1},{2,1,0,3},{2,1,3,0},{2,3,0,1},{2,3,1,0},
		{3,0,1,2},{3,0,2,1},{3,1,0,2},{3,1,2,0},{3,2,0,1},{3,2,1,0},
	};
	long long base = proc_counter("pages_allocated");
	long long meta0 = proc_counter("meta_bytes");
	int p, k;
	size_t i;

	for (i = 0; i < NPG; i++)
		fill_page(self->p, i, 1);
	ASSERT_EQ(proc_counter("pages_allocated"), base + NPG);
	for (p = 0; p < 24; p++) {
		uint64_t ids[4];

		for (k = 0; k < 4; k++) {
			ids[k] = cs_snap(self->fd, NULL);
			ASSERT_NE(ids[k], 0);
			for (i = k; i < NPG; i += 4)
				fill_page(self->p, i, 10 + k);
		}
		/* Each snapshot keeps the NPG/4 pages rewritten after it. */
		ASSERT_EQ(proc_counter("pages_allocated"), base + 2 * NPG);
		for (k = 0; k < 4; k++)
			ASSERT_EQ(cs_snap_delete(self->fd, ids[perms[p][k]]), 0);
		ASSERT_EQ(proc_counter("pages_allocated"), base + NPG);
		ASSERT_EQ(proc_counter("pages_shared"), 0);
	}
	for (i = 0; i < NPG; i++)
		ASSERT_TRUE(check_page(self->p, i, 10 + i % 4));
	/* What the module holds, exactly (MemFree moves with KASAN). */
	ASSERT_EQ(proc_counter("meta_bytes"), meta0);
	ASSERT_EQ(proc_counter("records"), 0);
	munmap(self->p, SZ);
	close(self->fd);
	cs_destroy_quiet(self->name);
	ASSERT_EQ(proc_counter("pages_allocated"), base);
	self->fd = cs_open();
	self->p = NULL;
}

TEST_F(region, snapshot_accounting_is_exact)
{
	struct cowsnap_snap_entry e[4];
	struct cowsnap_snap_list l = { .entries = (uintptr_t)e, .count = 4 };
	struct cowsnap_info info;
	uint64_t s1, s2;
	size_t i;

	for (i = 0; i < 8; i++)
		fill_page(self->p, i, 1);
	s1 = cs_snap(self->fd, "first");
	for (i = 0; i < 2; i++)
		fill_page(self->p, i, 2);	/* s1 alone holds 2 pages */
	s2 = cs_snap(self->fd, NULL);
	fill_page(self->p, 0, 3);		/* s2 alone holds page 0 */
	ASSERT_EQ(ioctl(self->fd, COWSNAP_IOC_SNAP_LIST, &l), 0);
	ASSERT_EQ(l.count, 2);
	ASSERT_EQ(l.next_id, 0);
	ASSERT_EQ(e[0].id, s1);
	ASSERT_EQ(strcmp(e[0].label, "first"), 0);
	ASSERT_EQ(e[0].referenced_pages, 8);
	ASSERT_EQ(e[0].exclusive_pages, 2);
	ASSERT_EQ(e[1].id, s2);
	ASSERT_EQ(e[1].label[0], 0);
	ASSERT_EQ(e[1].referenced_pages, 8);
	ASSERT_EQ(e[1].exclusive_pages, 1);
	ASSERT_GE(e[1].ctime_ns, e[0].ctime_ns);
	ASSERT_EQ(cs_info(self->fd, &info), 0);
	ASSERT_EQ(info.resident_pages, 8);
	ASSERT_EQ(info.shared_pages, 7);	/* pages 1..7 */
	ASSERT_EQ(info.nr_snapshots, 2);
	ASSERT_EQ(info.newest_snapshot, s2);

	/* Resumable listing, one entry at a time. */
	l.count = 1;
	l.start_id = 0;
	ASSERT_EQ(ioctl(self->fd, COWSNAP_IOC_SNAP_LIST, &l), 0);
	ASSERT_EQ(l.count, 1);
	ASSERT_EQ(e[0].id, s1);
	ASSERT_EQ(l.next_id, s2);
	l.start_id = l.next_id;
	l.next_id = 0;
	l.count = 1;
	ASSERT_EQ(ioctl(self->fd, COWSNAP_IOC_SNAP_LIST, &l), 0);
	ASSERT_EQ(l.count, 1);
	ASSERT_EQ(e[0].id, s2);
	ASSERT_EQ(l.next_id, 0);
}

TEST(sparse_1tib_region_costs_a_few_pages)
{
	const uint64_t size = 1ULL << 40;
	long long base = proc_counter("pages_allocated");
	struct cowsnap_info info;
	char *p;
	int fd = cs_region("core-tib", size);
	uint64_t id;

	ASSERT_GE(fd, 0);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		 fd, 0);
	ASSERT_TRUE(p != MAP_FAILED);
	p[0] = 1;
	p[size / 2] = 2;
	p[size - 1] = 3;
	ASSERT_EQ(cs_info(fd, &info), 0);
	ASSERT_EQ(info.resident_pages, 3);
	ASSERT_EQ(proc_counter("pages_allocated"), base + 3);
	id = cs_snap(fd, NULL);
	ASSERT_NE(id, 0);
	p[size - 1] = 4;
	ASSERT_EQ(proc_counter("pages_allocated"), base + 4);
	{
		int sfd = cs_snap_open(fd, id);
		char c;

		ASSERT_EQ(pread(sfd, &c, 1, size - 1), 1);
		ASSERT_EQ(c, 3);
		ASSERT_EQ(pread(sfd, &c, 1, size / 4), 1);
		ASSERT_EQ(c, 0);
		ASSERT_EQ(lseek(sfd, 0, SEEK_END), size);
		close(sfd);
	}
	munmap(p, size);
	close(fd);
	cs_destroy_quiet("core-tib");
	ASSERT_EQ(proc_counter("pages_allocated"), base);
}

TEST_F(region, fork_child_shares_the_live_view)
{
	volatile uint64_t *w = (volatile uint64_t *)self->p;
	int status;
	pid_t pid;

	w[0] = 11;
	pid = fork();
	if (!pid) {
		if (w[0] != 11)
			_exit(2);
		w[0] = 12;
		w[1024] = 13;
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(status, 0);
	ASSERT_EQ(w[0], 12);
	ASSERT_EQ(w[1024], 13);
	/* And after a snapshot, the child's CoW write reaches the parent. */
	ASSERT_NE(cs_snap(self->fd, NULL), 0);
	pid = fork();
	if (!pid) {
		w[0] = 14;
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(w[0], 14);
}

TEST_F(region, mremap_mprotect_madvise_on_live_and_snapshot)
{
	char *q, *s, *hole;
	uint64_t id;
	int sfd;

	fill_page(self->p, 0, 1);
	fill_page(self->p, 1, 1);
	id = cs_snap(self->fd, NULL);
	ASSERT_NE(id, 0);
	/* mremap moves the live mapping; data and CoW follow. */
	hole = mmap(NULL, 4 * SZ, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(hole != MAP_FAILED);
	q = mremap(self->p, SZ, SZ, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
	ASSERT_TRUE(q == hole);
	self->p = q;
	ASSERT_TRUE(check_page(q, 0, 1));
	fill_page(q, 0, 2);
	/* Growing is refused. */
	ASSERT_TRUE(mremap(q, SZ, 2 * SZ, 0) == MAP_FAILED);
	/* mprotect read-only then back. */
	ASSERT_EQ(mprotect(q, SZ, PROT_READ), 0);
	ASSERT_TRUE(check_page(q, 1, 1));
	ASSERT_EQ(mprotect(q, SZ, PROT_READ | PROT_WRITE), 0);
	fill_page(q, 1, 2);
	/* MADV_DONTNEED drops PTEs, not data. */
	ASSERT_EQ(madvise(q, SZ, MADV_DONTNEED), 0);
	ASSERT_TRUE(check_page(q, 0, 2));
	ASSERT_TRUE(check_page(q, 1, 2));

	sfd = cs_snap_open(self->fd, id);
	ASSERT_GE(sfd, 0);
	s = mmap(NULL, SZ, PROT_READ, MAP_SHARED, sfd, 0);
	ASSERT_TRUE(s != MAP_FAILED);
	ASSERT_TRUE(check_page(s, 0, 1));
	ASSERT_ERRNO(mprotect(s, SZ, PROT_READ | PROT_WRITE), EACCES);
	ASSERT_EQ(madvise(s, SZ, MADV_DONTNEED), 0);
	ASSERT_TRUE(check_page(s, 0, 1));
	s = mremap(s, SZ, SZ, MREMAP_MAYMOVE | MREMAP_FIXED, hole + 2 * SZ);
	ASSERT_TRUE(s == hole + 2 * SZ);
	ASSERT_TRUE(check_page(s, 1, 1));
	ASSERT_TRUE(all_zero(s + 2 * PG, PG));	/* a hole in the snapshot */
	close(sfd);
}

TEST_F(region, snapshot_fd_refuses_every_write)
{
	char buf[PG], *s;
	struct iovec local, remote;
	uint64_t id;
	int sfd, mem;

	fill_page(self->p, 0, 1);
	id = cs_snap(self->fd, NULL);
	sfd = cs_snap_open(self->fd, id);
	ASSERT_GE(sfd, 0);
	ASSERT_TRUE(mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0) ==
		    MAP_FAILED);
	ASSERT_EQ(errno, EACCES);
	ASSERT_TRUE(mmap(NULL, SZ, PROT_READ, MAP_PRIVATE, sfd, 0) == MAP_FAILED);
	ASSERT_EQ(errno, EINVAL);
	ASSERT_ERRNO(write(sfd, buf, 1), EBADF);
	s = mmap(NULL, SZ, PROT_READ, MAP_SHARED, sfd, 0);
	ASSERT_TRUE(s != MAP_FAILED);
	memset(buf, 0xee, PG);
	mem = open("/proc/self/mem", O_RDWR);
	ASSERT_GE(mem, 0);
	ASSERT_EQ(pwrite(mem, buf, 16, (uintptr_t)s), -1);
	close(mem);
	local.iov_base = buf;
	local.iov_len = 16;
	remote.iov_base = s;
	remote.iov_len = 16;
	ASSERT_EQ(process_vm_writev(getpid(), &local, 1, &remote, 1, 0), -1);
	ASSERT_TRUE(check_page(s, 0, 1));
	ASSERT_EQ(pread(sfd, buf, PG, 0), PG);
	ASSERT_TRUE(check_page(buf, 0, 1));
	/* lseek and reads past the end. */
	ASSERT_EQ(lseek(sfd, 0, SEEK_END), SZ);
	ASSERT_EQ(read(sfd, buf, PG), 0);
	ASSERT_EQ(lseek(sfd, PG, SEEK_SET), PG);
	ASSERT_EQ(read(sfd, buf, 8), 8);
	/* Writes to the live view through /proc/self/mem are CoW. */
	mem = open("/proc/self/mem", O_RDWR);
	ASSERT_EQ(pwrite(mem, "abcdefgh", 8, (uintptr_t)self->p), 8);
	close(mem);
	ASSERT_EQ(memcmp(self->p, "abcdefgh", 8), 0);
	ASSERT_TRUE(check_page(s, 0, 1));
}

TEST_F(region, deleted_snapshot_stays_readable_through_open_fd)
{
	long long base;
	uint64_t id;
	char *s;
	int sfd;

	fill_page(self->p, 0, 1);
	id = cs_snap(self->fd, NULL);
	fill_page(self->p, 0, 2);	/* the snapshot alone holds seed 1 */
	sfd = cs_snap_open(self->fd, id);
	s = mmap(NULL, SZ, PROT_READ, MAP_SHARED, sfd, 0);
	ASSERT_TRUE(s != MAP_FAILED);
	base = proc_counter("pages_allocated");
	ASSERT_EQ(cs_snap_delete(self->fd, id), 0);
	ASSERT_ERRNO(cs_snap_delete(self->fd, id), ENOENT);
	ASSERT_ERRNO(cs_snap_open(self->fd, id), ENOENT);
	ASSERT_TRUE(check_page(s, 0, 1));
	close(sfd);
	ASSERT_TRUE(check_page(s, 0, 1));
	ASSERT_EQ(proc_counter("pages_allocated"), base);
	munmap(s, SZ);
	ASSERT_EQ(proc_counter("pages_allocated"), base - 1);
}

TEST(destroy_unlinks_name_but_keeps_open_handles)
{
	struct cowsnap_info info;
	long long base = proc_counter("pages_allocated");
	int fd = cs_region("core-unlink", SZ), fd2;
	char *p;

	ASSERT_GE(fd, 0);
	p = cs_map(fd, SZ);
	fill_page(p, 3, 9);
	fd2 = cs_open();
	ASSERT_EQ(cs_destroy(fd2, "core-unlink"), 0);
	ASSERT_ERRNO(cs_attach(fd2, "core-unlink"), ENOENT);
	ASSERT_ERRNO(cs_destroy(fd2, "core-unlink"), ENOENT);
	/* The name is free again at once. */
	ASSERT_EQ(cs_create(fd2, "core-unlink", PG, 0600), 0);
	ASSERT_TRUE(check_page(p, 3, 9));
	ASSERT_EQ(cs_info(fd, &info), 0);
	ASSERT_TRUE(info.flags & COWSNAP_INFO_DESTROYED);
	ASSERT_EQ(info.name[0], 0);
	close(fd);
	ASSERT_TRUE(check_page(p, 3, 9));
	munmap(p, SZ);
	ASSERT_EQ(proc_counter("pages_allocated"), base);
	ASSERT_EQ(cs_destroy(fd2, "core-unlink"), 0);
	close(fd2);
}

/* O_DIRECT reads from a RAM disk into the live mapping, racing snapshots. */
TEST_F(region, odirect_read_racing_snapshot_cannot_change_it)
{
	static char pat[2][PG] __attribute__((aligned(4096)));
	int dfd, status, round;
	pid_t pid;

	if (access("/dev/ram0", F_OK)) {
		int ko = open("/lib/modules/brd.ko", O_RDONLY);

		/* Shipped for every Debian kernel; absent from the debug one. */
		if (ko < 0)
			SKIP("this kernel has no brd (RAM disk) module");
		ASSERT_EQ(syscall(SYS_finit_module, ko, "rd_nr=1 rd_size=1024",
				  0), 0);
		close(ko);
	}
	dfd = open("/dev/ram0", O_RDWR | O_DIRECT);
	ASSERT_GE(dfd, 0);
	memset(pat[0], 0xaa, PG);
	memset(pat[1], 0x55, PG);
	ASSERT_EQ(pwrite(dfd, pat[0], PG, 0), PG);
	ASSERT_EQ(pwrite(dfd, pat[1], PG, PG), PG);
	pid = fork();
	if (!pid) {
		/* Alternate the two patterns into page 5, forever. */
		for (unsigned long n = 0;; n++)
			if (pread(dfd, self->p + 5 * PG, PG, (n & 1) * PG) != PG)
				_exit(2);
	}
	for (round = 0; round < 200; round++) {
		uint64_t id = cs_snap(self->fd, NULL);
		char a[PG], b[PG];
		int sfd;

		ASSERT_NE(id, 0);
		sfd = cs_snap_open(self->fd, id);
		ASSERT_EQ(pread(sfd, a, PG, 5 * PG), PG);
		usleep(2000);
		ASSERT_EQ(pread(sfd, b, PG, 5 * PG), PG);
		if (memcmp(a, b, PG))
			FAIL("round %d: snapshot page changed under O_DIRECT",
			     round);
		close(sfd);
		ASSERT_EQ(cs_snap_delete(self->fd, id), 0);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(dfd);
}

TEST_F(region, map_private_and_out_of_range_are_refused)
{
	ASSERT_TRUE(mmap(NULL, SZ, PROT_READ, MAP_PRIVATE, self->fd, 0) ==
		    MAP_FAILED);
	ASSERT_EQ(errno, EINVAL);
	ASSERT_TRUE(mmap(NULL, SZ + PG, PROT_READ, MAP_SHARED, self->fd, 0) ==
		    MAP_FAILED);
	ASSERT_EQ(errno, EINVAL);
	ASSERT_TRUE(mmap(NULL, PG, PROT_READ, MAP_SHARED, self->fd, SZ) ==
		    MAP_FAILED);
	ASSERT_EQ(errno, EINVAL);
	/* The last page is fine. */
	ASSERT_TRUE(mmap(NULL, PG, PROT_READ, MAP_SHARED, self->fd, SZ - PG) !=
		    MAP_FAILED);
}

TEST(create_rejects_bad_input_and_changes_nothing)
{
	struct cowsnap_create c;
	long long regions = proc_counter("regions");
	int fd = cs_open();
	char name[80];

	ASSERT_GE(fd, 0);
	ASSERT_ERRNO(cs_create(fd, "core-bad", 0, 0600), EINVAL);
	ASSERT_ERRNO(cs_create(fd, "core-bad", 100, 0600), EINVAL);
	ASSERT_ERRNO(cs_create(fd, "core-bad", PG + 1, 0600), EINVAL);
	ASSERT_ERRNO(cs_create(fd, "core-bad", -4096ULL, 0600), E2BIG);
	ASSERT_ERRNO(cs_create(fd, "core-bad", PG, 01777), EINVAL);
	ASSERT_ERRNO(cs_create(fd, "", PG, 0600), EINVAL);
	ASSERT_ERRNO(cs_create(fd, ".hidden", PG, 0600), EINVAL);
	ASSERT_ERRNO(cs_create(fd, "a/b", PG, 0600), EINVAL);
	ASSERT_ERRNO(cs_create(fd, "a b", PG, 0600), EINVAL);
	ASSERT_ERRNO(cs_create(fd, "caf\xe9", PG, 0600), EINVAL);	/* Latin-1 */
	memset(name, 'x', sizeof(name));
	name[63] = 0;
	ASSERT_EQ(cs_create(fd, name, PG, 0600), 0);	/* 63 bytes: ok */
	ASSERT_EQ(cs_destroy(fd, name), 0);
	close(fd);
	fd = cs_open();
	memset(&c, 0, sizeof(c));
	memset(c.name, 'y', sizeof(c.name));		/* no NUL: too long */
	c.size = PG;
	ASSERT_ERRNO(ioctl(fd, COWSNAP_IOC_CREATE, &c), ENAMETOOLONG);
	memset(&c, 0, sizeof(c));
	strcpy(c.name, "core-bad");
	c.size = PG;
	c.flags = 1;
	ASSERT_ERRNO(ioctl(fd, COWSNAP_IOC_CREATE, &c), EINVAL);
	c.flags = 0;
	c.reserved[1] = 1;
	ASSERT_ERRNO(ioctl(fd, COWSNAP_IOC_CREATE, &c), EINVAL);
	ASSERT_ERRNO(ioctl(fd, COWSNAP_IOC_CREATE, (void *)16), EFAULT);
	ASSERT_EQ(proc_counter("regions"), regions);
	/* Duplicate names, and a handle attaches once. */
	ASSERT_EQ(cs_create(fd, "core-bad", PG, 0600), 0);
	ASSERT_ERRNO(cs_create(fd, "core-bad2", PG, 0600), EBUSY);
	ASSERT_ERRNO(cs_attach(fd, "core-bad"), EBUSY);
	{
		int fd2 = cs_open();

		ASSERT_ERRNO(cs_create(fd2, "core-bad", PG, 0600), EEXIST);
		ASSERT_ERRNO(cs_attach(fd2, "core-nope"), ENOENT);
		ASSERT_ERRNO(cs_attach(fd2, "bad name"), EINVAL);
		close(fd2);
	}
	ASSERT_EQ(proc_counter("regions"), regions + 1);
	ASSERT_EQ(cs_destroy(fd, "core-bad"), 0);
	close(fd);
}

TEST_F(region, snapshot_ioctls_reject_bad_input)
{
	struct cowsnap_snap_create sc;
	struct cowsnap_snap_list l;
	struct cowsnap_snap_id d;
	struct cowsnap_snap_open o;
	int fd = cs_open();

	fill_page(self->p, 0, 1);
	/* Not attached. */
	ASSERT_ERRNO(cs_snap(fd, NULL) ? 0 : -1, EINVAL);
	ASSERT_ERRNO(mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED ?
		     -1 : 0, EINVAL);
	close(fd);
	memset(&sc, 0, sizeof(sc));
	strcpy(sc.label, "bad label");
	ASSERT_ERRNO(ioctl(self->fd, COWSNAP_IOC_SNAP_CREATE, &sc), EINVAL);
	memset(&sc, 0, sizeof(sc));
	sc.flags = 2;
	ASSERT_ERRNO(ioctl(self->fd, COWSNAP_IOC_SNAP_CREATE, &sc), EINVAL);
	memset(&sc, 0, sizeof(sc));
	memset(sc.label, 'z', sizeof(sc.label));
	ASSERT_ERRNO(ioctl(self->fd, COWSNAP_IOC_SNAP_CREATE, &sc),
		     ENAMETOOLONG);
	ASSERT_ERRNO(ioctl(self->fd, COWSNAP_IOC_SNAP_CREATE, (void *)8), EFAULT);
	ASSERT_ERRNO(cs_snap_delete(self->fd, 1), ENOENT);
	ASSERT_ERRNO(cs_snap_delete(self->fd, 0), ENOENT);
	ASSERT_ERRNO(cs_snap_open(self->fd, 5), ENOENT);
	memset(&d, 0, sizeof(d));
	d.reserved = 1;
	ASSERT_ERRNO(ioctl(self->fd, COWSNAP_IOC_SNAP_DELETE, &d), EINVAL);
	memset(&o, 0, sizeof(o));
	o.flags = 0x80;
	ASSERT_ERRNO(ioctl(self->fd, COWSNAP_IOC_SNAP_OPEN, &o), EINVAL);
	memset(&l, 0, sizeof(l));
	l.count = 4;
	l.flags = 1;
	ASSERT_ERRNO(ioctl(self->fd, COWSNAP_IOC_SNAP_LIST, &l), EINVAL);
	ASSERT_EQ(cs_snap(self->fd, NULL), 1);
	memset(&l, 0, sizeof(l));
	l.count = 4;
	l.entries = 16;
	ASSERT_ERRNO(ioctl(self->fd, COWSNAP_IOC_SNAP_LIST, &l), EFAULT);
	/* Nothing was lost on the way, and ids keep increasing. */
	ASSERT_TRUE(check_page(self->p, 0, 1));
	ASSERT_EQ(cs_snap_delete(self->fd, 1), 0);
	ASSERT_EQ(cs_snap(self->fd, NULL), 2);
}

TEST(snapshot_cap_is_enospc)
{
	/* max_snapshots defaults to 4096: take them, the next is refused. */
	int fd = cs_region("core-cap", PG);
	unsigned int i;

	ASSERT_GE(fd, 0);
	for (i = 0; i < 4096; i++)
		ASSERT_NE(cs_snap(fd, NULL), 0);
	ASSERT_ERRNO(cs_snap(fd, NULL) ? 0 : -1, ENOSPC);
	ASSERT_EQ(cs_snap_delete(fd, 1), 0);
	ASSERT_EQ(cs_snap(fd, NULL), 4097);
	close(fd);
	cs_destroy_quiet("core-cap");
}

/* Run @fn as uid/gid 65534 in a child on a handle opened by root. */
static int as_nobody(int (*fn)(int fd, const char *name), int fd,
		     const char *name)
{
	int status;
	pid_t pid = fork();

	if (!pid) {
		if (setgid(65534) || setuid(65534))
			_exit(99);
		_exit(fn(fd, name));
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 98;
}

static int nobody_attach(int fd, const char *name)
{
	return cs_attach(fd, name) ? errno : 0;
}

static int nobody_destroy(int fd, const char *name)
{
	return cs_destroy(fd, name) ? errno : 0;
}

TEST(region_permissions_follow_mode_and_owner)
{
	int fd = cs_open(), h;

	ASSERT_GE(fd, 0);
	cs_destroy(fd, "core-perm");
	ASSERT_EQ(cs_create(fd, "core-perm", PG, 0600), 0);
	h = cs_open();
	ASSERT_EQ(as_nobody(nobody_attach, h, "core-perm"), EACCES);
	ASSERT_EQ(as_nobody(nobody_destroy, h, "core-perm"), EPERM);
	close(h);
	cs_destroy(fd, "core-perm");
	close(fd);

	/* Others may read: attach read-only works, writes do not. */
	fd = cs_open();
	ASSERT_EQ(cs_create(fd, "core-perm", PG, 0604), 0);
	h = open(COWSNAP_DEV, O_RDONLY);
	ASSERT_EQ(as_nobody(nobody_attach, h, "core-perm"), 0);
	ASSERT_TRUE(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, h, 0) ==
		    MAP_FAILED);
	ASSERT_EQ(errno, EACCES);
	ASSERT_TRUE(mmap(NULL, PG, PROT_READ, MAP_SHARED, h, 0) != MAP_FAILED);
	ASSERT_ERRNO(cs_snap(h, NULL) ? 0 : -1, EACCES);
	ASSERT_ERRNO(cs_snap_delete(h, 1), EACCES);
	close(h);
	h = open(COWSNAP_DEV, O_RDWR);
	ASSERT_EQ(as_nobody(nobody_attach, h, "core-perm"), EACCES);
	close(h);
	ASSERT_EQ(cs_destroy(fd, "core-perm"), 0);
	close(fd);
}

TEST(rmmod_refused_while_a_region_exists)
{
	int fd = cs_region("core-rmmod", PG);

	ASSERT_GE(fd, 0);
	close(fd);
	ASSERT_ERRNO(mod_unload(), EAGAIN);
	ASSERT_TRUE(mod_loaded());
	cs_destroy_quiet("core-rmmod");
}

TEST(proc_cowsnap_lists_regions_and_snapshots)
{
	int fd = cs_region("core-proc", 4 * PG), found = 0;
	char line[512], *p;
	FILE *f;

	ASSERT_GE(fd, 0);
	p = cs_map(fd, 4 * PG);
	p[0] = 1;
	p[PG] = 1;
	ASSERT_EQ(cs_snap(fd, "lbl"), 1);
	p[0] = 2;
	f = fopen("/proc/cowsnap", "r");
	ASSERT_TRUE(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		char name[64], label[64];
		unsigned long long size, res, shared, snaps, newest, id, ct,
			ref, excl;

		if (sscanf(line, "region %63s %llu %llu %llu %llu %llu",
			   name, &size, &res, &shared, &snaps, &newest) == 6 &&
		    !strcmp(name, "core-proc")) {
			ASSERT_EQ(size, 4 * PG);
			ASSERT_EQ(res, 2);
			ASSERT_EQ(shared, 1);
			ASSERT_EQ(snaps, 1);
			ASSERT_EQ(newest, 1);
			found |= 1;
		}
		if (sscanf(line, "snapshot %63s %llu %63s %llu %llu %llu",
			   name, &id, label, &ct, &ref, &excl) == 6 &&
		    !strcmp(name, "core-proc")) {
			ASSERT_EQ(id, 1);
			ASSERT_EQ(strcmp(label, "lbl"), 0);
			ASSERT_EQ(ref, 2);
			ASSERT_EQ(excl, 1);
			found |= 2;
		}
	}
	fclose(f);
	ASSERT_EQ(found, 3);
	close(fd);
	cs_destroy_quiet("core-proc");
}

TEST_F(region, reading_holes_allocates_nothing_and_stays_coherent)
{
	struct cowsnap_extent ext[4];
	struct cowsnap_diff d = { .extents = (uintptr_t)ext, .count = 4 };
	long long alloc0 = proc_counter("pages_allocated");
	volatile char *q;
	struct cowsnap_info info;
	int fd2, status;
	char buf[PG];
	pid_t pid;

	ASSERT_TRUE(all_zero(self->p, SZ));
	ASSERT_EQ(cs_info(self->fd, &info), 0);
	ASSERT_EQ(info.resident_pages, 0);
	ASSERT_EQ(proc_counter("pages_allocated"), alloc0);

	/* A second mapping of page 9 holds the zero page; stores fill it. */
	fd2 = cs_open();
	ASSERT_EQ(cs_attach(fd2, self->name), 0);
	q = cs_map(fd2, SZ);
	ASSERT_EQ(q[9 * PG], 0);
	self->p[9 * PG] = 'a';			/* store through a mapping */
	ASSERT_EQ(q[9 * PG], 'a');
	memset(buf, 'b', PG);
	ASSERT_EQ(q[10 * PG], 0);
	ASSERT_EQ(pwrite(self->fd, buf, PG, 10 * PG), PG);	/* write() */
	ASSERT_EQ(q[10 * PG], 'b');
	ASSERT_EQ(self->p[10 * PG], 'b');
	/* A child that read the hole sees the parent's later store. */
	ASSERT_EQ(q[11 * PG], 0);
	pid = fork();
	if (!pid) {
		while (q[11 * PG] != 'c')
			;
		_exit(0);
	}
	usleep(10000);
	self->p[11 * PG] = 'c';
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(status, 0);
	ASSERT_EQ(cs_info(self->fd, &info), 0);
	ASSERT_EQ(info.resident_pages, 3);

	/* Reads after a snapshot leave nothing for diff to report. */
	ASSERT_EQ(cs_snap(self->fd, NULL), 1);
	ASSERT_TRUE(all_zero(self->p + 20 * PG, 20 * PG));
	d.from = 1;
	ASSERT_EQ(ioctl(self->fd, COWSNAP_IOC_DIFF, &d), 0);
	ASSERT_EQ(d.count, 0);
	/* A hole written after the snapshot reads as zero there. */
	self->p[30 * PG] = 'd';
	{
		int sfd = cs_snap_open(self->fd, 1);
		char c = 1;

		ASSERT_EQ(pread(sfd, &c, 1, 30 * PG), 1);
		ASSERT_EQ(c, 0);
		close(sfd);
	}
	ASSERT_EQ(cs_restore(self->fd, 1, 0), 1);
	ASSERT_EQ(self->p[30 * PG], 0);
	ASSERT_EQ(q[30 * PG], 0);
}

struct hole_race {
	volatile char *p;
	atomic_int stop;
};

static void *hole_reader(void *arg)
{
	struct hole_race *hr = arg;

	while (!atomic_load(&hr->stop)) {
		size_t i;

		for (i = 0; i < NPG; i++)
			(void)hr->p[i * PG + 8];
	}
	return NULL;
}

/* Readers keep mapping the zero page while holes are filled and restored. */
TEST_F(region, hole_fills_racing_readers_are_seen_by_all)
{
	struct hole_race hr = { .p = self->p };
	pthread_t t[2];
	int round, i;

	for (i = 0; i < 2; i++)
		ASSERT_EQ(pthread_create(&t[i], NULL, hole_reader, &hr), 0);
	ASSERT_EQ(cs_snap(self->fd, NULL), 1);	/* all holes */
	for (round = 0; round < 50; round++) {
		size_t k;

		for (k = 0; k < NPG; k++)
			self->p[k * PG + 8] = round + 1;
		for (k = 0; k < NPG; k++)
			if (self->p[k * PG + 8] != round + 1)
				FAIL("round %d page %zu", round, k);
		ASSERT_EQ(cs_restore(self->fd, 1, 0), NPG);
		for (k = 0; k < NPG; k++)
			if (self->p[k * PG + 8] != 0)
				FAIL("round %d page %zu after restore", round, k);
	}
	atomic_store(&hr.stop, 1);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
}

/* Write @val to tracefs file @file; 0 on success. */
static int tracefs_write(const char *file, const char *val)
{
	char path[128];
	int fd, n;

	snprintf(path, sizeof(path), "/sys/kernel/tracing/%s", file);
	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (int)strlen(val) ? 0 : -1;
}

TEST_F(region, tracepoints_report_snapshot_cow_restore_delete)
{
	static char buf[1 << 16];
	const char *want[] = {
		"cowsnap_snapshot: region=", "id=1 pages=1 err=0",
		"cowsnap_cow: region=", "index=2",
		"cowsnap_restore: region=", "pages=1 walked=0",
		"cowsnap_delete: region=",
	};
	unsigned int i;
	ssize_t n;
	int fd;

	mkdir("/sys/kernel/tracing", 0755);
	mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL);
	ASSERT_EQ(tracefs_write("trace", ""), 0);
	ASSERT_EQ(tracefs_write("events/cowsnap/enable", "1"), 0);
	ASSERT_EQ(tracefs_write("tracing_on", "1"), 0);
	self->p[2 * PG] = 1;
	ASSERT_EQ(cs_snap(self->fd, NULL), 1);
	self->p[2 * PG] = 2;
	ASSERT_EQ(cs_restore(self->fd, 1, 0), 1);
	ASSERT_EQ(cs_snap_delete(self->fd, 1), 0);
	ASSERT_EQ(tracefs_write("events/cowsnap/enable", "0"), 0);
	fd = open("/sys/kernel/tracing/trace", O_RDONLY);
	ASSERT_GE(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ASSERT_GT(n, 0);
	buf[n] = 0;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(buf, want[i]))
			FAIL("trace lacks \"%s\":\n%s", want[i], buf);
	ASSERT_TRUE(strstr(buf, self->name) != NULL);
}

/* A page referenced by a pipe (vmsplice) at snapshot time goes to the
 * snapshot as a copy; the live page stays the pipe's. */
TEST_F(region, vmspliced_page_is_copied_into_the_snapshot)
{
	struct iovec iov = { .iov_base = self->p + 4 * PG, .iov_len = PG };
	long long pinned0;
	char buf[PG];
	int pfd[2], sfd;
	uint64_t id;

	fill_page(self->p, 4, 1);
	ASSERT_EQ(pipe(pfd), 0);
	ASSERT_EQ(vmsplice(pfd[1], &iov, 1, 0), PG);
	pinned0 = proc_counter("pinned_copies");
	id = cs_snap(self->fd, NULL);
	ASSERT_NE(id, 0);
	ASSERT_EQ(proc_counter("pinned_copies"), pinned0 + 1);
	fill_page(self->p, 4, 2);
	sfd = cs_snap_open(self->fd, id);
	ASSERT_EQ(pread(sfd, buf, PG, 4 * PG), PG);
	{
		char *want = malloc(5 * PG);

		fill_page(want, 4, 1);
		ASSERT_EQ(memcmp(buf, want + 4 * PG, PG), 0);
		free(want);
	}
	close(sfd);
	/* The pipe still references the live page: it reads the new data. */
	ASSERT_EQ(read(pfd[0], buf, PG), PG);
	ASSERT_EQ(memcmp(buf, self->p + 4 * PG, PG), 0);
	close(pfd[0]);
	close(pfd[1]);
}

/* Pages are charged to the faulting task's memory cgroup; over its limit a
 * fault is SIGBUS, and no task is OOM-killed. */
TEST(pages_charged_to_memcg_and_limit_is_sigbus)
{
	const size_t size = 16UL << 20;
	char path[128], line[128];
	long long cur0, cur1;
	int fd, status, cfd;
	FILE *f;
	char *p;
	pid_t pid;

	mkdir("/sys/fs/cgroup", 0755);
	mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL);
	if (access("/sys/fs/cgroup/cgroup.subtree_control", F_OK))
		FAIL("no cgroup2");
	cfd = open("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY);
	ASSERT_GE(cfd, 0);
	ASSERT_EQ(write(cfd, "+memory", 7), 7);
	close(cfd);
	mkdir("/sys/fs/cgroup/cowsnap-test", 0755);
	fd = cs_region("core-memcg", size);
	ASSERT_GE(fd, 0);
	p = cs_map(fd, size);
	pid = fork();
	if (!pid) {
		char me[32];
		int c = open("/sys/fs/cgroup/cowsnap-test/cgroup.procs", O_WRONLY);

		snprintf(me, sizeof(me), "%d", getpid());
		if (c < 0 || write(c, me, strlen(me)) < 0)
			_exit(2);
		close(c);
		c = open("/sys/fs/cgroup/cowsnap-test/memory.max", O_WRONLY);
		if (c < 0 || write(c, "8M", 2) != 2)
			_exit(3);
		close(c);
		memset(p, 1, 4UL << 20);	/* 4 MiB: within the limit */
		kill(getpid(), SIGSTOP);
		memset(p + (4UL << 20), 1, 12UL << 20);	/* beyond it */
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
	ASSERT_TRUE(WIFSTOPPED(status));
	snprintf(path, sizeof(path), "/sys/fs/cgroup/cowsnap-test/memory.current");
	f = fopen(path, "r");
	ASSERT_TRUE(f != NULL);
	ASSERT_EQ(fscanf(f, "%lld", &cur0), 1);
	fclose(f);
	ASSERT_GE(cur0, 4LL << 20);
	kill(pid, SIGCONT);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(WTERMSIG(status), SIGBUS);
	f = fopen("/sys/fs/cgroup/cowsnap-test/memory.events", "r");
	ASSERT_TRUE(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "oom_kill ", 9))
			ASSERT_EQ(atoll(line + 9), 0);
	fclose(f);
	munmap(p, size);
	close(fd);
	cs_destroy_quiet("core-memcg");
	/* Freed pages are uncharged. */
	f = fopen(path, "r");
	ASSERT_EQ(fscanf(f, "%lld", &cur1), 1);
	fclose(f);
	ASSERT_LT(cur1, 1LL << 20);
	rmdir("/sys/fs/cgroup/cowsnap-test");
}

struct flipper {
	char *p;
	atomic_int stop;
};

/* mprotect() read-only and back, then store: forever. */
static void *flip_fn(void *arg)
{
	struct flipper *f = arg;
	uint64_t n = 0;

	while (!atomic_load(&f->stop)) {
		size_t i;

		mprotect(f->p, SZ, PROT_READ);
		mprotect(f->p, SZ, PROT_READ | PROT_WRITE);
		for (i = 0; i < NPG; i++)
			((volatile uint64_t *)(f->p + i * PG))[0] = ++n;
	}
	return NULL;
}

/* A dirty PTE made writable by mprotect() must not write into a snapshot. */
TEST_F(region, snapshot_unchanged_while_a_thread_flips_mprotect)
{
	struct flipper f = { .p = self->p };
	pthread_t t;
	int round;

	ASSERT_EQ(pthread_create(&t, NULL, flip_fn, &f), 0);
	for (round = 0; round < 100; round++) {
		uint64_t id = cs_snap(self->fd, NULL);
		char *a, *b;

		ASSERT_NE(id, 0);
		a = snap_read(self->fd, id, SZ);
		usleep(3000);
		b = snap_read(self->fd, id, SZ);
		if (memcmp(a, b, SZ))
			FAIL("round %d: snapshot changed", round);
		free(a);
		free(b);
		ASSERT_EQ(cs_snap_delete(self->fd, id), 0);
	}
	atomic_store(&f.stop, 1);
	pthread_join(t, NULL);
}

/* An open snapshot fd keeps its own pages, not the destroyed region's. */
TEST(snapshot_fd_outliving_its_region_holds_only_its_pages)
{
	long long base = proc_counter("pages_allocated");
	int fd = cs_region("core-outlive", SZ), sfd;
	char *p, buf[PG];
	size_t i;

	ASSERT_GE(fd, 0);
	p = cs_map(fd, SZ);
	for (i = 0; i < 4; i++)
		fill_page(p, i, 1);
	ASSERT_EQ(cs_snap(fd, NULL), 1);
	for (i = 0; i < NPG; i++)
		fill_page(p, i, 2);	/* live: 64 pages, 4 of them copies */
	ASSERT_EQ(cs_snap(fd, NULL), 2);
	sfd = cs_snap_open(fd, 1);
	ASSERT_GE(sfd, 0);
	ASSERT_EQ(proc_counter("pages_allocated"), base + NPG + 4);
	munmap(p, SZ);
	ASSERT_EQ(cs_destroy(fd, "core-outlive"), 0);
	close(fd);
	/* Live view and snapshot 2 are gone; snapshot 1's 4 pages stay. */
	ASSERT_EQ(proc_counter("pages_allocated"), base + 4);
	ASSERT_EQ(pread(sfd, buf, PG, 3 * PG), PG);
	{
		char *want = malloc(4 * PG);

		fill_page(want, 3, 1);
		ASSERT_EQ(memcmp(buf, want + 3 * PG, PG), 0);
		free(want);
	}
	ASSERT_EQ(lseek(sfd, 0, SEEK_END), SZ);
	close(sfd);
	ASSERT_EQ(proc_counter("pages_allocated"), base);
}

/*
 * A read-only mapping (O_RDONLY handle) made before a writable one must
 * not hide the writable one from the snapshot's write-protection: the
 * kernel's mapping walkers stop at the first VMA they skip.
 */
TEST_F(region, snapshot_protects_mappings_behind_a_readonly_one)
{
	int rfd = open(COWSNAP_DEV, O_RDONLY | O_CLOEXEC);
	char *ro, *rw, *snap;
	struct cowsnap_diff d = { 0 };
	struct cowsnap_extent ext[4];
	uint64_t id;
	size_t i;

	ASSERT_GE(rfd, 0);
	ASSERT_EQ(cs_attach(rfd, self->name), 0);
	/* The fixture's mapping comes first in the tree: drop it. */
	ASSERT_EQ(munmap(self->p, SZ), 0);
	ro = mmap(NULL, SZ, PROT_READ, MAP_SHARED, rfd, 0);
	ASSERT_TRUE(ro != MAP_FAILED);
	rw = cs_map(self->fd, SZ);
	ASSERT_TRUE(rw != NULL);
	for (i = 0; i < NPG; i++)
		fill_page(rw, i, 1);	/* writable PTEs in rw */
	ASSERT_TRUE(check_page(ro, 0, 1));
	id = cs_snap(self->fd, NULL);
	ASSERT_NE(id, 0);
	for (i = 0; i < NPG; i++)
		fill_page(rw, i, 2);	/* each must copy */
	snap = snap_read(self->fd, id, SZ);
	for (i = 0; i < NPG; i++)
		if (!check_page(snap, i, 1))
			FAIL("page %zu of the snapshot changed", i);
	for (i = 0; i < NPG; i++)
		if (!check_page(ro, i, 2))
			FAIL("page %zu: the read-only mapping lost a write", i);
	d.from = id;
	d.extents = (uintptr_t)ext;
	d.count = 4;
	ASSERT_EQ(ioctl(self->fd, COWSNAP_IOC_DIFF, &d), 0);
	ASSERT_EQ(d.count, 1);
	ASSERT_EQ(ext[0].start, 0);
	ASSERT_EQ(ext[0].count, NPG);
	ASSERT_EQ(cs_restore(self->fd, id, 0), NPG);
	for (i = 0; i < NPG; i++)
		ASSERT_TRUE(check_page(rw, i, 1) && check_page(ro, i, 1));
	free(snap);
	munmap(ro, SZ);
	munmap(rw, SZ);
	close(rfd);
}

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void on_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

#define ZP_MAPS		60000
#define ZP_PROCS	10	/* processes holding ZP_MAPS mappings each */

/*
 * One user filling holes of a region mapped very many times (each fill
 * zaps the index in every mapping) must not stall another region's hole
 * read faults: nothing the regions share may be held across that zap.
 */
TEST(hole_fills_in_one_region_do_not_stall_another)
{
	volatile int *flag = mmap(NULL, PG, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	long long regions = proc_counter("regions");
	int vfd = cs_region("core-zp-victim", 256 * PG);
	/* KASAN makes VMA work ~10x slower: fewer maps, the same stall. */
	int nmaps = kernel_is_debug() ? ZP_MAPS / 10 : ZP_MAPS;
	double worst = 0, t0;
	pid_t attacker;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP("needs two CPUs");
	ASSERT_GE(vfd, 0);
	cs_destroy_quiet("core-zp-victim");	/* vfd keeps it */
	attacker = fork();
	if (!attacker) {
		int fd = cs_region("core-zp-attack", 4 * PG), i;
		char **maps = calloc(ZP_MAPS, sizeof(*maps));
		pid_t kids[ZP_PROCS - 1];

		/* The fd keeps it; a timeout kill leaves no name behind. */
		cs_destroy_quiet("core-zp-attack");
		on_cpu(0);
		for (i = 0; i < nmaps; i++) {
			maps[i] = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
				       MAP_SHARED, fd, 0);
			if (maps[i] == MAP_FAILED) {
				flag[0] = -2;
				_exit(2);
			}
		}
		if (!cs_snap(fd, NULL))	/* all holes */
			_exit(3);
		for (i = 0; i < ZP_PROCS - 1; i++) {
			kids[i] = fork();
			if (!kids[i]) {
				while (flag[0] != 2)
					usleep(10000);
				_exit(0);
			}
		}
		(void)((volatile char *)maps[0])[0];	/* a zero-page PTE */
		flag[0] = 1;
		while (flag[0] == 1) {
			flag[1]++;
			for (i = 0; i < 4; i++)
				maps[0][i * PG] = 1;	/* fill: zap everywhere */
			if (cs_restore(fd, 1, 0) < 0)
				_exit(4);
			(void)((volatile char *)maps[0])[0];
		}
		for (i = 0; i < ZP_PROCS - 1; i++)
			waitpid(kids[i], NULL, 0);
		_exit(0);
	}
	on_cpu(1);
	while (!flag[0])
		usleep(10000);
	ASSERT_EQ(flag[0], 1);
	/* Fault holes while the attacker completes a few rounds of fills. */
	for (t0 = mono_ms(); flag[1] < 3 && mono_ms() - t0 < 90000;) {
		char *q = mmap(NULL, 256 * PG, PROT_READ, MAP_SHARED, vfd, 0);
		int i;

		ASSERT_TRUE(q != MAP_FAILED);
		for (i = 0; i < 256; i++) {
			double t1 = mono_ms(), dt;

			(void)((volatile char *)q)[i * PG];
			dt = mono_ms() - t1;
			if (dt > worst)
				worst = dt;
		}
		munmap(q, 256 * PG);
	}
	flag[0] = 2;
	ASSERT_EQ(waitpid(attacker, NULL, 0), attacker);
	close(vfd);
	while (proc_counter("regions") > regions)
		usleep(10000);
	printf("# worst hole read fault while another region filled: %.1f ms (%d fill rounds)\n",
	       worst, flag[1]);
	ASSERT_GE(flag[1], 3);
	ASSERT_LT(worst, 100);
}

/* Whether /proc/cowsnap, read now, lists region @name. */
static int proc_lists(const char *name)
{
	FILE *f = fopen("/proc/cowsnap", "r");
	char line[512], n[64];
	int found = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "region %63s", n) == 1 && !strcmp(n, name))
			found = 1;
	fclose(f);
	return found;
}

static int nobody_sees(int fd, const char *name)
{
	return proc_lists(name);
}

/* /proc/cowsnap shows a reader only the regions it may attach. */
TEST(proc_cowsnap_hides_regions_the_reader_may_not_attach)
{
	int priv = cs_region("core-vis-private", PG);
	int pub = cs_open();

	ASSERT_GE(priv, 0);
	ASSERT_GE(pub, 0);
	cs_destroy(pub, "core-vis-public");
	ASSERT_EQ(cs_create(pub, "core-vis-public", PG, 0644), 0);
	ASSERT_EQ(proc_lists("core-vis-private"), 1);	/* root sees all */
	ASSERT_EQ(as_nobody(nobody_sees, -1, "core-vis-private"), 0);
	ASSERT_EQ(as_nobody(nobody_sees, -1, "core-vis-public"), 1);
	close(priv);
	close(pub);
	cs_destroy_quiet("core-vis-private");
	cs_destroy_quiet("core-vis-public");
}

static long long meminfo_kb(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256], k[64];
	long long v, ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63[^:]: %lld", k, &v) == 2 && !strcmp(k, key))
			ret = v;
	fclose(f);
	return ret;
}

/*
 * Snapshots cost what changes, not what they hold: a thousand snapshots of
 * a region of sparse pages add kilobytes of kernel memory (once hundreds
 * of megabytes, each copying the whole page index), and /proc shows it.
 */
TEST(thousand_snapshots_of_sparse_pages_cost_little_kernel_memory)
{
	const uint64_t size = 1ULL << 40;	/* 1 TiB, 256 pages in it */
	long long start = proc_counter("meta_bytes");
	long long slab0, meta0, slab1, meta1;
	char buf[PG];
	int fd = cs_region("core-sparse-snaps", size), i;

	ASSERT_GE(fd, 0);
	memset(buf, 7, sizeof(buf));
	for (i = 0; i < 256; i++)
		ASSERT_EQ(pwrite(fd, buf, PG, (off_t)i * (size / 256)), PG);
	ASSERT_NE(cs_snap(fd, NULL), 0);
	slab0 = meminfo_kb("Slab");
	meta0 = proc_counter("meta_bytes");
	for (i = 0; i < 1000; i++)
		ASSERT_NE(cs_snap(fd, NULL), 0);
	slab1 = meminfo_kb("Slab");
	meta1 = proc_counter("meta_bytes");
	printf("# 1000 snapshots: slab +%lld KiB, meta_bytes +%lld\n",
	       slab1 - slab0, meta1 - meta0);
	ASSERT_GT(meta1, meta0);	/* counted and visible */
	ASSERT_LT(meta1 - meta0, 1000 * 1024);
	ASSERT_LT(slab1 - slab0, 16 * 1024);
	close(fd);
	cs_destroy_quiet("core-sparse-snaps");
	ASSERT_EQ(proc_counter("meta_bytes"), start);
}

/* Move the calling process into cgroup @dir; 0 or -1. */
static int cg_join(const char *dir)
{
	char path[128], me[32];
	int c;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(me, sizeof(me), "%d", getpid());
	c = open(path, O_WRONLY);
	if (c < 0 || write(c, me, strlen(me)) < 0)
		return -1;
	close(c);
	return 0;
}

static long long cg_read(const char *dir, const char *file, const char *key)
{
	char path[128], line[128];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!key) {
			v = atoll(line);
			break;
		}
		if (!strncmp(line, key, strlen(key)) &&
		    line[strlen(key)] == ' ')
			v = atoll(line + strlen(key) + 1);
	}
	fclose(f);
	return v;
}

/*
 * An ioctl that needs kernel memory beyond its memory cgroup's limit fails
 * with ENOMEM; it never has the OOM killer take a process in that cgroup
 * (here a bystander) or anywhere else.
 */
TEST(clone_over_the_memcg_limit_is_enomem_not_oom)
{
	const char *cg = "/sys/fs/cgroup/cowsnap-meta";
	/* 4096 sparse pages: each needs an index node of its own (~2 MiB). */
	const size_t size = 1UL << 30;
	int fd, status, c, i, err, alive, left;
	long long kills;
	pid_t bystander, pid;
	char buf[PG];

	mkdir("/sys/fs/cgroup", 0755);
	mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL);
	c = open("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY);
	ASSERT_GE(c, 0);
	ASSERT_EQ(write(c, "+memory", 7), 7);
	close(c);
	rmdir(cg);
	ASSERT_EQ(mkdir(cg, 0755), 0);
	fd = cs_region("core-memcg-meta", size);
	ASSERT_GE(fd, 0);
	memset(buf, 3, sizeof(buf));
	for (i = 0; i < 4096; i++)
		ASSERT_EQ(pwrite(fd, buf, PG, (off_t)i * 64 * PG), PG);
	ASSERT_EQ(cs_snap(fd, NULL), 1);
	bystander = fork();
	if (!bystander) {
		char *mine = malloc(2 << 20);

		if (cg_join(cg))
			_exit(2);
		memset(mine, 1, 2 << 20);
		pause();
		_exit(0);
	}
	pid = fork();
	if (!pid) {
		char lim[32];
		int m;

		if (cg_join(cg))
			_exit(2);
		usleep(200000);	/* the bystander has its memory */
		snprintf(lim, sizeof(lim), "%lld",
			 cg_read(cg, "memory.current", NULL) + (64 << 10));
		m = open("/sys/fs/cgroup/cowsnap-meta/memory.max", O_WRONLY);
		if (m < 0 || write(m, lim, strlen(lim)) < 0)
			_exit(3);
		close(m);
		_exit(cs_clone(fd, 1, "core-memcg-clone", 0600) ? errno : 0);
	}
	waitpid(pid, &status, 0);
	err = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	kills = cg_read(cg, "memory.events", "oom_kill");
	alive = waitpid(bystander, NULL, WNOHANG) == 0;
	kill(bystander, SIGKILL);
	waitpid(bystander, NULL, 0);
	c = cs_open();
	left = cs_attach(c, "core-memcg-clone") == 0;	/* nothing may be */
	close(c);
	close(fd);
	cs_destroy_quiet("core-memcg-clone");
	cs_destroy_quiet("core-memcg-meta");
	rmdir(cg);
	ASSERT_FALSE(left);
	ASSERT_EQ(err, ENOMEM);
	ASSERT_EQ(kills, 0);
	ASSERT_TRUE(alive);
}

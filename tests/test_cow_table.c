// SPDX-License-Identifier: GPL-2.0
/*
 * The copy-on-write table: every way of writing into a region page, crossed
 * with what a snapshot promises.  The kernel's selftests mm/cow.c and
 * mm/gup_longterm.c ask these questions of fork(); here a snapshot takes
 * fork()'s place, so the "child" is the snapshot and the "parent" the live
 * view.
 *
 * Rows (CT_ROWS below; a new way of writing is one line there plus its
 * function):
 *
 *   store_through_mapping             memcpy() into the live mapping
 *   store_from_other_process          memcpy() into another process's mapping
 *   write_on_handle                   lseek() + write() on the handle
 *   pwrite_on_handle                  pwrite() on the handle
 *   pwritev_on_handle                 pwritev() of two half pages
 *   odirect_read_from_ramdisk         O_DIRECT pread() from /dev/ram0
 *   odirect_pinned_before_snapshot    an O_DIRECT readv() held in flight
 *                                     (page pinned, I/O not issued yet)
 *                                     across the snapshot, written after
 *   odirect_pinned_after_snapshot     the same, pinned after the snapshot
 *   iouring_read_from_ramdisk         io_uring READ (O_DIRECT) into the page
 *   iouring_fixed_buffer_registered_before_snapshot
 *   iouring_fixed_buffer_registered_after_snapshot
 *                                     READ_FIXED through a buffer registered
 *                                     over the page (a FOLL_LONGTERM pin):
 *                                     refused by both kernels, see
 *                                     ct_fixed_refusal()
 *   vmsplice_ref_held_across_snapshot the page vmspliced into a pipe before
 *                                     the snapshot, stored to after it
 *   vmsplice_ref_taken_after_snapshot the same, vmspliced after it
 *   pipe_readv_into_region            readv() from a pipe
 *   pipe_vmsplice_into_region         vmsplice() from a pipe's read end
 *   proc_pid_mem_from_other_process   pwrite() on /proc/PID/mem
 *   process_vm_writev_from_other_process
 *   ptrace_pokedata_from_other_process
 *
 * Properties, checked for every row:
 *
 *   snapshot  the snapshot keeps the bytes the region held when it was
 *             taken: pread() on a snapshot fd and a read-only mapping of it
 *   live      the write is not lost: the mapping, read() on the handle,
 *             another process's mapping and a later snapshot all hold it
 *   diff      diff(snapshot, live) reports exactly the written page
 *   restore   restore brings the snapshot back everywhere, and the write
 *             does not come back: a pin still held across the restore
 *             writes into a page that is no longer the region's
 *   aimed at snapshot
 *             the same way aimed at the snapshot's read-only mapping or
 *             fd is refused (errno or SIGSEGV) and changes nothing
 *
 * A way the kernel does not offer on this mapping must fail with its errno
 * and change nothing; the row asserts both.  Each row records one line in
 * CT_ROWS_FILE; cow_table_summary, the last test, prints the table.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <linux/io_uring.h>
#include <linux/userfaultfd.h>
#include "harness.h"
#include "util.h"

#define CT_NPG		8		/* pages in the region */
#define CT_SZ		(CT_NPG * PG)
#define CT_W		3		/* the page every way writes */
#define CT_ROWS_FILE	"/tmp/cow_table.rows"
#define CT_RAM		"/dev/ram0"

enum ct_when {
	CT_NOW,		/* the whole write happens after the snapshot */
	CT_PIN_BEFORE,	/* the reference is taken before the snapshot */
	CT_PIN_AFTER,	/* ... after it, and written through later */
};

enum ct_prop {
	CT_WRITE, CT_SNAP, CT_LIVE, CT_DIFF, CT_RESTORE, CT_AIM, CT_NPROP
};

static const char * const ct_prop_names[CT_NPROP] = {
	"write", "snapshot", "live", "diff", "restore", "aimed at snapshot",
};

struct ct;

/*
 * A way of writing @c->data[@c->k] into page CT_W (ct_page()).  ->prepare
 * sets up what it needs, or SKIPs.  Ways that hold a reference have ->arm
 * (take it; the runner calls it before or after the snapshot) and
 * ->disarm.  ->arm and ->write return 0 or the errno the
 * kernel refused with; ->refusal gives the errno this kernel must refuse
 * with (0: it must work).
 */
struct ct_way {
	void (*prepare)(struct ct *c);
	int (*arm)(struct ct *c);
	int (*write)(struct ct *c);
	void (*disarm)(struct ct *c);
	int (*refusal)(struct ct *c);
	bool via_pin;		/* ->write lands through the pin ->arm took */
};

struct ct_row {
	const char *name;
	const struct ct_way *way;
	enum ct_when when;
};

/* Raw io_uring: one ring, one request at a time. */
struct ct_ring {
	int fd;
	void *sq, *cq;
	size_t sq_len, cq_len, sqe_len;
	struct io_uring_sqe *sqes;
	unsigned int *sq_tail, *sq_mask, *sq_array;
	unsigned int *cq_head, *cq_tail, *cq_mask;
	struct io_uring_cqe *cqes;
};

struct ct {
	const struct ct_row *row;
	char name[32];
	int fd, sfd, dfd, uffd, efd, pfd[2];
	char *p, *smap;
	/*
	 * Where the ways write: page CT_W of the live mapping and the
	 * handle, or of the snapshot's mapping and fd (ct_aim_at_snapshot).
	 */
	char *target;
	int wfd;
	bool at_snapshot;
	uint64_t id;		/* the snapshot under test */
	uint64_t base;		/* the snapshot restored last */
	int k;			/* which data[] the next write writes */
	/* Images of the whole region: before, after data[0], after data[1]. */
	char *old_img, *new_img, *new2_img, *data[2], *buf, *filler;
	char *armed_bytes;	/* page CT_W when the reference was taken */
	bool armed, arm_after_snap, refused_after_snap;
	long long pinned_copies;	/* copied at the first snapshot */
	/* The other process that maps the region (property "live"). */
	pid_t peer;
	int peer_cmd, peer_data;
	/* An O_DIRECT read held in flight on a userfaultfd page. */
	char *ubuf;
	pthread_t thr;
	bool thr_live;
	ssize_t dio_ret;
	int dio_err;
	struct ct_ring ring;
	/* The table line. */
	const char *res[CT_NPROP];
	char write_res[64], diff_res[32], aim_res[32], why[96];
	enum ct_prop stage;
	bool done, skipped;
	struct timespec t0;
};

FIXTURE(cow_table) {
	struct ct c;
};

FIXTURE_SETUP(cow_table)
{
	struct ct *c = &self->c;

	memset(c, 0, sizeof(*c));
	c->fd = c->sfd = c->dfd = c->uffd = c->efd = -1;
	c->pfd[0] = c->pfd[1] = -1;
	c->ring.fd = -1;
	c->peer_cmd = c->peer_data = -1;
}

static const char *ct_errname(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

static int ct_kernel_at_least(int maj, int min)
{
	struct utsname u;
	int a = 0, b = 0;

	uname(&u);
	sscanf(u.release, "%d.%d", &a, &b);
	return a > maj || (a == maj && b >= min);
}

static void ct_skip_reason(struct ct *c, const char *why)
{
	snprintf(c->why, sizeof(c->why), "%s", why);
	c->skipped = true;
}

#define CT_SKIP(c, why) do {			\
	ct_skip_reason(c, why);			\
	SKIP("%s", why);			\
} while (0)

/* ---- checks ---------------------------------------------------------- */

/* Name what page @i of @got holds, for failure messages. */
static const char *ct_what(struct ct *c, const char *got, size_t i)
{
	if (!memcmp(got, c->old_img + i * PG, PG))
		return "the bytes from before the snapshot";
	if (i == CT_W && !memcmp(got, c->data[0], PG))
		return "the first write";
	if (i == CT_W && !memcmp(got, c->data[1], PG))
		return "the second write";
	if (all_zero(got, PG))
		return "zeros";
	return "other bytes";
}

static void ct_cmp(struct ct *c, const char *got, const char *want,
		   const char *view, const char *when)
{
	size_t i;

	for (i = 0; i < CT_NPG; i++)
		if (memcmp(got + i * PG, want + i * PG, PG))
			FAIL("%s: %s: page %zu holds %s, want %s", when, view, i,
			     ct_what(c, got + i * PG, i),
			     ct_what(c, want + i * PG, i));
}

static void ct_peer_read(struct ct *c, char *buf)
{
	size_t done = 0;
	ssize_t n;

	ASSERT_EQ(write(c->peer_cmd, "r", 1), 1);
	while (done < CT_SZ) {
		n = read(c->peer_data, buf + done, CT_SZ - done);
		ASSERT_GT(n, 0);
		done += n;
	}
}

/* Live view equals @img in the mapping, read() and another process. */
static void ct_check_live(struct ct *c, const char *img, const char *when)
{
	ct_cmp(c, c->p, img, "live mapping", when);
	ASSERT_EQ(pread(c->fd, c->buf, CT_SZ, 0), CT_SZ);
	ct_cmp(c, c->buf, img, "read() on the handle", when);
	ct_peer_read(c, c->buf);
	ct_cmp(c, c->buf, img, "another process's mapping", when);
}

/* Snapshot @id equals @img through a new fd and a new mapping. */
static void ct_check_snap_id(struct ct *c, uint64_t id, const char *img,
			     const char *when)
{
	int sfd = cs_snap_open(c->fd, id);
	char *m;

	ASSERT_GE(sfd, 0);
	ASSERT_EQ(pread(sfd, c->buf, CT_SZ, 0), CT_SZ);
	ct_cmp(c, c->buf, img, "pread() on a new snapshot fd", when);
	m = mmap(NULL, CT_SZ, PROT_READ, MAP_SHARED, sfd, 0);
	ASSERT_TRUE(m != MAP_FAILED);
	ct_cmp(c, m, img, "new mapping of the snapshot", when);
	munmap(m, CT_SZ);
	close(sfd);
}

/* The snapshot under test still holds the old image. */
static void ct_check_snap(struct ct *c, const char *when)
{
	enum ct_prop saved = c->stage;

	c->stage = CT_SNAP;
	ASSERT_EQ(pread(c->sfd, c->buf, CT_SZ, 0), CT_SZ);
	ct_cmp(c, c->buf, c->old_img, "pread() on the snapshot fd", when);
	ct_cmp(c, c->smap, c->old_img, "mapping of the snapshot", when);
	c->stage = saved;
}

/*
 * diff(@from, @to) is empty (@count 0) or the one extent @start/@count;
 * failures name the caller's @line.
 */
#define ct_expect_diff(...) ct_expect_diff_at(__LINE__, __VA_ARGS__)
static void ct_expect_diff_at(int line, struct ct *c, uint64_t from,
			      uint64_t to, uint64_t start, uint64_t count)
{
	struct cowsnap_extent ext[8];
	struct cowsnap_diff d = {
		.from = from, .to = to, .extents = (uintptr_t)ext, .count = 8,
	};

	ASSERT_EQ(ioctl(c->fd, COWSNAP_IOC_DIFF, &d), 0);
	ASSERT_EQ(d.next, 0);
	if (!count) {
		if (d.count)
			FAIL("line %d: diff %llu..%llu: %u extents from page %llu, want none",
			     line, (unsigned long long)from, (unsigned long long)to,
			     d.count, (unsigned long long)ext[0].start);
		return;
	}
	if (d.count != 1 || ext[0].start != start || ext[0].count != count)
		FAIL("line %d: diff %llu..%llu: %u extents, first %llu+%llu; want %llu+%llu",
		     line, (unsigned long long)from, (unsigned long long)to, d.count,
		     d.count ? (unsigned long long)ext[0].start : 0ULL,
		     d.count ? (unsigned long long)ext[0].count : 0ULL,
		     (unsigned long long)start, (unsigned long long)count);
}

/* Number of pages diff(@from, @to) reports. */
static uint64_t ct_diff_pages(struct ct *c, uint64_t from, uint64_t to)
{
	struct cowsnap_extent ext[8];
	struct cowsnap_diff d = {
		.from = from, .to = to, .extents = (uintptr_t)ext, .count = 8,
	};
	uint64_t n = 0;
	unsigned int i;

	ASSERT_EQ(ioctl(c->fd, COWSNAP_IOC_DIFF, &d), 0);
	for (i = 0; i < d.count; i++) {
		if (ext[i].start != CT_W || ext[i].count != 1)
			FAIL("diff reports page %llu+%llu; only page %d may differ",
			     (unsigned long long)ext[i].start,
			     (unsigned long long)ext[i].count, CT_W);
		n += ext[i].count;
	}
	return n;
}

/* ---- the region, the peer, the RAM disk ------------------------------ */

/*
 * The other process: maps the region before the snapshot, reads every
 * page (so its PTEs exist across snapshot, CoW and restore) and sends its
 * view of the whole region on request.
 */
static void __attribute__((noreturn))
ct_peer(const char *name, int cmd, int data)
{
	volatile char sink;
	size_t i, done;
	ssize_t n;
	char *q, op;
	int h = cs_open();

	if (h < 0 || cs_attach(h, name))
		_exit(2);
	q = mmap(NULL, CT_SZ, PROT_READ | PROT_WRITE, MAP_SHARED, h, 0);
	if (q == MAP_FAILED)
		_exit(3);
	for (i = 0; i < CT_NPG; i++)
		sink = q[i * PG];
	(void)sink;
	if (write(data, "k", 1) != 1)
		_exit(4);
	while (read(cmd, &op, 1) == 1 && op == 'r') {
		for (done = 0; done < CT_SZ; done += n) {
			n = write(data, q + done, CT_SZ - done);
			if (n <= 0)
				_exit(5);
		}
	}
	_exit(0);
}

static void ct_setup(struct ct *c)
{
	int cmd[2], data[2];
	size_t i;
	char ok;

	snprintf(c->name, sizeof(c->name), "ct-%d", getpid());
	c->old_img = aligned_alloc(PG, CT_SZ);
	c->new_img = aligned_alloc(PG, CT_SZ);
	c->new2_img = aligned_alloc(PG, CT_SZ);
	c->buf = aligned_alloc(PG, CT_SZ);
	c->filler = aligned_alloc(PG, PG);
	c->armed_bytes = aligned_alloc(PG, PG);
	ASSERT_TRUE(c->old_img && c->new_img && c->new2_img && c->buf &&
		    c->filler && c->armed_bytes);
	for (i = 0; i < CT_NPG; i++)
		fill_page(c->old_img, i, 1);
	memcpy(c->new_img, c->old_img, CT_SZ);
	fill_page(c->new_img, CT_W, 2);
	memcpy(c->new2_img, c->old_img, CT_SZ);
	fill_page(c->new2_img, CT_W, 3);
	c->data[0] = c->new_img + CT_W * PG;
	c->data[1] = c->new2_img + CT_W * PG;
	memset(c->filler, 0x5a, PG);

	c->fd = cs_region(c->name, CT_SZ);
	ASSERT_GE(c->fd, 0);
	c->p = cs_map(c->fd, CT_SZ);
	ASSERT_TRUE(c->p != NULL);
	memcpy(c->p, c->old_img, CT_SZ);
	c->target = c->p + CT_W * PG;
	c->wfd = c->fd;

	ASSERT_EQ(pipe(cmd), 0);
	ASSERT_EQ(pipe(data), 0);
	c->peer = fork();
	ASSERT_GE(c->peer, 0);
	if (!c->peer) {
		close(cmd[1]);
		close(data[0]);
		ct_peer(c->name, cmd[0], data[1]);
	}
	close(cmd[0]);
	close(data[1]);
	c->peer_cmd = cmd[1];
	c->peer_data = data[0];
	ASSERT_EQ(read(c->peer_data, &ok, 1), 1);
	ASSERT_EQ(ok, 'k');
}

/* /dev/ram0 open for O_DIRECT, holding data[0], data[1], filler. */
static void ct_ramdisk_prepare(struct ct *c)
{
	if (access(CT_RAM, F_OK)) {
		int ko = open("/lib/modules/brd.ko", O_RDONLY | O_CLOEXEC);

		if (ko < 0)
			CT_SKIP(c, "no RAM disk: no /dev/ram0 and no brd module");
		/* EEXIST: another program loaded it meanwhile. */
		if (syscall(SYS_finit_module, ko, "rd_nr=1 rd_size=1024", 0) &&
		    errno != EEXIST)
			FAIL("loading brd: %s", strerror(errno));
		close(ko);
	}
	c->dfd = open(CT_RAM, O_RDWR | O_DIRECT | O_CLOEXEC);
	ASSERT_GE(c->dfd, 0);
	ASSERT_EQ(pwrite(c->dfd, c->data[0], PG, 0), PG);
	ASSERT_EQ(pwrite(c->dfd, c->data[1], PG, PG), PG);
	ASSERT_EQ(pwrite(c->dfd, c->filler, PG, 2 * PG), PG);
}

static void ct_pipe_prepare(struct ct *c)
{
	ASSERT_EQ(pipe(c->pfd), 0);
}

/* Wait for a writer child: exit 0 is success, 1-199 the errno refusing. */
static int ct_wait_child(pid_t pid, const char *what)
{
	int status;

	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status))
		FAIL("%s: child killed by signal %d", what, WTERMSIG(status));
	if (WEXITSTATUS(status) >= 200)
		FAIL("%s: child failed to set up (%d)", what,
		     WEXITSTATUS(status));
	return WEXITSTATUS(status);
}

#define CT_CHILD_ERR(ok) _exit((ok) ? 0 : errno ? errno : 199)

/* ---- the ways --------------------------------------------------------- */

static char *ct_page(struct ct *c)
{
	return c->target;
}

static int ct_store(struct ct *c)
{
	memcpy(ct_page(c), c->data[c->k], PG);
	return 0;
}

static int ct_store_other(struct ct *c)
{
	pid_t pid = fork();

	ASSERT_GE(pid, 0);
	if (!pid) {
		int h = cs_open();
		char *q;

		if (c->at_snapshot) {
			/* Another process's writable mapping of it. */
			errno = 0;
			q = mmap(NULL, CT_SZ, PROT_READ | PROT_WRITE,
				 MAP_SHARED, c->sfd, 0);
			if (q == MAP_FAILED)
				_exit(errno ? errno : 199);
		} else {
			if (h < 0 || cs_attach(h, c->name))
				_exit(200);
			q = cs_map(h, CT_SZ);
			if (!q)
				_exit(201);
		}
		memcpy(q + CT_W * PG, c->data[c->k], PG);
		_exit(0);
	}
	return ct_wait_child(pid, "store from another process");
}

static int ct_handle_write(struct ct *c)
{
	ASSERT_EQ(lseek(c->wfd, CT_W * PG, SEEK_SET), CT_W * PG);
	if (write(c->wfd, c->data[c->k], PG) != PG)
		return errno ? errno : EIO;
	return 0;
}

static int ct_handle_pwrite(struct ct *c)
{
	if (pwrite(c->wfd, c->data[c->k], PG, CT_W * PG) != PG)
		return errno ? errno : EIO;
	return 0;
}

static int ct_handle_pwritev(struct ct *c)
{
	struct iovec iov[2] = {
		{ c->data[c->k], PG / 2 },
		{ c->data[c->k] + PG / 2, PG / 2 },
	};

	if (pwritev(c->wfd, iov, 2, CT_W * PG) != PG)
		return errno ? errno : EIO;
	return 0;
}

/* O_DIRECT: the block layer pins the page (GUP, FOLL_WRITE) for the bio. */
static int ct_odirect(struct ct *c)
{
	ssize_t n = pread(c->dfd, ct_page(c), PG, c->k * PG);

	if (n != PG)
		return n < 0 ? errno : EIO;
	return 0;
}

/*
 * An O_DIRECT read held in flight: readv() of [page CT_W, a userfaultfd
 * page].  The bio gathers its pages one iovec at a time, so page CT_W is
 * pinned when the second iovec faults and the userfaultfd holds it there;
 * the device writes both pages only once the fault is resolved.
 */
static void ct_stall_prepare(struct ct *c)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };

	ct_ramdisk_prepare(c);
	c->uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (c->uffd < 0 && errno == ENOSYS)
		CT_SKIP(c, "no userfaultfd in this kernel");
	ASSERT_GE(c->uffd, 0);
	ASSERT_EQ(ioctl(c->uffd, UFFDIO_API, &api), 0);
	c->ubuf = mmap(NULL, PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(c->ubuf != MAP_FAILED);
	reg.range.start = (uintptr_t)c->ubuf;
	reg.range.len = PG;
	ASSERT_EQ(ioctl(c->uffd, UFFDIO_REGISTER, &reg), 0);
	c->efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_GE(c->efd, 0);
}

static void *ct_stall_thread(void *arg)
{
	struct ct *c = arg;
	struct iovec iov[2] = {
		{ ct_page(c), PG },
		{ c->ubuf, PG },
	};
	uint64_t one = 1;

	c->dio_ret = preadv(c->dfd, iov, 2, c->k * PG);
	c->dio_err = errno;
	(void)!write(c->efd, &one, sizeof(one));
	return NULL;
}

static int ct_stall_arm(struct ct *c)
{
	struct pollfd pfd[2] = {
		{ .fd = c->uffd, .events = POLLIN },
		{ .fd = c->efd, .events = POLLIN },
	};
	struct uffd_msg msg;
	uint64_t n;

	/* The userfaultfd page must be missing again. */
	ASSERT_EQ(madvise(c->ubuf, PG, MADV_DONTNEED), 0);
	ASSERT_EQ(pthread_create(&c->thr, NULL, ct_stall_thread, c), 0);
	c->thr_live = true;
	ASSERT_GT(poll(pfd, 2, 20000), 0);
	if (pfd[1].revents) {
		/* Over before it got to the second page: refused. */
		ASSERT_EQ(read(c->efd, &n, sizeof(n)), sizeof(n));
		ASSERT_EQ(pthread_join(c->thr, NULL), 0);
		c->thr_live = false;
		if (c->dio_ret >= 0)
			FAIL("O_DIRECT readv finished without the userfaultfd page");
		return c->dio_err;
	}
	ASSERT_EQ(read(c->uffd, &msg, sizeof(msg)), sizeof(msg));
	ASSERT_EQ(msg.event, UFFD_EVENT_PAGEFAULT);
	ASSERT_EQ(msg.arg.pagefault.address & ~(PG - 1), (uintptr_t)c->ubuf);
	return 0;
}

/* Resolve the fault: the bio is issued and lands in the pinned page. */
static int ct_stall_release(struct ct *c)
{
	struct uffdio_copy cp = {
		.dst = (uintptr_t)c->ubuf, .src = (uintptr_t)c->filler,
		.len = PG,
	};
	uint64_t n;

	ASSERT_EQ(ioctl(c->uffd, UFFDIO_COPY, &cp), 0);
	ASSERT_EQ(pthread_join(c->thr, NULL), 0);
	ASSERT_EQ(read(c->efd, &n, sizeof(n)), sizeof(n));
	c->thr_live = false;
	c->armed = false;
	if (c->dio_ret < 0)
		return c->dio_err;
	ASSERT_EQ(c->dio_ret, 2 * PG);
	return 0;
}

static void ct_stall_disarm(struct ct *c)
{
	if (c->thr_live) {
		close(c->uffd);	/* wakes the fault; it completes without us */
		c->uffd = -1;
		pthread_join(c->thr, NULL);
		c->thr_live = false;
	}
}

/* io_uring without liburing. */
static int ct_ring_init(struct ct_ring *r)
{
	struct io_uring_params prm;
	char *sq, *cq;

	memset(&prm, 0, sizeof(prm));
	r->fd = syscall(SYS_io_uring_setup, 4, &prm);
	if (r->fd < 0)
		return errno;
	r->sq_len = prm.sq_off.array + prm.sq_entries * sizeof(unsigned int);
	r->cq_len = prm.cq_off.cqes +
		    prm.cq_entries * sizeof(struct io_uring_cqe);
	r->sqe_len = prm.sq_entries * sizeof(struct io_uring_sqe);
	r->sq = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
	r->cq = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, r->sqe_len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	ASSERT_TRUE(r->sq != MAP_FAILED && r->cq != MAP_FAILED &&
		    r->sqes != MAP_FAILED);
	sq = r->sq;
	cq = r->cq;
	r->sq_tail = (unsigned int *)(sq + prm.sq_off.tail);
	r->sq_mask = (unsigned int *)(sq + prm.sq_off.ring_mask);
	r->sq_array = (unsigned int *)(sq + prm.sq_off.array);
	r->cq_head = (unsigned int *)(cq + prm.cq_off.head);
	r->cq_tail = (unsigned int *)(cq + prm.cq_off.tail);
	r->cq_mask = (unsigned int *)(cq + prm.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + prm.cq_off.cqes);
	return 0;
}

/* Submit one read and wait for it: bytes read or -errno. */
static int ct_ring_read(struct ct_ring *r, int op, int fd, void *addr,
			unsigned int len, uint64_t off)
{
	unsigned int tail = *r->sq_tail, idx = tail & *r->sq_mask, head;
	struct io_uring_sqe *sqe = &r->sqes[idx];
	int res;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = (uintptr_t)addr;
	sqe->len = len;
	sqe->off = off;
	sqe->buf_index = 0;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(SYS_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS,
		    NULL, 0) < 0)
		return -errno;
	head = __atomic_load_n(r->cq_head, __ATOMIC_RELAXED);
	ASSERT_NE(head, __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE));
	res = r->cqes[head & *r->cq_mask].res;
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

static int ct_ring_register(struct ct_ring *r, void *addr, size_t len)
{
	struct iovec iov = { addr, len };

	if (syscall(SYS_io_uring_register, r->fd, IORING_REGISTER_BUFFERS,
		    &iov, 1))
		return errno;
	return 0;
}

/*
 * A ring, and proof that it works: a fixed buffer of anonymous memory
 * registers and READ_FIXED fills it, so a refusal on the region below is
 * about the region's mapping and not about this code.
 */
static void ct_iouring_prepare(struct ct *c)
{
	char *anon;
	int err;

	ct_ramdisk_prepare(c);
	err = ct_ring_init(&c->ring);
	if (err == ENOSYS)
		CT_SKIP(c, "no io_uring in this kernel");
	if (err == EPERM)
		CT_SKIP(c, "io_uring disabled (kernel.io_uring_disabled)");
	ASSERT_EQ(err, 0);
	anon = mmap(NULL, PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(anon != MAP_FAILED);
	ASSERT_EQ(ct_ring_register(&c->ring, anon, PG), 0);
	ASSERT_EQ(ct_ring_read(&c->ring, IORING_OP_READ_FIXED, c->dfd, anon,
			       PG, 0), PG);
	ASSERT_EQ(memcmp(anon, c->data[0], PG), 0);
	ASSERT_EQ(syscall(SYS_io_uring_register, c->ring.fd,
			  IORING_UNREGISTER_BUFFERS, NULL, 0), 0);
	munmap(anon, PG);
}

static int ct_iouring_read(struct ct *c)
{
	int n = ct_ring_read(&c->ring, IORING_OP_READ, c->dfd, ct_page(c), PG,
			     c->k * PG);

	if (n < 0)
		return -n;
	ASSERT_EQ(n, PG);
	return 0;
}

/*
 * Registering pins the page FOLL_WRITE | FOLL_LONGTERM, for as long as
 * the registration lasts.
 */
static int ct_fixed_arm(struct ct *c)
{
	return ct_ring_register(&c->ring, ct_page(c), PG);
}

/* The pin stays: later writes go through it too. */
static int ct_fixed_write(struct ct *c)
{
	int n = ct_ring_read(&c->ring, IORING_OP_READ_FIXED, c->dfd,
			     ct_page(c), PG, c->k * PG);

	if (n < 0)
		return -n;
	ASSERT_EQ(n, PG);
	return 0;
}

static void ct_fixed_disarm(struct ct *c)
{
	syscall(SYS_io_uring_register, c->ring.fd, IORING_UNREGISTER_BUFFERS,
		NULL, 0);
}

/*
 * A writable long-term pin on a shared mapping whose pages need
 * ->page_mkwrite cannot be honoured: nothing would see the device's
 * writes.  6.1's io_uring pins the pages, then refuses file-backed
 * memory other than shmem and hugetlbfs (EOPNOTSUPP); since 6.5 GUP
 * refuses FOLL_LONGTERM | FOLL_WRITE on such a mapping (EFAULT) before
 * it faults anything.
 */
static int ct_fixed_refusal(struct ct *c)
{
	return ct_kernel_at_least(6, 5) ? EFAULT : EOPNOTSUPP;
}

/* vmsplice() without SPLICE_F_GIFT: the pipe references the page. */
static int ct_vmsplice_arm(struct ct *c)
{
	struct iovec iov = { ct_page(c), PG };

	if (vmsplice(c->pfd[1], &iov, 1, 0) != PG)
		return errno ? errno : EIO;
	return 0;
}

/*
 * Store while the pipe holds its reference, then read the pipe.  Taken
 * before the snapshot, the page was copied into the snapshot and stays
 * the live one: the pipe reads the store.  Taken after, the page is the
 * snapshot's and the store copied it: the pipe reads the old bytes, as
 * in mm/cow.c after fork() (reading the store would mean the snapshot's
 * page had changed).
 */
static int ct_vmsplice_ref_write(struct ct *c)
{
	const char *want = c->arm_after_snap ? c->armed_bytes : c->data[c->k];
	char *got = c->buf;

	memcpy(ct_page(c), c->data[c->k], PG);
	ASSERT_EQ(read(c->pfd[0], got, PG), PG);
	c->armed = false;
	if (memcmp(got, want, PG)) {
		c->stage = c->arm_after_snap ? CT_SNAP : CT_LIVE;
		FAIL("the pipe read %s, want %s",
		     ct_what(c, got, CT_W), ct_what(c, want, CT_W));
	}
	return 0;
}

static void ct_vmsplice_disarm(struct ct *c)
{
	char *junk = c->buf;

	if (c->armed)
		(void)!read(c->pfd[0], junk, PG);
}

/* Data from a pipe copied into the page (copy_to_user: a store). */
static int ct_pipe_readv(struct ct *c)
{
	struct iovec iov = { ct_page(c), PG };

	ASSERT_EQ(write(c->pfd[1], c->data[c->k], PG), PG);
	if (readv(c->pfd[0], &iov, 1) != PG)
		return errno ? errno : EIO;
	return 0;
}

static int ct_pipe_vmsplice(struct ct *c)
{
	struct iovec iov = { ct_page(c), PG };

	ASSERT_EQ(write(c->pfd[1], c->data[c->k], PG), PG);
	if (vmsplice(c->pfd[0], &iov, 1, 0) != PG)
		return errno ? errno : EIO;
	return 0;
}

/* Writers in another process, into this process's mapping (FOLL_FORCE). */
static int ct_proc_mem(struct ct *c)
{
	pid_t pid = fork();

	ASSERT_GE(pid, 0);
	if (!pid) {
		char path[64];
		int m;

		snprintf(path, sizeof(path), "/proc/%d/mem", getppid());
		m = open(path, O_RDWR);
		if (m < 0)
			_exit(200);
		errno = 0;
		CT_CHILD_ERR(pwrite(m, c->data[c->k], PG,
				    (off_t)(uintptr_t)ct_page(c)) == PG);
	}
	return ct_wait_child(pid, "/proc/PID/mem");
}

static int ct_pvm_writev(struct ct *c)
{
	pid_t pid = fork();

	ASSERT_GE(pid, 0);
	if (!pid) {
		struct iovec local = { c->data[c->k], PG };
		struct iovec remote = { ct_page(c), PG };

		errno = 0;
		CT_CHILD_ERR(process_vm_writev(getppid(), &local, 1, &remote,
					       1, 0) == PG);
	}
	return ct_wait_child(pid, "process_vm_writev");
}

static int ct_ptrace_poke(struct ct *c)
{
	pid_t pid = fork();

	ASSERT_GE(pid, 0);
	if (!pid) {
		pid_t pp = getppid();
		const long *w = (const long *)c->data[c->k];
		char *dst = ct_page(c);
		size_t i;
		int st;

		if (ptrace(PTRACE_SEIZE, pp, 0, 0) ||
		    ptrace(PTRACE_INTERRUPT, pp, 0, 0) ||
		    waitpid(pp, &st, __WALL) != pp)
			_exit(200);
		errno = 0;
		for (i = 0; i < PG / sizeof(long); i++)
			if (ptrace(PTRACE_POKEDATA, pp,
				   dst + i * sizeof(long), w[i]))
				break;
		st = i == PG / sizeof(long) ? 0 : errno ? errno : 199;
		ptrace(PTRACE_DETACH, pp, 0, 0);
		_exit(st);
	}
	return ct_wait_child(pid, "ptrace(PTRACE_POKEDATA)");
}

static const struct ct_way way_store = { .write = ct_store };
static const struct ct_way way_store_other = { .write = ct_store_other };
static const struct ct_way way_handle_write = { .write = ct_handle_write };
static const struct ct_way way_handle_pwrite = { .write = ct_handle_pwrite };
static const struct ct_way way_handle_pwritev = { .write = ct_handle_pwritev };
static const struct ct_way way_odirect = {
	.prepare = ct_ramdisk_prepare, .write = ct_odirect,
};
static const struct ct_way way_odirect_stalled = {
	.prepare = ct_stall_prepare, .arm = ct_stall_arm,
	.write = ct_stall_release, .disarm = ct_stall_disarm, .via_pin = true,
};
static const struct ct_way way_iouring_read = {
	.prepare = ct_iouring_prepare, .write = ct_iouring_read,
};
static const struct ct_way way_iouring_fixed = {
	.prepare = ct_iouring_prepare, .arm = ct_fixed_arm,
	.write = ct_fixed_write, .disarm = ct_fixed_disarm,
	.refusal = ct_fixed_refusal, .via_pin = true,
};
static const struct ct_way way_vmsplice_ref = {
	.prepare = ct_pipe_prepare, .arm = ct_vmsplice_arm,
	.write = ct_vmsplice_ref_write, .disarm = ct_vmsplice_disarm,
};
static const struct ct_way way_pipe_readv = {
	.prepare = ct_pipe_prepare, .write = ct_pipe_readv,
};
static const struct ct_way way_pipe_vmsplice = {
	.prepare = ct_pipe_prepare, .write = ct_pipe_vmsplice,
};
static const struct ct_way way_proc_mem = { .write = ct_proc_mem };
static const struct ct_way way_pvm_writev = { .write = ct_pvm_writev };
static const struct ct_way way_ptrace = { .write = ct_ptrace_poke };

/* The table: test name (cow_table_NAME), way, when the pin is taken. */
#define CT_ROWS(X)							\
	X(store_through_mapping,		way_store,	     CT_NOW) \
	X(store_from_other_process,		way_store_other,     CT_NOW) \
	X(write_on_handle,			way_handle_write,    CT_NOW) \
	X(pwrite_on_handle,			way_handle_pwrite,   CT_NOW) \
	X(pwritev_on_handle,			way_handle_pwritev,  CT_NOW) \
	X(odirect_read_from_ramdisk,		way_odirect,	     CT_NOW) \
	X(odirect_pinned_before_snapshot,	way_odirect_stalled, CT_PIN_BEFORE) \
	X(odirect_pinned_after_snapshot,	way_odirect_stalled, CT_PIN_AFTER) \
	X(iouring_read_from_ramdisk,		way_iouring_read,    CT_NOW) \
	X(iouring_fixed_buffer_registered_before_snapshot,		\
	  way_iouring_fixed, CT_PIN_BEFORE)				\
	X(iouring_fixed_buffer_registered_after_snapshot,		\
	  way_iouring_fixed, CT_PIN_AFTER)				\
	X(vmsplice_ref_held_across_snapshot,	way_vmsplice_ref,    CT_PIN_BEFORE) \
	X(vmsplice_ref_taken_after_snapshot,	way_vmsplice_ref,    CT_PIN_AFTER) \
	X(pipe_readv_into_region,		way_pipe_readv,	     CT_NOW) \
	X(pipe_vmsplice_into_region,		way_pipe_vmsplice,   CT_NOW) \
	X(proc_pid_mem_from_other_process,	way_proc_mem,	     CT_NOW) \
	X(process_vm_writev_from_other_process,	way_pvm_writev,	     CT_NOW) \
	X(ptrace_pokedata_from_other_process,	way_ptrace,	     CT_NOW)

#define CT_ROW_ENTRY(n, w, when) { #n, &w, when },
static const struct ct_row ct_rows[] = { CT_ROWS(CT_ROW_ENTRY) };
#define CT_NROWS (sizeof(ct_rows) / sizeof(ct_rows[0]))

/* ---- the runner ------------------------------------------------------- */

static int ct_arm(struct ct *c)
{
	int err;

	memcpy(c->armed_bytes, ct_page(c), PG);
	c->arm_after_snap = c->id != 0;
	err = c->row->way->arm(c);
	c->armed = !err;
	return err;
}

static void ct_snapshot(struct ct *c)
{
	long long pc = proc_counter("pinned_copies");

	c->id = cs_snap(c->fd, "ct");
	ASSERT_NE(c->id, 0);
	/* For the table: pages copied because something held them. */
	c->pinned_copies = proc_counter("pinned_copies") - pc;
	c->base = c->id;
	c->sfd = cs_snap_open(c->fd, c->id);
	ASSERT_GE(c->sfd, 0);
	c->smap = mmap(NULL, CT_SZ, PROT_READ, MAP_SHARED, c->sfd, 0);
	ASSERT_TRUE(c->smap != MAP_FAILED);
}

/*
 * The kernel refused @err: it must be the expected errno, and nothing
 * may have changed (a write fault before the refusal may have copied
 * the page: diff then reports it, with equal bytes).
 */
static void ct_refused(struct ct *c, int err)
{
	const struct ct_way *w = c->row->way;
	int want = w->refusal ? w->refusal(c) : 0;
	uint64_t n;

	if (!want)
		FAIL("refused with %s; this way must work", ct_errname(err));
	if (err != want)
		FAIL("refused with %s, want %s", ct_errname(err),
		     ct_errname(want));
	snprintf(c->write_res, sizeof(c->write_res), "refused %s%s",
		 ct_errname(err), c->refused_after_snap ? "" : " (pre-snap)");
	c->res[CT_WRITE] = c->write_res;
	ct_check_snap(c, "after the refusal");
	c->res[CT_SNAP] = "pass";
	c->stage = CT_LIVE;
	ct_check_live(c, c->old_img, "after the refusal");
	c->res[CT_LIVE] = "unchanged";
	c->stage = CT_DIFF;
	n = ct_diff_pages(c, c->id, 0);
	/* Only a refusal after pinning, after the snapshot, may copy. */
	if (n && !(c->refused_after_snap && err == EOPNOTSUPP))
		FAIL("diff reports page %d after a refusal that faults nothing",
		     CT_W);
	snprintf(c->diff_res, sizeof(c->diff_res), n ? "page %d (CoW, equal)" :
		 "empty", CT_W);
	c->res[CT_DIFF] = c->diff_res;
	c->stage = CT_RESTORE;
	ASSERT_EQ(cs_restore(c->fd, c->id, 0), n);
	ct_check_live(c, c->old_img, "after restore");
	ct_expect_diff(c, c->id, 0, 0, 0);
	ct_check_snap(c, "after restore");
	c->res[CT_RESTORE] = "pass";
}

/* Properties 1-4 after the first write. */
static void ct_properties(struct ct *c)
{
	uint64_t id2;

	ct_check_snap(c, "after the write");
	c->res[CT_SNAP] = "pass";

	c->stage = CT_LIVE;
	ct_check_live(c, c->new_img, "after the write");
	/* The write is in the region's index, not only in some page. */
	id2 = cs_snap(c->fd, "ct-after");
	ASSERT_NE(id2, 0);
	ct_check_snap_id(c, id2, c->new_img, "snapshot taken after the write");
	c->res[CT_LIVE] = "pass";

	c->stage = CT_DIFF;
	ct_expect_diff(c, c->id, 0, CT_W, 1);
	ct_expect_diff(c, c->id, id2, CT_W, 1);
	ct_expect_diff(c, id2, 0, 0, 0);
	c->res[CT_DIFF] = "pass";

	/* Restoring the older snapshot: the walking restore. */
	c->stage = CT_RESTORE;
	ASSERT_EQ(cs_restore(c->fd, c->id, 0), 1);
	ct_check_live(c, c->old_img, "after restore");
	ct_expect_diff(c, c->id, 0, 0, 0);
	ct_check_snap(c, "after restore");
}

/*
 * A reference held while a snapshot is restored, written through after.
 * As in the row: taken before a snapshot (then that one is restored, the
 * base: only dirty pages) or after it (the first one is restored).  A
 * pin's page is no longer the region's after the restore, so its write
 * reaches neither the live view nor a snapshot; a store while a pipe holds
 * the page is an ordinary new write, undone by the next restore.
 */
static void ct_pin_across_restore(struct ct *c)
{
	const struct ct_way *w = c->row->way;
	uint64_t id = c->id;

	c->k = 1;
	if (!c->armed)
		ASSERT_EQ(ct_arm(c), 0);
	if (c->row->when == CT_PIN_BEFORE) {
		id = cs_snap(c->fd, "ct-pinned");
		ASSERT_NE(id, 0);
		ct_check_snap_id(c, id, c->old_img, "snapshot of a pinned page");
	}
	ASSERT_GE(cs_restore(c->fd, id, 0), 0);
	ASSERT_EQ(w->write(c), 0);
	ct_check_snap(c, "write through a reference held across restore");
	ct_check_snap_id(c, id, c->old_img,
			 "write through a reference held across restore");
	if (w->via_pin) {
		ct_check_live(c, c->old_img,
			      "write through a pin held across restore");
		ct_expect_diff(c, id, 0, 0, 0);
	} else {
		ct_check_live(c, c->new2_img,
			      "store while a reference is held across restore");
		ct_expect_diff(c, id, 0, CT_W, 1);
		ASSERT_EQ(cs_restore(c->fd, id, 0), 1);
	}
	w->disarm(c);
	c->armed = false;
	c->base = id;
	ct_check_live(c, c->old_img, "after the reference is gone");
}

/*
 * Nothing comes back: a new mapping, a new snapshot, a new fd.  Diff
 * compares page identity: after restoring a snapshot that holds a copy of
 * a pinned page, only that snapshot equals the live view page for page.
 */
static void ct_later(struct ct *c)
{
	uint64_t id3;

	ASSERT_EQ(munmap(c->p, CT_SZ), 0);
	c->p = cs_map(c->fd, CT_SZ);
	ASSERT_TRUE(c->p != NULL);
	c->target = c->p + CT_W * PG;
	ct_check_live(c, c->old_img, "later, through a new mapping");
	id3 = cs_snap(c->fd, "ct-later");
	ASSERT_NE(id3, 0);
	ct_check_snap_id(c, id3, c->old_img, "later, a new snapshot");
	ct_expect_diff(c, c->base, 0, 0, 0);
	ct_expect_diff(c, c->base, id3, 0, 0);
	c->stage = CT_SNAP;
	ct_check_snap(c, "later");
	ct_check_snap_id(c, c->id, c->old_img, "later");
}

/*
 * The same way aimed at the snapshot: page CT_W of its read-only mapping,
 * or its fd.  It must be refused (an errno, or SIGSEGV for a store), and
 * neither the snapshot nor the live view may change.  In a child, which
 * a store kills, with a ring of its own.
 */
static void ct_aim_at_snapshot(struct ct *c)
{
	const struct ct_way *w = c->row->way;
	int status, e;
	pid_t pid;

	c->stage = CT_AIM;
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		th_teardown = NULL;	/* the fixture is the parent's */
		c->at_snapshot = true;
		c->target = c->smap + CT_W * PG;
		c->wfd = c->sfd;
		c->k = 0;
		if (c->ring.fd >= 0) {
			close(c->ring.fd);
			ASSERT_EQ(ct_ring_init(&c->ring), 0);
		}
		e = w->arm ? ct_arm(c) : 0;
		if (!e)
			e = w->write(c);
		_exit(e ? 100 + e : 0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) {
		snprintf(c->aim_res, sizeof(c->aim_res), "SIGSEGV");
	} else if (WIFEXITED(status) && WEXITSTATUS(status) > 100) {
		e = WEXITSTATUS(status) - 100;
		/*
		 * EFAULT: GUP on a mapping without VM_WRITE; EIO: FOLL_FORCE
		 * on one without VM_MAYWRITE (ptrace, /proc/PID/mem); EBADF:
		 * write() or pwrite() on the read-only fd; EACCES: a
		 * writable mapping of it.
		 */
		if (e != EFAULT && e != EBADF && e != EACCES && e != EIO)
			FAIL("aimed at the snapshot: refused with %s",
			     ct_errname(e));
		snprintf(c->aim_res, sizeof(c->aim_res), "refused %s",
			 ct_errname(e));
	} else if (WIFEXITED(status) && !WEXITSTATUS(status)) {
		FAIL("aimed at the snapshot, the write was not refused");
	} else {
		FAIL("aimed at the snapshot: child status %#x", status);
	}
	c->stage = CT_SNAP;
	ct_check_snap(c, "after a write aimed at the snapshot");
	ct_check_snap_id(c, c->id, c->old_img,
			 "after a write aimed at the snapshot");
	c->stage = CT_AIM;
	ct_check_live(c, c->old_img, "after a write aimed at the snapshot");
	c->res[CT_AIM] = c->aim_res;
}

static void ct_run(struct ct *c, const char *name)
{
	const struct ct_way *w;
	size_t i;
	int err = 0;

	for (i = 0; i < CT_NROWS; i++)
		if (!strcmp(ct_rows[i].name, name))
			c->row = &ct_rows[i];
	ASSERT_TRUE(c->row != NULL);
	w = c->row->way;
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	c->stage = CT_WRITE;
	ct_setup(c);
	if (w->prepare)
		w->prepare(c);

	if (c->row->when == CT_PIN_BEFORE)
		err = ct_arm(c);
	ct_snapshot(c);
	if (!err && c->row->when == CT_PIN_AFTER)
		err = ct_arm(c);
	if (!err)
		err = w->write(c);
	if (err) {
		c->refused_after_snap = c->row->when != CT_PIN_BEFORE ||
					c->armed;
		ct_refused(c, err);
		ct_aim_at_snapshot(c);
		c->done = true;
		return;
	}
	snprintf(c->write_res, sizeof(c->write_res), "ok");
	c->res[CT_WRITE] = c->write_res;

	ct_properties(c);
	if (c->row->when != CT_NOW)
		ct_pin_across_restore(c);
	ct_later(c);
	c->res[CT_RESTORE] = "pass";
	ct_aim_at_snapshot(c);
	c->done = true;
}

/* Append this row's line to CT_ROWS_FILE (also when it failed). */
static void ct_record(struct ct *c)
{
	struct timespec t1;
	struct utsname u;
	char line[512];
	long ms;
	int i, fd, n;

	if (!c->row)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - c->t0.tv_sec) * 1000 +
	     (t1.tv_nsec - c->t0.tv_nsec) / 1000000;
	uname(&u);
	for (i = 0; i < CT_NPROP; i++)
		if (!c->res[i])
			c->res[i] = "-";
	if (c->skipped) {
		snprintf(c->write_res, sizeof(c->write_res), "skip");
		c->res[CT_WRITE] = c->write_res;
		for (i = CT_SNAP; i < CT_NPROP; i++)
			c->res[i] = "skip";
	} else if (!c->done) {
		c->res[c->stage] = "FAIL";
	}
	n = snprintf(line, sizeof(line),
		     "| %s | %s | %s | %s | %s | %s | %s | %s | %lld | %ld |%s%s\n",
		     c->row->name, u.release, c->res[CT_WRITE], c->res[CT_SNAP],
		     c->res[CT_LIVE], c->res[CT_DIFF], c->res[CT_RESTORE],
		     c->res[CT_AIM], c->pinned_copies, ms, c->skipped ? " " : "",
		     c->skipped ? c->why : "");
	fd = open(CT_ROWS_FILE, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0) {
		(void)!write(fd, line, n);
		close(fd);
	}
}

FIXTURE_TEARDOWN(cow_table)
{
	struct ct *c = &self->c;
	int status;

	ct_record(c);
	if (c->row && c->row->way->disarm)
		c->row->way->disarm(c);
	if (c->peer > 0) {
		close(c->peer_cmd);
		close(c->peer_data);
		waitpid(c->peer, &status, 0);
	}
	if (c->ring.fd >= 0)
		close(c->ring.fd);
	if (c->smap && c->smap != MAP_FAILED)
		munmap(c->smap, CT_SZ);
	if (c->p)
		munmap(c->p, CT_SZ);
	if (c->sfd >= 0)
		close(c->sfd);
	if (c->uffd >= 0)
		close(c->uffd);
	if (c->efd >= 0)
		close(c->efd);
	if (c->dfd >= 0)
		close(c->dfd);
	if (c->pfd[0] >= 0) {
		close(c->pfd[0]);
		close(c->pfd[1]);
	}
	if (c->fd >= 0)
		close(c->fd);
	if (c->name[0])
		cs_destroy_quiet(c->name);
}

#define CT_ROW_TEST(n, w, when)						\
	TEST_F(cow_table, n)						\
	{								\
		ct_run(&self->c, #n);					\
	}
CT_ROWS(CT_ROW_TEST)

/* Last: the table, one "#" line per row, ready to paste as markdown. */
TEST(cow_table_summary)
{
	FILE *fp = fopen(CT_ROWS_FILE, "r");
	char line[512], key[96];
	size_t i;

	printf("# | way | kernel | %s | %s | %s | %s | %s | %s | pinned copies | ms |\n",
	       ct_prop_names[CT_WRITE], ct_prop_names[CT_SNAP],
	       ct_prop_names[CT_LIVE], ct_prop_names[CT_DIFF],
	       ct_prop_names[CT_RESTORE], ct_prop_names[CT_AIM]);
	for (i = 0; i < CT_NROWS; i++) {
		bool found = false;

		snprintf(key, sizeof(key), "| %s |", ct_rows[i].name);
		if (fp) {
			rewind(fp);
			while (fgets(line, sizeof(line), fp)) {
				if (strncmp(line, key, strlen(key)))
					continue;
				printf("# %s", line);
				found = true;
			}
		}
		if (!found)
			printf("# | %s | no result: not run, or killed |\n",
			       ct_rows[i].name);
	}
	if (fp) {
		fclose(fp);
		unlink(CT_ROWS_FILE);
	}
	fflush(stdout);
}

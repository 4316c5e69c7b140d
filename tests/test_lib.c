// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libcowsnap against the module: the calls, the contracts libcowsnap(3)
 * states (the list and diff cursors, csnap_diff_walk()'s return values,
 * the size field of struct csnap_dump_info, loading from a pipe in one
 * pass), and every row of docs/errors.md whose "asserted by" is test_lib:
 * the errors the library adds to the kernel's, which it otherwise passes
 * through unchanged.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "harness.h"
#include "util.h"
#include "libcowsnap.h"

struct row {
	const char *call;
	int err;
};

#define ROW(call, err)	{ call, err }

/* The rows of docs/errors.md asserted here (tests/check-userspace.sh). */
static const struct row rows[] = {
	ROW("csnap_open", EINVAL),
	ROW("csnap_open", ENOENT),
	ROW("csnap_open", EACCES),
	ROW("csnap_open", EPROTONOSUPPORT),
	ROW("names and labels", EINVAL),
	ROW("names and labels", ENAMETOOLONG),
	ROW("csnap_snapshot_find", EINVAL),
	ROW("csnap_snapshot_find", ENOENT),
	ROW("csnap_snapshot_find", ENOTUNIQ),
	ROW("csnap_snapshot_open", EINVAL),
	ROW("csnap_diff_walk", EINVAL),
	ROW("dump calls", EINVAL),
	ROW("dump calls", EBADMSG),
	ROW("dump calls", EPROTONOSUPPORT),
	ROW("dump calls", ECANCELED),
};

#define NROWS	(sizeof(rows) / sizeof(rows[0]))

static struct {
	unsigned char hit[NROWS];
	int ran;
} *cov;

static void __attribute__((constructor)) cov_init(void)
{
	cov = mmap(NULL, sizeof(*cov), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (cov == MAP_FAILED)
		abort();
}

static void mark(const char *call, int err, int line)
{
	size_t i;

	for (i = 0; i < NROWS; i++)
		if (!strcmp(rows[i].call, call) && rows[i].err == err)
			break;
	if (i == NROWS)
		th_fail(__FILE__, line, "%s %s is not a row of docs/errors.md",
			call, strerror(err));
	cov->hit[i] = 1;
}

#define EXPECT(call, expr, e) do {					\
	ASSERT_ERRNO(expr, e);						\
	mark(call, e, __LINE__);					\
} while (0)

FIXTURE(lib) {
	char names[8][COWSNAP_NAME_MAX];
	int nnames;
};

FIXTURE_SETUP(lib)
{
	memset(self, 0, sizeof(*self));
	__atomic_add_fetch(&cov->ran, 1, __ATOMIC_SEQ_CST);
}

FIXTURE_TEARDOWN(lib)
{
	int i;

	for (i = 0; i < self->nnames; i++)
		cs_destroy_quiet(self->names[i]);
}

static const char *name_of(struct th_fx_lib *self, const char *base)
{
	char *n = self->names[self->nnames++];

	snprintf(n, COWSNAP_NAME_MAX, "lib-%s-%d", base, (int)getpid());
	cs_destroy_quiet(n);
	return n;
}

/* A handle attached to a new region of @pages pages. */
static int new_region(struct th_fx_lib *self, const char *base, size_t pages)
{
	int fd = csnap_open(O_RDWR);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(csnap_region_create(fd, name_of(self, base), pages * PG,
				      0600), 0);
	return fd;
}

/* Run @fn() in a child; its return value is the child's exit status. */
static int in_child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (!pid)
		_exit(fn());
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

/* csnap_open's errno with @dev (or nothing) mounted over /dev/cowsnap. */
static int open_with(const char *dev)
{
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return 100;
	if (!dev && mount("none", "/dev", "tmpfs", 0, NULL))
		return 101;
	if (dev && mount(dev, COWSNAP_DEV, NULL, MS_BIND, NULL))
		return 102;
	return csnap_open(O_RDWR) < 0 ? errno : 0;
}

static int open_missing(void)
{
	return open_with(NULL);
}

/* A device that says EINVAL to unknown ioctls: a module of another API. */
static int open_urandom(void)
{
	return open_with("/dev/urandom");
}

static int open_as_nobody(void)
{
	if (setgid(65534) || setuid(65534))
		return 100;
	return csnap_open(O_RDONLY) < 0 ? errno : 0;
}

TEST_F(lib, open_checks_flags_and_the_api)
{
	uint64_t feat = 0, iocs = 0;
	struct stat st;
	int fd;

	fd = csnap_open(O_RDWR);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ASSERT_EQ(csnap_features(fd, &feat, &iocs), 0);
	ASSERT_TRUE(feat & COWSNAP_FEAT_REGIONS);
	ASSERT_TRUE(feat & COWSNAP_FEAT_SNAPSHOTS);
	ASSERT_TRUE(iocs & (1ULL << _COWSNAP_IOC_CLONE));
	close(fd);
	fd = csnap_open(O_RDONLY | O_CLOEXEC);
	ASSERT_GE(fd, 0);
	close(fd);
	EXPECT("csnap_open", csnap_open(O_WRONLY), EINVAL);
	EXPECT("csnap_open", csnap_open(O_RDWR | O_APPEND), EINVAL);
	EXPECT("csnap_open", csnap_open(O_RDWR | O_CREAT), EINVAL);
	ASSERT_EQ(in_child(open_missing), ENOENT);
	mark("csnap_open", ENOENT, __LINE__);
	ASSERT_EQ(in_child(open_urandom), EPROTONOSUPPORT);
	mark("csnap_open", EPROTONOSUPPORT, __LINE__);
	ASSERT_EQ(stat(COWSNAP_DEV, &st), 0);
	if ((st.st_mode & 0777) != 0600)
		SKIP("/dev/cowsnap is mode %o", st.st_mode & 0777);
	ASSERT_EQ(in_child(open_as_nobody), EACCES);
	mark("csnap_open", EACCES, __LINE__);
}

TEST_F(lib, region_calls_pass_the_kernel_errno_through)
{
	const char *name = name_of(self, "region");
	char long_name[COWSNAP_NAME_MAX + 8];
	struct cowsnap_info info;
	int fd = csnap_open(O_RDWR), fd2 = csnap_open(O_RDWR);
	unsigned char *p;

	ASSERT_GE(fd, 0);
	ASSERT_GE(fd2, 0);
	/* The library's own: no name, or one that cannot fit. */
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;
	EXPECT("names and labels", csnap_region_create(fd, NULL, PG, 0600),
	       EINVAL);
	EXPECT("names and labels", csnap_region_attach(fd, NULL), EINVAL);
	EXPECT("names and labels", csnap_region_destroy(fd, NULL), EINVAL);
	EXPECT("names and labels", csnap_region_create(fd, long_name, PG,
						       0600), ENAMETOOLONG);
	long_name[COWSNAP_NAME_MAX] = 0;	/* 64 bytes: no room for NUL */
	EXPECT("names and labels", csnap_region_attach(fd, long_name),
	       ENAMETOOLONG);
	EXPECT("names and labels", csnap_region_destroy(fd, long_name),
	       ENAMETOOLONG);
	long_name[COWSNAP_NAME_MAX - 1] = 0;	/* 63: the longest name */
	ASSERT_ERRNO(csnap_region_attach(fd, long_name), ENOENT);
	/* The kernel's, unchanged. */
	ASSERT_ERRNO(csnap_region_create(fd, "bad name", PG, 0600), EINVAL);
	ASSERT_ERRNO(csnap_region_create(fd, name, PG + 1, 0600), EINVAL);
	ASSERT_ERRNO(csnap_region_create(fd, name, 32ULL << 40, 0600), E2BIG);
	ASSERT_ERRNO(csnap_region_attach(fd, name), ENOENT);
	ASSERT_ERRNO(csnap_region_destroy(fd, name), ENOENT);
	ASSERT_ERRNO(csnap_region_info(fd, &info), EINVAL);
	ASSERT_TRUE(csnap_region_map(fd, 0, PROT_READ) == NULL);
	ASSERT_EQ(errno, EINVAL);
	ASSERT_EQ(csnap_region_create(fd, name, 16 * PG, 0640), 0);
	ASSERT_ERRNO(csnap_region_create(fd2, name, PG, 0600), EEXIST);
	ASSERT_ERRNO(csnap_region_attach(fd, name), EBUSY);
	ASSERT_EQ(csnap_region_attach(fd2, name), 0);
	ASSERT_EQ(csnap_region_info(fd2, &info), 0);
	ASSERT_EQ(info.size, 16 * PG);
	ASSERT_EQ(info.mode, 0640);
	ASSERT_EQ(strcmp(info.name, name), 0);
	p = csnap_region_map(fd, 0, PROT_READ | PROT_WRITE);
	ASSERT_TRUE(p != NULL);
	p[15 * PG] = 7;
	ASSERT_TRUE(csnap_region_map(fd, 17 * PG, PROT_READ) == NULL);
	ASSERT_EQ(errno, EINVAL);
	munmap(p, 16 * PG);
	ASSERT_EQ(csnap_region_destroy(fd2, name), 0);
	ASSERT_EQ(csnap_region_info(fd, &info), 0);
	ASSERT_TRUE(info.flags & COWSNAP_INFO_DESTROYED);
	close(fd2);
	close(fd);
}

TEST_F(lib, snapshot_list_follows_the_cursor)
{
	struct cowsnap_snap_entry *e = (struct cowsnap_snap_entry *)1;
	int fd = new_region(self, "list", 4);
	char label[32];
	uint64_t id, i;
	ssize_t n;

	ASSERT_EQ(csnap_snapshot_list(fd, &e), 0);
	ASSERT_TRUE(e == NULL);
	/* More than the kernel's 64 per call, with a hole in the ids. */
	for (i = 1; i <= 150; i++) {
		snprintf(label, sizeof(label), "s%llu", (unsigned long long)i);
		ASSERT_EQ(csnap_snapshot_create(fd, label, &id), 0);
		ASSERT_EQ(id, i);
	}
	ASSERT_EQ(csnap_snapshot_delete(fd, 64), 0);
	ASSERT_EQ(csnap_snapshot_delete(fd, 65), 0);
	n = csnap_snapshot_list(fd, &e);
	ASSERT_EQ(n, 148);
	for (i = 0; i < 148; i++) {
		uint64_t want = i < 63 ? i + 1 : i + 3;

		ASSERT_EQ(e[i].id, want);
		snprintf(label, sizeof(label), "s%llu",
			 (unsigned long long)want);
		ASSERT_EQ(strcmp(e[i].label, label), 0);
	}
	free(e);
	ASSERT_ERRNO(csnap_snapshot_delete(fd, 64), ENOENT);
	EXPECT("names and labels", csnap_snapshot_create(fd,
		"0123456789012345678901234567890123456789012345678901234567890123",
		&id), ENAMETOOLONG);
	ASSERT_EQ(csnap_snapshot_create(fd, NULL, &id), 0);
	ASSERT_EQ(csnap_snapshot_create(fd, "", NULL), 0);
	close(fd);
}

TEST_F(lib, snapshot_find_by_id_or_label)
{
	int fd = new_region(self, "find", 4);
	uint64_t id = 0;

	ASSERT_EQ(csnap_snapshot_create(fd, "2", NULL), 0);	/* id 1 */
	ASSERT_EQ(csnap_snapshot_create(fd, "base", NULL), 0);	/* id 2 */
	ASSERT_EQ(csnap_snapshot_create(fd, "twice", NULL), 0);	/* id 3 */
	ASSERT_EQ(csnap_snapshot_create(fd, "twice", NULL), 0);	/* id 4 */
	/* An existing id wins over a label spelled the same. */
	ASSERT_EQ(csnap_snapshot_find(fd, "2", &id), 0);
	ASSERT_EQ(id, 2);
	ASSERT_EQ(csnap_snapshot_find(fd, "base", &id), 0);
	ASSERT_EQ(id, 2);
	ASSERT_EQ(csnap_snapshot_find(fd, "4", &id), 0);
	ASSERT_EQ(id, 4);
	EXPECT("csnap_snapshot_find", csnap_snapshot_find(fd, "twice", &id),
	       ENOTUNIQ);
	EXPECT("csnap_snapshot_find", csnap_snapshot_find(fd, "9", &id),
	       ENOENT);
	EXPECT("csnap_snapshot_find", csnap_snapshot_find(fd, "none", &id),
	       ENOENT);
	EXPECT("csnap_snapshot_find", csnap_snapshot_find(fd, NULL, &id),
	       EINVAL);
	/* Once id 2 is gone, "2" is the label of snapshot 1. */
	ASSERT_EQ(csnap_snapshot_delete(fd, 2), 0);
	ASSERT_EQ(csnap_snapshot_find(fd, "2", &id), 0);
	ASSERT_EQ(id, 1);
	close(fd);
}

TEST_F(lib, snapshot_open_flags_and_restore)
{
	int fd = new_region(self, "open", 4), sfd;
	unsigned char *p = csnap_region_map(fd, 0, PROT_READ | PROT_WRITE);
	uint64_t id, pages = 0;
	char c;

	ASSERT_TRUE(p != NULL);
	p[0] = 'a';
	ASSERT_EQ(csnap_snapshot_create(fd, "a", &id), 0);
	p[0] = 'b';
	p[PG] = 'b';
	sfd = csnap_snapshot_open(fd, id, 0);
	ASSERT_GE(sfd, 0);
	ASSERT_EQ(fcntl(sfd, F_GETFD) & FD_CLOEXEC, 0);
	ASSERT_EQ(pread(sfd, &c, 1, 0), 1);
	ASSERT_EQ(c, 'a');
	close(sfd);
	sfd = csnap_snapshot_open(fd, id, O_CLOEXEC);
	ASSERT_GE(sfd, 0);
	ASSERT_EQ(fcntl(sfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(sfd);
	EXPECT("csnap_snapshot_open", csnap_snapshot_open(fd, id, O_RDWR),
	       EINVAL);
	EXPECT("csnap_snapshot_open", csnap_snapshot_open(fd, id, O_NONBLOCK),
	       EINVAL);
	ASSERT_ERRNO(csnap_snapshot_open(fd, id + 1, 0), ENOENT);
	ASSERT_ERRNO(csnap_restore(fd, id, id + 1, NULL), EXDEV);
	ASSERT_ERRNO(csnap_restore(fd, id + 1, 0, NULL), ENOENT);
	ASSERT_EQ(csnap_restore(fd, id, id, &pages), 0);
	ASSERT_EQ(pages, 2);
	ASSERT_EQ(p[0], 'a');
	ASSERT_EQ(p[PG], 0);
	ASSERT_EQ(csnap_restore(fd, id, 0, NULL), 0);
	munmap(p, 4 * PG);
	close(fd);
}

struct walk {
	uint64_t n, pages, last_end;
	uint64_t stop_after;
	int ret;		/* what the callback returns when it stops */
	int ordered;
};

static int on_extent(uint64_t start, uint64_t count, void *arg)
{
	struct walk *w = arg;

	if (start < w->last_end || !count)
		w->ordered = 0;
	w->last_end = start + count;
	w->n++;
	w->pages += count;
	return w->n == w->stop_after ? w->ret : 0;
}

TEST_F(lib, diff_walk_returns_0_1_or_minus_1_never_the_callback_value)
{
	const uint64_t np = 6000;
	struct cowsnap_extent *x = NULL;
	struct walk w;
	int fd = new_region(self, "diff", np);
	char one = 1;
	uint64_t i;
	ssize_t n;

	ASSERT_EQ(csnap_snapshot_create(fd, NULL, NULL), 0);
	/* 2000 one-page extents, more than one kernel batch of 1024 ... */
	for (i = 0; i < 4000; i += 2)
		ASSERT_EQ(pwrite(fd, &one, 1, i * PG), 1);
	/* ... and one of 2000 pages, which the library reports whole. */
	for (i = 4000; i < np; i++)
		ASSERT_EQ(pwrite(fd, &one, 1, i * PG), 1);

	memset(&w, 0, sizeof(w));
	w.ordered = 1;
	ASSERT_EQ(csnap_diff_walk(fd, 1, 0, on_extent, &w), 0);
	ASSERT_EQ(w.n, 2001);
	ASSERT_EQ(w.pages, 4000);
	ASSERT_TRUE(w.ordered);
	n = csnap_diff(fd, 1, 0, &x);
	ASSERT_EQ(n, 2001);
	ASSERT_EQ(x[0].start, 0);
	ASSERT_EQ(x[1999].start, 3998);
	ASSERT_EQ(x[2000].start, 4000);
	ASSERT_EQ(x[2000].count, 2000);
	free(x);

	/* A callback that stops: 1, whatever it returned; errno untouched. */
	memset(&w, 0, sizeof(w));
	w.stop_after = 1500;
	w.ret = -1;
	errno = 0;
	ASSERT_EQ(csnap_diff_walk(fd, 1, 0, on_extent, &w), 1);
	ASSERT_EQ(errno, 0);
	ASSERT_EQ(w.n, 1500);
	memset(&w, 0, sizeof(w));
	w.stop_after = 2001;	/* the last extent */
	w.ret = 42;
	ASSERT_EQ(csnap_diff_walk(fd, 1, 0, on_extent, &w), 1);
	/* A failed walk: -1 and the kernel's errno, the callback never run. */
	memset(&w, 0, sizeof(w));
	ASSERT_ERRNO(csnap_diff_walk(fd, 7, 0, on_extent, &w), ENOENT);
	ASSERT_EQ(w.n, 0);
	EXPECT("csnap_diff_walk", csnap_diff_walk(fd, 1, 0, NULL, NULL),
	       EINVAL);
	ASSERT_ERRNO(csnap_diff(fd, 1, 9, &x), ENOENT);
	/* Nothing changed: no extents, no array. */
	ASSERT_EQ(csnap_snapshot_create(fd, NULL, NULL), 0);
	x = (struct cowsnap_extent *)1;
	ASSERT_EQ(csnap_diff(fd, 2, 0, &x), 0);
	ASSERT_TRUE(x == NULL);
	close(fd);
}

/* A dump of a fresh region with a few pages, in a memfd at offset 0. */
static int make_dump(struct th_fx_lib *self, const char *base, size_t pages,
		     struct csnap_dump_info *di)
{
	int fd = new_region(self, base, pages), mfd;
	char buf[PG];
	size_t i;
	uint64_t id;

	for (i = 0; i < pages; i += 3) {
		memset(buf, (int)(i % 251) + 1, sizeof(buf));
		ASSERT_EQ(pwrite(fd, buf, PG, i * PG), PG);
	}
	ASSERT_EQ(csnap_snapshot_create(fd, NULL, &id), 0);
	mfd = memfd_create("dump", MFD_CLOEXEC);
	ASSERT_GE(mfd, 0);
	CSNAP_DUMP_INFO_INIT(di);
	ASSERT_EQ(csnap_dump(fd, id, mfd, di, NULL, NULL), 0);
	ASSERT_EQ(lseek(mfd, 0, SEEK_SET), 0);
	close(fd);
	return mfd;
}

TEST_F(lib, dump_info_carries_its_size)
{
	struct {
		struct csnap_dump_info di;
		unsigned char more[64];	/* fields of a later version */
	} big;
	struct csnap_dump_info di;
	int mfd = make_dump(self, "info", 64, &di), fd;
	unsigned int i;

	ASSERT_EQ(di.struct_size, sizeof(di));
	ASSERT_EQ(di.version, CSNAP_DUMP_VERSION);
	ASSERT_EQ(di.size, 64 * PG);
	ASSERT_EQ(di.data_pages, 22);
	ASSERT_EQ(di.bytes, lseek(mfd, 0, SEEK_END));
	ASSERT_EQ(lseek(mfd, 0, SEEK_SET), 0);
	/* Too small (or not set): EINVAL, nothing read. */
	memset(&di, 0, sizeof(di));
	EXPECT("dump calls", csnap_dump_check(mfd, &di), EINVAL);
	di.struct_size = sizeof(di) - 1;
	EXPECT("dump calls", csnap_dump_check(mfd, &di), EINVAL);
	fd = csnap_open(O_RDWR);
	EXPECT("dump calls", csnap_dump(fd, 1, mfd, &di, NULL, NULL), EINVAL);
	EXPECT("dump calls", csnap_load(fd, "lib-x", 0600, mfd, &di, NULL,
					NULL), EINVAL);
	ASSERT_EQ(lseek(mfd, 0, SEEK_CUR), 0);
	/* Larger, from a newer header: what the library knows, rest zero. */
	memset(&big, 0xff, sizeof(big));
	big.di.struct_size = sizeof(big);
	ASSERT_EQ(csnap_dump_check(mfd, &big.di), 0);
	ASSERT_EQ(big.di.struct_size, sizeof(big.di));
	ASSERT_EQ(big.di.data_pages, 22);
	for (i = 0; i < sizeof(big.more); i++)
		ASSERT_EQ(big.more[i], 0);
	ASSERT_EQ(lseek(mfd, 0, SEEK_SET), 0);
	ASSERT_EQ(csnap_dump_check(mfd, NULL), 0);
	close(fd);
	close(mfd);
}

/* Write all @len bytes of @buf to the pipe @fd, or die. */
static void feed(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n <= 0)
			_exit(1);
		p += n;
		len -= n;
	}
}

static int region_exists(const char *name)
{
	int fd = cs_open(), ok;

	ok = fd >= 0 && !cs_attach(fd, name);
	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * From a pipe the region is created after the header and filled as the
 * dump arrives, with nothing spooled ($TMPDIR need not exist); a dump that
 * then turns out bad destroys it again.
 */
TEST_F(lib, load_streams_from_a_pipe)
{
	struct csnap_dump_info di;
	const char *name = name_of(self, "streamed");
	int mfd = make_dump(self, "stream-src", 256, &di), pfd[2], fd, status;
	size_t len = di.bytes, i;
	unsigned char *d = malloc(len), a[PG], b[PG];
	pid_t pid;

	ASSERT_EQ(pread(mfd, d, len, 0), (ssize_t)len);
	setenv("TMPDIR", "/nonexistent", 1);
	ASSERT_EQ(pipe(pfd), 0);
	pid = fork();
	if (!pid) {
		close(pfd[1]);
		fd = csnap_open(O_RDWR);
		CSNAP_DUMP_INFO_INIT(&di);
		if (csnap_load(fd, name, 0640, pfd[0], &di, NULL, NULL))
			_exit(errno);
		_exit(di.data_pages == 86 ? 0 : 99);
	}
	close(pfd[0]);
	/* All but the trailer: the region exists, the load goes on. */
	feed(pfd[1], d, len - 8);
	for (i = 0; i < 100 && !region_exists(name); i++)
		usleep(20000);
	ASSERT_TRUE(region_exists(name));
	ASSERT_EQ(waitpid(pid, &status, WNOHANG), 0);
	feed(pfd[1], d + len - 8, 8);
	close(pfd[1]);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	fd = cs_open();
	ASSERT_EQ(cs_attach(fd, name), 0);
	for (i = 0; i < 256; i++) {
		ASSERT_EQ(pread(fd, a, PG, i * PG), PG);
		memset(b, i % 3 ? 0 : (int)(i % 251) + 1, PG);
		if (memcmp(a, b, PG))
			FAIL("page %zu differs", i);
	}
	ASSERT_EQ(cs_destroy(fd, name), 0);
	close(fd);

	/* A bad checksum is found at the end: the region goes again. */
	d[len - 8] ^= 1;
	ASSERT_EQ(pipe(pfd), 0);
	pid = fork();
	if (!pid) {
		close(pfd[0]);
		feed(pfd[1], d, len);
		_exit(0);
	}
	close(pfd[1]);
	fd = csnap_open(O_RDWR);
	CSNAP_DUMP_INFO_INIT(&di);
	EXPECT("dump calls", csnap_load(fd, name, 0600, pfd[0], &di, NULL,
					NULL), EBADMSG);
	ASSERT_TRUE(strstr(di.error, "checksum mismatch") != NULL);
	ASSERT_FALSE(region_exists(name));
	waitpid(pid, NULL, 0);
	close(pfd[0]);
	close(fd);
	free(d);
	close(mfd);
}

static int cancel_at_half(uint64_t done, uint64_t total, void *arg)
{
	(*(int *)arg)++;
	return done * 2 >= total;
}

TEST_F(lib, load_from_a_file_checks_first_and_can_be_cancelled)
{
	struct csnap_dump_info di;
	const char *name = name_of(self, "loaded");
	int mfd = make_dump(self, "load-src", 1024, &di), fd, calls = 0;
	long long regions = proc_counter("regions");
	unsigned char v = 2;

	/* Another format version: refused before anything is created. */
	ASSERT_EQ(pwrite(mfd, &v, 1, 8), 1);
	fd = csnap_open(O_RDWR);
	CSNAP_DUMP_INFO_INIT(&di);
	EXPECT("dump calls", csnap_load(fd, name, 0600, mfd, &di, NULL, NULL),
	       EPROTONOSUPPORT);
	ASSERT_TRUE(strstr(di.error, "version 2") != NULL);
	ASSERT_EQ(proc_counter("regions"), regions);
	v = 1;
	ASSERT_EQ(pwrite(mfd, &v, 1, 8), 1);
	ASSERT_EQ(lseek(mfd, 0, SEEK_SET), 0);
	EXPECT("dump calls", csnap_load(fd, name, 0600, mfd, &di,
					cancel_at_half, &calls), ECANCELED);
	ASSERT_GT(calls, 0);
	ASSERT_FALSE(region_exists(name));
	/* The handle held the destroyed region until now. */
	close(fd);
	ASSERT_EQ(proc_counter("regions"), regions);
	ASSERT_EQ(lseek(mfd, 0, SEEK_SET), 0);
	fd = csnap_open(O_RDWR);
	ASSERT_EQ(csnap_load(fd, name, 0600, mfd, NULL, NULL, NULL), 0);
	ASSERT_TRUE(region_exists(name));
	close(fd);
	close(mfd);
}

/* Last: when every test above ran, every row was asserted. */
TEST_F(lib, zz_every_documented_row_was_asserted)
{
	struct th_test *t;
	int tests = 0, missing = 0;
	size_t i;

	for (t = th_head; t; t = t->next)
		tests += !strncmp(t->name, "lib_", 4);
	if (cov->ran < tests)
		SKIP("%d of %d lib_ tests ran", cov->ran, tests);
	for (i = 0; i < NROWS; i++) {
		if (cov->hit[i])
			continue;
		fprintf(stderr, "not asserted: %s %s\n", rows[i].call,
			strerror(rows[i].err));
		missing++;
	}
	ASSERT_EQ(missing, 0);
}

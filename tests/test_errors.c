// SPDX-License-Identifier: GPL-2.0
/*
 * The error contract: every row of docs/errors.md whose "asserted by" is
 * test_errors, made to happen and checked.  rows[] below is that list
 * (tests/check-userspace.sh compares it with the document); an assertion
 * of a pair that is not in it fails, and the last test fails unless every
 * row was asserted.  Caps come from module parameters set by reloading the
 * module (max_regions, max_user_regions, max_snapshots, max_region_size,
 * max_pages), EMFILE from RLIMIT_NOFILE, ENFILE from fs.file-max (as a
 * user without CAP_SYS_ADMIN) and the kernel-memory ENOMEM of DIFF from a
 * memory cgroup limit.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "harness.h"
#include "util.h"

/* The rows of docs/errors.md asserted here: call, errno. */
struct row {
	const char *call;
	int err;
};

#define ROW(call, err)	{ call, err }

static const struct row rows[] = {
	ROW("any ioctl", EFAULT),
	ROW("any ioctl", ENOTTY),
	ROW("unattached handle", EINVAL),
	ROW("read-only handle", EACCES),
	ROW("API", EINVAL),
	ROW("CREATE", EINVAL),
	ROW("CREATE", ENAMETOOLONG),
	ROW("CREATE", E2BIG),
	ROW("CREATE", EBUSY),
	ROW("CREATE", EEXIST),
	ROW("CREATE", ENOSPC),
	ROW("CREATE", ENOMEM),
	ROW("ATTACH", EINVAL),
	ROW("ATTACH", ENAMETOOLONG),
	ROW("ATTACH", EBUSY),
	ROW("ATTACH", ENOENT),
	ROW("ATTACH", EACCES),
	ROW("DESTROY", EINVAL),
	ROW("DESTROY", ENAMETOOLONG),
	ROW("DESTROY", ENOENT),
	ROW("DESTROY", EPERM),
	ROW("SNAP_CREATE", EINVAL),
	ROW("SNAP_CREATE", ENAMETOOLONG),
	ROW("SNAP_CREATE", ENOSPC),
	ROW("SNAP_CREATE", ENOMEM),
	ROW("SNAP_LIST", EINVAL),
	ROW("SNAP_DELETE", EINVAL),
	ROW("SNAP_DELETE", ENOENT),
	ROW("SNAP_OPEN", EINVAL),
	ROW("SNAP_OPEN", ENOENT),
	ROW("SNAP_OPEN", EMFILE),
	ROW("SNAP_OPEN", ENFILE),
	ROW("RESTORE", EINVAL),
	ROW("RESTORE", ENOENT),
	ROW("RESTORE", EXDEV),
	ROW("RESTORE", ENOMEM),
	ROW("DIFF", EINVAL),
	ROW("DIFF", ENOENT),
	ROW("DIFF", ENOMEM),
	ROW("CLONE", EINVAL),
	ROW("CLONE", ENAMETOOLONG),
	ROW("CLONE", EEXIST),
	ROW("CLONE", ENOENT),
	ROW("CLONE", ENOSPC),
	ROW("CLONE", ENOMEM),
	ROW("read", EINVAL),
	ROW("read", EFAULT),
	ROW("write", EINVAL),
	ROW("write", EBADF),
	ROW("write", ENOSPC),
	ROW("write", ENOMEM),
	ROW("write", EFAULT),
	ROW("mmap", EINVAL),
	ROW("mmap", EACCES),
	ROW("snapshot fd read", EINVAL),
	ROW("snapshot fd read", EFAULT),
	ROW("snapshot fd write", EBADF),
	ROW("snapshot fd mmap", EINVAL),
	ROW("snapshot fd mmap", EACCES),
};

#define NROWS	(sizeof(rows) / sizeof(rows[0]))

/* Shared with every test's process: rows asserted, tests run. */
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

static size_t row_of(const char *call, int err)
{
	size_t i;

	for (i = 0; i < NROWS; i++)
		if (!strcmp(rows[i].call, call) && rows[i].err == err)
			break;
	return i;
}

static void mark(const char *call, int err, int line)
{
	size_t i = row_of(call, err);

	if (i == NROWS)
		th_fail(__FILE__, line, "%s %s is not a row of docs/errors.md",
			call, strerror(err));
	cov->hit[i] = 1;
}

/* @expr fails with -1 (or MAP_FAILED) and errno @e: row (@call, @e). */
#define EXPECT(call, expr, e) do {					\
	ASSERT_ERRNO(expr, e);						\
	mark(call, e, __LINE__);					\
} while (0)

#define RO_OPEN()	open(COWSNAP_DEV, O_RDONLY | O_CLOEXEC)

/* A user pointer nothing is mapped at (volatile: opaque to the compiler). */
static void *volatile bad_ptr = (void *)8;

/* A struct's name field filled to the brim: no NUL in its 64 bytes. */
#define FILL_NAME(field)	memset((field), 'a', COWSNAP_NAME_MAX)

/*
 * Every test destroys what it named and leaves the module loaded with
 * default parameters and fs.file-max as it found it, also on failure.
 */
FIXTURE(err) {
	char names[8][COWSNAP_NAME_MAX];
	int nnames;
	int reloaded;
	char file_max[32];
};

FIXTURE_SETUP(err)
{
	memset(self, 0, sizeof(*self));
	__atomic_add_fetch(&cov->ran, 1, __ATOMIC_SEQ_CST);
}

static void reload(struct th_fx_err *self, const char *params)
{
	self->reloaded = 1;
	if (mod_unload_wait())
		FAIL("rmmod: %s", strerror(errno));
	if (mod_load(params))
		FAIL("insmod %s: %s", params, strerror(errno));
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
		close(fd);
	}
}

FIXTURE_TEARDOWN(err)
{
	int i;

	if (self->file_max[0])
		write_text("/proc/sys/fs/file-max", self->file_max);
	for (i = 0; i < self->nnames; i++)
		cs_destroy_quiet(self->names[i]);
	if (self->reloaded) {
		self->reloaded = 0;
		if (mod_loaded())
			mod_unload();
		mod_load("");
	}
}

/* A region name unique to this test, destroyed at teardown. */
static const char *name_of(struct th_fx_err *self, const char *base)
{
	char *n = self->names[self->nnames++];

	snprintf(n, COWSNAP_NAME_MAX, "err-%s-%d", base, (int)getpid());
	return n;
}

/* A new region of @pages pages on a read-write handle. */
static int region(struct th_fx_err *self, const char *base, size_t pages)
{
	int fd = cs_region(name_of(self, base), pages * PG);

	if (fd < 0)
		FAIL("create %s: %s", base, strerror(errno));
	return fd;
}

/* Run @fn(@fd, @arg) as uid/gid 65534; returns its errno (0: success). */
static int as_nobody(int (*fn)(int fd, const void *arg), int fd,
		     const void *arg)
{
	int status;
	pid_t pid = fork();

	if (!pid) {
		if (setgid(65534) || setuid(65534))
			_exit(200);
		_exit(fn(fd, arg) ? errno : 0);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 201;
}

static int do_attach(int fd, const void *name)
{
	return cs_attach(fd, name);
}

static int do_destroy(int fd, const void *name)
{
	return cs_destroy(fd, name);
}

static int do_create(int fd, const void *name)
{
	return cs_create(fd, name, PG, 0600);
}

/* 0 if an ordinary open(2) succeeds (and is closed), else -1. */
static int do_devnull_open(int fd, const void *unused)
{
	int f = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (f < 0)
		return -1;
	close(f);
	return 0;
}

/* 0 if snapshot 1 opens (the fd is closed again), else -1 with errno. */
static int do_snap_open(int fd, const void *unused)
{
	int sfd = cs_snap_open(fd, 1);

	if (sfd < 0)
		return -1;
	close(sfd);
	return 0;
}

TEST_F(err, every_ioctl_efault_and_enotty)
{
	static const unsigned long cmds[] = {
		COWSNAP_IOC_API, COWSNAP_IOC_CREATE, COWSNAP_IOC_ATTACH,
		COWSNAP_IOC_DESTROY, COWSNAP_IOC_INFO, COWSNAP_IOC_SNAP_CREATE,
		COWSNAP_IOC_SNAP_LIST, COWSNAP_IOC_SNAP_DELETE,
		COWSNAP_IOC_SNAP_OPEN, COWSNAP_IOC_RESTORE, COWSNAP_IOC_DIFF,
		COWSNAP_IOC_CLONE,
	};
	int fd = region(self, "efault", 4), fresh = cs_open();
	unsigned int i;

	ASSERT_GE(fresh, 0);
	ASSERT_NE(cs_snap(fd, NULL), 0);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		EXPECT("any ioctl", ioctl(fd, cmds[i], bad_ptr), EFAULT);
	/* Those a fresh handle may issue fault before anything else. */
	for (i = 0; i < 4; i++)
		EXPECT("any ioctl", ioctl(fresh, cmds[i], bad_ptr), EFAULT);
	EXPECT("any ioctl", ioctl(fd, _IO(COWSNAP_IOC_TYPE, 0x1f), 0), ENOTTY);
	EXPECT("any ioctl", ioctl(fd, _IO(COWSNAP_IOC_TYPE, 0x0c), 0), ENOTTY);
	/* A known number with the wrong size or direction is unknown. */
	EXPECT("any ioctl", ioctl(fd, _IOR(COWSNAP_IOC_TYPE,
					   _COWSNAP_IOC_INFO, __u64), 0),
	       ENOTTY);
	EXPECT("any ioctl", ioctl(fd, _IOR(COWSNAP_IOC_TYPE, _COWSNAP_IOC_API,
					   struct cowsnap_api), 0), ENOTTY);
	EXPECT("any ioctl", ioctl(fresh, _IO('T', 1), 0), ENOTTY);
	close(fresh);
	close(fd);
}

TEST_F(err, unattached_handle_is_einval_but_for_api_create_attach_destroy)
{
	struct cowsnap_api api = { .api = COWSNAP_API_VERSION };
	struct cowsnap_info info;
	struct cowsnap_snap_create sc = { .flags = 0 };
	struct cowsnap_snap_entry e[4];
	struct cowsnap_snap_list sl = { .start_id = 1, .count = 4 };
	struct cowsnap_snap_id sid = { .id = 1 };
	struct cowsnap_snap_open so = { .id = 1 };
	struct cowsnap_restore rs = { .id = 1 };
	struct cowsnap_extent x[4];
	struct cowsnap_diff d = { .from = 1, .count = 4 };
	struct cowsnap_clone c = { .id = 1, .name = "err-never" };
	int fd = cs_open(), ro = RO_OPEN();

	ASSERT_GE(fd, 0);
	ASSERT_GE(ro, 0);
	sl.entries = (uintptr_t)e;
	d.extents = (uintptr_t)x;
	ASSERT_EQ(ioctl(fd, COWSNAP_IOC_API, &api), 0);
	EXPECT("unattached handle", ioctl(fd, COWSNAP_IOC_INFO, &info), EINVAL);
	EXPECT("unattached handle", ioctl(fd, COWSNAP_IOC_SNAP_CREATE, &sc),
	       EINVAL);
	EXPECT("unattached handle", ioctl(fd, COWSNAP_IOC_SNAP_LIST, &sl),
	       EINVAL);
	EXPECT("unattached handle", ioctl(fd, COWSNAP_IOC_SNAP_DELETE, &sid),
	       EINVAL);
	EXPECT("unattached handle", ioctl(fd, COWSNAP_IOC_SNAP_OPEN, &so),
	       EINVAL);
	EXPECT("unattached handle", ioctl(fd, COWSNAP_IOC_RESTORE, &rs),
	       EINVAL);
	EXPECT("unattached handle", ioctl(fd, COWSNAP_IOC_DIFF, &d), EINVAL);
	EXPECT("unattached handle", ioctl(fd, COWSNAP_IOC_CLONE, &c), EINVAL);
	/* Unattached beats read-only. */
	EXPECT("unattached handle", ioctl(ro, COWSNAP_IOC_SNAP_CREATE, &sc),
	       EINVAL);
	close(ro);
	close(fd);
}

TEST_F(err, read_only_handle_cannot_change_a_region)
{
	const char *name = name_of(self, "ro");
	struct cowsnap_snap_create sc = { .flags = 0 };
	struct cowsnap_snap_id sid = { .id = 1 };
	struct cowsnap_restore rs = { .id = 1 };
	struct cowsnap_clone c = { .id = 1, .mode = 0600 };
	int fd = cs_region(name, 4 * PG), ro = RO_OPEN();

	ASSERT_GE(fd, 0);
	ASSERT_GE(ro, 0);
	ASSERT_EQ(cs_snap(fd, NULL), 1);
	ASSERT_EQ(cs_attach(ro, name), 0);
	snprintf(c.name, sizeof(c.name), "%s", name_of(self, "ro-clone"));
	EXPECT("read-only handle", ioctl(ro, COWSNAP_IOC_SNAP_CREATE, &sc),
	       EACCES);
	EXPECT("read-only handle", ioctl(ro, COWSNAP_IOC_SNAP_DELETE, &sid),
	       EACCES);
	EXPECT("read-only handle", ioctl(ro, COWSNAP_IOC_RESTORE, &rs), EACCES);
	EXPECT("read-only handle", ioctl(ro, COWSNAP_IOC_CLONE, &c), EACCES);
	/* Reading is allowed. */
	ASSERT_GE(cs_snap_open(ro, 1), 0);
	close(ro);
	close(fd);
}

TEST_F(err, api_einval)
{
	struct cowsnap_api api = { .api = COWSNAP_API_VERSION + 1 };
	int fd = cs_open();

	ASSERT_GE(fd, 0);
	EXPECT("API", ioctl(fd, COWSNAP_IOC_API, &api), EINVAL);
	api.api = 0;
	EXPECT("API", ioctl(fd, COWSNAP_IOC_API, &api), EINVAL);
	api.api = COWSNAP_API_VERSION;
	api.reserved = 1;
	EXPECT("API", ioctl(fd, COWSNAP_IOC_API, &api), EINVAL);
	close(fd);
}

TEST_F(err, create_einval_enametoolong_ebusy_eexist_e2big)
{
	const char *name = name_of(self, "create");
	struct cowsnap_create c = { .size = PG, .mode = 0600 };
	int fd = cs_open(), fd2 = cs_open();

	ASSERT_GE(fd, 0);
	ASSERT_GE(fd2, 0);
	snprintf(c.name, sizeof(c.name), "%s", name);
	c.size = 0;
	EXPECT("CREATE", ioctl(fd, COWSNAP_IOC_CREATE, &c), EINVAL);
	c.size = PG + 1;
	EXPECT("CREATE", ioctl(fd, COWSNAP_IOC_CREATE, &c), EINVAL);
	c.size = PG;
	c.mode = 01000;
	EXPECT("CREATE", ioctl(fd, COWSNAP_IOC_CREATE, &c), EINVAL);
	c.mode = 0600;
	c.flags = 1;
	EXPECT("CREATE", ioctl(fd, COWSNAP_IOC_CREATE, &c), EINVAL);
	c.flags = 0;
	c.reserved[1] = 1;
	EXPECT("CREATE", ioctl(fd, COWSNAP_IOC_CREATE, &c), EINVAL);
	c.reserved[1] = 0;
	EXPECT("CREATE", cs_create(fd, "", PG, 0600), EINVAL);
	EXPECT("CREATE", cs_create(fd, ".hidden", PG, 0600), EINVAL);
	EXPECT("CREATE", cs_create(fd, "a/b", PG, 0600), EINVAL);
	FILL_NAME(c.name);
	EXPECT("CREATE", ioctl(fd, COWSNAP_IOC_CREATE, &c), ENAMETOOLONG);
	/* Larger than the default cap (16 TiB) or than the file size limit. */
	EXPECT("CREATE", cs_create(fd, name, 32ULL << 40, 0600), E2BIG);
	EXPECT("CREATE", cs_create(fd, name, 1ULL << 63, 0600), E2BIG);
	ASSERT_EQ(cs_create(fd, name, PG, 0600), 0);
	EXPECT("CREATE", cs_create(fd, "err-other", PG, 0600), EBUSY);
	EXPECT("CREATE", cs_create(fd2, name, PG, 0600), EEXIST);
	close(fd2);
	close(fd);
}

TEST_F(err, create_e2big_follows_max_region_size)
{
	const char *name = name_of(self, "maxsize");
	int fd;

	reload(self, "max_region_size=1048576");
	fd = cs_open();
	ASSERT_GE(fd, 0);
	EXPECT("CREATE", cs_create(fd, name, 2 << 20, 0600), E2BIG);
	ASSERT_EQ(cs_create(fd, name, 1 << 20, 0600), 0);
	close(fd);
}

TEST_F(err, create_and_clone_enospc_past_the_region_caps)
{
	const char *a = name_of(self, "cap-a"), *b = name_of(self, "cap-b");
	const char *u1 = name_of(self, "cap-u1"), *u2 = name_of(self, "cap-u2");
	struct cowsnap_clone c = { .id = 1, .mode = 0600 };
	int fa, fb, fc, h;

	reload(self, "dev_mode=0666 max_regions=3 max_user_regions=1");
	/* Per user: nobody may own one region (root is exempt). */
	h = cs_open();
	ASSERT_GE(h, 0);
	ASSERT_EQ(as_nobody(do_create, h, u1), 0);
	close(h);
	h = cs_open();
	ASSERT_EQ(as_nobody(do_create, h, u2), ENOSPC);
	mark("CREATE", ENOSPC, __LINE__);
	close(h);
	/* In all: three. */
	fa = cs_region(a, PG);
	fb = cs_region(b, PG);
	ASSERT_GE(fa, 0);
	ASSERT_GE(fb, 0);
	fc = cs_open();
	EXPECT("CREATE", cs_create(fc, name_of(self, "cap-c"), PG, 0600),
	       ENOSPC);
	ASSERT_EQ(cs_snap(fa, NULL), 1);
	snprintf(c.name, sizeof(c.name), "%s", name_of(self, "cap-clone"));
	EXPECT("CLONE", ioctl(fa, COWSNAP_IOC_CLONE, &c), ENOSPC);
	close(fa);
	close(fb);
	close(fc);
}

TEST_F(err, attach_einval_enametoolong_ebusy_enoent_eacces)
{
	const char *name = name_of(self, "attach");
	struct cowsnap_name n = { .flags = 1 };
	int fd = cs_region(name, PG), h = cs_open(), ro = RO_OPEN(), rw;

	ASSERT_GE(fd, 0);
	ASSERT_GE(h, 0);
	ASSERT_GE(ro, 0);
	snprintf(n.name, sizeof(n.name), "%s", name);
	EXPECT("ATTACH", ioctl(h, COWSNAP_IOC_ATTACH, &n), EINVAL);
	n.flags = 0;
	n.reserved = 1;
	EXPECT("ATTACH", ioctl(h, COWSNAP_IOC_ATTACH, &n), EINVAL);
	EXPECT("ATTACH", cs_attach(h, ""), EINVAL);
	EXPECT("ATTACH", cs_attach(h, "no space"), EINVAL);
	n.reserved = 0;
	FILL_NAME(n.name);
	EXPECT("ATTACH", ioctl(h, COWSNAP_IOC_ATTACH, &n), ENAMETOOLONG);
	EXPECT("ATTACH", cs_attach(h, "err-no-such-region"), ENOENT);
	EXPECT("ATTACH", cs_attach(fd, name), EBUSY);
	/* Mode 0600, owned by root: nobody may not read it. */
	ASSERT_EQ(as_nobody(do_attach, ro, name), EACCES);
	mark("ATTACH", EACCES, __LINE__);
	/* Mode 0644: nobody may read but not write. */
	close(fd);
	cs_destroy_quiet(name);
	fd = cs_open();
	ASSERT_EQ(cs_create(fd, name, PG, 0644), 0);
	ASSERT_EQ(as_nobody(do_attach, ro, name), 0);
	rw = cs_open();
	ASSERT_EQ(as_nobody(do_attach, rw, name), EACCES);
	close(rw);
	close(ro);
	close(h);
	close(fd);
}

TEST_F(err, destroy_einval_enametoolong_enoent_eperm)
{
	const char *name = name_of(self, "destroy");
	struct cowsnap_name n = { .flags = 1 };
	int fd = cs_region(name, PG), h = cs_open();

	ASSERT_GE(fd, 0);
	snprintf(n.name, sizeof(n.name), "%s", name);
	EXPECT("DESTROY", ioctl(h, COWSNAP_IOC_DESTROY, &n), EINVAL);
	EXPECT("DESTROY", cs_destroy(h, ".x"), EINVAL);
	n.flags = 0;
	FILL_NAME(n.name);
	EXPECT("DESTROY", ioctl(h, COWSNAP_IOC_DESTROY, &n), ENAMETOOLONG);
	EXPECT("DESTROY", cs_destroy(h, "err-no-such-region"), ENOENT);
	ASSERT_EQ(as_nobody(do_destroy, h, name), EPERM);
	mark("DESTROY", EPERM, __LINE__);
	ASSERT_EQ(cs_destroy(h, name), 0);
	EXPECT("DESTROY", cs_destroy(h, name), ENOENT);
	close(h);
	close(fd);
}

TEST_F(err, snap_create_einval_enametoolong_enospc)
{
	struct cowsnap_snap_create sc = { .flags = 1 };
	int fd;

	reload(self, "max_snapshots=2");
	fd = region(self, "snapcap", 4);
	EXPECT("SNAP_CREATE", ioctl(fd, COWSNAP_IOC_SNAP_CREATE, &sc), EINVAL);
	sc.flags = 0;
	sc.reserved = 1;
	EXPECT("SNAP_CREATE", ioctl(fd, COWSNAP_IOC_SNAP_CREATE, &sc), EINVAL);
	sc.reserved = 0;
	strcpy(sc.label, "bad label");
	EXPECT("SNAP_CREATE", ioctl(fd, COWSNAP_IOC_SNAP_CREATE, &sc), EINVAL);
	FILL_NAME(sc.label);
	EXPECT("SNAP_CREATE", ioctl(fd, COWSNAP_IOC_SNAP_CREATE, &sc),
	       ENAMETOOLONG);
	ASSERT_EQ(cs_snap(fd, "one"), 1);
	ASSERT_EQ(cs_snap(fd, "two"), 2);
	memset(&sc, 0, sizeof(sc));
	EXPECT("SNAP_CREATE", ioctl(fd, COWSNAP_IOC_SNAP_CREATE, &sc), ENOSPC);
	/* The cap counts snapshots listed: deleting one makes room. */
	ASSERT_EQ(cs_snap_delete(fd, 1), 0);
	ASSERT_EQ(cs_snap(fd, NULL), 3);
	close(fd);
}

TEST_F(err, snap_list_delete_open_einval_enoent)
{
	struct cowsnap_snap_entry e[4];
	struct cowsnap_snap_list sl = { .start_id = 1, .count = 0 };
	struct cowsnap_snap_id sid = { .id = 1, .flags = 1 };
	struct cowsnap_snap_open so = { .id = 1, .flags = 2 };
	int fd = region(self, "list", 4);

	ASSERT_EQ(cs_snap(fd, NULL), 1);
	sl.entries = (uintptr_t)e;
	EXPECT("SNAP_LIST", ioctl(fd, COWSNAP_IOC_SNAP_LIST, &sl), EINVAL);
	sl.count = 4;
	sl.flags = 1;
	EXPECT("SNAP_LIST", ioctl(fd, COWSNAP_IOC_SNAP_LIST, &sl), EINVAL);
	EXPECT("SNAP_DELETE", ioctl(fd, COWSNAP_IOC_SNAP_DELETE, &sid), EINVAL);
	sid.flags = 0;
	sid.reserved = 1;
	EXPECT("SNAP_DELETE", ioctl(fd, COWSNAP_IOC_SNAP_DELETE, &sid), EINVAL);
	EXPECT("SNAP_DELETE", cs_snap_delete(fd, 2), ENOENT);
	EXPECT("SNAP_DELETE", cs_snap_delete(fd, 0), ENOENT);
	EXPECT("SNAP_OPEN", ioctl(fd, COWSNAP_IOC_SNAP_OPEN, &so), EINVAL);
	so.flags = 0;
	so.reserved = 1;
	EXPECT("SNAP_OPEN", ioctl(fd, COWSNAP_IOC_SNAP_OPEN, &so), EINVAL);
	EXPECT("SNAP_OPEN", cs_snap_open(fd, 2), ENOENT);
	EXPECT("SNAP_OPEN", cs_snap_open(fd, 0), ENOENT);
	ASSERT_EQ(cs_snap_delete(fd, 1), 0);
	EXPECT("SNAP_OPEN", cs_snap_open(fd, 1), ENOENT);
	EXPECT("SNAP_DELETE", cs_snap_delete(fd, 1), ENOENT);
	close(fd);
}

TEST_F(err, snap_open_emfile_past_rlimit_nofile)
{
	int fd = region(self, "emfile", 4), lowest;
	struct rlimit rl;

	ASSERT_EQ(cs_snap(fd, NULL), 1);
	/* Every fd below the lowest free one is in use: allow no more. */
	lowest = dup(fd);
	ASSERT_GE(lowest, 0);
	close(lowest);
	ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = lowest;
	ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
	EXPECT("SNAP_OPEN", cs_snap_open(fd, 1), EMFILE);
	rl.rlim_cur = lowest + 1;
	ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
	lowest = cs_snap_open(fd, 1);
	ASSERT_GE(lowest, 0);
	close(lowest);
	close(fd);
}

/* Past fs.file-max only CAP_SYS_ADMIN may open files: ENFILE for others. */
TEST_F(err, snap_open_enfile_past_file_max)
{
	int fd = region(self, "enfile", 4), f;
	ssize_t n;

	ASSERT_EQ(cs_snap(fd, NULL), 1);
	f = open("/proc/sys/fs/file-max", O_RDONLY | O_CLOEXEC);
	ASSERT_GE(f, 0);
	n = read(f, self->file_max, sizeof(self->file_max) - 1);
	close(f);
	ASSERT_GT(n, 0);
	write_text("/proc/sys/fs/file-max", "1");
	if (!as_nobody(do_devnull_open, fd, NULL)) {
		/* Not even open(2) is refused: the row cannot happen here. */
		printf("# this kernel lets nobody open files past "
		       "file-max: SNAP_OPEN ENFILE not reachable\n");
		cov->hit[row_of("SNAP_OPEN", ENFILE)] = 2;
	} else {
		ASSERT_EQ(as_nobody(do_snap_open, fd, NULL), ENFILE);
		mark("SNAP_OPEN", ENFILE, __LINE__);
	}
	write_text("/proc/sys/fs/file-max", self->file_max);
	self->file_max[0] = 0;
	ASSERT_EQ(as_nobody(do_snap_open, fd, NULL), 0);
	close(fd);
}

TEST_F(err, restore_einval_enoent_exdev)
{
	struct cowsnap_restore rs = { .id = 1, .flags = 1 };
	int fd = region(self, "restore", 4);

	ASSERT_EQ(cs_snap(fd, NULL), 1);
	ASSERT_EQ(cs_snap(fd, NULL), 2);
	EXPECT("RESTORE", ioctl(fd, COWSNAP_IOC_RESTORE, &rs), EINVAL);
	rs.flags = 0;
	rs.reserved = 1;
	EXPECT("RESTORE", ioctl(fd, COWSNAP_IOC_RESTORE, &rs), EINVAL);
	EXPECT("RESTORE", cs_restore(fd, 3, 0), ENOENT);
	EXPECT("RESTORE", cs_restore(fd, 0, 0), ENOENT);
	EXPECT("RESTORE", cs_restore(fd, 1, 1), EXDEV);
	EXPECT("RESTORE", cs_restore(fd, 1, 7), EXDEV);
	ASSERT_GE(cs_restore(fd, 1, 2), 0);
	close(fd);
}

TEST_F(err, diff_einval_enoent)
{
	struct cowsnap_extent x[4];
	struct cowsnap_diff d = { .from = 1, .count = 0 };
	int fd = region(self, "diff", 4);

	ASSERT_EQ(cs_snap(fd, NULL), 1);
	d.extents = (uintptr_t)x;
	EXPECT("DIFF", ioctl(fd, COWSNAP_IOC_DIFF, &d), EINVAL);
	d.count = 4;
	d.flags = 1;
	EXPECT("DIFF", ioctl(fd, COWSNAP_IOC_DIFF, &d), EINVAL);
	d.flags = 0;
	d.from = 2;
	EXPECT("DIFF", ioctl(fd, COWSNAP_IOC_DIFF, &d), ENOENT);
	d.from = 1;
	d.to = 9;
	EXPECT("DIFF", ioctl(fd, COWSNAP_IOC_DIFF, &d), ENOENT);
	d.to = 0;
	ASSERT_EQ(ioctl(fd, COWSNAP_IOC_DIFF, &d), 0);
	close(fd);
}

TEST_F(err, clone_einval_enametoolong_eexist_enoent)
{
	const char *name = name_of(self, "clone");
	struct cowsnap_clone c = { .id = 1, .mode = 0600, .flags = 1 };
	int fd = cs_region(name, 4 * PG);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(cs_snap(fd, NULL), 1);
	snprintf(c.name, sizeof(c.name), "%s", name_of(self, "clone-new"));
	EXPECT("CLONE", ioctl(fd, COWSNAP_IOC_CLONE, &c), EINVAL);
	c.flags = 0;
	c.reserved = 1;
	EXPECT("CLONE", ioctl(fd, COWSNAP_IOC_CLONE, &c), EINVAL);
	c.reserved = 0;
	c.mode = 01000;
	EXPECT("CLONE", ioctl(fd, COWSNAP_IOC_CLONE, &c), EINVAL);
	c.mode = 0600;
	EXPECT("CLONE", cs_clone(fd, 1, ".dot", 0600), EINVAL);
	FILL_NAME(c.name);
	EXPECT("CLONE", ioctl(fd, COWSNAP_IOC_CLONE, &c), ENAMETOOLONG);
	EXPECT("CLONE", cs_clone(fd, 1, name, 0600), EEXIST);
	EXPECT("CLONE", cs_clone(fd, 2, self->names[1], 0600), ENOENT);
	EXPECT("CLONE", cs_clone(fd, 0, self->names[1], 0600), ENOENT);
	ASSERT_EQ(cs_clone(fd, 1, self->names[1], 0600), 0);
	close(fd);
}

/*
 * The page budget (max_pages) covers data pages and metadata: once it is
 * full, every ioctl that needs a page or a record fails with ENOMEM and
 * changes nothing.
 */
TEST_F(err, enomem_from_the_page_budget)
{
	const size_t np = 128;
	char buf[PG];
	struct cowsnap_clone c = { .id = 1, .mode = 0600 };
	struct cowsnap_info info;
	uint64_t i, ids = 0;
	int a, b, h;

	reload(self, "max_pages=1024");
	/*
	 * A restore to snapshot 1 would need a record for each of np pages
	 * (their state is snapshot 2's): np * 72 bytes, over a page.
	 */
	a = region(self, "budget-a", np);
	memset(buf, 1, sizeof(buf));
	for (i = 0; i < np; i++)
		ASSERT_EQ(pwrite(a, buf, PG, i * PG), PG);
	ASSERT_EQ(cs_snap(a, NULL), 1);
	memset(buf, 2, sizeof(buf));
	for (i = 0; i < np; i++)
		ASSERT_EQ(pwrite(a, buf, PG, i * PG), PG);
	ASSERT_EQ(cs_snap(a, NULL), 2);
	/* Fill the budget with pages of another region. */
	b = region(self, "budget-b", 1024);
	for (i = 0; i < 1024; i++)
		if (pwrite(b, buf, PG, i * PG) != PG)
			break;
	ASSERT_LT(i, 1024);
	EXPECT("write", pwrite(b, buf, PG, i * PG), ENOMEM);
	EXPECT("RESTORE", cs_restore(a, 1, 0), ENOMEM);
	ASSERT_EQ(cs_info(a, &info), 0);
	ASSERT_EQ(info.newest_snapshot, 2);
	snprintf(c.name, sizeof(c.name), "%s", name_of(self, "budget-c"));
	EXPECT("CLONE", ioctl(a, COWSNAP_IOC_CLONE, &c), ENOMEM);
	h = cs_open();
	EXPECT("CREATE", cs_create(h, name_of(self, "budget-d"), PG, 0600),
	       ENOMEM);
	/* Snapshots take a little metadata each: the budget ends them. */
	for (ids = 0; ids < 64; ids++)
		if (!cs_snap(b, NULL))
			break;
	ASSERT_LT(ids, 64);
	ASSERT_EQ(errno, ENOMEM);
	mark("SNAP_CREATE", ENOMEM, __LINE__);
	close(h);
	close(b);
	close(a);
}

static int cg_write(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, v, strlen(v));
	close(fd);
	return n == (ssize_t)strlen(v) ? 0 : -1;
}

#define ERR_CG	"/sys/fs/cgroup/cowsnap-errors"

/*
 * The child that asks for a DIFF over its memory cgroup's limit.  It may
 * not take a page fault while the limit is tight (that would call the OOM
 * killer), so it touches its stack and errno first, opens the cgroup files
 * and reads memory.current once (which allocates its buffer), and uses
 * nothing but system calls on them afterwards.  memory.high=0 drains the
 * per-CPU charge cache of the cgroup (on this CPU: the child is pinned),
 * which would otherwise pay for the allocation.
 */
static int diff_child(int fd)
{
	struct cowsnap_extent x[1024];
	char pad[64 << 10], cur[64], lim[64];
	struct cowsnap_diff d = { .from = 1, .count = 1024 };
	int cfd, maxfd, highfd, ret, err;
	char me[32];
	ssize_t n;

	memset(pad, 1, sizeof(pad));
	memset(x, 0, sizeof(x));
	memset(cur, 0, sizeof(cur));
	d.extents = (uintptr_t)x;
	errno = 0;
	snprintf(me, sizeof(me), "%d", (int)getpid());
	if (cg_write(ERR_CG "/cgroup.procs", me))
		return 100;
	cfd = open(ERR_CG "/memory.current", O_RDONLY | O_CLOEXEC);
	maxfd = open(ERR_CG "/memory.max", O_WRONLY | O_CLOEXEC);
	highfd = open(ERR_CG "/memory.high", O_WRONLY | O_CLOEXEC);
	if (cfd < 0 || maxfd < 0 || highfd < 0 ||
	    read(cfd, cur, sizeof(cur) - 1) <= 0)
		return 101;
	if (write(highfd, "0", 1) != 1 || write(highfd, "max", 3) != 3)
		return 102;
	n = pread(cfd, cur, sizeof(cur) - 1, 0);
	if (n <= 0)
		return 103;
	cur[n] = 0;
	/* 16 pages of room: the sort buffer of 20000 records needs 40. */
	snprintf(lim, sizeof(lim), "%llu", strtoull(cur, NULL, 10) + 16 * PG);
	if (write(maxfd, lim, strlen(lim)) <= 0)
		return 104;
	ret = ioctl(fd, COWSNAP_IOC_DIFF, &d);
	err = ret ? errno : 0;
	if (write(maxfd, "max", 3) != 3)
		return 105;
	return err;
}

TEST_F(err, diff_enomem_over_the_memcg_limit)
{
	const size_t np = 20000;
	long long kills = -1;
	char line[128];
	cpu_set_t set;
	int fd, status, c;
	size_t i;
	FILE *f;
	pid_t pid;

	mkdir("/sys/fs/cgroup", 0755);
	mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL);
	c = open("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY);
	if (c < 0)
		SKIP("no cgroup2");
	ASSERT_EQ(write(c, "+memory", 7), 7);
	close(c);
	rmdir(ERR_CG);
	ASSERT_EQ(mkdir(ERR_CG, 0755), 0);
	/* 20000 records of snapshot 1: a hole each, now written. */
	fd = region(self, "memcg", np);
	ASSERT_EQ(cs_snap(fd, NULL), 1);
	for (i = 0; i < np; i++)
		ASSERT_EQ(pwrite(fd, "x", 1, i * PG), 1);
	pid = fork();
	if (!pid) {
		CPU_ZERO(&set);
		CPU_SET(0, &set);
		sched_setaffinity(0, sizeof(set), &set);
		_exit(diff_child(fd));
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	f = fopen(ERR_CG "/memory.events", "r");
	while (f && fgets(line, sizeof(line), f))
		sscanf(line, "oom_kill %lld", &kills);
	if (f)
		fclose(f);
	rmdir(ERR_CG);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(kills, 0);
	ASSERT_EQ(WEXITSTATUS(status), ENOMEM);
	mark("DIFF", ENOMEM, __LINE__);
	close(fd);
}

TEST_F(err, read_write_of_a_handle)
{
	const char *name = name_of(self, "rw");
	char buf[PG] = { 1 };
	int fd = cs_region(name, 4 * PG), fresh = cs_open(), ro = RO_OPEN();

	ASSERT_GE(fd, 0);
	ASSERT_GE(fresh, 0);
	ASSERT_GE(ro, 0);
	ASSERT_EQ(cs_attach(ro, name), 0);
	EXPECT("read", read(fresh, buf, PG), EINVAL);
	EXPECT("read", pread(fresh, buf, PG, 0), EINVAL);
	EXPECT("read", pread(fd, buf, PG, -1), EINVAL);
	EXPECT("read", read(fd, bad_ptr, PG), EFAULT);
	EXPECT("read", pread(fd, bad_ptr, PG, PG), EFAULT);
	EXPECT("write", write(fresh, buf, PG), EINVAL);
	EXPECT("write", pwrite(fresh, buf, PG, 0), EINVAL);
	EXPECT("write", pwrite(fd, buf, PG, -1), EINVAL);
	EXPECT("write", pwrite(ro, buf, PG, 0), EBADF);
	EXPECT("write", write(ro, buf, PG), EBADF);
	EXPECT("write", pwrite(fd, buf, PG, 4 * PG), ENOSPC);
	EXPECT("write", pwrite(fd, buf, 1, 4 * PG + 100), ENOSPC);
	EXPECT("write", pwrite(fd, bad_ptr, PG, 0), EFAULT);
	/* A write running past the end is short, not an error. */
	ASSERT_EQ(pwrite(fd, buf, PG, 3 * PG + 10), PG - 10);
	close(ro);
	close(fresh);
	close(fd);
}

TEST_F(err, mmap_of_a_handle)
{
	const char *name = name_of(self, "mmap");
	int fd = cs_region(name, 4 * PG), fresh = cs_open(), ro = RO_OPEN();
	void *p;

	ASSERT_GE(fd, 0);
	ASSERT_GE(fresh, 0);
	ASSERT_GE(ro, 0);
	ASSERT_EQ(cs_attach(ro, name), 0);
	EXPECT("mmap", mmap(NULL, PG, PROT_READ, MAP_SHARED, fresh, 0), EINVAL);
	EXPECT("mmap", mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0), EINVAL);
	EXPECT("mmap", mmap(NULL, 5 * PG, PROT_READ, MAP_SHARED, fd, 0), EINVAL);
	EXPECT("mmap", mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 4 * PG),
	       EINVAL);
	EXPECT("mmap", mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, ro,
			    0), EACCES);
	p = mmap(NULL, PG, PROT_READ, MAP_SHARED, ro, 0);
	ASSERT_TRUE(p != MAP_FAILED);
	munmap(p, PG);
	close(ro);
	close(fresh);
	close(fd);
}

TEST_F(err, snapshot_fd_is_read_only)
{
	int fd = region(self, "sfd", 4), sfd;
	char buf[PG] = { 1 };

	ASSERT_EQ(cs_snap(fd, NULL), 1);
	sfd = cs_snap_open(fd, 1);
	ASSERT_GE(sfd, 0);
	EXPECT("snapshot fd read", pread(sfd, buf, PG, -1), EINVAL);
	EXPECT("snapshot fd read", read(sfd, bad_ptr, PG), EFAULT);
	EXPECT("snapshot fd write", write(sfd, buf, PG), EBADF);
	EXPECT("snapshot fd write", pwrite(sfd, buf, PG, 0), EBADF);
	EXPECT("snapshot fd mmap", mmap(NULL, PG, PROT_READ, MAP_PRIVATE, sfd,
					0), EINVAL);
	EXPECT("snapshot fd mmap", mmap(NULL, 5 * PG, PROT_READ, MAP_SHARED,
					sfd, 0), EINVAL);
	EXPECT("snapshot fd mmap", mmap(NULL, PG, PROT_READ | PROT_WRITE,
					MAP_SHARED, sfd, 0), EACCES);
	close(sfd);
	close(fd);
}

/* Last: when every test above ran, every row was asserted. */
TEST_F(err, zz_every_documented_row_was_asserted)
{
	struct th_test *t;
	int tests = 0, missing = 0;
	size_t i;

	for (t = th_head; t; t = t->next)
		tests += !strncmp(t->name, "err_", 4);
	if (cov->ran < tests)
		SKIP("%d of %d err_ tests ran", cov->ran, tests);
	for (i = 0; i < NROWS; i++) {
		if (cov->hit[i] == 2)
			fprintf(stderr, "not reachable on this kernel: %s %s\n",
				rows[i].call, strerror(rows[i].err));
		if (cov->hit[i])
			continue;
		fprintf(stderr, "not asserted: %s %s\n", rows[i].call,
			strerror(rows[i].err));
		missing++;
	}
	ASSERT_EQ(missing, 0);
}

// SPDX-License-Identifier: GPL-2.0
/* Module life cycle, device node, handshake, /proc/cowsnap. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/cowsnap.h>
#include "harness.h"
#include "util.h"

/* Leave the module loaded with default parameters, as the next test expects. */
static void reload_default(void)
{
	if (mod_loaded())
		ASSERT_EQ(mod_unload(), 0);
	ASSERT_EQ(mod_load(""), 0);
}

TEST(load_unload_20_cycles)
{
	int i;

	for (i = 0; i < 20; i++) {
		if (mod_loaded())
			ASSERT_EQ(mod_unload(), 0);
		ASSERT_FALSE(mod_loaded());
		ASSERT_EQ(access(COWSNAP_DEV, F_OK), -1);
		ASSERT_EQ(mod_load(""), 0);
		ASSERT_TRUE(mod_loaded());
		ASSERT_EQ(access(COWSNAP_DEV, F_OK), 0);
		ASSERT_EQ(access("/proc/cowsnap", R_OK), 0);
	}
}

TEST(device_mode_follows_parameter)
{
	struct stat st;

	reload_default();
	ASSERT_EQ(stat(COWSNAP_DEV, &st), 0);
	ASSERT_TRUE(S_ISCHR(st.st_mode));
	ASSERT_EQ(st.st_mode & 07777, 0600);

	ASSERT_EQ(mod_unload(), 0);
	ASSERT_EQ(mod_load("dev_mode=0666"), 0);
	ASSERT_EQ(stat(COWSNAP_DEV, &st), 0);
	ASSERT_EQ(st.st_mode & 07777, 0666);

	ASSERT_EQ(mod_unload(), 0);
	ASSERT_ERRNO(mod_load("dev_mode=0644"), EINVAL);
	ASSERT_FALSE(mod_loaded());
	reload_default();
}

TEST(handshake_reports_version)
{
	struct cowsnap_api api = { .api = COWSNAP_API_VERSION };
	int fd = open(COWSNAP_DEV, O_RDWR);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(ioctl(fd, COWSNAP_IOC_API, &api), 0);
	ASSERT_EQ(api.api, COWSNAP_API_VERSION);
	ASSERT_TRUE(api.ioctls & (1ULL << _IOC_NR(COWSNAP_IOC_API)));

	api.api = COWSNAP_API_VERSION + 1;
	ASSERT_ERRNO(ioctl(fd, COWSNAP_IOC_API, &api), EINVAL);
	api.api = COWSNAP_API_VERSION;
	api.reserved = 1;
	ASSERT_ERRNO(ioctl(fd, COWSNAP_IOC_API, &api), EINVAL);
	ASSERT_ERRNO(ioctl(fd, COWSNAP_IOC_API, (void *)8), EFAULT);
	close(fd);
}

TEST(unknown_ioctl_is_enotty)
{
	int fd = open(COWSNAP_DEV, O_RDWR);

	ASSERT_GE(fd, 0);
	ASSERT_ERRNO(ioctl(fd, _IO(COWSNAP_IOC_TYPE, 0x1f), 0), ENOTTY);
	ASSERT_ERRNO(ioctl(fd, _IO('T', 1), 0), ENOTTY);
	ASSERT_ERRNO(ioctl(fd, _IOR(COWSNAP_IOC_TYPE, 0, __u64), 0), ENOTTY);
	close(fd);
}

TEST(proc_cowsnap_parses)
{
	static const char *const keys[] = {
		"regions", "snapshots", "pages_allocated", "pages_shared",
		"cow_faults", "bytes_copied", "read_faults", "write_faults",
		"restores", "pages_restored", "alloc_failures",
	};
	unsigned int i;

	reload_default();
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (proc_counter(keys[i]) != 0)
			FAIL("counter %s: %lld", keys[i], proc_counter(keys[i]));
	ASSERT_EQ(proc_counter("api"), COWSNAP_API_VERSION);
}

TEST(rmmod_refused_while_handle_open)
{
	int fd;

	reload_default();
	fd = open(COWSNAP_DEV, O_RDONLY);
	ASSERT_GE(fd, 0);
	/* delete_module reports a held module as EWOULDBLOCK (== EAGAIN). */
	ASSERT_ERRNO(mod_unload(), EAGAIN);
	ASSERT_TRUE(mod_loaded());
	close(fd);
	ASSERT_EQ(mod_unload(), 0);
	ASSERT_EQ(mod_load(""), 0);
}

/*
 * A fault past the page budget is SIGBUS for that thread, nothing else.
 * The budget covers data pages and the module's metadata (meta_bytes).
 */
TEST(page_budget_exhaustion_is_sigbus_not_oom)
{
	struct cowsnap_create c = { .name = "mod-budget", .size = 64 * 4096,
				    .mode = 0600 };
	char buf[4096] = { 1 };
	int fd, status, i, avail;
	char *p;
	pid_t pid;

	reload_default();
	ASSERT_EQ(mod_unload(), 0);
	ASSERT_EQ(mod_load("max_pages=20"), 0);
	fd = open(COWSNAP_DEV, O_RDWR);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(ioctl(fd, COWSNAP_IOC_CREATE, &c), 0);
	ASSERT_GT(proc_counter("meta_bytes"), 0);
	avail = 20 - (proc_counter("meta_bytes") + 4095) / 4096;
	ASSERT_GT(avail, 8);
	p = mmap(NULL, 64 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_TRUE(p != MAP_FAILED);
	for (i = 0; i < avail; i++)
		p[i * 4096] = 1;
	pid = fork();
	if (!pid) {
		p[avail * 4096] = 1;	/* one page past the budget */
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(WTERMSIG(status), SIGBUS);
	ASSERT_ERRNO(pwrite(fd, buf, 4096, 40 * 4096), ENOMEM);
	ASSERT_GE(proc_counter("alloc_failures"), 2);
	ASSERT_EQ(proc_counter("pages_allocated"), avail);
	/* Reads of holes need no page; the data already there is intact. */
	ASSERT_EQ(p[50 * 4096], 0);
	for (i = 0; i < avail; i++)
		ASSERT_EQ(p[i * 4096], 1);
	munmap(p, 64 * 4096);
	close(fd);
	fd = open(COWSNAP_DEV, O_RDWR);
	{
		struct cowsnap_name n = { .name = "mod-budget" };

		ASSERT_EQ(ioctl(fd, COWSNAP_IOC_DESTROY, &n), 0);
	}
	close(fd);
	ASSERT_EQ(proc_counter("pages_allocated"), 0);
	ASSERT_EQ(proc_counter("meta_bytes"), 0);
	reload_default();
}

static void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/*
 * A snapshot fd that is the only thing left on the module's filesystem (its
 * region destroyed, the handle closed), watched for its close by inotify
 * instance @ifd.
 */
static int last_snapshot_fd(const char *name, int ifd)
{
	char path[64];
	int fd, sfd;

	fd = cs_region(name, 4096);
	ASSERT_GE(fd, 0);
	ASSERT_NE(cs_snap(fd, NULL), 0);
	sfd = cs_snap_open(fd, 1);
	ASSERT_GE(sfd, 0);
	ASSERT_EQ(cs_destroy(fd, name), 0);
	close(fd);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", sfd);
	ASSERT_GE(inotify_add_watch(ifd, path, IN_CLOSE_NOWRITE), 0);
	return sfd;
}

/*
 * The last close of a snapshot fd drops the module reference in __fput()
 * before the file's final mntput() of the module's pseudo filesystem.  An
 * rmmod that completes in between must not leave that mntput() calling
 * into freed module memory.  To open the window wide, an inotify watch on
 * the snapshot file wakes a real-time task on the closer's CPU at the
 * start of __fput() (fsnotify_close()); the task preempts the closer at
 * its next scheduling point (dput()) and holds the CPU while the unloader
 * on the other CPU runs.
 */
TEST(rmmod_racing_the_last_snapshot_fd_close)
{
	int round;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP("needs two CPUs");
	reload_default();
	pin_to_cpu(1);
	for (round = 0; round < 5; round++) {
		int sfd, ifd, status;
		pid_t closer, hog;

		if (!mod_loaded())
			ASSERT_EQ(mod_load(""), 0);
		ifd = inotify_init1(IN_CLOEXEC);
		ASSERT_GE(ifd, 0);
		sfd = last_snapshot_fd("mod-race", ifd);
		hog = fork();
		if (!hog) {
			struct sched_param sp = { .sched_priority = 50 };
			char ev[256];
			double t;

			close(sfd);	/* only the closer may hold it */
			pin_to_cpu(0);
			sched_setscheduler(0, SCHED_FIFO, &sp);
			if (read(ifd, ev, sizeof(ev)) <= 0)
				_exit(1);
			for (t = th_now(); th_now() - t < 0.3;)
				;	/* hold the closer's CPU */
			_exit(0);
		}
		usleep(50000);	/* the hog waits in read() */
		closer = fork();
		if (!closer) {
			/*
			 * The watch must not outlive the superblock's last
			 * put: its kill_sb() waits for the marks to go.
			 */
			close(ifd);
			pin_to_cpu(0);
			close(sfd);
			_exit(0);
		}
		close(sfd);
		close(ifd);
		while (mod_unload() && errno == EAGAIN)
			;
		ASSERT_EQ(waitpid(closer, &status, 0), closer);
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(waitpid(hog, &status, 0), hog);
		ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	}
	reload_default();
}

/*
 * An inotify watch holds a snapshot file's inode, not the module's
 * filesystem.  The last close of the fd unmounts that filesystem; the
 * unmount must end the watch (IN_UNMOUNT, IN_IGNORED) rather than wait for
 * it, which would leave the closer unkillable in close() and the module
 * and every later sync() stuck behind it.
 */
TEST(last_close_of_a_watched_snapshot_fd_returns)
{
	char buf[4096] __attribute__((aligned(8)));
	int sfd, ifd, unmounted = 0, ignored = 0;
	struct inotify_event *ev;
	ssize_t n, off;

	reload_default();
	ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	ASSERT_GE(ifd, 0);
	sfd = last_snapshot_fd("mod-watch", ifd);
	ASSERT_EQ(close(sfd), 0);
	n = read(ifd, buf, sizeof(buf));
	ASSERT_GT(n, 0);
	for (off = 0; off < n; off += sizeof(*ev) + ev->len) {
		ev = (struct inotify_event *)(buf + off);
		unmounted |= !!(ev->mask & IN_UNMOUNT);
		ignored |= !!(ev->mask & IN_IGNORED);
	}
	ASSERT_TRUE(unmounted && ignored);
	/* The watch is gone: nothing holds the module now. */
	ASSERT_EQ(mod_unload(), 0);
	close(ifd);
	ASSERT_EQ(mod_load(""), 0);
}

static int nobody_creates(const char *name)
{
	int status;
	pid_t pid = fork();

	if (!pid) {
		int fd;

		if (setgid(65534) || setuid(65534))
			_exit(99);
		fd = open(COWSNAP_DEV, O_RDWR);
		if (fd < 0)
			_exit(98);
		_exit(cs_create(fd, name, 4096, 0600) ? errno : 0);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 97;
}

static int nobody_destroys(const char *name)
{
	int status;
	pid_t pid = fork();

	if (!pid) {
		if (setgid(65534) || setuid(65534))
			_exit(99);
		cs_destroy_quiet(name);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	return 0;
}

/*
 * Regions are capped over all users and per owner (CAP_SYS_RESOURCE is
 * exempt from the latter), like SysV's shmmni: ENOSPC beyond, and the
 * count comes back when a region goes.
 */
TEST(region_limits_global_and_per_user_are_enospc)
{
	char name[32];
	int fds[8], i;

	reload_default();
	ASSERT_EQ(mod_unload(), 0);
	ASSERT_EQ(mod_load("dev_mode=0666 max_regions=6 max_user_regions=3"), 0);
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "mod-lim-u%d", i);
		ASSERT_EQ(nobody_creates(name), 0);
	}
	ASSERT_EQ(nobody_creates("mod-lim-u3"), ENOSPC);
	/* Root is exempt per user, not globally: 3 more fill the table. */
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "mod-lim-r%d", i);
		fds[i] = cs_region(name, 4096);
		ASSERT_GE(fds[i], 0);
	}
	fds[3] = cs_open();
	ASSERT_ERRNO(cs_create(fds[3], "mod-lim-r3", 4096, 0600), ENOSPC);
	/* A clone is a region too. */
	ASSERT_EQ(cs_snap(fds[0], NULL), 1);
	ASSERT_ERRNO(cs_clone(fds[0], 1, "mod-lim-c", 0600), ENOSPC);
	/* Freed slots count again. */
	close(fds[2]);
	cs_destroy_quiet("mod-lim-r2");
	ASSERT_EQ(cs_clone(fds[0], 1, "mod-lim-c", 0600), 0);
	nobody_destroys("mod-lim-u0");
	ASSERT_EQ(nobody_creates("mod-lim-u3"), 0);
	for (i = 0; i < 2; i++)
		close(fds[i]);
	close(fds[3]);
	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "mod-lim-u%d", i);
		cs_destroy_quiet(name);
		snprintf(name, sizeof(name), "mod-lim-r%d", i);
		cs_destroy_quiet(name);
	}
	cs_destroy_quiet("mod-lim-c");
	ASSERT_EQ(proc_counter("regions"), 0);
	reload_default();
}

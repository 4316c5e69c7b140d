// SPDX-License-Identifier: GPL-2.0
/* Module life cycle, device node, handshake, /proc/cowsnap. */
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

/* A fault past the page budget is SIGBUS for that thread, nothing else. */
TEST(page_budget_exhaustion_is_sigbus_not_oom)
{
	struct cowsnap_create c = { .name = "mod-budget", .size = 64 * 4096,
				    .mode = 0600 };
	char buf[4096] = { 1 };
	int fd, status, i;
	char *p;
	pid_t pid;

	reload_default();
	ASSERT_EQ(mod_unload(), 0);
	ASSERT_EQ(mod_load("max_pages=16"), 0);
	fd = open(COWSNAP_DEV, O_RDWR);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(ioctl(fd, COWSNAP_IOC_CREATE, &c), 0);
	p = mmap(NULL, 64 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_TRUE(p != MAP_FAILED);
	for (i = 0; i < 16; i++)
		p[i * 4096] = 1;
	pid = fork();
	if (!pid) {
		p[16 * 4096] = 1;	/* the 17th page */
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(WTERMSIG(status), SIGBUS);
	ASSERT_ERRNO(pwrite(fd, buf, 4096, 20 * 4096), ENOMEM);
	ASSERT_GE(proc_counter("alloc_failures"), 2);
	ASSERT_EQ(proc_counter("pages_allocated"), 16);
	/* Reads of holes need no page; the data already there is intact. */
	ASSERT_EQ(p[30 * 4096], 0);
	for (i = 0; i < 16; i++)
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
	reload_default();
}

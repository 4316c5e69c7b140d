/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the in-guest tests. */
#ifndef COWSNAP_TEST_UTIL_H
#define COWSNAP_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/cowsnap.h>

#define COWSNAP_DEV "/dev/cowsnap"
#define COWSNAP_KO "/lib/modules/cowsnap.ko"

/* Load the module with @params; returns 0 or -1/errno. */
/* 1 on the KASAN + kmemleak "dbg" kernel, where work is ~10x slower. */
static inline int kernel_is_debug(void)
{
	return !access("/sys/kernel/debug/kmemleak", F_OK);
}

static inline int mod_load(const char *params)
{
	int fd = open(COWSNAP_KO, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -1;
	ret = syscall(SYS_finit_module, fd, params, 0);
	close(fd);
	return ret;
}

static inline int mod_unload(void)
{
	return syscall(SYS_delete_module, "cowsnap", O_NONBLOCK);
}

static inline int mod_loaded(void)
{
	return access("/sys/module/cowsnap", F_OK) == 0;
}

/*
 * Unload the module if loaded, retrying for up to 5 s while it is busy
 * (EAGAIN: a region or fd of a test that just ended is still going).
 */
static inline int mod_unload_wait(void)
{
	int tries;

	for (tries = 0; mod_loaded() && mod_unload(); tries++) {
		if (errno != EAGAIN || tries == 50)
			return -1;
		usleep(100000);
	}
	return 0;
}

/* Value of counter @name in /proc/cowsnap, or -1. */
static inline long long proc_counter(const char *name)
{
	FILE *f = fopen("/proc/cowsnap", "r");
	char key[64];
	long long v, ret = -1;
	char line[512];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %lld", key, &v) == 2 &&
		    !strcmp(key, name)) {
			ret = v;
			break;
		}
	}
	fclose(f);
	return ret;
}


#define PG 4096UL

/* Raw ioctl wrappers: return what ioctl() returns, errno set on -1. */

/* Copy at most 63 bytes of @src into the zeroed 64-byte @dst. */
static inline void cs_copy_name(char *dst, const char *src)
{
	size_t n = strlen(src);

	memcpy(dst, src, n > 63 ? 63 : n);
}

static inline int cs_open(void)
{
	return open(COWSNAP_DEV, O_RDWR | O_CLOEXEC);
}

static inline int cs_create(int fd, const char *name, uint64_t size,
			    unsigned int mode)
{
	struct cowsnap_create c = { .size = size, .mode = mode };

	cs_copy_name(c.name, name);
	return ioctl(fd, COWSNAP_IOC_CREATE, &c);
}

static inline int cs_name_ioctl(int fd, unsigned long cmd, const char *name)
{
	struct cowsnap_name n = { 0 };

	cs_copy_name(n.name, name);
	return ioctl(fd, cmd, &n);
}

static inline int cs_attach(int fd, const char *name)
{
	return cs_name_ioctl(fd, COWSNAP_IOC_ATTACH, name);
}

static inline int cs_destroy(int fd, const char *name)
{
	return cs_name_ioctl(fd, COWSNAP_IOC_DESTROY, name);
}

/* Destroy @name if it exists, from a fresh handle. */
static inline void cs_destroy_quiet(const char *name)
{
	int fd = cs_open();

	if (fd >= 0) {
		cs_destroy(fd, name);
		close(fd);
	}
}

/* Open a handle and create (attach) region @name of @size, mode 0600. */
static inline int cs_region(const char *name, uint64_t size)
{
	int fd = cs_open();

	if (fd < 0)
		return -1;
	cs_destroy(fd, name);
	if (cs_create(fd, name, size, 0600)) {
		close(fd);
		return -1;
	}
	return fd;
}

static inline int cs_info(int fd, struct cowsnap_info *info)
{
	memset(info, 0, sizeof(*info));
	return ioctl(fd, COWSNAP_IOC_INFO, info);
}

/* Take a snapshot; returns its id, or 0 with errno set. */
static inline uint64_t cs_snap(int fd, const char *label)
{
	struct cowsnap_snap_create sc = { 0 };

	if (label)
		cs_copy_name(sc.label, label);
	if (ioctl(fd, COWSNAP_IOC_SNAP_CREATE, &sc))
		return 0;
	return sc.id;
}

static inline int cs_snap_delete(int fd, uint64_t id)
{
	struct cowsnap_snap_id d = { .id = id };

	return ioctl(fd, COWSNAP_IOC_SNAP_DELETE, &d);
}

static inline int cs_snap_open(int fd, uint64_t id)
{
	struct cowsnap_snap_open o = { .id = id, .flags = COWSNAP_OPEN_CLOEXEC };

	return ioctl(fd, COWSNAP_IOC_SNAP_OPEN, &o);
}

/* Restore; returns pages restored or -1. */
static inline long long cs_restore(int fd, uint64_t id, uint64_t expect)
{
	struct cowsnap_restore r = { .id = id, .expect_newest = expect };

	if (ioctl(fd, COWSNAP_IOC_RESTORE, &r))
		return -1;
	return r.pages_restored;
}

static inline int cs_clone(int fd, uint64_t id, const char *name,
			   unsigned int mode)
{
	struct cowsnap_clone c = { .id = id, .mode = mode };

	cs_copy_name(c.name, name);
	return ioctl(fd, COWSNAP_IOC_CLONE, &c);
}

/* Map the live view read-write, shared. */
static inline void *cs_map(int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Fill page @i of @p with a pattern derived from (@i, @seed). */
static inline void fill_page(void *p, size_t i, uint64_t seed)
{
	uint64_t *w = (uint64_t *)((char *)p + i * PG);
	size_t k;

	for (k = 0; k < PG / 8; k++)
		w[k] = (i << 32) ^ (seed * 0x9e3779b97f4a7c15ULL) ^ k;
}

/* 1 if page @i of @p holds fill_page(@i, @seed). */
static inline int check_page(const void *p, size_t i, uint64_t seed)
{
	const uint64_t *w = (const uint64_t *)((const char *)p + i * PG);
	size_t k;

	for (k = 0; k < PG / 8; k++)
		if (w[k] != ((i << 32) ^ (seed * 0x9e3779b97f4a7c15ULL) ^ k))
			return 0;
	return 1;
}

/* 1 if @len bytes at @p are zero. */
static inline int all_zero(const void *p, size_t len)
{
	const unsigned char *c = p;
	size_t k;

	for (k = 0; k < len; k++)
		if (c[k])
			return 0;
	return 1;
}

/* MemFree from /proc/meminfo, in KiB. */
static inline long long mem_free_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemFree: %lld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

#endif

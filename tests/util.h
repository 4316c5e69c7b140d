/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by the in-guest tests. */
#ifndef COWSNAP_TEST_UTIL_H
#define COWSNAP_TEST_UTIL_H

#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define COWSNAP_DEV "/dev/cowsnap"
#define COWSNAP_KO "/lib/modules/cowsnap.ko"

/* Load the module with @params; returns 0 or -1/errno. */
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

#endif

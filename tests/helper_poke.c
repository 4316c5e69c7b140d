// SPDX-License-Identifier: GPL-2.0
/*
 * helper_poke NAME OFFSET TEXT   write TEXT into region NAME through a mapping
 * helper_poke NAME OFFSET        print the string at OFFSET
 * A small demo program: an application working in its region.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

int main(int argc, char **argv)
{
	unsigned long long off;
	struct cowsnap_info info;
	char *p;
	int fd;

	if (argc < 3) {
		fprintf(stderr, "usage: helper_poke NAME OFFSET [TEXT]\n");
		return 2;
	}
	off = strtoull(argv[2], NULL, 0);
	fd = cs_open();
	if (fd < 0 || cs_attach(fd, argv[1]) || cs_info(fd, &info)) {
		perror("helper_poke");
		return 1;
	}
	if (off >= info.size) {
		fprintf(stderr, "helper_poke: offset beyond the region\n");
		return 1;
	}
	p = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	if (argc > 3) {
		size_t n = strlen(argv[3]) + 1;

		if (n > info.size - off)
			n = info.size - off;
		memcpy(p + off, argv[3], n);
	}
	else
		printf("%.*s\n", (int)strnlen(p + off, info.size - off), p + off);
	return 0;
}

// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libcowsnap.h as a program sees it, compiled (never run) by
 * tests/check-userspace.sh as C (c99, c11, gnu17) and as C++ (c++11,
 * c++17, c++20) with -Wall -Wextra -pedantic -Werror, then linked against
 * libcowsnap.so and libcowsnap.a.  It fails to build if the header stops
 * compiling in either language, if a UAPI struct and a library function
 * share a name again, if a function's signature changes, or if one is not
 * exported.
 */
#include <libcowsnap.h>

#ifdef __cplusplus
#define STRUCT		/* C++: a struct's tag is its type name */
#else
#define STRUCT struct
#endif

/* Every function, through a pointer of the exact type it must have. */
int (*p_open)(int) = csnap_open;
int (*p_features)(int, uint64_t *, uint64_t *) = csnap_features;
int (*p_region_create)(int, const char *, uint64_t, mode_t) =
	csnap_region_create;
int (*p_region_attach)(int, const char *) = csnap_region_attach;
int (*p_region_destroy)(int, const char *) = csnap_region_destroy;
int (*p_region_info)(int, STRUCT cowsnap_info *) = csnap_region_info;
void *(*p_region_map)(int, size_t, int) = csnap_region_map;
int (*p_snapshot_create)(int, const char *, uint64_t *) =
	csnap_snapshot_create;
ssize_t (*p_snapshot_list)(int, STRUCT cowsnap_snap_entry **) =
	csnap_snapshot_list;
int (*p_snapshot_find)(int, const char *, uint64_t *) =
	csnap_snapshot_find;
int (*p_snapshot_delete)(int, uint64_t) = csnap_snapshot_delete;
int (*p_snapshot_open)(int, uint64_t, int) = csnap_snapshot_open;
int (*p_restore)(int, uint64_t, uint64_t, uint64_t *) = csnap_restore;
int (*p_diff_walk)(int, uint64_t, uint64_t, csnap_extent_fn, void *) =
	csnap_diff_walk;
ssize_t (*p_diff)(int, uint64_t, uint64_t, STRUCT cowsnap_extent **) =
	csnap_diff;
int (*p_clone)(int, uint64_t, const char *, mode_t) = csnap_clone;
int (*p_dump)(int, uint64_t, int, STRUCT csnap_dump_info *,
		    csnap_progress_fn, void *) = csnap_dump;
int (*p_dump_check)(int, STRUCT csnap_dump_info *) = csnap_dump_check;
int (*p_load)(int, const char *, mode_t, int, STRUCT csnap_dump_info *,
		    csnap_progress_fn, void *) = csnap_load;

static int on_extent(uint64_t start, uint64_t count, void *arg)
{
	(void)start;
	(void)count;
	(void)arg;
	return 0;
}

static int on_progress(uint64_t done, uint64_t total, void *arg)
{
	(void)done;
	(void)total;
	(void)arg;
	return 0;
}

/* Each UAPI struct spelled as its language spells it, next to the calls. */
int api_use(int fd);
int api_use(int fd)
{
	STRUCT cowsnap_api api = { COWSNAP_API_VERSION, 0, 0, 0 };
	STRUCT cowsnap_create create;
	STRUCT cowsnap_name name;
	STRUCT cowsnap_info info;
	STRUCT cowsnap_snap_create snap_create;
	STRUCT cowsnap_snap_entry *entries = NULL;
	STRUCT cowsnap_snap_list snap_list;
	STRUCT cowsnap_snap_id snap_id;
	STRUCT cowsnap_snap_open snap_open;
	STRUCT cowsnap_restore restore;
	STRUCT cowsnap_extent *extents = NULL;
	STRUCT cowsnap_diff diff;
	STRUCT cowsnap_clone clone;
#ifdef __cplusplus
	csnap_dump_info di;
#else
	struct csnap_dump_info di = { .struct_size = sizeof(di) };
#endif
	csnap_extent_fn efn = on_extent;
	csnap_progress_fn pfn = on_progress;
	uint64_t id = 0, pages = 0;
	int ret = 0;

	(void)api;
	(void)create;
	(void)name;
	(void)snap_create;
	(void)snap_list;
	(void)snap_id;
	(void)snap_open;
	(void)restore;
	(void)diff;
	(void)clone;
	CSNAP_DUMP_INFO_INIT(&di);
	ret |= csnap_region_info(fd, &info);
	ret |= csnap_snapshot_create(fd, "label", &id);
	ret |= (int)csnap_snapshot_list(fd, &entries);
	ret |= csnap_restore(fd, id, 0, &pages);
	ret |= csnap_diff_walk(fd, id, 0, efn, NULL);
	ret |= (int)csnap_diff(fd, id, 0, &extents);
	ret |= csnap_dump(fd, id, 1, &di, pfn, NULL);
	return ret + (int)sizeof(CSNAP_DUMP_MAGIC) + CSNAP_DUMP_VERSION +
	       (int)sizeof(CSNAP_DEVICE) + (int)sizeof(CSNAP_PROC);
}

#ifdef __cplusplus
/* The spellings the issue tracker reported broken in C++. */
int api_cxx(int fd);
int api_cxx(int fd)
{
	cowsnap_info info;
	cowsnap_restore r{};
	cowsnap_diff d{};
	cowsnap_clone c{};

	(void)r;
	(void)d;
	(void)c;
	return csnap_region_info(fd, &info);
}
#endif

int main(int argc, char **argv)
{
	(void)argv;
	/* Never run; argc keeps the calls from being folded away. */
	return argc > 100 ? api_use(argc) : 0;
}

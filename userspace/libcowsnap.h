/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libcowsnap: one call per /dev/cowsnap operation, so programs never build
 * ioctl structs by hand.  See libcowsnap(3) and docs/errors.md.
 *
 * Every name the library defines starts with csnap_ (functions, types) or
 * CSNAP_ (macros); the kernel's UAPI <linux/cowsnap.h>, included here, owns
 * cowsnap_ and COWSNAP_.  The two never share a name, so C++ may spell a
 * UAPI struct without "struct" (cowsnap_info info;).
 *
 * Conventions: a function returns 0 (or a count, an fd, an address) on
 * success and -1 (NULL for pointers) with errno set on failure.  errno is
 * the kernel's where a system call failed, passed through unchanged; the
 * few the library adds are documented per function.  A handle is an fd
 * from csnap_open(); it attaches to at most one region (csnap_region_create
 * or csnap_region_attach).  Snapshot id 0 means "the live view" wherever an
 * id is taken.  Every function is thread-safe; none keeps state between
 * calls.
 */
#ifndef LIBCOWSNAP_H
#define LIBCOWSNAP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <linux/cowsnap.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CSNAP_DEVICE		"/dev/cowsnap"
#define CSNAP_PROC		"/proc/cowsnap"

/* Handles. */

/*
 * Open /dev/cowsnap and check that the module speaks COWSNAP_API_VERSION.
 * @flags is O_RDWR or O_RDONLY (a read-only handle can only read), with
 * O_CLOEXEC allowed; the fd is always close-on-exec.  Errors of open(2);
 * EINVAL: other @flags; EPROTONOSUPPORT: the module speaks another API.
 */
int csnap_open(int flags);

/* Feature bits (COWSNAP_FEAT_*) and working ioctl numbers of the module. */
int csnap_features(int fd, uint64_t *features, uint64_t *ioctls);

/* Regions. */

/*
 * Create region @name of @size bytes with permission bits @mode and attach
 * the handle to it.  ENAMETOOLONG: @name has 64 bytes or more.
 */
int csnap_region_create(int fd, const char *name, uint64_t size, mode_t mode);

/* Attach the handle to existing region @name. */
int csnap_region_attach(int fd, const char *name);

/* Remove region @name (owner or CAP_SYS_ADMIN); memory goes with its users. */
int csnap_region_destroy(int fd, const char *name);

/* Describe the attached region. */
int csnap_region_info(int fd, struct cowsnap_info *info);

/*
 * mmap(MAP_SHARED) the attached region's live view with @prot; @size 0 maps
 * the whole region.  Returns NULL (not MAP_FAILED) with errno on failure;
 * EOVERFLOW: @size 0 and the region is larger than the address space.
 */
void *csnap_region_map(int fd, size_t size, int prot);

/* Snapshots. */

/* Snapshot the attached region; @label may be NULL or "".  Id in *@id. */
int csnap_snapshot_create(int fd, const char *label, uint64_t *id);

/*
 * All snapshots of the attached region in ascending id order, in a malloc'd
 * array at *@entries (free() it; NULL when there are none).  Returns the
 * count.  EIO: the module broke the listing protocol.
 */
ssize_t csnap_snapshot_list(int fd, struct cowsnap_snap_entry **entries);

/*
 * Resolve @spec, a decimal snapshot id or a label, to an id.  An existing id
 * wins over a label spelled the same.  ENOENT: no such snapshot; ENOTUNIQ:
 * the label names several snapshots.
 */
int csnap_snapshot_find(int fd, const char *spec, uint64_t *id);

/* Delete snapshot @id; pages no one else holds are freed at once. */
int csnap_snapshot_delete(int fd, uint64_t id);

/*
 * A new read-only fd on snapshot @id for pread, lseek and
 * mmap(PROT_READ, MAP_SHARED).  @flags: 0 or O_CLOEXEC (else EINVAL).
 */
int csnap_snapshot_open(int fd, uint64_t id, int flags);

/* Restore, diff, clone. */

/*
 * Make the live view equal to snapshot @id for every mapper.  If
 * @expect_newest is not 0 and the newest snapshot is another one, fail with
 * EXDEV.  Pages restored in *@pages if @pages is not NULL.
 */
int csnap_restore(int fd, uint64_t id, uint64_t expect_newest,
		  uint64_t *pages);

/*
 * Called per changed extent (in pages): return 0 to go on, anything else
 * to stop the walk.  The value is not interpreted: pass results (and your
 * own errors) back through @arg.
 */
typedef int (*csnap_extent_fn)(uint64_t start, uint64_t count, void *arg);

/*
 * Walk the page extents that differ between snapshot @from and snapshot @to
 * (0: the live view), ascending, adjacent extents merged.  Returns 0 after
 * the last extent, 1 if @fn stopped the walk, and -1 with errno only when
 * the walk itself failed (the kernel's errno, or EIO: the module broke the
 * protocol) -- never because of what @fn returned.
 */
int csnap_diff_walk(int fd, uint64_t from, uint64_t to, csnap_extent_fn fn,
		    void *arg);

/*
 * The same extents in a malloc'd array at *@extents (free() it; NULL when
 * there are none); returns the count.
 */
ssize_t csnap_diff(int fd, uint64_t from, uint64_t to,
		   struct cowsnap_extent **extents);

/* Create region @name holding snapshot @id's pages, shared copy-on-write. */
int csnap_clone(int fd, uint64_t id, const char *name, mode_t mode);

/*
 * Dumps: the portable, sparse image of a snapshot described in
 * docs/dump-format.md.  Zero pages are not stored.
 */
#define CSNAP_DUMP_MAGIC	"COWSNAP"	/* 8 bytes with the NUL */
#define CSNAP_DUMP_VERSION	1

/*
 * What a dump holds, filled by the dump calls (also on failure).  The
 * caller sets @struct_size to sizeof(struct csnap_dump_info) before the
 * call -- CSNAP_DUMP_INFO_INIT(&di), or in C
 * struct csnap_dump_info di = { .struct_size = sizeof(di) };  -- so that
 * later versions of the library can add fields at the end: the library
 * fills what both it and the caller know, zeroes the rest of the caller's
 * struct and sets @struct_size to the bytes it filled.  EINVAL:
 * @struct_size is smaller than this first version of the struct.
 */
struct csnap_dump_info {
	uint32_t struct_size;	/* in: sizeof(struct csnap_dump_info) */
	uint32_t version;	/* the dump format version */
	uint32_t page_size;
	uint32_t checksum;	/* CRC-32C of everything before the trailer */
	uint64_t size;		/* region size in bytes */
	uint64_t data_pages;	/* pages stored (the others are zero) */
	uint64_t records;	/* data records */
	uint64_t bytes;		/* length of the dump */
	/* Why the dump stream failed; empty when a system call failed instead. */
	char error[160];
};

/* Zero *@di and set its struct_size, as a dump call wants it. */
#define CSNAP_DUMP_INFO_INIT(di) \
	((void)memset((di), 0, sizeof(*(di))), \
	 (di)->struct_size = sizeof(*(di)))

/*
 * Progress of a dump or load: @done of @total bytes of the region.  Also
 * called when a read or write of the dump was interrupted by a signal
 * (EINTR), so a caller's signal handler can cancel a blocked transfer.  A
 * non-zero return cancels the operation with ECANCELED.
 */
typedef int (*csnap_progress_fn)(uint64_t done, uint64_t total, void *arg);

/*
 * Write snapshot @id of the attached region as a dump to @out (a file or a
 * pipe: it is written sequentially), reading it through
 * csnap_snapshot_open() and pread().  @info and @progress may be NULL.
 */
int csnap_dump(int fd, uint64_t id, int out, struct csnap_dump_info *info,
	       csnap_progress_fn progress, void *arg);

/*
 * Read and validate a whole dump from @in (magic, version, sizes, record
 * bounds, checksum, nothing after the end) without creating anything.
 * EBADMSG: corrupt or truncated; EPROTONOSUPPORT: another format version.
 */
int csnap_dump_check(int in, struct csnap_dump_info *info);

/*
 * Create region @name with @mode from the dump in @in and attach @fd to it.
 * Input that can seek is validated completely before the region is
 * created, so a bad dump creates nothing.  Input that cannot seek (a pipe)
 * is read once: the region is created after the header and filled as the
 * data arrives, and destroyed again if the rest of the dump turns out bad.
 * On any failure nothing is left behind.
 */
int csnap_load(int fd, const char *name, mode_t mode, int in,
	       struct csnap_dump_info *info, csnap_progress_fn progress,
	       void *arg);

#ifdef __cplusplus
}
#endif

#endif /* LIBCOWSNAP_H */

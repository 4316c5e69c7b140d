/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libcowsnap: one call per /dev/cowsnap operation, so programs never build
 * ioctl structs by hand.  See libcowsnap(3).
 *
 * Conventions: every function returns 0 (or a count, an fd, an address) on
 * success and -1 (NULL for pointers) with errno set on failure; errno is the
 * kernel's where an ioctl failed.  A handle is an fd from cowsnap_open(); it
 * attaches to at most one region (cowsnap_create() or cowsnap_attach()).
 * Snapshot id 0 means "the live view" wherever an id is taken.
 */
#ifndef LIBCOWSNAP_H
#define LIBCOWSNAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/cowsnap.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COWSNAP_DEVICE		"/dev/cowsnap"
#define COWSNAP_PROC		"/proc/cowsnap"

/*
 * Open /dev/cowsnap and check that the module speaks COWSNAP_API_VERSION.
 * @flags is O_RDWR or O_RDONLY (a read-only handle can only read); the fd is
 * always close-on-exec.  EPROTONOSUPPORT: the module speaks another version.
 */
int cowsnap_open(int flags);

/* Feature bits (COWSNAP_FEAT_*) and working ioctl numbers of the module. */
int cowsnap_features(int fd, uint64_t *features, uint64_t *ioctls);

/* 1 if @name is a valid region name or snapshot label, else 0. */
int cowsnap_name_valid(const char *name);

/* Create region @name of @size bytes with permission bits @mode; attach. */
int cowsnap_create(int fd, const char *name, uint64_t size, mode_t mode);

/* Attach the handle to existing region @name. */
int cowsnap_attach(int fd, const char *name);

/* Remove region @name (owner or CAP_SYS_ADMIN); memory goes with its users. */
int cowsnap_destroy(int fd, const char *name);

/* Describe the attached region. */
int cowsnap_info(int fd, struct cowsnap_info *info);

/* Snapshot the attached region; @label may be NULL or "".  Id in *@id. */
int cowsnap_snap_create(int fd, const char *label, uint64_t *id);

/*
 * All snapshots of the attached region in ascending id order, in a malloc'd
 * array at *@entries (free() it).  Returns the count.
 */
ssize_t cowsnap_snap_list(int fd, struct cowsnap_snap_entry **entries);

/*
 * Resolve @spec, a decimal snapshot id or a label, to an id.  An existing id
 * wins over a label spelled the same.  ENOENT: no such snapshot; ENOTUNIQ:
 * the label names several snapshots.
 */
int cowsnap_snap_find(int fd, const char *spec, uint64_t *id);

/* Delete snapshot @id; pages no one else holds are freed at once. */
int cowsnap_snap_delete(int fd, uint64_t id);

/*
 * A new read-only fd on snapshot @id for pread, lseek and
 * mmap(PROT_READ, MAP_SHARED).  @flags: 0 or O_CLOEXEC.
 */
int cowsnap_snap_open(int fd, uint64_t id, int flags);

/*
 * Make the live view equal to snapshot @id for every mapper.  If
 * @expect_newest is not 0 and the newest snapshot is another one, fail with
 * EXDEV.  Pages restored in *@pages if @pages is not NULL.
 */
int cowsnap_restore(int fd, uint64_t id, uint64_t expect_newest,
		    uint64_t *pages);

/* Called per changed extent (in pages); a non-zero return stops the walk. */
typedef int (*cowsnap_extent_fn)(uint64_t start, uint64_t count, void *arg);

/*
 * Walk the page extents that differ between snapshot @from and snapshot @to
 * (0: the live view), ascending, adjacent extents merged.  Returns 0, -1 with
 * errno, or the callback's non-zero return.
 */
int cowsnap_diff_walk(int fd, uint64_t from, uint64_t to,
		      cowsnap_extent_fn fn, void *arg);

/* The same extents in a malloc'd array at *@extents; returns the count. */
ssize_t cowsnap_diff(int fd, uint64_t from, uint64_t to,
		     struct cowsnap_extent **extents);

/* Create region @name holding snapshot @id's pages, shared copy-on-write. */
int cowsnap_clone(int fd, uint64_t id, const char *name, mode_t mode);

/*
 * mmap(MAP_SHARED) the attached region's live view with @prot; @size 0 maps
 * the whole region.  Returns NULL (not MAP_FAILED) with errno on failure.
 */
void *cowsnap_map(int fd, size_t size, int prot);

/*
 * Parse a size: decimal digits with an optional K, M, G or T suffix (any
 * case, powers of 1024).  EINVAL: malformed or 0; ERANGE: overflows 64 bits.
 * Page alignment is left to the kernel.
 */
int cowsnap_parse_size(const char *str, uint64_t *size);

/* CRC-32C (Castagnoli) of @len bytes, continuing @crc (0 to start). */
uint32_t cowsnap_crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * Dumps: the portable, sparse image of a snapshot described in
 * docs/dump-format.md.  Zero pages are not stored.
 */
#define COWSNAP_DUMP_MAGIC	"COWSNAP"	/* 8 bytes with the NUL */
#define COWSNAP_DUMP_VERSION	1

/* What a dump holds, filled by the dump calls (also on failure). */
struct cowsnap_dump_info {
	uint32_t version;
	uint32_t page_size;
	uint64_t size;		/* region size in bytes */
	uint64_t data_pages;	/* pages stored (the others are zero) */
	uint64_t records;	/* data records */
	uint64_t bytes;		/* length of the dump */
	uint32_t checksum;	/* CRC-32C of everything before it */
	/* Why the dump stream failed; empty when an ioctl failed instead. */
	char error[160];
};

/*
 * Progress of a dump or load: @done of @total bytes of the region.  A
 * non-zero return cancels the operation with ECANCELED.
 */
typedef int (*cowsnap_progress_fn)(uint64_t done, uint64_t total, void *arg);

/*
 * Write snapshot @id of the attached region as a dump to @out (a file or a
 * pipe: it is written sequentially), reading it through cowsnap_snap_open()
 * and pread().  @info and @progress may be NULL.
 */
int cowsnap_dump(int fd, uint64_t id, int out, struct cowsnap_dump_info *info,
		 cowsnap_progress_fn progress, void *arg);

/*
 * Read and validate a whole dump from @in (magic, version, sizes, record
 * bounds, checksum, nothing after the end) without creating anything.
 * EBADMSG: corrupt or truncated; EPROTONOSUPPORT: another format version.
 */
int cowsnap_dump_check(int in, struct cowsnap_dump_info *info);

/*
 * Create region @name with @mode from the dump in @in and attach @fd to it.
 * The dump is validated completely before the region is created; input that
 * cannot seek (a pipe) is first copied to an unlinked file in $TMPDIR (or
 * /tmp).  On any failure nothing is left behind.
 */
int cowsnap_load(int fd, const char *name, mode_t mode, int in,
		 struct cowsnap_dump_info *info,
		 cowsnap_progress_fn progress, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* LIBCOWSNAP_H */

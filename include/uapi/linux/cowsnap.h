/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * cowsnap: copy-on-write snapshots of shared memory regions.
 *
 * One header for the module and user space.  All ioctls are issued on an
 * open /dev/cowsnap (a "handle"); a handle attaches to at most one region.
 * Every struct is fixed-width with explicit padding; reserved fields and
 * unknown flag bits must be zero (EINVAL otherwise) so they can gain meaning
 * later.  Fields marked "out" are ignored on input, so a struct can be
 * reused as it came back (e.g. diff.start = diff.next).  Ioctl numbers use
 * type 0xC5, numbers 0x00-0x1f.
 */
#ifndef _UAPI_LINUX_COWSNAP_H
#define _UAPI_LINUX_COWSNAP_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define COWSNAP_API_VERSION	1

/* Names and labels: 1-63 bytes of [A-Za-z0-9._-], not starting with '.'. */
#define COWSNAP_NAME_MAX	64	/* buffer size, including the NUL */

/* Feature bits reported by COWSNAP_IOC_API. */
#define COWSNAP_FEAT_REGIONS	(1ULL << 0)	/* create/attach/destroy/info */
#define COWSNAP_FEAT_SNAPSHOTS	(1ULL << 1)	/* snap create/list/delete/open */
#define COWSNAP_FEAT_RESTORE	(1ULL << 2)
#define COWSNAP_FEAT_DIFF	(1ULL << 3)
#define COWSNAP_FEAT_CLONE	(1ULL << 4)

/* COWSNAP_IOC_API: @api in must be COWSNAP_API_VERSION. */
struct cowsnap_api {
	__u32 api;
	__u32 reserved;
	__u64 features;		/* out: COWSNAP_FEAT_* */
	__u64 ioctls;		/* out: bit n set if ioctl number n works */
};

/* COWSNAP_IOC_CREATE: create a region and attach the handle to it. */
struct cowsnap_create {
	char name[COWSNAP_NAME_MAX];
	__u64 size;		/* bytes, page multiple, > 0 */
	__u32 mode;		/* permission bits, 0-0777 */
	__u32 flags;		/* none defined */
	__u64 reserved[2];
};

/* COWSNAP_IOC_ATTACH and COWSNAP_IOC_DESTROY. */
struct cowsnap_name {
	char name[COWSNAP_NAME_MAX];
	__u32 flags;		/* none defined */
	__u32 reserved;
};

/* COWSNAP_IOC_INFO: about the attached region (all out). */
struct cowsnap_info {
	char name[COWSNAP_NAME_MAX];	/* empty once destroyed */
	__u64 size;
	__u64 resident_pages;	/* pages of the live view */
	__u64 shared_pages;	/* live pages also held by a snapshot/clone */
	__u64 nr_snapshots;
	__u64 newest_snapshot;	/* 0 if none */
	__u32 uid;
	__u32 gid;
	__u32 mode;
	__u32 flags;		/* out: COWSNAP_INFO_* */
	__u64 reserved[4];
};

#define COWSNAP_INFO_WRITABLE	(1U << 0)	/* this handle may write */
#define COWSNAP_INFO_DESTROYED	(1U << 1)

/* COWSNAP_IOC_SNAP_CREATE */
struct cowsnap_snap_create {
	char label[COWSNAP_NAME_MAX];	/* optional: "" for none */
	__u32 flags;		/* none defined */
	__u32 reserved;
	__u64 id;		/* out */
};

/* One record of COWSNAP_IOC_SNAP_LIST. */
struct cowsnap_snap_entry {
	__u64 id;
	__u64 ctime_ns;		/* CLOCK_REALTIME at creation */
	__u64 referenced_pages;	/* pages the snapshot holds */
	__u64 exclusive_pages;	/* pages freed if it is deleted */
	char label[COWSNAP_NAME_MAX];
};

/*
 * COWSNAP_IOC_SNAP_LIST: fills @entries with snapshots whose id is >=
 * @start_id, in ascending id order.  @count is the capacity in and the
 * number filled out; @next_id is the id to pass as @start_id to continue,
 * or 0 when the list is complete.
 */
struct cowsnap_snap_list {
	__u64 start_id;
	__u64 entries;		/* user pointer to struct cowsnap_snap_entry[] */
	__u32 count;
	__u32 flags;		/* none defined */
	__u64 next_id;		/* out */
};

/* COWSNAP_IOC_SNAP_DELETE */
struct cowsnap_snap_id {
	__u64 id;
	__u32 flags;		/* none defined */
	__u32 reserved;
};

/* COWSNAP_IOC_SNAP_OPEN: returns a new read-only fd for the snapshot. */
struct cowsnap_snap_open {
	__u64 id;
	__u32 flags;		/* COWSNAP_OPEN_CLOEXEC */
	__u32 reserved;
};

#define COWSNAP_OPEN_CLOEXEC	(1U << 0)

/*
 * COWSNAP_IOC_RESTORE: make the live view equal to snapshot @id.  If
 * @expect_newest is not 0 and the newest snapshot id differs, fail with EXDEV.
 */
struct cowsnap_restore {
	__u64 id;
	__u64 expect_newest;
	__u32 flags;		/* none defined */
	__u32 reserved;
	__u64 pages_restored;	/* out */
};

/* One changed range of COWSNAP_IOC_DIFF, in pages. */
struct cowsnap_extent {
	__u64 start;
	__u64 count;
};

/*
 * COWSNAP_IOC_DIFF: page extents whose page differs between snapshot @from
 * and snapshot @to (0: the live view), from page @start on, ascending.
 * @count is the capacity in and the number filled out; @next is the page to
 * pass as @start to continue, or 0 when the walk is complete.
 */
struct cowsnap_diff {
	__u64 from;
	__u64 to;
	__u64 start;
	__u64 extents;		/* user pointer to struct cowsnap_extent[] */
	__u32 count;
	__u32 flags;		/* none defined */
	__u64 next;		/* out */
};

/* COWSNAP_IOC_CLONE: new region @name holding snapshot @id's contents. */
struct cowsnap_clone {
	__u64 id;
	char name[COWSNAP_NAME_MAX];
	__u32 mode;
	__u32 flags;		/* none defined */
	__u64 reserved;
};

#define COWSNAP_IOC_TYPE	0xC5

/* Ioctl numbers: bit n of cowsnap_api.ioctls is set if number n works. */
#define _COWSNAP_IOC_API		0x00
#define _COWSNAP_IOC_CREATE		0x01
#define _COWSNAP_IOC_ATTACH		0x02
#define _COWSNAP_IOC_DESTROY		0x03
#define _COWSNAP_IOC_INFO		0x04
#define _COWSNAP_IOC_SNAP_CREATE	0x05
#define _COWSNAP_IOC_SNAP_LIST		0x06
#define _COWSNAP_IOC_SNAP_DELETE	0x07
#define _COWSNAP_IOC_SNAP_OPEN		0x08
#define _COWSNAP_IOC_RESTORE		0x09
#define _COWSNAP_IOC_DIFF		0x0a
#define _COWSNAP_IOC_CLONE		0x0b

#define COWSNAP_IOC_API \
	_IOWR(COWSNAP_IOC_TYPE, _COWSNAP_IOC_API, struct cowsnap_api)
#define COWSNAP_IOC_CREATE \
	_IOW(COWSNAP_IOC_TYPE, _COWSNAP_IOC_CREATE, struct cowsnap_create)
#define COWSNAP_IOC_ATTACH \
	_IOW(COWSNAP_IOC_TYPE, _COWSNAP_IOC_ATTACH, struct cowsnap_name)
#define COWSNAP_IOC_DESTROY \
	_IOW(COWSNAP_IOC_TYPE, _COWSNAP_IOC_DESTROY, struct cowsnap_name)
#define COWSNAP_IOC_INFO \
	_IOR(COWSNAP_IOC_TYPE, _COWSNAP_IOC_INFO, struct cowsnap_info)
#define COWSNAP_IOC_SNAP_CREATE \
	_IOWR(COWSNAP_IOC_TYPE, _COWSNAP_IOC_SNAP_CREATE, struct cowsnap_snap_create)
#define COWSNAP_IOC_SNAP_LIST \
	_IOWR(COWSNAP_IOC_TYPE, _COWSNAP_IOC_SNAP_LIST, struct cowsnap_snap_list)
#define COWSNAP_IOC_SNAP_DELETE \
	_IOW(COWSNAP_IOC_TYPE, _COWSNAP_IOC_SNAP_DELETE, struct cowsnap_snap_id)
#define COWSNAP_IOC_SNAP_OPEN \
	_IOW(COWSNAP_IOC_TYPE, _COWSNAP_IOC_SNAP_OPEN, struct cowsnap_snap_open)
#define COWSNAP_IOC_RESTORE \
	_IOWR(COWSNAP_IOC_TYPE, _COWSNAP_IOC_RESTORE, struct cowsnap_restore)
#define COWSNAP_IOC_DIFF \
	_IOWR(COWSNAP_IOC_TYPE, _COWSNAP_IOC_DIFF, struct cowsnap_diff)
#define COWSNAP_IOC_CLONE \
	_IOW(COWSNAP_IOC_TYPE, _COWSNAP_IOC_CLONE, struct cowsnap_clone)

#endif /* _UAPI_LINUX_COWSNAP_H */

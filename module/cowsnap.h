/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cowsnap internals shared by the module's files.
 *
 * Lock order (the only place it is written down):
 *
 *   cowsnap_regions_lock (global mutex: name table)
 *     region->lock (mutex: snapshot list, ioctls that change the region)
 *       region->fault_sem (rwsem: write faults and hole fills read,
 *                          snapshot/restore write)
 *         page lock (owner count in page->private)
 *           cowsnap_zero_page's lock (under at most a fresh page's lock)
 *           i_mmap_rwsem, PTE locks (taken inside unmap/wp helpers)
 *
 * mmap_lock sits above fault_sem (faults arrive holding it).  Therefore
 * nothing may touch user memory (copy_*_user, GUP) while holding fault_sem
 * or a page lock: a fault on a cowsnap mapping would recurse into them.
 * region->lock is never taken in a fault.
 */
#ifndef _COWSNAP_H
#define _COWSNAP_H

#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/xarray.h>
#include <linux/uidgid.h>
#include <linux/cowsnap.h>

#define COWSNAP_VERSION "0.1.0"
#define COWSNAP_FS_MAGIC 0x636f7773	/* "cows" */

/* Live entries created or replaced since the region's base snapshot. */
#define COWSNAP_MARK_DIRTY	XA_MARK_0

/*
 * A region: a named page store with one live view and its snapshots.
 * Referenced by the name table (until destroyed), by every attached handle
 * and by every open snapshot fd; freed with its pages on the last put.
 */
struct cowsnap_region {
	struct kref ref;
	struct list_head node;		/* in the name table, under its lock */
	char name[COWSNAP_NAME_MAX];
	bool destroyed;			/* under cowsnap_regions_lock */
	u64 size;
	pgoff_t npages;
	kuid_t uid;
	kgid_t gid;
	umode_t mode;
	struct inode *inode;		/* i_mapping gathers every live mapping */
	bool zero_mapped;		/* cowsnap_zero_page may be mapped */

	struct mutex lock;		/* snaps, next_id, base_id */
	struct rw_semaphore fault_sem;	/* see the lock order above */
	struct xarray pages;		/* live view: index -> struct page */
	atomic_long_t nr_pages;		/* entries in @pages */
	struct list_head snaps;		/* ascending id */
	unsigned int nr_snaps;
	u64 next_id;
	/*
	 * Snapshot that every live entry without COWSNAP_MARK_DIRTY equals,
	 * and that has no entry the live view lacks; 0 if none.  Makes
	 * restoring it cost the dirty pages only.
	 */
	u64 base_id;
};

/* An immutable image of a region, sharing its pages. */
struct cowsnap_snap {
	struct kref ref;		/* list membership + open fds */
	struct list_head node;		/* in region->snaps, under its lock */
	u64 id;
	u64 ctime_ns;
	char label[COWSNAP_NAME_MAX];
	pgoff_t npages;
	unsigned long nr_pages;		/* entries in @pages */
	struct xarray pages;		/* index -> struct page, never changes */
};

/*
 * Per open of /dev/cowsnap; may be shared after fork() or dup(), hence the
 * lock around attaching.  @region is set once and never changes.
 */
struct cowsnap_handle {
	struct mutex lock;		/* serializes create/attach */
	struct cowsnap_region *region;
	bool writable;
};

/* Statistics shown in /proc/cowsnap; all monotonic except the gauges. */
struct cowsnap_stats {
	atomic_long_t regions;		/* gauge: region objects alive */
	atomic_long_t snapshots;	/* gauge: snapshots in a region's list */
	atomic_long_t pages_allocated;	/* gauge: pages with an owner */
	atomic_long_t pages_shared;	/* gauge: pages with two or more */
	atomic_long_t cow_faults;
	atomic_long_t bytes_copied;
	atomic_long_t read_faults;
	atomic_long_t write_faults;
	atomic_long_t pinned_copies;
	atomic_long_t restores;
	atomic_long_t pages_restored;
	atomic_long_t clones;
	atomic_long_t alloc_failures;
};

extern struct cowsnap_stats cowsnap_stats;

static inline void cowsnap_count(atomic_long_t *c, long n)
{
	atomic_long_add(n, c);
}

/* Module parameters (read-only after load). */
extern unsigned long cowsnap_max_pages;
extern unsigned long long cowsnap_max_region_size;
extern unsigned int cowsnap_max_snapshots;

/* Compat: helpers that appeared or vanished between 6.1 and 6.12. */
#ifndef COWSNAP_HAVE_VM_FLAGS_SET
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void vm_flags_clear(struct vm_area_struct *vma,
				  vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

static inline int cowsnap_mapcount(struct page *page)
{
#ifdef COWSNAP_HAVE_PAGE_MAPCOUNT
	return page_mapcount(page);
#else
	return folio_mapcount(page_folio(page));
#endif
}

/* pages.c: page ownership and the live page store */
struct page *cowsnap_page_alloc(gfp_t extra);
void cowsnap_page_own(struct page *page);
void cowsnap_page_disown(struct page *page);
void cowsnap_page_release(struct page *page);
void cowsnap_pages_release(struct xarray *xa);
struct page *cowsnap_page_get(struct xarray *xa, pgoff_t idx);
struct page *cowsnap_live_get_locked(struct cowsnap_region *r, pgoff_t idx);
struct page *cowsnap_live_get_filled(struct cowsnap_region *r, pgoff_t idx);
struct page *cowsnap_live_get_for_read(struct cowsnap_region *r, pgoff_t idx);
void cowsnap_live_filled(struct cowsnap_region *r, pgoff_t idx);
bool cowsnap_zero_page_usable(void);
struct page *cowsnap_live_get_writable(struct cowsnap_region *r, pgoff_t idx);
struct page *cowsnap_live_cow(struct cowsnap_region *r, pgoff_t idx,
			      struct page *old);
ssize_t cowsnap_pages_read(struct xarray *xa, u64 size, char __user *buf,
			   size_t len, loff_t *ppos);
extern struct page *cowsnap_zero_page;

/* region.c: regions, names, permissions, the pseudo filesystem */
int cowsnap_name_check(const char *name, bool may_be_empty);
struct cowsnap_region *cowsnap_region_alloc(const char *name, u64 size,
					    umode_t mode);
int cowsnap_region_publish(struct cowsnap_region *r);
struct cowsnap_region *cowsnap_region_find(const char *name);
int cowsnap_region_destroy(const char *name);
void cowsnap_region_unpublish(struct cowsnap_region *r);
void cowsnap_region_put(struct cowsnap_region *r);
int cowsnap_region_permission(struct cowsnap_region *r, int mask);
unsigned long cowsnap_count_owned(struct xarray *xa, unsigned long owners,
				  bool more);
struct file *cowsnap_file_new(const char *name,
			      const struct file_operations *fops, void *priv,
			      int flags);
int cowsnap_fs_init(void);
void cowsnap_fs_exit(void);
extern struct mutex cowsnap_regions_lock;
extern struct list_head cowsnap_regions;

/* fault.c: live mappings and their faults, read/write of the live view */
int cowsnap_live_mmap(struct cowsnap_region *r, bool writable,
		      struct vm_area_struct *vma);
ssize_t cowsnap_live_write(struct cowsnap_region *r, const char __user *buf,
			   size_t len, loff_t *ppos);
void cowsnap_unmap_run(struct cowsnap_region *r, pgoff_t *start,
		       pgoff_t *end, pgoff_t idx);

/* snapshot.c */
struct cowsnap_snap *cowsnap_snap_find(struct cowsnap_region *r, u64 id);
struct cowsnap_snap *cowsnap_snap_get(struct cowsnap_region *r, u64 id);
u64 cowsnap_newest_id(struct cowsnap_region *r);
void cowsnap_snap_put(struct cowsnap_snap *s);
void cowsnap_snap_unlink(struct cowsnap_region *r, struct cowsnap_snap *s);
long cowsnap_ioc_snap_create(struct cowsnap_region *r, void __user *argp);
long cowsnap_ioc_snap_list(struct cowsnap_region *r, void __user *argp);
long cowsnap_ioc_snap_delete(struct cowsnap_region *r, void __user *argp);
long cowsnap_ioc_snap_open(struct cowsnap_region *r, void __user *argp);

/* restore.c: restore, diff, clone */
long cowsnap_ioc_restore(struct cowsnap_region *r, void __user *argp);
long cowsnap_ioc_diff(struct cowsnap_region *r, void __user *argp);
long cowsnap_ioc_clone(struct cowsnap_region *r, void __user *argp);

/* procfs.c */
int cowsnap_procfs_init(void);
void cowsnap_procfs_exit(void);

#endif /* _COWSNAP_H */

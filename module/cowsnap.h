/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cowsnap internals shared by the module's files.  docs/design.md explains
 * the ownership model; this header states its invariants.
 *
 * Lock order (the only place it is written down):
 *
 *   cowsnap_regions_lock (global mutex: name table, creation-order index,
 *                         per-user region counts)
 *     region->lock (mutex: snapshot list, ioctls that change the region)
 *       region->fault_sem (rwsem: stores, write()s and hole fills read;
 *                          snapshot, restore, delete, retire write)
 *         page lock (owners of the page; the live entry at its index)
 *           region->zero_page's lock (under at most a fresh page's lock)
 *           xa_lock of region->hist (history chains, snapshot record lists)
 *           i_mmap_rwsem, PTE locks (inside the unmap/wp helpers)
 *
 * mmap_lock sits above fault_sem (faults arrive holding it).  Therefore
 * nothing may touch user memory (copy_*_user, GUP) while holding fault_sem
 * or a page lock: a fault on a cowsnap mapping would recurse into them.
 * region->lock is never taken in a fault.  Never two page locks at once.
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

#define COWSNAP_VERSION "0.2.0"
#define COWSNAP_FS_MAGIC 0x636f7773	/* "cows" */

/* Allocations an ioctl or fault can fail cleanly: no OOM kill, no warning. */
#define COWSNAP_GFP	(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)

/* Marks on live entries (region->pages). */
#define COWSNAP_MARK_WRITABLE	XA_MARK_0	/* PTEs may be writable */
#define COWSNAP_MARK_INHERITED	XA_MARK_1	/* a clone's, not yet written */
#define COWSNAP_MARK_DUP	XA_MARK_2	/* a record holds it too */

/*
 * A region: a named page store with one live view and its snapshots.
 *
 * @users counts the name table entry and attached handles (live mappings
 * hold a handle's file); when it drops to zero the live view is retired.
 * @ref counts @users (as one), snapshot fds and transient holders; the
 * region and its history are freed on the last put.
 */
struct cowsnap_region {
	struct kref ref;
	atomic_t users;
	struct hlist_node hnode;	/* name hash, under its lock */
	unsigned long rid;		/* creation order (/proc cursor) */
	char name[COWSNAP_NAME_MAX];
	bool destroyed;			/* under cowsnap_regions_lock */
	u64 size;
	pgoff_t npages;
	kuid_t uid;
	kgid_t gid;
	umode_t mode;
	struct inode *inode;		/* writable handles' mappings */
	struct inode *ro_inode;		/* read-only handles' mappings */
	struct inode *snap_inode;	/* snapshot fds' mappings */
	struct page *zero_page;		/* hole reads map it; set once */
	bool zero_mapped;		/* @zero_page may be mapped */

	struct mutex lock;		/* snaps, next_id */
	struct rw_semaphore fault_sem;	/* see the lock order above */
	struct xarray pages;		/* live view: index -> struct page */
	struct xarray hist;		/* index -> newest cowsnap_rec */
	struct xarray pinned;		/* indexes referenced at a snapshot */
	atomic_long_t nr_pages;		/* live pages */
	atomic_long_t nr_plain;		/* neither inherited nor dup */
	atomic_long_t nr_unshared;	/* plain and changed since newest */
	struct list_head snaps;		/* ascending id, listed or not */
	unsigned int nr_snaps;		/* listed */
	struct cowsnap_snap *newest;	/* in @snaps; fault_sem to change */
	u64 next_id;
};

/*
 * A snapshot: one number in the region's history.  Its image at an index
 * is the state of the oldest record whose @snap is it or newer, or the live
 * entry if there is none (cowsnap_hist_lookup()).
 */
struct cowsnap_snap {
	struct kref ref;		/* list membership + open fds */
	struct list_head node;		/* in region->snaps, under its lock */
	struct cowsnap_region *region;	/* not referenced: see the fds */
	u64 id;
	u64 ctime_ns;
	char label[COWSNAP_NAME_MAX];
	bool listed;			/* false once deleted */
	unsigned long referenced;	/* pages in its image, fixed */
	atomic_long_t exclusive;	/* records counted as its alone */
	struct list_head recs;		/* records it is newest holder of */
	unsigned long nr_recs;
	struct rcu_head rcu;
};

/*
 * A past state of one index: the page (NULL: a hole) it held from just
 * after the snapshot of the next older record at this index up to and
 * including @snap, the newest snapshot that holds it.  Chains are ordered
 * newest first; states no existing snapshot holds have no record, so no
 * snapshot lies in a gap between two records.
 */
struct cowsnap_rec {
	struct cowsnap_rec __rcu *older;
	/*
	 * RCU readers follow only @older: a record leaves its snapshot's
	 * list before it is freed, so the list node can hold the rcu_head
	 * (56 bytes a record, not 72).
	 */
	union {
		struct list_head node;	/* in snap->recs */
		struct rcu_head rcu;
	};
	struct cowsnap_snap *snap;
	struct page *page;
	pgoff_t idx;
	bool dup;			/* another entry here holds @page */
	bool counted;			/* in snap->exclusive */
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
	atomic_long_t snapshots;	/* gauge: listed snapshots */
	atomic_long_t pages_allocated;	/* gauge: pages with an owner */
	atomic_long_t pages_shared;	/* gauge: pages with two or more */
	atomic_long_t meta_bytes;	/* gauge: regions, snapshots, records */
	atomic_long_t records;		/* gauge: history records */
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
extern unsigned int cowsnap_max_regions;
extern unsigned int cowsnap_max_user_regions;

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

/* pages.c: the page budget, page owners, the live page store */
bool cowsnap_budget_charge(long pages, long bytes);
void cowsnap_budget_uncharge(long pages, long bytes);
struct page *cowsnap_page_alloc(struct page *copy_of);
void cowsnap_page_free_unowned(struct page *page);
void cowsnap_page_own(struct page *page);
void cowsnap_page_disown(struct page *page);
bool cowsnap_live_fresh(struct cowsnap_region *r, pgoff_t idx);
void cowsnap_live_acct(struct cowsnap_region *r, pgoff_t idx, long sign);
unsigned long cowsnap_live_shared(struct cowsnap_region *r);
void cowsnap_idx_dups(struct cowsnap_region *r, pgoff_t idx,
		      struct page *page);
struct page *cowsnap_page_get(struct xarray *xa, pgoff_t idx);
struct page *cowsnap_live_get_locked(struct cowsnap_region *r, pgoff_t idx);
struct page *cowsnap_live_get_for_read(struct cowsnap_region *r, pgoff_t idx);
struct page *cowsnap_live_get_filled(struct cowsnap_region *r, pgoff_t idx);
struct page *cowsnap_live_get_writable(struct cowsnap_region *r, pgoff_t idx,
				       bool mapped);
struct page *cowsnap_live_mkwrite(struct cowsnap_region *r, pgoff_t idx,
				  struct page *page);
void cowsnap_live_zap(struct cowsnap_region *r, pgoff_t idx, pgoff_t nr);
void cowsnap_live_filled(struct cowsnap_region *r, pgoff_t idx);
void cowsnap_live_set(struct cowsnap_region *r, pgoff_t idx,
		      struct page *old, struct page *new);
void cowsnap_live_retire(struct cowsnap_region *r);
ssize_t cowsnap_read_pages(struct cowsnap_region *r, u64 sid, u64 size,
			   char __user *buf, size_t len, loff_t *ppos);
extern struct page *cowsnap_zero_page;
bool cowsnap_zero_page_usable(struct page *zero);

/* history.c: records of past states, snapshot images, merges */
int cowsnap_history_init(void);
void cowsnap_history_exit(void);
struct cowsnap_rec *cowsnap_rec_alloc(struct cowsnap_region *r, pgoff_t idx);
struct cowsnap_rec *cowsnap_rec_alloc_nofail(struct cowsnap_region *r,
					     pgoff_t idx);
void cowsnap_rec_free(struct cowsnap_rec *e);
void cowsnap_rec_drop(struct cowsnap_region *r, struct cowsnap_rec *e,
		      pgoff_t idx);
int cowsnap_rec_push(struct cowsnap_region *r, struct cowsnap_rec *e,
		     pgoff_t idx, struct page *page);
struct page *cowsnap_hist_lookup(struct cowsnap_region *r, u64 sid,
				 pgoff_t idx);
struct page *cowsnap_snap_page_get(struct cowsnap_region *r, u64 sid,
				   pgoff_t idx);
bool cowsnap_rec_unique(struct cowsnap_rec *e);
void cowsnap_rec_recount(struct cowsnap_rec *e);
void cowsnap_hist_pop(struct cowsnap_region *r, struct cowsnap_rec *e);
void cowsnap_hist_merge(struct cowsnap_region *r, struct cowsnap_snap *s);

/* region.c: regions, names, permissions, limits */
int cowsnap_name_check(const char *name, bool may_be_empty);
struct cowsnap_region *cowsnap_region_alloc(const char *name, u64 size,
					    umode_t mode);
int cowsnap_region_publish(struct cowsnap_region *r);
struct cowsnap_region *cowsnap_region_find(const char *name);
int cowsnap_region_destroy(const char *name);
void cowsnap_region_unpublish(struct cowsnap_region *r);
void cowsnap_region_get(struct cowsnap_region *r);
void cowsnap_region_put(struct cowsnap_region *r);
void cowsnap_region_put_user(struct cowsnap_region *r);
int cowsnap_region_permission(struct cowsnap_region *r, int mask);
bool cowsnap_region_visible(struct cowsnap_region *r);
unsigned int cowsnap_regions_next(u64 after, struct cowsnap_region **rs,
				  unsigned int max);
extern struct mutex cowsnap_regions_lock;

/* fs.c: the pseudo filesystem */
struct inode *cowsnap_inode_new(void);
void cowsnap_inode_put(struct inode *inode);
struct file *cowsnap_file_new(const char *name,
			      const struct file_operations *fops, void *priv,
			      struct inode *inode, int flags);

/* fault.c: live mappings and their faults, write() of the live view */
int cowsnap_live_mmap(struct cowsnap_region *r, bool writable,
		      struct vm_area_struct *vma);
ssize_t cowsnap_live_write(struct cowsnap_region *r, const char __user *buf,
			   size_t len, loff_t *ppos);

/* snapshot.c */
struct cowsnap_snap *cowsnap_snap_find(struct cowsnap_region *r, u64 id);
struct cowsnap_snap *cowsnap_snap_get(struct cowsnap_region *r, u64 id);
u64 cowsnap_newest_id(struct cowsnap_region *r);
void cowsnap_snap_put(struct cowsnap_snap *s);
void cowsnap_snap_unlist(struct cowsnap_region *r, struct cowsnap_snap *s);
long cowsnap_ioc_snap_create(struct cowsnap_region *r, void __user *argp);
long cowsnap_ioc_snap_list(struct cowsnap_region *r, void __user *argp);
long cowsnap_ioc_snap_delete(struct cowsnap_region *r, void __user *argp);
long cowsnap_ioc_snap_open(struct cowsnap_region *r, void __user *argp);
void cowsnap_snap_zap_fds(struct cowsnap_region *r, pgoff_t idx);

/* restore.c: restore, diff, clone */
long cowsnap_ioc_restore(struct cowsnap_region *r, void __user *argp);
long cowsnap_ioc_diff(struct cowsnap_region *r, void __user *argp);
long cowsnap_ioc_clone(struct cowsnap_region *r, void __user *argp);

/* procfs.c */
int cowsnap_procfs_init(void);
void cowsnap_procfs_exit(void);

#endif /* _COWSNAP_H */

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

/* Statistics shown in /proc/cowsnap; all monotonic except the gauges. */
struct cowsnap_stats {
	atomic_long_t regions;		/* gauge */
	atomic_long_t snapshots;	/* gauge */
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

int cowsnap_procfs_init(void);
void cowsnap_procfs_exit(void);

#endif /* _COWSNAP_H */

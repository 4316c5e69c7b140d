// SPDX-License-Identifier: GPL-2.0
/*
 * Restore, diff and clone.
 *
 * Restore runs with fault_sem held for write: no store fault and no hole
 * fill can run, and a read fault that raced with a swap re-checks the
 * entry under the page lock.  Each changed index is swapped with the old
 * page locked and then zapped in every mapping, so a mapper sees either
 * the old page or the restored one, never a mix.  Restoring the region's
 * base snapshot (the newest, or the last one restored) visits only the
 * entries marked dirty since; any other snapshot walks the region.
 *
 * Locking: region->lock, then fault_sem, then page locks (cowsnap.h).
 */
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "cowsnap.h"
#include "cowsnap_trace.h"

#define COWSNAP_DIFF_BATCH	1024

/*
 * Point live entry @idx, currently @old (NULL: a hole or a reservation),
 * at @new (NULL: make it a hole).  Caller holds fault_sem for write.
 */
static void cowsnap_live_replace(struct cowsnap_region *r, pgoff_t idx,
				 struct page *old, struct page *new)
{
	if (new) {
		lock_page(new);
		cowsnap_page_own(new);
		unlock_page(new);
	}
	if (old)
		lock_page(old);
	if (new) {
		/* Over an entry or a reservation: allocates nothing. */
		xa_store(&r->pages, idx, new, GFP_NOWAIT);
		xa_clear_mark(&r->pages, idx, COWSNAP_MARK_DIRTY);
		if (!old) {
			atomic_long_inc(&r->nr_pages);
			cowsnap_live_filled(r, idx);
		}
	} else {
		xa_erase(&r->pages, idx);
		atomic_long_dec(&r->nr_pages);
	}
	if (old) {
		cowsnap_page_disown(old);
		unlock_page(old);
		put_page(old);
	}
}

/* Restore the base snapshot @s: only entries marked dirty differ. */
static unsigned long cowsnap_restore_dirty(struct cowsnap_region *r,
					   struct cowsnap_snap *s)
{
	pgoff_t zs = 0, ze = 0;
	unsigned long idx, n = 0;
	struct page *old;

	xa_for_each_marked(&r->pages, idx, old, COWSNAP_MARK_DIRTY) {
		struct page *new = xa_load(&s->pages, idx);

		if (new != old) {
			cowsnap_live_replace(r, idx, old, new);
			cowsnap_unmap_run(r, &zs, &ze, idx);
			n++;
		} else {
			xa_clear_mark(&r->pages, idx, COWSNAP_MARK_DIRTY);
		}
		cond_resched();
	}
	cowsnap_unmap_run(r, &zs, &ze, ULONG_MAX);
	return n;
}

/* Restore any snapshot @s by comparing every entry; -ENOMEM changes nothing. */
static long cowsnap_restore_walk(struct cowsnap_region *r,
				 struct cowsnap_snap *s)
{
	pgoff_t zs = 0, ze = 0;
	unsigned long idx, n = 0;
	struct page *page, *new;
	int err = 0;

	/* Reserve the slots that will be filled, so the swaps cannot fail. */
	xa_for_each(&s->pages, idx, page) {
		if (!xa_load(&r->pages, idx)) {
			err = xa_reserve(&r->pages, idx, GFP_KERNEL_ACCOUNT);
			if (err)
				break;
		}
	}
	if (err) {
		xa_for_each(&s->pages, idx, page)
			xa_release(&r->pages, idx);
		return err;
	}
	xa_for_each(&r->pages, idx, page) {
		new = xa_load(&s->pages, idx);
		if (new != page) {
			cowsnap_live_replace(r, idx, page, new);
			cowsnap_unmap_run(r, &zs, &ze, idx);
			n++;
		} else {
			xa_clear_mark(&r->pages, idx, COWSNAP_MARK_DIRTY);
		}
		if (!(idx & 1023))
			cond_resched();
	}
	/* Reserved slots read as holes; xa_for_each() above skipped them. */
	xa_for_each(&s->pages, idx, new) {
		if (!xa_load(&r->pages, idx)) {
			cowsnap_live_replace(r, idx, NULL, new);
			cowsnap_unmap_run(r, &zs, &ze, idx);
			n++;
		}
	}
	cowsnap_unmap_run(r, &zs, &ze, ULONG_MAX);
	return n;
}

long cowsnap_ioc_restore(struct cowsnap_region *r, void __user *argp)
{
	struct cowsnap_restore arg;
	struct cowsnap_snap *s;
	long n;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || arg.reserved)
		return -EINVAL;
	/* Fail a read-only argument now, not after restoring. */
	if (copy_to_user(argp, &arg, sizeof(arg)))
		return -EFAULT;
	mutex_lock(&r->lock);
	s = cowsnap_snap_find(r, arg.id);
	if (!s) {
		n = -ENOENT;
	} else if (arg.expect_newest &&
		   arg.expect_newest != cowsnap_newest_id(r)) {
		n = -EXDEV;
	} else {
		bool walk = r->base_id != s->id;

		down_write(&r->fault_sem);
		if (walk)
			n = cowsnap_restore_walk(r, s);
		else
			n = cowsnap_restore_dirty(r, s);
		trace_cowsnap_restore(r->name, s->id, n, walk);
		if (n >= 0)
			r->base_id = s->id;
		up_write(&r->fault_sem);
	}
	mutex_unlock(&r->lock);
	if (n < 0)
		return n;
	cowsnap_count(&cowsnap_stats.restores, 1);
	cowsnap_count(&cowsnap_stats.pages_restored, n);
	arg.pages_restored = n;
	return copy_to_user(argp, &arg, sizeof(arg)) ? -EFAULT : 0;
}

/* Next index >= @idx present in @xa, or ULONG_MAX; *@page gets its entry. */
static unsigned long cowsnap_next(struct xarray *xa, unsigned long idx,
				  struct page **page)
{
	*page = xa_find(xa, &idx, ULONG_MAX, XA_PRESENT);
	return *page ? idx : ULONG_MAX;
}

/*
 * Extents where @a and @b hold different pages, from @idx on, into @ext
 * (at most @cap).  Returns the count; *@next is where to resume or 0.
 */
static u32 cowsnap_diff_walk(struct xarray *a, struct xarray *b,
			     unsigned long idx, unsigned long end,
			     struct cowsnap_extent *ext, u32 cap, u64 *next)
{
	struct page *pa, *pb;
	unsigned long ia, ib;
	u32 n = 0;

	ia = cowsnap_next(a, idx, &pa);
	ib = cowsnap_next(b, idx, &pb);
	*next = 0;
	for (;;) {
		unsigned long i = min(ia, ib);
		struct page *x = i == ia ? pa : NULL;
		struct page *y = i == ib ? pb : NULL;

		if (i >= end)
			break;
		if (x != y) {
			if (n && ext[n - 1].start + ext[n - 1].count == i) {
				ext[n - 1].count++;
			} else {
				if (n == cap) {
					*next = i;
					break;
				}
				ext[n].start = i;
				ext[n].count = 1;
				n++;
			}
		}
		if (i == ia)
			ia = cowsnap_next(a, i + 1, &pa);
		if (i == ib)
			ib = cowsnap_next(b, i + 1, &pb);
		if (!(i & 1023))
			cond_resched();
	}
	return n;
}

long cowsnap_ioc_diff(struct cowsnap_region *r, void __user *argp)
{
	struct cowsnap_snap *from = NULL, *to = NULL;
	struct cowsnap_extent *ext;
	struct cowsnap_diff arg;
	u32 n = 0;
	u64 next;
	int err = 0;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || !arg.count)
		return -EINVAL;
	ext = kvcalloc(COWSNAP_DIFF_BATCH, sizeof(*ext), GFP_KERNEL);
	if (!ext)
		return -ENOMEM;
	mutex_lock(&r->lock);
	if (arg.from)
		from = cowsnap_snap_find(r, arg.from);
	if (arg.to)
		to = cowsnap_snap_find(r, arg.to);
	if ((arg.from && !from) || (arg.to && !to))
		err = -ENOENT;
	else if (arg.start < r->npages)
		n = cowsnap_diff_walk(from ? &from->pages : &r->pages,
				      to ? &to->pages : &r->pages, arg.start,
				      r->npages, ext,
				      min_t(u32, arg.count, COWSNAP_DIFF_BATCH),
				      &next);
	else
		next = 0;
	mutex_unlock(&r->lock);
	/* Copy out with no lock held: the buffer may be a cowsnap mapping. */
	if (!err && copy_to_user(u64_to_user_ptr(arg.extents), ext,
				 n * sizeof(*ext)))
		err = -EFAULT;
	kvfree(ext);
	if (err)
		return err;
	arg.count = n;
	arg.next = next;
	return copy_to_user(argp, &arg, sizeof(arg)) ? -EFAULT : 0;
}

long cowsnap_ioc_clone(struct cowsnap_region *r, void __user *argp)
{
	struct cowsnap_region *nr;
	struct cowsnap_clone arg;
	struct cowsnap_snap *s;
	struct page *page;
	unsigned long idx;
	int err;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || arg.reserved || (arg.mode & ~0777))
		return -EINVAL;
	err = cowsnap_name_check(arg.name, false);
	if (err)
		return err;
	nr = cowsnap_region_find(arg.name);
	if (nr) {
		cowsnap_region_put(nr);
		return -EEXIST;
	}
	s = cowsnap_snap_get(r, arg.id);
	if (!s)
		return -ENOENT;

	nr = cowsnap_region_alloc(arg.name, r->size, arg.mode);
	if (IS_ERR(nr)) {
		cowsnap_snap_put(s);
		return PTR_ERR(nr);
	}
	xa_for_each(&s->pages, idx, page) {
		lock_page(page);
		cowsnap_page_own(page);
		unlock_page(page);
		err = xa_insert(&nr->pages, idx, page, GFP_KERNEL_ACCOUNT);
		if (err) {
			cowsnap_page_release(page);
			break;
		}
		atomic_long_inc(&nr->nr_pages);
		if (!(idx & 1023))
			cond_resched();
	}
	cowsnap_snap_put(s);
	if (!err)
		err = cowsnap_region_publish(nr);
	cowsnap_region_put(nr);	/* the name table holds it now, if published */
	if (!err)
		cowsnap_count(&cowsnap_stats.clones, 1);
	return err;
}

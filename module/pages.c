// SPDX-License-Identifier: GPL-2.0
/*
 * Page ownership and the live page store.
 *
 * A cowsnap page is a plain order-0 page that no page cache or LRU knows.
 * Its owners are the xarray entries that point at it: one live view entry
 * and any number of snapshot entries, possibly of several regions (clones).
 * page->private counts them, under the page lock; each owner also holds one
 * page reference.  A live page with one owner is written in place; one with
 * more is copied on its first write (cowsnap_live_cow()).  Mappings and GUP
 * hold their own references, so a page leaves memory only when its last
 * owner, mapping and pin are gone.
 *
 * A read fault on a hole maps cowsnap_zero_page, read-only, so reads
 * allocate nothing.  Its page lock orders such a fault against the fill of
 * that hole: the fault re-checks the hole under it, the fill zaps the
 * index under it (cowsnap_live_fill()).
 *
 * Locking: see cowsnap.h.  Lookups are lockless (RCU, then a reference,
 * then a re-check of the entry); changes to a live entry happen with the
 * old page locked and fault_sem held (read for faults, write for restore).
 */
#include <linux/highmem.h>
#include <linux/pagemap.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>
#include "cowsnap.h"
#include "cowsnap_trace.h"

struct page *cowsnap_zero_page;

/* Allocate a page with one owner, charged to the caller's memcg. */
struct page *cowsnap_page_alloc(gfp_t extra)
{
	struct page *page;

	if (atomic_long_inc_return(&cowsnap_stats.pages_allocated) >
	    cowsnap_max_pages)
		goto fail;
	/* May fail rather than invoke the OOM killer: the fault gets SIGBUS. */
	page = alloc_page(GFP_HIGHUSER | __GFP_ACCOUNT | __GFP_RETRY_MAYFAIL |
			  __GFP_NOWARN | extra);
	if (!page)
		goto fail;
	set_page_private(page, 1);
	return page;
fail:
	atomic_long_dec(&cowsnap_stats.pages_allocated);
	cowsnap_count(&cowsnap_stats.alloc_failures, 1);
	return NULL;
}

/* Add an owner to @page; caller holds the page lock. */
void cowsnap_page_own(struct page *page)
{
	unsigned long n = page_private(page);

	set_page_private(page, n + 1);
	get_page(page);
	if (n == 1)
		atomic_long_inc(&cowsnap_stats.pages_shared);
}

/*
 * Drop an owner of @page; caller holds the page lock and must put_page()
 * the owner's reference after unlocking it.
 */
void cowsnap_page_disown(struct page *page)
{
	unsigned long n = page_private(page);

	set_page_private(page, n - 1);
	if (n == 2)
		atomic_long_dec(&cowsnap_stats.pages_shared);
	else if (n == 1)
		atomic_long_dec(&cowsnap_stats.pages_allocated);
}

/* Drop an owner of @page and its reference.  May sleep. */
void cowsnap_page_release(struct page *page)
{
	lock_page(page);
	cowsnap_page_disown(page);
	unlock_page(page);
	put_page(page);
}

/* Release every page of @xa and empty it; nobody else may use it. */
void cowsnap_pages_release(struct xarray *xa)
{
	struct page *page;
	unsigned long idx;

	xa_for_each(xa, idx, page) {
		cowsnap_page_release(page);
		cond_resched();
	}
	xa_destroy(xa);
}

/* Referenced page at @idx of @xa, or NULL.  Lockless. */
struct page *cowsnap_page_get(struct xarray *xa, pgoff_t idx)
{
	struct page *page;

	rcu_read_lock();
repeat:
	page = xa_load(xa, idx);
	if (page) {
		if (!get_page_unless_zero(page))
			goto repeat;
		/* The page may have been freed and reused before our get. */
		if (unlikely(xa_load(xa, idx) != page)) {
			put_page(page);
			goto repeat;
		}
	}
	rcu_read_unlock();
	return page;
}

/*
 * The live page at @idx, referenced and locked while it is still the live
 * entry, or NULL for a hole.  May sleep.
 */
struct page *cowsnap_live_get_locked(struct cowsnap_region *r, pgoff_t idx)
{
	struct page *page;

	for (;;) {
		page = cowsnap_page_get(&r->pages, idx);
		if (!page)
			return NULL;
		lock_page(page);
		if (likely(xa_load(&r->pages, idx) == page))
			return page;
		unlock_page(page);
		put_page(page);
	}
}

/*
 * Hole @idx just got a page: zap the zero page a read fault may have mapped
 * there.  Under the zero page's lock, so a read fault that saw the hole
 * before the store has installed its PTE by then.
 */
void cowsnap_live_filled(struct cowsnap_region *r, pgoff_t idx)
{
	/* Pairs with the barrier in cowsnap_live_get_for_read(). */
	smp_mb();
	if (READ_ONCE(r->zero_mapped)) {
		lock_page(cowsnap_zero_page);
		unmap_mapping_pages(r->inode->i_mapping, idx, 1, false);
		unlock_page(cowsnap_zero_page);
	}
}

/*
 * Fill hole @idx with a zeroed page; return it referenced and locked,
 * ERR_PTR(-EEXIST) if the hole was filled meanwhile, or ERR_PTR(-ENOMEM).
 * Caller holds fault_sem for read.
 */
static struct page *cowsnap_live_fill(struct cowsnap_region *r, pgoff_t idx)
{
	struct page *page = cowsnap_page_alloc(__GFP_ZERO);
	int err;

	if (!page)
		return ERR_PTR(-ENOMEM);
	__folio_set_locked(page_folio(page));
	err = xa_insert(&r->pages, idx, page, GFP_KERNEL_ACCOUNT |
			__GFP_RETRY_MAYFAIL | __GFP_NOWARN);
	if (err) {
		__folio_clear_locked(page_folio(page));
		cowsnap_page_disown(page);
		put_page(page);
		if (err == -EBUSY)
			return ERR_PTR(-EEXIST);
		cowsnap_count(&cowsnap_stats.alloc_failures, 1);
		return ERR_PTR(err);
	}
	xa_set_mark(&r->pages, idx, COWSNAP_MARK_DIRTY);
	atomic_long_inc(&r->nr_pages);
	get_page(page);
	cowsnap_live_filled(r, idx);
	return page;
}

/*
 * Every PTE of the zero page holds a reference (it is a normal page, not
 * the kernel's special zero PFN): stop handing it out long before the
 * count could overflow; holes are then filled or given a page of their own.
 */
bool cowsnap_zero_page_usable(void)
{
	return page_ref_count(cowsnap_zero_page) < (1 << 30);
}

/*
 * For a read fault: the live page at @idx, or cowsnap_zero_page for a hole,
 * referenced and locked (the zero page while @idx is still a hole); NULL if
 * the zero page is not usable.
 */
struct page *cowsnap_live_get_for_read(struct cowsnap_region *r, pgoff_t idx)
{
	struct page *page;

	for (;;) {
		page = cowsnap_live_get_locked(r, idx);
		if (page)
			return page;
		if (!cowsnap_zero_page_usable())
			return NULL;	/* the caller fills the hole */
		WRITE_ONCE(r->zero_mapped, true);
		/* Pairs with the barrier in cowsnap_live_filled(). */
		smp_mb();
		lock_page(cowsnap_zero_page);
		if (!xa_load(&r->pages, idx)) {
			get_page(cowsnap_zero_page);
			return cowsnap_zero_page;
		}
		unlock_page(cowsnap_zero_page);
	}
}

/*
 * The live page at @idx, referenced and locked, allocating it if @idx is a
 * hole.  Caller holds fault_sem for read.  May sleep.
 */
struct page *cowsnap_live_get_filled(struct cowsnap_region *r, pgoff_t idx)
{
	struct page *page;

	do {
		page = cowsnap_live_get_locked(r, idx);
		if (page)
			return page;
		page = cowsnap_live_fill(r, idx);
	} while (page == ERR_PTR(-EEXIST));
	return page;
}

/*
 * Replace live page @old at @idx, locked, current and shared, by a private
 * copy; return the copy referenced and locked.  Every mapping of @idx in
 * every process is zapped so that all mappers fault the copy in.  @old
 * stays locked and referenced by the caller.  Caller holds fault_sem for
 * read.
 */
struct page *cowsnap_live_cow(struct cowsnap_region *r, pgoff_t idx,
			      struct page *old)
{
	struct page *new = cowsnap_page_alloc(0);

	if (!new)
		return ERR_PTR(-ENOMEM);
	copy_highpage(new, old);
	__folio_set_locked(page_folio(new));
	get_page(new);
	/* Cannot fail: the entry exists, so no node is allocated. */
	xa_store(&r->pages, idx, new, GFP_NOWAIT);
	xa_set_mark(&r->pages, idx, COWSNAP_MARK_DIRTY);
	cowsnap_page_disown(old);
	unmap_mapping_pages(r->inode->i_mapping, idx, 1, false);
	put_page(old);		/* the live view's; the caller holds its own */
	cowsnap_count(&cowsnap_stats.cow_faults, 1);
	cowsnap_count(&cowsnap_stats.bytes_copied, PAGE_SIZE);
	trace_cowsnap_cow(r->name, idx);
	return new;
}

/*
 * The live page at @idx ready for a store: referenced, locked and owned by
 * the live view alone.  Caller holds fault_sem for read.  May sleep.
 */
struct page *cowsnap_live_get_writable(struct cowsnap_region *r, pgoff_t idx)
{
	struct page *page = cowsnap_live_get_filled(r, idx);
	struct page *new;

	if (IS_ERR(page) || page_private(page) == 1)
		return page;
	new = cowsnap_live_cow(r, idx, page);
	unlock_page(page);
	put_page(page);
	return new;
}

/*
 * read() of a page store of @size bytes: holes read as zeros.  Takes no
 * lock while copying, so the destination may be a cowsnap mapping.
 */
ssize_t cowsnap_pages_read(struct xarray *xa, u64 size, char __user *buf,
			   size_t len, loff_t *ppos)
{
	loff_t pos = *ppos;
	size_t done = 0;
	ssize_t err = 0;

	if (pos < 0)
		return -EINVAL;
	if (pos >= size)
		return 0;
	len = min_t(u64, len, size - pos);
	while (done < len) {
		size_t off = offset_in_page(pos);
		size_t n = min_t(size_t, PAGE_SIZE - off, len - done);
		struct page *page = cowsnap_page_get(xa, pos >> PAGE_SHIFT);
		size_t left;

		if (page) {
			void *kaddr = kmap_local_page(page);

			left = copy_to_user(buf + done, kaddr + off, n);
			kunmap_local(kaddr);
			put_page(page);
		} else {
			left = clear_user(buf + done, n);
		}
		done += n - left;
		pos += n - left;
		if (left) {
			err = -EFAULT;
			break;
		}
		if (fatal_signal_pending(current)) {
			err = -EINTR;
			break;
		}
		cond_resched();
	}
	if (!done)
		return err;
	*ppos = pos;
	return done;
}

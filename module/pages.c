// SPDX-License-Identifier: GPL-2.0
/*
 * The page budget, page owners, and the live page store.
 *
 * A cowsnap page is a plain order-0 page that no page cache or LRU knows.
 * Its owners are the entries that point at it: live entries and history
 * records (history.c), of any region (clones share pages).  page->private
 * counts them under the page lock, and each owner holds a page reference.
 * Mappings and GUP hold their own references, so a page leaves memory only
 * when its last owner, mapping and pin are gone.  A page with more than one
 * owner is never written: the writer copies it.
 *
 * A live page changed since the region's newest snapshot ("fresh") is
 * written in place.  An older one belongs to that snapshot too: the first
 * store gives the snapshot's record a copy and goes on writing the live
 * page, so no mapping changes (cowsnap_live_keep()), unless something else
 * references the page; then, as for a page with other owners, the live
 * view moves to the copy and every mapping of the index is zapped.
 *
 * The per-region counters INFO and /proc/cowsnap report depend only on the
 * region's own entries, so that no region's work changes another's
 * counters: a live page is "shared" while a snapshot of the region holds
 * it (it is not fresh, or a record holds the same page after a restore:
 * COWSNAP_MARK_DUP), or while it is what a clone inherited from its origin
 * and has not been written (COWSNAP_MARK_INHERITED).
 *
 * A read fault on a hole maps the region's own zero page, read-only, so
 * reads allocate nothing.  Its page lock orders such a fault against the
 * fill of that hole: the fault re-checks the hole under it, the fill zaps
 * the index under it (cowsnap_live_filled()).  It is per region, so no
 * other user can make that lock's hold time long.
 *
 * Locking: see cowsnap.h.  Lookups are lockless (RCU, then a reference,
 * then a re-check of the entry); changes to a live entry happen with the
 * old page locked and fault_sem held (read for stores, write otherwise).
 */
#include <linux/highmem.h>
#include <linux/pagemap.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "cowsnap.h"
#include "cowsnap_trace.h"

/* Holes of snapshot fds map this one; never writable there. */
struct page *cowsnap_zero_page;

/*
 * Charge @pages pages and @bytes bytes of metadata to the budget; false
 * (and nothing charged) if that would exceed max_pages.
 */
bool cowsnap_budget_charge(long pages, long bytes)
{
	long p = atomic_long_add_return(pages, &cowsnap_stats.pages_allocated);
	long m = atomic_long_add_return(bytes, &cowsnap_stats.meta_bytes);

	if (p + DIV_ROUND_UP(m, PAGE_SIZE) <= cowsnap_max_pages)
		return true;
	cowsnap_budget_uncharge(pages, bytes);
	cowsnap_count(&cowsnap_stats.alloc_failures, 1);
	return false;
}

void cowsnap_budget_uncharge(long pages, long bytes)
{
	atomic_long_sub(pages, &cowsnap_stats.pages_allocated);
	atomic_long_sub(bytes, &cowsnap_stats.meta_bytes);
}

/*
 * A new page with no owner yet, zeroed or a copy of @copy_of, charged to
 * the budget and the caller's memcg; NULL on failure (never the OOM
 * killer: a fault gets SIGBUS).  Give it to cowsnap_page_own() or free it
 * with cowsnap_page_free_unowned().
 */
struct page *cowsnap_page_alloc(struct page *copy_of)
{
	struct page *page;

	if (!cowsnap_budget_charge(1, 0))
		return NULL;
	page = alloc_page(GFP_HIGHUSER | __GFP_ACCOUNT | __GFP_RETRY_MAYFAIL |
			  __GFP_NOWARN | (copy_of ? 0 : __GFP_ZERO));
	if (!page) {
		cowsnap_budget_uncharge(1, 0);
		cowsnap_count(&cowsnap_stats.alloc_failures, 1);
		return NULL;
	}
	if (copy_of) {
		copy_highpage(page, copy_of);
		cowsnap_count(&cowsnap_stats.bytes_copied, PAGE_SIZE);
	}
	set_page_private(page, 0);
	return page;
}

/* Free a page from cowsnap_page_alloc() that never got an owner. */
void cowsnap_page_free_unowned(struct page *page)
{
	cowsnap_budget_uncharge(1, 0);
	put_page(page);
}

/*
 * Add an owner to @page (locked, or new and unseen); it takes a reference.
 * A new page's allocation reference becomes its first owner's.
 */
void cowsnap_page_own(struct page *page)
{
	unsigned long n = page_private(page);

	set_page_private(page, n + 1);
	if (n)
		get_page(page);
	if (n == 1)
		atomic_long_inc(&cowsnap_stats.pages_shared);
}

/*
 * Drop an owner of @page (locked).  The caller must put_page() the owner's
 * reference after unlocking the page.
 */
void cowsnap_page_disown(struct page *page)
{
	unsigned long n = page_private(page);

	set_page_private(page, n - 1);
	if (n == 2)
		atomic_long_dec(&cowsnap_stats.pages_shared);
	else if (n == 1)
		cowsnap_budget_uncharge(1, 0);
}

/* Whether live entry @idx changed since @r's newest snapshot (or none). */
bool cowsnap_live_fresh(struct cowsnap_region *r, pgoff_t idx)
{
	struct cowsnap_rec *head;

	if (!r->newest)
		return true;
	head = xa_load(&r->hist, idx);
	return head && head->snap == r->newest;
}

/*
 * Add (@sign 1) or take back (-1) live entry @idx's share of the region's
 * counters: a page neither inherited by a clone nor also held by a record
 * is "plain", and a plain page changed since the newest snapshot is held
 * by nothing but the live view.  Callers take a page's share back before
 * they change its entry, marks or freshness, and add it again after.
 */
void cowsnap_live_acct(struct cowsnap_region *r, pgoff_t idx, long sign)
{
	if (!xa_load(&r->pages, idx) ||
	    xa_get_mark(&r->pages, idx, COWSNAP_MARK_INHERITED) ||
	    xa_get_mark(&r->pages, idx, COWSNAP_MARK_DUP))
		return;
	atomic_long_add(sign, &r->nr_plain);
	if (r->newest && cowsnap_live_fresh(r, idx))
		atomic_long_add(sign, &r->nr_unshared);
}

/* Live pages of @r held by a snapshot of it or inherited by a clone. */
unsigned long cowsnap_live_shared(struct cowsnap_region *r)
{
	long solo = r->newest ? atomic_long_read(&r->nr_unshared) :
				atomic_long_read(&r->nr_plain);

	return atomic_long_read(&r->nr_pages) - solo;
}

/*
 * Recompute which entries of @r at @idx share @page: records and the live
 * entry holding the same page each count the others (a restore of an older
 * snapshot puts a record's page back in the live view).  Caller holds
 * fault_sem and @page's lock.  O(records at @idx).
 */
void cowsnap_idx_dups(struct cowsnap_region *r, pgoff_t idx,
		      struct page *page)
{
	bool live = xa_load(&r->pages, idx) == page;
	struct cowsnap_rec *e;
	unsigned int n = live;
	bool dup;

	for (e = xa_load(&r->hist, idx); e;
	     e = rcu_dereference_protected(e->older, true))
		n += e->page == page;
	dup = n > 1;
	for (e = xa_load(&r->hist, idx); e;
	     e = rcu_dereference_protected(e->older, true)) {
		if (e->page != page || e->dup == dup)
			continue;
		e->dup = dup;
		cowsnap_rec_recount(e);
	}
	if (live && xa_get_mark(&r->pages, idx, COWSNAP_MARK_DUP) != dup) {
		cowsnap_live_acct(r, idx, -1);
		if (dup)
			xa_set_mark(&r->pages, idx, COWSNAP_MARK_DUP);
		else
			xa_clear_mark(&r->pages, idx, COWSNAP_MARK_DUP);
		cowsnap_live_acct(r, idx, 1);
	}
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

/* Zap @nr live indexes from @idx in every mapping of @r, any handle. */
void cowsnap_live_zap(struct cowsnap_region *r, pgoff_t idx, pgoff_t nr)
{
	unmap_mapping_pages(r->inode->i_mapping, idx, nr, false);
	unmap_mapping_pages(r->ro_inode->i_mapping, idx, nr, false);
}

/*
 * Every PTE of the zero page holds a reference (it is a normal page, not
 * the kernel's special zero PFN): stop handing it out long before the
 * count could overflow; holes are then filled or given a page of their own.
 */
bool cowsnap_zero_page_usable(struct page *zero)
{
	return page_ref_count(zero) < (1 << 30);
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
		lock_page(r->zero_page);
		cowsnap_live_zap(r, idx, 1);
		unlock_page(r->zero_page);
	}
}

/*
 * For a read fault: the live page at @idx, or @r's zero page for a hole,
 * referenced and locked (the zero page while @idx is still a hole); NULL if
 * the zero page cannot be used.
 */
struct page *cowsnap_live_get_for_read(struct cowsnap_region *r, pgoff_t idx)
{
	struct page *page, *zero;

	for (;;) {
		page = cowsnap_live_get_locked(r, idx);
		if (page)
			return page;
		zero = r->zero_page;
		if (!cowsnap_zero_page_usable(zero))
			return NULL;	/* the caller fills the hole */
		WRITE_ONCE(r->zero_mapped, true);
		/* Pairs with the barrier in cowsnap_live_filled(). */
		smp_mb();
		lock_page(zero);
		if (!xa_load(&r->pages, idx)) {
			get_page(zero);
			return zero;
		}
		unlock_page(zero);
	}
}

/*
 * Record the state at @idx (@page, NULL for a hole) for the newest
 * snapshot before it changes.  @e is a record from cowsnap_rec_alloc(),
 * used or dropped here.  @page is locked; its live ownership passes to the
 * record.  Only a racing hole fill can have recorded @idx already
 * (-EEXIST), or taken the reserved slot with it (-ENOMEM).  A page with
 * other owners needs cowsnap_idx_dups() once the live entry changed.
 */
static int cowsnap_live_record(struct cowsnap_region *r, pgoff_t idx,
			       struct page *page, struct cowsnap_rec *e)
{
	int err = cowsnap_rec_push(r, e, idx, page);

	if (err) {
		WARN_ON_ONCE(page);
		cowsnap_rec_drop(r, e, idx);
		return err;
	}
	cowsnap_rec_recount(e);
	return 0;
}

/*
 * Fill hole @idx with a zeroed page; return it referenced and locked,
 * ERR_PTR(-EEXIST) if the hole was filled meanwhile, or ERR_PTR(-ENOMEM).
 * Caller holds fault_sem for read.
 */
static struct page *cowsnap_live_fill(struct cowsnap_region *r, pgoff_t idx)
{
	struct cowsnap_rec *e = NULL;
	struct page *page;
	int err;

	if (!cowsnap_live_fresh(r, idx)) {
		e = cowsnap_rec_alloc(r, idx);
		if (!e)
			return ERR_PTR(-ENOMEM);
	}
	page = cowsnap_page_alloc(NULL);
	if (!page) {
		if (e)
			cowsnap_rec_drop(r, e, idx);
		return ERR_PTR(-ENOMEM);
	}
	/* The hole goes to the snapshot before the page is visible. */
	if (e) {
		err = cowsnap_live_record(r, idx, NULL, e);
		if (err && err != -EEXIST) {
			cowsnap_page_free_unowned(page);
			return ERR_PTR(err);
		}
	}
	__folio_set_locked(page_folio(page));
	err = xa_insert(&r->pages, idx, page, COWSNAP_GFP);
	if (err) {
		__folio_clear_locked(page_folio(page));
		cowsnap_page_free_unowned(page);
		if (err == -EBUSY)
			return ERR_PTR(-EEXIST);
		cowsnap_count(&cowsnap_stats.alloc_failures, 1);
		return ERR_PTR(err);
	}
	atomic_long_inc(&r->nr_pages);
	cowsnap_page_own(page);
	cowsnap_live_acct(r, idx, 1);
	get_page(page);
	cowsnap_live_filled(r, idx);
	return page;
}

/*
 * Point live entry @idx from @old (NULL for a hole) at @new (NULL: make
 * it a hole), whose live ownership the caller already moved.  Zaps @idx
 * everywhere.  Caller holds fault_sem and took @idx's share of the
 * counters back (cowsnap_live_acct()), to add the new one after.
 */
void cowsnap_live_set(struct cowsnap_region *r, pgoff_t idx,
		      struct page *old, struct page *new)
{
	if (new) {
		/* Over an entry or a reservation: allocates nothing. */
		xa_store(&r->pages, idx, new, GFP_NOWAIT);
		if (!old)
			atomic_long_inc(&r->nr_pages);
	} else {
		xa_erase(&r->pages, idx);
		atomic_long_dec(&r->nr_pages);
	}
	xa_clear_mark(&r->pages, idx, COWSNAP_MARK_WRITABLE);
	xa_clear_mark(&r->pages, idx, COWSNAP_MARK_INHERITED);
	xa_clear_mark(&r->pages, idx, COWSNAP_MARK_DUP);
	xa_erase(&r->pinned, idx);
	if (!old && new)
		cowsnap_live_filled(r, idx);
	else
		cowsnap_live_zap(r, idx, 1);
}

/* Whether something beyond owners, PTEs and @extra references holds @page. */
static bool cowsnap_page_referenced(struct page *page, int extra)
{
	return page_count(page) > page_private(page) +
				  cowsnap_mapcount(page) + extra;
}

/*
 * The snapshot record @e takes @copy, a new locked copy of live page @page
 * (locked, one owner, unchanged since the newest snapshot), and the live
 * view keeps @page where every mapping has it, unless something beyond its
 * owner, PTEs and the caller references @page: then it must not change,
 * and false is returned with nothing done.  Snapshot fds' PTEs of @page go
 * first; a reader that took a reference meanwhile re-checks the record
 * after taking it, and if it raced with the push here, the record takes
 * @page after all and the live view the copy (@e is then pushed).
 */
static bool cowsnap_live_keep(struct cowsnap_region *r, pgoff_t idx,
			      struct page *page, struct page *copy,
			      struct cowsnap_rec *e)
{
	cowsnap_snap_zap_fds(r, idx);
	if (cowsnap_page_referenced(page, 1))
		return false;
	cowsnap_live_acct(r, idx, -1);
	if (WARN_ON_ONCE(cowsnap_rec_push(r, e, idx, copy))) {
		cowsnap_live_acct(r, idx, 1);
		return false;	/* @page is locked and unfresh: cannot be */
	}
	cowsnap_page_own(copy);
	/* Pairs with the reader's get_page() before its re-check. */
	smp_mb();
	if (!cowsnap_page_referenced(page, 1)) {
		cowsnap_rec_recount(e);
		cowsnap_live_acct(r, idx, 1);
		return true;
	}
	/* The record and the live view trade pages: no owner changes. */
	WRITE_ONCE(e->page, page);
	cowsnap_rec_recount(e);
	cowsnap_live_set(r, idx, page, copy);
	cowsnap_live_acct(r, idx, 1);
	return false;
}

/*
 * Live page @page at @idx (locked, current, referenced by the caller) is
 * about to be written; return the page to write: @page itself, or a copy
 * that replaced it in the live view, locked and with a reference for the
 * caller (who still unlocks and puts @page), or ERR_PTR(-ENOMEM).
 * @mapped: the caller maps it writable, so the next snapshot must
 * write-protect it.  Caller holds fault_sem for read.
 */
static struct page *cowsnap_live_prepare_write(struct cowsnap_region *r,
					       pgoff_t idx, struct page *page,
					       bool mapped)
{
	bool fresh = cowsnap_live_fresh(r, idx);
	struct cowsnap_rec *e = NULL;
	struct page *copy;

	if (fresh && page_private(page) == 1)
		goto in_place;
	if (!fresh) {
		e = cowsnap_rec_alloc(r, idx);
		if (!e)
			return ERR_PTR(-ENOMEM);
	}
	copy = cowsnap_page_alloc(page);
	if (!copy) {
		if (e)
			cowsnap_rec_drop(r, e, idx);
		return ERR_PTR(-ENOMEM);
	}
	__folio_set_locked(page_folio(copy));
	cowsnap_count(&cowsnap_stats.cow_faults, 1);
	trace_cowsnap_cow(r->name, idx);
	if (e && page_private(page) == 1) {
		if (cowsnap_live_keep(r, idx, page, copy, e)) {
			/*
			 * The record made @copy visible: a snapshot reader
			 * may be waiting on its lock, so unlock atomically.
			 */
			unlock_page(copy);
			goto in_place;
		}
		if (e->snap)		/* traded: the live view moved */
			goto moved;
	}
	/* The live view moves to the copy; @page to the record, or away. */
	cowsnap_live_acct(r, idx, -1);
	if (e) {
		if (cowsnap_live_record(r, idx, page, e)) {
			cowsnap_live_acct(r, idx, 1);
			__folio_clear_locked(page_folio(copy));
			cowsnap_page_free_unowned(copy);
			return ERR_PTR(-ENOMEM);
		}
	} else {
		cowsnap_page_disown(page);
		put_page(page);	/* the live owner's; the caller has one */
	}
	cowsnap_page_own(copy);
	cowsnap_live_set(r, idx, page, copy);
	cowsnap_live_acct(r, idx, 1);
	if (page_private(page) > !!e)
		cowsnap_idx_dups(r, idx, page);
moved:
	get_page(copy);		/* the caller's */
	page = copy;
in_place:
	if (xa_get_mark(&r->pages, idx, COWSNAP_MARK_INHERITED)) {
		/* Written: no longer what the clone inherited. */
		cowsnap_live_acct(r, idx, -1);
		xa_clear_mark(&r->pages, idx, COWSNAP_MARK_INHERITED);
		cowsnap_live_acct(r, idx, 1);
	}
	if (mapped)
		xa_set_mark(&r->pages, idx, COWSNAP_MARK_WRITABLE);
	return page;
}

/*
 * The live page at @idx ready for a store, referenced and locked, filling a
 * hole or copying as cowsnap_live_prepare_write() decides.  Caller holds
 * fault_sem for read.  May sleep.
 */
struct page *cowsnap_live_get_writable(struct cowsnap_region *r, pgoff_t idx,
				       bool mapped)
{
	struct page *page, *new;

	for (;;) {
		page = cowsnap_live_get_locked(r, idx);
		if (page)
			break;
		page = cowsnap_live_fill(r, idx);
		if (page == ERR_PTR(-EEXIST))
			continue;
		if (!IS_ERR(page) && mapped)
			xa_set_mark(&r->pages, idx, COWSNAP_MARK_WRITABLE);
		return page;
	}
	new = cowsnap_live_prepare_write(r, idx, page, mapped);
	if (new != page) {
		unlock_page(page);
		put_page(page);
	}
	return new;
}

/*
 * The live page at @idx, referenced and locked, filling a hole.  Caller
 * holds fault_sem for read.  May sleep.
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

/* As cowsnap_live_get_writable(), for a page the caller holds locked. */
struct page *cowsnap_live_mkwrite(struct cowsnap_region *r, pgoff_t idx,
				  struct page *page)
{
	return cowsnap_live_prepare_write(r, idx, page, true);
}

/*
 * read() of the live view (@sid 0) or of snapshot @sid of @r, @size bytes:
 * holes read as zeros.  Takes no lock while copying, so the destination may
 * be a cowsnap mapping.
 */
ssize_t cowsnap_read_pages(struct cowsnap_region *r, u64 sid, u64 size,
			   char __user *buf, size_t len, loff_t *ppos)
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
		pgoff_t idx = pos >> PAGE_SHIFT;
		struct page *page;
		size_t left;

		page = sid ? cowsnap_snap_page_get(r, sid, idx) :
			     cowsnap_page_get(&r->pages, idx);
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

/*
 * The last user of @r is gone: no mapping or handle can reach the live
 * view again.  Live pages a remaining snapshot holds move to the history;
 * the rest are freed.  Caller holds fault_sem for write.
 */
void cowsnap_live_retire(struct cowsnap_region *r)
{
	struct page *page;
	unsigned long idx;

	xa_for_each(&r->pages, idx, page) {
		bool keep = r->newest && !cowsnap_live_fresh(r, idx);

		lock_page(page);
		cowsnap_live_acct(r, idx, -1);
		/* Record first: a lockless snapshot reader never sees a hole. */
		if (keep)
			cowsnap_live_record(r, idx, page,
					    cowsnap_rec_alloc_nofail(r, idx));
		xa_erase(&r->pages, idx);
		if (!keep)
			cowsnap_page_disown(page);
		if (page_private(page) > keep)
			cowsnap_idx_dups(r, idx, page);
		unlock_page(page);
		if (!keep)
			put_page(page);
		cond_resched();
	}
	xa_destroy(&r->pinned);
	atomic_long_set(&r->nr_pages, 0);
}

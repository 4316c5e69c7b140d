// SPDX-License-Identifier: GPL-2.0
/*
 * The history: past states of a region's pages, as ZFS keeps a snapshot
 * as one number plus dead lists.
 *
 * Taking a snapshot records nothing; it only becomes the region's newest.
 * When a live index changes for the first time after the newest snapshot
 * N (a store, a fill, a restore), the state it leaves (a page, or a hole)
 * is pushed as a record onto that index's chain in region->hist, owned by
 * N (cowsnap_rec_push()).  A chain is ordered newest first.  The image of
 * snapshot S at an index is the state of the oldest record owned by S or
 * a newer snapshot, or the live entry if there is none
 * (cowsnap_hist_lookup()).  So a snapshot costs time and memory in what
 * changes after it, not in what it holds.
 *
 * Deleting a snapshot S merges its records into the previous snapshot P:
 * a record P also holds moves to P, the rest are freed
 * (cowsnap_hist_merge()).  A record R is held by P iff P exists and the
 * next older record at its index is owned by a snapshot older than P (or
 * there is none): the states between two records were held by no existing
 * snapshot, so no snapshot lies in such a gap.
 *
 * A record counts in its snapshot's exclusive pages while it holds a page
 * that P does not hold and no other entry of the region holds
 * (cowsnap_rec_recount()); a clone's references are its own, as a ZFS
 * clone's blocks stay charged to its origin snapshot.
 *
 * Locking: xa_lock(&region->hist) guards chains and snapshot record lists
 * against concurrent pushes; stores push under fault_sem read with the live
 * page locked (or, for a hole, before the fill is visible).  Merges, pops
 * and snapshot creation hold fault_sem for write.  Readers walk chains
 * under RCU: records are freed after a grace period.
 */
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include "cowsnap.h"

static struct kmem_cache *cowsnap_rec_cache;

int cowsnap_history_init(void)
{
	cowsnap_rec_cache = KMEM_CACHE(cowsnap_rec, SLAB_ACCOUNT);
	return cowsnap_rec_cache ? 0 : -ENOMEM;
}

void cowsnap_history_exit(void)
{
	rcu_barrier();		/* records still waiting for a grace period */
	kmem_cache_destroy(cowsnap_rec_cache);
}

static struct cowsnap_rec *__cowsnap_rec_alloc(struct cowsnap_region *r,
					       pgoff_t idx, gfp_t gfp,
					       bool force)
{
	struct cowsnap_rec *e;

	if (force)
		atomic_long_add(sizeof(*e), &cowsnap_stats.meta_bytes);
	else if (!cowsnap_budget_charge(0, sizeof(*e)))
		return NULL;
	e = kmem_cache_zalloc(cowsnap_rec_cache, gfp);
	/* The chain slot too, so that pushing @e allocates nothing. */
	if (e && xa_reserve(&r->hist, idx, gfp)) {
		kmem_cache_free(cowsnap_rec_cache, e);
		e = NULL;
	}
	if (!e) {
		cowsnap_budget_uncharge(0, sizeof(*e));
		cowsnap_count(&cowsnap_stats.alloc_failures, 1);
	}
	return e;
}

/*
 * A new record for index @idx of @r, charged to the budget, its chain slot
 * reserved; NULL on failure.  Push it or give it to cowsnap_rec_drop().
 */
struct cowsnap_rec *cowsnap_rec_alloc(struct cowsnap_region *r, pgoff_t idx)
{
	return __cowsnap_rec_alloc(r, idx, COWSNAP_GFP, false);
}

/* For paths that cannot fail (the last close of a region). */
struct cowsnap_rec *cowsnap_rec_alloc_nofail(struct cowsnap_region *r,
					     pgoff_t idx)
{
	return __cowsnap_rec_alloc(r, idx, GFP_KERNEL_ACCOUNT | __GFP_NOFAIL,
				   true);
}

static void cowsnap_rec_free_rcu(struct rcu_head *rcu)
{
	kmem_cache_free(cowsnap_rec_cache,
			container_of(rcu, struct cowsnap_rec, rcu));
}

/*
 * Free @e, unlinked, after concurrent readers.  call_rcu(), not
 * kfree_rcu(): rcu_barrier() at unload must wait for it.
 */
void cowsnap_rec_free(struct cowsnap_rec *e)
{
	cowsnap_budget_uncharge(0, sizeof(*e));
	call_rcu(&e->rcu, cowsnap_rec_free_rcu);
}

/* Free @e, never pushed, and its slot reservation at @idx. */
void cowsnap_rec_drop(struct cowsnap_region *r, struct cowsnap_rec *e,
		      pgoff_t idx)
{
	xa_release(&r->hist, idx);
	cowsnap_budget_uncharge(0, sizeof(*e));
	kmem_cache_free(cowsnap_rec_cache, e);
}

/*
 * Push @e for state @page (NULL: a hole) of @idx onto its chain, owned by
 * the newest snapshot.  -EEXIST (nothing done) if @idx already changed
 * since that snapshot; -ENOMEM only if a racing drop took the reserved
 * slot.  The caller then makes @e an owner of @page.
 */
int cowsnap_rec_push(struct cowsnap_region *r, struct cowsnap_rec *e,
		     pgoff_t idx, struct page *page)
{
	struct cowsnap_snap *n = r->newest;
	XA_STATE(xas, &r->hist, idx);
	struct cowsnap_rec *head;

	do {
		xas_lock(&xas);
		head = xas_load(&xas);
		if (xa_is_zero(head))
			head = NULL;
		if (head && head->snap == n) {
			xas_unlock(&xas);
			return -EEXIST;
		}
		rcu_assign_pointer(e->older, head);
		e->snap = n;
		e->idx = idx;
		e->page = page;
		xas_store(&xas, e);
		if (!xas_error(&xas)) {
			list_add_tail(&e->node, &n->recs);
			n->nr_recs++;
		}
		xas_unlock(&xas);
	} while (xas_nomem(&xas, COWSNAP_GFP));
	if (xas_error(&xas))
		return xas_error(&xas);
	atomic_long_inc(&cowsnap_stats.records);
	return 0;
}

/*
 * The page of snapshot @sid's image at @idx (NULL: a hole), unreferenced.
 * Caller holds rcu_read_lock() or @r's fault_sem.
 */
struct page *cowsnap_hist_lookup(struct cowsnap_region *r, u64 sid,
				 pgoff_t idx)
{
	struct cowsnap_rec *e = xa_load(&r->hist, idx), *hit = NULL;

	while (e && READ_ONCE(e->snap)->id >= sid) {
		hit = e;
		e = rcu_dereference_check(e->older, true);
	}
	return hit ? READ_ONCE(hit->page) : xa_load(&r->pages, idx);
}

/* The page of snapshot @sid at @idx, referenced, or NULL for a hole. */
struct page *cowsnap_snap_page_get(struct cowsnap_region *r, u64 sid,
				   pgoff_t idx)
{
	struct page *page;

	rcu_read_lock();
	for (;;) {
		page = cowsnap_hist_lookup(r, sid, idx);
		if (!page)
			break;
		if (!get_page_unless_zero(page))
			continue;
		/* Pairs with the barrier in cowsnap_live_keep(). */
		smp_mb();
		if (likely(cowsnap_hist_lookup(r, sid, idx) == page))
			break;
		put_page(page);
	}
	rcu_read_unlock();
	return page;
}

static struct cowsnap_snap *cowsnap_snap_prev(struct cowsnap_snap *s)
{
	struct cowsnap_region *r = s->region;

	if (list_is_first(&s->node, &r->snaps))
		return NULL;
	return list_prev_entry(s, node);
}

static struct cowsnap_snap *cowsnap_snap_next(struct cowsnap_snap *s)
{
	struct cowsnap_region *r = s->region;

	if (list_is_last(&s->node, &r->snaps))
		return NULL;
	return list_next_entry(s, node);
}

/* Whether @e's snapshot alone (not the one before it) holds @e's state. */
bool cowsnap_rec_unique(struct cowsnap_rec *e)
{
	struct cowsnap_snap *prev = cowsnap_snap_prev(e->snap);
	struct cowsnap_rec *older = rcu_dereference_protected(e->older, true);

	return !prev || (older && older->snap == prev);
}

/*
 * Bring @e's share of its snapshot's exclusive pages up to date.  Caller
 * holds fault_sem, and for read also the lock of the live page at @e's
 * index (or the hole fill's ordering), which keep @e's chain.
 */
void cowsnap_rec_recount(struct cowsnap_rec *e)
{
	bool want = e->page && !e->dup && cowsnap_rec_unique(e);

	if (want == e->counted)
		return;
	e->counted = want;
	atomic_long_add(want ? 1 : -1, &e->snap->exclusive);
}

/* Take @e's share of its snapshot's exclusive pages back. */
static void cowsnap_rec_uncount(struct cowsnap_rec *e)
{
	if (!e->counted)
		return;
	e->counted = false;
	atomic_long_dec(&e->snap->exclusive);
}

/* Unlink @e from its chain and its snapshot's list; under fault_sem write. */
static void cowsnap_rec_unlink(struct cowsnap_region *r, struct cowsnap_rec *e)
{
	struct cowsnap_rec *older = rcu_dereference_protected(e->older, true);
	XA_STATE(xas, &r->hist, e->idx);
	struct cowsnap_rec *p;

	xas_lock(&xas);
	p = xas_load(&xas);
	if (p == e) {
		/* Replacing or erasing an existing entry allocates nothing. */
		xas_store(&xas, older);
	} else {
		while (rcu_dereference_protected(p->older, true) != e)
			p = rcu_dereference_protected(p->older, true);
		rcu_assign_pointer(p->older, older);
	}
	list_del(&e->node);
	e->snap->nr_recs--;
	xas_unlock(&xas);
	atomic_long_dec(&cowsnap_stats.records);
}

/*
 * Take head record @e (owned by the newest snapshot) off its chain: its
 * index no longer changed since that snapshot.  The caller took care of
 * @e's page ownership and frees @e.  Caller holds fault_sem for write.
 */
void cowsnap_hist_pop(struct cowsnap_region *r, struct cowsnap_rec *e)
{
	cowsnap_rec_uncount(e);
	cowsnap_rec_unlink(r, e);
}

/* Recount region->nr_unshared after the newest snapshot changed. */
static void cowsnap_hist_recount_unshared(struct cowsnap_region *r)
{
	struct cowsnap_rec *e;
	long n = 0;

	if (r->newest)
		/* The newest's records are the heads of changed indexes. */
		list_for_each_entry(e, &r->newest->recs, node)
			if (xa_load(&r->pages, e->idx) &&
			    !xa_get_mark(&r->pages, e->idx,
					 COWSNAP_MARK_INHERITED) &&
			    !xa_get_mark(&r->pages, e->idx, COWSNAP_MARK_DUP))
				n++;
	atomic_long_set(&r->nr_unshared, n);
}

/*
 * Merge snapshot @s (unlisted, no fd left) into the one before it and take
 * it off the region's list.  Caller holds region->lock and fault_sem for
 * write.  O(records of @s and of the snapshot after it).
 */
void cowsnap_hist_merge(struct cowsnap_region *r, struct cowsnap_snap *s)
{
	struct cowsnap_snap *prev = cowsnap_snap_prev(s);
	struct cowsnap_snap *next = cowsnap_snap_next(s);
	struct cowsnap_rec *e, *tmp;
	LIST_HEAD(moved);

	lockdep_assert_held(&r->lock);
	lockdep_assert_held_write(&r->fault_sem);
	list_for_each_entry_safe(e, tmp, &s->recs, node) {
		struct cowsnap_rec *older;
		struct page *page = e->page;

		cowsnap_rec_uncount(e);
		older = rcu_dereference_protected(e->older, true);
		if (prev && (!older || older->snap->id < prev->id)) {
			/* @prev holds this state too: it becomes the owner. */
			xa_lock(&r->hist);
			WRITE_ONCE(e->snap, prev);
			list_move_tail(&e->node, &moved);
			s->nr_recs--;
			prev->nr_recs++;
			xa_unlock(&r->hist);
			continue;
		}
		cowsnap_rec_unlink(r, e);
		if (page) {
			lock_page(page);
			cowsnap_page_disown(page);
			if (page_private(page))
				cowsnap_idx_dups(r, e->idx, page);
			unlock_page(page);
			put_page(page);
		}
		cowsnap_rec_free(e);
		cond_resched();
	}
	/* Moved records now answer to @prev's predecessor. */
	list_for_each_entry(e, &moved, node)
		cowsnap_rec_recount(e);
	xa_lock(&r->hist);
	list_del(&s->node);
	if (prev)
		list_splice_tail(&moved, &prev->recs);
	xa_unlock(&r->hist);
	/* @next's predecessor changed. */
	if (next)
		list_for_each_entry(e, &next->recs, node)
			cowsnap_rec_recount(e);
	if (r->newest == s) {
		r->newest = prev;
		cowsnap_hist_recount_unshared(r);
	}
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Restore, diff and clone.
 *
 * Restore runs with fault_sem held for write: no store fault and no hole
 * fill can run, and a read fault that raced with a change re-checks the
 * entry under the page lock.  The indexes that differ from snapshot S are
 * those with a record owned by S or a newer snapshot (history.c): the
 * oldest such record at an index is S's state there.  Restoring the
 * newest snapshot undoes its records, so it costs the pages changed since
 * it; restoring an older one also costs what changed between them.  Every
 * changed index is zapped in every mapping, so a mapper sees either the
 * old page or the restored one, never a mix.  All allocations happen
 * before the first change: a restore that fails (-ENOMEM) changes nothing.
 *
 * Diff compares snapshot images by page identity at the indexes that have
 * history; clone gives a new region the pages of a snapshot's image.
 *
 * Locking: region->lock, then fault_sem, then page locks (cowsnap.h).
 */
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>
#include "cowsnap.h"
#include "cowsnap_trace.h"

#define COWSNAP_DIFF_BATCH	1024
/* A diff sorts the records between its ends when there are at most this many. */
#define COWSNAP_DIFF_SORT_MAX	65536
#define COWSNAP_RESCHED_PAGES	1024

/* One index a restore changes. */
struct cowsnap_change {
	struct cowsnap_rec *target;	/* the state to restore */
	struct cowsnap_rec *rec;	/* records the leaving state, or NULL */
};

/*
 * Whether @e is the oldest record at its index owned by snapshot @sid or a
 * newer one, i.e. holds the state of @sid there.
 */
static bool cowsnap_rec_is_state_of(struct cowsnap_rec *e, u64 sid)
{
	struct cowsnap_rec *older = rcu_dereference_protected(e->older, true);

	return !older || older->snap->id < sid;
}

/* Free what cowsnap_restore_plan() prepared. */
static void cowsnap_restore_unplan(struct cowsnap_region *r,
				   struct cowsnap_change *c, unsigned long n)
{
	while (n--) {
		pgoff_t idx = c[n].target->idx;

		if (c[n].rec)
			cowsnap_rec_drop(r, c[n].rec, idx);
		if (c[n].target->page)
			xa_release(&r->pages, idx);	/* if reserved */
	}
	kvfree(c);
}

/*
 * The indexes that differ from snapshot @s, with everything their change
 * will need allocated: a record for a leaving state the newest snapshot
 * holds, a live slot for a hole that gets a page.  Caller holds fault_sem
 * for write.  Returns the count, or -ENOMEM with nothing allocated.
 */
static long cowsnap_restore_plan(struct cowsnap_region *r,
				 struct cowsnap_snap *s,
				 struct cowsnap_change **out)
{
	struct cowsnap_change *c = NULL, *tmp;
	unsigned long n = 0, cap = 0;
	struct cowsnap_snap *t = s;
	struct cowsnap_rec *e;

	list_for_each_entry_from(t, &r->snaps, node) {
		list_for_each_entry(e, &t->recs, node) {
			pgoff_t idx = e->idx;
			struct page *live = xa_load(&r->pages, idx);

			if (!cowsnap_rec_is_state_of(e, s->id) ||
			    live == e->page)
				continue;
			if (n == cap) {
				/* kvrealloc() changed its signature in 6.12. */
				cap = max(64UL, 2 * cap);
				tmp = kvmalloc_array(cap, sizeof(*c), COWSNAP_GFP);
				if (!tmp)
					goto nomem;
				if (c)
					memcpy(tmp, c, n * sizeof(*c));
				kvfree(c);
				c = tmp;
			}
			c[n].target = e;
			c[n].rec = NULL;
			/*
			 * The leaving state goes to the newest, unless it is
			 * the newest's own record coming back (an undo).
			 */
			if (e->snap != r->newest && !cowsnap_live_fresh(r, idx)) {
				c[n].rec = cowsnap_rec_alloc(r, idx);
				if (!c[n].rec)
					goto nomem;
			}
			if (!live && e->page &&
			    xa_reserve(&r->pages, idx, COWSNAP_GFP)) {
				if (c[n].rec)
					cowsnap_rec_drop(r, c[n].rec, idx);
				goto nomem;
			}
			n++;
		}
		cond_resched();
	}
	*out = c;
	return n;
nomem:
	cowsnap_restore_unplan(r, c, n);
	return -ENOMEM;
}

/*
 * Apply one planned change; cannot fail.  Caller holds fault_sem for
 * write, so only read faults run, and they re-check under the page lock.
 */
static void cowsnap_restore_one(struct cowsnap_region *r,
				struct cowsnap_change *c)
{
	struct cowsnap_rec *e = c->target;
	pgoff_t idx = e->idx;
	struct page *old = xa_load(&r->pages, idx), *new = e->page;
	bool undo = e->snap == r->newest;

	cowsnap_live_acct(r, idx, -1);
	/* The leaving state: into the newest snapshot's history, or away. */
	if (c->rec) {
		WARN_ON_ONCE(cowsnap_rec_push(r, c->rec, idx, old));
		cowsnap_rec_recount(c->rec);
	} else if (old) {
		lock_page(old);
		cowsnap_page_disown(old);
		unlock_page(old);
	}
	/*
	 * The arriving state: an older record's page gets the live view as
	 * one more owner, or the newest's own record comes back, leaving the
	 * history only once the live view shows it (readers of the newest
	 * snapshot find it in one place or the other).
	 */
	if (new && !undo) {
		lock_page(new);
		cowsnap_page_own(new);
		unlock_page(new);
	}
	cowsnap_live_set(r, idx, old, new);
	if (undo)
		cowsnap_hist_pop(r, e);
	cowsnap_live_acct(r, idx, 1);
	if (old && page_private(old)) {
		lock_page(old);
		cowsnap_idx_dups(r, idx, old);
		unlock_page(old);
	}
	if (new && page_private(new) > 1) {
		lock_page(new);
		cowsnap_idx_dups(r, idx, new);
		unlock_page(new);
	}
	if (old && !c->rec)
		put_page(old);	/* the live owner's */
	if (undo)
		cowsnap_rec_free(e);
}

/* Make the live view of @r equal to snapshot @s; the count of changes. */
static long cowsnap_restore(struct cowsnap_region *r, struct cowsnap_snap *s)
{
	struct cowsnap_change *c;
	long i, n;

	n = cowsnap_restore_plan(r, s, &c);
	for (i = 0; i < n; i++) {
		cowsnap_restore_one(r, &c[i]);
		if (!(i % COWSNAP_RESCHED_PAGES))
			cond_resched();
	}
	if (n >= 0)
		kvfree(c);
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
		down_write(&r->fault_sem);
		n = cowsnap_restore(r, s);
		trace_cowsnap_restore(r->name, s->id, n, s != r->newest);
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

/* The page of image @sid (0: the live view) of @r at @idx; RCU held. */
static struct page *cowsnap_image_page(struct cowsnap_region *r, u64 sid,
				       pgoff_t idx)
{
	return sid ? cowsnap_hist_lookup(r, sid, idx) : xa_load(&r->pages, idx);
}

struct cowsnap_extents {
	struct cowsnap_extent *ext;
	u32 n, cap;
	u64 next;		/* where to resume, or 0 */
};

/* Note that @idx differs; false once @x is full (x->next is set). */
static bool cowsnap_extent_add(struct cowsnap_extents *x, pgoff_t idx)
{
	struct cowsnap_extent *last = x->n ? &x->ext[x->n - 1] : NULL;

	if (last && last->start + last->count == idx) {
		last->count++;
		return true;
	}
	if (x->n == x->cap) {
		x->next = idx;
		return false;
	}
	x->ext[x->n].start = idx;
	x->ext[x->n].count = 1;
	x->n++;
	return true;
}

/* Compare images @a and @b at @idx; false once @x is full. */
static bool cowsnap_diff_one(struct cowsnap_region *r, u64 a, u64 b,
			     pgoff_t idx, struct cowsnap_extents *x)
{
	bool differ;

	rcu_read_lock();
	differ = cowsnap_image_page(r, a, idx) != cowsnap_image_page(r, b, idx);
	rcu_read_unlock();
	return !differ || cowsnap_extent_add(x, idx);
}

static int cowsnap_cmp_idx(const void *a, const void *b)
{
	pgoff_t x = *(const pgoff_t *)a, y = *(const pgoff_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The indexes that may differ between snapshots @lo and @hi (0: the live
 * view) have records owned by a snapshot in [@lo, @hi): gather, sort and
 * compare them from @start, or return -E2BIG if there are too many to sort
 * (the caller walks the whole history then).  Caller holds region->lock.
 */
static int cowsnap_diff_sorted(struct cowsnap_region *r, u64 lo, u64 hi,
			       u64 a, u64 b, pgoff_t start,
			       struct cowsnap_extents *x)
{
	struct cowsnap_snap *s;
	struct cowsnap_rec *e;
	unsigned long cap = 0, n = 0, i;
	pgoff_t *idx;

	/* Stores push records onto the newest list under the xa_lock. */
	xa_lock(&r->hist);
	list_for_each_entry(s, &r->snaps, node)
		if (s->id >= lo && (!hi || s->id < hi))
			cap += s->nr_recs;
	xa_unlock(&r->hist);
	if (cap > COWSNAP_DIFF_SORT_MAX)
		return -E2BIG;
	idx = kvmalloc_array(max(cap, 1UL), sizeof(*idx), COWSNAP_GFP);
	if (!idx)
		return -ENOMEM;
	xa_lock(&r->hist);
	list_for_each_entry(s, &r->snaps, node) {
		if (s->id < lo || (hi && s->id >= hi))
			continue;
		list_for_each_entry(e, &s->recs, node) {
			if (e->idx < start)
				continue;
			if (n == cap)	/* grew since counted */
				goto grew;
			idx[n++] = e->idx;
		}
	}
	xa_unlock(&r->hist);
	sort(idx, n, sizeof(*idx), cowsnap_cmp_idx, NULL);
	for (i = 0; i < n; i++) {
		if (i && idx[i] == idx[i - 1])
			continue;
		if (!cowsnap_diff_one(r, a, b, idx[i], x))
			break;
		if (!(i % COWSNAP_RESCHED_PAGES))
			cond_resched();
	}
	kvfree(idx);
	return 0;
grew:
	xa_unlock(&r->hist);
	kvfree(idx);
	return -E2BIG;	/* the caller walks the whole history */
}

/* Compare at every index with history from @start on. */
static void cowsnap_diff_walk(struct cowsnap_region *r, u64 a, u64 b,
			      pgoff_t start, struct cowsnap_extents *x)
{
	struct cowsnap_rec *e;
	unsigned long idx;

	xa_for_each_start(&r->hist, idx, e, start) {
		if (!cowsnap_diff_one(r, a, b, idx, x))
			break;
		if (!(idx % COWSNAP_RESCHED_PAGES))
			cond_resched();
	}
}

long cowsnap_ioc_diff(struct cowsnap_region *r, void __user *argp)
{
	struct cowsnap_extents x = { 0 };
	struct cowsnap_diff arg;
	u64 lo, hi;
	int err = 0;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || !arg.count)
		return -EINVAL;
	x.cap = min_t(u32, arg.count, COWSNAP_DIFF_BATCH);
	x.ext = kvcalloc(x.cap, sizeof(*x.ext), COWSNAP_GFP);
	if (!x.ext)
		return -ENOMEM;
	/* Images differ only where a state between them ended. */
	lo = arg.from && arg.to ? min(arg.from, arg.to) : arg.from | arg.to;
	hi = arg.from && arg.to ? max(arg.from, arg.to) : 0;
	mutex_lock(&r->lock);
	if ((arg.from && !cowsnap_snap_find(r, arg.from)) ||
	    (arg.to && !cowsnap_snap_find(r, arg.to)))
		err = -ENOENT;
	else if (arg.start < r->npages && lo)
		err = cowsnap_diff_sorted(r, lo, hi, arg.from, arg.to,
					  arg.start, &x);
	if (err == -E2BIG) {
		err = 0;
		cowsnap_diff_walk(r, arg.from, arg.to, arg.start, &x);
	}
	mutex_unlock(&r->lock);
	/* Copy out with no lock held: the buffer may be a cowsnap mapping. */
	if (!err && copy_to_user(u64_to_user_ptr(arg.extents), x.ext,
				 x.n * sizeof(*x.ext)))
		err = -EFAULT;
	kvfree(x.ext);
	if (err)
		return err;
	arg.count = x.n;
	arg.next = x.next;
	return copy_to_user(argp, &arg, sizeof(arg)) ? -EFAULT : 0;
}

/*
 * Give clone @nr the page of snapshot @sid of @r at @idx, if any; -ENOMEM.
 * The page is locked and re-checked, so a store in @r that keeps writing
 * its live page cannot hand the clone that page after its record took the
 * copy.  Caller holds @r's fault_sem for read.
 */
static int cowsnap_clone_one(struct cowsnap_region *r, u64 sid,
			     struct cowsnap_region *nr, pgoff_t idx)
{
	struct page *page;
	int err = 0;

	if (xa_load(&nr->pages, idx))
		return 0;	/* done already */
	for (;;) {
		page = cowsnap_snap_page_get(r, sid, idx);
		if (!page)
			return 0;
		lock_page(page);
		rcu_read_lock();
		if (cowsnap_hist_lookup(r, sid, idx) == page) {
			rcu_read_unlock();
			break;
		}
		rcu_read_unlock();
		unlock_page(page);
		put_page(page);
	}
	err = xa_insert(&nr->pages, idx, page, COWSNAP_GFP);
	if (!err) {
		cowsnap_page_own(page);
		xa_set_mark(&nr->pages, idx, COWSNAP_MARK_INHERITED);
		atomic_long_inc(&nr->nr_pages);
	}
	unlock_page(page);
	put_page(page);
	return err;
}

/* Fill @nr with snapshot @s of @r: every index @r holds a page or history at. */
static int cowsnap_clone_fill(struct cowsnap_region *r, struct cowsnap_snap *s,
			      struct cowsnap_region *nr)
{
	struct page *page;
	struct cowsnap_rec *e;
	unsigned long idx;
	int err = 0;

	down_read(&r->fault_sem);
	xa_for_each(&r->pages, idx, page) {
		err = cowsnap_clone_one(r, s->id, nr, idx);
		if (err)
			goto out;
		if (!(idx % COWSNAP_RESCHED_PAGES))
			cond_resched();
	}
	xa_for_each(&r->hist, idx, e) {
		err = cowsnap_clone_one(r, s->id, nr, idx);
		if (err)
			goto out;
		if (!(idx % COWSNAP_RESCHED_PAGES))
			cond_resched();
	}
out:
	up_read(&r->fault_sem);
	return err;
}

long cowsnap_ioc_clone(struct cowsnap_region *r, void __user *argp)
{
	struct cowsnap_region *nr;
	struct cowsnap_clone arg;
	struct cowsnap_snap *s;
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
		cowsnap_region_put_user(nr);
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
	err = cowsnap_clone_fill(r, s, nr);
	cowsnap_snap_put(s);
	if (!err)
		err = cowsnap_region_publish(nr);
	/* The name table holds it now, if published; else it goes. */
	cowsnap_region_put_user(nr);
	if (!err)
		cowsnap_count(&cowsnap_stats.clones, 1);
	return err;
}

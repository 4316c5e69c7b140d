// SPDX-License-Identifier: GPL-2.0
/*
 * Snapshots: create, list, delete, and the read-only snapshot fd.
 *
 * Taking a snapshot (cowsnap_snap_take()) copies nothing and records
 * nothing: it becomes the region's newest, so every later first change of
 * an index records the state it leaves (history.c).  Its cost is in the
 * pages whose PTEs were made writable since the previous snapshot (marked
 * COWSNAP_MARK_WRITABLE), with fault_sem held for write so that no store
 * fault, hole fill or write() runs meanwhile:
 *  1. in-flight page_mkwrite()s finish: each marked its page under the
 *     page lock, which the core holds until the PTE is writable;
 *  2. the PTEs of those pages, in every writable mapping, are cleaned,
 *     write-protected and cleaned again, and the ones found dirty by the
 *     second cleaning are zapped.  A dirty read-only PTE can be made
 *     writable without a fault (mprotect(), NUMA hinting trust the dirty
 *     bit), so none may be left: the first cleaning removes the dirty bits
 *     of everything written before, the second catches PTEs written or
 *     made writable again between the walks.  Clean PTEs stay mapped, so
 *     reads after a snapshot do not fault.  This is the instant of the cut:
 *     a store before it reached a page the snapshot holds, a store after it
 *     faults and waits.  Steps 1 and 2 are one pass over the marks: a run
 *     of marked pages is walked once the pass has drained all of it;
 *  3. pages that something beyond their owners and mappings references
 *     (GUP pins, I/O in flight, which may still write them) give the
 *     snapshot a copy made now and stay live; they are checked again at
 *     every snapshot (region->pinned) until they are no longer referenced.
 *     A write pin needs a write fault on a read-only PTE, so pages neither
 *     marked writable nor pinned cannot have one.  The same pass clears
 *     the marks.
 *
 * Locking: region->lock guards the snapshot list; fault_sem (write)
 * changes the newest snapshot.  A snapshot's kref counts its place in the
 * list while listed and its open fds; the last put merges its history
 * into the previous snapshot with region->lock held.
 */
#include <linux/bitmap.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include "cowsnap.h"
#include "cowsnap_trace.h"

#define COWSNAP_LIST_BATCH	64
#define COWSNAP_CLEAN_CHUNK	(8 * PAGE_SIZE)	/* pages per bitmap */
/* Marked runs closer than this are walked as one. */
#define COWSNAP_RUN_GAP		512
#define COWSNAP_RESCHED_PAGES	1024

/* Listed snapshot @id of @r, or NULL; caller holds r->lock. */
struct cowsnap_snap *cowsnap_snap_find(struct cowsnap_region *r, u64 id)
{
	struct cowsnap_snap *s;

	lockdep_assert_held(&r->lock);
	list_for_each_entry(s, &r->snaps, node)
		if (s->id == id && s->listed)
			return s;
	return NULL;
}

/* Id of @r's newest listed snapshot, or 0; caller holds r->lock. */
u64 cowsnap_newest_id(struct cowsnap_region *r)
{
	struct cowsnap_snap *s;

	lockdep_assert_held(&r->lock);
	list_for_each_entry_reverse(s, &r->snaps, node)
		if (s->listed)
			return s->id;
	return 0;
}

/* Listed snapshot @id of @r, referenced, or NULL. */
struct cowsnap_snap *cowsnap_snap_get(struct cowsnap_region *r, u64 id)
{
	struct cowsnap_snap *s;

	mutex_lock(&r->lock);
	s = cowsnap_snap_find(r, id);
	if (s)
		kref_get(&s->ref);
	mutex_unlock(&r->lock);
	return s;
}

static void cowsnap_snap_free(struct cowsnap_snap *s)
{
	cowsnap_budget_uncharge(0, sizeof(*s));
	kfree_rcu(s, rcu);
}

/* @s has no reference left: merge its history away; r->lock held. */
static void cowsnap_snap_destroy(struct cowsnap_region *r,
				 struct cowsnap_snap *s)
{
	down_write(&r->fault_sem);
	cowsnap_hist_merge(r, s);
	up_write(&r->fault_sem);
	cowsnap_snap_free(s);
}

/* Drop a reference to @s; caller does not hold its region's lock. */
void cowsnap_snap_put(struct cowsnap_snap *s)
{
	struct cowsnap_region *r = s->region;

	mutex_lock(&r->lock);
	if (refcount_dec_and_test(&s->ref.refcount))
		cowsnap_snap_destroy(r, s);
	mutex_unlock(&r->lock);
}

/* Delete listed @s: unlist it and drop the list's reference; r->lock held. */
void cowsnap_snap_unlist(struct cowsnap_region *r, struct cowsnap_snap *s)
{
	lockdep_assert_held(&r->lock);
	trace_cowsnap_delete(r->name, s->id, s->referenced);
	s->listed = false;
	r->nr_snaps--;
	atomic_long_dec(&cowsnap_stats.snapshots);
	if (refcount_dec_and_test(&s->ref.refcount))
		cowsnap_snap_destroy(r, s);
}

#ifdef CONFIG_MAPPING_DIRTY_HELPERS
/* Step 2 for pages [@first, @first + @nr); @bitmap holds COWSNAP_CLEAN_CHUNK. */
static void cowsnap_protect_run(struct address_space *mapping, pgoff_t first,
				pgoff_t nr, unsigned long *bitmap)
{
	while (nr) {
		pgoff_t n = min_t(pgoff_t, nr, COWSNAP_CLEAN_CHUNK);
		pgoff_t start = n, end = 0;
		unsigned long b, e;

		clean_record_shared_mapping_range(mapping, first, n, first,
						  bitmap, &start, &end);
		bitmap_zero(bitmap, n);
		wp_shared_mapping_range(mapping, first, n);
		start = n;
		end = 0;
		if (clean_record_shared_mapping_range(mapping, first, n, first,
						      bitmap, &start, &end)) {
			for_each_set_bitrange(b, e, bitmap, n)
				unmap_mapping_pages(mapping, first + b, e - b,
						    false);
			bitmap_zero(bitmap, n);
		}
		first += n;
		nr -= n;
		cond_resched();
	}
}
#else
/* Without the kernel's helpers, zap: a zapped PTE cannot be writable. */
static void cowsnap_protect_run(struct address_space *mapping, pgoff_t first,
				pgoff_t nr, unsigned long *bitmap)
{
	unmap_mapping_pages(mapping, first, nr, false);
}
#endif

/* Step 2 for a run whose pages are all drained. */
static void cowsnap_protect_drained(struct address_space *mapping,
				    pgoff_t first, pgoff_t end,
				    unsigned long *bitmap)
{
	/* The drained page_mkwrite()s' PTEs are visible to the walks. */
	smp_mb();
	cowsnap_protect_run(mapping, first, end - first, bitmap);
}

/*
 * Steps 1 and 2 in one pass over the pages marked writable: a page
 * someone holds locked may be an in-flight page_mkwrite() whose PTE is not
 * yet installed, so it is waited for; a run of marked pages is walked as
 * soon as the pass has gone past it.  Read-only handles map through their
 * own address_space, whose PTEs are never writable.
 */
static int cowsnap_snap_protect(struct cowsnap_region *r)
{
	struct address_space *mapping = r->inode->i_mapping;
	XA_STATE(xas, &r->pages, 0);
	unsigned long *bitmap = NULL;
	pgoff_t first = 0, end = 0;
	unsigned int n = 0;
	struct page *page;

	/*
	 * A fault in flight implies a mapping, and a new mapping's faults
	 * wait for fault_sem: unmapped, there is nothing to drain or walk.
	 */
	if (!mapping_mapped(mapping))
		return 0;
	bitmap = bitmap_zalloc(COWSNAP_CLEAN_CHUNK, COWSNAP_GFP);
	if (!bitmap)
		return -ENOMEM;
	rcu_read_lock();
	xas_for_each_marked(&xas, page, ULONG_MAX, COWSNAP_MARK_WRITABLE) {
		pgoff_t idx = xas.xa_index;
		bool locked, walk;

		if (xas_retry(&xas, page))
			continue;
		locked = PageLocked(page);
		walk = end && idx - end >= COWSNAP_RUN_GAP;
		if (locked || walk || !(++n % COWSNAP_RESCHED_PAGES)) {
			/* Live entries cannot change: fault_sem is held. */
			xas_pause(&xas);
			rcu_read_unlock();
			if (locked) {
				lock_page(page);
				unlock_page(page);
			}
			if (walk) {
				cowsnap_protect_drained(mapping, first, end,
							bitmap);
				end = 0;
			}
			cond_resched();
			rcu_read_lock();
		}
		if (!end)
			first = idx;
		end = idx + 1;
	}
	rcu_read_unlock();
	if (end)
		cowsnap_protect_drained(mapping, first, end, bitmap);
	bitmap_free(bitmap);
	return 0;
}

struct cowsnap_pinned {
	pgoff_t idx;
	struct page *page;	/* the live page */
	struct page *copy;
	struct cowsnap_rec *rec;
};

struct cowsnap_pinned_set {
	struct cowsnap_pinned *p;
	unsigned long n, cap;
};

/* Whether live page @page has no reference but its owners' and PTEs'. */
static bool cowsnap_page_unreferenced(struct page *page)
{
	return page_count(page) <= page_private(page) + cowsnap_mapcount(page);
}

/* Add live page @page at @idx to @set: it gets a copy for the snapshot. */
static int cowsnap_pinned_add(struct cowsnap_region *r,
			      struct cowsnap_pinned_set *set, pgoff_t idx,
			      struct page *page)
{
	struct cowsnap_pinned *p;

	if (set->n == set->cap) {
		set->cap = max(16UL, 2 * set->cap);
		p = krealloc_array(set->p, set->cap, sizeof(*p), COWSNAP_GFP);
		if (!p)
			return -ENOMEM;
		set->p = p;
	}
	p = &set->p[set->n];
	p->idx = idx;
	p->page = page;
	p->rec = cowsnap_rec_alloc(r, idx);
	if (!p->rec)
		return -ENOMEM;
	p->copy = cowsnap_page_alloc(page);
	if (!p->copy) {
		cowsnap_rec_drop(r, p->rec, idx);
		return -ENOMEM;
	}
	set->n++;
	return 0;
}

/*
 * Step 3, first half, with step 4 for the pages it clears: copies of the
 * candidate pages (marked writable or in the pinned set) that something
 * references.  One locked pass over the marks: a page nothing references
 * loses its mark now (its PTEs are read-only and clean, and a write pin
 * would need a write fault, which marks it again); a referenced one keeps
 * it until the snapshot has its copy.  So a failure (-ENOMEM) leaves every
 * page that needs a check at the next snapshot marked, and nothing else
 * visible changed.  Then the pinned set forgets the pages nothing
 * references any more.
 */
static int cowsnap_snap_find_pinned(struct cowsnap_region *r,
				    struct cowsnap_pinned_set *set)
{
	XA_STATE(xas, &r->pages, 0);
	unsigned int n = 0;
	struct page *page;
	unsigned long idx;
	void *v;
	int err = 0;

	xas_lock(&xas);
	xas_for_each_marked(&xas, page, ULONG_MAX, COWSNAP_MARK_WRITABLE) {
		bool ref = !cowsnap_page_unreferenced(page);

		if (!ref)
			xas_clear_mark(&xas, COWSNAP_MARK_WRITABLE);
		if (!ref && ++n % COWSNAP_RESCHED_PAGES)
			continue;
		/* Live entries cannot change: fault_sem is held. */
		idx = xas.xa_index;
		xas_pause(&xas);
		xas_unlock(&xas);
		if (ref)
			err = cowsnap_pinned_add(r, set, idx, page);
		cond_resched();
		if (err)
			goto fail;
		xas_lock(&xas);
	}
	xas_unlock(&xas);
	xa_for_each(&r->pinned, idx, v) {
		page = xa_load(&r->pages, idx);
		if (page && !cowsnap_page_unreferenced(page)) {
			if (xa_get_mark(&r->pages, idx, COWSNAP_MARK_WRITABLE))
				continue;	/* added above */
			err = cowsnap_pinned_add(r, set, idx, page);
			if (err)
				goto fail;
		} else {
			xa_erase(&r->pinned, idx);
		}
	}
	return 0;
fail:
	while (set->n--) {
		cowsnap_page_free_unowned(set->p[set->n].copy);
		cowsnap_rec_drop(r, set->p[set->n].rec, set->p[set->n].idx);
	}
	kfree(set->p);
	return err;
}

/*
 * Step 3, second half: snapshot @s (now the newest) takes the copies; the
 * live pages stay, changed since @s as far as the history goes.  Cannot
 * fail but for the pinned set's own slots (then the page is just checked
 * again next time only if it is written).
 */
static void cowsnap_snap_apply_pinned(struct cowsnap_region *r,
				      struct cowsnap_pinned_set *set)
{
	unsigned long i;

	for (i = 0; i < set->n; i++) {
		struct cowsnap_pinned *p = &set->p[i];

		lock_page(p->page);
		cowsnap_live_acct(r, p->idx, -1);
		WARN_ON_ONCE(cowsnap_rec_push(r, p->rec, p->idx, p->copy));
		cowsnap_page_own(p->copy);
		cowsnap_rec_recount(p->rec);
		cowsnap_live_acct(r, p->idx, 1);
		/* Snapshot fds mapping the live page must see the copy. */
		cowsnap_snap_zap_fds(r, p->idx);
		xa_store(&r->pinned, p->idx, xa_mk_value(1), COWSNAP_GFP);
		/* Step 4 for it: region->pinned keeps it a candidate. */
		xa_clear_mark(&r->pages, p->idx, COWSNAP_MARK_WRITABLE);
		unlock_page(p->page);
		cowsnap_count(&cowsnap_stats.pinned_copies, 1);
	}
	kfree(set->p);
}

/*
 * Make @s, not yet listed, @r's newest snapshot; r->lock held.  Out of
 * line, so that stack traces and function_graph (make bench's split of a
 * snapshot's time) show it.
 */
static noinline int cowsnap_snap_take(struct cowsnap_region *r, struct cowsnap_snap *s)
{
	struct cowsnap_pinned_set pinned = { 0 };
	int err;

	down_write(&r->fault_sem);
	err = cowsnap_snap_protect(r);
	if (!err)
		err = cowsnap_snap_find_pinned(r, &pinned);
	if (err) {
		up_write(&r->fault_sem);
		return err;
	}
	s->referenced = atomic_long_read(&r->nr_pages);
	list_add_tail(&s->node, &r->snaps);
	r->newest = s;
	/* Nothing changed since @s yet. */
	atomic_long_set(&r->nr_unshared, 0);
	cowsnap_snap_apply_pinned(r, &pinned);
	up_write(&r->fault_sem);
	return 0;
}

long cowsnap_ioc_snap_create(struct cowsnap_region *r, void __user *argp)
{
	struct cowsnap_snap_create arg;
	struct cowsnap_snap *s;
	int err;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || arg.reserved)
		return -EINVAL;
	err = cowsnap_name_check(arg.label, true);
	if (err)
		return err;
	/* Fail a read-only argument now, not after the snapshot exists. */
	if (copy_to_user(argp, &arg, sizeof(arg)))
		return -EFAULT;
	if (!cowsnap_budget_charge(0, sizeof(*s)))
		return -ENOMEM;
	s = kzalloc(sizeof(*s), COWSNAP_GFP);
	if (!s) {
		cowsnap_budget_uncharge(0, sizeof(*s));
		return -ENOMEM;
	}
	kref_init(&s->ref);
	INIT_LIST_HEAD(&s->recs);
	strscpy(s->label, arg.label, sizeof(s->label));
	s->region = r;
	s->listed = true;

	mutex_lock(&r->lock);
	if (r->nr_snaps >= cowsnap_max_snapshots) {
		err = -ENOSPC;
		goto out_free;
	}
	s->ctime_ns = ktime_get_real_ns();
	s->id = r->next_id;
	err = cowsnap_snap_take(r, s);
	trace_cowsnap_snapshot(r->name, err ? 0 : s->id, s->referenced, err);
	if (err)
		goto out_free;
	r->next_id++;
	r->nr_snaps++;
	atomic_long_inc(&cowsnap_stats.snapshots);
	mutex_unlock(&r->lock);

	arg.id = s->id;
	if (copy_to_user(argp, &arg, sizeof(arg)))
		return -EFAULT;	/* the snapshot exists; its id is newest */
	return 0;

out_free:
	mutex_unlock(&r->lock);
	cowsnap_budget_uncharge(0, sizeof(*s));
	kfree(s);
	return err;
}

static void cowsnap_snap_fill_entry(struct cowsnap_snap *s,
				    struct cowsnap_snap_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->id = s->id;
	e->ctime_ns = s->ctime_ns;
	e->referenced_pages = s->referenced;
	e->exclusive_pages = atomic_long_read(&s->exclusive);
	strscpy(e->label, s->label, sizeof(e->label));
}

long cowsnap_ioc_snap_list(struct cowsnap_region *r, void __user *argp)
{
	struct cowsnap_snap_list arg;
	struct cowsnap_snap_entry *buf;
	struct cowsnap_snap *s;
	u32 n = 0, cap;
	u64 next = 0;
	int err = 0;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || !arg.count)
		return -EINVAL;		/* as for DIFF: no room, no progress */
	cap = min_t(u32, arg.count, COWSNAP_LIST_BATCH);
	buf = kcalloc(COWSNAP_LIST_BATCH, sizeof(*buf), COWSNAP_GFP);
	if (!buf)
		return -ENOMEM;
	mutex_lock(&r->lock);
	list_for_each_entry(s, &r->snaps, node) {
		if (s->id < arg.start_id || !s->listed)
			continue;
		if (n == cap) {
			next = s->id;
			break;
		}
		cowsnap_snap_fill_entry(s, &buf[n++]);
	}
	mutex_unlock(&r->lock);
	/* Copy out with no lock held: the buffer may be a cowsnap mapping. */
	if (copy_to_user(u64_to_user_ptr(arg.entries), buf, n * sizeof(*buf)))
		err = -EFAULT;
	kfree(buf);
	if (err)
		return err;
	arg.count = n;
	arg.next_id = next;
	return copy_to_user(argp, &arg, sizeof(arg)) ? -EFAULT : 0;
}

long cowsnap_ioc_snap_delete(struct cowsnap_region *r, void __user *argp)
{
	struct cowsnap_snap_id arg;
	struct cowsnap_snap *s;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || arg.reserved)
		return -EINVAL;
	mutex_lock(&r->lock);
	s = cowsnap_snap_find(r, arg.id);
	if (s)
		cowsnap_snap_unlist(r, s);
	mutex_unlock(&r->lock);
	return s ? 0 : -ENOENT;
}

static vm_fault_t cowsnap_snap_fault(struct vm_fault *vmf)
{
	struct cowsnap_snap *s = vmf->vma->vm_private_data;
	struct cowsnap_region *r = s->region;
	pgoff_t idx = vmf->pgoff;
	struct page *page;

	if (idx >= r->npages)
		return VM_FAULT_SIGBUS;
	cowsnap_count(&cowsnap_stats.read_faults, 1);
	for (;;) {
		page = cowsnap_snap_page_get(r, s->id, idx);
		if (!page)
			break;
		/* A live page the region writes next is zapped under its lock. */
		lock_page(page);
		rcu_read_lock();
		if (cowsnap_hist_lookup(r, s->id, idx) == page) {
			rcu_read_unlock();
			vmf->page = page;
			return VM_FAULT_LOCKED;
		}
		rcu_read_unlock();
		unlock_page(page);
		put_page(page);
	}
	if (cowsnap_zero_page_usable(cowsnap_zero_page)) {
		page = cowsnap_zero_page;	/* never writable here */
		get_page(page);
	} else {
		/* Freed with its PTE; read-only, so never seen written. */
		page = alloc_page(GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT |
				  __GFP_RETRY_MAYFAIL | __GFP_NOWARN);
		if (!page)
			return VM_FAULT_SIGBUS;
	}
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct cowsnap_snap_vm_ops = {
	.fault = cowsnap_snap_fault,
};

static int cowsnap_snap_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct cowsnap_snap *s = file->private_data;

	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_flags & VM_WRITE)
		return -EACCES;
	if (vma->vm_pgoff >= s->region->npages ||
	    vma_pages(vma) > s->region->npages - vma->vm_pgoff)
		return -EINVAL;
	/* No mprotect(PROT_WRITE), no FOLL_FORCE writes. */
	vm_flags_clear(vma, VM_MAYWRITE);
	vm_flags_set(vma, VM_DONTEXPAND);
	vma->vm_ops = &cowsnap_snap_vm_ops;
	vma->vm_private_data = s;
	return 0;
}

static ssize_t cowsnap_snap_read(struct file *file, char __user *buf,
				 size_t len, loff_t *ppos)
{
	struct cowsnap_snap *s = file->private_data;

	return cowsnap_read_pages(s->region, s->id, s->region->size, buf, len,
				  ppos);
}

static loff_t cowsnap_snap_llseek(struct file *file, loff_t off, int whence)
{
	struct cowsnap_snap *s = file->private_data;

	return fixed_size_llseek(file, off, whence, s->region->size);
}

static int cowsnap_snap_file_release(struct inode *inode, struct file *file)
{
	struct cowsnap_snap *s = file->private_data;
	struct cowsnap_region *r = s->region;

	cowsnap_snap_put(s);
	cowsnap_region_put(r);
	return 0;
}

static const struct file_operations cowsnap_snap_fops = {
	.owner		= THIS_MODULE,
	.read		= cowsnap_snap_read,
	.llseek		= cowsnap_snap_llseek,
	.mmap		= cowsnap_snap_mmap,
	.release	= cowsnap_snap_file_release,
};

/* Zap index @idx in every snapshot fd mapping of @r. */
void cowsnap_snap_zap_fds(struct cowsnap_region *r, pgoff_t idx)
{
	unmap_mapping_pages(r->snap_inode->i_mapping, idx, 1, false);
}

long cowsnap_ioc_snap_open(struct cowsnap_region *r, void __user *argp)
{
	struct cowsnap_snap_open arg;
	struct cowsnap_snap *s;
	struct file *file;
	int fd;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if ((arg.flags & ~COWSNAP_OPEN_CLOEXEC) || arg.reserved)
		return -EINVAL;
	s = cowsnap_snap_get(r, arg.id);
	if (!s)
		return -ENOENT;

	fd = get_unused_fd_flags(O_RDONLY |
				 (arg.flags & COWSNAP_OPEN_CLOEXEC ? O_CLOEXEC : 0));
	if (fd < 0)
		goto err;
	cowsnap_region_get(r);	/* the fd's: its history outlives users */
	file = cowsnap_file_new("cowsnap-snapshot", &cowsnap_snap_fops, s,
				r->snap_inode, O_RDONLY);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		cowsnap_region_put(r);
		fd = PTR_ERR(file);
		goto err;
	}
	fd_install(fd, file);
	return fd;
err:
	cowsnap_snap_put(s);
	return fd;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Snapshots: create, list, delete, and the read-only snapshot fd.
 *
 * Taking a snapshot (cowsnap_snap_take()), with fault_sem held for write so
 * no store fault or hole fill runs meanwhile:
 *  1. every live page gets the snapshot as one more owner, under its page
 *     lock: a page_mkwrite that found the page unshared still holds that
 *     lock until its PTE is writable, so step 2 sees and protects that PTE;
 *  2. every PTE of the region, in every process, is write-protected and the
 *     TLBs flushed: from here on a store faults and waits for fault_sem.
 *     This is the instant of the cut: a store before it reached a page the
 *     snapshot shares, a store after it copies;
 *  3. pages that had references beyond their owners and mappings (pinned
 *     or referenced for I/O, which may still write them) are replaced in
 *     the snapshot by copies made now.
 *
 * Locking: region->lock guards the snapshot list; a snapshot's pages never
 * change once it is listed.  See cowsnap.h for the order.
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

/* Listed snapshot @id of @r, or NULL; caller holds r->lock. */
struct cowsnap_snap *cowsnap_snap_find(struct cowsnap_region *r, u64 id)
{
	struct cowsnap_snap *s;

	lockdep_assert_held(&r->lock);
	list_for_each_entry(s, &r->snaps, node)
		if (s->id == id)
			return s;
	return NULL;
}

/* Id of @r's newest snapshot, or 0; caller holds r->lock. */
u64 cowsnap_newest_id(struct cowsnap_region *r)
{
	lockdep_assert_held(&r->lock);
	if (list_empty(&r->snaps))
		return 0;
	return list_last_entry(&r->snaps, struct cowsnap_snap, node)->id;
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

static void cowsnap_snap_release(struct kref *ref)
{
	struct cowsnap_snap *s = container_of(ref, struct cowsnap_snap, ref);

	cowsnap_pages_release(&s->pages);
	kfree(s);
}

void cowsnap_snap_put(struct cowsnap_snap *s)
{
	kref_put(&s->ref, cowsnap_snap_release);
}

/* Take @s off @r's list and drop the list's reference. */
void cowsnap_snap_unlink(struct cowsnap_region *r, struct cowsnap_snap *s)
{
	list_del(&s->node);
	r->nr_snaps--;
	if (r->base_id == s->id)
		r->base_id = 0;
	atomic_long_dec(&cowsnap_stats.snapshots);
	cowsnap_snap_put(s);
}

/*
 * Step 3: give @s private copies of the pages that something beyond their
 * owners and PTEs references (GUP pins, I/O), since that may still write.
 * Nothing changes @s or the live xarray meanwhile (fault_sem is held).
 */
static int cowsnap_snap_copy_pinned(struct cowsnap_region *r,
				    struct cowsnap_snap *s)
{
	XA_STATE(xas, &s->pages, 0);
	struct page *page, *copy;
	unsigned long idx;

	rcu_read_lock();
	xas_for_each(&xas, page, ULONG_MAX) {
		if (xas_retry(&xas, page))
			continue;
		if (page_count(page) <= READ_ONCE(page->private) +
					cowsnap_mapcount(page) &&
		    (xas.xa_index & 1023))
			continue;
		idx = xas.xa_index;	/* xas_pause() moves past it */
		xas_pause(&xas);
		rcu_read_unlock();
		if (page_count(page) > READ_ONCE(page->private) +
				       cowsnap_mapcount(page)) {
			copy = cowsnap_page_alloc(0);
			if (!copy)
				return -ENOMEM;
			copy_highpage(copy, page);
			xa_store(&s->pages, idx, copy, GFP_NOWAIT);
			cowsnap_page_release(page);
			/* The live page now differs from the snapshot's. */
			xa_set_mark(&r->pages, idx, COWSNAP_MARK_DIRTY);
			cowsnap_count(&cowsnap_stats.pinned_copies, 1);
		}
		cond_resched();
		rcu_read_lock();
	}
	rcu_read_unlock();
	return 0;
}

#define COWSNAP_CLEAN_CHUNK	(8 * PAGE_SIZE)	/* pages per bitmap */

/*
 * Step 2: write-protect every PTE of @r, then zap the ones that are dirty.
 * mprotect() makes a dirty read-only PTE writable again without a fault
 * (can_change_pte_writable()), even between the two walks; a zapped PTE
 * cannot be.  Clean read-only PTEs stay, so most reads do not refault.
 */
static void cowsnap_protect_mappings(struct cowsnap_region *r)
{
	struct address_space *mapping = r->inode->i_mapping;
	unsigned long *bitmap = NULL;

	if (!mapping_mapped(mapping))
		return;
	/* The helpers are not even declared without this option. */
#ifdef CONFIG_MAPPING_DIRTY_HELPERS
	unsigned long idx = 0;

	bitmap = bitmap_zalloc(COWSNAP_CLEAN_CHUNK, GFP_KERNEL);
	if (bitmap)
		wp_shared_mapping_range(mapping, 0, r->npages);
	/* Only chunks that hold pages can have PTEs. */
	while (bitmap && xa_find(&r->pages, &idx, ULONG_MAX, XA_PRESENT)) {
		pgoff_t first = round_down(idx, COWSNAP_CLEAN_CHUNK);
		pgoff_t nr = min_t(pgoff_t, COWSNAP_CLEAN_CHUNK,
				   r->npages - first);
		pgoff_t start = 0, end = 0;

		if (clean_record_shared_mapping_range(mapping, first, nr, first,
						      bitmap, &start, &end)) {
			unsigned long b, e;

			for_each_set_bitrange(b, e, bitmap, nr)
				unmap_mapping_pages(mapping, first + b, e - b,
						    false);
			bitmap_zero(bitmap, COWSNAP_CLEAN_CHUNK);
		}
		idx = first + nr;
		if (idx >= r->npages)
			break;
		cond_resched();
	}
#endif
	if (!bitmap) {
		unmap_mapping_pages(mapping, 0, r->npages, false);
		return;
	}
	bitmap_free(bitmap);
}

#define COWSNAP_BATCH	64

struct cowsnap_batch {
	unsigned int n;
	unsigned long idx[COWSNAP_BATCH];
	struct page *page[COWSNAP_BATCH];
};

/* Up to COWSNAP_BATCH entries of @xa from @from on; false when none. */
static bool cowsnap_batch_fill(struct xarray *xa, unsigned long from,
			       struct cowsnap_batch *b)
{
	XA_STATE(xas, xa, from);
	struct page *page;

	b->n = 0;
	rcu_read_lock();
	xas_for_each(&xas, page, ULONG_MAX) {
		if (xas_retry(&xas, page))
			continue;
		b->idx[b->n] = xas.xa_index;
		b->page[b->n] = page;
		if (++b->n == COWSNAP_BATCH)
			break;
	}
	rcu_read_unlock();
	return b->n;
}

/* Store @b into @xa, whose slots are empty; one lock round per batch. */
static int cowsnap_batch_store(struct xarray *xa, struct cowsnap_batch *b)
{
	XA_STATE(xas, xa, 0);
	unsigned int i = 0;

	do {
		xas_lock(&xas);
		for (; i < b->n; i++) {
			xas_set(&xas, b->idx[i]);
			xas_store(&xas, b->page[i]);
			if (xas_error(&xas))
				break;
		}
		xas_unlock(&xas);
	} while (xas_nomem(&xas, GFP_KERNEL_ACCOUNT));
	return xas_error(&xas);
}

/* The new base: clear the marks of entries dirty since the old one. */
static void cowsnap_clear_dirty(struct xarray *xa)
{
	XA_STATE(xas, xa, 0);
	unsigned int n = 0;
	struct page *page;

	xas_lock(&xas);
	xas_for_each_marked(&xas, page, ULONG_MAX, COWSNAP_MARK_DIRTY) {
		xas_clear_mark(&xas, COWSNAP_MARK_DIRTY);
		if (++n % 4096)
			continue;
		xas_pause(&xas);
		xas_unlock(&xas);
		cond_resched();
		xas_lock(&xas);
	}
	xas_unlock(&xas);
}

/*
 * Fill @s with the live view of @r; caller holds r->lock.  With fault_sem
 * held for write the live xarray cannot change: store faults and hole fills
 * wait, restore needs r->lock.
 */
static int cowsnap_snap_take(struct cowsnap_region *r, struct cowsnap_snap *s)
{
	struct cowsnap_batch *b = kmalloc(sizeof(*b), GFP_KERNEL);
	unsigned long idx = 0;
	unsigned int i;
	int err = 0;

	if (!b)
		return -ENOMEM;
	down_write(&r->fault_sem);
	while (cowsnap_batch_fill(&r->pages, idx, b)) {
		for (i = 0; i < b->n; i++) {
			lock_page(b->page[i]);
			cowsnap_page_own(b->page[i]);
			unlock_page(b->page[i]);
		}
		err = cowsnap_batch_store(&s->pages, b);
		if (err) {
			/* Entries already stored go with the snapshot. */
			for (i = 0; i < b->n; i++)
				if (xa_load(&s->pages, b->idx[i]) != b->page[i])
					cowsnap_page_release(b->page[i]);
				else
					s->nr_pages++;
			break;
		}
		s->nr_pages += b->n;
		idx = b->idx[b->n - 1] + 1;
		if (!idx)
			break;
		cond_resched();
	}
	kfree(b);
	cowsnap_clear_dirty(&r->pages);
	cowsnap_protect_mappings(r);
	if (!err)
		err = cowsnap_snap_copy_pinned(r, s);
	/* On failure marks were cleared: the old base no longer describes. */
	r->base_id = 0;
	up_write(&r->fault_sem);
	return err;
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
	s = kzalloc(sizeof(*s), GFP_KERNEL_ACCOUNT);
	if (!s)
		return -ENOMEM;
	kref_init(&s->ref);
	xa_init(&s->pages);
	strscpy(s->label, arg.label, sizeof(s->label));
	s->npages = r->npages;

	mutex_lock(&r->lock);
	if (r->nr_snaps >= cowsnap_max_snapshots) {
		err = -ENOSPC;
		goto out_free;
	}
	s->ctime_ns = ktime_get_real_ns();
	err = cowsnap_snap_take(r, s);
	trace_cowsnap_snapshot(r->name, err ? 0 : r->next_id, s->nr_pages,
			       err);
	if (err)
		goto out_free;
	s->id = r->next_id++;
	list_add_tail(&s->node, &r->snaps);
	r->nr_snaps++;
	r->base_id = s->id;
	atomic_long_inc(&cowsnap_stats.snapshots);
	mutex_unlock(&r->lock);

	arg.id = s->id;
	if (copy_to_user(argp, &arg, sizeof(arg)))
		return -EFAULT;	/* the snapshot exists; its id is newest */
	return 0;

out_free:
	mutex_unlock(&r->lock);
	cowsnap_snap_put(s);
	return err;
}

static void cowsnap_snap_fill_entry(struct cowsnap_snap *s,
				    struct cowsnap_snap_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->id = s->id;
	e->ctime_ns = s->ctime_ns;
	e->referenced_pages = s->nr_pages;
	e->exclusive_pages = cowsnap_count_owned(&s->pages, 1, false);
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
	if (arg.flags)
		return -EINVAL;
	cap = min_t(u32, arg.count, COWSNAP_LIST_BATCH);
	buf = kcalloc(COWSNAP_LIST_BATCH, sizeof(*buf), GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	mutex_lock(&r->lock);
	list_for_each_entry(s, &r->snaps, node) {
		if (s->id < arg.start_id)
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
	if (s) {
		trace_cowsnap_delete(r->name, s->id, s->nr_pages);
		cowsnap_snap_unlink(r, s);
	}
	mutex_unlock(&r->lock);
	return s ? 0 : -ENOENT;
}

static vm_fault_t cowsnap_snap_fault(struct vm_fault *vmf)
{
	struct cowsnap_snap *s = vmf->vma->vm_private_data;
	struct page *page;

	if (vmf->pgoff >= s->npages)
		return VM_FAULT_SIGBUS;
	page = xa_load(&s->pages, vmf->pgoff);
	if (page) {
		get_page(page);
	} else if (cowsnap_zero_page_usable()) {
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
	cowsnap_count(&cowsnap_stats.read_faults, 1);
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
	if (vma->vm_pgoff >= s->npages ||
	    vma_pages(vma) > s->npages - vma->vm_pgoff)
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

	return cowsnap_pages_read(&s->pages, (u64)s->npages << PAGE_SHIFT, buf,
				  len, ppos);
}

static loff_t cowsnap_snap_llseek(struct file *file, loff_t off, int whence)
{
	struct cowsnap_snap *s = file->private_data;

	return fixed_size_llseek(file, off, whence,
				 (loff_t)s->npages << PAGE_SHIFT);
}

static int cowsnap_snap_file_release(struct inode *inode, struct file *file)
{
	/* Only the snapshot: a destroyed region's other pages go now. */
	cowsnap_snap_put(file->private_data);
	return 0;
}

static const struct file_operations cowsnap_snap_fops = {
	.owner		= THIS_MODULE,
	.read		= cowsnap_snap_read,
	.llseek		= cowsnap_snap_llseek,
	.mmap		= cowsnap_snap_mmap,
	.release	= cowsnap_snap_file_release,
};

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
	file = cowsnap_file_new("cowsnap-snapshot", &cowsnap_snap_fops, s,
				O_RDONLY);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		fd = PTR_ERR(file);
		goto err;
	}
	fd_install(fd, file);
	return fd;
err:
	cowsnap_snap_put(s);
	return fd;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Live mappings: ->fault, ->page_mkwrite, and write() of the live view.
 *
 * Reads of holes map the region's read-only zero page (pages.c) and
 * allocate nothing.  Write-notify is on (VM_SHARED with ->page_mkwrite), so
 * every PTE starts read-only and the first store to a page after it was
 * mapped, or after a snapshot write-protected it, reaches
 * cowsnap_live_page_mkwrite().  There the page is locked and
 * cowsnap_live_mkwrite() decides (pages.c): written in place, usually after
 * giving the newest snapshot a copy (the core keeps the page locked until
 * its PTE is writable, which is what lets a snapshot wait for it); or, for
 * a page shared with another region or referenced from elsewhere, replaced
 * by a copy: every mapping of the index is zapped and the access retried,
 * reaching ->fault and the copy.
 *
 * Locking: faults arrive with mmap_lock held (read) and take fault_sem for
 * read whenever they may store or fill a hole; read faults of present
 * pages take no lock but the page lock.  See cowsnap.h for the order.
 */
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>
#include "cowsnap.h"

static vm_fault_t cowsnap_live_fault(struct vm_fault *vmf)
{
	struct cowsnap_region *r = vmf->vma->vm_private_data;
	pgoff_t idx = vmf->pgoff;
	struct page *page;

	if (idx >= r->npages)
		return VM_FAULT_SIGBUS;
	if (vmf->flags & FAULT_FLAG_WRITE) {
		down_read(&r->fault_sem);
		page = cowsnap_live_get_writable(r, idx, true);
		up_read(&r->fault_sem);
		cowsnap_count(&cowsnap_stats.write_faults, 1);
	} else {
		page = cowsnap_live_get_for_read(r, idx);
		if (!page) {
			down_read(&r->fault_sem);
			page = cowsnap_live_get_filled(r, idx);
			up_read(&r->fault_sem);
		}
		cowsnap_count(&cowsnap_stats.read_faults, 1);
	}
	if (IS_ERR(page))
		return VM_FAULT_SIGBUS;	/* never the OOM killer */
	vmf->page = page;
	return VM_FAULT_LOCKED;
}

static vm_fault_t cowsnap_live_page_mkwrite(struct vm_fault *vmf)
{
	struct cowsnap_region *r = vmf->vma->vm_private_data;
	struct page *page = vmf->page;
	pgoff_t idx = vmf->pgoff;
	struct page *new;

	if (page == r->zero_page) {
		/* A hole read before: refault as a write, which fills it. */
		cowsnap_live_zap(r, idx, 1);
		return VM_FAULT_NOPAGE;
	}
	down_read(&r->fault_sem);
	lock_page(page);
	if (xa_load(&r->pages, idx) != page) {
		/* Replaced since this PTE was made: its zap is on the way. */
		unlock_page(page);
		up_read(&r->fault_sem);
		return VM_FAULT_NOPAGE;
	}
	cowsnap_count(&cowsnap_stats.write_faults, 1);
	new = cowsnap_live_mkwrite(r, idx, page);
	up_read(&r->fault_sem);
	if (new == page)
		return VM_FAULT_LOCKED;	/* written in place */
	unlock_page(page);
	if (IS_ERR(new))
		return VM_FAULT_SIGBUS;
	unlock_page(new);
	put_page(new);
	return VM_FAULT_NOPAGE;	/* zapped: the retry maps the copy */
}

static const struct vm_operations_struct cowsnap_live_vm_ops = {
	.fault		= cowsnap_live_fault,
	.page_mkwrite	= cowsnap_live_page_mkwrite,
};

/* ->mmap of an attached handle. */
int cowsnap_live_mmap(struct cowsnap_region *r, bool writable,
		      struct vm_area_struct *vma)
{
	/* MAP_SHARED of a read-only handle has VM_MAYSHARE only. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;	/* private copies would escape our zaps */
	if (vma->vm_pgoff >= r->npages ||
	    vma_pages(vma) > r->npages - vma->vm_pgoff)
		return -EINVAL;
	if (!writable) {
		if (vma->vm_flags & VM_WRITE)
			return -EACCES;
		vm_flags_clear(vma, VM_MAYWRITE);
	}
	vm_flags_set(vma, VM_DONTEXPAND);
	vma->vm_ops = &cowsnap_live_vm_ops;
	vma->vm_private_data = r;
	return 0;
}

/*
 * write() of the live view: a store like one through a mapping, so it
 * copies shared pages and waits for a snapshot in progress.  The user
 * buffer is faulted in first and copied with page faults disabled, as no
 * fault may happen under fault_sem or a page lock.
 */
ssize_t cowsnap_live_write(struct cowsnap_region *r, const char __user *buf,
			   size_t len, loff_t *ppos)
{
	loff_t pos = *ppos;
	size_t done = 0;
	ssize_t err = 0;

	if (pos < 0)
		return -EINVAL;
	if (!len)
		return 0;
	if (pos >= r->size)
		return -ENOSPC;
	len = min_t(u64, len, r->size - pos);
	while (done < len) {
		size_t off = offset_in_page(pos);
		size_t n = min_t(size_t, PAGE_SIZE - off, len - done);
		struct page *page;
		size_t left;
		void *kaddr;

		if (fault_in_readable(buf + done, n) == n) {
			err = -EFAULT;
			break;
		}
		down_read(&r->fault_sem);
		page = cowsnap_live_get_writable(r, pos >> PAGE_SHIFT, false);
		if (IS_ERR(page)) {
			up_read(&r->fault_sem);
			err = PTR_ERR(page);
			break;
		}
		kaddr = kmap_local_page(page);
		pagefault_disable();
		left = __copy_from_user_inatomic(kaddr + off, buf + done, n);
		pagefault_enable();
		kunmap_local(kaddr);
		unlock_page(page);
		up_read(&r->fault_sem);
		put_page(page);
		/* A short copy retries after faulting the buffer in again. */
		done += n - left;
		pos += n - left;
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

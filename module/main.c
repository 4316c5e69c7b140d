// SPDX-License-Identifier: GPL-2.0
/*
 * cowsnap: copy-on-write snapshots of shared memory regions.
 *
 * This file holds module parameters, the /dev/cowsnap misc device and the
 * ioctl dispatch.  Locking is described in cowsnap.h.
 */
#include <linux/cred.h>
#include <linux/miscdevice.h>
#include <linux/sched/mm.h>
#include <linux/module.h>
#include <linux/uaccess.h>
#include "cowsnap.h"

struct cowsnap_stats cowsnap_stats;

static unsigned int dev_mode = 0600;
module_param(dev_mode, uint, 0444);
MODULE_PARM_DESC(dev_mode, "Mode of /dev/cowsnap: 0600 (default) or 0666");

unsigned long cowsnap_max_pages;
module_param_named(max_pages, cowsnap_max_pages, ulong, 0444);
MODULE_PARM_DESC(max_pages,
		 "Global budget in pages over all data and metadata (0: half of RAM)");

unsigned long long cowsnap_max_region_size = 16ULL << 40;
module_param_named(max_region_size, cowsnap_max_region_size, ullong, 0444);
MODULE_PARM_DESC(max_region_size, "Largest region size in bytes (default 16 TiB)");

unsigned int cowsnap_max_snapshots = 4096;
module_param_named(max_snapshots, cowsnap_max_snapshots, uint, 0444);
MODULE_PARM_DESC(max_snapshots, "Most snapshots one region may hold (default 4096)");

unsigned int cowsnap_max_regions = 4096;
module_param_named(max_regions, cowsnap_max_regions, uint, 0444);
MODULE_PARM_DESC(max_regions, "Most regions over all users, clones included (default 4096)");

unsigned int cowsnap_max_user_regions = 1024;
module_param_named(max_user_regions, cowsnap_max_user_regions, uint, 0444);
MODULE_PARM_DESC(max_user_regions,
		 "Most regions one uid may own; CAP_SYS_RESOURCE is exempt (default 1024)");

#define COWSNAP_FEATURES	(COWSNAP_FEAT_REGIONS | COWSNAP_FEAT_SNAPSHOTS | \
				 COWSNAP_FEAT_RESTORE | COWSNAP_FEAT_DIFF | \
				 COWSNAP_FEAT_CLONE)

/* Attach @h to @r (consumes a user reference) unless already attached. */
static int cowsnap_handle_attach(struct file *file, struct cowsnap_region *r,
				 bool writable)
{
	struct cowsnap_handle *h = file->private_data;
	int ret = 0;

	mutex_lock(&h->lock);
	if (h->region) {
		ret = -EBUSY;
	} else {
		h->writable = writable;
		/*
		 * Every handle of a region shares the region's mappings; the
		 * read-only ones have their own, which the write-protect
		 * walkers never meet.
		 */
		file->f_mapping = writable ? r->inode->i_mapping :
					     r->ro_inode->i_mapping;
		/* Publish after f_mapping and writable; pairs with the acquire. */
		smp_store_release(&h->region, r);
	}
	mutex_unlock(&h->lock);
	if (ret)
		cowsnap_region_put_user(r);
	return ret;
}

static struct cowsnap_region *cowsnap_handle_region(struct file *file)
{
	struct cowsnap_handle *h = file->private_data;

	/* Pairs with the release in attach: f_mapping is set when seen. */
	return smp_load_acquire(&h->region);
}

static long cowsnap_ioc_api(struct file *file, struct cowsnap_region *r,
			    void __user *argp);

static long cowsnap_ioc_create(struct file *file, struct cowsnap_region *unused,
			       void __user *argp)
{
	struct cowsnap_region *r;
	struct cowsnap_create arg;
	int ret;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || arg.reserved[0] || arg.reserved[1] ||
	    (arg.mode & ~0777))
		return -EINVAL;
	ret = cowsnap_name_check(arg.name, false);
	if (ret)
		return ret;
	if (!arg.size || !PAGE_ALIGNED(arg.size))
		return -EINVAL;
	if (arg.size > cowsnap_max_region_size || arg.size > MAX_LFS_FILESIZE)
		return -E2BIG;
	if (cowsnap_handle_region(file))
		return -EBUSY;
	r = cowsnap_region_alloc(arg.name, arg.size, arg.mode);
	if (IS_ERR(r))
		return PTR_ERR(r);
	ret = cowsnap_region_publish(r);
	if (ret) {
		cowsnap_region_put_user(r);
		return ret;
	}
	/* The creator's access follows its open mode, as with O_CREAT. */
	ret = cowsnap_handle_attach(file, r, file->f_mode & FMODE_WRITE);
	if (ret)	/* lost a race with another attach on this handle */
		cowsnap_region_unpublish(r);
	return ret;
}

/* Copy in a struct cowsnap_name and check it. */
static int cowsnap_get_name(struct cowsnap_name *arg, void __user *argp)
{
	if (copy_from_user(arg, argp, sizeof(*arg)))
		return -EFAULT;
	if (arg->flags || arg->reserved)
		return -EINVAL;
	return cowsnap_name_check(arg->name, false);
}

static long cowsnap_ioc_attach(struct file *file, struct cowsnap_region *unused,
			       void __user *argp)
{
	bool writable = file->f_mode & FMODE_WRITE;
	struct cowsnap_region *r;
	struct cowsnap_name arg;
	int ret;

	ret = cowsnap_get_name(&arg, argp);
	if (ret)
		return ret;
	if (cowsnap_handle_region(file))
		return -EBUSY;
	r = cowsnap_region_find(arg.name);
	if (!r)
		return -ENOENT;
	ret = cowsnap_region_permission(r, MAY_READ |
					(writable ? MAY_WRITE : 0));
	if (ret) {
		cowsnap_region_put_user(r);
		return ret;
	}
	return cowsnap_handle_attach(file, r, writable);
}

static long cowsnap_ioc_destroy(struct file *file, struct cowsnap_region *r,
				void __user *argp)
{
	struct cowsnap_name arg;
	int ret;

	ret = cowsnap_get_name(&arg, argp);
	if (ret)
		return ret;
	return cowsnap_region_destroy(arg.name);
}

static long cowsnap_ioc_info(struct file *file, struct cowsnap_region *r,
			     void __user *argp)
{
	struct cowsnap_handle *h = file->private_data;
	struct cowsnap_info info = { 0 };

	mutex_lock(&cowsnap_regions_lock);
	if (r->destroyed)
		info.flags |= COWSNAP_INFO_DESTROYED;
	else
		strscpy(info.name, r->name, sizeof(info.name));
	mutex_unlock(&cowsnap_regions_lock);
	if (h->writable)
		info.flags |= COWSNAP_INFO_WRITABLE;
	info.size = r->size;
	info.uid = from_kuid_munged(current_user_ns(), r->uid);
	info.gid = from_kgid_munged(current_user_ns(), r->gid);
	info.mode = r->mode;
	mutex_lock(&r->lock);
	info.resident_pages = atomic_long_read(&r->nr_pages);
	info.shared_pages = cowsnap_live_shared(r);
	info.nr_snapshots = r->nr_snaps;
	info.newest_snapshot = cowsnap_newest_id(r);
	mutex_unlock(&r->lock);
	return copy_to_user(argp, &info, sizeof(info)) ? -EFAULT : 0;
}

#define COWSNAP_IOC_ATTACHED	BIT(0)	/* needs an attached handle */
#define COWSNAP_IOC_WRITE	BIT(1)	/* needs a writable handle */

#define COWSNAP_WRAP(fn)						\
static long fn##_h(struct file *file, struct cowsnap_region *r,		\
		   void __user *argp)					\
{									\
	return fn(r, argp);						\
}

COWSNAP_WRAP(cowsnap_ioc_snap_create)
COWSNAP_WRAP(cowsnap_ioc_snap_list)
COWSNAP_WRAP(cowsnap_ioc_snap_delete)
COWSNAP_WRAP(cowsnap_ioc_snap_open)
COWSNAP_WRAP(cowsnap_ioc_restore)
COWSNAP_WRAP(cowsnap_ioc_diff)
COWSNAP_WRAP(cowsnap_ioc_clone)

/* Every ioctl, by number: the command, its handler and what it needs. */
static const struct {
	unsigned int cmd;
	long (*fn)(struct file *file, struct cowsnap_region *r,
		   void __user *argp);
	unsigned int needs;
} cowsnap_iocs[] = {
	[_COWSNAP_IOC_API] = { COWSNAP_IOC_API, cowsnap_ioc_api, 0 },
	[_COWSNAP_IOC_CREATE] = { COWSNAP_IOC_CREATE, cowsnap_ioc_create, 0 },
	[_COWSNAP_IOC_ATTACH] = { COWSNAP_IOC_ATTACH, cowsnap_ioc_attach, 0 },
	[_COWSNAP_IOC_DESTROY] = { COWSNAP_IOC_DESTROY, cowsnap_ioc_destroy, 0 },
	[_COWSNAP_IOC_INFO] = { COWSNAP_IOC_INFO, cowsnap_ioc_info,
				COWSNAP_IOC_ATTACHED },
	[_COWSNAP_IOC_SNAP_CREATE] = { COWSNAP_IOC_SNAP_CREATE,
				       cowsnap_ioc_snap_create_h,
				       COWSNAP_IOC_ATTACHED | COWSNAP_IOC_WRITE },
	[_COWSNAP_IOC_SNAP_LIST] = { COWSNAP_IOC_SNAP_LIST,
				     cowsnap_ioc_snap_list_h,
				     COWSNAP_IOC_ATTACHED },
	[_COWSNAP_IOC_SNAP_DELETE] = { COWSNAP_IOC_SNAP_DELETE,
				       cowsnap_ioc_snap_delete_h,
				       COWSNAP_IOC_ATTACHED | COWSNAP_IOC_WRITE },
	[_COWSNAP_IOC_SNAP_OPEN] = { COWSNAP_IOC_SNAP_OPEN,
				     cowsnap_ioc_snap_open_h,
				     COWSNAP_IOC_ATTACHED },
	[_COWSNAP_IOC_RESTORE] = { COWSNAP_IOC_RESTORE, cowsnap_ioc_restore_h,
				   COWSNAP_IOC_ATTACHED | COWSNAP_IOC_WRITE },
	[_COWSNAP_IOC_DIFF] = { COWSNAP_IOC_DIFF, cowsnap_ioc_diff_h,
				COWSNAP_IOC_ATTACHED },
	[_COWSNAP_IOC_CLONE] = { COWSNAP_IOC_CLONE, cowsnap_ioc_clone_h,
				 COWSNAP_IOC_ATTACHED | COWSNAP_IOC_WRITE },
};

static long cowsnap_ioc_api(struct file *file, struct cowsnap_region *r,
			    void __user *argp)
{
	struct cowsnap_api api;
	unsigned int i;

	if (copy_from_user(&api, argp, sizeof(api)))
		return -EFAULT;
	if (api.api != COWSNAP_API_VERSION || api.reserved)
		return -EINVAL;
	api.features = COWSNAP_FEATURES;
	api.ioctls = 0;
	for (i = 0; i < ARRAY_SIZE(cowsnap_iocs); i++)
		if (cowsnap_iocs[i].fn)
			api.ioctls |= 1ULL << i;
	if (copy_to_user(argp, &api, sizeof(api)))
		return -EFAULT;
	return 0;
}

static long cowsnap_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	struct cowsnap_handle *h = file->private_data;
	unsigned int nr = _IOC_NR(cmd);
	struct cowsnap_region *r;

	if (_IOC_TYPE(cmd) != COWSNAP_IOC_TYPE ||
	    nr >= ARRAY_SIZE(cowsnap_iocs) || cowsnap_iocs[nr].cmd != cmd ||
	    !cowsnap_iocs[nr].fn)
		return -ENOTTY;
	r = cowsnap_handle_region(file);
	if ((cowsnap_iocs[nr].needs & COWSNAP_IOC_ATTACHED) && !r)
		return -EINVAL;		/* not attached */
	/* Changing a region takes write permission (see attach). */
	if ((cowsnap_iocs[nr].needs & COWSNAP_IOC_WRITE) && !h->writable)
		return -EACCES;
	return cowsnap_iocs[nr].fn(file, r, (void __user *)arg);
}

static int cowsnap_open(struct inode *inode, struct file *file)
{
	struct cowsnap_handle *h = kzalloc(sizeof(*h), GFP_KERNEL);

	if (!h)
		return -ENOMEM;
	mutex_init(&h->lock);
	file->private_data = h;
	return 0;
}

static int cowsnap_release(struct inode *inode, struct file *file)
{
	struct cowsnap_handle *h = file->private_data;

	if (h->region)
		cowsnap_region_put_user(h->region);
	mutex_destroy(&h->lock);
	kfree(h);
	return 0;
}

static int cowsnap_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct cowsnap_handle *h = file->private_data;
	struct cowsnap_region *r = cowsnap_handle_region(file);

	if (!r)
		return -EINVAL;		/* not attached, as for every call */
	return cowsnap_live_mmap(r, h->writable, vma);
}

/*
 * Called before the VFS takes mapping_map_writable() on file->f_mapping:
 * refusing unattached handles here means that mapping is the region's, so
 * an attach racing an mmap cannot unbalance i_mmap_writable.
 */
static unsigned long cowsnap_get_unmapped_area(struct file *file,
					       unsigned long addr,
					       unsigned long len,
					       unsigned long pgoff,
					       unsigned long flags)
{
	if (!cowsnap_handle_region(file))
		return -EINVAL;		/* not attached */
#ifdef COWSNAP_HAVE_MM_GET_UNMAPPED_AREA
	return mm_get_unmapped_area(current->mm, file, addr, len, pgoff, flags);
#else
	return current->mm->get_unmapped_area(file, addr, len, pgoff, flags);
#endif
}

static ssize_t cowsnap_read(struct file *file, char __user *buf, size_t len,
			    loff_t *ppos)
{
	struct cowsnap_region *r = cowsnap_handle_region(file);

	if (!r)
		return -EINVAL;
	return cowsnap_read_pages(r, 0, r->size, buf, len, ppos);
}

static ssize_t cowsnap_write(struct file *file, const char __user *buf,
			     size_t len, loff_t *ppos)
{
	struct cowsnap_handle *h = file->private_data;
	struct cowsnap_region *r = cowsnap_handle_region(file);

	if (!r)
		return -EINVAL;
	if (!h->writable)
		return -EBADF;
	return cowsnap_live_write(r, buf, len, ppos);
}

static loff_t cowsnap_llseek(struct file *file, loff_t off, int whence)
{
	struct cowsnap_region *r = cowsnap_handle_region(file);

	return fixed_size_llseek(file, off, whence, r ? r->size : 0);
}

static const struct file_operations cowsnap_dev_fops = {
	.owner		= THIS_MODULE,
	.open		= cowsnap_open,
	.release	= cowsnap_release,
	.read		= cowsnap_read,
	.write		= cowsnap_write,
	.llseek		= cowsnap_llseek,
	.mmap		= cowsnap_mmap,
	.get_unmapped_area = cowsnap_get_unmapped_area,
	.unlocked_ioctl	= cowsnap_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

static struct miscdevice cowsnap_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "cowsnap",
	.fops	= &cowsnap_dev_fops,
};

static int __init cowsnap_init(void)
{
	int ret;

	if (dev_mode != 0600 && dev_mode != 0666) {
		pr_err("cowsnap: dev_mode must be 0600 or 0666\n");
		return -EINVAL;
	}
	if (!cowsnap_max_pages)
		cowsnap_max_pages = totalram_pages() / 2;
	cowsnap_misc.mode = dev_mode;

	cowsnap_zero_page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!cowsnap_zero_page)
		return -ENOMEM;
	ret = cowsnap_history_init();
	if (ret)
		goto err_page;
	ret = cowsnap_procfs_init();
	if (ret)
		goto err_hist;
	ret = misc_register(&cowsnap_misc);
	if (ret)
		goto err_proc;
	return 0;

err_proc:
	cowsnap_procfs_exit();
err_hist:
	cowsnap_history_exit();
err_page:
	__free_page(cowsnap_zero_page);
	return ret;
}

/* Only reached with no region, handle or snapshot fd left (module refs). */
static void __exit cowsnap_exit(void)
{
	misc_deregister(&cowsnap_misc);
	cowsnap_procfs_exit();
	cowsnap_history_exit();
	put_page(cowsnap_zero_page);
}

module_init(cowsnap_init);
module_exit(cowsnap_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Copy-on-write snapshots of shared memory regions");
MODULE_VERSION(COWSNAP_VERSION);
MODULE_AUTHOR("The cowsnap authors");

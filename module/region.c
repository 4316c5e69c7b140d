// SPDX-License-Identifier: GPL-2.0
/*
 * Regions: creation, the name table, permissions, destruction, and the
 * private pseudo filesystem whose inodes give each region (and each open
 * snapshot) an address_space of its own.
 *
 * Locking: cowsnap_regions_lock guards the name table and ->destroyed.  A
 * region is freed on the last kref put, which may come from any holder
 * (handle, snapshot fd, name table); nothing may hold region->lock then.
 */
#include <linux/cred.h>
#include <linux/ctype.h>
#include <linux/file.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>
#include <linux/slab.h>
#include "cowsnap.h"

/* Guards cowsnap_regions (the name table) and every region's ->destroyed. */
DEFINE_MUTEX(cowsnap_regions_lock);
LIST_HEAD(cowsnap_regions);

static struct vfsmount *cowsnap_mnt;

static int cowsnap_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, COWSNAP_FS_MAGIC) ? 0 : -ENOMEM;
}

/* No .owner: the kernel mount must not pin the module (rmmod would fail). */
static struct file_system_type cowsnap_fs_type = {
	.name			= "cowsnap",
	.init_fs_context	= cowsnap_fs_init_fs_context,
	.kill_sb		= kill_anon_super,
};

int cowsnap_fs_init(void)
{
	cowsnap_mnt = kern_mount(&cowsnap_fs_type);
	return PTR_ERR_OR_ZERO(cowsnap_mnt);
}

void cowsnap_fs_exit(void)
{
	kern_unmount(cowsnap_mnt);
}

/*
 * A new file on an inode of its own (so its mappings are its own), or
 * ERR_PTR.  @flags: O_RDONLY or O_RDWR.
 */
struct file *cowsnap_file_new(const char *name,
			      const struct file_operations *fops, void *priv,
			      int flags)
{
	struct inode *inode = alloc_anon_inode(cowsnap_mnt->mnt_sb);
	struct file *file;

	if (IS_ERR(inode))
		return ERR_CAST(inode);
	/* The file's reference on fops->owner, dropped by __fput(). */
	__module_get(THIS_MODULE);
	file = alloc_file_pseudo(inode, cowsnap_mnt, name, flags, fops);
	if (IS_ERR(file)) {
		module_put(THIS_MODULE);
		iput(inode);
		return file;
	}
	file->f_mode |= FMODE_LSEEK | FMODE_PREAD;
	file->private_data = priv;
	return file;
}

/* 0 if @name is a valid region name or label, else -EINVAL. */
int cowsnap_name_check(const char *name, bool may_be_empty)
{
	size_t len = strnlen(name, COWSNAP_NAME_MAX);
	size_t i;

	if (len == COWSNAP_NAME_MAX)
		return -EINVAL;		/* no NUL */
	if (!len)
		return may_be_empty ? 0 : -EINVAL;
	if (name[0] == '.')
		return -EINVAL;
	/* ASCII only: the kernel's isalnum() also takes Latin-1 letters. */
	for (i = 0; i < len; i++)
		if (!isascii(name[i]) ||
		    (!isalnum(name[i]) && !strchr("._-", name[i])))
			return -EINVAL;
	return 0;
}

/*
 * A new, unnamed-in-the-table region owned by the caller, with one
 * reference; publish it with cowsnap_region_publish().
 */
struct cowsnap_region *cowsnap_region_alloc(const char *name, u64 size,
					    umode_t mode)
{
	struct cowsnap_region *r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);

	if (!r)
		return ERR_PTR(-ENOMEM);
	r->inode = alloc_anon_inode(cowsnap_mnt->mnt_sb);
	if (IS_ERR(r->inode)) {
		long err = PTR_ERR(r->inode);

		kfree(r);
		return ERR_PTR(err);
	}
	r->inode->i_private = r;
	kref_init(&r->ref);
	INIT_LIST_HEAD(&r->node);
	strscpy(r->name, name, sizeof(r->name));
	r->size = size;
	r->npages = size >> PAGE_SHIFT;
	r->uid = current_fsuid();
	r->gid = current_fsgid();
	r->mode = mode;
	mutex_init(&r->lock);
	init_rwsem(&r->fault_sem);
	xa_init(&r->pages);
	INIT_LIST_HEAD(&r->snaps);
	r->next_id = 1;
	/* Every region pins the module: unloading never drops data. */
	__module_get(THIS_MODULE);
	atomic_long_inc(&cowsnap_stats.regions);
	return r;
}

/* Find a published region by name, referenced, or NULL. */
static struct cowsnap_region *__cowsnap_region_find(const char *name)
{
	struct cowsnap_region *r;

	lockdep_assert_held(&cowsnap_regions_lock);
	list_for_each_entry(r, &cowsnap_regions, node)
		if (!strcmp(r->name, name))
			return r;
	return NULL;
}

/* Enter @r into the name table; -EEXIST if the name is taken. */
int cowsnap_region_publish(struct cowsnap_region *r)
{
	int ret = 0;

	mutex_lock(&cowsnap_regions_lock);
	if (__cowsnap_region_find(r->name)) {
		ret = -EEXIST;
	} else {
		kref_get(&r->ref);
		list_add_tail(&r->node, &cowsnap_regions);
	}
	mutex_unlock(&cowsnap_regions_lock);
	return ret;
}

struct cowsnap_region *cowsnap_region_find(const char *name)
{
	struct cowsnap_region *r;

	mutex_lock(&cowsnap_regions_lock);
	r = __cowsnap_region_find(name);
	if (r)
		kref_get(&r->ref);
	mutex_unlock(&cowsnap_regions_lock);
	return r;
}

/* Remove @name from the table (owner or CAP_SYS_ADMIN only). */
int cowsnap_region_destroy(const char *name)
{
	struct cowsnap_region *r;

	mutex_lock(&cowsnap_regions_lock);
	r = __cowsnap_region_find(name);
	if (!r) {
		mutex_unlock(&cowsnap_regions_lock);
		return -ENOENT;
	}
	if (!uid_eq(current_fsuid(), r->uid) && !capable(CAP_SYS_ADMIN)) {
		mutex_unlock(&cowsnap_regions_lock);
		return -EPERM;
	}
	list_del_init(&r->node);
	r->destroyed = true;
	mutex_unlock(&cowsnap_regions_lock);
	cowsnap_region_put(r);
	return 0;
}

/* Take @r itself out of the name table, if it is still there. */
void cowsnap_region_unpublish(struct cowsnap_region *r)
{
	bool listed;

	mutex_lock(&cowsnap_regions_lock);
	listed = !r->destroyed && !list_empty(&r->node);
	if (listed) {
		list_del_init(&r->node);
		r->destroyed = true;
	}
	mutex_unlock(&cowsnap_regions_lock);
	if (listed)
		cowsnap_region_put(r);
}

static void cowsnap_region_release(struct kref *ref)
{
	struct cowsnap_region *r = container_of(ref, struct cowsnap_region, ref);
	struct cowsnap_snap *s, *tmp;

	list_for_each_entry_safe(s, tmp, &r->snaps, node)
		cowsnap_snap_unlink(r, s);
	cowsnap_pages_release(&r->pages);
	iput(r->inode);
	kfree(r);
	atomic_long_dec(&cowsnap_stats.regions);
	module_put(THIS_MODULE);
}

void cowsnap_region_put(struct cowsnap_region *r)
{
	kref_put(&r->ref, cowsnap_region_release);
}

/* Like a file's mode bits: MAY_READ and/or MAY_WRITE for the caller. */
int cowsnap_region_permission(struct cowsnap_region *r, int mask)
{
	unsigned int mode = r->mode;

	if (uid_eq(current_fsuid(), r->uid))
		mode >>= 6;
	else if (in_group_p(r->gid))
		mode >>= 3;
	mask &= MAY_READ | MAY_WRITE;
	if (!(mask & ~mode))
		return 0;
	if (capable(CAP_DAC_OVERRIDE))
		return 0;
	return -EACCES;
}

/*
 * Pages of @xa with exactly @owners owners (or at least, if @more).  A
 * racy read of the owner counts: exact when nothing changes meanwhile.
 */
unsigned long cowsnap_count_owned(struct xarray *xa, unsigned long owners,
				  bool more)
{
	unsigned long idx, n = 0;
	struct page *page;

	xa_for_each(xa, idx, page) {
		unsigned long o = READ_ONCE(page->private);

		if (o == owners || (more && o > owners))
			n++;
		if (!(idx & 4095))
			cond_resched();
	}
	return n;
}

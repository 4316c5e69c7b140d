// SPDX-License-Identifier: GPL-2.0
/*
 * The module's private pseudo filesystem.  Its inodes give each region three
 * address_spaces: writable mappings, read-only handles' mappings (which the
 * kernel's write-protect walkers would stop at) and snapshot fds' mappings,
 * so that unmap_mapping_pages() reaches exactly the mappings it must.
 *
 * The filesystem is mounted only while something lives on it: every inode
 * takes a pin (simple_pin_fs()), dropped when it goes; files hold the mount
 * themselves.  Its superblock holds a reference on the module (.owner)
 * until kill_sb() has run, so a last fput() that releases the superblock
 * never calls into an unloaded module, whatever rmmod does meanwhile.
 * Something else may still hold an inode then (an inotify watch): the
 * inodes are on the superblock's list, so the unmount ends such watches.
 *
 * Locking: simple_pin_fs() keeps the mount count under its own lock.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>
#include "cowsnap.h"

static struct vfsmount *cowsnap_mnt;
static int cowsnap_mnt_count;

static int cowsnap_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, COWSNAP_FS_MAGIC) ? 0 : -ENOMEM;
}

static struct file_system_type cowsnap_fs_type = {
	.owner			= THIS_MODULE,
	.name			= "cowsnap",
	.init_fs_context	= cowsnap_fs_init_fs_context,
	.kill_sb		= kill_anon_super,
};

/* A new inode on the pseudo filesystem, pinning it, or ERR_PTR. */
struct inode *cowsnap_inode_new(void)
{
	struct inode *inode;
	int err;

	err = simple_pin_fs(&cowsnap_fs_type, &cowsnap_mnt, &cowsnap_mnt_count);
	if (err)
		return ERR_PTR(err);
	inode = alloc_anon_inode(cowsnap_mnt->mnt_sb);
	if (IS_ERR(inode)) {
		simple_release_fs(&cowsnap_mnt, &cowsnap_mnt_count);
		return inode;
	}
	/*
	 * An inotify watch holds the inode but not the filesystem, and the
	 * unmount that follows the last close waits for every watch on it
	 * to go; it can end only watches on inodes it finds in s_inodes,
	 * where alloc_anon_inode() leaves none.
	 */
	inode_sb_list_add(inode);
	return inode;
}

/* Drop an inode from cowsnap_inode_new() and its pin. */
void cowsnap_inode_put(struct inode *inode)
{
	iput(inode);
	simple_release_fs(&cowsnap_mnt, &cowsnap_mnt_count);
}

/*
 * A new file on @inode (which it references from now on), or ERR_PTR.
 * @flags: O_RDONLY or O_RDWR.  The file holds the mount (and so the
 * module) until its last fput().  The caller's own reference on @inode
 * keeps the filesystem pinned meanwhile.
 */
struct file *cowsnap_file_new(const char *name,
			      const struct file_operations *fops, void *priv,
			      struct inode *inode, int flags)
{
	struct file *file;

	ihold(inode);
	/* The file's reference on fops->owner, dropped by __fput(). */
	__module_get(THIS_MODULE);
	file = alloc_file_pseudo(inode, cowsnap_mnt, name, flags, fops);
	if (IS_ERR(file)) {
		module_put(THIS_MODULE);
		iput(inode);
		return file;
	}
	file->f_mode |= FMODE_LSEEK | FMODE_PREAD | FMODE_PWRITE;
	file->private_data = priv;
	return file;
}

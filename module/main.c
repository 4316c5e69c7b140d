// SPDX-License-Identifier: GPL-2.0
/*
 * cowsnap: copy-on-write snapshots of shared memory regions.
 *
 * This file holds module parameters, the /dev/cowsnap misc device and the
 * ioctl dispatch.  Locking is described in cowsnap.h.
 */
#include <linux/miscdevice.h>
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
		 "Global page budget over all regions and snapshots (0: half of RAM)");

unsigned long long cowsnap_max_region_size = 16ULL << 40;
module_param_named(max_region_size, cowsnap_max_region_size, ullong, 0444);
MODULE_PARM_DESC(max_region_size, "Largest region size in bytes (default 16 TiB)");

unsigned int cowsnap_max_snapshots = 4096;
module_param_named(max_snapshots, cowsnap_max_snapshots, uint, 0444);
MODULE_PARM_DESC(max_snapshots, "Most snapshots one region may hold (default 4096)");

#define COWSNAP_FEATURES	0ULL
#define COWSNAP_IOCTLS		BIT_ULL(_IOC_NR(COWSNAP_IOC_API))

static long cowsnap_ioc_api(void __user *argp)
{
	struct cowsnap_api api;

	if (copy_from_user(&api, argp, sizeof(api)))
		return -EFAULT;
	if (api.api != COWSNAP_API_VERSION || api.reserved)
		return -EINVAL;
	api.features = COWSNAP_FEATURES;
	api.ioctls = COWSNAP_IOCTLS;
	if (copy_to_user(argp, &api, sizeof(api)))
		return -EFAULT;
	return 0;
}

static long cowsnap_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case COWSNAP_IOC_API:
		return cowsnap_ioc_api(argp);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations cowsnap_dev_fops = {
	.owner		= THIS_MODULE,
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

	ret = cowsnap_procfs_init();
	if (ret)
		return ret;
	ret = misc_register(&cowsnap_misc);
	if (ret)
		cowsnap_procfs_exit();
	return ret;
}

static void __exit cowsnap_exit(void)
{
	misc_deregister(&cowsnap_misc);
	cowsnap_procfs_exit();
}

module_init(cowsnap_init);
module_exit(cowsnap_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Copy-on-write snapshots of shared memory regions");
MODULE_VERSION(COWSNAP_VERSION);
MODULE_AUTHOR("The cowsnap authors");

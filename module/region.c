// SPDX-License-Identifier: GPL-2.0
/*
 * Regions: creation, the name table, permissions, limits, destruction.
 *
 * A region is named in a hash table until destroyed.  Its @users (the name
 * and attached handles) keep the live view; when the last goes the live
 * view is retired (cowsnap_region_put_user()): snapshots nobody has open
 * are deleted and pages only a remaining open snapshot needs stay in the
 * history.  Its @ref keeps the structure and history for open snapshot
 * fds and transient holders.
 *
 * Limits: max_regions over all users and max_user_regions per owner uid
 * (CAP_SYS_RESOURCE is exempt from the latter), counted from creation until
 * the live view is retired, as SysV's shmmni counts segments.
 *
 * Locking: cowsnap_regions_lock guards the name table, the creation-order
 * index, ->destroyed and the per-user counts.  The final put may come from any
 * holder; nothing may hold region->lock then.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/ctype.h>
#include <linux/hashtable.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/stringhash.h>
#include "cowsnap.h"

/* Guards the name table, the creation-order index, the per-user counts. */
DEFINE_MUTEX(cowsnap_regions_lock);
static DEFINE_HASHTABLE(cowsnap_names, 10);
/* Published regions by creation number, for /proc/cowsnap. */
static DEFINE_XARRAY(cowsnap_rids);
static unsigned long cowsnap_next_rid = 1;
static unsigned int cowsnap_nr_regions;
/* uid -> regions owned (xa_mk_value), under cowsnap_regions_lock. */
static DEFINE_XARRAY(cowsnap_user_regions);

/*
 * 0 if @name is a valid region name or label; -ENAMETOOLONG without a NUL
 * in its COWSNAP_NAME_MAX bytes, else -EINVAL.
 */
int cowsnap_name_check(const char *name, bool may_be_empty)
{
	size_t len = strnlen(name, COWSNAP_NAME_MAX);
	size_t i;

	if (len == COWSNAP_NAME_MAX)
		return -ENAMETOOLONG;	/* no NUL */
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

static u32 cowsnap_name_hash(const char *name)
{
	return full_name_hash(NULL, name, strlen(name));
}

/* Count a region against the limits for @uid; -ENOSPC past them. */
static int cowsnap_limits_charge(kuid_t uid)
{
	unsigned long key = __kuid_val(uid);
	unsigned long n;
	void *old;

	lockdep_assert_held(&cowsnap_regions_lock);
	if (cowsnap_nr_regions >= cowsnap_max_regions)
		return -ENOSPC;
	old = xa_load(&cowsnap_user_regions, key);
	n = old ? xa_to_value(old) : 0;
	if (n >= cowsnap_max_user_regions && !capable(CAP_SYS_RESOURCE))
		return -ENOSPC;
	if (xa_err(xa_store(&cowsnap_user_regions, key, xa_mk_value(n + 1),
			    GFP_KERNEL)))
		return -ENOMEM;
	cowsnap_nr_regions++;
	return 0;
}

static void cowsnap_limits_uncharge(kuid_t uid)
{
	unsigned long key = __kuid_val(uid);
	unsigned long n;

	mutex_lock(&cowsnap_regions_lock);
	n = xa_to_value(xa_load(&cowsnap_user_regions, key));
	if (n > 1)
		xa_store(&cowsnap_user_regions, key, xa_mk_value(n - 1),
			 GFP_KERNEL);	/* replaces: allocates nothing */
	else
		xa_erase(&cowsnap_user_regions, key);
	cowsnap_nr_regions--;
	mutex_unlock(&cowsnap_regions_lock);
}

/* What a region costs the budget: itself and its zero page. */
#define COWSNAP_REGION_BYTES	(sizeof(struct cowsnap_region) + PAGE_SIZE)

static void cowsnap_region_free(struct cowsnap_region *r)
{
	if (r->snap_inode)
		cowsnap_inode_put(r->snap_inode);
	if (r->ro_inode)
		cowsnap_inode_put(r->ro_inode);
	if (r->inode)
		cowsnap_inode_put(r->inode);
	if (r->zero_page)
		__free_page(r->zero_page);
	cowsnap_budget_uncharge(0, COWSNAP_REGION_BYTES);
	kfree(r);
}

static struct inode *cowsnap_region_inode(struct cowsnap_region *r)
{
	struct inode *inode = cowsnap_inode_new();

	if (!IS_ERR(inode))
		inode->i_private = r;
	return inode;
}

/*
 * A new region owned by the caller, counted against the limits, with one
 * user; publish it with cowsnap_region_publish().
 */
struct cowsnap_region *cowsnap_region_alloc(const char *name, u64 size,
					    umode_t mode)
{
	struct cowsnap_region *r;
	struct inode *inode;
	int err;

	if (!cowsnap_budget_charge(0, COWSNAP_REGION_BYTES))
		return ERR_PTR(-ENOMEM);
	r = kzalloc(sizeof(*r), COWSNAP_GFP);
	if (!r) {
		cowsnap_budget_uncharge(0, COWSNAP_REGION_BYTES);
		return ERR_PTR(-ENOMEM);
	}
	kref_init(&r->ref);
	atomic_set(&r->users, 1);
	INIT_HLIST_NODE(&r->hnode);
	strscpy(r->name, name, sizeof(r->name));
	r->size = size;
	r->npages = size >> PAGE_SHIFT;
	r->uid = current_fsuid();
	r->gid = current_fsgid();
	r->mode = mode;
	mutex_init(&r->lock);
	init_rwsem(&r->fault_sem);
	xa_init_flags(&r->pages, XA_FLAGS_ACCOUNT);
	xa_init_flags(&r->hist, XA_FLAGS_ACCOUNT);
	xa_init(&r->pinned);
	INIT_LIST_HEAD(&r->snaps);
	r->next_id = 1;
	/* Reads of holes map it: they must never need an allocation. */
	r->zero_page = alloc_page(GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT |
				  __GFP_RETRY_MAYFAIL | __GFP_NOWARN);
	if (!r->zero_page) {
		inode = ERR_PTR(-ENOMEM);
		goto fail;
	}

	inode = cowsnap_region_inode(r);
	if (IS_ERR(inode))
		goto fail;
	r->inode = inode;
	inode = cowsnap_region_inode(r);
	if (IS_ERR(inode))
		goto fail;
	r->ro_inode = inode;
	inode = cowsnap_region_inode(r);
	if (IS_ERR(inode))
		goto fail;
	r->snap_inode = inode;

	mutex_lock(&cowsnap_regions_lock);
	err = cowsnap_limits_charge(r->uid);
	mutex_unlock(&cowsnap_regions_lock);
	if (err) {
		cowsnap_region_free(r);
		return ERR_PTR(err);
	}
	/* Every region pins the module: unloading never drops data. */
	__module_get(THIS_MODULE);
	atomic_long_inc(&cowsnap_stats.regions);
	return r;
fail:
	cowsnap_region_free(r);
	return ERR_CAST(inode);
}

/* Published region @name, or NULL; caller holds cowsnap_regions_lock. */
static struct cowsnap_region *__cowsnap_region_find(const char *name)
{
	struct cowsnap_region *r;

	lockdep_assert_held(&cowsnap_regions_lock);
	hash_for_each_possible(cowsnap_names, r, hnode,
			       cowsnap_name_hash(name))
		if (!strcmp(r->name, name))
			return r;
	return NULL;
}

/* Enter @r into the name table; -EEXIST if the name is taken. */
int cowsnap_region_publish(struct cowsnap_region *r)
{
	int ret;

	mutex_lock(&cowsnap_regions_lock);
	if (__cowsnap_region_find(r->name)) {
		ret = -EEXIST;
	} else {
		ret = xa_insert(&cowsnap_rids, cowsnap_next_rid, r, COWSNAP_GFP);
		if (!ret) {
			r->rid = cowsnap_next_rid++;
			atomic_inc(&r->users);	/* the name's */
			hash_add(cowsnap_names, &r->hnode,
				 cowsnap_name_hash(r->name));
		}
	}
	mutex_unlock(&cowsnap_regions_lock);
	return ret;
}

/* Published region @name with a user reference for the caller, or NULL. */
struct cowsnap_region *cowsnap_region_find(const char *name)
{
	struct cowsnap_region *r;

	mutex_lock(&cowsnap_regions_lock);
	r = __cowsnap_region_find(name);
	if (r)
		atomic_inc(&r->users);
	mutex_unlock(&cowsnap_regions_lock);
	return r;
}

/* Take @r out of the name table; caller holds cowsnap_regions_lock. */
static void __cowsnap_region_unpublish(struct cowsnap_region *r)
{
	hash_del(&r->hnode);
	xa_erase(&cowsnap_rids, r->rid);
	r->destroyed = true;
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
	__cowsnap_region_unpublish(r);
	mutex_unlock(&cowsnap_regions_lock);
	cowsnap_region_put_user(r);
	return 0;
}

/* Take @r itself out of the name table, if it is still there. */
void cowsnap_region_unpublish(struct cowsnap_region *r)
{
	bool listed;

	mutex_lock(&cowsnap_regions_lock);
	listed = !r->destroyed && !hlist_unhashed(&r->hnode);
	if (listed)
		__cowsnap_region_unpublish(r);
	mutex_unlock(&cowsnap_regions_lock);
	if (listed)
		cowsnap_region_put_user(r);
}

static void cowsnap_region_release(struct kref *ref)
{
	struct cowsnap_region *r = container_of(ref, struct cowsnap_region, ref);

	/* Retired: no live page, no snapshot, no record is left. */
	WARN_ON_ONCE(!list_empty(&r->snaps) || !xa_empty(&r->pages));
	xa_destroy(&r->hist);	/* reserved slots only */
	cowsnap_region_free(r);
	module_put(THIS_MODULE);
}

void cowsnap_region_get(struct cowsnap_region *r)
{
	kref_get(&r->ref);
}

void cowsnap_region_put(struct cowsnap_region *r)
{
	kref_put(&r->ref, cowsnap_region_release);
}

/*
 * Drop a user of @r.  The last one retires the live view: snapshots
 * without an open fd are deleted, the live pages the others hold move to
 * the history, the rest are freed.
 */
void cowsnap_region_put_user(struct cowsnap_region *r)
{
	struct cowsnap_snap *s, *tmp;

	if (!atomic_dec_and_test(&r->users))
		return;
	mutex_lock(&r->lock);
	list_for_each_entry_safe_reverse(s, tmp, &r->snaps, node)
		if (s->listed)
			cowsnap_snap_unlist(r, s);
	down_write(&r->fault_sem);
	cowsnap_live_retire(r);
	up_write(&r->fault_sem);
	mutex_unlock(&r->lock);
	/* What is left is an open snapshot's: the region itself is gone. */
	cowsnap_limits_uncharge(r->uid);
	atomic_long_dec(&cowsnap_stats.regions);
	cowsnap_region_put(r);
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

/* Whether /proc/cowsnap shows @r to the caller: it may attach, or admin. */
bool cowsnap_region_visible(struct cowsnap_region *r)
{
	unsigned int mode = r->mode;

	if (uid_eq(current_fsuid(), r->uid))
		mode >>= 6;
	else if (in_group_p(r->gid))
		mode >>= 3;
	return (mode & MAY_READ) || capable(CAP_SYS_ADMIN) ||
	       capable(CAP_DAC_OVERRIDE);
}

/*
 * Up to @max published regions created after @after, in creation order,
 * referenced into @rs; returns how many.  Lets /proc/cowsnap walk the
 * table in bounded steps without holding its lock.
 */
unsigned int cowsnap_regions_next(u64 after, struct cowsnap_region **rs,
				  unsigned int max)
{
	struct cowsnap_region *r;
	unsigned long rid;
	unsigned int n = 0;

	mutex_lock(&cowsnap_regions_lock);
	xa_for_each_start(&cowsnap_rids, rid, r, after + 1) {
		cowsnap_region_get(r);
		rs[n++] = r;
		if (n == max)
			break;
	}
	mutex_unlock(&cowsnap_regions_lock);
	return n;
}

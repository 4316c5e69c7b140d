// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/cowsnap: global counters, then one record per region and snapshot.
 * The format is documented in README.md ("/proc/cowsnap").
 *
 * Locking: counters are atomics read without locks; each region's records
 * are printed under its own lock, holding a reference taken from the name
 * table (not its lock, which create/attach/destroy need).
 */
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/user_namespace.h>
#include "cowsnap.h"

static void cowsnap_show_counter(struct seq_file *m, const char *name,
				 atomic_long_t *v)
{
	seq_printf(m, "%-16s %ld\n", name, atomic_long_read(v));
}

/*
 * Referenced regions of the name table, so that the page walks below run
 * without cowsnap_regions_lock (they would stall every create and attach).
 */
static struct cowsnap_region **cowsnap_regions_get(unsigned int *n)
{
	struct cowsnap_region **rs, *r;
	unsigned int cap = 0;

	mutex_lock(&cowsnap_regions_lock);
	list_for_each_entry(r, &cowsnap_regions, node)
		cap++;
	rs = kmalloc_array(max(cap, 1U), sizeof(*rs), GFP_KERNEL);
	*n = 0;
	if (rs)
		list_for_each_entry(r, &cowsnap_regions, node) {
			kref_get(&r->ref);
			rs[(*n)++] = r;
		}
	mutex_unlock(&cowsnap_regions_lock);
	return rs;
}

/* One line per region, then one per snapshot; sizes in bytes or pages. */
static void cowsnap_show_records(struct seq_file *m)
{
	struct cowsnap_region **rs, *r;
	struct cowsnap_snap *snap;
	unsigned int n, i;

	rs = cowsnap_regions_get(&n);
	if (!rs)
		return;
	seq_puts(m, "# region name size resident shared snapshots newest uid gid mode\n");
	for (i = 0; i < n; i++) {
		r = rs[i];
		mutex_lock(&r->lock);
		seq_printf(m, "region %s %llu %ld %lu %u %llu %u %u %04o\n",
			   r->name, r->size, atomic_long_read(&r->nr_pages),
			   cowsnap_count_owned(&r->pages, 2, true), r->nr_snaps,
			   cowsnap_newest_id(r),
			   from_kuid_munged(&init_user_ns, r->uid),
			   from_kgid_munged(&init_user_ns, r->gid), r->mode);
		mutex_unlock(&r->lock);
	}
	seq_puts(m, "# snapshot region id label ctime_ns referenced exclusive\n");
	for (i = 0; i < n; i++) {
		r = rs[i];
		mutex_lock(&r->lock);
		list_for_each_entry(snap, &r->snaps, node)
			seq_printf(m, "snapshot %s %llu %s %llu %lu %lu\n",
				   r->name, snap->id,
				   snap->label[0] ? snap->label : "-",
				   snap->ctime_ns, snap->nr_pages,
				   cowsnap_count_owned(&snap->pages, 1, false));
		mutex_unlock(&r->lock);
	}
	for (i = 0; i < n; i++)
		cowsnap_region_put(rs[i]);
	kfree(rs);
}

static int cowsnap_proc_show(struct seq_file *m, void *v)
{
	struct cowsnap_stats *s = &cowsnap_stats;

	seq_printf(m, "version          %s\n", COWSNAP_VERSION);
	seq_printf(m, "api              %d\n", COWSNAP_API_VERSION);
	cowsnap_show_counter(m, "regions", &s->regions);
	cowsnap_show_counter(m, "snapshots", &s->snapshots);
	cowsnap_show_counter(m, "pages_allocated", &s->pages_allocated);
	cowsnap_show_counter(m, "pages_shared", &s->pages_shared);
	seq_printf(m, "%-16s %lu\n", "pages_limit", cowsnap_max_pages);
	cowsnap_show_counter(m, "cow_faults", &s->cow_faults);
	cowsnap_show_counter(m, "bytes_copied", &s->bytes_copied);
	cowsnap_show_counter(m, "read_faults", &s->read_faults);
	cowsnap_show_counter(m, "write_faults", &s->write_faults);
	cowsnap_show_counter(m, "pinned_copies", &s->pinned_copies);
	cowsnap_show_counter(m, "restores", &s->restores);
	cowsnap_show_counter(m, "pages_restored", &s->pages_restored);
	cowsnap_show_counter(m, "clones", &s->clones);
	cowsnap_show_counter(m, "alloc_failures", &s->alloc_failures);
	cowsnap_show_records(m);
	return 0;
}

int cowsnap_procfs_init(void)
{
	if (!proc_create_single("cowsnap", 0444, NULL, cowsnap_proc_show))
		return -ENOMEM;
	return 0;
}

void cowsnap_procfs_exit(void)
{
	remove_proc_entry("cowsnap", NULL);
}

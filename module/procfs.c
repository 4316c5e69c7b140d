// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/cowsnap: global counters, then one record per region and snapshot.
 * The format is documented in README.md ("/proc/cowsnap").  A reader sees
 * the regions it may attach (all of them with CAP_SYS_ADMIN or
 * CAP_DAC_OVERRIDE); ids are shown in the reader's user namespace.
 *
 * Every figure is a counter, so the cost is in the records printed, not in
 * the pages: regions are taken from the name table a few at a time and
 * referenced, each printed under its own lock (never the table's).
 *
 * Locking: counters are atomics read without locks.
 */
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/user_namespace.h>
#include "cowsnap.h"

#define COWSNAP_PROC_BATCH	32

static void cowsnap_show_counter(struct seq_file *m, const char *name,
				 atomic_long_t *v)
{
	seq_printf(m, "%-16s %ld\n", name, atomic_long_read(v));
}

static void cowsnap_show_region(struct seq_file *m, struct cowsnap_region *r)
{
	struct user_namespace *ns = seq_user_ns(m);

	seq_printf(m, "region %s %llu %ld %lu %u %llu %u %u %04o\n",
		   r->name, r->size, atomic_long_read(&r->nr_pages),
		   cowsnap_live_shared(r), r->nr_snaps, cowsnap_newest_id(r),
		   from_kuid_munged(ns, r->uid), from_kgid_munged(ns, r->gid),
		   r->mode);
}

static void cowsnap_show_snapshots(struct seq_file *m,
				   struct cowsnap_region *r)
{
	struct cowsnap_snap *s;

	list_for_each_entry(s, &r->snaps, node)
		if (s->listed)
			seq_printf(m, "snapshot %s %llu %s %llu %lu %ld\n",
				   r->name, s->id,
				   s->label[0] ? s->label : "-", s->ctime_ns,
				   s->referenced,
				   atomic_long_read(&s->exclusive));
}

/* Print @show for every region the reader may see, in creation order. */
static void cowsnap_show_each(struct seq_file *m,
			      void (*show)(struct seq_file *m,
					   struct cowsnap_region *r))
{
	struct cowsnap_region *rs[COWSNAP_PROC_BATCH];
	unsigned long after = 0;
	unsigned int n, i;

	do {
		n = cowsnap_regions_next(after, rs, ARRAY_SIZE(rs));
		for (i = 0; i < n; i++) {
			struct cowsnap_region *r = rs[i];

			after = r->rid;
			if (cowsnap_region_visible(r)) {
				mutex_lock(&r->lock);
				show(m, r);
				mutex_unlock(&r->lock);
			}
			cowsnap_region_put(r);
		}
	} while (n == ARRAY_SIZE(rs));
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
	cowsnap_show_counter(m, "meta_bytes", &s->meta_bytes);
	cowsnap_show_counter(m, "records", &s->records);
	cowsnap_show_counter(m, "cow_faults", &s->cow_faults);
	cowsnap_show_counter(m, "bytes_copied", &s->bytes_copied);
	cowsnap_show_counter(m, "read_faults", &s->read_faults);
	cowsnap_show_counter(m, "write_faults", &s->write_faults);
	cowsnap_show_counter(m, "pinned_copies", &s->pinned_copies);
	cowsnap_show_counter(m, "restores", &s->restores);
	cowsnap_show_counter(m, "pages_restored", &s->pages_restored);
	cowsnap_show_counter(m, "clones", &s->clones);
	cowsnap_show_counter(m, "alloc_failures", &s->alloc_failures);
	seq_puts(m, "# region name size resident shared snapshots newest uid gid mode\n");
	cowsnap_show_each(m, cowsnap_show_region);
	seq_puts(m, "# snapshot region id label ctime_ns referenced exclusive\n");
	cowsnap_show_each(m, cowsnap_show_snapshots);
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

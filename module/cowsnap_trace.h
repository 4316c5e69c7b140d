/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints cowsnap:*, for perf, trace-cmd and tracefs.  Names are
 * fixed-size arrays, which spares the __assign_str() signature that
 * changed between 6.1 and 6.12.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM cowsnap

#if !defined(_COWSNAP_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _COWSNAP_TRACE_H

#include <linux/tracepoint.h>
#include <linux/cowsnap.h>

TRACE_EVENT(cowsnap_snapshot,
	TP_PROTO(const char *region, u64 id, unsigned long pages,
		 int err),
	TP_ARGS(region, id, pages, err),
	TP_STRUCT__entry(
		__array(char, region, COWSNAP_NAME_MAX)
		__field(u64, id)
		__field(unsigned long, pages)
		__field(int, err)
	),
	TP_fast_assign(
		strscpy(__entry->region, region, COWSNAP_NAME_MAX);
		__entry->id = id;
		__entry->pages = pages;
		__entry->err = err;
	),
	TP_printk("region=%s id=%llu pages=%lu err=%d", __entry->region,
		  __entry->id, __entry->pages, __entry->err)
);

TRACE_EVENT(cowsnap_cow,
	TP_PROTO(const char *region, unsigned long index),
	TP_ARGS(region, index),
	TP_STRUCT__entry(
		__array(char, region, COWSNAP_NAME_MAX)
		__field(unsigned long, index)
	),
	TP_fast_assign(
		strscpy(__entry->region, region, COWSNAP_NAME_MAX);
		__entry->index = index;
	),
	TP_printk("region=%s index=%lu", __entry->region, __entry->index)
);

TRACE_EVENT(cowsnap_restore,
	TP_PROTO(const char *region, u64 id, long pages, bool walked),
	TP_ARGS(region, id, pages, walked),
	TP_STRUCT__entry(
		__array(char, region, COWSNAP_NAME_MAX)
		__field(u64, id)
		__field(long, pages)
		__field(bool, walked)
	),
	TP_fast_assign(
		strscpy(__entry->region, region, COWSNAP_NAME_MAX);
		__entry->id = id;
		__entry->pages = pages;
		__entry->walked = walked;
	),
	TP_printk("region=%s id=%llu pages=%ld walked=%d", __entry->region,
		  __entry->id, __entry->pages, __entry->walked)
);

TRACE_EVENT(cowsnap_delete,
	TP_PROTO(const char *region, u64 id, unsigned long pages),
	TP_ARGS(region, id, pages),
	TP_STRUCT__entry(
		__array(char, region, COWSNAP_NAME_MAX)
		__field(u64, id)
		__field(unsigned long, pages)
	),
	TP_fast_assign(
		strscpy(__entry->region, region, COWSNAP_NAME_MAX);
		__entry->id = id;
		__entry->pages = pages;
	),
	TP_printk("region=%s id=%llu pages=%lu", __entry->region,
		  __entry->id, __entry->pages)
);

#endif /* _COWSNAP_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE cowsnap_trace
#include <trace/define_trace.h>

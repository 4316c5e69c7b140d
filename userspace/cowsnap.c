// SPDX-License-Identifier: GPL-2.0
/*
 * cowsnap(8): manage copy-on-write memory snapshots from the shell.
 *
 * Every error is one line "cowsnap: COMMAND: what went wrong" on stderr and
 * a distinct exit status (EXIT_* below, documented in --help and the man
 * page).  Output is an aligned table with human sizes, or -H (tabs, no
 * header), -p (exact numbers) and --json (one JSON document) for scripts.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "libcowsnap.h"

#define COWSNAP_CLI_VERSION	"0.1.0"
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

enum {
	EXIT_OK		= 0,
	EXIT_ERROR	= 1,
	EXIT_USAGE	= 2,
	EXIT_NOTFOUND	= 3,	/* ENOENT */
	EXIT_PERM	= 4,	/* EACCES, EPERM */
};

static struct {
	int scripted;		/* -H */
	int parsable;		/* -p */
	int json;		/* --json */
	int help;
	const char *mode;	/* --mode */
} opt;

static const char *cmd_name;	/* the command, for error messages */
static long page_size;

static const char exit_codes_help[] =
	"Exit status:\n"
	"  0  success\n"
	"  1  error\n"
	"  2  usage error: bad arguments, names, sizes or modes\n"
	"  3  not found: no such region, snapshot or file\n"
	"  4  permission denied\n";

/* Quote user input for a message: never a newline or control character. */
static const char *q(const char *s)
{
	static char bufs[4][256];
	static int next;
	char *b = bufs[next++ & 3], *p = b;

	for (; *s && p < b + sizeof(bufs[0]) - 5; s++) {
		unsigned char c = *s;

		if (c < 0x20 || c >= 0x7f)
			p += sprintf(p, "\\x%02x", c);
		else
			*p++ = c;
	}
	*p = 0;
	return b;
}

static void __attribute__((noreturn, format(printf, 2, 3)))
fail(int code, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	if (cmd_name)
		fprintf(stderr, "cowsnap: %s: ", cmd_name);
	else
		fprintf(stderr, "cowsnap: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

#define usage_error(fmt, ...)						\
	fail(EXIT_USAGE, fmt " (see 'cowsnap %s%s--help')", ##__VA_ARGS__, \
	     cmd_name ? cmd_name : "", cmd_name ? " " : "")

static int exit_code(int err)
{
	if (err == ENOENT)
		return EXIT_NOTFOUND;
	if (err == EACCES || err == EPERM)
		return EXIT_PERM;
	return EXIT_ERROR;
}

static const char *errstr(int err)
{
	if (err == ENOTTY)
		return "not supported by the loaded cowsnap module";
	return strerror(err);
}

/* "<what>: <strerror>" with the exit status errno calls for. */
#define fail_errno(err, fmt, ...)					\
	fail(exit_code(err), fmt ": %s", ##__VA_ARGS__, errstr(err))

/* Arguments. */

static void check_name(const char *name, const char *what)
{
	if (!cowsnap_name_valid(name))
		usage_error("invalid %s '%s': use 1-63 characters of "
			    "A-Z a-z 0-9 . _ -, not starting with '.'",
			    what, q(name));
}

static uint64_t parse_size_arg(const char *s)
{
	uint64_t size;

	if (!cowsnap_parse_size(s, &size))
		return size;
	if (errno == ERANGE)
		usage_error("invalid size '%s': too large", q(s));
	usage_error("invalid size '%s': want a number of bytes > 0 with an "
		    "optional K, M, G or T suffix", q(s));
}

static mode_t parse_mode_arg(void)
{
	const char *s = opt.mode;
	char *end;
	unsigned long m;

	if (!s)
		return 0600;
	errno = 0;
	m = strtoul(s, &end, 8);
	if (!*s || *end || errno || m > 0777 || !isdigit((unsigned char)*s))
		usage_error("invalid mode '%s': want octal permission bits "
			    "0-0777, e.g. 0640", q(s));
	return m;
}

/* A SNAP argument must look like an id or a label before we go looking. */
static void check_snap_arg(const char *s)
{
	if (!cowsnap_name_valid(s))
		usage_error("invalid snapshot '%s': give an id or a label", q(s));
}

/* The device and regions. */

static int open_dev(int flags)
{
	int fd = cowsnap_open(flags), err = errno;

	if (fd >= 0)
		return fd;
	if (err == ENOENT || err == ENODEV || err == ENXIO)
		fail(exit_code(err), "cannot open " COWSNAP_DEVICE ": %s (is "
		     "the cowsnap module loaded?)", strerror(err));
	if (err == EPROTONOSUPPORT)
		fail(EXIT_ERROR, "the loaded cowsnap module does not speak "
		     "API version %d", COWSNAP_API_VERSION);
	fail_errno(err, "cannot open " COWSNAP_DEVICE);
}

/* A handle attached to region @name; read-only unless @writable. */
static int open_region(const char *name, int writable)
{
	int fd;

	check_name(name, "region name");
	fd = open_dev(writable ? O_RDWR : O_RDONLY);
	if (!cowsnap_attach(fd, name))
		return fd;
	if (errno == ENOENT)
		fail(EXIT_NOTFOUND, "no such region '%s'", name);
	fail_errno(errno, "region '%s'", name);
}

static uint64_t find_snap(int fd, const char *region, const char *spec)
{
	uint64_t id;

	check_snap_arg(spec);
	if (!cowsnap_snap_find(fd, spec, &id))
		return id;
	if (errno == ENOENT)
		fail(EXIT_NOTFOUND, "region '%s' has no snapshot '%s'",
		     region, spec);
	if (errno == ENOTUNIQ)
		fail(EXIT_ERROR, "label '%s' names several snapshots of '%s'; "
		     "give an id", spec, region);
	fail_errno(errno, "listing snapshots of '%s'", region);
}

/* Output. */

static void human(uint64_t n, char *buf, size_t len)
{
	static const char units[] = "BKMGTPE";
	double v = n;
	int u = 0;

	if (n < 1024) {
		snprintf(buf, len, "%" PRIu64 "B", n);
		return;
	}
	while (u < 6 && n >= (1ULL << (10 * (u + 1))))
		u++;
	if (!(n & ((1ULL << (10 * u)) - 1))) {
		snprintf(buf, len, "%" PRIu64 "%c", n >> (10 * u), units[u]);
		return;
	}
	v = (double)n / (double)(1ULL << (10 * u));
	/* Three significant digits, as zfs list prints them. */
	if (v < 9.995)
		snprintf(buf, len, "%.2f%c", v, units[u]);
	else if (v < 99.95)
		snprintf(buf, len, "%.1f%c", v, units[u]);
	else if (v < 1023.5 || u == 6)
		snprintf(buf, len, "%.0f%c", v, units[u]);
	else
		snprintf(buf, len, "1.00%c", units[u + 1]);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* A column: its header, its JSON key and how its values print. */
enum kind {
	K_STR,		/* text; NULL prints "-" and JSON null */
	K_NUM,		/* a count or id */
	K_BYTES,	/* human unless -p */
	K_TIME,		/* ns since the epoch: local time unless -p */
	K_MODE,		/* octal permission bits, a string in JSON */
	K_OFFSET,	/* byte offset: hex unless -p */
};

struct col {
	const char *head;
	const char *key;
	enum kind kind;
};

struct val {
	const char *s;
	uint64_t n;
};

struct table {
	const struct col *cols;
	int ncols;
	struct val *v;		/* rows * ncols */
	size_t rows, cap;
};

static void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size);
	if (!p)
		fail(EXIT_ERROR, "out of memory");
	return p;
}

static struct val *table_row(struct table *t)
{
	struct val *row;

	if (t->rows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->v = xrealloc(t->v, t->cap * t->ncols * sizeof(*t->v));
	}
	row = t->v + t->rows++ * t->ncols;
	memset(row, 0, t->ncols * sizeof(*row));
	return row;
}

static void cell_text(const struct col *c, const struct val *v, char *buf,
		      size_t len)
{
	time_t sec;
	struct tm tm;

	switch (c->kind) {
	case K_STR:
		snprintf(buf, len, "%s", v->s ? v->s : "-");
		break;
	case K_NUM:
		snprintf(buf, len, "%" PRIu64, v->n);
		break;
	case K_BYTES:
		if (opt.parsable)
			snprintf(buf, len, "%" PRIu64, v->n);
		else
			human(v->n, buf, len);
		break;
	case K_TIME:
		sec = v->n / 1000000000ULL;
		if (opt.parsable)
			snprintf(buf, len, "%" PRIu64, v->n);
		else if (!localtime_r(&sec, &tm) ||
			 !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
			snprintf(buf, len, "%" PRIu64, v->n);
		break;
	case K_MODE:
		snprintf(buf, len, "%04" PRIo64, v->n);
		break;
	case K_OFFSET:
		snprintf(buf, len, opt.parsable ? "%" PRIu64 : "%#" PRIx64,
			 v->n);
		break;
	}
}

/* The rows as a JSON array of objects; numbers always exact. */
static void table_json(const struct table *t)
{
	char buf[64];
	size_t r;
	int c;

	putchar('[');
	for (r = 0; r < t->rows; r++) {
		const struct val *row = t->v + r * t->ncols;

		printf(r ? ",{" : "{");
		for (c = 0; c < t->ncols; c++) {
			const struct col *col = &t->cols[c];

			printf(c ? ",\"%s\":" : "\"%s\":", col->key);
			if (col->kind == K_STR && !row[c].s) {
				printf("null");
			} else if (col->kind == K_STR) {
				json_str(row[c].s);
			} else if (col->kind == K_MODE) {
				cell_text(col, &row[c], buf, sizeof(buf));
				json_str(buf);
			} else {
				printf("%" PRIu64, row[c].n);
			}
		}
		putchar('}');
	}
	putchar(']');
}

static int right_aligned(enum kind k)
{
	return k == K_NUM || k == K_BYTES || k == K_OFFSET;
}

/* Aligned with a header, or with -H tab-separated without one. */
static void table_print(const struct table *t)
{
	int width[16] = { 0 }, c, w;
	char buf[64];
	size_t r;

	for (c = 0; c < t->ncols; c++)
		width[c] = strlen(t->cols[c].head);
	for (r = 0; r < t->rows && !opt.scripted; r++) {
		for (c = 0; c < t->ncols; c++) {
			cell_text(&t->cols[c], &t->v[r * t->ncols + c], buf,
				  sizeof(buf));
			w = strlen(buf);
			if (w > width[c])
				width[c] = w;
		}
	}
	if (!opt.scripted) {
		for (c = 0; c < t->ncols; c++) {
			w = c == t->ncols - 1 &&
			    !right_aligned(t->cols[c].kind) ? 0 : width[c];
			printf(right_aligned(t->cols[c].kind) ? "%s%*s" :
			       "%s%-*s", c ? "  " : "", w, t->cols[c].head);
		}
		putchar('\n');
	}
	for (r = 0; r < t->rows; r++) {
		for (c = 0; c < t->ncols; c++) {
			cell_text(&t->cols[c], &t->v[r * t->ncols + c], buf,
				  sizeof(buf));
			if (opt.scripted) {
				printf("%s%s", c ? "\t" : "", buf);
				continue;
			}
			w = c == t->ncols - 1 &&
			    !right_aligned(t->cols[c].kind) ? 0 : width[c];
			printf(right_aligned(t->cols[c].kind) ? "%s%*s" :
			       "%s%-*s", c ? "  " : "", w, buf);
		}
		putchar('\n');
	}
}

/* /proc/cowsnap: "name value" counters, then region and snapshot lines. */
struct counter {
	char name[64];
	char value[64];
};

struct proc_data {
	struct counter *counters;
	size_t ncounters;
	struct table regions;
};

static const struct col region_cols[] = {
	{ "NAME", "name", K_STR },
	{ "SIZE", "size", K_BYTES },
	{ "RESIDENT", "resident", K_BYTES },
	{ "SHARED", "shared", K_BYTES },
	{ "SNAPS", "snapshots", K_NUM },
	{ "NEWEST", "newest", K_NUM },
	{ "MODE", "mode", K_MODE },
	{ "UID", "uid", K_NUM },
	{ "GID", "gid", K_NUM },
};

/* One whitespace-separated unsigned number; 0 on success. */
static int field_u64(char *s, int base, uint64_t *v)
{
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*v = strtoull(s, &end, base);
	return *end || errno ? -1 : 0;
}

static void parse_region_line(struct proc_data *pd, char **f, int nf)
{
	/* region NAME SIZE RESIDENT SHARED NSNAPS NEWEST UID GID MODE */
	uint64_t n[8];
	struct val *row;
	int i;

	if (nf < 10)
		return;
	for (i = 0; i < 8; i++)
		if (field_u64(f[2 + i], i == 7 ? 8 : 10, &n[i]))
			return;
	row = table_row(&pd->regions);
	row[0].s = strdup(f[1]);
	if (!row[0].s)
		fail(EXIT_ERROR, "out of memory");
	row[1].n = n[0];
	row[2].n = n[1] * page_size;
	row[3].n = n[2] * page_size;
	row[4].n = n[3];
	row[5].n = n[4];
	row[6].n = n[7];
	row[7].n = n[5];
	row[8].n = n[6];
}

static void read_proc(struct proc_data *pd)
{
	char line[512], *f[16], *save, *tok;
	FILE *fp = fopen(COWSNAP_PROC, "re");
	struct counter *c;
	int nf;

	if (!fp) {
		if (errno == ENOENT)
			fail(EXIT_NOTFOUND, "cannot read " COWSNAP_PROC ": %s "
			     "(is the cowsnap module loaded?)", strerror(errno));
		fail_errno(errno, "cannot read " COWSNAP_PROC);
	}
	memset(pd, 0, sizeof(*pd));
	pd->regions.cols = region_cols;
	pd->regions.ncols = ARRAY_SIZE(region_cols);
	while (fgets(line, sizeof(line), fp)) {
		nf = 0;
		for (tok = strtok_r(line, " \t\n", &save); tok && nf < 16;
		     tok = strtok_r(NULL, " \t\n", &save))
			f[nf++] = tok;
		if (!nf || f[0][0] == '#')
			continue;
		if (!strcmp(f[0], "region")) {
			parse_region_line(pd, f, nf);
			continue;
		}
		/* Snapshots come from the ioctl; unknown lines are skipped. */
		if (!strcmp(f[0], "snapshot") || nf != 2)
			continue;
		pd->counters = xrealloc(pd->counters, (pd->ncounters + 1) *
					sizeof(*pd->counters));
		c = &pd->counters[pd->ncounters++];
		snprintf(c->name, sizeof(c->name), "%s", f[0]);
		snprintf(c->value, sizeof(c->value), "%s", f[1]);
	}
	if (ferror(fp))
		fail_errno(errno, "reading " COWSNAP_PROC);
	fclose(fp);
}

/* Commands. */

static int cmd_create(int argc, char **argv)
{
	const char *name = argv[0];
	uint64_t size;
	mode_t mode;
	int fd;

	check_name(name, "region name");
	size = parse_size_arg(argv[1]);
	mode = parse_mode_arg();
	fd = open_dev(O_RDWR);
	if (cowsnap_create(fd, name, size, mode)) {
		if (errno == EEXIST)
			fail(EXIT_ERROR, "region '%s' already exists", name);
		if (errno == EINVAL && size % page_size)
			fail(EXIT_ERROR, "invalid size %" PRIu64 ": not a "
			     "multiple of the page size (%ld bytes)", size,
			     page_size);
		fail_errno(errno, "cannot create region '%s' of %" PRIu64
			   " bytes", name, size);
	}
	if (opt.json) {
		printf("{\"name\":");
		json_str(name);
		printf(",\"size\":%" PRIu64 ",\"mode\":\"%04o\"}\n", size,
		       (unsigned int)mode);
	}
	close(fd);
	return 0;
}

static int cmd_destroy(int argc, char **argv)
{
	const char *name = argv[0];
	int fd;

	check_name(name, "region name");
	fd = open_dev(O_RDWR);
	if (cowsnap_destroy(fd, name)) {
		if (errno == ENOENT)
			fail(EXIT_NOTFOUND, "no such region '%s'", name);
		fail_errno(errno, "cannot destroy region '%s'", name);
	}
	if (opt.json) {
		printf("{\"name\":");
		json_str(name);
		printf(",\"destroyed\":true}\n");
	}
	close(fd);
	return 0;
}

static int cmd_snap(int argc, char **argv)
{
	const char *name = argv[0], *label = argc > 1 ? argv[1] : NULL;
	uint64_t id;
	int fd;

	check_name(name, "region name");
	if (label)
		check_name(label, "label");
	fd = open_region(name, 1);
	if (cowsnap_snap_create(fd, label, &id))
		fail_errno(errno, "cannot snapshot region '%s'", name);
	if (opt.json) {
		printf("{\"region\":");
		json_str(name);
		printf(",\"id\":%" PRIu64 ",\"label\":", id);
		if (label)
			json_str(label);
		else
			printf("null");
		printf("}\n");
	} else {
		printf("%" PRIu64 "\n", id);
	}
	close(fd);
	return 0;
}

static const struct col snap_cols[] = {
	{ "ID", "id", K_NUM },
	{ "LABEL", "label", K_STR },
	{ "CREATED", "ctime_ns", K_TIME },
	{ "REFERENCED", "referenced", K_BYTES },
	{ "EXCLUSIVE", "exclusive", K_BYTES },
};

static int list_snapshots(const char *name)
{
	struct table t = { snap_cols, 5, NULL, 0, 0 };
	struct cowsnap_snap_entry *e;
	struct val *row;
	ssize_t n, i;
	int fd;

	fd = open_region(name, 0);
	n = cowsnap_snap_list(fd, &e);
	if (n < 0)
		fail_errno(errno, "cannot list snapshots of '%s'", name);
	for (i = 0; i < n; i++) {
		e[i].label[COWSNAP_NAME_MAX - 1] = 0;
		row = table_row(&t);
		row[0].n = e[i].id;
		row[1].s = e[i].label[0] ? e[i].label : NULL;
		row[2].n = e[i].ctime_ns;
		row[3].n = e[i].referenced_pages * page_size;
		row[4].n = e[i].exclusive_pages * page_size;
	}
	if (opt.json) {
		printf("{\"region\":");
		json_str(name);
		printf(",\"snapshots\":");
		table_json(&t);
		printf("}\n");
	} else {
		table_print(&t);
	}
	close(fd);
	return 0;
}

static int cmd_list(int argc, char **argv)
{
	struct proc_data pd;

	if (argc)
		return list_snapshots(argv[0]);
	read_proc(&pd);
	if (opt.json) {
		printf("{\"regions\":");
		table_json(&pd.regions);
		printf("}\n");
	} else {
		table_print(&pd.regions);
	}
	return 0;
}

static int cmd_restore(int argc, char **argv)
{
	const char *name = argv[0];
	uint64_t id, pages;
	int fd;

	fd = open_region(name, 1);
	id = find_snap(fd, name, argv[1]);
	if (cowsnap_restore(fd, id, 0, &pages))
		fail_errno(errno, "cannot restore '%s' to snapshot %" PRIu64,
			   name, id);
	if (opt.json) {
		printf("{\"region\":");
		json_str(name);
		printf(",\"snapshot\":%" PRIu64 ",\"pages_restored\":%" PRIu64
		       "}\n", id, pages);
	}
	close(fd);
	return 0;
}

static const struct col diff_cols[] = {
	{ "START", "start", K_NUM },
	{ "PAGES", "pages", K_NUM },
	{ "OFFSET", "offset", K_OFFSET },
	{ "LENGTH", "length", K_BYTES },
};

static int cmd_diff(int argc, char **argv)
{
	struct table t = { diff_cols, 4, NULL, 0, 0 };
	const char *name = argv[0];
	struct cowsnap_extent *ext;
	uint64_t from, to = 0;
	struct val *row;
	ssize_t n, i;
	int fd;

	fd = open_region(name, 0);
	from = find_snap(fd, name, argv[1]);
	/* SNAP2 "0" is the live view, as id 0 is in the UAPI. */
	if (argc > 2 && strcmp(argv[2], "0"))
		to = find_snap(fd, name, argv[2]);
	n = cowsnap_diff(fd, from, to, &ext);
	if (n < 0)
		fail_errno(errno, "cannot diff '%s'", name);
	for (i = 0; i < n; i++) {
		row = table_row(&t);
		row[0].n = ext[i].start;
		row[1].n = ext[i].count;
		row[2].n = ext[i].start * page_size;
		row[3].n = ext[i].count * page_size;
	}
	if (opt.json) {
		uint64_t pages = 0;

		for (i = 0; i < n; i++)
			pages += ext[i].count;
		printf("{\"region\":");
		json_str(name);
		printf(",\"from\":%" PRIu64 ",\"to\":%" PRIu64
		       ",\"page_size\":%ld,\"changed_pages\":%" PRIu64
		       ",\"extents\":", from, to, page_size, pages);
		table_json(&t);
		printf("}\n");
	} else {
		table_print(&t);
	}
	close(fd);
	return 0;
}

static int cmd_delete(int argc, char **argv)
{
	const char *name = argv[0];
	uint64_t id;
	int fd;

	fd = open_region(name, 1);
	id = find_snap(fd, name, argv[1]);
	if (cowsnap_snap_delete(fd, id)) {
		if (errno == ENOENT)
			fail(EXIT_NOTFOUND, "region '%s' has no snapshot '%s'",
			     name, argv[1]);
		fail_errno(errno, "cannot delete snapshot %" PRIu64 " of '%s'",
			   id, name);
	}
	if (opt.json) {
		printf("{\"region\":");
		json_str(name);
		printf(",\"deleted\":%" PRIu64 "}\n", id);
	}
	close(fd);
	return 0;
}

static int cmd_clone(int argc, char **argv)
{
	const char *name = argv[0], *newname = argv[2];
	mode_t mode;
	uint64_t id;
	int fd;

	check_name(name, "region name");
	check_name(newname, "region name");
	check_snap_arg(argv[1]);
	mode = parse_mode_arg();
	fd = open_region(name, 1);
	id = find_snap(fd, name, argv[1]);
	if (cowsnap_clone(fd, id, newname, mode)) {
		if (errno == EEXIST)
			fail(EXIT_ERROR, "region '%s' already exists", newname);
		fail_errno(errno, "cannot clone snapshot %" PRIu64 " of '%s'",
			   id, name);
	}
	if (opt.json) {
		printf("{\"name\":");
		json_str(newname);
		printf(",\"origin\":");
		json_str(name);
		printf(",\"snapshot\":%" PRIu64 ",\"mode\":\"%04o\"}\n", id,
		       (unsigned int)mode);
	}
	close(fd);
	return 0;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

/* Catch SIGINT and friends so temporary state can be undone. */
static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	/* A vanished reader is an error to report, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
}

/* Percentage on stderr, only when a human watches it, at most 10 Hz. */
static int progress(uint64_t done, uint64_t total, void *arg)
{
	static uint64_t last_ms;
	struct timespec ts;
	char d[16], t[16];
	uint64_t ms;

	if (interrupted)
		return 1;
	if (!arg)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ms = ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
	if (done < total && ms - last_ms < 100)
		return 0;
	last_ms = ms;
	human(done, d, sizeof(d));
	human(total, t, sizeof(t));
	fprintf(stderr, "\r%s: %3d%% %s of %s\033[K", cmd_name,
		(int)(total ? done * 100 / total : 100), d, t);
	return 0;
}

/* Erase the progress line, whatever it last showed. */
static void progress_end(void)
{
	if (isatty(STDERR_FILENO))
		fputs("\r\033[K", stderr);
}

static void dump_fail(int err, const struct cowsnap_dump_info *di,
		      const char *what)
{
	if (err == ECANCELED)
		fail(EXIT_ERROR, "interrupted");
	if (di->error[0])
		fail(exit_code(err), "%s", di->error);
	fail_errno(err, "%s", what);
}

static int cmd_dump(int argc, char **argv)
{
	char name[COWSNAP_NAME_MAX], *at, what[128];
	const char *file = argc > 1 ? argv[1] : "-";
	int to_stdout = !strcmp(file, "-");
	struct cowsnap_dump_info di;
	uint64_t id, tmp = 0;
	int fd, out, err;

	at = strchr(argv[0], '@');
	if ((at ? (size_t)(at - argv[0]) : strlen(argv[0])) >= sizeof(name))
		check_name(argv[0], "region name");
	snprintf(name, sizeof(name), "%.*s",
		 at ? (int)(at - argv[0]) : (int)strlen(argv[0]), argv[0]);
	check_name(name, "region name");
	if (at)
		check_snap_arg(at + 1);
	if (to_stdout && opt.json)
		usage_error("--json needs a FILE: the dump goes to stdout");
	if (to_stdout && isatty(STDOUT_FILENO))
		fail(EXIT_USAGE, "refusing to write a dump to a terminal; "
		     "give a FILE or redirect stdout");
	catch_signals();

	/* Without @SNAP, dump a snapshot taken now and drop it afterwards. */
	fd = open_region(name, !at);
	if (at) {
		id = find_snap(fd, name, at + 1);
	} else {
		if (cowsnap_snap_create(fd, NULL, &tmp))
			fail_errno(errno, "cannot snapshot region '%s'", name);
		id = tmp;
	}
	if (to_stdout) {
		out = STDOUT_FILENO;
	} else {
		out = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			   0600);
		if (out < 0) {
			err = errno;
			if (tmp)
				cowsnap_snap_delete(fd, tmp);
			fail_errno(err, "cannot create '%s'", q(file));
		}
	}
	/* progress() prints only when given a non-NULL argument. */
	err = cowsnap_dump(fd, id, out, &di, progress,
			   isatty(STDERR_FILENO) ? &di : NULL) ? errno : 0;
	progress_end();
	if (!err && !to_stdout && (fsync(out) || close(out))) {
		err = errno;
		snprintf(di.error, sizeof(di.error), "writing '%s': %s",
			 q(file), strerror(err));
	}
	if (tmp && cowsnap_snap_delete(fd, tmp) && !err) {
		err = errno;
		snprintf(di.error, sizeof(di.error), "cannot delete temporary "
			 "snapshot %" PRIu64 ": %s", tmp, strerror(err));
	}
	if (err) {
		if (!to_stdout)
			unlink(file);
		snprintf(what, sizeof(what), "cannot dump snapshot %" PRIu64
			 " of '%s'", id, name);
		dump_fail(err, &di, what);
	}
	if (opt.json) {
		printf("{\"region\":");
		json_str(name);
		printf(",\"snapshot\":");
		if (tmp)
			printf("null");
		else
			printf("%" PRIu64, id);
		printf(",\"file\":");
		json_str(file);
		printf(",\"size\":%" PRIu64 ",\"data_pages\":%" PRIu64
		       ",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64
		       ",\"checksum\":\"%08x\"}\n", di.size, di.data_pages,
		       di.records, di.bytes, di.checksum);
	}
	close(fd);
	return 0;
}

static int cmd_load(int argc, char **argv)
{
	const char *name = argv[0], *file = argc > 1 ? argv[1] : "-";
	struct cowsnap_dump_info di;
	char what[128];
	mode_t mode;
	int fd, in, err;

	check_name(name, "region name");
	mode = parse_mode_arg();
	if (!strcmp(file, "-")) {
		in = STDIN_FILENO;
		if (isatty(in))
			fail(EXIT_USAGE, "refusing to read a dump from a "
			     "terminal; give a FILE or redirect stdin");
	} else {
		in = open(file, O_RDONLY | O_CLOEXEC);
		if (in < 0)
			fail_errno(errno, "cannot open '%s'", q(file));
	}
	catch_signals();
	fd = open_dev(O_RDWR);
	err = cowsnap_load(fd, name, mode, in, &di, progress,
			   isatty(STDERR_FILENO) ? &di : NULL) ? errno : 0;
	progress_end();
	if (err == EEXIST)
		fail(EXIT_ERROR, "region '%s' already exists", name);
	if (err) {
		snprintf(what, sizeof(what), "cannot load region '%s'", name);
		dump_fail(err, &di, what);
	}
	if (opt.json) {
		printf("{\"name\":");
		json_str(name);
		printf(",\"size\":%" PRIu64 ",\"mode\":\"%04o\",\"data_pages\":"
		       "%" PRIu64 ",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64
		       "}\n", di.size, (unsigned int)mode, di.data_pages,
		       di.records, di.bytes);
	}
	close(fd);
	if (in != STDIN_FILENO)
		close(in);
	return 0;
}

static const struct col stats_cols[] = {
	{ "COUNTER", "name", K_STR },
	{ "VALUE", "value", K_STR },
};

static int cmd_stats(int argc, char **argv)
{
	struct table t = { stats_cols, 2, NULL, 0, 0 };
	char (*buf)[32];
	struct proc_data pd;
	struct val *row;
	uint64_t v;
	size_t i;

	read_proc(&pd);
	if (opt.json) {
		putchar('{');
		for (i = 0; i < pd.ncounters; i++) {
			printf(i ? "," : "");
			json_str(pd.counters[i].name);
			putchar(':');
			if (!field_u64(pd.counters[i].value, 10, &v))
				printf("%" PRIu64, v);
			else
				json_str(pd.counters[i].value);
		}
		printf("}\n");
		return 0;
	}
	buf = xrealloc(NULL, (pd.ncounters + 1) * sizeof(*buf));
	for (i = 0; i < pd.ncounters; i++) {
		const char *value = pd.counters[i].value;

		row = table_row(&t);
		row[0].s = pd.counters[i].name;
		row[1].s = value;
		/* Byte counters read better in human units. */
		if (!opt.parsable && strstr(pd.counters[i].name, "bytes") &&
		    !field_u64(pd.counters[i].value, 10, &v)) {
			human(v, buf[i], sizeof(buf[i]));
			row[1].s = buf[i];
		}
	}
	table_print(&t);
	return 0;
}

/* The command table and help. */

#define CMD_MODE	(1U << 0)	/* takes --mode */

struct command {
	const char *name;
	const char *args;
	const char *summary;
	const char *help;
	int min, max;		/* positional arguments */
	unsigned int flags;
	int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "create", "NAME SIZE [--mode M]",
	  "create a zero-filled region of SIZE bytes",
	  "Create region NAME of SIZE bytes (a page multiple; K, M, G and T\n"
	  "suffixes are powers of 1024).  Pages are allocated on first touch.\n"
	  "  --mode M   octal permission bits (default 0600)\n",
	  2, 2, CMD_MODE, cmd_create },
	{ "destroy", "NAME", "remove a region",
	  "Remove region NAME and its snapshots at once; its memory is freed\n"
	  "when the last program using it lets go.  Owner or CAP_SYS_ADMIN.\n",
	  1, 1, 0, cmd_destroy },
	{ "snap", "NAME [LABEL]", "take a snapshot and print its id",
	  "Snapshot region NAME, optionally labelled LABEL, and print the new\n"
	  "snapshot's id.  No data is copied.\n",
	  1, 2, 0, cmd_snap },
	{ "list", "[NAME]", "list regions, or the snapshots of NAME",
	  "Without NAME, list every region: NAME SIZE RESIDENT SHARED SNAPS\n"
	  "NEWEST MODE UID GID.  With NAME, list its snapshots: ID LABEL\n"
	  "CREATED REFERENCED EXCLUSIVE (EXCLUSIVE is what deleting frees).\n",
	  0, 1, 0, cmd_list },
	{ "restore", "NAME SNAP", "make the region equal to a snapshot",
	  "Make the live view of NAME equal to snapshot SNAP, for every\n"
	  "program that maps it.  The snapshot stays.\n",
	  2, 2, 0, cmd_restore },
	{ "diff", "NAME SNAP [SNAP2]", "list page extents that changed",
	  "List the page extents that differ between SNAP and SNAP2 (default,\n"
	  "or 0: the live view): START PAGES OFFSET LENGTH.  A page written\n"
	  "counts as changed even if its bytes ended up the same.\n",
	  2, 3, 0, cmd_diff },
	{ "delete", "NAME SNAP", "delete a snapshot",
	  "Delete snapshot SNAP of NAME; pages nothing else holds are freed.\n",
	  2, 2, 0, cmd_delete },
	{ "clone", "NAME SNAP NEWNAME [--mode M]",
	  "create a region from a snapshot",
	  "Create region NEWNAME whose contents are snapshot SNAP of NAME,\n"
	  "sharing its pages copy-on-write.\n"
	  "  --mode M   octal permission bits of NEWNAME (default 0600)\n",
	  3, 3, CMD_MODE, cmd_clone },
	{ "dump", "NAME[@SNAP] [FILE|-]", "write a snapshot to a dump file",
	  "Write snapshot SNAP of NAME to FILE (default, or -: stdout) in the\n"
	  "sparse cowsnap dump format: zero pages take no space.  Without\n"
	  "@SNAP a snapshot is taken for the dump and deleted after it.\n"
	  "Progress is shown when stderr is a terminal.\n",
	  1, 2, 0, cmd_dump },
	{ "load", "NAME [FILE|-] [--mode M]", "create a region from a dump",
	  "Create region NAME from the dump in FILE (default, or -: stdin).\n"
	  "The whole dump is checked (format, sizes, checksum) before the\n"
	  "region is created; a bad dump creates nothing.\n"
	  "  --mode M   octal permission bits (default 0600)\n",
	  1, 2, CMD_MODE, cmd_load },
	{ "stats", "", "show the module's global counters",
	  "Show the global counters of " COWSNAP_PROC ".\n",
	  0, 0, 0, cmd_stats },
};

#define NCOMMANDS	ARRAY_SIZE(commands)

static const char options_help[] =
	"Options (anywhere on the line):\n"
	"  -H         scripted: no header, fields separated by one tab\n"
	"  -p         exact numbers: bytes, nanoseconds, decimal offsets\n"
	"  --json     print one JSON document\n"
	"  -h, --help show help\n";

static void help_all(void)
{
	const struct command *c;

	printf("usage: cowsnap [-H] [-p] [--json] COMMAND [ARGS]\n\n"
	       "Copy-on-write snapshots of shared memory regions ("
	       COWSNAP_DEVICE ").\n\nCommands:\n");
	for (c = commands; c < commands + NCOMMANDS; c++) {
		char syn[64];

		snprintf(syn, sizeof(syn), "%s %s", c->name, c->args);
		printf("  %-36s %s\n", syn, c->summary);
	}
	printf("\nSNAP is a snapshot id or label.  SIZE takes K, M, G or T "
	       "suffixes (1024-based).\nNames and labels: 1-63 characters "
	       "of A-Z a-z 0-9 . _ -, not starting with '.'.\n\n%s"
	       "  --version  show the version\n\n%s\n"
	       "'cowsnap COMMAND --help' describes one command; see also "
	       "cowsnap(8).\n", options_help, exit_codes_help);
}

static void help_command(const struct command *c)
{
	printf("usage: cowsnap [-H] [-p] [--json] %s%s%s\n\n%s\n%s\n%s",
	       c->name, *c->args ? " " : "", c->args, c->help, options_help,
	       exit_codes_help);
}

static int flush_stdout(void)
{
	if (fflush(stdout) || ferror(stdout))
		fail_errno(errno ? errno : EIO, "writing output");
	return 0;
}

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	char **pos = calloc(argc + 1, sizeof(*pos));
	const char *bad = NULL;
	int npos = 0, i, version = 0, dashdash = 0;

	page_size = sysconf(_SC_PAGESIZE);
	if (!pos)
		fail(EXIT_ERROR, "out of memory");
	/* Options may come anywhere, zfs style; "--" ends them. */
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (dashdash || a[0] != '-' || !a[1]) {
			pos[npos++] = argv[i];
		} else if (!strcmp(a, "--")) {
			dashdash = 1;
		} else if (!strcmp(a, "--json")) {
			opt.json = 1;
		} else if (!strcmp(a, "--help")) {
			opt.help = 1;
		} else if (!strcmp(a, "--version")) {
			version = 1;
		} else if (!strcmp(a, "--mode") || !strcmp(a, "-m")) {
			if (i + 1 >= argc) {
				bad = "--mode needs a value";
				break;
			}
			opt.mode = argv[++i];
		} else if (!strncmp(a, "--mode=", 7)) {
			opt.mode = a + 7;
		} else if (a[1] == '-') {
			bad = a;
		} else {
			/* Bundled single-letter flags: -Hp. */
			for (a++; *a && !bad; a++) {
				if (*a == 'H')
					opt.scripted = 1;
				else if (*a == 'p')
					opt.parsable = 1;
				else if (*a == 'h')
					opt.help = 1;
				else
					bad = argv[i];
			}
		}
	}
	if (npos) {
		for (cmd = commands; cmd < commands + NCOMMANDS; cmd++)
			if (!strcmp(cmd->name, pos[0]))
				break;
		cmd_name = q(pos[0]);
		if (cmd == commands + NCOMMANDS) {
			cmd = NULL;
			if (!opt.help)
				fail(EXIT_USAGE, "unknown command (see "
				     "'cowsnap --help')");
		}
		if (cmd)
			cmd_name = cmd->name;
	}
	if (opt.help) {
		if (cmd)
			help_command(cmd);
		else
			help_all();
		return flush_stdout();
	}
	if (version) {
		printf("cowsnap %s (API %d)\n", COWSNAP_CLI_VERSION,
		       COWSNAP_API_VERSION);
		return flush_stdout();
	}
	if (bad && !strcmp(bad, "--mode needs a value"))
		usage_error("%s", bad);
	if (bad)
		usage_error("unknown option '%s'", q(bad));
	if (!cmd)
		usage_error("missing command");
	if (opt.mode && !(cmd->flags & CMD_MODE))
		usage_error("--mode does not apply to %s", cmd->name);
	if (opt.json && (opt.scripted || opt.parsable))
		usage_error("--json cannot be combined with -H or -p");
	npos--;
	if (npos < cmd->min)
		usage_error("missing arguments: cowsnap %s %s", cmd->name,
			    cmd->args);
	if (npos > cmd->max)
		usage_error("too many arguments: cowsnap %s %s", cmd->name,
			    cmd->args);
	cmd->run(npos, pos + 1);
	return flush_stdout();
}

// SPDX-License-Identifier: GPL-2.0
/*
 * cowsnap(8): manage copy-on-write memory snapshots from the shell.
 *
 * Every error is one line "cowsnap: COMMAND: what went wrong" on stderr and
 * a distinct exit status (EXIT_* below, documented in --help and the man
 * page); docs/errors.md maps each errno of the module and the library to
 * what is said here.  Output is an aligned table with human sizes, or -H
 * (tabs, no header), -p (exact numbers), -o (columns) and --json (one JSON
 * document, every key of one type: json_schema[]) for scripts.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "libcowsnap.h"
#include "libcowsnap-internal.h"
#include "json.h"

#ifndef COWSNAP_CLI_VERSION
#define COWSNAP_CLI_VERSION	"unknown"
#endif
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define SYS_MODULE	"/sys/module/cowsnap"

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
	int version;
	const char *mode;	/* --mode */
	const char *fields;	/* -o */
	const char *expect;	/* --expect-newest */
} opt;

static const char *cmd_name;	/* the command, for error messages */
static long page_size;

static const char exit_codes_help[] =
	"Exit status:\n"
	"  0  success\n"
	"  1  error (also: the cowsnap module is not loaded)\n"
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

/* Output. */

static void human(uint64_t n, char *buf, size_t len)
{
	static const char units[] = "BKMGTPE";
	double v;
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

/* The module: its parameters explain its limits. */

static int module_loaded(void)
{
	return access(SYS_MODULE, F_OK) == 0;
}

/* A line of a sysfs file of the module, without the newline; 0 or -1. */
static int module_file(const char *path, char *buf, size_t len)
{
	char full[128];
	FILE *f;

	snprintf(full, sizeof(full), SYS_MODULE "/%s", path);
	f = fopen(full, "re");
	if (!f)
		return -1;
	if (!fgets(buf, len, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* "name=value" of a module parameter, "name" alone if it cannot be read. */
static const char *param(const char *name, int bytes)
{
	static char bufs[4][96];
	static int next;
	char *b = bufs[next++ & 3], path[64], v[32], h[16];
	uint64_t n;

	snprintf(path, sizeof(path), "parameters/%s", name);
	if (module_file(path, v, sizeof(v))) {
		snprintf(b, sizeof(bufs[0]), "%s", name);
	} else if (bytes && sscanf(v, "%" SCNu64, &n) == 1) {
		human(n, h, sizeof(h));
		snprintf(b, sizeof(bufs[0]), "%s=%s", name, h);
	} else {
		snprintf(b, sizeof(bufs[0]), "%s=%s", name, v);
	}
	return b;
}

static void __attribute__((noreturn)) fail_not_loaded(void)
{
	if (module_loaded())
		fail(EXIT_ERROR, CSNAP_DEVICE " is missing although the cowsnap "
		     "module is loaded");
	fail(EXIT_ERROR, "the cowsnap module is not loaded");
}

/* Errors: docs/errors.md says which errno means what, here and below. */

static int exit_code(int err)
{
	if (err == ENOENT)
		return EXIT_NOTFOUND;
	if (err == EACCES || err == EPERM)
		return EXIT_PERM;
	return EXIT_ERROR;
}

/* What went wrong, for errors every command may meet. */
static const char *reason(int err)
{
	static char buf[160];

	switch (err) {
	case ENOTTY:
		return "not supported by the loaded cowsnap module";
	case ENOMEM:
		snprintf(buf, sizeof(buf), "out of memory: the module's page "
			 "budget (%s pages) or the memory cgroup's limit is "
			 "used up", param("max_pages", 0));
		return buf;
	case ENOSPC:
		return "a limit of the module was reached (max_regions, "
		       "max_user_regions or max_snapshots)";
	case E2BIG:
		snprintf(buf, sizeof(buf), "larger than the module allows "
			 "(%s)", param("max_region_size", 1));
		return buf;
	case EXDEV:
		return "the newest snapshot is not the one expected";
	case EPERM:
		return "Operation not permitted: only the owner or "
		       "CAP_SYS_ADMIN may";
	default:
		return strerror(err);
	}
}

/* "<what>: <reason>" with the exit status errno calls for. */
#define fail_errno(err, fmt, ...)					\
	fail(exit_code(err), fmt ": %s", ##__VA_ARGS__, reason(err))

/* The region caps, for ENOSPC from create, clone and load. */
static void __attribute__((noreturn)) fail_region_limit(const char *name)
{
	fail(EXIT_ERROR, "cannot create region '%s': the module's region "
	     "limit is reached (%s in all, %s per user)", name,
	     param("max_regions", 0), param("max_user_regions", 0));
}

/* Arguments. */

/*
 * Names the CLI creates (regions, labels) may not start with '-' either:
 * they would read as options.  An existing one can still be named after
 * "--" (@is_new 0).
 */
static void check_name(const char *name, const char *what, int is_new)
{
	if (!csnap__name_valid(name) || (is_new && name[0] == '-'))
		usage_error("invalid %s '%s': use 1-63 characters of "
			    "A-Z a-z 0-9 . _ -, not starting with '.'%s",
			    what, q(name), is_new ? " or '-'" : "");
}

static uint64_t parse_size_arg(const char *s)
{
	uint64_t size;

	if (!csnap__parse_size(s, &size))
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
	if (!csnap__name_valid(s))
		usage_error("invalid snapshot '%s': give an id or a label", q(s));
}

/* The device and regions. */

static int open_dev(int flags)
{
	int fd = csnap_open(flags), err = errno;
	struct stat st;

	if (fd >= 0)
		return fd;
	if (err == ENOENT || err == ENODEV || err == ENXIO)
		fail_not_loaded();
	if (err == EPROTONOSUPPORT)
		fail(EXIT_ERROR, "the loaded cowsnap module does not speak "
		     "API version %d", COWSNAP_API_VERSION);
	if (err == EACCES && !stat(CSNAP_DEVICE, &st))
		fail(EXIT_PERM, "cannot open " CSNAP_DEVICE ": Permission "
		     "denied (mode %04o; see the module's dev_mode)",
		     (unsigned int)st.st_mode & 07777);
	fail_errno(err, "cannot open " CSNAP_DEVICE);
}

/* A handle attached to region @name; read-only unless @writable. */
static int open_region(const char *name, int writable)
{
	int fd;

	check_name(name, "region name", 0);
	fd = open_dev(writable ? O_RDWR : O_RDONLY);
	if (!csnap_region_attach(fd, name))
		return fd;
	if (errno == ENOENT)
		fail(EXIT_NOTFOUND, "no such region '%s'", name);
	fail_errno(errno, "region '%s'", name);
}

static uint64_t find_snap(int fd, const char *region, const char *spec)
{
	uint64_t id;

	check_snap_arg(spec);
	if (!csnap_snapshot_find(fd, spec, &id))
		return id;
	if (errno == ENOENT)
		fail(EXIT_NOTFOUND, "region '%s' has no snapshot '%s'",
		     region, spec);
	if (errno == ENOTUNIQ)
		fail(EXIT_ERROR, "label '%s' names several snapshots of '%s'; "
		     "give an id", spec, region);
	fail_errno(errno, "listing snapshots of '%s'", region);
}

/*
 * JSON: every key the CLI prints and its one type (null aside).  Counter
 * names under "counters" are data, not keys of this table.
 */
static const struct json_key json_schema[] = {
	{ "api", JSON_NUMBER },
	{ "bytes", JSON_NUMBER },
	{ "changed_pages", JSON_NUMBER },
	{ "checksum", JSON_STRING },
	{ "counters", JSON_OBJECT },
	{ "ctime_ns", JSON_NUMBER },
	{ "data_pages", JSON_NUMBER },
	{ "deleted", JSON_NUMBER },
	{ "destroyed", JSON_BOOL },
	{ "exclusive", JSON_NUMBER },
	{ "extents", JSON_ARRAY },
	{ "file", JSON_STRING },
	{ "from", JSON_NUMBER },
	{ "gid", JSON_NUMBER },
	{ "id", JSON_NUMBER },
	{ "label", JSON_STRING },
	{ "length", JSON_NUMBER },
	{ "mode", JSON_STRING },
	{ "module_version", JSON_STRING },
	{ "name", JSON_STRING },
	{ "newest_snapshot", JSON_NUMBER },
	{ "nr_snapshots", JSON_NUMBER },
	{ "offset", JSON_NUMBER },
	{ "origin", JSON_STRING },
	{ "page_size", JSON_NUMBER },
	{ "pages", JSON_NUMBER },
	{ "pages_restored", JSON_NUMBER },
	{ "records", JSON_NUMBER },
	{ "referenced", JSON_NUMBER },
	{ "region", JSON_STRING },
	{ "regions", JSON_ARRAY },
	{ "resident", JSON_NUMBER },
	{ "shared", JSON_NUMBER },
	{ "size", JSON_NUMBER },
	{ "snapshot", JSON_NUMBER },
	{ "snapshots", JSON_ARRAY },
	{ "start", JSON_NUMBER },
	{ "to", JSON_NUMBER },
	{ "uid", JSON_NUMBER },
	{ "version", JSON_STRING },
};

static struct json js;

/* Begin the one JSON document of a command: an object. */
static struct json *json_begin(void)
{
	json_init(&js, stdout, json_schema, ARRAY_SIZE(json_schema));
	json_object_begin(&js, NULL);
	return &js;
}

static void json_mode(struct json *j, const char *key, mode_t mode)
{
	char buf[8];

	snprintf(buf, sizeof(buf), "%04o", (unsigned int)mode & 0777);
	json_string(j, key, buf);
}

/* A column: its header, its JSON key (also its -o name) and its kind. */
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

#define MAX_SEL		32

struct table {
	const struct col *cols;
	int ncols;
	struct val *v;		/* rows * ncols */
	size_t rows, cap;
	int sel[MAX_SEL];	/* the columns shown, in order (-o) */
	int nsel;
};

static void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size);
	if (!p)
		fail(EXIT_ERROR, "out of memory");
	return p;
}

/* A table of @cols showing the columns -o names, or all of them. */
static void table_init(struct table *t, const struct col *cols, int ncols)
{
	char *list, *f, *save;
	int c;

	memset(t, 0, sizeof(*t));
	t->cols = cols;
	t->ncols = ncols;
	if (!opt.fields) {
		for (c = 0; c < ncols; c++)
			t->sel[t->nsel++] = c;
		return;
	}
	list = strdup(opt.fields);
	if (!list)
		fail(EXIT_ERROR, "out of memory");
	for (f = strtok_r(list, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		/* A JSON key or a header, in any case. */
		for (c = 0; c < ncols; c++)
			if (!strcasecmp(f, cols[c].key) ||
			    !strcasecmp(f, cols[c].head))
				break;
		if (c == ncols) {
			char valid[256] = "";

			for (c = 0; c < ncols; c++)
				snprintf(valid + strlen(valid),
					 sizeof(valid) - strlen(valid), "%s%s",
					 c ? "," : "", cols[c].key);
			usage_error("unknown field '%s' for -o: choose from %s",
				    q(f), valid);
		}
		if (t->nsel == MAX_SEL)
			usage_error("too many fields for -o");
		t->sel[t->nsel++] = c;
	}
	if (!t->nsel)
		usage_error("-o needs at least one field");
	free(list);
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

/* The rows as the array @key of objects; numbers always exact. */
static void table_json(struct json *j, const char *key,
		       const struct table *t)
{
	size_t r;
	int s;

	json_array_begin(j, key);
	for (r = 0; r < t->rows; r++) {
		const struct val *row = t->v + r * t->ncols;

		json_object_begin(j, NULL);
		for (s = 0; s < t->nsel; s++) {
			const struct col *col = &t->cols[t->sel[s]];
			const struct val *v = &row[t->sel[s]];

			if (col->kind == K_STR)
				json_string(j, col->key, v->s);
			else if (col->kind == K_MODE)
				json_mode(j, col->key, v->n);
			else
				json_u64(j, col->key, v->n);
		}
		json_object_end(j);
	}
	json_array_end(j);
}

static int right_aligned(enum kind k)
{
	return k == K_NUM || k == K_BYTES || k == K_OFFSET;
}

/* Aligned with a header, or with -H tab-separated without one. */
static void table_print(const struct table *t)
{
	int width[MAX_SEL] = { 0 }, s, w;
	char buf[64];
	size_t r;

	for (s = 0; s < t->nsel; s++)
		width[s] = strlen(t->cols[t->sel[s]].head);
	for (r = 0; r < t->rows && !opt.scripted; r++) {
		for (s = 0; s < t->nsel; s++) {
			cell_text(&t->cols[t->sel[s]],
				  &t->v[r * t->ncols + t->sel[s]], buf,
				  sizeof(buf));
			w = strlen(buf);
			if (w > width[s])
				width[s] = w;
		}
	}
	for (r = 0; r <= t->rows; r++) {
		if (!r && opt.scripted)
			continue;	/* no header */
		for (s = 0; s < t->nsel; s++) {
			const struct col *col = &t->cols[t->sel[s]];
			int right = right_aligned(col->kind);

			if (r)
				cell_text(col, &t->v[(r - 1) * t->ncols +
						     t->sel[s]],
					  buf, sizeof(buf));
			else
				snprintf(buf, sizeof(buf), "%s", col->head);
			if (opt.scripted) {
				printf("%s%s", s ? "\t" : "", buf);
				continue;
			}
			w = s == t->nsel - 1 && !right ? 0 : width[s];
			printf(right ? "%s%*s" : "%s%-*s", s ? "  " : "", w,
			       buf);
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
	{ "SNAPS", "nr_snapshots", K_NUM },
	{ "NEWEST", "newest_snapshot", K_NUM },
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

static void read_proc(struct proc_data *pd, int with_regions)
{
	char line[512], *f[16], *save, *tok;
	struct counter *c;
	FILE *fp;
	int nf;

	memset(pd, 0, sizeof(*pd));
	if (with_regions)	/* -o is checked before anything is read */
		table_init(&pd->regions, region_cols, ARRAY_SIZE(region_cols));
	fp = fopen(CSNAP_PROC, "re");
	if (!fp) {
		if (errno == ENOENT)
			fail_not_loaded();
		fail_errno(errno, "cannot read " CSNAP_PROC);
	}
	while (fgets(line, sizeof(line), fp)) {
		nf = 0;
		for (tok = strtok_r(line, " \t\n", &save); tok && nf < 16;
		     tok = strtok_r(NULL, " \t\n", &save))
			f[nf++] = tok;
		if (!nf || f[0][0] == '#')
			continue;
		if (!strcmp(f[0], "region")) {
			if (with_regions)
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
		fail_errno(errno, "reading " CSNAP_PROC);
	fclose(fp);
}

/* Commands. */

static int cmd_create(int argc, char **argv)
{
	const char *name = argv[0], *size_arg = argv[1];
	struct json *j;
	uint64_t size;
	mode_t mode;
	int fd, err;

	check_name(name, "region name", 1);
	size = parse_size_arg(size_arg);
	mode = parse_mode_arg();
	fd = open_dev(O_RDWR);
	if (csnap_region_create(fd, name, size, mode)) {
		err = errno;
		if (err == EEXIST)
			fail(EXIT_ERROR, "region '%s' already exists", name);
		if (err == EINVAL && size % page_size)
			fail(EXIT_ERROR, "invalid size %s: not a multiple of "
			     "the page size (%ld bytes)", q(size_arg),
			     page_size);
		if (err == ENOSPC)
			fail_region_limit(name);
		fail_errno(err, "cannot create region '%s' of %s", name,
			   q(size_arg));
	}
	if (opt.json) {
		j = json_begin();
		json_string(j, "name", name);
		json_u64(j, "size", size);
		json_mode(j, "mode", mode);
		json_object_end(j);
	}
	close(fd);
	return 0;
}

static int cmd_destroy(int argc, char **argv)
{
	const char *name = argv[0];
	struct json *j;
	int fd;

	check_name(name, "region name", 0);
	fd = open_dev(O_RDONLY);	/* destroy needs no write access */
	if (csnap_region_destroy(fd, name)) {
		if (errno == ENOENT)
			fail(EXIT_NOTFOUND, "no such region '%s'", name);
		fail_errno(errno, "cannot destroy region '%s'", name);
	}
	if (opt.json) {
		j = json_begin();
		json_string(j, "name", name);
		json_bool(j, "destroyed", 1);
		json_object_end(j);
	}
	close(fd);
	return 0;
}

/* Snapshot @name; ENOSPC says how many it holds against which cap. */
static uint64_t take_snapshot(int fd, const char *name, const char *label)
{
	struct cowsnap_info info;
	uint64_t id;
	int err;

	if (!csnap_snapshot_create(fd, label, &id))
		return id;
	err = errno;
	if (err == ENOSPC && !csnap_region_info(fd, &info))
		fail(EXIT_ERROR, "cannot snapshot region '%s': it holds %"
		     PRIu64 " snapshots, the most the module allows (%s); "
		     "delete some first", name, (uint64_t)info.nr_snapshots,
		     param("max_snapshots", 0));
	fail_errno(err, "cannot snapshot region '%s'", name);
}

static int cmd_snap(int argc, char **argv)
{
	const char *name = argv[0], *label = argc > 1 ? argv[1] : NULL;
	struct json *j;
	uint64_t id;
	int fd;

	check_name(name, "region name", 0);
	if (label)
		check_name(label, "label", 1);
	fd = open_region(name, 1);
	id = take_snapshot(fd, name, label);
	if (opt.json) {
		j = json_begin();
		json_string(j, "region", name);
		json_u64(j, "id", id);
		json_string(j, "label", label);
		json_object_end(j);
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
	struct cowsnap_snap_entry *e;
	struct table t;
	struct json *j;
	struct val *row;
	ssize_t n, i;
	int fd;

	table_init(&t, snap_cols, ARRAY_SIZE(snap_cols));
	fd = open_region(name, 0);
	n = csnap_snapshot_list(fd, &e);
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
		j = json_begin();
		json_string(j, "region", name);
		table_json(j, "snapshots", &t);
		json_object_end(j);
	} else {
		table_print(&t);
	}
	close(fd);
	return 0;
}

static int cmd_list(int argc, char **argv)
{
	struct proc_data pd;
	struct json *j;

	if (argc)
		return list_snapshots(argv[0]);
	read_proc(&pd, 1);
	if (opt.json) {
		j = json_begin();
		table_json(j, "regions", &pd.regions);
		json_object_end(j);
	} else {
		table_print(&pd.regions);
	}
	return 0;
}

static int cmd_restore(int argc, char **argv)
{
	const char *name = argv[0];
	uint64_t id, expect = 0, pages;
	struct cowsnap_info info;
	struct json *j;
	int fd, err;

	fd = open_region(name, 1);
	id = find_snap(fd, name, argv[1]);
	if (opt.expect)
		expect = find_snap(fd, name, opt.expect);
	if (csnap_restore(fd, id, expect, &pages)) {
		err = errno;
		if (err == EXDEV && !csnap_region_info(fd, &info))
			fail(EXIT_ERROR, "cannot restore '%s': snapshot '%s' "
			     "is not the newest (the newest is %" PRIu64 "); "
			     "nothing was restored", name, opt.expect,
			     (uint64_t)info.newest_snapshot);
		if (err == ENOENT)
			fail(EXIT_NOTFOUND, "region '%s' has no snapshot '%s'",
			     name, argv[1]);
		fail_errno(err, "cannot restore '%s' to snapshot %" PRIu64,
			   name, id);
	}
	if (opt.json) {
		j = json_begin();
		json_string(j, "region", name);
		json_u64(j, "snapshot", id);
		json_u64(j, "pages_restored", pages);
		json_object_end(j);
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
	const char *name = argv[0];
	struct cowsnap_extent *ext;
	uint64_t from, to = 0, pages = 0;
	struct table t;
	struct json *j;
	struct val *row;
	ssize_t n, i;
	int fd;

	table_init(&t, diff_cols, ARRAY_SIZE(diff_cols));
	fd = open_region(name, 0);
	from = find_snap(fd, name, argv[1]);
	/* SNAP2 "0" is the live view, as id 0 is in the UAPI. */
	if (argc > 2 && strcmp(argv[2], "0"))
		to = find_snap(fd, name, argv[2]);
	n = csnap_diff(fd, from, to, &ext);
	if (n < 0) {
		if (errno == ENOENT)
			fail(EXIT_NOTFOUND, "a snapshot of '%s' was deleted "
			     "meanwhile", name);
		fail_errno(errno, "cannot diff '%s'", name);
	}
	for (i = 0; i < n; i++) {
		row = table_row(&t);
		row[0].n = ext[i].start;
		row[1].n = ext[i].count;
		row[2].n = ext[i].start * page_size;
		row[3].n = ext[i].count * page_size;
		pages += ext[i].count;
	}
	if (opt.json) {
		j = json_begin();
		json_string(j, "region", name);
		json_u64(j, "from", from);
		json_u64(j, "to", to);
		json_u64(j, "page_size", page_size);
		json_u64(j, "changed_pages", pages);
		table_json(j, "extents", &t);
		json_object_end(j);
	} else {
		table_print(&t);
	}
	close(fd);
	return 0;
}

static int cmd_delete(int argc, char **argv)
{
	const char *name = argv[0];
	struct json *j;
	uint64_t id;
	int fd;

	fd = open_region(name, 1);
	id = find_snap(fd, name, argv[1]);
	if (csnap_snapshot_delete(fd, id)) {
		if (errno == ENOENT)
			fail(EXIT_NOTFOUND, "region '%s' has no snapshot '%s'",
			     name, argv[1]);
		fail_errno(errno, "cannot delete snapshot %" PRIu64 " of '%s'",
			   id, name);
	}
	if (opt.json) {
		j = json_begin();
		json_string(j, "region", name);
		json_u64(j, "deleted", id);
		json_object_end(j);
	}
	close(fd);
	return 0;
}

static int cmd_clone(int argc, char **argv)
{
	const char *name = argv[0], *newname = argv[2];
	struct json *j;
	mode_t mode;
	uint64_t id;
	int fd, err;

	check_name(name, "region name", 0);
	check_name(newname, "region name", 1);
	check_snap_arg(argv[1]);
	mode = parse_mode_arg();
	fd = open_region(name, 1);
	id = find_snap(fd, name, argv[1]);
	if (csnap_clone(fd, id, newname, mode)) {
		err = errno;
		if (err == EEXIST)
			fail(EXIT_ERROR, "region '%s' already exists", newname);
		if (err == ENOSPC)
			fail_region_limit(newname);
		if (err == ENOENT)
			fail(EXIT_NOTFOUND, "region '%s' has no snapshot '%s'",
			     name, argv[1]);
		fail_errno(err, "cannot clone snapshot %" PRIu64 " of '%s'",
			   id, name);
	}
	if (opt.json) {
		j = json_begin();
		json_string(j, "name", newname);
		json_string(j, "origin", name);
		json_u64(j, "snapshot", id);
		json_mode(j, "mode", mode);
		json_object_end(j);
	}
	close(fd);
	return 0;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

/*
 * Catch SIGINT, SIGTERM and SIGHUP so temporary state can be undone; no
 * SA_RESTART, so a blocked read or write returns EINTR and libcowsnap asks
 * progress() whether to go on.
 */
static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	unsigned int i;

	sigemptyset(&sa.sa_mask);
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	/* A vanished reader is an error to report, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
}

/* After cleaning up: say so, then die of the signal as if uncaught. */
static void __attribute__((noreturn, format(printf, 1, 2)))
die_interrupted(const char *fmt, ...)
{
	int sig = interrupted;
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "cowsnap: %s: interrupted", cmd_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	signal(sig, SIG_DFL);
	raise(sig);
	_exit(128 + sig);
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

static void __attribute__((noreturn))
dump_fail(int err, const struct csnap_dump_info *di, const char *what)
{
	if (di->error[0])
		fail(exit_code(err), "%s", di->error);
	fail_errno(err, "%s", what);
}

static int cmd_dump(int argc, char **argv)
{
	char name[COWSNAP_NAME_MAX], label[COWSNAP_NAME_MAX], *at;
	const char *file = argc > 1 ? argv[1] : "-";
	int to_stdout = !strcmp(file, "-");
	struct csnap_dump_info di = { .struct_size = sizeof(di) };
	char what[128], hsize[16];
	uint64_t id, tmp = 0;
	struct json *j;
	int fd, out, err;

	at = strchr(argv[0], '@');
	if ((at ? (size_t)(at - argv[0]) : strlen(argv[0])) >= sizeof(name))
		check_name(argv[0], "region name", 0);
	snprintf(name, sizeof(name), "%.*s",
		 at ? (int)(at - argv[0]) : (int)strlen(argv[0]), argv[0]);
	check_name(name, "region name", 0);
	if (at)
		check_snap_arg(at + 1);
	if (to_stdout && opt.json)
		usage_error("--json needs a FILE: the dump goes to stdout");
	if (to_stdout && isatty(STDOUT_FILENO))
		fail(EXIT_USAGE, "refusing to write a dump to a terminal; "
		     "give a FILE or redirect stdout");
	catch_signals();

	/*
	 * Without @SNAP, dump a snapshot taken now, labelled so that one
	 * left behind by a kill -9 says what it is, and drop it afterwards.
	 */
	fd = open_region(name, !at);
	if (at) {
		id = find_snap(fd, name, at + 1);
	} else {
		snprintf(label, sizeof(label), "cowsnap-dump-%d",
			 (int)getpid());
		tmp = take_snapshot(fd, name, label);
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
				csnap_snapshot_delete(fd, tmp);
			fail_errno(err, "cannot create '%s'", q(file));
		}
	}
	/* progress() prints only when given a non-NULL argument. */
	err = csnap_dump(fd, id, out, &di, progress,
			 isatty(STDERR_FILENO) ? &di : NULL) ? errno : 0;
	progress_end();
	if (!err && !to_stdout && (fsync(out) || close(out))) {
		err = errno;
		snprintf(di.error, sizeof(di.error), "writing '%s': %s",
			 q(file), strerror(err));
	}
	if (tmp && csnap_snapshot_delete(fd, tmp) && !err) {
		err = errno;
		snprintf(di.error, sizeof(di.error), "cannot delete temporary "
			 "snapshot %" PRIu64 ": %s", tmp, strerror(err));
	}
	if (err) {
		if (!to_stdout)
			unlink(file);
		if (err == ECANCELED && interrupted)
			die_interrupted("%s%s%s", tmp ? "; deleted the temporary"
					" snapshot" : "", to_stdout ? "" :
					"; removed ", to_stdout ? "" : q(file));
		if (err == ENOENT && !di.error[0])
			fail(EXIT_NOTFOUND, "region '%s' has no snapshot "
			     "%" PRIu64 " any more", name, id);
		snprintf(what, sizeof(what), "cannot dump snapshot %" PRIu64
			 " of '%s'", id, name);
		dump_fail(err, &di, what);
	}
	if (opt.json) {
		j = json_begin();
		json_string(j, "region", name);
		if (tmp)
			json_null(j, "snapshot");
		else
			json_u64(j, "snapshot", id);
		json_string(j, "file", file);
		json_u64(j, "size", di.size);
		json_u64(j, "data_pages", di.data_pages);
		json_u64(j, "records", di.records);
		json_u64(j, "bytes", di.bytes);
		snprintf(hsize, sizeof(hsize), "%08x", di.checksum);
		json_string(j, "checksum", hsize);
		json_object_end(j);
	}
	close(fd);
	return 0;
}

static int cmd_load(int argc, char **argv)
{
	const char *name = argv[0], *file = argc > 1 ? argv[1] : "-";
	struct csnap_dump_info di = { .struct_size = sizeof(di) };
	char what[128], h[16];
	struct json *j;
	mode_t mode;
	int fd, in, err;

	check_name(name, "region name", 1);
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
	err = csnap_load(fd, name, mode, in, &di, progress,
			 isatty(STDERR_FILENO) ? &di : NULL) ? errno : 0;
	progress_end();
	if (err == ECANCELED && interrupted)
		die_interrupted("; region '%s' was not created", name);
	if (err == EEXIST)
		fail(EXIT_ERROR, "region '%s' already exists", name);
	if (err == ENOSPC && !di.error[0])
		fail_region_limit(name);
	if (err == E2BIG && !di.error[0]) {
		human(di.size, h, sizeof(h));
		fail(EXIT_ERROR, "cannot load region '%s': the dump's region "
		     "of %s is %s", name, h, reason(E2BIG));
	}
	if (err) {
		snprintf(what, sizeof(what), "cannot load region '%s'", name);
		dump_fail(err, &di, what);
	}
	if (opt.json) {
		j = json_begin();
		json_string(j, "name", name);
		json_u64(j, "size", di.size);
		json_mode(j, "mode", mode);
		json_u64(j, "data_pages", di.data_pages);
		json_u64(j, "records", di.records);
		json_u64(j, "bytes", di.bytes);
		snprintf(h, sizeof(h), "%08x", di.checksum);
		json_string(j, "checksum", h);
		json_object_end(j);
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
	struct proc_data pd;
	char (*buf)[32];
	struct table t;
	struct json *j;
	struct val *row;
	uint64_t v;
	size_t i;

	table_init(&t, stats_cols, ARRAY_SIZE(stats_cols));
	read_proc(&pd, 0);
	if (opt.json) {
		j = json_begin();
		json_object_begin(j, "counters");
		for (i = 0; i < pd.ncounters; i++) {
			json_unchecked(j);
			if (!field_u64(pd.counters[i].value, 10, &v))
				json_u64(j, pd.counters[i].name, v);
			else
				json_string(j, pd.counters[i].name,
					    pd.counters[i].value);
		}
		json_object_end(j);
		json_object_end(j);
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
#define CMD_FIELDS	(1U << 1)	/* takes -o */
#define CMD_EXPECT	(1U << 2)	/* takes --expect-newest */

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
	{ "list", "[-o FIELDS] [NAME]", "list regions, or the snapshots of NAME",
	  "Without NAME, list every region: NAME SIZE RESIDENT SHARED SNAPS\n"
	  "NEWEST MODE UID GID.  With NAME, list its snapshots: ID LABEL\n"
	  "CREATED REFERENCED EXCLUSIVE (EXCLUSIVE is what deleting frees).\n"
	  "  -o FIELDS  only these columns, in this order, comma-separated:\n"
	  "             regions: name,size,resident,shared,nr_snapshots,\n"
	  "             newest_snapshot,mode,uid,gid; snapshots: id,label,\n"
	  "             ctime_ns,referenced,exclusive (headers work too)\n",
	  0, 1, CMD_FIELDS, cmd_list },
	{ "restore", "NAME SNAP [--expect-newest SNAP2]",
	  "make the region equal to a snapshot",
	  "Make the live view of NAME equal to snapshot SNAP, for every\n"
	  "program that maps it.  The snapshot stays.\n"
	  "  --expect-newest SNAP2  restore only if SNAP2 is still the newest\n"
	  "             snapshot of NAME (else exit 1, nothing restored)\n",
	  2, 2, CMD_EXPECT, cmd_restore },
	{ "diff", "[-o FIELDS] NAME SNAP [SNAP2]",
	  "list page extents that changed",
	  "List the page extents that differ between SNAP and SNAP2 (default,\n"
	  "or 0: the live view): START PAGES OFFSET LENGTH.  A page written\n"
	  "counts as changed even if its bytes ended up the same.\n"
	  "  -o FIELDS  only these columns: start,pages,offset,length\n",
	  2, 3, CMD_FIELDS, cmd_diff },
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
	  "@SNAP a snapshot labelled cowsnap-dump-PID is taken for the dump\n"
	  "and deleted after it, also on SIGINT, SIGTERM or SIGHUP.\n"
	  "Progress is shown when stderr is a terminal.\n",
	  1, 2, 0, cmd_dump },
	{ "load", "NAME [FILE|-] [--mode M]", "create a region from a dump",
	  "Create region NAME from the dump in FILE (default, or -: stdin).\n"
	  "A FILE is checked whole (format, sizes, checksum) before the region\n"
	  "is created, so a bad dump creates nothing; a pipe is loaded as it\n"
	  "streams in and the region destroyed again if the dump is bad.\n"
	  "  --mode M   octal permission bits (default 0600)\n",
	  1, 2, CMD_MODE, cmd_load },
	{ "stats", "", "show the module's global counters",
	  "Show the global counters of " CSNAP_PROC ".\n",
	  0, 0, 0, cmd_stats },
};

#define NCOMMANDS	ARRAY_SIZE(commands)

static const char options_help[] =
	"Options (anywhere on the line; '--' ends them):\n"
	"  -H         scripted: no header, fields separated by one tab\n"
	"  -p         exact numbers: bytes, nanoseconds, decimal offsets\n"
	"  --json     print one JSON document\n"
	"  -h, --help show help\n";

static void help_all(void)
{
	const struct command *c;

	printf("usage: cowsnap [-H] [-p] [--json] COMMAND [ARGS]\n\n"
	       "Copy-on-write snapshots of shared memory regions ("
	       CSNAP_DEVICE ").\n\nCommands:\n");
	for (c = commands; c < commands + NCOMMANDS; c++) {
		char syn[64];

		snprintf(syn, sizeof(syn), "%s %s", c->name, c->args);
		if (strlen(syn) > 36)
			printf("  %s\n  %-36s %s\n", syn, "", c->summary);
		else
			printf("  %-36s %s\n", syn, c->summary);
	}
	printf("\nSNAP is a snapshot id or label.  SIZE takes K, M, G or T "
	       "suffixes (1024-based).\nNames and labels: 1-63 characters "
	       "of A-Z a-z 0-9 . _ -, not starting with '.'\nor '-'.\n\n%s"
	       "  --version  show the version of cowsnap and of the loaded "
	       "module\n\n%s\n"
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

static void print_version(void)
{
	char mv[64];
	int loaded = !module_file("version", mv, sizeof(mv));
	struct json *j;

	if (opt.json) {
		j = json_begin();
		json_string(j, "version", COWSNAP_CLI_VERSION);
		json_u64(j, "api", COWSNAP_API_VERSION);
		json_string(j, "module_version", loaded ? mv : NULL);
		json_object_end(j);
		return;
	}
	printf("cowsnap %s (API %d)\n", COWSNAP_CLI_VERSION,
	       COWSNAP_API_VERSION);
	if (loaded)
		printf("module %s\n", mv);
	else
		printf("module not loaded\n");
}

enum { OPT_JSON = 256, OPT_VERSION, OPT_EXPECT };

static const struct option long_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "mode", required_argument, NULL, 'm' },
	{ "output", required_argument, NULL, 'o' },
	{ "expect-newest", required_argument, NULL, OPT_EXPECT },
	{ NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	char **pos = calloc(argc + 1, sizeof(*pos));
	char bad[80] = "", *arg;
	int npos = 0, c, missing = 0;

	page_size = sysconf(_SC_PAGESIZE);
	if (!pos)
		fail(EXIT_ERROR, "out of memory");
	/*
	 * Options may come anywhere, zfs style, and "--" ends them.  A
	 * leading '-' in the option string returns arguments in order (as
	 * option 1) whatever POSIXLY_CORRECT says; ':' reports a missing
	 * value.  Errors wait until the command is known, for the message.
	 */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "-:Hhpm:o:", long_options,
				NULL)) != -1) {
		arg = argv[optind - 1];
		switch (c) {
		case 1:
			pos[npos++] = optarg;
			break;
		case 'H':
			opt.scripted = 1;
			break;
		case 'p':
			opt.parsable = 1;
			break;
		case 'h':
			opt.help = 1;
			break;
		case 'm':
			opt.mode = optarg;
			break;
		case 'o':
			opt.fields = optarg;
			break;
		case OPT_JSON:
			opt.json = 1;
			break;
		case OPT_VERSION:
			opt.version = 1;
			break;
		case OPT_EXPECT:
			opt.expect = optarg;
			break;
		case ':':
		case '?':
			if (bad[0])
				break;
			missing = c == ':';
			if (!strncmp(arg, "--", 2))
				snprintf(bad, sizeof(bad), "%s", q(arg));
			else
				snprintf(bad, sizeof(bad), "-%c", optopt);
			bad[strcspn(bad, "=")] = 0;
			break;
		}
	}
	while (optind < argc)	/* after "--" */
		pos[npos++] = argv[optind++];
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
	if (opt.version) {
		print_version();
		return flush_stdout();
	}
	if (bad[0] && missing)
		usage_error("%s needs a value", bad);
	if (bad[0])
		usage_error("unknown option '%s'%s", bad, bad[1] != '-' &&
			    cmd && cmd->max ? " (a name starting with '-' "
			    "goes after '--')" : "");
	if (!cmd)
		usage_error("missing command");
	if (opt.mode && !(cmd->flags & CMD_MODE))
		usage_error("--mode does not apply to %s", cmd->name);
	if (opt.fields && !(cmd->flags & CMD_FIELDS))
		usage_error("-o does not apply to %s", cmd->name);
	if (opt.expect && !(cmd->flags & CMD_EXPECT))
		usage_error("--expect-newest does not apply to %s", cmd->name);
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

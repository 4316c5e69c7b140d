// SPDX-License-Identifier: GPL-2.0
/*
 * The cowsnap CLI end to end: every command, each output mode parsed back
 * (JSON by a strict parser that also checks each key keeps one type), -o
 * column selection, error lines and exit statuses (the messages for the
 * module's limits among them), dump/load, signals during a dump.  Runs
 * /bin/cowsnap (or $COWSNAP_CLI) and checks what it did through raw ioctls
 * and mappings.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <linux/cowsnap.h>
#include "harness.h"
#include "util.h"

#define PAGE		4096UL
#define NOBODY		65534
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif

static const char *cli_path(void)
{
	const char *p = getenv("COWSNAP_CLI");

	return p ? p : "/bin/cowsnap";
}

/* One run of the CLI. */
struct run {
	int status;		/* exit status, 128 + signal if killed */
	char *out, *err;	/* NUL-terminated */
	size_t outlen;
};

static char *slurp(int fd, size_t *lenp)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len < 2)
			buf = realloc(buf, cap *= 2);
	}
	if (!buf)
		abort();
	buf[len] = 0;
	if (lenp)
		*lenp = len;
	close(fd);
	return buf;
}

/*
 * Run the CLI with @argv (argv[0] is replaced by the CLI path).  stdin is
 * @in (or /dev/null), stdout @out (or captured), as uid @uid if not 0.
 */
static struct run run_cli(int in, int out, uid_t uid, const char **argv)
{
	int ofd = memfd_create("out", 0), efd = memfd_create("err", 0);
	struct run r = { 0 };
	int status;
	pid_t pid;

	if (ofd < 0 || efd < 0)
		FAIL("memfd_create: %s", strerror(errno));
	argv[0] = cli_path();
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (!pid) {
		if (in < 0)
			in = open("/dev/null", O_RDONLY);
		dup2(in, 0);
		dup2(out >= 0 ? out : ofd, 1);
		dup2(efd, 2);
		if (uid && (setgroups(0, NULL) || setgid(uid) || setuid(uid)))
			_exit(126);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		FAIL("waitpid: %s", strerror(errno));
	r.status = WIFEXITED(status) ? WEXITSTATUS(status) :
		   128 + WTERMSIG(status);
	r.out = slurp(ofd, &r.outlen);
	r.err = slurp(efd, NULL);
	return r;
}

#define ARGV(...)	((const char *[]){ "cowsnap", __VA_ARGS__, NULL })
#define CLI(...)	run_cli(-1, -1, 0, ARGV(__VA_ARGS__))
#define CLI_AS(uid, ...) run_cli(-1, -1, uid, ARGV(__VA_ARGS__))
#define CLI0()		run_cli(-1, -1, 0, (const char *[]){ "cowsnap", NULL })

/* Success: exit 0 and nothing on stderr. */
#define EXPECT_OK(r)	expect_ok(&(r), __LINE__)
static void expect_ok(const struct run *r, int line)
{
	if (r->status || r->err[0])
		th_fail(__FILE__, line, "cowsnap exit %d, stderr: %s",
			r->status, r->err);
}

/*
 * Failure with exit @code and exactly one line "cowsnap: @cmd: ..." on
 * stderr that contains @text; nothing on stdout.
 */
#define EXPECT_ERR(r, cmd, code, text) \
	expect_err(&(r), cmd, code, text, __LINE__)
static void expect_err(const struct run *r, const char *cmd, int code,
		       const char *text, int line)
{
	char prefix[64];
	const char *nl = strchr(r->err, '\n');

	if (cmd)
		snprintf(prefix, sizeof(prefix), "cowsnap: %s: ", cmd);
	else
		snprintf(prefix, sizeof(prefix), "cowsnap: ");
	if (r->status != code)
		th_fail(__FILE__, line, "exit %d, want %d; stderr: %s",
			r->status, code, r->err);
	if (strncmp(r->err, prefix, strlen(prefix)) || !nl || nl[1])
		th_fail(__FILE__, line, "want one line \"%s...\", got \"%s\"",
			prefix, r->err);
	if (text && !strstr(r->err, text))
		th_fail(__FILE__, line, "stderr lacks \"%s\": %s", text,
			r->err);
	if (r->out[0])
		th_fail(__FILE__, line, "unexpected stdout: %s", r->out);
}

/* Lines of @s (modified in place); returns the count. */
static int split(char *s, char sep, char **v, int max)
{
	int n = 0;

	while (*s && n < max) {
		v[n++] = s;
		s = strchr(s, sep);
		if (!s)
			break;
		*s++ = 0;
	}
	return n;
}

/* The -H line whose first field is @key, split into @f; field count. */
static int find_row(const char *out, const char *key, char **f, int max)
{
	char *lines[512], *copy, *all = strdup(out);
	int n, i;

	n = split(all, '\n', lines, 512);
	for (i = 0; i < n; i++) {
		copy = strdup(lines[i]);
		if (!strncmp(copy, key, strlen(key)) &&
		    copy[strlen(key)] == '\t')
			return split(copy, '\t', f, max);
		free(copy);
	}
	return 0;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* A strict JSON parser (RFC 8259) into a small tree for checks. */
enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype t;
	char *s;		/* J_STR */
	uint64_t n;		/* J_NUM: exact if a non-negative integer */
	int is_uint, b;
	size_t len;		/* J_ARR, J_OBJ */
	struct jv *items;
	char **keys;		/* J_OBJ */
};

struct jp {
	const char *p;
	int depth;
};

static void jws(struct jp *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' ||
	       *j->p == '\r')
		j->p++;
}

static int jvalue(struct jp *j, struct jv *v);

/* Append code point @c to @o as UTF-8. */
static char *put_utf8(char *o, unsigned int c)
{
	if (c < 0x80) {
		*o++ = c;
	} else if (c < 0x800) {
		*o++ = 0xc0 | c >> 6;
		*o++ = 0x80 | (c & 0x3f);
	} else if (c < 0x10000) {
		*o++ = 0xe0 | c >> 12;
		*o++ = 0x80 | ((c >> 6) & 0x3f);
		*o++ = 0x80 | (c & 0x3f);
	} else {
		*o++ = 0xf0 | c >> 18;
		*o++ = 0x80 | ((c >> 12) & 0x3f);
		*o++ = 0x80 | ((c >> 6) & 0x3f);
		*o++ = 0x80 | (c & 0x3f);
	}
	return o;
}

static int hex4(const char *p, unsigned int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < 4; i++) {
		if (!isxdigit((unsigned char)p[i]))
			return -1;
		*v = *v * 16 + (isdigit((unsigned char)p[i]) ? p[i] - '0' :
				 (p[i] | 0x20) - 'a' + 10);
	}
	return 0;
}

/* Length of the valid UTF-8 sequence at @s (RFC 3629), or 0. */
static size_t utf8_seq(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* A string: valid UTF-8, escapes decoded (surrogate pairs too). */
static int jstring(struct jp *j, char **out)
{
	char *buf = malloc(strlen(j->p) * 2 + 4), *o = buf;
	unsigned int c, c2;
	size_t n;

	if (*j->p++ != '"')
		return -1;
	while (*j->p != '"') {
		unsigned char b = *j->p;

		if (b < 0x20)
			return -1;
		if (b != '\\') {
			n = utf8_seq((const unsigned char *)j->p);
			if (!n)
				return -1;
			memcpy(o, j->p, n);
			o += n;
			j->p += n;
			continue;
		}
		b = *++j->p;
		j->p++;
		if (b == 'u') {
			if (hex4(j->p, &c))
				return -1;
			j->p += 4;
			if (c >= 0xdc00 && c <= 0xdfff)
				return -1;
			if (c >= 0xd800 && c <= 0xdbff) {
				if (j->p[0] != '\\' || j->p[1] != 'u' ||
				    hex4(j->p + 2, &c2) || c2 < 0xdc00 ||
				    c2 > 0xdfff)
					return -1;
				j->p += 6;
				c = 0x10000 + ((c - 0xd800) << 10) +
				    (c2 - 0xdc00);
			}
			if (!c)
				return -1;	/* would end the C string */
			o = put_utf8(o, c);
		} else if (b && strchr("\"\\/", b)) {
			*o++ = b;
		} else if (b && strchr("bfnrt", b)) {
			*o++ = b == 'b' ? '\b' : b == 'f' ? '\f' :
			       b == 'n' ? '\n' : b == 'r' ? '\r' : '\t';
		} else {
			return -1;
		}
	}
	j->p++;
	*o = 0;
	*out = buf;
	return 0;
}

static int jnumber(struct jp *j, struct jv *v)
{
	const char *s = j->p;

	v->t = J_NUM;
	v->is_uint = *s != '-';
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (isdigit((unsigned char)*s))
			s++;
	else
		return -1;
	if (*s == '.') {
		v->is_uint = 0;
		if (!isdigit((unsigned char)*++s))
			return -1;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		v->is_uint = 0;
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!isdigit((unsigned char)*s))
			return -1;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (v->is_uint)
		v->n = strtoull(j->p, NULL, 10);
	j->p = s;
	return 0;
}

static int jcontainer(struct jp *j, struct jv *v, int obj)
{
	char close = obj ? '}' : ']';
	struct jv item;
	char *key = NULL;

	v->t = obj ? J_OBJ : J_ARR;
	if (++j->depth > 64)
		return -1;
	j->p++;
	jws(j);
	if (*j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		jws(j);
		if (obj) {
			if (*j->p != '"' || jstring(j, &key))
				return -1;
			jws(j);
			if (*j->p++ != ':')
				return -1;
		}
		memset(&item, 0, sizeof(item));
		if (jvalue(j, &item))
			return -1;
		v->items = realloc(v->items, (v->len + 1) * sizeof(item));
		v->keys = realloc(v->keys, (v->len + 1) * sizeof(key));
		v->items[v->len] = item;
		v->keys[v->len++] = key;
		jws(j);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p++ != close)
			return -1;
		j->depth--;
		return 0;
	}
}

static int jvalue(struct jp *j, struct jv *v)
{
	jws(j);
	switch (*j->p) {
	case '{':
		return jcontainer(j, v, 1);
	case '[':
		return jcontainer(j, v, 0);
	case '"':
		v->t = J_STR;
		return jstring(j, &v->s);
	case 't':
	case 'f':
	case 'n':
		if (!strncmp(j->p, "true", 4) || !strncmp(j->p, "null", 4)) {
			v->t = *j->p == 't' ? J_BOOL : J_NULL;
			v->b = 1;
			j->p += 4;
			return 0;
		}
		if (!strncmp(j->p, "false", 5)) {
			v->t = J_BOOL;
			j->p += 5;
			return 0;
		}
		return -1;
	default:
		return jnumber(j, v);
	}
}

/* Parse stdout as exactly one JSON document (and one trailing newline). */
#define JSON(r)		json_doc(&(r), __LINE__)
static struct jv *json_doc(const struct run *r, int line)
{
	struct jv *v = calloc(1, sizeof(*v));
	struct jp j = { r->out, 0 };

	if (r->status || r->err[0])
		th_fail(__FILE__, line, "cowsnap exit %d: %s", r->status,
			r->err);
	if (jvalue(&j, v))
		th_fail(__FILE__, line, "invalid JSON at offset %ld: %s",
			(long)(j.p - r->out), r->out);
	jws(&j);
	if (*j.p)
		th_fail(__FILE__, line, "data after the JSON document: %s",
			j.p);
	return v;
}

static struct jv *jget(struct jv *o, const char *key)
{
	size_t i;

	if (!o || o->t != J_OBJ)
		return NULL;
	for (i = 0; i < o->len; i++)
		if (!strcmp(o->keys[i], key))
			return &o->items[i];
	return NULL;
}

static struct jv *jat(struct jv *a, size_t i)
{
	return a && a->t == J_ARR && i < a->len ? &a->items[i] : NULL;
}

/* Field @key of @o as an exact unsigned number; fails the test if not. */
#define JNUM(o, key)	jnum(o, key, __LINE__)
static uint64_t jnum(struct jv *o, const char *key, int line)
{
	struct jv *v = jget(o, key);

	if (!v || v->t != J_NUM || !v->is_uint)
		th_fail(__FILE__, line, "JSON field %s is not a number", key);
	return v->n;
}

#define JSTR(o, key)	jstr(o, key, __LINE__)
static const char *jstr(struct jv *o, const char *key, int line)
{
	struct jv *v = jget(o, key);

	if (!v || v->t != J_STR)
		th_fail(__FILE__, line, "JSON field %s is not a string", key);
	return v->s;
}

/* Regions through raw ioctls, independent of the CLI and libcowsnap. */
static int attach(const char *name, int flags)
{
	struct cowsnap_name n = { .flags = 0 };
	int fd = open(COWSNAP_DEV, flags | O_CLOEXEC);

	if (fd < 0)
		return -1;
	snprintf(n.name, sizeof(n.name), "%s", name);
	if (ioctl(fd, COWSNAP_IOC_ATTACH, &n)) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static int region_exists(const char *name)
{
	int fd = attach(name, O_RDONLY);

	if (fd < 0 && errno != ENOENT)
		FAIL("attach %s: %s", name, strerror(errno));
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

static struct cowsnap_info info_of(const char *name)
{
	struct cowsnap_info info;
	int fd = attach(name, O_RDONLY);

	ASSERT_GE(fd, 0);
	memset(&info, 0, sizeof(info));
	ASSERT_EQ(ioctl(fd, COWSNAP_IOC_INFO, &info), 0);
	close(fd);
	return info;
}

static unsigned char *map_region(const char *name, size_t size)
{
	int fd = attach(name, O_RDWR);
	void *p;

	ASSERT_GE(fd, 0);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_TRUE(p != MAP_FAILED);
	close(fd);
	return p;
}

/* A page of bytes that depend on @seed, never all zero. */
static void cli_fill_page(unsigned char *p, unsigned int seed)
{
	size_t i;

	for (i = 0; i < PAGE; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7 + 1) | 1;
}

static uint32_t cli_crc32c(const unsigned char *p, size_t len)
{
	uint32_t crc = ~0U;
	int k;

	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78 : crc >> 1;
	}
	return ~crc;
}

static unsigned char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);

	ASSERT_GE(fd, 0);
	return (unsigned char *)slurp(fd, len);
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static uint32_t le32(const unsigned char *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

/*
 * Every test names its regions through the fixture, which destroys them
 * afterwards, also when the test fails.
 */
FIXTURE(cli) {
	char names[8][COWSNAP_NAME_MAX];
	char files[4][64];
	int nnames, nfiles;
	int reloaded;		/* module parameters changed: reload defaults */
};

FIXTURE_SETUP(cli)
{
	memset(self, 0, sizeof(*self));
}

FIXTURE_TEARDOWN(cli)
{
	struct cowsnap_name n = { .flags = 0 };
	int fd = open(COWSNAP_DEV, O_RDWR);
	int i;

	for (i = 0; fd >= 0 && i < self->nnames; i++) {
		memcpy(n.name, self->names[i], sizeof(n.name));
		ioctl(fd, COWSNAP_IOC_DESTROY, &n);
	}
	if (fd >= 0)
		close(fd);
	for (i = 0; i < self->nfiles; i++)
		unlink(self->files[i]);
	if (self->reloaded || !mod_loaded()) {
		if (mod_loaded())
			mod_unload();
		mod_load("");
	}
}

/* Reload the module with @params (every region of the test is gone). */
static void reload(struct th_fx_cli *self, const char *params)
{
	self->reloaded = 1;
	if (mod_unload_wait())
		FAIL("rmmod: %s", strerror(errno));
	if (mod_load(params))
		FAIL("insmod %s: %s", params, strerror(errno));
}

/* A region name unique to this test, destroyed at teardown. */
static const char *region(struct th_fx_cli *self, const char *base)
{
	char *n = self->names[self->nnames++];

	snprintf(n, COWSNAP_NAME_MAX, "cli-%s-%d", base, (int)getpid());
	return n;
}

static const char *tmpfile_path(struct th_fx_cli *self, const char *base)
{
	char *f = self->files[self->nfiles++];

	snprintf(f, sizeof(self->files[0]), "/tmp/cli-%s-%d", base,
		 (int)getpid());
	return f;
}

static const char *const command_names[] = {
	"create", "destroy", "snap", "list", "restore", "diff", "delete",
	"clone", "dump", "load", "stats",
};

#define NCMDS	ARRAY_SIZE(command_names)

TEST_F(cli, help_lists_every_command_option_and_exit_status)
{
	struct run r = CLI("--help");
	unsigned int i;

	EXPECT_OK(r);
	ASSERT_TRUE(!strncmp(r.out, "usage: cowsnap", 14));
	for (i = 0; i < NCMDS; i++) {
		char want[32];

		snprintf(want, sizeof(want), "\n  %s ", command_names[i]);
		if (!strstr(r.out, want))
			FAIL("--help lacks %s", command_names[i]);
	}
	ASSERT_TRUE(strstr(r.out, "-H"));
	ASSERT_TRUE(strstr(r.out, "-p"));
	ASSERT_TRUE(strstr(r.out, "--json"));
	ASSERT_TRUE(strstr(r.out, "2  usage error"));
	ASSERT_TRUE(strstr(r.out, "3  not found"));
	ASSERT_TRUE(strstr(r.out, "4  permission denied"));

	r = CLI("-h");
	EXPECT_OK(r);
	ASSERT_TRUE(!strncmp(r.out, "usage: cowsnap", 14));
	r = CLI("--version");
	EXPECT_OK(r);
	ASSERT_TRUE(!strncmp(r.out, "cowsnap ", 8));
	ASSERT_TRUE(strstr(r.out, "(API 1)\n"));
	/* The loaded module's version, as sysfs has it. */
	{
		char want[96] = "module ";
		int fd = open("/sys/module/cowsnap/version", O_RDONLY);
		ssize_t n;

		ASSERT_GE(fd, 0);
		n = read(fd, want + 7, sizeof(want) - 8);
		close(fd);
		ASSERT_GT(n, 1);
		want[7 + n] = 0;
		if (!strstr(r.out, want))
			FAIL("--version: %s, want %s", r.out, want);
		ASSERT_EQ(count_lines(r.out), 2);
	}
}

TEST_F(cli, help_on_every_command)
{
	unsigned int i;
	char want[64];

	for (i = 0; i < NCMDS; i++) {
		struct run r = CLI(command_names[i], "--help");

		EXPECT_OK(r);
		snprintf(want, sizeof(want), "] %s", command_names[i]);
		if (strncmp(r.out, "usage: cowsnap", 14) || !strstr(r.out, want))
			FAIL("%s --help: %s", command_names[i], r.out);
		ASSERT_TRUE(strstr(r.out, "Exit status"));
		/* Help wins over missing arguments, before or after. */
		r = CLI("--help", command_names[i]);
		EXPECT_OK(r);
		ASSERT_TRUE(strstr(r.out, want));
	}
}

TEST_F(cli, usage_errors_exit_2_with_one_line)
{
	static const struct {
		const char *argv[6];
		const char *cmd;
	} cases[] = {
		{ { "frob" }, "frob" },
		{ { "create" }, "create" },
		{ { "create", "x" }, "create" },
		{ { "create", "x", "1G", "extra" }, "create" },
		{ { "destroy" }, "destroy" },
		{ { "destroy", "a", "b" }, "destroy" },
		{ { "snap" }, "snap" },
		{ { "snap", "a", "b", "c" }, "snap" },
		{ { "list", "a", "b" }, "list" },
		{ { "restore", "x" }, "restore" },
		{ { "diff", "x" }, "diff" },
		{ { "diff", "x", "1", "2", "3" }, "diff" },
		{ { "delete", "x" }, "delete" },
		{ { "clone", "x", "1" }, "clone" },
		{ { "dump" }, "dump" },
		{ { "load" }, "load" },
		{ { "stats", "x" }, "stats" },
		{ { "-Z", "stats" }, "stats" },
		{ { "stats", "--bogus" }, "stats" },
		{ { "destroy", "x", "--mode", "0600" }, "destroy" },
		{ { "create", "x", "1G", "--mode" }, "create" },
		{ { "stats", "--json", "-H" }, "stats" },
		{ { "dump", "x@1", "--json" }, "dump" },
		{ { "list", "-o" }, "list" },
		{ { "list", "-o", "bogus" }, "list" },
		{ { "diff", "x", "1", "-o", "name" }, "diff" },
		{ { "snap", "x", "-o", "id" }, "snap" },
		{ { "stats", "-o", "name" }, "stats" },
		{ { "restore", "x", "1", "--expect-newest" }, "restore" },
		{ { "diff", "x", "1", "--expect-newest", "1" }, "diff" },
		{ { "destroy", "-x" }, "destroy" },
		{ { "create", "--", "-x", "4K" }, "create" },
		{ { "snap", "x", "--", "-label" }, "snap" },
		{ { "clone", "x", "1", "--", "-y" }, "clone" },
		{ { "load", "--", "-z", "/dev/null" }, "load" },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *argv[8] = { "cowsnap" };
		struct run r;

		memcpy(argv + 1, cases[i].argv, sizeof(cases[i].argv));
		r = run_cli(-1, -1, 0, argv);
		EXPECT_ERR(r, cases[i].cmd, 2, NULL);
	}
	{
		struct run r = CLI0();

		EXPECT_ERR(r, NULL, 2, "missing command");
	}
}

TEST_F(cli, bad_sizes_are_usage_errors)
{
	static const char *const sizes[] = {
		"", "abc", "0", "0K", "1X", "1.5G", "1 G", "1GG", "0x1000",
		"18446744073709551616", "17179869184T", "+4096",
	};
	const char *name = region(self, "badsize");
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct run r = CLI("create", name, sizes[i]);

		EXPECT_ERR(r, "create", 2, "invalid size");
	}
	ASSERT_FALSE(region_exists(name));
}

TEST_F(cli, bad_names_are_usage_errors)
{
	static const char *const names[] = {
		"", ".hidden", "a/b", "has space", "new\nline", "caf\xc3\xa9",
		"a@b", "0123456789012345678901234567890123456789012345678901234567890123",
	};
	const char *good = region(self, "badname");
	unsigned int i;
	struct run r;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		r = CLI("create", names[i], "4K");
		EXPECT_ERR(r, "create", 2, "invalid region name");
		r = CLI("destroy", names[i]);
		EXPECT_ERR(r, "destroy", 2, "invalid region name");
		r = CLI("snap", good, names[i][0] ? names[i] : ".");
		EXPECT_ERR(r, "snap", 2, "invalid label");
		r = CLI("clone", good, "1", names[i]);
		EXPECT_ERR(r, "clone", 2, "invalid region name");
		r = CLI("load", names[i], "/dev/null");
		EXPECT_ERR(r, "load", 2, "invalid region name");
	}
}

TEST_F(cli, bad_modes_are_usage_errors)
{
	static const char *const modes[] = { "999", "abc", "01000", "",
					     "0x1ff", "7777" };
	const char *name = region(self, "badmode");
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(modes); i++) {
		struct run r = CLI("create", name, "4K", "--mode", modes[i]);

		EXPECT_ERR(r, "create", 2, "invalid mode");
	}
	ASSERT_FALSE(region_exists(name));
}

TEST_F(cli, create_list_destroy_in_every_output_mode)
{
	const char *name = region(self, "crud");
	struct jv *doc, *regions, *e = NULL;
	char *f[16];
	size_t i;
	struct run r;

	r = CLI("create", name, "1G");
	EXPECT_OK(r);
	ASSERT_EQ(r.out[0], 0);
	ASSERT_TRUE(region_exists(name));

	/* Default: aligned table with a header and human sizes. */
	r = CLI("list");
	EXPECT_OK(r);
	ASSERT_TRUE(!strncmp(r.out, "NAME ", 5));
	ASSERT_TRUE(strstr(r.out, "SIZE"));
	{
		char *line = strstr(r.out, name);

		ASSERT_TRUE(line);
		*strchrnul(line, '\n') = 0;
		ASSERT_TRUE(strstr(line, " 1G "));
		ASSERT_TRUE(strstr(line, " 0600 "));
	}

	/* -H: no header, tabs; -p: exact bytes. */
	r = CLI("list", "-H");
	EXPECT_OK(r);
	ASSERT_TRUE(strncmp(r.out, "NAME", 4));
	ASSERT_EQ(find_row(r.out, name, f, 16), 9);
	ASSERT_EQ(strcmp(f[1], "1G"), 0);
	r = CLI("-H", "-p", "list");
	EXPECT_OK(r);
	ASSERT_EQ(find_row(r.out, name, f, 16), 9);
	ASSERT_EQ(strcmp(f[1], "1073741824"), 0);
	ASSERT_EQ(strcmp(f[2], "0"), 0);	/* nothing resident */
	ASSERT_EQ(strcmp(f[4], "0"), 0);	/* no snapshots */
	ASSERT_EQ(strcmp(f[6], "0600"), 0);
	ASSERT_EQ(strcmp(f[7], "0"), 0);	/* uid root */
	r = CLI("list", "-Hp");
	EXPECT_OK(r);
	ASSERT_EQ(find_row(r.out, name, f, 16), 9);

	r = CLI("list", "--json");
	doc = JSON(r);
	regions = jget(doc, "regions");
	ASSERT_TRUE(regions && regions->t == J_ARR);
	for (i = 0; i < regions->len; i++)
		if (!strcmp(JSTR(jat(regions, i), "name"), name))
			e = jat(regions, i);
	ASSERT_TRUE(e);
	ASSERT_EQ(JNUM(e, "size"), 1ULL << 30);
	/* "snapshots" is the array of `list NAME`; the count has its own key. */
	ASSERT_EQ(JNUM(e, "nr_snapshots"), 0);
	ASSERT_FALSE(jget(e, "snapshots"));
	ASSERT_EQ(strcmp(JSTR(e, "mode"), "0600"), 0);

	r = CLI("destroy", name);
	EXPECT_OK(r);
	ASSERT_FALSE(region_exists(name));
	r = CLI("list", "-H");
	EXPECT_OK(r);
	ASSERT_EQ(find_row(r.out, name, f, 16), 0);
	r = CLI("destroy", name);
	EXPECT_ERR(r, "destroy", 3, "no such region");
}

TEST_F(cli, create_and_destroy_print_json_when_asked)
{
	const char *name = region(self, "cjson");
	struct jv *doc;
	struct run r;

	r = CLI("--json", "create", name, "64K", "--mode", "0640");
	doc = JSON(r);
	ASSERT_EQ(strcmp(JSTR(doc, "name"), name), 0);
	ASSERT_EQ(JNUM(doc, "size"), 65536);
	ASSERT_EQ(strcmp(JSTR(doc, "mode"), "0640"), 0);
	r = CLI("destroy", name, "--json");
	doc = JSON(r);
	ASSERT_EQ(strcmp(JSTR(doc, "name"), name), 0);
}

TEST_F(cli, create_accepts_size_suffixes)
{
	static const struct {
		const char *arg;
		uint64_t bytes;
	} sizes[] = {
		{ "4096", 4096 }, { "8K", 8192 }, { "12k", 12288 },
		{ "1M", 1 << 20 }, { "3G", 3ULL << 30 }, { "1T", 1ULL << 40 },
		{ "2g", 2ULL << 30 },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		const char *name = region(self, sizes[i].arg);
		struct run r = CLI("create", name, sizes[i].arg);

		EXPECT_OK(r);
		ASSERT_EQ(info_of(name).size, sizes[i].bytes);
		r = CLI("destroy", name);
		EXPECT_OK(r);
		self->nnames--;
	}
}

TEST_F(cli, create_mode_sets_permissions)
{
	const char *a = region(self, "mode-a"), *b = region(self, "mode-b");
	char *f[16];
	struct run r;

	r = CLI("create", a, "4K", "--mode", "0640");
	EXPECT_OK(r);
	ASSERT_EQ(info_of(a).mode & 0777, 0640);
	r = CLI("create", "--mode=604", b, "4K");
	EXPECT_OK(r);
	ASSERT_EQ(info_of(b).mode & 0777, 0604);
	r = CLI("list", "-H");
	EXPECT_OK(r);
	ASSERT_EQ(find_row(r.out, b, f, 16), 9);
	ASSERT_EQ(strcmp(f[6], "0604"), 0);
}

TEST_F(cli, create_existing_region_fails_and_keeps_it)
{
	const char *name = region(self, "exists");
	struct run r;

	r = CLI("create", name, "8K");
	EXPECT_OK(r);
	r = CLI("create", name, "1M");
	EXPECT_ERR(r, "create", 1, "already exists");
	ASSERT_EQ(info_of(name).size, 8192);
}

TEST_F(cli, unaligned_size_is_refused)
{
	const char *name = region(self, "unaligned");
	struct run r = CLI("create", name, "5000");

	EXPECT_ERR(r, "create", 1, "page size");
	ASSERT_FALSE(region_exists(name));
}

TEST_F(cli, snap_prints_new_ids)
{
	const char *name = region(self, "snapids");
	struct jv *doc;
	struct run r;

	r = CLI("create", name, "64K");
	EXPECT_OK(r);
	r = CLI("snap", name);
	EXPECT_OK(r);
	ASSERT_EQ(strcmp(r.out, "1\n"), 0);
	r = CLI("snap", name, "before");
	EXPECT_OK(r);
	ASSERT_EQ(strcmp(r.out, "2\n"), 0);
	r = CLI("snap", "-H", name);
	EXPECT_OK(r);
	ASSERT_EQ(strcmp(r.out, "3\n"), 0);
	r = CLI("snap", "--json", name, "after");
	doc = JSON(r);
	ASSERT_EQ(JNUM(doc, "id"), 4);
	ASSERT_EQ(strcmp(JSTR(doc, "label"), "after"), 0);
	ASSERT_EQ(strcmp(JSTR(doc, "region"), name), 0);
	r = CLI("snap", "--json", name);
	doc = JSON(r);
	ASSERT_EQ(JNUM(doc, "id"), 5);
	ASSERT_EQ(jget(doc, "label")->t, J_NULL);
	ASSERT_EQ(info_of(name).nr_snapshots, 5);
}

TEST_F(cli, list_snapshots_in_every_output_mode)
{
	const char *name = region(self, "lsnap");
	struct jv *doc, *snaps;
	unsigned char *p;
	char *f[16];
	time_t now = time(NULL);
	uint64_t ctime;
	struct run r;

	r = CLI("create", name, "64K");
	EXPECT_OK(r);
	p = map_region(name, 65536);
	cli_fill_page(p, 1);
	cli_fill_page(p + PAGE, 2);
	cli_fill_page(p + 2 * PAGE, 3);
	r = CLI("snap", name, "first");
	EXPECT_OK(r);
	p[0] ^= 0xff;	/* page 0 is now snapshot 1's alone */
	r = CLI("snap", name);
	EXPECT_OK(r);

	r = CLI("list", name);
	EXPECT_OK(r);
	ASSERT_EQ(count_lines(r.out), 3);
	ASSERT_TRUE(!strncmp(r.out, "ID  LABEL", 9));
	ASSERT_TRUE(strstr(r.out, "CREATED"));
	ASSERT_TRUE(strstr(r.out, "REFERENCED"));
	ASSERT_TRUE(strstr(r.out, "EXCLUSIVE"));
	ASSERT_TRUE(strstr(r.out, "first"));
	ASSERT_TRUE(strstr(r.out, " 12K"));
	ASSERT_TRUE(strstr(r.out, " 4K"));

	r = CLI("list", name, "-H", "-p");
	EXPECT_OK(r);
	ASSERT_EQ(count_lines(r.out), 2);
	ASSERT_EQ(find_row(r.out, "1", f, 16), 5);
	ASSERT_EQ(strcmp(f[1], "first"), 0);
	ctime = strtoull(f[2], NULL, 10);
	ASSERT_LE(llabs((long long)(ctime / 1000000000ULL) - (long long)now),
		  120);
	ASSERT_EQ(strcmp(f[3], "12288"), 0);
	ASSERT_EQ(strcmp(f[4], "4096"), 0);
	r = CLI("list", name, "-Hp");
	EXPECT_OK(r);
	ASSERT_EQ(find_row(r.out, "2", f, 16), 5);
	ASSERT_EQ(strcmp(f[1], "-"), 0);
	ASSERT_EQ(strcmp(f[3], "12288"), 0);
	ASSERT_EQ(strcmp(f[4], "0"), 0);

	r = CLI("list", name, "--json");
	doc = JSON(r);
	ASSERT_EQ(strcmp(JSTR(doc, "region"), name), 0);
	snaps = jget(doc, "snapshots");
	ASSERT_TRUE(snaps && snaps->t == J_ARR);
	ASSERT_EQ(snaps->len, 2);
	ASSERT_EQ(JNUM(jat(snaps, 0), "id"), 1);
	ASSERT_EQ(strcmp(JSTR(jat(snaps, 0), "label"), "first"), 0);
	ASSERT_EQ(JNUM(jat(snaps, 0), "ctime_ns"), ctime);
	ASSERT_EQ(JNUM(jat(snaps, 0), "referenced"), 3 * PAGE);
	ASSERT_EQ(JNUM(jat(snaps, 0), "exclusive"), PAGE);
	ASSERT_EQ(JNUM(jat(snaps, 1), "id"), 2);
	ASSERT_EQ(jget(jat(snaps, 1), "label")->t, J_NULL);
	munmap(p, 65536);
}

TEST_F(cli, restore_by_label_or_id_brings_back_contents)
{
	const char *name = region(self, "restore");
	unsigned char *p;
	struct jv *doc;
	struct run r;

	r = CLI("create", name, "16K");
	EXPECT_OK(r);
	p = map_region(name, 16384);
	strcpy((char *)p, "hello");
	r = CLI("snap", name, "base");
	EXPECT_OK(r);
	strcpy((char *)p, "world");
	strcpy((char *)p + PAGE, "more");
	r = CLI("restore", name, "base");
	EXPECT_OK(r);
	ASSERT_EQ(r.out[0], 0);
	ASSERT_EQ(strcmp((char *)p, "hello"), 0);
	ASSERT_EQ(p[PAGE], 0);

	strcpy((char *)p, "again");
	r = CLI("restore", name, "1", "--json");
	doc = JSON(r);
	ASSERT_EQ(JNUM(doc, "snapshot"), 1);
	ASSERT_GE(JNUM(doc, "pages_restored"), 1);
	ASSERT_EQ(strcmp((char *)p, "hello"), 0);
	munmap(p, 16384);
}

TEST_F(cli, diff_lists_changed_extents_in_every_output_mode)
{
	const char *name = region(self, "diff");
	struct jv *doc, *ext;
	unsigned char *p;
	char *f[8];
	struct run r;

	r = CLI("create", name, "256K");
	EXPECT_OK(r);
	p = map_region(name, 262144);
	r = CLI("snap", name, "s1");
	EXPECT_OK(r);
	p[3 * PAGE] = 1;
	p[4 * PAGE + 100] = 2;
	p[10 * PAGE + 4095] = 3;

	r = CLI("diff", name, "s1", "-H", "-p");
	EXPECT_OK(r);
	ASSERT_EQ(count_lines(r.out), 2);
	ASSERT_EQ(find_row(r.out, "3", f, 8), 4);
	ASSERT_EQ(strcmp(f[1], "2"), 0);
	ASSERT_EQ(strcmp(f[2], "12288"), 0);
	ASSERT_EQ(strcmp(f[3], "8192"), 0);
	ASSERT_EQ(find_row(r.out, "10", f, 8), 4);
	ASSERT_EQ(strcmp(f[1], "1"), 0);
	ASSERT_EQ(strcmp(f[2], "40960"), 0);
	ASSERT_EQ(strcmp(f[3], "4096"), 0);

	r = CLI("diff", name, "1");
	EXPECT_OK(r);
	ASSERT_EQ(count_lines(r.out), 3);
	ASSERT_TRUE(!strncmp(r.out, "START", 5));
	ASSERT_TRUE(strstr(r.out, "0x3000"));
	ASSERT_TRUE(strstr(r.out, "8K"));
	ASSERT_TRUE(strstr(r.out, "0xa000"));

	r = CLI("--json", "diff", name, "s1");
	doc = JSON(r);
	ASSERT_EQ(JNUM(doc, "from"), 1);
	ASSERT_EQ(JNUM(doc, "to"), 0);
	ASSERT_EQ(JNUM(doc, "changed_pages"), 3);
	ext = jget(doc, "extents");
	ASSERT_TRUE(ext && ext->t == J_ARR);
	ASSERT_EQ(ext->len, 2);
	ASSERT_EQ(JNUM(jat(ext, 0), "start"), 3);
	ASSERT_EQ(JNUM(jat(ext, 0), "pages"), 2);
	ASSERT_EQ(JNUM(jat(ext, 0), "offset"), 3 * PAGE);
	ASSERT_EQ(JNUM(jat(ext, 0), "length"), 2 * PAGE);
	ASSERT_EQ(JNUM(jat(ext, 1), "start"), 10);

	/* Between two snapshots; and nothing changed since the newest. */
	r = CLI("snap", name, "s2");
	EXPECT_OK(r);
	r = CLI("diff", name, "s1", "s2", "-Hp");
	EXPECT_OK(r);
	ASSERT_EQ(count_lines(r.out), 2);
	ASSERT_EQ(find_row(r.out, "3", f, 8), 4);
	r = CLI("diff", name, "s2", "-H");
	EXPECT_OK(r);
	ASSERT_EQ(r.out[0], 0);
	r = CLI("diff", name, "s2", "0", "--json");
	doc = JSON(r);
	ASSERT_EQ(jget(doc, "extents")->len, 0);
	munmap(p, 262144);
}

TEST_F(cli, delete_removes_a_snapshot)
{
	const char *name = region(self, "delete");
	struct jv *doc;
	char *f[8];
	struct run r;

	r = CLI("create", name, "16K");
	EXPECT_OK(r);
	r = CLI("snap", name, "one");
	EXPECT_OK(r);
	r = CLI("snap", name, "two");
	EXPECT_OK(r);
	r = CLI("snap", name, "three");
	EXPECT_OK(r);
	r = CLI("delete", name, "1");
	EXPECT_OK(r);
	ASSERT_EQ(r.out[0], 0);
	r = CLI("delete", name, "two", "--json");
	doc = JSON(r);
	ASSERT_EQ(JNUM(doc, "deleted"), 2);
	r = CLI("list", name, "-H");
	EXPECT_OK(r);
	ASSERT_EQ(count_lines(r.out), 1);
	ASSERT_EQ(find_row(r.out, "3", f, 8), 5);
	r = CLI("delete", name, "1");
	EXPECT_ERR(r, "delete", 3, "has no snapshot '1'");
	r = CLI("delete", name, "two");
	EXPECT_ERR(r, "delete", 3, "has no snapshot 'two'");
	ASSERT_EQ(info_of(name).nr_snapshots, 1);
}

TEST_F(cli, ambiguous_label_is_refused)
{
	const char *name = region(self, "ambig");
	struct run r;

	r = CLI("create", name, "16K");
	EXPECT_OK(r);
	r = CLI("snap", name, "same");
	EXPECT_OK(r);
	r = CLI("snap", name, "same");
	if (r.status)
		SKIP("the module refuses duplicate labels");
	r = CLI("delete", name, "same");
	EXPECT_ERR(r, "delete", 1, "several snapshots");
	ASSERT_EQ(info_of(name).nr_snapshots, 2);
}

TEST_F(cli, clone_creates_a_region_from_a_snapshot)
{
	const char *name = region(self, "origin");
	const char *copy = region(self, "clone");
	unsigned char *p, *c;
	struct jv *doc;
	struct run r;

	r = CLI("create", name, "64K");
	EXPECT_OK(r);
	p = map_region(name, 65536);
	strcpy((char *)p + 5 * PAGE, "abc");
	r = CLI("snap", name, "v1");
	EXPECT_OK(r);
	strcpy((char *)p + 5 * PAGE, "xyz");
	r = CLI("clone", name, "v1", copy, "--mode", "0640");
	EXPECT_OK(r);
	ASSERT_EQ(r.out[0], 0);
	ASSERT_EQ(info_of(copy).size, 65536);
	ASSERT_EQ(info_of(copy).mode & 0777, 0640);
	c = map_region(copy, 65536);
	ASSERT_EQ(strcmp((char *)c + 5 * PAGE, "abc"), 0);
	ASSERT_EQ(strcmp((char *)p + 5 * PAGE, "xyz"), 0);

	r = CLI("clone", name, "1", copy);
	EXPECT_ERR(r, "clone", 1, "already exists");
	ASSERT_EQ(strcmp((char *)c + 5 * PAGE, "abc"), 0);

	r = CLI("destroy", copy);
	EXPECT_OK(r);
	r = CLI("clone", "--json", name, "1", copy);
	doc = JSON(r);
	ASSERT_EQ(strcmp(JSTR(doc, "name"), copy), 0);
	ASSERT_EQ(strcmp(JSTR(doc, "origin"), name), 0);
	ASSERT_EQ(JNUM(doc, "snapshot"), 1);
	munmap(p, 65536);
	munmap(c, 65536);
}

TEST_F(cli, unknown_region_exits_3)
{
	const char *name = region(self, "nosuch");
	const char *file = tmpfile_path(self, "nosuch");
	char at[80];
	struct run r;

	snprintf(at, sizeof(at), "%s@1", name);
	r = CLI("destroy", name);
	EXPECT_ERR(r, "destroy", 3, "no such region");
	r = CLI("snap", name);
	EXPECT_ERR(r, "snap", 3, "no such region");
	r = CLI("list", name);
	EXPECT_ERR(r, "list", 3, "no such region");
	r = CLI("restore", name, "1");
	EXPECT_ERR(r, "restore", 3, "no such region");
	r = CLI("diff", name, "1");
	EXPECT_ERR(r, "diff", 3, "no such region");
	r = CLI("delete", name, "1");
	EXPECT_ERR(r, "delete", 3, "no such region");
	r = CLI("clone", name, "1", "cli-never");
	EXPECT_ERR(r, "clone", 3, "no such region");
	r = CLI("dump", at, file);
	EXPECT_ERR(r, "dump", 3, "no such region");
	ASSERT_EQ(access(file, F_OK), -1);
	r = CLI("load", name, "/nonexistent/dump");
	EXPECT_ERR(r, "load", 3, "No such file");
	ASSERT_FALSE(region_exists(name));
}

TEST_F(cli, unknown_snapshot_exits_3)
{
	const char *name = region(self, "nosnap");
	const char *copy = region(self, "nosnap-clone");
	const char *file = tmpfile_path(self, "nosnap");
	char at[80];
	struct run r;

	r = CLI("create", name, "16K");
	EXPECT_OK(r);
	r = CLI("snap", name, "real");
	EXPECT_OK(r);
	r = CLI("restore", name, "99");
	EXPECT_ERR(r, "restore", 3, "has no snapshot '99'");
	r = CLI("restore", name, "nolabel");
	EXPECT_ERR(r, "restore", 3, "has no snapshot 'nolabel'");
	r = CLI("diff", name, "99");
	EXPECT_ERR(r, "diff", 3, "has no snapshot");
	r = CLI("diff", name, "real", "98");
	EXPECT_ERR(r, "diff", 3, "has no snapshot '98'");
	r = CLI("delete", name, "2");
	EXPECT_ERR(r, "delete", 3, "has no snapshot");
	r = CLI("clone", name, "7", copy);
	EXPECT_ERR(r, "clone", 3, "has no snapshot");
	ASSERT_FALSE(region_exists(copy));
	snprintf(at, sizeof(at), "%s@nolabel", name);
	r = CLI("dump", at, file);
	EXPECT_ERR(r, "dump", 3, "has no snapshot");
	ASSERT_EQ(access(file, F_OK), -1);
	ASSERT_EQ(info_of(name).nr_snapshots, 1);
}

TEST_F(cli, permission_denied_exits_4)
{
	const char *name = region(self, "private");
	const char *other = region(self, "private2");
	struct stat st;
	struct run r;

	r = CLI("create", name, "16K", "--mode", "0600");
	EXPECT_OK(r);
	r = CLI("snap", name);
	EXPECT_OK(r);
	ASSERT_EQ(stat(COWSNAP_DEV, &st), 0);

	r = CLI_AS(NOBODY, "snap", name);
	EXPECT_ERR(r, "snap", 4, "ermission denied");
	r = CLI_AS(NOBODY, "list", name);
	EXPECT_ERR(r, "list", 4, "denied");
	r = CLI_AS(NOBODY, "restore", name, "1");
	EXPECT_ERR(r, "restore", 4, "denied");
	r = CLI_AS(NOBODY, "delete", name, "1");
	EXPECT_ERR(r, "delete", 4, "denied");
	r = CLI_AS(NOBODY, "dump", name, "/tmp/cli-denied");
	EXPECT_ERR(r, "dump", 4, "denied");
	r = CLI_AS(NOBODY, "destroy", name);
	ASSERT_EQ(r.status, 4);
	EXPECT_ERR(r, "destroy", 4, NULL);
	if ((st.st_mode & 0777) == 0600) {
		r = CLI_AS(NOBODY, "create", other, "4K");
		EXPECT_ERR(r, "create", 4, "Permission denied");
		ASSERT_FALSE(region_exists(other));
	}
	ASSERT_TRUE(region_exists(name));
	ASSERT_EQ(info_of(name).nr_snapshots, 1);

	/* /proc/cowsnap is world-readable: stats works for anyone. */
	r = CLI_AS(NOBODY, "stats");
	EXPECT_OK(r);
}

TEST_F(cli, stats_in_every_output_mode)
{
	static const char *const keys[] = {
		"regions", "snapshots", "pages_allocated", "pages_shared",
		"cow_faults", "bytes_copied", "read_faults", "write_faults",
		"restores", "pages_restored", "alloc_failures",
	};
	const char *name = region(self, "stats");
	struct jv *doc;
	char *f[4], want[32];
	unsigned int i;
	struct run r;

	r = CLI("create", name, "16K");
	EXPECT_OK(r);

	r = CLI("stats");
	EXPECT_OK(r);
	ASSERT_TRUE(!strncmp(r.out, "COUNTER", 7));
	ASSERT_TRUE(strstr(r.out, "\nregions "));

	r = CLI("stats", "-H", "-p");
	EXPECT_OK(r);
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		char *copy = strdup(r.out);

		if (find_row(copy, keys[i], f, 4) != 2)
			FAIL("stats -H lacks %s", keys[i]);
		if (!strcmp(keys[i], "regions")) {
			snprintf(want, sizeof(want), "%lld",
				 proc_counter("regions"));
			ASSERT_EQ(strcmp(f[1], want), 0);
			ASSERT_GE(atoll(f[1]), 1);
		}
	}

	/*
	 * The counters sit in an object of their own: "regions" is the array
	 * of `list` everywhere else.
	 */
	r = CLI("--json", "stats");
	doc = JSON(r);
	ASSERT_EQ(doc->len, 1);
	doc = jget(doc, "counters");
	ASSERT_TRUE(doc && doc->t == J_OBJ);
	for (i = 0; i < ARRAY_SIZE(keys); i++)
		JNUM(doc, keys[i]);
	ASSERT_EQ(JNUM(doc, "regions"), proc_counter("regions"));
	ASSERT_EQ(JNUM(doc, "api"), COWSNAP_API_VERSION);
	JSTR(doc, "version");
}

/*
 * A sparse 1 GiB region: a few written pages far apart, one page written
 * with zeros.  Returns the number of non-zero pages.
 */
static unsigned int make_sparse(const char *name)
{
	static const uint64_t pages[] = { 0, 1, 70000, 70001, 70002, 70003,
					  123457, 262143 };
	unsigned char *p;
	unsigned int i;
	struct run r;

	r = CLI("create", name, "1G");
	EXPECT_OK(r);
	p = map_region(name, 1UL << 30);
	for (i = 0; i < ARRAY_SIZE(pages); i++)
		cli_fill_page(p + pages[i] * PAGE, i);
	p[1 * PAGE + 17] = 0;		/* still a non-zero page */
	memset(p + 200000 * PAGE, 0, PAGE);	/* touched, all zero */
	munmap(p, 1UL << 30);
	return ARRAY_SIZE(pages);
}

/*
 * Byte-compare two regions with pread, 1 MiB at a time: reading holes
 * through a mapping would fault (or allocate) page by page.
 */
static void expect_same(const char *a, const char *b, size_t size)
{
	size_t off, step = 1UL << 20;
	char *ba = malloc(step), *bb = malloc(step);
	int fa = attach(a, O_RDONLY), fb = attach(b, O_RDONLY);

	ASSERT_GE(fa, 0);
	ASSERT_GE(fb, 0);
	for (off = 0; off < size; off += step) {
		ASSERT_EQ(pread(fa, ba, step, off), (ssize_t)step);
		ASSERT_EQ(pread(fb, bb, step, off), (ssize_t)step);
		if (memcmp(ba, bb, step))
			FAIL("%s and %s differ in MiB %zu", a, b, off >> 20);
	}
	close(fa);
	close(fb);
	free(ba);
	free(bb);
}

TEST_F(cli, dump_load_round_trip_of_sparse_1g_region)
{
	const char *name = region(self, "sparse");
	const char *copy = region(self, "sparse-copy");
	const char *file = tmpfile_path(self, "sparse");
	unsigned int data_pages = make_sparse(name);
	unsigned char *d;
	struct jv *doc;
	char at[80];
	size_t len;
	struct run r;

	r = CLI("snap", name, "s");
	EXPECT_OK(r);
	snprintf(at, sizeof(at), "%s@s", name);
	r = CLI("dump", at, file);
	EXPECT_OK(r);
	ASSERT_EQ(r.out[0], 0);

	/* The documented header; zero pages take no space. */
	d = read_file(file, &len);
	ASSERT_EQ(memcmp(d, "COWSNAP\0", 8), 0);
	ASSERT_EQ(le32(d + 8), 1);
	ASSERT_EQ(le32(d + 12), PAGE);
	ASSERT_EQ(le64(d + 16), 1ULL << 30);
	ASSERT_EQ(le64(d + 24), 0);
	ASSERT_GE(len, data_pages * PAGE);
	ASSERT_LT(len, data_pages * PAGE + 4096);
	ASSERT_EQ(le32(d + len - 8), cli_crc32c(d, len - 8));
	ASSERT_EQ(le32(d + len - 32), 2);	/* END record */
	ASSERT_EQ(le64(d + len - 24), data_pages);

	r = CLI("load", copy, file);
	EXPECT_OK(r);
	ASSERT_EQ(r.out[0], 0);
	ASSERT_EQ(info_of(copy).size, 1ULL << 30);
	ASSERT_EQ(info_of(copy).mode & 0777, 0600);
	/* Loading wrote only the stored pages. */
	ASSERT_LE(info_of(copy).resident_pages, data_pages);
	expect_same(name, copy, 1UL << 30);

	/* The same through --json, by snapshot id. */
	r = CLI("destroy", copy);
	EXPECT_OK(r);
	snprintf(at, sizeof(at), "%s@1", name);
	r = CLI("dump", "--json", at, file);
	doc = JSON(r);
	ASSERT_EQ(JNUM(doc, "size"), 1ULL << 30);
	ASSERT_EQ(JNUM(doc, "data_pages"), data_pages);
	ASSERT_EQ(JNUM(doc, "bytes"), len);
	r = CLI("load", "--json", copy, file, "--mode", "0640");
	doc = JSON(r);
	ASSERT_EQ(JNUM(doc, "data_pages"), data_pages);
	ASSERT_EQ(JNUM(doc, "size"), 1ULL << 30);
	ASSERT_EQ(info_of(copy).mode & 0777, 0640);
	expect_same(name, copy, 1UL << 30);
}

TEST_F(cli, dump_without_snap_leaves_no_snapshot)
{
	const char *name = region(self, "live");
	const char *copy = region(self, "live-copy");
	const char *file = tmpfile_path(self, "live");
	unsigned char *p;
	struct run r;

	r = CLI("create", name, "1M");
	EXPECT_OK(r);
	p = map_region(name, 1 << 20);
	cli_fill_page(p + 3 * PAGE, 9);
	r = CLI("dump", name, file);
	EXPECT_OK(r);
	ASSERT_EQ(info_of(name).nr_snapshots, 0);
	r = CLI("list", name, "-H");
	EXPECT_OK(r);
	ASSERT_EQ(r.out[0], 0);
	r = CLI("load", copy, file);
	EXPECT_OK(r);
	expect_same(name, copy, 1 << 20);
	munmap(p, 1 << 20);
}

TEST_F(cli, dump_and_load_through_stdout_and_a_pipe)
{
	const char *name = region(self, "pipe");
	const char *copy = region(self, "pipe-copy");
	const char *file = tmpfile_path(self, "pipe");
	char cmd[512];
	unsigned char *p;
	size_t len;
	int fd;
	struct run r;

	r = CLI("create", name, "4M");
	EXPECT_OK(r);
	p = map_region(name, 4 << 20);
	cli_fill_page(p, 1);
	cli_fill_page(p + 1000 * PAGE, 2);
	r = CLI("snap", name);
	EXPECT_OK(r);

	/* "-" is stdout; a file there must be a valid dump. */
	snprintf(cmd, sizeof(cmd), "%s@1", name);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ASSERT_GE(fd, 0);
	r = run_cli(-1, fd, 0, ARGV("dump", cmd, "-"));
	close(fd);
	EXPECT_OK(r);
	fd = open(file, O_RDONLY);
	ASSERT_GE(fd, 0);
	r = run_cli(fd, -1, 0, ARGV("load", copy));
	close(fd);
	EXPECT_OK(r);
	expect_same(name, copy, 4 << 20);
	r = CLI("destroy", copy);
	EXPECT_OK(r);

	/*
	 * A real pipe: stdin cannot seek, so load buffers it first.  stderr
	 * is a file, not a terminal: no progress, nothing at all.
	 */
	snprintf(cmd, sizeof(cmd), "(%s dump %s@1 | %s load %s -) 2>%s.err",
		 cli_path(), name, cli_path(), copy, file);
	ASSERT_EQ(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s.err", file);
	free(read_file(cmd, &len));
	unlink(cmd);
	ASSERT_EQ(len, 0);
	expect_same(name, copy, 4 << 20);
	munmap(p, 4 << 20);
}

/* A small valid dump of a fresh region in @file; its bytes in *@len. */
static unsigned char *good_dump(struct th_fx_cli *self, const char *base,
				const char *file, size_t *len)
{
	const char *name = region(self, base);
	unsigned char *p;
	struct run r;

	r = CLI("create", name, "64K");
	EXPECT_OK(r);
	p = map_region(name, 65536);
	cli_fill_page(p + 2 * PAGE, 5);
	cli_fill_page(p + 3 * PAGE, 6);
	cli_fill_page(p + 9 * PAGE, 7);
	munmap(p, 65536);
	r = CLI("dump", name, file);
	EXPECT_OK(r);
	return read_file(file, len);
}

/* Loading @buf must fail with one line containing @why and create nothing. */
#define EXPECT_LOAD_REFUSED(buf, len, why) \
	expect_load_refused(self, buf, len, why, __LINE__)
static void expect_load_refused(struct th_fx_cli *self,
				const unsigned char *buf, size_t len,
				const char *why, int line)
{
	const char *bad = "/tmp/cli-bad.dump";
	const char *name = self->names[self->nnames - 1];
	long long regions = proc_counter("regions");
	struct run r;
	int pfd[2];

	write_file(bad, buf, len);
	r = CLI("load", name, bad);
	expect_err(&r, "load", 1, why, line);
	if (region_exists(name) || proc_counter("regions") != regions)
		th_fail(__FILE__, line, "a refused load created a region");
	unlink(bad);
	/* The same through a pipe on stdin (small dumps fit its buffer). */
	if (len > 65536 || pipe(pfd))
		th_fail(__FILE__, line, "cannot pipe %zu bytes", len);
	if (write(pfd[1], buf, len) != (ssize_t)len)
		th_fail(__FILE__, line, "write to pipe: %s", strerror(errno));
	close(pfd[1]);
	r = run_cli(pfd[0], -1, 0, ARGV("load", name, "-"));
	close(pfd[0]);
	expect_err(&r, "load", 1, why, line);
	if (region_exists(name))
		th_fail(__FILE__, line, "a refused load created a region");
}

TEST_F(cli, load_refuses_truncated_dump)
{
	const char *file = tmpfile_path(self, "trunc");
	size_t len, cuts[8], i;
	unsigned char *d = good_dump(self, "trunc-src", file, &len);

	region(self, "trunc-dst");
	cuts[0] = 0;
	cuts[1] = 10;			/* inside the header */
	cuts[2] = 32;			/* after the header */
	cuts[3] = 40;			/* inside a record header */
	cuts[4] = 32 + 24 + 100;	/* inside page data */
	cuts[5] = len - 32;		/* before the end record */
	cuts[6] = len - 8;		/* before the checksum */
	cuts[7] = len - 1;
	for (i = 0; i < 8; i++)
		EXPECT_LOAD_REFUSED(d, cuts[i], "truncated dump");
}

TEST_F(cli, load_refuses_bit_flipped_dump)
{
	const char *file = tmpfile_path(self, "flip");
	size_t len, i;
	unsigned char *d = good_dump(self, "flip-src", file, &len);
	static const struct {
		long off;		/* negative: from the end */
		const char *why;
	} flips[] = {
		{ 0, "not a cowsnap dump" },
		{ 12, "corrupt dump" },		/* page size */
		{ 17, "corrupt dump" },		/* region size */
		{ 32 + 8, "corrupt dump" },	/* first page of record 1 */
		{ 32 + 16, "corrupt dump" },	/* its page count */
		{ 32 + 24 + 7, "checksum mismatch" },	/* page data */
		{ 32 + 24 + 4095, "checksum mismatch" },
		{ -24, "corrupt dump" },	/* END page count */
		{ -8, "checksum mismatch" },	/* the checksum */
		{ -3, "corrupt dump" },		/* reserved trailer */
	};

	region(self, "flip-dst");
	for (i = 0; i < ARRAY_SIZE(flips); i++) {
		size_t off = flips[i].off < 0 ? len + flips[i].off :
			     (size_t)flips[i].off;

		d[off] ^= 0x10;
		EXPECT_LOAD_REFUSED(d, len, flips[i].why);
		d[off] ^= 0x10;
	}
	/* Trailing bytes after a valid dump. */
	d = realloc(d, len + 1);
	d[len] = 'x';
	EXPECT_LOAD_REFUSED(d, len + 1, "corrupt dump");
}

TEST_F(cli, load_refuses_other_format_version)
{
	const char *file = tmpfile_path(self, "ver");
	size_t len;
	unsigned char *d = good_dump(self, "ver-src", file, &len);
	uint32_t crc;

	region(self, "ver-dst");
	/* A well-formed dump of a future version, checksum and all. */
	d[8] = 2;
	crc = cli_crc32c(d, len - 8);
	memcpy(d + len - 8, &crc, 4);
	EXPECT_LOAD_REFUSED(d, len, "version 2");
}

TEST_F(cli, load_refuses_existing_name_and_keeps_it)
{
	const char *file = tmpfile_path(self, "dup");
	size_t len;
	unsigned char *p;
	const char *name;
	struct run r;

	good_dump(self, "dup-src", file, &len);
	name = region(self, "dup-dst");
	r = CLI("create", name, "8K");
	EXPECT_OK(r);
	p = map_region(name, 8192);
	strcpy((char *)p, "mine");
	r = CLI("load", name, file);
	EXPECT_ERR(r, "load", 1, "already exists");
	ASSERT_EQ(info_of(name).size, 8192);
	ASSERT_EQ(strcmp((char *)p, "mine"), 0);
	munmap(p, 8192);
}

/* The CLI in the background: stdout @out, stderr into *@efd (a memfd). */
static pid_t spawn_cli(int out, int *efd, const char **argv)
{
	pid_t pid;

	*efd = memfd_create("err", 0);
	if (*efd < 0)
		FAIL("memfd_create: %s", strerror(errno));
	argv[0] = cli_path();
	pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (!pid) {
		int in = open("/dev/null", O_RDONLY);

		dup2(in, 0);
		dup2(out, 1);
		dup2(*efd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* Id of the snapshot of @name labelled @label, or 0. */
static uint64_t snap_labelled(const char *name, const char *label)
{
	struct cowsnap_snap_entry e[64];
	struct cowsnap_snap_list l = { .start_id = 1, .count = 64 };
	uint64_t id = 0;
	unsigned int i;
	int fd = attach(name, O_RDONLY);

	if (fd < 0)
		return 0;
	l.entries = (uintptr_t)e;
	if (!ioctl(fd, COWSNAP_IOC_SNAP_LIST, &l))
		for (i = 0; i < l.count; i++)
			if (!strcmp(e[i].label, label))
				id = e[i].id;
	close(fd);
	return id;
}

/*
 * Without the module there is no /dev/cowsnap nor /proc/cowsnap: that is
 * its own message and exit 1, not "not found" (exit 3).
 */
TEST_F(cli, module_not_loaded_is_said_so)
{
	static const char *const cmds[][4] = {
		{ "list" }, { "stats" }, { "create", "x", "4K" },
		{ "destroy", "x" }, { "snap", "x" }, { "list", "x" },
		{ "load", "x", "/dev/null" },
	};
	unsigned int i;
	struct run r;

	if (mod_unload())
		SKIP("cannot unload the module: %s", strerror(errno));
	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		const char *argv[8] = { "cowsnap" };

		memcpy(argv + 1, cmds[i], sizeof(cmds[i]));
		r = run_cli(-1, -1, 0, argv);
		EXPECT_ERR(r, cmds[i][0], 1, "the cowsnap module is not loaded");
	}
	r = CLI("--version");
	EXPECT_OK(r);
	ASSERT_TRUE(strstr(r.out, "\nmodule not loaded\n"));
	r = CLI("--version", "--json");
	ASSERT_EQ(jget(JSON(r), "module_version")->t, J_NULL);
	ASSERT_EQ(mod_load(""), 0);
}

TEST_F(cli, names_starting_with_a_dash_are_never_created)
{
	const char *name = region(self, "dash");
	char dashed[COWSNAP_NAME_MAX];
	struct cowsnap_create c = { .size = PAGE, .mode = 0600 };
	struct run r;
	int fd;

	r = CLI("create", "--", "-x", "4K");
	EXPECT_ERR(r, "create", 2, "not starting with '.' or '-'");
	r = CLI("destroy", "-x");
	EXPECT_ERR(r, "destroy", 2, "unknown option '-x'");
	ASSERT_TRUE(strstr(r.err, "after '--'"));
	r = CLI("create", name, "8K");
	EXPECT_OK(r);
	r = CLI("snap", name, "--", "-l");
	EXPECT_ERR(r, "snap", 2, "invalid label '-l'");
	r = CLI("clone", name, "1", "--", "-c");
	EXPECT_ERR(r, "clone", 2, "invalid region name '-c'");
	ASSERT_EQ(info_of(name).nr_snapshots, 0);
	/* One another program made can still be named after "--". */
	snprintf(dashed, sizeof(dashed), "-%s", name);
	snprintf(self->names[self->nnames++], COWSNAP_NAME_MAX, "%s", dashed);
	snprintf(c.name, sizeof(c.name), "%s", dashed);
	fd = open(COWSNAP_DEV, O_RDWR);
	ASSERT_EQ(ioctl(fd, COWSNAP_IOC_CREATE, &c), 0);
	close(fd);
	r = CLI("snap", "--", dashed, "ok");
	EXPECT_OK(r);
	r = CLI("-H", "list", "--", dashed);
	EXPECT_OK(r);
	ASSERT_EQ(count_lines(r.out), 1);
	r = CLI("destroy", "--", dashed);
	EXPECT_OK(r);
	ASSERT_FALSE(region_exists(dashed));
}

TEST_F(cli, o_selects_columns_in_every_output_mode)
{
	const char *name = region(self, "cols");
	struct jv *doc, *e = NULL, *x;
	unsigned char *p;
	char *f[16];
	size_t i;
	struct run r;

	r = CLI("create", name, "64K", "--mode", "0640");
	EXPECT_OK(r);
	p = map_region(name, 65536);
	r = CLI("snap", name, "one");
	EXPECT_OK(r);
	p[5 * PAGE] = 1;

	r = CLI("list", "-o", "name,size,mode", "-H");
	EXPECT_OK(r);
	ASSERT_EQ(find_row(r.out, name, f, 16), 3);
	ASSERT_EQ(strcmp(f[1], "64K"), 0);
	ASSERT_EQ(strcmp(f[2], "0640"), 0);
	/* Headers work too, any case, any order, repeated. */
	r = CLI("-Hp", "list", "-o", "NAME,Snaps,newest_snapshot,size,name");
	EXPECT_OK(r);
	ASSERT_EQ(find_row(r.out, name, f, 16), 5);
	ASSERT_EQ(strcmp(f[1], "1"), 0);
	ASSERT_EQ(strcmp(f[2], "1"), 0);
	ASSERT_EQ(strcmp(f[3], "65536"), 0);
	ASSERT_EQ(strcmp(f[4], name), 0);
	r = CLI("list", "--output=uid,name");
	EXPECT_OK(r);
	*strchrnul(r.out, '\n') = 0;
	ASSERT_EQ(strcmp(r.out + strspn(r.out, " "), "UID  NAME"), 0);

	r = CLI("--json", "list", "-o", "name,nr_snapshots");
	doc = jget(JSON(r), "regions");
	for (i = 0; doc && i < doc->len; i++)
		if (!strcmp(JSTR(jat(doc, i), "name"), name))
			e = jat(doc, i);
	ASSERT_TRUE(e);
	ASSERT_EQ(e->len, 2);
	ASSERT_EQ(JNUM(e, "nr_snapshots"), 1);

	r = CLI("list", name, "-o", "label,id", "-H");
	EXPECT_OK(r);
	ASSERT_EQ(strcmp(r.out, "one\t1\n"), 0);
	r = CLI("list", name, "-o", "created", "-Hp");
	EXPECT_OK(r);
	ASSERT_GT(strtoull(r.out, NULL, 10), 1000000000000000000ULL);
	r = CLI("list", name, "--json", "-o", "id");
	e = jat(jget(JSON(r), "snapshots"), 0);
	ASSERT_TRUE(e);
	ASSERT_EQ(e->len, 1);
	ASSERT_EQ(JNUM(e, "id"), 1);

	r = CLI("diff", name, "one", "-o", "offset,pages", "-Hp");
	EXPECT_OK(r);
	ASSERT_EQ(strcmp(r.out, "20480\t1\n"), 0);
	r = CLI("diff", name, "one", "-o", "length", "--json");
	doc = JSON(r);
	ASSERT_EQ(JNUM(doc, "changed_pages"), 1);
	x = jat(jget(doc, "extents"), 0);
	ASSERT_TRUE(x);
	ASSERT_EQ(x->len, 1);
	ASSERT_EQ(JNUM(x, "length"), PAGE);

	r = CLI("list", name, "-o", "name");
	EXPECT_ERR(r, "list", 2, "unknown field 'name' for -o: choose from "
		   "id,label,ctime_ns,referenced,exclusive");
	r = CLI("list", "-o", ",");
	EXPECT_ERR(r, "list", 2, "-o needs at least one field");
	munmap(p, 65536);
}

/* Every key the CLI prints, the JSON type it had and where. */
static struct {
	char key[32];
	enum jtype t;
	const char *where;
} seen[128];
static int nseen;

static const char *const jtype_name[] = {
	"null", "bool", "number", "string", "array", "object",
};

/* Record the keys of @v; fail if one had another type before. */
static void key_types(struct jv *v, const char *where)
{
	size_t i;
	int k;

	for (i = 0; i < v->len && (v->t == J_OBJ || v->t == J_ARR); i++) {
		struct jv *item = &v->items[i];

		if (v->t == J_OBJ && item->t != J_NULL) {
			for (k = 0; k < nseen; k++)
				if (!strcmp(seen[k].key, v->keys[i]))
					break;
			if (k == nseen) {
				if (nseen == ARRAY_SIZE(seen))
					FAIL("too many keys");
				snprintf(seen[k].key, sizeof(seen[k].key),
					 "%s", v->keys[i]);
				seen[k].t = item->t;
				seen[k].where = where;
				nseen++;
			} else if (seen[k].t != item->t) {
				FAIL("JSON key \"%s\" is a %s in `%s` and a %s "
				     "in `%s`", v->keys[i],
				     jtype_name[seen[k].t], seen[k].where,
				     jtype_name[item->t], where);
			}
		}
		/* Counter names are data, not keys of the CLI's. */
		if (v->t != J_OBJ || strcmp(v->keys[i], "counters"))
			key_types(item, where);
	}
}

/*
 * Every command's --json output is one valid document (strings valid
 * UTF-8 whatever bytes a file name holds), and across all of them each
 * key has one type.
 */
TEST_F(cli, json_is_valid_and_each_key_has_one_type)
{
	const char *name = region(self, "jtypes");
	const char *copy = region(self, "jtypes-copy");
	const char *clone = region(self, "jtypes-clone");
	/* Quote, backslash, tab, control, DEL, invalid UTF-8, U+2028, é. */
	const char *file = "/tmp/cli-\"q\\b\tt\x01\x7f\xff\xe2\x80\xa8\xc3\xa9";
	const char *want = "/tmp/cli-\"q\\b\tt\x01\x7f\xef\xbf\xbd"
			   "\xe2\x80\xa8\xc3\xa9";
	char at[80];
	struct jv *doc;
	struct run r;

	snprintf(self->files[self->nfiles++], sizeof(self->files[0]), "%s",
		 file);
	snprintf(at, sizeof(at), "%s@1", name);
#define J(desc, ...) do {						\
	r = CLI("--json", __VA_ARGS__);					\
	key_types(JSON(r), desc);					\
} while (0)
	J("create", "create", name, "64K");
	J("snap", "snap", name, "first");
	J("snap", "snap", name);
	J("list", "list");
	J("list NAME", "list", name);
	J("diff", "diff", name, "1");
	J("restore", "restore", name, "1");
	J("clone", "clone", name, "1", clone);
	J("delete", "delete", name, "2");
	J("dump", "dump", at, file);
	J("load", "load", copy, file);
	J("stats", "stats");
	J("--version", "--version");
	J("destroy", "destroy", clone);
#undef J
	r = CLI("--json", "dump", at, file);
	doc = JSON(r);
	if (strcmp(JSTR(doc, "file"), want))
		FAIL("file name came back as \"%s\"", JSTR(doc, "file"));
	ASSERT_TRUE(strstr(r.out, "\\ufffd"));
	ASSERT_TRUE(strstr(r.out, "\\u2028"));
	ASSERT_TRUE(strstr(r.out, "\\u0001"));
	ASSERT_GE(nseen, 30);
}

/*
 * A cap of the module is said as one: the parameter and its value, sizes
 * as typed; never the raw strerror of E2BIG, ENOSPC or EXDEV.
 */
TEST_F(cli, limit_messages_say_what_happened)
{
	const char *a = region(self, "lim-a"), *b = region(self, "lim-b");
	const char *c = region(self, "lim-c");
	struct run r;

	reload(self, "max_region_size=1048576 max_snapshots=2 max_regions=2");
	r = CLI("create", a, "2M");
	EXPECT_ERR(r, "create", 1, "cannot create region '");
	ASSERT_TRUE(strstr(r.err, "' of 2M: larger than the module allows "
			   "(max_region_size=1M)"));
	r = CLI("create", a, "2097152");
	EXPECT_ERR(r, "create", 1, "of 2097152: larger than the module");
	r = CLI("create", a, "1M");
	EXPECT_OK(r);
	r = CLI("snap", a, "s1");
	EXPECT_OK(r);
	r = CLI("snap", a, "s2");
	EXPECT_OK(r);
	r = CLI("snap", a);
	EXPECT_ERR(r, "snap", 1, "it holds 2 snapshots, the most the module "
		   "allows (max_snapshots=2); delete some first");
	/* A dump without @SNAP needs a snapshot too. */
	r = CLI("dump", a, "/dev/null");
	EXPECT_ERR(r, "dump", 1, "(max_snapshots=2)");
	r = CLI("create", b, "4K");
	EXPECT_OK(r);
	r = CLI("create", c, "4K");
	EXPECT_ERR(r, "create", 1, "the module's region limit is reached "
		   "(max_regions=2 in all, max_user_regions=1024 per user)");
	r = CLI("clone", a, "s1", c);
	EXPECT_ERR(r, "clone", 1, "(max_regions=2 in all");
	/* restore --expect-newest: EXDEV said as what it means. */
	r = CLI("restore", a, "s1", "--expect-newest", "s1");
	EXPECT_ERR(r, "restore", 1, "snapshot 's1' is not the newest (the "
		   "newest is 2); nothing was restored");
	r = CLI("restore", a, "s1", "--expect-newest", "nope");
	EXPECT_ERR(r, "restore", 3, "has no snapshot 'nope'");
	r = CLI("restore", a, "s1", "--expect-newest", "s2");
	EXPECT_OK(r);
	r = CLI("restore", a, "s1", "--expect-newest=2", "--json");
	ASSERT_EQ(JNUM(JSON(r), "snapshot"), 1);
	ASSERT_FALSE(region_exists(c));
}

/*
 * `dump NAME` labels the snapshot it takes; SIGINT or SIGTERM while the
 * dump blocks on a full pipe deletes it, says so and dies of the signal.
 */
TEST_F(cli, interrupted_dump_removes_its_labelled_snapshot)
{
	static const int sigs[] = { SIGTERM, SIGINT };
	const char *name = region(self, "sigdump");
	char label[32], *err;
	unsigned char *p;
	unsigned int i, k;
	int pfd[2], efd, status;
	struct run r;
	pid_t pid;

	r = CLI("create", name, "4M");
	EXPECT_OK(r);
	p = map_region(name, 4 << 20);
	for (i = 0; i < 1024; i++)
		cli_fill_page(p + i * PAGE, i);
	munmap(p, 4 << 20);
	for (k = 0; k < ARRAY_SIZE(sigs); k++) {
		ASSERT_EQ(pipe(pfd), 0);	/* nobody reads it */
		pid = spawn_cli(pfd[1], &efd, ARGV("dump", name, "-"));
		snprintf(label, sizeof(label), "cowsnap-dump-%d", (int)pid);
		for (i = 0; i < 200 && !snap_labelled(name, label); i++)
			usleep(20000);
		ASSERT_NE(snap_labelled(name, label), 0);
		usleep(300000);		/* blocked on the full pipe */
		ASSERT_EQ(waitpid(pid, &status, WNOHANG), 0);
		kill(pid, sigs[k]);
		ASSERT_EQ(waitpid(pid, &status, 0), pid);
		close(pfd[0]);
		close(pfd[1]);
		err = slurp(efd, NULL);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != sigs[k])
			FAIL("dump: status %#x, stderr %s", status, err);
		if (strcmp(err, "cowsnap: dump: interrupted; deleted the "
			   "temporary snapshot\n"))
			FAIL("dump: stderr %s", err);
		ASSERT_EQ(snap_labelled(name, label), 0);
		ASSERT_EQ(info_of(name).nr_snapshots, 0);
	}
}

/* A piped load streams: it needs no $TMPDIR, and stays one pass. */
TEST_F(cli, load_from_a_pipe_needs_no_tmpdir)
{
	const char *name = region(self, "stream");
	const char *copy = region(self, "stream-copy");
	char cmd[512];
	unsigned char *p;
	struct run r;

	r = CLI("create", name, "8M");
	EXPECT_OK(r);
	p = map_region(name, 8 << 20);
	cli_fill_page(p + 17 * PAGE, 3);
	cli_fill_page(p + 2000 * PAGE, 4);
	munmap(p, 8 << 20);
	snprintf(cmd, sizeof(cmd), "%s dump %s | TMPDIR=/nonexistent %s load "
		 "%s - --mode 0604", cli_path(), name, cli_path(), copy);
	ASSERT_EQ(system(cmd), 0);
	expect_same(name, copy, 8 << 20);
	ASSERT_EQ(info_of(copy).mode & 0777, 0604);
}

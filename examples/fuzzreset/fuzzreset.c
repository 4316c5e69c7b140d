// SPDX-License-Identifier: GPL-2.0
/*
 * Snapshot-fuzzing reset: a fuzz target whose mutable state lives in a
 * cowsnap region, put back with csnap_restore() after every input, beside
 * AFL++'s fork server.
 *
 * The target is a config-file parser ("[section]", "key = value" with
 * integers, booleans, strings with escapes and ${key} interpolation,
 * nested lists, "+=", "?=", "!unset", "!clear").  All its mutable state is
 * one block: a struct of globals (counters, the current section, a hash
 * table) followed by the arena its heap allocations come from.  Before the
 * first input the block holds a parsed default config of about 2000 keys;
 * every input changes it (new keys, replaced values, deletions, a bumped
 * generation counter), so without a reset the next input would run on
 * another state.  Two ways to reset it:
 *
 *  - fork: the block is private anonymous memory; a child runs each input
 *    and exits, the parent waits (what AFL's fork server does);
 *  - restore: the block is a cowsnap region snapshotted after the setup;
 *    the same process runs input after input and restores the snapshot
 *    after each, paying for the pages the input changed.
 *
 * "fuzzreset --check" is the short correctness run, needing nothing but
 * the program: a few hundred generated inputs through both loops, results
 * equal input by input, and the region byte for byte its private copy of
 * snapshot time after a sample of restores (exit status 1 and a "FAIL ..."
 * line otherwise).  Without arguments the measured run times both loops,
 * then runs afl-fuzz for a fixed time on two builds of this file with
 * AFL++'s afl-clang-fast: -DFUZZRESET_AFL=1, a deferred fork server, and
 * -DFUZZRESET_AFL=2, a persistent __AFL_LOOP that restores after each
 * input.  It prints Markdown tables; under QEMU TCG compare the rows of
 * one run with each other.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "libcowsnap.h"

#define STATE_SIZE	(4UL << 20)	/* globals + arena */
#define NBUCKETS	2048
#define INPUT_MAX	(64 << 10)
#define STR_MAX		4096
#define LIST_MAX	64
#define DEPTH_MAX	4
#define KEY_MAX		64
#define STATE_MAGIC	0x66757a7a72657365ULL
#define FNV0		0xcbf29ce484222325ULL

/* ---- The target: a config parser whose state is one block ---- */

enum { V_INT = 1, V_BOOL, V_STR, V_LIST, V_SECT };

struct value {
	uint32_t type;
	uint32_t len;		/* bytes of a string, items of a list */
	int64_t i;		/* an integer or a boolean */
	char *s;
	struct value *items;
};

struct entry {
	struct entry *hnext;		/* hash chain */
	struct entry *next, *prev;	/* all entries, newest first */
	uint64_t hash;			/* of the key */
	uint64_t sum;			/* of key and value, in globals.xsum */
	uint64_t gen;			/* the input that last set it */
	struct value v;
	uint32_t klen;
	char key[];
};

enum {
	ST_BLANK, ST_SECTION, ST_SET, ST_APPEND, ST_DEFAULT, ST_UNSET,
	ST_CLEAR, NR_ST
};

/* The target's globals: at the start of the block, the arena after them. */
struct globals {
	uint64_t magic;
	uint64_t generation;	/* inputs run on this state */
	uint64_t nentries, nsections;
	uint64_t xsum;		/* XOR of every entry's sum */
	uint64_t stats[NR_ST];	/* statements of each kind */
	char *arena, *cur, *end;
	struct entry *all;
	int32_t err_line;
	char err[96];
	uint32_t seclen;
	char section[KEY_MAX];	/* the current section */
	struct entry *bucket[NBUCKETS];
};

/*
 * What one input did, with no address in it: the fork child's and the
 * restore loop's must be equal byte for byte.  A state that leaked from an
 * earlier input shows in generation and the sums.
 */
struct result {
	uint64_t generation, nentries, nsections, used, xsum, stats;
	int32_t status, err_line;
};

struct parser {
	struct globals *g;
	const char *p, *end;
	int line;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n--) {
		h ^= *s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int perr(struct parser *ps, const char *msg)
{
	ps->g->err_line = ps->line;
	snprintf(ps->g->err, sizeof(ps->g->err), "%s", msg);
	return -1;
}

static void *arena_alloc(struct globals *g, size_t n)
{
	char *p = g->cur;

	n = (n + 7) & ~7UL;
	if (n > (size_t)(g->end - g->cur))
		return NULL;
	g->cur += n;
	return p;
}

static uint64_t value_sum(uint64_t h, const struct value *v)
{
	uint32_t k;

	h = fnv(h, &v->type, sizeof(v->type));
	h = fnv(h, &v->len, sizeof(v->len));
	switch (v->type) {
	case V_INT:
	case V_BOOL:
		return fnv(h, &v->i, sizeof(v->i));
	case V_STR:
		return fnv(h, v->s, v->len);
	case V_LIST:
		for (k = 0; k < v->len; k++)
			h = value_sum(h, &v->items[k]);
	}
	return h;
}

static struct entry *lookup(struct globals *g, const char *key, size_t klen,
			    uint64_t hash)
{
	struct entry *e;

	for (e = g->bucket[hash % NBUCKETS]; e; e = e->hnext)
		if (e->hash == hash && e->klen == klen &&
		    !memcmp(e->key, key, klen))
			return e;
	return NULL;
}

/* Set @key to @v (already in the arena): a new entry or a new value. */
static int set_entry(struct parser *ps, const char *key, size_t klen,
		     const struct value *v)
{
	struct globals *g = ps->g;
	uint64_t hash = fnv(FNV0, key, klen);
	struct entry *e = lookup(g, key, klen, hash);

	if (!e) {
		e = arena_alloc(g, sizeof(*e) + klen);
		if (!e)
			return perr(ps, "out of memory");
		memcpy(e->key, key, klen);
		e->klen = klen;
		e->hash = hash;
		e->hnext = g->bucket[hash % NBUCKETS];
		g->bucket[hash % NBUCKETS] = e;
		e->prev = NULL;
		e->next = g->all;
		if (g->all)
			g->all->prev = e;
		g->all = e;
		g->nentries++;
		g->nsections += v->type == V_SECT;
	} else {
		g->xsum ^= e->sum;
	}
	e->v = *v;
	e->gen = g->generation;
	e->sum = value_sum(fnv(hash, &e->gen, sizeof(e->gen)), v);
	g->xsum ^= e->sum;
	return 0;
}

static void unlink_entry(struct globals *g, struct entry *e)
{
	struct entry **pp = &g->bucket[e->hash % NBUCKETS];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->prev)
		e->prev->next = e->next;
	else
		g->all = e->next;
	if (e->next)
		e->next->prev = e->prev;
	g->xsum ^= e->sum;
	g->nentries--;
	g->nsections -= e->v.type == V_SECT;
}

static int at_end(struct parser *ps)
{
	return ps->p >= ps->end || *ps->p == '\n';
}

static void skip_blank(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
				   *ps->p == '\r'))
		ps->p++;
}

/* Only blanks or a comment may follow a statement. */
static int end_of_statement(struct parser *ps)
{
	skip_blank(ps);
	if (ps->p < ps->end && (*ps->p == '#' || *ps->p == ';'))
		while (!at_end(ps))
			ps->p++;
	return at_end(ps) ? 0 : perr(ps, "junk after statement");
}

static int is_name(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/* A name at the cursor, into @buf (NUL-terminated); its length or -1. */
static int parse_name(struct parser *ps, char *buf)
{
	int n = 0;

	while (ps->p < ps->end && is_name(*ps->p)) {
		if (n == KEY_MAX - 1)
			return perr(ps, "name too long");
		buf[n++] = *ps->p++;
	}
	buf[n] = 0;
	return n ? n : perr(ps, "name expected");
}

/* @name as a full key: a name without a dot is in the current section. */
static int full_key(struct parser *ps, const char *name, int n, char *key)
{
	struct globals *g = ps->g;

	if (memchr(name, '.', n) || !g->seclen) {
		memcpy(key, name, n + 1);
		return n;
	}
	if (g->seclen + 1 + n >= KEY_MAX)
		return perr(ps, "key too long");
	memcpy(key, g->section, g->seclen);
	key[g->seclen] = '.';
	memcpy(key + g->seclen + 1, name, n + 1);
	return g->seclen + 1 + n;
}

static struct entry *find_ref(struct parser *ps)
{
	char name[KEY_MAX], key[KEY_MAX];
	struct entry *e;
	int n;

	ps->p += 2;	/* "${" */
	n = parse_name(ps, name);
	if (n < 0)
		return NULL;
	if (ps->p >= ps->end || *ps->p != '}') {
		perr(ps, "} expected");
		return NULL;
	}
	ps->p++;
	n = full_key(ps, name, n, key);
	if (n < 0)
		return NULL;
	e = lookup(ps->g, key, n, fnv(FNV0, key, n));
	if (!e)
		perr(ps, "undefined reference");
	return e;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int str_add(struct parser *ps, char *buf, int *n, const char *s,
		   size_t len)
{
	if (*n + len > STR_MAX)
		return perr(ps, "string too long");
	memcpy(buf + *n, s, len);
	*n += len;
	return 0;
}

/* The text of @v for interpolation into @buf. */
static int str_add_value(struct parser *ps, char *buf, int *n,
			 const struct value *v)
{
	char num[24];

	switch (v->type) {
	case V_INT:
		return str_add(ps, buf, n, num,
			       snprintf(num, sizeof(num), "%" PRId64, v->i));
	case V_BOOL:
		return v->i ? str_add(ps, buf, n, "true", 4) :
			      str_add(ps, buf, n, "false", 5);
	case V_STR:
		return str_add(ps, buf, n, v->s, v->len);
	}
	return perr(ps, "cannot interpolate a list or section");
}

/* A string value into the arena. */
static int new_str(struct parser *ps, struct value *v, const char *s, int n)
{
	v->type = V_STR;
	v->len = n;
	v->s = arena_alloc(ps->g, n + 1);
	if (!v->s)
		return perr(ps, "out of memory");
	memcpy(v->s, s, n);
	v->s[n] = 0;
	return 0;
}

/* "...": escapes \n \t \\ \" \xHH, and ${key} interpolation. */
static int parse_string(struct parser *ps, struct value *v)
{
	char buf[STR_MAX];
	struct entry *e;
	int n = 0, hi, lo;
	char c;

	ps->p++;
	for (;;) {
		if (at_end(ps))
			return perr(ps, "unterminated string");
		c = *ps->p;
		if (c == '"') {
			ps->p++;
			break;
		}
		if (c == '$' && ps->end - ps->p > 1 && ps->p[1] == '{') {
			e = find_ref(ps);
			if (!e || str_add_value(ps, buf, &n, &e->v))
				return -1;
			continue;
		}
		ps->p++;
		if (c == '\\') {
			if (at_end(ps))
				return perr(ps, "unterminated escape");
			c = *ps->p++;
			switch (c) {
			case 'n':
				c = '\n';
				break;
			case 't':
				c = '\t';
				break;
			case '\\':
			case '"':
			case '$':
				break;
			case 'x':
				hi = ps->end - ps->p < 2 ? -1 : hexval(ps->p[0]);
				lo = hi < 0 ? -1 : hexval(ps->p[1]);
				if (lo < 0)
					return perr(ps, "bad \\x escape");
				c = hi << 4 | lo;
				ps->p += 2;
				break;
			default:
				return perr(ps, "unknown escape");
			}
		}
		if (str_add(ps, buf, &n, &c, 1))
			return -1;
	}
	return new_str(ps, v, buf, n);
}

/* Integers: decimal, 0x hex, 0b binary, 0 octal; a k, m or g suffix. */
static int parse_int(struct parser *ps, struct value *v)
{
	int base = 10, neg = 0, digits = 0, d, shift = 0;
	uint64_t u = 0;
	char c;

	if (*ps->p == '-' || *ps->p == '+')
		neg = *ps->p++ == '-';
	if (ps->end - ps->p > 1 && ps->p[0] == '0' &&
	    (ps->p[1] == 'x' || ps->p[1] == 'b')) {
		base = ps->p[1] == 'x' ? 16 : 2;
		ps->p += 2;
	} else if (ps->end - ps->p > 1 && ps->p[0] == '0' &&
		   ps->p[1] >= '0' && ps->p[1] <= '7') {
		base = 8;
		ps->p++;
	}
	while (ps->p < ps->end && (d = hexval(*ps->p)) >= 0 && d < base) {
		if (__builtin_mul_overflow(u, base, &u) ||
		    __builtin_add_overflow(u, d, &u))
			return perr(ps, "integer overflow");
		ps->p++;
		digits++;
	}
	if (!digits)
		return perr(ps, "digits expected");
	if (ps->p < ps->end) {
		c = *ps->p | 0x20;
		shift = c == 'k' ? 10 : c == 'm' ? 20 : c == 'g' ? 30 : 0;
		if (shift)
			ps->p++;
	}
	if (shift && u > (UINT64_MAX >> shift))
		return perr(ps, "integer overflow");
	u <<= shift;
	if (u > (uint64_t)INT64_MAX + neg)
		return perr(ps, "integer overflow");
	if (ps->p < ps->end && (is_name(*ps->p) || *ps->p == '"'))
		return perr(ps, "junk after number");
	v->type = V_INT;
	v->len = 0;
	v->i = neg ? (int64_t)(0 - u) : (int64_t)u;
	return 0;
}

static int parse_value(struct parser *ps, struct value *v, int depth);

/* [v, v, ...] on one line, nested at most DEPTH_MAX deep. */
static int parse_list(struct parser *ps, struct value *v, int depth)
{
	struct value items[LIST_MAX];
	uint32_t n = 0;

	if (depth >= DEPTH_MAX)
		return perr(ps, "lists nested too deep");
	ps->p++;
	skip_blank(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
	} else {
		for (;;) {
			if (n == LIST_MAX)
				return perr(ps, "list too long");
			if (parse_value(ps, &items[n++], depth + 1))
				return -1;
			skip_blank(ps);
			if (at_end(ps))
				return perr(ps, "unterminated list");
			if (*ps->p == ']') {
				ps->p++;
				break;
			}
			if (*ps->p != ',')
				return perr(ps, ", or ] expected");
			ps->p++;
			skip_blank(ps);
		}
	}
	v->type = V_LIST;
	v->len = n;
	v->items = arena_alloc(ps->g, n * sizeof(*items));
	if (n && !v->items)
		return perr(ps, "out of memory");
	memcpy(v->items, items, n * sizeof(*items));
	return 0;
}

static int parse_value(struct parser *ps, struct value *v, int depth)
{
	static const char *const bools[] = {
		"false", "true", "no", "yes", "off", "on",
	};
	char word[KEY_MAX];
	struct entry *e;
	unsigned int k;
	int n;
	char c;

	memset(v, 0, sizeof(*v));
	skip_blank(ps);
	if (at_end(ps))
		return perr(ps, "value expected");
	c = *ps->p;
	if (c == '"')
		return parse_string(ps, v);
	if (c == '[')
		return parse_list(ps, v, depth);
	if ((c >= '0' && c <= '9') || c == '-' || c == '+')
		return parse_int(ps, v);
	if (c == '$' && ps->end - ps->p > 1 && ps->p[1] == '{') {
		e = find_ref(ps);
		if (!e)
			return -1;
		if (e->v.type == V_SECT)
			return perr(ps, "a section is not a value");
		*v = e->v;	/* arena values are never changed in place */
		return 0;
	}
	n = parse_name(ps, word);
	if (n < 0)
		return -1;
	for (k = 0; k < sizeof(bools) / sizeof(bools[0]); k++)
		if (!strcmp(word, bools[k])) {
			v->type = V_BOOL;
			v->i = k & 1;
			return 0;
		}
	return new_str(ps, v, word, n);
}

/* "a += b": add integers, concatenate strings, extend lists. */
static int append_value(struct parser *ps, const struct value *old,
			const struct value *add, struct value *out)
{
	char buf[STR_MAX];
	uint32_t n;
	int len = 0;

	switch (old->type) {
	case V_INT:
		if (add->type != V_INT)
			return perr(ps, "type mismatch");
		*out = *old;
		if (__builtin_add_overflow(old->i, add->i, &out->i))
			return perr(ps, "integer overflow");
		return 0;
	case V_STR:
		if (str_add(ps, buf, &len, old->s, old->len) ||
		    str_add_value(ps, buf, &len, add))
			return -1;
		return new_str(ps, out, buf, len);
	case V_LIST:
		n = add->type == V_LIST ? add->len : 1;
		if (old->len + n > LIST_MAX)
			return perr(ps, "list too long");
		out->type = V_LIST;
		out->len = old->len + n;
		out->items = arena_alloc(ps->g, out->len * sizeof(*add));
		if (!out->items)
			return perr(ps, "out of memory");
		memcpy(out->items, old->items, old->len * sizeof(*add));
		memcpy(out->items + old->len,
		       add->type == V_LIST ? add->items : add,
		       n * sizeof(*add));
		return 0;
	}
	return perr(ps, "cannot append to this type");
}

static int parse_section(struct parser *ps)
{
	struct globals *g = ps->g;
	char name[KEY_MAX];
	struct value v = { .type = V_SECT };
	struct entry *e;
	int n;

	ps->p++;
	n = parse_name(ps, name);
	if (n < 0)
		return -1;
	if (ps->p >= ps->end || *ps->p != ']')
		return perr(ps, "] expected");
	ps->p++;
	e = lookup(g, name, n, fnv(FNV0, name, n));
	if (e && e->v.type != V_SECT)
		return perr(ps, "section name is a key");
	if (!e && set_entry(ps, name, n, &v))
		return -1;
	memcpy(g->section, name, n + 1);
	g->seclen = n;
	g->stats[ST_SECTION]++;
	return end_of_statement(ps);
}

/* "!unset key" and "!clear section" (its keys; the section stays). */
static int parse_directive(struct parser *ps)
{
	struct globals *g = ps->g;
	char word[KEY_MAX], name[KEY_MAX], key[KEY_MAX];
	struct entry *e, *next;
	int n;

	ps->p++;
	if (parse_name(ps, word) < 0)
		return -1;
	skip_blank(ps);
	n = parse_name(ps, name);
	if (n < 0)
		return -1;
	if (!strcmp(word, "unset")) {
		n = full_key(ps, name, n, key);
		if (n < 0)
			return -1;
		e = lookup(g, key, n, fnv(FNV0, key, n));
		if (!e || e->v.type == V_SECT)
			return perr(ps, "no such key");
		unlink_entry(g, e);
		g->stats[ST_UNSET]++;
	} else if (!strcmp(word, "clear")) {
		e = lookup(g, name, n, fnv(FNV0, name, n));
		if (!e || e->v.type != V_SECT)
			return perr(ps, "no such section");
		for (e = g->all; e; e = next) {
			next = e->next;
			if (e->klen > (uint32_t)n && e->key[n] == '.' &&
			    !memcmp(e->key, name, n))
				unlink_entry(g, e);
		}
		g->stats[ST_CLEAR]++;
	} else {
		return perr(ps, "unknown directive");
	}
	return end_of_statement(ps);
}

static int parse_assignment(struct parser *ps)
{
	struct globals *g = ps->g;
	char name[KEY_MAX], key[KEY_MAX];
	struct value v, sum;
	struct entry *e;
	int n, op;

	n = parse_name(ps, name);
	if (n < 0)
		return -1;
	n = full_key(ps, name, n, key);
	if (n < 0)
		return -1;
	skip_blank(ps);
	op = ps->p < ps->end ? *ps->p : 0;
	if (op == '+' || op == '?')
		ps->p++;
	else
		op = '=';
	if (ps->p >= ps->end || *ps->p != '=')
		return perr(ps, "= expected");
	ps->p++;
	if (parse_value(ps, &v, 0) || end_of_statement(ps))
		return -1;
	e = lookup(g, key, n, fnv(FNV0, key, n));
	if (e && op == '?') {
		g->stats[ST_DEFAULT]++;
		return 0;
	}
	if (e && op == '+') {
		if (append_value(ps, &e->v, &v, &sum))
			return -1;
		v = sum;
	} else if (e && e->v.type != v.type) {
		return perr(ps, "type mismatch");
	}
	g->stats[op == '+' ? ST_APPEND : op == '?' ? ST_DEFAULT : ST_SET]++;
	return set_entry(ps, key, n, &v);
}

/* Parse a whole config into @g; 0, or -1 with the error in @g. */
static int parse(struct globals *g, const char *text, size_t len)
{
	struct parser ps = { .g = g, .p = text, .end = text + len, .line = 1 };
	int rc;

	g->err_line = 0;
	g->err[0] = 0;
	g->seclen = 0;
	g->section[0] = 0;
	while (ps.p < ps.end) {
		skip_blank(&ps);
		if (at_end(&ps) || *ps.p == '#' || *ps.p == ';') {
			g->stats[ST_BLANK]++;
			rc = end_of_statement(&ps);
		} else if (*ps.p == '[') {
			rc = parse_section(&ps);
		} else if (*ps.p == '!') {
			rc = parse_directive(&ps);
		} else {
			rc = parse_assignment(&ps);
		}
		if (rc)
			return -1;
		if (ps.p < ps.end)
			ps.p++;		/* the newline */
		ps.line++;
	}
	return 0;
}

/* The target's work on one input: parse it into the state at @g. */
static void run_input(struct globals *g, const void *data, size_t len,
		      struct result *r)
{
	if (len > INPUT_MAX)
		len = INPUT_MAX;
	g->generation++;
	memset(r, 0, sizeof(*r));
	r->status = parse(g, data, len);
	r->err_line = g->err_line;
	r->generation = g->generation;
	r->nentries = g->nentries;
	r->nsections = g->nsections;
	r->used = g->cur - g->arena;
	r->xsum = g->xsum;
	r->stats = fnv(FNV0, g->stats, sizeof(g->stats));
}

/* ---- Setting up the state, checking it ---- */

#ifndef FUZZRESET_AFL
static pid_t main_pid;
#endif

/* Every check fails loudly: a FAIL line, and exit status 1 (AFL: a crash). */
static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stdout, "FAIL fuzzreset: ");
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
#ifdef FUZZRESET_AFL
	abort();
#else
	if (getpid() != main_pid)
		_exit(1);
	exit(1);
#endif
}

/*
 * The default config the target starts from: 48 sections of 40 keys, 8 of
 * each kind (integers, strings, lists, booleans, interpolated strings).
 */
static char *default_config(size_t *len)
{
	size_t cap = 256 << 10, n = 0;
	char *t = malloc(cap);
	int s, k;

	if (!t)
		die("malloc: %s", strerror(errno));
	for (s = 0; s < 48; s++) {
		n += snprintf(t + n, cap - n, "[s%d]\n", s);
		for (k = 0; k < 8; k++)
			n += snprintf(t + n, cap - n,
				      "k%d = %d\nname%d = \"value %d of s%d\"\n"
				      "list%d = [%d, 0x%x, [%d]]\nflag%d = %s\n"
				      "ref%d = \"${k%d}/${s%d.name%d}\"\n",
				      k, s * 100 + k, k, k, s, k, s, k, -k, k,
				      k & 1 ? "yes" : "off", k, k, s, k);
	}
	if (n >= cap)
		die("default config too long");
	*len = n;
	return t;
}

/* Fill @mem (STATE_SIZE bytes) with the target's starting state. */
static struct globals *state_init(void *mem)
{
	struct globals *g = mem;
	size_t len;
	char *text;

	/* Every page of the block exists before the snapshot or the fork. */
	memset(mem, 0, STATE_SIZE);
	g->magic = STATE_MAGIC;
	g->arena = g->cur = (char *)mem + ((sizeof(*g) + 63) & ~63UL);
	g->end = (char *)mem + STATE_SIZE;
	text = default_config(&len);
	if (parse(g, text, len))
		die("default config, line %d: %s", g->err_line, g->err);
	free(text);
	g->generation = 0;
	return g;
}

#if FUZZRESET_AFL != 1
/* The restore side: the state in a region, its snapshot, a private copy. */
struct snapstate {
	int fd;
	uint64_t id;
	struct globals *g;
	unsigned char *copy;	/* the region at snapshot time */
	char name[COWSNAP_NAME_MAX];
	uint64_t verified;
};

static void region_setup(struct snapstate *s, const char *name)
{
	s->fd = csnap_open(O_RDWR);
	if (s->fd < 0)
		die("csnap_open: %s", strerror(errno));
	snprintf(s->name, sizeof(s->name), "%s", name);
	/* A region of an earlier run of the same name (a killed target). */
	if (csnap_region_destroy(s->fd, s->name) && errno != ENOENT)
		die("csnap_region_destroy %s: %s", s->name, strerror(errno));
	if (csnap_region_create(s->fd, s->name, STATE_SIZE, 0600))
		die("csnap_region_create %s: %s", s->name, strerror(errno));
	s->g = csnap_region_map(s->fd, 0, PROT_READ | PROT_WRITE);
	if (!s->g)
		die("csnap_region_map: %s", strerror(errno));
	state_init(s->g);
	if (csnap_snapshot_create(s->fd, "fuzzreset", &s->id))
		die("csnap_snapshot_create: %s", strerror(errno));
	s->copy = malloc(STATE_SIZE);
	if (!s->copy)
		die("malloc: %s", strerror(errno));
	memcpy(s->copy, s->g, STATE_SIZE);
}

static void region_restore(struct snapstate *s, uint64_t *pages)
{
	if (csnap_restore(s->fd, s->id, s->id, pages))
		die("csnap_restore: %s", strerror(errno));
}

/* The region must be byte for byte what it was at snapshot time. */
static void region_verify(struct snapstate *s, const char *when)
{
	const unsigned char *m = (const unsigned char *)s->g;
	size_t off;

	if (memcmp(m, s->copy, STATE_SIZE)) {
		for (off = 0; m[off] == s->copy[off]; off++)
			;
		die("%s: the region differs from its snapshot-time copy at "
		    "byte %zu (page %zu)", when, off, off / 4096);
	}
	s->verified++;
}

#endif

/* Restores between two checks of the region in the persistent target. */
#define AFL_VERIFY_EVERY	256

#if FUZZRESET_AFL
/*
 * The AFL++ targets (afl-clang-fast -DFUZZRESET_AFL=1 or 2): test cases
 * from AFL's shared memory, the setup before the fork server
 * (__AFL_INIT), so neither configuration pays for it per input.
 */
__AFL_FUZZ_INIT();
#if FUZZRESET_AFL == 2
__AFL_COVERAGE();
#endif

int main(void)
{
	struct result r;
	unsigned char *buf;
#if FUZZRESET_AFL == 2
	const char *name = getenv("FUZZRESET_REGION");
	struct snapstate s = { 0 };
	uint64_t n = 0;

	region_setup(&s, name ? name : "fuzzreset-afl");
	__AFL_INIT();
	buf = __AFL_FUZZ_TESTCASE_BUF;
	/* A child killed mid-input (a timeout) left the region dirty. */
	region_restore(&s, NULL);
	while (__AFL_LOOP(10000)) {
		run_input(s.g, buf, __AFL_FUZZ_TESTCASE_LEN, &r);
		/*
		 * The reset is not the target's behaviour: out of the
		 * coverage map, or the sampled check would show as edges
		 * taken now and then, and AFL as unstable.
		 */
		__AFL_COVERAGE_OFF();
		region_restore(&s, NULL);
		if (!(++n % AFL_VERIFY_EVERY))
			region_verify(&s, "after a restore in __AFL_LOOP");
		__AFL_COVERAGE_ON();
	}
#else
	void *mem = mmap(NULL, STATE_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct globals *g;

	if (mem == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	g = state_init(mem);
	__AFL_INIT();
	buf = __AFL_FUZZ_TESTCASE_BUF;
	run_input(g, buf, __AFL_FUZZ_TESTCASE_LEN, &r);
#endif
	return 0;
}
#else /* !FUZZRESET_AFL: the driver */

/* ---- The driver: both reset loops in one program, then AFL++ ---- */

/* The seed corpus of AFL and the ancestors of the generated inputs. */
static const char *const seeds[] = {
	"# tune a few defaults\n[s3]\nk1 = 42\n"
	"name1 = \"hello ${s3.k0} world\\x21\"\nlist1 += [7, 0x10, -3]\n"
	"flag1 = off\n",
	"[net]\nport = 8080\nhosts = [\"a\", \"b\", \"c\"]\ntimeout = 30k\n"
	"[s7]\nk2 += 5\n!unset s7.name3\n",
	"!clear s11\n[s11]\nk0 = 1\nref0 ?= \"${s12.name4}\"\n"
	"name2 += \" and ${s11.k0}\"\n",
	"title = \"config \\\"quoted\\\" \\t tab\"\n[deep]\n"
	"nested = [[1, 2], [3, [4, 5]], \"x\"]\nmask = 0b1011\nmode = 0755\n",
};
#define NR_SEEDS	((int)(sizeof(seeds) / sizeof(seeds[0])))

/* Pieces the input generator inserts: the grammar's own tokens. */
static const char *const tokens[] = {
	"[", "]", " = ", " += ", " ?= ", "${", "}", "\"", "\\x4", "0x", "\n",
	"!unset ", "!clear ", "s3.k1", "s7", "[s9]\n", ", ", "[[", "yes",
	"-", "99999999999999999999", "${s1.list2}", "1g",
	"name3 = \"${s2.ref1}\"\n", "k4 += ${s5.k4}\n", "list0 += [1]\n",
};

struct input {
	size_t len;
	char *data;
};

struct config {
	int check;		/* --check: short, correctness only */
	int ninputs;		/* generated inputs, cycled through */
	double loop_s;		/* each loop runs at least this long */
	int verify_every;	/* restores between two region checks */
	int afl_s;		/* afl-fuzz -V, per configuration */
};

/* One reset loop's figures. */
struct loop {
	uint64_t execs;
	double secs;
	double reset_s;		/* restore: time in csnap_restore() */
	uint64_t pages;		/* restore: pages restored */
};

static uint64_t rng = 0x5eedf022ULL;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Replace @del bytes at @pos of @in with @len bytes of @s. */
static void splice_in(struct input *in, size_t pos, size_t del, const char *s,
		      size_t len)
{
	if (in->len - del + len > 4096)
		return;
	memmove(in->data + pos + len, in->data + pos + del,
		in->len - pos - del);
	memcpy(in->data + pos, s, len);
	in->len = in->len - del + len;
}

/*
 * Inputs as a fuzzer makes them: a seed, then a few bit flips, token
 * insertions, deletions and duplications.  The seeds themselves come
 * first.  Deterministic: the same inputs on every run.
 */
static struct input *make_inputs(int n)
{
	struct input *in = calloc(n, sizeof(*in)), *x;
	const char *t;
	size_t pos, len;
	int i, k, ops;

	if (!in)
		die("calloc: %s", strerror(errno));
	for (i = 0; i < n; i++) {
		x = &in[i];
		x->data = malloc(4096);
		if (!x->data)
			die("malloc: %s", strerror(errno));
		t = seeds[i % NR_SEEDS];
		x->len = strlen(t);
		memcpy(x->data, t, x->len);
		ops = i < NR_SEEDS ? 0 : 1 + rnd() % 6;
		for (k = 0; k < ops && x->len; k++) {
			pos = rnd() % x->len;
			len = 1 + rnd() % 16;
			if (len > x->len - pos)
				len = x->len - pos;
			switch (rnd() % 4) {
			case 0:
				x->data[pos] ^= 1 << (rnd() % 8);
				break;
			case 1:
				t = tokens[rnd() % (sizeof(tokens) /
						    sizeof(tokens[0]))];
				splice_in(x, pos, 0, t, strlen(t));
				break;
			case 2:
				splice_in(x, pos, len, "", 0);
				break;
			case 3:
				splice_in(x, pos, 0, x->data + pos, len);
				break;
			}
		}
	}
	return in;
}

static void free_inputs(struct input *in, int n)
{
	while (n--)
		free(in[n].data);
	free(in);
}

static void expect_result(const struct result *got, const struct result *want,
			  const char *what, int k)
{
	if (memcmp(got, want, sizeof(*got)))
		die("%s: input %d gave status %d line %d, %" PRIu64
		    " entries, generation %" PRIu64 ", sum %016" PRIx64
		    "; the fork loop's: status %d line %d, %" PRIu64
		    " entries, generation %" PRIu64 ", sum %016" PRIx64, what,
		    k, got->status, got->err_line, got->nentries,
		    got->generation, got->xsum, want->status, want->err_line,
		    want->nentries, want->generation, want->xsum);
}

/*
 * What AFL's fork server does per input: fork, run the input in the
 * child on its copy-on-write copy of the state, wait.  The first pass
 * fills @ref, the results every other loop must give.
 */
static void loop_fork(const struct config *cfg, struct globals *g,
		      const struct input *in, struct result *ref,
		      struct loop *l)
{
	struct result *shared;
	double t0 = now();
	uint64_t i;
	int status, k;
	pid_t pid;

	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	fflush(stdout);
	for (i = 0; i < (uint64_t)cfg->ninputs || now() - t0 < cfg->loop_s;
	     i++) {
		k = i % cfg->ninputs;
		pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (!pid) {
			run_input(g, in[k].data, in[k].len, shared);
			_exit(0);
		}
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			die("fork loop: child of input %d: status 0x%x", k,
			    status);
		if (i < (uint64_t)cfg->ninputs)
			ref[k] = *shared;
		else
			expect_result(shared, &ref[k], "fork loop, again", k);
	}
	l->secs = now() - t0;
	l->execs = i;
	munmap(shared, sizeof(*shared));
	if (g->generation)
		die("fork loop: the children changed the parent's state");
}

/*
 * The restore loop: input after input in this process, the snapshot
 * restored after each, the region checked byte for byte after a sample of
 * the restores (and after the last).
 */
static void loop_restore(const struct config *cfg, struct snapstate *s,
			 const struct input *in, const struct result *ref,
			 struct loop *l)
{
	double t0 = now(), t;
	uint64_t i, pages;
	struct result r;
	int k;

	l->reset_s = 0;
	l->pages = 0;
	for (i = 0; i < (uint64_t)cfg->ninputs || now() - t0 < cfg->loop_s;
	     i++) {
		k = i % cfg->ninputs;
		run_input(s->g, in[k].data, in[k].len, &r);
		t = now();
		region_restore(s, &pages);
		l->reset_s += now() - t;
		l->pages += pages;
		if (!(i % cfg->verify_every))
			region_verify(s, "restore loop");
		expect_result(&r, &ref[k], "restore loop", k);
	}
	l->secs = now() - t0;
	l->execs = i;
	region_verify(s, "restore loop, at the end");
}

/*
 * The check has teeth: without a restore the state leaks from input to
 * input, results differ from the fork loop's and the region from its
 * copy; one restore then puts back everything those inputs changed.
 */
static void no_reset(const struct config *cfg, struct snapstate *s,
		     const struct input *in, const struct result *ref)
{
	uint64_t pages;
	struct result r;
	int k, equal = 0;
	double t;

	for (k = 0; k < cfg->ninputs; k++) {
		run_input(s->g, in[k].data, in[k].len, &r);
		equal += !memcmp(&r, &ref[k], sizeof(r));
	}
	if (equal > 1)
		die("without restores %d of %d results equal the fork loop's: "
		    "the inputs do not depend on the state", equal,
		    cfg->ninputs);
	if (!memcmp(s->g, s->copy, STATE_SIZE))
		die("%d inputs without restore left the region unchanged",
		    cfg->ninputs);
	t = now();
	region_restore(s, &pages);
	t = now() - t;
	region_verify(s, "one restore after inputs without restores");
	printf("ok: without restores %d of %d results equal the fork loop's "
	       "and the region differs; one restore of %" PRIu64 " pages "
	       "(%.2f ms) makes it byte-identical again\n", equal,
	       cfg->ninputs, pages, t * 1e3);
}

/* ---- afl-fuzz ---- */

struct aflrun {
	const char *what;	/* the table's row */
	const char *target;	/* the instrumented program's name */
	double execs_per_sec;
	uint64_t execs, corpus, crashes, hangs, edges;
	char cvg[16], stability[16];
	int64_t restores, pages;	/* /proc/cowsnap, over the run */
};

static char workdir[64];

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

static void cleanup(void)
{
	if (getpid() == main_pid && workdir[0])
		nftw(workdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The module's restore counters from /proc/cowsnap (-1: not there). */
static void restore_counters(int64_t *restores, int64_t *pages)
{
	FILE *f = fopen(CSNAP_PROC, "r");
	char line[256];
	long long v;

	*restores = *pages = -1;
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "restores %lld", &v) == 1)
			*restores = v;
		else if (sscanf(line, "pages_restored %lld", &v) == 1)
			*pages = v;
	}
	if (f)
		fclose(f);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f))
		die("write %s: %s", path, strerror(errno));
}

/* The last lines of afl-fuzz's log, for a failure message. */
static void show_log(const char *path)
{
	char line[512];
	long size;
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size > 4000 ? size - 4000 : 0, SEEK_SET);
	printf("--- last lines of %s:\n", path);
	while (fgets(line, sizeof(line), f))
		printf("| %s", line);
	printf("---\n");
	fclose(f);
}

/* Read afl-fuzz's fuzzer_stats; 0 when it has the fields we need. */
static int read_stats(const char *path, struct aflrun *r)
{
	char line[256], key[64], val[128];
	FILE *f = fopen(path, "r");
	int found = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s : %127s", key, val) != 2)
			continue;
		if (!strcmp(key, "execs_done"))
			r->execs = strtoull(val, NULL, 10), found++;
		else if (!strcmp(key, "execs_per_sec"))
			r->execs_per_sec = strtod(val, NULL), found++;
		else if (!strcmp(key, "corpus_count"))
			r->corpus = strtoull(val, NULL, 10);
		else if (!strcmp(key, "saved_crashes"))
			r->crashes = strtoull(val, NULL, 10);
		else if (!strcmp(key, "saved_hangs"))
			r->hangs = strtoull(val, NULL, 10);
		else if (!strcmp(key, "edges_found"))
			r->edges = strtoull(val, NULL, 10);
		else if (!strcmp(key, "bitmap_cvg"))
			snprintf(r->cvg, sizeof(r->cvg), "%.15s", val);
		else if (!strcmp(key, "stability"))
			snprintf(r->stability, sizeof(r->stability), "%.15s",
				 val);
	}
	fclose(f);
	return found == 2 ? 0 : -1;
}

/*
 * afl-fuzz -V @secs on target @r->target (beside this program), from the
 * seed corpus in workdir/in.  Its status screen is off and its output goes
 * to a log; the guest has no CPU frequency governor or core dump handler
 * worth a warning.  Dies when afl-fuzz fails or a run saved a crash: the
 * parser has no known crash, so a crash is the restore check's abort().
 */
static void run_afl(const char *afl, const char *bindir, int secs,
		    struct aflrun *r)
{
	char target[PATH_MAX + 32], out[128], log[128], stats[160], vsecs[16];
	char region[COWSNAP_NAME_MAX], in[96];
	int64_t rs0, pg0;
	int status, fd;
	double t0;
	pid_t pid;

	snprintf(target, sizeof(target), "%s/%s", bindir, r->target);
	snprintf(in, sizeof(in), "%s/in", workdir);
	snprintf(out, sizeof(out), "%s/out-%s", workdir, r->target);
	snprintf(log, sizeof(log), "%s/%s.log", workdir, r->target);
	snprintf(stats, sizeof(stats), "%s/default/fuzzer_stats", out);
	snprintf(vsecs, sizeof(vsecs), "%d", secs);
	snprintf(region, sizeof(region), "fuzzreset-afl-%d", (int)getpid());
	if (access(target, X_OK))
		die("%s: %s", target, strerror(errno));
	restore_counters(&rs0, &pg0);
	fflush(stdout);
	t0 = now();
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (!pid) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		setenv("AFL_NO_UI", "1", 1);
		setenv("AFL_SKIP_CPUFREQ", "1", 1);
		setenv("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1", 1);
		setenv("AFL_NO_AFFINITY", "1", 1);
		setenv("AFL_FORKSRV_INIT_TMOUT", "60000", 1);
		setenv("FUZZRESET_REGION", region, 1);
		execl(afl, afl, "-i", in, "-o", out, "-V", vsecs, "-s", "1",
		      "-t", "5000", "--", target, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", afl, strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		die("waitpid: %s", strerror(errno));
	restore_counters(&r->restores, &r->pages);
	r->restores -= rs0;
	r->pages -= pg0;
	/* The persistent target's region outlives its fork server. */
	fd = csnap_open(O_RDWR);
	if (fd >= 0) {
		csnap_region_destroy(fd, region);
		close(fd);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) ||
	    read_stats(stats, r)) {
		show_log(log);
		die("afl-fuzz on %s: status 0x%x%s", r->target, status,
		    access(stats, R_OK) ? ", no fuzzer_stats" : "");
	}
	printf("%s: afl-fuzz ran %.0f s: %" PRIu64 " execs, %.1f/s, corpus "
	       "%" PRIu64 ", %" PRIu64 " edges, stability %s, %" PRIu64
	       " crashes, %" PRIu64 " hangs\n", r->target, now() - t0,
	       r->execs, r->execs_per_sec, r->corpus, r->edges, r->stability,
	       r->crashes, r->hangs);
	if (r->crashes) {
		show_log(log);
		die("afl-fuzz saved %" PRIu64 " crashes in %s/default/crashes",
		    r->crashes, out);
	}
}

static void part_afl(const struct config *cfg)
{
	struct aflrun runs[2] = {
		{ .what = "fork server (`__AFL_INIT` after the setup)",
		  .target = "afl_fuzzreset_fork" },
		{ .what = "persistent `__AFL_LOOP(10000)` + `csnap_restore()`",
		  .target = "afl_fuzzreset_persist" },
	};
	const char *afl = getenv("FUZZRESET_AFL_FUZZ");
	char self[PATH_MAX], path[128], *slash;
	ssize_t n;
	int i;

	if (!afl)
		afl = "/usr/bin/afl-fuzz";
	if (access(afl, X_OK)) {
		printf("\nAFL++: not run, %s: %s\n", afl, strerror(errno));
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	self[n] = 0;
	slash = strrchr(self, '/');
	*slash = 0;
	snprintf(path, sizeof(path), "%s/in", workdir);
	if (mkdir(path, 0755))
		die("mkdir %s: %s", path, strerror(errno));
	for (i = 0; i < NR_SEEDS; i++) {
		snprintf(path, sizeof(path), "%s/in/seed%d.conf", workdir, i);
		write_file(path, seeds[i]);
	}
	for (i = 0; i < 2; i++)
		run_afl(afl, self, cfg->afl_s, &runs[i]);
	if (runs[1].restores < (int64_t)runs[1].execs)
		die("the persistent run did %" PRId64 " restores for %" PRIu64
		    " execs", runs[1].restores, runs[1].execs);

	printf("\n### AFL++ on the same target and seeds, %d s each\n\n",
	       cfg->afl_s);
	printf("| configuration | execs/s | execs | corpus | edges | "
	       "stability | crashes | hangs |\n");
	printf("|---|---|---|---|---|---|---|---|\n");
	for (i = 0; i < 2; i++)
		printf("| %s | %.0f | %" PRIu64 " | %" PRIu64 " | %" PRIu64
		       " | %s | %" PRIu64 " | %" PRIu64 " |\n", runs[i].what,
		       runs[i].execs_per_sec, runs[i].execs, runs[i].corpus,
		       runs[i].edges, runs[i].stability, runs[i].crashes,
		       runs[i].hangs);
	printf("\npersistent + restore / fork server: %.2fx execs/s; "
	       "%" PRId64 " restores of %.1f pages on average, the region "
	       "compared with its snapshot-time copy every %d restores\n\n",
	       runs[1].execs_per_sec / runs[0].execs_per_sec,
	       runs[1].restores, runs[1].restores ?
	       (double)runs[1].pages / runs[1].restores : 0.0,
	       AFL_VERIFY_EVERY);
}

static void print_loops(const struct config *cfg, const struct loop *f,
			const struct loop *r, uint64_t verified)
{
	double fe = f->execs / f->secs, re = r->execs / r->secs;

	printf("\n### Reset after each input, both loops in this program "
	       "(no AFL)\n\n");
	printf("| reset | execs/s | µs per exec | of which reset | pages "
	       "restored per exec |\n");
	printf("|---|---|---|---|---|\n");
	printf("| fork, run the input in the child, wait | %.0f | %.1f | - "
	       "| - |\n", fe, 1e6 / fe);
	printf("| run in place, `csnap_restore()` | %.0f | %.1f | %.1f | "
	       "%.1f |\n", re, 1e6 / re, r->reset_s * 1e6 / r->execs,
	       (double)r->pages / r->execs);
	printf("\nrestore / fork: %.2fx execs/s over %d inputs cycled for "
	       "%.0f s each; every result equal to the fork child's, the "
	       "region byte-identical to its snapshot-time copy at %" PRIu64
	       " sampled restores\n", re / fe, cfg->ninputs, cfg->loop_s,
	       verified);
}

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v && atoi(v) > 0 ? atoi(v) : def;
}

int main(int argc, char **argv)
{
	static const struct config check = {
		.check = 1, .ninputs = 200, .loop_s = 0, .verify_every = 8,
	};
	struct config cfg = {
		.ninputs = 256, .verify_every = AFL_VERIFY_EVERY,
	};
	struct loop lf, lr;
	struct snapstate s = { 0 };
	struct globals *priv;
	struct result *ref;
	struct input *in;
	char name[COWSNAP_NAME_MAX];
	void *mem;
	double t0 = now();

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--check"))) {
		fprintf(stderr, "usage: %s [--check]\n", argv[0]);
		return 2;
	}
	if (argc == 2) {
		cfg = check;
	} else {
		cfg.loop_s = env_int("FUZZRESET_SECONDS", 10);
		cfg.afl_s = env_int("FUZZRESET_AFL_SECONDS", 45);
	}
	main_pid = getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(workdir, sizeof(workdir), "/tmp/fuzzreset-%d", (int)getpid());
	if (mkdir(workdir, 0755))
		die("mkdir %s: %s", workdir, strerror(errno));
	atexit(cleanup);

	/* The fork loop's state: private memory, copied on write by fork. */
	mem = mmap(NULL, STATE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	priv = state_init(mem);
	/* The restore loop's: a region, snapshotted once set up. */
	snprintf(name, sizeof(name), "fuzzreset-%d", (int)getpid());
	region_setup(&s, name);
	if (priv->nentries != s.g->nentries || priv->xsum != s.g->xsum)
		die("the two states differ after the setup");
	printf("fuzzreset: config parser with %" PRIu64 " keys in %" PRIu64
	       " sections (%zu KiB of its %lu KiB arena) as the starting "
	       "state; region %s, snapshot %" PRIu64 "\n", priv->nentries,
	       priv->nsections, (size_t)(priv->cur - priv->arena) / 1024,
	       (STATE_SIZE - (priv->arena - (char *)priv)) / 1024, s.name,
	       s.id);

	in = make_inputs(cfg.ninputs);
	ref = calloc(cfg.ninputs, sizeof(*ref));
	if (!ref)
		die("calloc: %s", strerror(errno));
	loop_fork(&cfg, priv, in, ref, &lf);
	printf("ok: fork loop: %" PRIu64 " execs in %.2f s\n", lf.execs,
	       lf.secs);
	loop_restore(&cfg, &s, in, ref, &lr);
	printf("ok: restore loop: %" PRIu64 " execs in %.2f s, results equal "
	       "the fork loop's, region byte-identical to its snapshot at "
	       "%" PRIu64 " sampled restores; %.1f pages restored per exec\n",
	       lr.execs, lr.secs, s.verified,
	       (double)lr.pages / lr.execs);
	no_reset(&cfg, &s, in, ref);
	if (!cfg.check) {
		print_loops(&cfg, &lf, &lr, s.verified);
		part_afl(&cfg);
	}

	if (csnap_region_destroy(s.fd, s.name))
		die("csnap_region_destroy: %s", strerror(errno));
	close(s.fd);
	free(s.copy);
	free(ref);
	free_inputs(in, cfg.ninputs);
	munmap(mem, STATE_SIZE);
	printf("fuzzreset: all checks passed (%.1f s)\n", now() - t0);
	return 0;
}
#endif /* !FUZZRESET_AFL */

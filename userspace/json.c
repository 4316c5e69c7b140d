// SPDX-License-Identifier: GPL-2.0
/*
 * A small streaming JSON writer (see json.h).  Misuse -- a key where none
 * belongs, a key missing or of two types, unbalanced nesting -- is a bug in
 * the CLI and aborts, so the tests catch it.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

static void __attribute__((noreturn)) json_bug(const char *what,
					       const char *key)
{
	fflush(stdout);
	fprintf(stderr, "cowsnap: internal error: JSON %s%s%s\n", what,
		key ? ": " : "", key ? key : "");
	abort();
}

void json_init(struct json *j, FILE *f, const struct json_key *schema,
	       size_t nschema)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->schema = schema;
	j->nschema = nschema;
}

/* Valid UTF-8 sequence at @s: its length, or 0. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	/* No overlong forms, surrogates or code points past U+10FFFF. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

void json_write_string(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n;

	putc('"', f);
	while (*s) {
		switch (*s) {
		case '"':  fputs("\\\"", f); s++; continue;
		case '\\': fputs("\\\\", f); s++; continue;
		case '\b': fputs("\\b", f); s++; continue;
		case '\f': fputs("\\f", f); s++; continue;
		case '\n': fputs("\\n", f); s++; continue;
		case '\r': fputs("\\r", f); s++; continue;
		case '\t': fputs("\\t", f); s++; continue;
		}
		if (*s < 0x20 || *s == 0x7f) {
			fprintf(f, "\\u%04x", *s++);
			continue;
		}
		n = utf8_len(s);
		if (!n) {
			/* Not UTF-8 (a file name may be any bytes). */
			fputs("\\ufffd", f);
			s++;
			continue;
		}
		/* U+2028 and U+2029 end lines in JavaScript. */
		if (n == 3 && s[0] == 0xe2 && s[1] == 0x80 &&
		    (s[2] == 0xa8 || s[2] == 0xa9)) {
			fprintf(f, "\\u%04x", s[2] == 0xa8 ? 0x2028 : 0x2029);
			s += 3;
			continue;
		}
		fwrite(s, 1, n, f);
		s += n;
	}
	putc('"', f);
}

/* Separator and key before a member of type @t. */
static void member(struct json *j, const char *key, enum json_type t,
		   int is_null)
{
	size_t i;
	int d = j->depth;

	if (d && j->is_obj[d - 1]) {
		if (!key)
			json_bug("member without a key", NULL);
		if (!j->unchecked) {
			for (i = 0; i < j->nschema; i++)
				if (!strcmp(j->schema[i].key, key))
					break;
			if (i == j->nschema)
				json_bug("key not in the schema", key);
			if (!is_null && j->schema[i].type != t)
				json_bug("key of another type", key);
		}
	} else if (key) {
		json_bug("key outside an object", key);
	} else if (!d && j->nmembers[0]) {
		json_bug("second document", NULL);
	}
	j->unchecked = 0;
	if (d && j->nmembers[d])
		putc(',', j->f);
	j->nmembers[d] = 1;	/* at the top: the one document began */
	if (key) {
		json_write_string(j->f, key);
		putc(':', j->f);
	}
}

/* After a value: a document ends with a newline. */
static void value_done(struct json *j)
{
	if (!j->depth)
		putc('\n', j->f);
}

static void begin(struct json *j, const char *key, int obj)
{
	member(j, key, obj ? JSON_OBJECT : JSON_ARRAY, 0);
	if (j->depth + 1 >= JSON_MAX_DEPTH)
		json_bug("nested too deep", key);
	j->is_obj[j->depth++] = obj;
	j->nmembers[j->depth] = 0;
	putc(obj ? '{' : '[', j->f);
}

static void end(struct json *j, int obj)
{
	if (!j->depth || j->is_obj[j->depth - 1] != obj)
		json_bug("unbalanced end", NULL);
	j->depth--;
	putc(obj ? '}' : ']', j->f);
	value_done(j);
}

void json_object_begin(struct json *j, const char *key)
{
	begin(j, key, 1);
}

void json_object_end(struct json *j)
{
	end(j, 1);
}

void json_array_begin(struct json *j, const char *key)
{
	begin(j, key, 0);
}

void json_array_end(struct json *j)
{
	end(j, 0);
}

void json_string(struct json *j, const char *key, const char *s)
{
	member(j, key, JSON_STRING, !s);
	if (s)
		json_write_string(j->f, s);
	else
		fputs("null", j->f);
	value_done(j);
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
	member(j, key, JSON_NUMBER, 0);
	fprintf(j->f, "%" PRIu64, v);
	value_done(j);
}

void json_bool(struct json *j, const char *key, int v)
{
	member(j, key, JSON_BOOL, 0);
	fputs(v ? "true" : "false", j->f);
	value_done(j);
}

void json_null(struct json *j, const char *key)
{
	member(j, key, JSON_STRING, 1);
	fputs("null", j->f);
	value_done(j);
}

void json_unchecked(struct json *j)
{
	j->unchecked = 1;
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small streaming JSON writer for the cowsnap CLI: it places commas and
 * keys, escapes strings (any bytes in, valid UTF-8 JSON out) and checks
 * every key against a schema so a key always has one type.
 */
#ifndef COWSNAP_JSON_H
#define COWSNAP_JSON_H

#include <stdint.h>
#include <stdio.h>

enum json_type { JSON_STRING, JSON_NUMBER, JSON_BOOL, JSON_ARRAY, JSON_OBJECT };

/* A key and the one type its values have (null is allowed for any). */
struct json_key {
	const char *key;
	enum json_type type;
};

#define JSON_MAX_DEPTH	16

struct json {
	FILE *f;
	const struct json_key *schema;
	size_t nschema;
	int depth;
	int unchecked;			/* the next key is data, not schema */
	unsigned char is_obj[JSON_MAX_DEPTH];
	unsigned char nmembers[JSON_MAX_DEPTH];	/* has members yet */
};

void json_init(struct json *j, FILE *f, const struct json_key *schema,
	       size_t nschema);

/*
 * Members: @key is the member's name inside an object and must be NULL
 * inside an array or at the top.  A string of NULL is written as null.
 */
void json_object_begin(struct json *j, const char *key);
void json_object_end(struct json *j);
void json_array_begin(struct json *j, const char *key);
void json_array_end(struct json *j);
void json_string(struct json *j, const char *key, const char *s);
void json_u64(struct json *j, const char *key, uint64_t v);
void json_bool(struct json *j, const char *key, int v);
void json_null(struct json *j, const char *key);

/* The next member's key is data (a counter's name): not in the schema. */
void json_unchecked(struct json *j);

/* Write @s as a JSON string literal. */
void json_write_string(FILE *f, const char *s);

#endif /* COWSNAP_JSON_H */

/* prompts_int.h — shared between lib/prompts*.c, not a public header. */
#ifndef SPO_PROMPTS_INT_H
#define SPO_PROMPTS_INT_H

#include "text/prompts.h"

/* Append every member of the archive in buf (see prompts.h). Errors name
 * `name` and the member; on failure p may hold some of the new prompts
 * (spo_prompts_parse rolls back). */
int spo_prompts_archive(spo_prompts *p, const char *name, const char *buf, size_t len);
/* Drop prompts from index n on (rollback after a failed parse). */
void spo_prompts_truncate(spo_prompts *p, int n);

/* Appending with a duplicate-id check: an open-addressing table from id to
 * index+1 (0: empty) over every prompt of p. */
typedef struct {
    spo_prompts *p;
    int cap;      /* allocated length of p->text and p->id */
    int *slot;    /* hash table, mask + 1 entries */
    size_t mask;
} spo_pbuild;

int spo_pb_init(spo_pbuild *b, spo_prompts *p);
void spo_pb_done(spo_pbuild *b);
/* Append a copy of s[0..len) (checked: UTF-8, no NUL byte) with the given id,
 * or the running index when has_id is 0. Errors carry no location: the
 * caller prefixes it. */
int spo_pb_add(spo_pbuild *b, const char *s, size_t len, int has_id, int64_t id);

#endif

/* prompts_impl.h — shared between lib/text/prompts*.c, not a public header.
 * The files depend one way: prompts.c -> prompts_archive.c ->
 * prompts_parse.c -> prompts_buf.c. */
#ifndef SPO_PROMPTS_IMPL_H
#define SPO_PROMPTS_IMPL_H

#include "text/prompts.h"

/* prompts_buf.c: appending with a duplicate-id check, an open-addressing
 * table from id to index+1 (0: empty) over every prompt of p. One builder
 * serves a whole parse (every member of an archive), so appending is linear. */
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
/* Drop prompts from index n on (rollback after a failed parse). */
void spo_prompts_truncate(spo_prompts *p, int n);

/* prompts_parse.c: append the prompts of buf[0..len) in format f (text,
 * JSON or JSON lines; not an archive, not AUTO). On failure b->p may hold
 * some of the new prompts (the caller rolls back). */
int spo_prompts_parse_into(spo_pbuild *b, const char *name, const char *buf, size_t len, spo_pformat f);

/* prompts_archive.c: append every member of the archive in buf (see
 * prompts.h). Errors name `name` and the member; on failure b->p may hold
 * some of the new prompts. */
int spo_prompts_archive(spo_pbuild *b, const char *name, const char *buf, size_t len);

#endif

/* prompts.h — read a prompt set (the input of spo-encode).
 *
 * Formats, chosen by the file name's extension (case-insensitive) and, for
 * other names and for "-" (stdin), by the content:
 *   text   .txt    one prompt per line, UTF-8. Lines end at '\n'; a trailing
 *                  '\r' is stripped; lines that are empty or hold only ASCII
 *                  whitespace are skipped; every other line is kept verbatim
 *                  (leading and trailing spaces included: the CLIP tokenizer
 *                  cleans whitespace itself).
 *   JSON   .json   a list whose items are strings, or objects with a string
 *                  field `caption` (or, when absent, `prompt`, then `text`)
 *                  and an optional non-negative integer `id`.
 *   JSONL  .jsonl .ndjson  one such item per line; blank lines are skipped.
 *   archive .tar .tar.gz .tgz .tar.bz2 .tbz2 .tar.xz .txz .tar.zst .zip:
 *                  every regular member, in archive order, is read by its own
 *                  extension (.txt .json .jsonl .ndjson); directories and
 *                  macOS metadata (__MACOSX/, ._*) are skipped; any other
 *                  member is an error naming it.
 * Content sniffing: archive magic (gzip, bzip2, xz, zstd, zip, ustar) ->
 * archive; first non-blank character '[' -> JSON; first non-blank line
 * starting with '{' or '"' -> JSONL; anything else -> text. A UTF-8 BOM at
 * the start of a file or member is dropped. All text must be valid UTF-8.
 *
 * Prompt ids key the noise of every later step, so they are stable for a
 * given file: the `id` field when present, otherwise the prompt's running
 * index (0-based) over the whole set, archive members counted in order.
 * A duplicate id is an error.
 *
 * Errors are SPO_EINVAL (SPO_EIO for read failures and memory) with one line
 * naming the file, the archive member and the line (1-based) or the JSON
 * item (0-based, as jq's .[N]): "prompts.json: item 3: no 'caption' string". */
#ifndef SPO_PROMPTS_H
#define SPO_PROMPTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int n;
    char **text;  /* n UTF-8 strings, malloc'd */
    int64_t *id;  /* n distinct ids */
} spo_prompts;

typedef enum {
    SPO_PF_AUTO = 0, /* sniff the content */
    SPO_PF_TEXT,
    SPO_PF_JSON,
    SPO_PF_JSONL,
    SPO_PF_ARCHIVE,
} spo_pformat;

/* Read a prompt set from path ("-": stdin). *p is overwritten (it need not
 * be initialised); on failure it is left empty. An empty set is SPO_EINVAL. */
int spo_prompts_read(spo_prompts *p, const char *path);
/* Append the prompts of buf[0..len) in format f, named `name` in messages.
 * p must be zeroed or hold prompts already (running ids continue from p->n).
 * On failure p is as it was. An empty result is not an error here. */
int spo_prompts_parse(spo_prompts *p, const char *name, const char *buf, size_t len, spo_pformat f);
/* Format implied by a file name's extension, SPO_PF_AUTO if none. */
spo_pformat spo_prompts_format_of(const char *name);
/* Format sniffed from content (never SPO_PF_AUTO). */
spo_pformat spo_prompts_sniff(const char *buf, size_t len);
void spo_prompts_free(spo_prompts *p);

/* Keep the prompts whose index (position in the set) % n == i, in order,
 * with their ids: shard i of n for GNU parallel. 0 <= i < n. */
int spo_prompts_shard(spo_prompts *p, int i, int n);
/* Parse "I/N" (0 <= I < N) as given to --shard. */
int spo_shard_parse(const char *s, int *i, int *n);

/* 1 if s[0..n) is valid UTF-8 (no overlong forms, surrogates or values
 * above U+10FFFF). */
int spo_utf8_valid(const char *s, size_t n);

#endif

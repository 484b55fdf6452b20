/* tokenizer.h — the CLIP BPE tokenizer of Stable Diffusion v1.5 in three
 * modes, each giving the same ids as a tokenizer of transformers 4.40.1:
 *
 *   SPO_TOK_FTFY   (the default of spo_tok_load) the slow CLIPTokenizer with
 *                  ftfy 6.2.0 installed, as in the official SPO environment:
 *                  the diffusion pipeline's tokenizer. Steps 1, 3, 4, 5
 *                  below, with step 2 replaced by ftfy.fix_text (text/ftfy.h),
 *                  runs of Python whitespace to one space, strip, str.lower()
 *   SPO_TOK_BASIC  the slow CLIPTokenizer without ftfy (steps 1-5 below)
 *   SPO_TOK_FAST   CLIPTokenizerFast (`tokenizers` 0.19.1), what
 *                  AutoTokenizer gives for the preference model: NFC,
 *                  whitespace runs to a space, each code point lowered (no
 *                  final sigma), the added tokens matched on that normalized
 *                  text, then the regex of step 3 without IGNORECASE and
 *                  without the special-token branches, with the library's
 *                  Unicode classes (text/tok_fast.c), then step 4 and 5
 *
 * The slow path without ftfy (SPO_TOK_BASIC):
 *
 *   1. split the text on the added tokens (bos, eos, unk, pad strings, matched
 *      exactly, leftmost-longest); each becomes its id directly
 *   2. each other piece goes through BasicTokenizer(strip_accents=False,
 *      do_split_on_punc=False): drop NUL, U+FFFD and control/format/
 *      unassigned characters (category C*, but \t \n \r), whitespace to
 *      spaces, spaces around CJK ideographs, NFC, split on whitespace,
 *      str.lower() each word (with Python's final-sigma rule)
 *   3. the pre-tokenizer regex <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|
 *      've|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+ (IGNORECASE, so ſ
 *      matches s; U+0345 matches no branch and is skipped like a space)
 *   4. each match: UTF-8 bytes -> byte-level characters, "</w>" on the last,
 *      BPE by merge rank (all occurrences of the best pair per pass), each
 *      symbol to its vocabulary id or unk; the exact matches
 *      "<|startoftext|>" / "<|endoftext|>" map to their ids unsplit
 *   5. bos + ids + eos, truncated to max_len (eos kept last), then padded
 *      with the pad id to max_len
 *
 * Input that is not valid UTF-8 does not fail: each offending byte decodes to
 * U+FFFD, which step 2 drops (as Python would after decoding the bytes with
 * errors="replace"). Text stops at the first NUL (C string).
 *
 * A tokenizer directory holds vocab.json (token -> id) and merges.txt (line 1
 * a "#version" header, then "a b" per line, rank = order; like
 * CLIPTokenizer only the first 48894 are read) and optionally
 * tokenizer_config.json and special_tokens_map.json (the latter wins) for
 * bos/eos/unk/pad (a string or {"content": ...}) and model_max_length.
 * Defaults: bos "<|startoftext|>", eos/unk/pad "<|endoftext|>", 77. Special
 * tokens must be in vocab.json. Other added tokens are not supported. */
#ifndef SPO_TOKENIZER_H
#define SPO_TOKENIZER_H

#include <stdint.h>

typedef struct spo_tok spo_tok;

/* Load the tokenizer in directory dir into *t (free with spo_tok_free). */
int spo_tok_load(spo_tok **t, const char *dir);
void spo_tok_free(spo_tok *t);

/* Encode utf8 into ids[0..max_len) (max_len >= 2): bos, tokens, eos, pad.
 * *n_real (may be NULL) gets the count before padding. */
int spo_tok_encode(const spo_tok *t, const char *utf8, int32_t *ids, int max_len, int *n_real);

/* the modes (see above); names "basic", "ftfy", "fast" */
enum { SPO_TOK_BASIC = 0, SPO_TOK_FTFY = 1, SPO_TOK_FAST = 2 };
int spo_tok_set_mode(spo_tok *t, int mode);
int spo_tok_mode(const spo_tok *t);
const char *spo_tok_mode_name(int mode);
int spo_tok_mode_parse(const char *name, int *mode);

/* model_max_length (77 unless the config says otherwise) */
int spo_tok_max_length(const spo_tok *t);
/* ids of the special tokens; any pointer may be NULL */
void spo_tok_special_ids(const spo_tok *t, int32_t *bos, int32_t *eos, int32_t *pad, int32_t *unk);
/* 1 + the largest id in vocab.json */
int32_t spo_tok_vocab_size(const spo_tok *t);

/* Write a byte-level CLIP tokenizer into dir (created if missing): the 256
 * byte characters (ids 0..255), the same with "</w>" (256..511),
 * "<|startoftext|>" 512, "<|endoftext|>" 513; merges.txt with only its
 * header; tokenizer_config.json and special_tokens_map.json as SD v1.5's
 * (pad "<|endoftext|>", model_max_length 77). */
int spo_tok_write_bytelevel(const char *dir);
/* The same with the special tokens at other ids: (49406, 49407) gives a
 * vocabulary whose ids agree with the real CLIP one (bytes are 0..511
 * there too) for an SD v1.5-size text encoder. */
int spo_tok_write_bytelevel_ids(const char *dir, int bos, int eos);
/* The same padding with pad (a token of the vocabulary, e.g. "!" as SDXL's
 * second tokenizer does; NULL: "<|endoftext|>"). */
int spo_tok_write_bytelevel_pad(const char *dir, int bos, int eos, const char *pad);

#endif

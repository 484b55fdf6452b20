/* tok_impl.h — inside the CLIP tokenizer (tokenizer.h): the string table
 * and the merge table shared by tok_load.c (building) and tokenizer.c
 * (encoding). Not a public header. */
#ifndef SPO_TOK_IMPL_H
#define SPO_TOK_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "text/tokenizer.h"

/* Interned byte strings: every vocabulary token, every merge part and
 * result, and the 512 base symbols. A BPE symbol is a string index. */
typedef struct {
    char *pool;          /* the bytes of all strings, back to back */
    size_t pool_len, pool_cap;
    uint32_t *off, *len; /* [n] */
    int32_t *id;         /* [n] vocabulary id, -1 when not in vocab.json */
    uint32_t n, cap;
    uint32_t *slot;      /* [nslot] open addressing: string index + 1, 0 free */
    uint32_t nslot;      /* power of 2, at least 2 n */
} spo_strtab;

/* Merge table: (a, b) -> rank and the string index of a + b. */
typedef struct {
    uint64_t key;        /* a << 32 | b */
    int32_t rank;        /* -1: free slot */
    uint32_t merged;
} spo_pair;

enum { SPO_TOK_NSPECIAL = 4 }; /* bos, eos, unk, pad */

struct spo_tok {
    spo_strtab s;
    spo_pair *pair;           /* [npair_slot] */
    uint32_t npair_slot, npair;
    uint32_t base[256];       /* string index of each byte's character */
    uint32_t base_w[256];     /* ... with "</w>" */
    /* added tokens for the first split: strings as code points */
    uint32_t *special_cp[SPO_TOK_NSPECIAL];
    size_t special_n[SPO_TOK_NSPECIAL];
    int32_t special_id[SPO_TOK_NSPECIAL];
    int32_t bos_id, eos_id, unk_id, pad_id;
    int32_t vocab_size;
    int max_length;
    int mode; /* SPO_TOK_BASIC, _FTFY or _FAST */
};

/* index of string (p, n) in the table, or -1 */
long spo_strtab_find(const spo_strtab *s, const char *p, size_t n);
/* the pair entry of (a, b), or NULL */
const spo_pair *spo_pair_find(const spo_tok *t, uint32_t a, uint32_t b);
/* the byte-level character of each byte (GPT-2 / CLIP bytes_to_unicode) */
uint32_t spo_byte_char(int byte);

/* CLIPTokenizerFast's normalizer (tok_fast.c): NFC (of the library's older
 * Unicode), runs of \s to one space, each code point lowered; out has
 * capacity 8 n. Returns the length of out. */
size_t spo_tok_fast_normalize(const uint32_t *in, size_t n, uint32_t *out, uint32_t *tmp);
/* the Split pre-tokenizer's class of cp: SPO_RX_SKIP, _L, _N or _O */
int spo_tok_fast_class(uint32_t cp);

/* the generated tables of tok_fast.c (tok_fast_tables.c) */
extern const uint32_t spo_fasttab_rx[], spo_fasttab_inert[];
extern const size_t spo_fasttab_rx_n, spo_fasttab_inert_n;

#endif

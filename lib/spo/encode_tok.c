/* encode_tok.c — prompts to token ids, and the tokenizer of a CLIP
 * directory (see encode.h); shared by encode.c and encode_xl.c. */
#include <stdio.h>
#include <sys/stat.h>

#include "core/err.h"
#include "spo/encode.h"

int spo_tokenize(const spo_tok *t, const char *const *text, int n, int len, int32_t *ids)
{
    for (int i = 0; i < n; i++) {
        int rc = spo_tok_encode(t, text[i], ids + (size_t)i * len, len, NULL);
        if (rc) return spo_err_prefix(rc, "prompt '%.40s'", text[i]);
    }
    return SPO_OK;
}

int spo_tok_load_clip_dir(spo_tok **t, const char *dir)
{
    char sub[4096], f[4200];
    struct stat st;
    snprintf(sub, sizeof sub, "%s/tokenizer", dir);
    snprintf(f, sizeof f, "%s/vocab.json", sub);
    int rc;
    if (stat(f, &st) == 0) rc = spo_tok_load(t, sub);
    else if (stat(dir, &st) || !S_ISDIR(st.st_mode)) return spo_err(SPO_EINVAL, "%s: not a directory", dir);
    else rc = spo_tok_load(t, dir);
    if (!rc) spo_tok_set_mode(*t, SPO_TOK_FAST);
    return rc;
}

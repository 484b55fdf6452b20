/* ptzip.h — the zip container of a PyTorch checkpoint (torch.save >= 1.6).
 *
 * Layout (every member under one top folder, the "archive" name):
 *   <archive>/data.pkl                the pickled object (see unpickle.h)
 *   <archive>/data/<key>              one raw storage per key, little-endian
 *   <archive>/version                 "3\n" (optional)
 *   <archive>/byteorder               "little" (optional; "big" is refused)
 *   <archive>/.data/serialization_id  ignored, as is anything else
 * torch writes members STORED, 64-byte aligned; DEFLATE also works.
 *
 * The archive is read with libarchive's seekable zip reader (a truncated
 * file lacks its central directory and is refused), CRCs are checked, and
 * the members above are loaded into memory. Limits: data.pkl at most
 * SPO_PTZIP_MAX_PKL bytes; every member and all of them together at most
 * SPO_PTZIP_RATIO times the archive's size plus 1 MiB (so a small file
 * cannot claim gigabytes), checked against the declared sizes before
 * reading and against the bytes actually read. Damage is SPO_EINVAL with a
 * message naming the file and member; a failed read or malloc SPO_EIO. */
#ifndef SPO_PTZIP_H
#define SPO_PTZIP_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define SPO_PTZIP_MAX_PKL ((size_t)1 << 30)
#define SPO_PTZIP_RATIO 64

typedef struct {
    char *key;     /* "<key>" of <archive>/data/<key> */
    uint8_t *data; /* size bytes (NULL when 0) */
    size_t size;
} spo_ptzip_storage;

typedef struct {
    char *archive; /* the top folder name */
    uint8_t *pkl;  /* data.pkl */
    size_t pkl_len;
    spo_ptzip_storage *st; /* sorted by key */
    int nst;
    int version;   /* from <archive>/version; 0 when absent */
} spo_ptzip;

/* Read path into *z (zeroed first; free with spo_ptzip_close even on failure). */
int spo_ptzip_open(spo_ptzip *z, const char *path);
/* The storage member for key, or NULL. */
const spo_ptzip_storage *spo_ptzip_find(const spo_ptzip *z, const char *key);
void spo_ptzip_close(spo_ptzip *z);

#endif

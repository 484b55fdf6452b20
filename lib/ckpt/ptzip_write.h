/* ptzip_write.h — write the zip container of a PyTorch checkpoint the way
 * torch.save does (PyTorch 2.3: PyTorchStreamWriter over miniz 2.1), byte
 * for byte, so a file written here equals torch.save's output.
 *
 * Every record "<archive>/<name>" is STORED (no compression), with no time
 * stamp, the UTF-8 flag and a data descriptor (flag bit 3) when it holds
 * data. Its local header carries an extra field "FB" of 'Z' bytes sized so
 * that the data starts at a multiple of 64 bytes (after a zip64 extra field
 * when the record or its offset reaches 4 GiB). The central directory is
 * followed by the zip64 end record and locator (always, as torch asks miniz
 * for zip64) and the classic end record.
 *
 * spo_ptzip_writer_finish adds what PyTorchStreamWriter adds when it closes:
 * "version" ("3\n") and ".data/serialization_id", 40 digits: a hash of the
 * record names (libstdc++'s std::hash<std::string> of each name, combined
 * with c10::hash_combine in the order std::unordered_set visits them) and a
 * combination of the records' CRC-32s, each zero-padded to 20 digits.
 *
 * Records are streamed: begin (name and size), data in any pieces, end.
 * Write errors are kept by the FILE and reported (SPO_EIO) by record_end and
 * finish; a record whose data does not add up to its size is SPO_EINVAL. */
#ifndef SPO_PTZIP_WRITE_H
#define SPO_PTZIP_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

typedef struct spo_ptzip_writer spo_ptzip_writer;

/* Write to f (at offset 0; not closed here) under the top folder archive.
 * path names the file in messages. */
int spo_ptzip_writer_new(spo_ptzip_writer **zw, FILE *f, const char *archive, const char *path);
void spo_ptzip_writer_free(spo_ptzip_writer *zw); /* safe on NULL */

int spo_ptzip_record_begin(spo_ptzip_writer *zw, const char *name, uint64_t size);
void spo_ptzip_record_data(spo_ptzip_writer *zw, const void *p, size_t n);
int spo_ptzip_record_end(spo_ptzip_writer *zw);
/* A whole record from one buffer. */
int spo_ptzip_record(spo_ptzip_writer *zw, const char *name, const void *p, size_t n);

/* version, serialization id, central directory, end records; then fflush. */
int spo_ptzip_writer_finish(spo_ptzip_writer *zw);

/* The archive name torch derives from a file path: the last component
 * (after '/' or '\\') without its last extension; "archive" (torch's name
 * for streams) when nothing is left. Returns a malloc'd string or NULL. */
char *spo_ptzip_archive_name(const char *path);

#endif

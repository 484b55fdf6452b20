/* h5_impl.h — shared by the HDF5 files of lib/io: h5init.c (library set-up,
 * the f16 type, access properties), h5safe.c (refusing files that reach
 * outside themselves), h5data.c (data) and h5io.c (files). h5io uses h5data
 * and h5safe; h5data and h5safe use only h5init. */
#ifndef SPO_H5_IMPL_H
#define SPO_H5_IMPL_H

#include "core/atomic.h"
#include "io/h5io.h"

struct spo_h5 {
    hid_t id;
    int writing;
    char *path;     /* as given */
    char *shown;    /* for messages */
    spo_atomic out; /* the output while writing: a temporary, or a stream ("-", a device, a FIFO) */
    const spo_schema *schema;
    char *history; /* previous history lines, or NULL */
};

void spo_h5_init(void);      /* silence HDF5's own error printing, once */
hid_t spo_h5_f16_type(void); /* IEEE half, little endian */
/* Dataset/link access properties under which external links are never
 * followed (pass where HDF5 takes a lapl or dapl). */
hid_t spo_h5_dapl(void);
hid_t spo_h5_lapl(void);
/* File access properties for reading: no external-link file cache, the
 * default driver otherwise. Caller closes. */
hid_t spo_h5_read_fapl(void);

/* Create dataset name (parent groups as needed) of type stored and shape
 * [ndim] (min_rank <= ndim <= SPO_MAXDIM) with creation properties dcpl;
 * *mtype: the memory type of its data (float, int32 or int64). h5data.c */
int spo_h5_new_dataset(spo_h5 *f, const char *name, spo_dtype_t stored, int ndim, int min_rank,
                       const int64_t *shape, hid_t dcpl, hid_t *ds, hid_t *mtype);

/* SPO_EINVAL (naming the file and object) when the file has an external or
 * user-defined link, or a dataset with external storage or a virtual layout:
 * such a file could make spo read other files. */
int spo_h5_check_self_contained(const spo_h5 *f);
/* The same check for one open dataset. */
int spo_h5_check_dataset(const spo_h5 *f, hid_t ds, const char *name);

#endif

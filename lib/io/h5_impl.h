/* h5_internal.h — shared between h5io.c (files) and h5data.c (data). */
#ifndef SPO_H5_INTERNAL_H
#define SPO_H5_INTERNAL_H

#include "io/h5io.h"

struct spo_h5 {
    hid_t id;
    int writing, to_stdout;
    char *path;  /* as given */
    char *shown; /* for messages */
    char *tmp;   /* temporary path while writing a real file */
    const spo_schema *schema;
    char *history; /* previous history lines, or NULL */
};

void spo_h5_init(void);     /* silence HDF5's own error printing, once */
hid_t spo_h5_f16_type(void); /* IEEE half, little endian */

#endif

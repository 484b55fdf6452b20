/* prov.h — provenance: the command line for `history`, build information. */
#ifndef SPO_PROV_H
#define SPO_PROV_H

#include <stddef.h>

/* Remember the command line (quoted as a shell would need) for history. */
void spo_prov_set_cmdline(int argc, char **argv);
/* The remembered command line, or "" when none was set. */
const char *spo_prov_cmdline(void);
/* One history line: "<ISO time> spo <version>: <command line>". */
void spo_prov_history_line(char *buf, size_t n);
/* Multi-line build description: CUDA/cuBLAS, HDF5, libarchive, BLAS, libpng. */
void spo_build_info(char *buf, size_t n);

#endif

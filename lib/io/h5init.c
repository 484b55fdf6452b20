/* h5init.c — HDF5 library set-up for spo (see h5_impl.h). */
#include <pthread.h>

#include "io/h5_impl.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static hid_t f16, dapl, lapl;

/* Every external link traversal is refused (the callback fails it). */
static herr_t no_elink(const char *parent_file, const char *parent_group, const char *child_file,
                       const char *child_object, unsigned *acc_flags, hid_t fapl, void *op)
{
    (void)parent_file, (void)parent_group, (void)child_file, (void)child_object, (void)acc_flags, (void)fapl, (void)op;
    return -1;
}

static void init(void)
{
    H5dont_atexit(); /* a file whose close failed (disk full) must not crash HDF5's own shutdown at exit */
    H5open();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    f16 = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(f16, 15, 10, 5, 0, 10);
    H5Tset_size(f16, 2);
    H5Tset_ebias(f16, 15);
    H5Tset_precision(f16, 16);
    lapl = H5Pcreate(H5P_LINK_ACCESS);
    H5Pset_elink_cb(lapl, no_elink, NULL);
    dapl = H5Pcreate(H5P_DATASET_ACCESS);
    H5Pset_elink_cb(dapl, no_elink, NULL);
}

void spo_h5_init(void) { pthread_once(&init_once, init); }

hid_t spo_h5_f16_type(void)
{
    spo_h5_init();
    return f16;
}

hid_t spo_h5_dapl(void)
{
    spo_h5_init();
    return dapl;
}

hid_t spo_h5_lapl(void)
{
    spo_h5_init();
    return lapl;
}

hid_t spo_h5_read_fapl(void)
{
    spo_h5_init();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_elink_file_cache_size(fapl, 0);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    return fapl;
}

/* h5safe.c — a file spo reads must not reach outside itself (see
 * h5_impl.h): no external or user-defined links, no dataset stored in
 * external files, no virtual dataset (whose sources are other files). */
#include <stdio.h>

#include "core/err.h"
#include "io/h5_impl.h"

int spo_h5_check_dataset(const spo_h5 *f, hid_t ds, const char *name)
{
    hid_t dcpl = H5Dget_create_plist(ds);
    if (dcpl < 0) return spo_err(SPO_EINVAL, "%s: %s: cannot read the dataset's layout", f->shown, name);
    H5D_layout_t lay = H5Pget_layout(dcpl);
    int next = H5Pget_external_count(dcpl);
    H5Pclose(dcpl);
    if (lay == H5D_VIRTUAL)
        return spo_err(SPO_EINVAL, "%s: %s is a virtual dataset (data from other files); refused", f->shown, name);
    if (next != 0)
        return spo_err(SPO_EINVAL, "%s: %s uses external storage (data in other files); refused", f->shown, name);
    if (lay < 0) return spo_err(SPO_EINVAL, "%s: %s: unknown dataset layout", f->shown, name);
    return SPO_OK;
}

typedef struct {
    const spo_h5 *f;
    int rc;
} walk_ctx;

static herr_t on_link(hid_t g, const char *name, const H5L_info_t *li, void *p)
{
    walk_ctx *c = p;
    if (li->type == H5L_TYPE_HARD || li->type == H5L_TYPE_SOFT) return 0;
    c->rc = spo_err(SPO_EINVAL, "%s: /%s is an %s link (to another file); refused", c->f->shown, name,
                    li->type == H5L_TYPE_EXTERNAL ? "external" : "unknown kind of");
    return -1;
}

static herr_t on_object(hid_t o, const char *name, const H5O_info_t *oi, void *p)
{
    walk_ctx *c = p;
    if (oi->type != H5O_TYPE_DATASET) return 0;
    hid_t ds = H5Dopen2(o, name, spo_h5_dapl());
    if (ds < 0) {
        c->rc = spo_err(SPO_EINVAL, "%s: cannot open dataset /%s", c->f->shown, name);
        return -1;
    }
    char full[1024];
    snprintf(full, sizeof full, "/%s", name);
    c->rc = spo_h5_check_dataset(c->f, ds, full);
    H5Dclose(ds);
    return c->rc ? -1 : 0;
}

int spo_h5_check_self_contained(const spo_h5 *f)
{
    walk_ctx c = {f, SPO_OK};
    /* links first: the object walk below then only meets this file's objects */
    if (H5Lvisit(f->id, H5_INDEX_NAME, H5_ITER_INC, on_link, &c) < 0 && !c.rc)
        c.rc = spo_err(SPO_EINVAL, "%s: cannot list links (corrupt file?)", f->shown);
    if (!c.rc && H5Ovisit(f->id, H5_INDEX_NAME, H5_ITER_INC, on_object, &c) < 0 && !c.rc)
        c.rc = spo_err(SPO_EINVAL, "%s: cannot list contents (corrupt file?)", f->shown);
    return c.rc;
}

/* spo-resample — the next state: one child per prompt of a pool, chosen at random. */
#include <stdio.h>
#include <stdlib.h>

#include "frame.h"
#include "io/h5io.h"
#include "spo/resample.h"

#include "spo-resample.opts.h"

int main(int argc, char **argv)
{
    tool_vals c;
    spo_args a;
    spo_parse(&tool, argc, argv, &a, &c, sizeof c, NULL);
    double t0 = spo_now();
    spo_h5 *pool, *out;
    int rc = spo_h5_open(&pool, a.argv[0], "pool", NULL);
    if (rc) spo_die_lib(rc);
    uint64_t seed = a.seed;
    if (!a.seed_set) { /* default: the pool's own noise seed */
        int64_t s;
        if ((rc = spo_h5_get_attr_int(pool, NULL, "seed", &s))) {
            spo_h5_close(pool);
            spo_die_lib(rc);
        }
        seed = (uint64_t)s;
    }
    if ((rc = spo_h5_create(&out, a.out, "state/1", a.force))) {
        spo_h5_close(pool);
        spo_die_lib(rc);
    }
    spo_vtime(&a, "load", spo_now() - t0);
    if ((rc = spo_resample(out, pool, seed))) {
        spo_h5_abort(out);
        spo_h5_close(pool);
        spo_die_lib(rc);
    }
    spo_h5_close(pool);
    if ((rc = spo_h5_commit(out))) spo_die_lib(rc);
    spo_vtime(&a, "work", spo_now() - t0);
    return spo_finish();
}

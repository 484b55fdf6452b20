/* hooks.h — how a library job reports to the tool that runs it. The library
 * never prints (lib/README.md): a job (lib/spo/<stage>_run.h) holds one spo_hooks,
 * any callback of which may be NULL, and reports through the functions
 * below; the tools fill it from tools/frame.c (spo_jobcb_hooks). */
#ifndef SPO_HOOKS_H
#define SPO_HOOKS_H

typedef struct {
    void *ctx;                                                   /* passed to every callback */
    void (*progress)(void *ctx, long done, long total);          /* units of work done so far */
    void (*note)(void *ctx, const char *msg);                    /* a remark for -v */
    void (*phase)(void *ctx, const char *name);                  /* a phase ("load", "work") just ended */
    void (*timing)(void *ctx, const char *name, double seconds); /* time spent on a part of the work */
} spo_hooks;

static inline void spo_hook_progress(const spo_hooks *h, long done, long total)
{
    if (h->progress) h->progress(h->ctx, done, total);
}

static inline void spo_hook_note(const spo_hooks *h, const char *msg)
{
    if (h->note) h->note(h->ctx, msg);
}

static inline void spo_hook_phase(const spo_hooks *h, const char *name)
{
    if (h->phase) h->phase(h->ctx, name);
}

static inline void spo_hook_timing(const spo_hooks *h, const char *name, double seconds)
{
    if (h->timing) h->timing(h->ctx, name, seconds);
}

#endif

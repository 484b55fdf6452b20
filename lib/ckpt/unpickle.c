/* unpickle.c — restricted unpickler for state-dict pickles (see unpickle.h).
 *
 * The pickle machine is simulated on a stack of small value records (None,
 * bool, int, float, str, tuple, list, dict, an allowed global, a storage
 * reference, a tensor). Strings point into the caller's buffer. Every record
 * is allocated by one opcode and kept on a list freed at the end, so memory
 * is linear in the input; shared references (memo) are plain pointers.
 * MARK works as in CPython: it fences the stack, and only the *MARK-popping
 * opcodes (TUPLE, SETITEMS, APPENDS) see below the fence.
 *
 * Nothing is ever called: the allowed "callables" only build records:
 *   OrderedDict()                                   -> empty dict
 *   _rebuild_tensor_v2(st, off, size, stride, rg, hooks[, meta]) -> tensor
 *   _rebuild_tensor(st, off, size, stride)          -> tensor
 *   _rebuild_parameter(t, rg, hooks[, state])       -> t
 *   BINPERSID ('storage', <Storage class>, key, location, numel) -> storage
 *   BUILD on a dict with a dict or None state (torch's `_metadata`) -> ignored */
#include "ckpt/unpickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

#define MAX_MARKS 64
#define MAX_STR 256 /* GLOBAL module/name lines */

typedef enum { V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR } vkind;

/* with an article, for messages: "'a' is an int, not a tensor" */
static const char *const kind_name[] = {"a None", "a bool", "an int", "a float", "a str", "a tuple",
                                        "a list", "a dict", "a global", "a storage", "a tensor"};

typedef struct val val;

typedef struct {
    val *storage;
    int64_t off;
    int ndim;
    int64_t shape[SPO_PT_MAXDIM], stride[SPO_PT_MAXDIM], numel;
} tensor_rec;

struct val {
    vkind k;
    val *next; /* every record, for freeing */
    union {
        int64_t i; /* BOOL, INT; GLOBAL: index into allowed[] */
        double f;
        struct { const uint8_t *s; size_t n; } str;
        struct { val **v; size_t n, cap; } seq; /* TUPLE, LIST; DICT: key, value, key, value... */
        struct { spo_pt_dtype dt; const val *key; int64_t numel; } st;
        tensor_rec *t;
    } u;
};

/* ---- the allowed names --------------------------------------------------- */
enum { G_ODICT, G_REBUILD_V2, G_REBUILD, G_PARAM, G_PARAM_STATE, G_STORAGE };

static const struct {
    const char *mod, *name;
    int what;
    spo_pt_dtype dt; /* for G_STORAGE */
} allowed[] = {
    {"collections", "OrderedDict", G_ODICT, 0},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2, 0},
    {"torch._utils", "_rebuild_tensor", G_REBUILD, 0},
    {"torch._utils", "_rebuild_parameter", G_PARAM, 0},
    {"torch._utils", "_rebuild_parameter_with_state", G_PARAM_STATE, 0},
    {"torch", "FloatStorage", G_STORAGE, SPO_PT_F32},
    {"torch", "HalfStorage", G_STORAGE, SPO_PT_F16},
    {"torch", "BFloat16Storage", G_STORAGE, SPO_PT_BF16},
    {"torch", "DoubleStorage", G_STORAGE, SPO_PT_F64},
    {"torch", "LongStorage", G_STORAGE, SPO_PT_I64},
    {"torch", "IntStorage", G_STORAGE, SPO_PT_I32},
    {"torch", "ShortStorage", G_STORAGE, SPO_PT_I16},
    {"torch", "CharStorage", G_STORAGE, SPO_PT_I8},
    {"torch", "ByteStorage", G_STORAGE, SPO_PT_U8},
    {"torch", "BoolStorage", G_STORAGE, SPO_PT_BOOL},
};
#define N_ALLOWED ((int)(sizeof allowed / sizeof allowed[0]))

static const struct { const char *name; size_t size; } dtypes[SPO_PT_NDTYPE] = {
    [SPO_PT_F32] = {"f32", 4}, [SPO_PT_F16] = {"f16", 2}, [SPO_PT_BF16] = {"bf16", 2},
    [SPO_PT_F64] = {"f64", 8}, [SPO_PT_I64] = {"i64", 8}, [SPO_PT_I32] = {"i32", 4},
    [SPO_PT_I16] = {"i16", 2}, [SPO_PT_I8] = {"i8", 1},   [SPO_PT_U8] = {"u8", 1},
    [SPO_PT_BOOL] = {"bool", 1},
};

const char *spo_pt_dtype_name(spo_pt_dtype dt) { return (unsigned)dt < SPO_PT_NDTYPE ? dtypes[dt].name : "?"; }
size_t spo_pt_dtype_size(spo_pt_dtype dt) { return (unsigned)dt < SPO_PT_NDTYPE ? dtypes[dt].size : 0; }

/* ---- the opcodes --------------------------------------------------------- */
/* Each opcode's name (for messages) and the size of the little-endian
 * argument that follows it: 0 for none, or one the opcode reads itself
 * (LONG1, BINFLOAT, GLOBAL). An opcode without a name is unknown. */
static const struct {
    const char *name;
    uint8_t arg;
} opcodes[256] = {
    [0x80] = {"PROTO", 1},        [0x95] = {"FRAME", 8},          ['}'] = {"EMPTY_DICT", 0},
    [']'] = {"EMPTY_LIST", 0},    [')'] = {"EMPTY_TUPLE", 0},     ['('] = {"MARK", 0},
    ['t'] = {"TUPLE", 0},         [0x85] = {"TUPLE1", 0},         [0x86] = {"TUPLE2", 0},
    [0x87] = {"TUPLE3", 0},       ['s'] = {"SETITEM", 0},         ['u'] = {"SETITEMS", 0},
    ['a'] = {"APPEND", 0},        ['e'] = {"APPENDS", 0},         ['q'] = {"BINPUT", 1},
    ['r'] = {"LONG_BINPUT", 4},   [0x94] = {"MEMOIZE", 0},        ['h'] = {"BINGET", 1},
    ['j'] = {"LONG_BINGET", 4},   ['J'] = {"BININT", 4},          ['K'] = {"BININT1", 1},
    ['M'] = {"BININT2", 2},       [0x8a] = {"LONG1", 0},          ['G'] = {"BINFLOAT", 0},
    [0x88] = {"NEWTRUE", 0},      [0x89] = {"NEWFALSE", 0},       ['N'] = {"NONE", 0},
    ['X'] = {"BINUNICODE", 4},    [0x8c] = {"SHORT_BINUNICODE", 1}, [0x8d] = {"BINUNICODE8", 8},
    ['T'] = {"BINSTRING", 4},     ['U'] = {"SHORT_BINSTRING", 1}, ['c'] = {"GLOBAL", 0},
    [0x93] = {"STACK_GLOBAL", 0}, ['R'] = {"REDUCE", 0},          ['b'] = {"BUILD", 0},
    ['Q'] = {"BINPERSID", 0},     ['.'] = {"STOP", 0},
    /* known to pickle, refused here (their arguments are never read) */
    ['i'] = {"INST"},             ['o'] = {"OBJ"},                [0x81] = {"NEWOBJ"},
    [0x92] = {"NEWOBJ_EX"},       [0x82] = {"EXT1"},              [0x83] = {"EXT2"},
    [0x84] = {"EXT4"},            ['P'] = {"PERSID"},             ['0'] = {"POP"},
    ['1'] = {"POP_MARK"},         ['2'] = {"DUP"},                ['F'] = {"FLOAT"},
    ['I'] = {"INT"},              ['L'] = {"LONG"},               [0x8b] = {"LONG4"},
    ['S'] = {"STRING"},           ['V'] = {"UNICODE"},            ['d'] = {"DICT"},
    ['l'] = {"LIST"},             ['g'] = {"GET"},                ['p'] = {"PUT"},
    ['B'] = {"BINBYTES"},         ['C'] = {"SHORT_BINBYTES"},     [0x8e] = {"BINBYTES8"},
    [0x96] = {"BYTEARRAY8"},      [0x97] = {"NEXT_BUFFER"},       [0x98] = {"READONLY_BUFFER"},
    [0x8f] = {"EMPTY_SET"},       [0x90] = {"ADDITEMS"},          [0x91] = {"FROZENSET"},
};

static const char *op_name(int c) { return opcodes[c & 0xff].name; }

/* ---- the machine --------------------------------------------------------- */
typedef struct {
    const uint8_t *p;
    size_t len, pos, at; /* at: offset of the current opcode */
    int op;
    const char *name;
    val **stack;
    size_t sp, scap;
    size_t marks[MAX_MARKS];
    int nmark;
    val **memo;
    size_t memo_cap, memo_used;
    val *all;
} machine;

static int fail(machine *m, const char *fmt, ...) SPO_PRINTF(2, 3);
static int fail(machine *m, const char *fmt, ...)
{
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    return spo_err(SPO_EINVAL, "%s: %s at byte %zu of data.pkl", m->name, b, m->at);
}

static int oom(machine *m) { return spo_err(SPO_EIO, "%s: out of memory reading data.pkl", m->name); }

/* printable copy of arbitrary bytes for a message */
static void show(char *dst, size_t cap, const uint8_t *s, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 5 < cap; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'' && s[i] != '\\') dst[j++] = (char)s[i];
        else j += (size_t)snprintf(dst + j, cap - j, "\\x%02x", s[i]);
    }
    if (j + 5 >= cap && cap > 4) memcpy(dst + cap - 4, "...", 4), j = cap - 1;
    dst[j] = 0;
}

static val *mk(machine *m, vkind k)
{
    val *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->k = k;
    v->next = m->all;
    m->all = v;
    return v;
}

static void free_all(val *v)
{
    while (v) {
        val *n = v->next;
        if (v->k == V_TUPLE || v->k == V_LIST || v->k == V_DICT) free(v->u.seq.v);
        if (v->k == V_TENSOR) free(v->u.t);
        free(v);
        v = n;
    }
}

static int seq_push(val *s, val *x)
{
    val **nv = spo_grow(s->u.seq.v, &s->u.seq.cap, s->u.seq.n + 1, sizeof *nv, 4);
    if (!nv) return -1;
    s->u.seq.v = nv;
    s->u.seq.v[s->u.seq.n++] = x;
    return 0;
}

/* the stack below the innermost MARK is out of reach of ordinary opcodes */
static size_t fence(const machine *m) { return m->nmark ? m->marks[m->nmark - 1] : 0; }
static size_t avail(const machine *m) { return m->sp - fence(m); }

static int push(machine *m, val *v)
{
    if (!v) return oom(m);
    val **ns = spo_grow(m->stack, &m->scap, m->sp + 1, sizeof *ns, 64);
    if (!ns) return oom(m);
    m->stack = ns;
    m->stack[m->sp++] = v;
    return SPO_OK;
}

static int need_stack(machine *m, size_t n)
{
    if (avail(m) < n) return fail(m, "malformed pickle: stack underflow in %s", op_name(m->op));
    return SPO_OK;
}

static int need_bytes(machine *m, size_t n)
{
    if (m->len - m->pos < n) return fail(m, "truncated pickle in %s", op_name(m->op));
    return SPO_OK;
}

static uint64_t rd_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int put_memo(machine *m, uint64_t idx)
{
    if (!avail(m)) return need_stack(m, 1);
    /* a well-formed pickle memoises at most one value per byte */
    if (idx >= m->len) return fail(m, "malformed pickle: memo index %llu out of range", (unsigned long long)idx);
    if (idx >= m->memo_cap) {
        size_t nc = m->memo_cap ? m->memo_cap : 64;
        while (nc <= idx) nc *= 2;
        val **nm = realloc(m->memo, nc * sizeof *nm);
        if (!nm) return oom(m);
        memset(nm + m->memo_cap, 0, (nc - m->memo_cap) * sizeof *nm);
        m->memo = nm;
        m->memo_cap = nc;
    }
    if (!m->memo[idx]) m->memo_used++;
    m->memo[idx] = m->stack[m->sp - 1];
    return SPO_OK;
}

static int get_memo(machine *m, uint64_t idx)
{
    if (idx >= m->memo_cap || !m->memo[idx])
        return fail(m, "malformed pickle: memo index %llu out of range", (unsigned long long)idx);
    return push(m, m->memo[idx]);
}

static int push_int(machine *m, vkind k, int64_t i)
{
    val *v = mk(m, k);
    if (v) v->u.i = i;
    return push(m, v);
}

static int push_str(machine *m, uint64_t n)
{
    if (m->len - m->pos < n) return fail(m, "truncated pickle in %s", op_name(m->op));
    val *v = mk(m, V_STR);
    if (!v) return oom(m);
    v->u.str.s = m->p + m->pos;
    v->u.str.n = (size_t)n;
    m->pos += (size_t)n;
    return push(m, v);
}

/* pop everything above the innermost MARK into a new sequence of kind k */
static int pop_mark_into(machine *m, val *s)
{
    if (!m->nmark) return fail(m, "malformed pickle: %s without MARK", op_name(m->op));
    size_t base = m->marks[--m->nmark];
    for (size_t i = base; i < m->sp; i++)
        if (seq_push(s, m->stack[i])) return oom(m);
    m->sp = base;
    return SPO_OK;
}

static int str_eq(const val *v, const char *s)
{
    return v->k == V_STR && v->u.str.n == strlen(s) && !memcmp(v->u.str.s, s, v->u.str.n);
}

static int find_global(const uint8_t *mod, size_t nm, const uint8_t *name, size_t nn)
{
    for (int i = 0; i < N_ALLOWED; i++)
        if (strlen(allowed[i].mod) == nm && !memcmp(allowed[i].mod, mod, nm) && strlen(allowed[i].name) == nn &&
            !memcmp(allowed[i].name, name, nn))
            return i;
    return -1;
}

static int push_global(machine *m, const uint8_t *mod, size_t nm, const uint8_t *name, size_t nn)
{
    int g = find_global(mod, nm, name, nn);
    if (g < 0) {
        char a[128], b[128];
        show(a, sizeof a, mod, nm);
        show(b, sizeof b, name, nn);
        return spo_err(SPO_EINVAL, "%s: refused pickle %s '%s %s' (not a state-dict type)", m->name, op_name(m->op), a,
                       b);
    }
    val *v = mk(m, V_GLOBAL);
    if (v) v->u.i = g;
    return push(m, v);
}

/* GLOBAL: "module\nname\n", printable ASCII */
static int read_line(machine *m, const uint8_t **s, size_t *n)
{
    size_t i = m->pos;
    while (i < m->len && m->p[i] != '\n') {
        if (m->p[i] < 0x20 || m->p[i] >= 0x7f || i - m->pos >= MAX_STR)
            return fail(m, "malformed pickle: bad name in GLOBAL");
        i++;
    }
    if (i == m->len) return fail(m, "truncated pickle in GLOBAL");
    *s = m->p + m->pos;
    *n = i - m->pos;
    m->pos = i + 1;
    return SPO_OK;
}

static int is_int(const val *v, int64_t lo) { return v->k == V_INT && v->u.i >= lo; }

/* BINPERSID: ('storage', <Storage class>, key, location, numel) */
static int persistent(machine *m)
{
    int rc = need_stack(m, 1);
    if (rc) return rc;
    val *pid = m->stack[m->sp - 1];
    if (pid->k != V_TUPLE || pid->u.seq.n != 5 || !str_eq(pid->u.seq.v[0], "storage"))
        return fail(m, "refused persistent id (%s, not a ('storage', ...) tuple)", kind_name[pid->k]);
    val **a = pid->u.seq.v;
    if (a[1]->k != V_GLOBAL || allowed[a[1]->u.i].what != G_STORAGE)
        return fail(m, "refused persistent id: storage type is %s, not a torch storage class",
                    a[1]->k == V_GLOBAL ? allowed[a[1]->u.i].name : kind_name[a[1]->k]);
    if (a[2]->k != V_STR || a[2]->u.str.n == 0 || a[2]->u.str.n > 64)
        return fail(m, "refused persistent id: bad storage key");
    for (size_t i = 0; i < a[2]->u.str.n; i++) {
        uint8_t c = a[2]->u.str.s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'))
            return fail(m, "refused persistent id: bad storage key");
    }
    if (a[3]->k != V_STR || !is_int(a[4], 0)) return fail(m, "refused persistent id: bad location or size");
    val *v = mk(m, V_STORAGE);
    if (!v) return oom(m);
    v->u.st.dt = allowed[a[1]->u.i].dt;
    v->u.st.key = a[2];
    v->u.st.numel = a[4]->u.i;
    m->stack[m->sp - 1] = v;
    return SPO_OK;
}

/* (storage, offset, size, stride) -> tensor record, bounds checked */
static int rebuild_tensor(machine *m, val **a, val **out)
{
    if (a[0]->k != V_STORAGE) return fail(m, "_rebuild_tensor: storage is %s", kind_name[a[0]->k]);
    if (!is_int(a[1], 0)) return fail(m, "_rebuild_tensor: bad storage offset");
    if (a[2]->k != V_TUPLE || a[3]->k != V_TUPLE || a[2]->u.seq.n != a[3]->u.seq.n || a[2]->u.seq.n > SPO_PT_MAXDIM)
        return fail(m, "_rebuild_tensor: bad size or stride");
    tensor_rec *t = calloc(1, sizeof *t);
    val *v = mk(m, V_TENSOR);
    if (!t || !v) return free(t), oom(m);
    v->u.t = t;
    t->storage = a[0];
    t->off = a[1]->u.i;
    t->ndim = (int)a[2]->u.seq.n;
    int64_t numel = 1, last = t->off; /* last: index of the last element */
    const int64_t lim = INT64_C(1) << 62;
    for (int i = 0; i < t->ndim; i++) {
        val *s = a[2]->u.seq.v[i], *d = a[3]->u.seq.v[i];
        if (!is_int(s, 0) || !is_int(d, 0) || s->u.i > lim || d->u.i > lim)
            return fail(m, "_rebuild_tensor: bad size or stride");
        t->shape[i] = s->u.i;
        t->stride[i] = d->u.i;
        if (s->u.i && numel > lim / s->u.i) return fail(m, "_rebuild_tensor: size too large");
        numel *= s->u.i;
    }
    t->numel = numel;
    for (int i = 0; i < t->ndim && numel; i++) {
        int64_t span = t->shape[i] - 1;
        if (span && t->stride[i] > (lim - last) / span) return fail(m, "_rebuild_tensor: strides out of range");
        last += span * t->stride[i];
    }
    int64_t sn = a[0]->u.st.numel;
    if (numel ? last >= sn : t->off > sn)
        return fail(m, "_rebuild_tensor: elements outside the storage (offset %lld, storage of %lld)",
                    (long long)t->off, (long long)sn);
    *out = v;
    return SPO_OK;
}

static int reduce(machine *m)
{
    int rc = need_stack(m, 2);
    if (rc) return rc;
    val *f = m->stack[m->sp - 2], *args = m->stack[m->sp - 1];
    if (f->k != V_GLOBAL || allowed[f->u.i].what == G_STORAGE)
        return fail(m, "refused pickle REDUCE on %s",
                    f->k == V_GLOBAL ? allowed[f->u.i].name : kind_name[f->k]);
    if (args->k != V_TUPLE) return fail(m, "malformed pickle: REDUCE arguments are %s", kind_name[args->k]);
    size_t n = args->u.seq.n;
    val **a = args->u.seq.v, *r = NULL;
    switch (allowed[f->u.i].what) {
    case G_ODICT:
        if (n) return fail(m, "refused OrderedDict with arguments");
        if (!(r = mk(m, V_DICT))) return oom(m);
        break;
    case G_REBUILD_V2:
        if (n != 6 && n != 7) return fail(m, "_rebuild_tensor_v2: %zu arguments", n);
        if (a[4]->k != V_BOOL || a[5]->k != V_DICT || (n == 7 && a[6]->k != V_NONE && a[6]->k != V_DICT))
            return fail(m, "_rebuild_tensor_v2: bad requires_grad, hooks or metadata");
        if ((rc = rebuild_tensor(m, a, &r))) return rc;
        break;
    case G_REBUILD:
        if (n != 4) return fail(m, "_rebuild_tensor: %zu arguments", n);
        if ((rc = rebuild_tensor(m, a, &r))) return rc;
        break;
    case G_PARAM: /* (tensor, requires_grad, hooks) */
    case G_PARAM_STATE: /* (tensor, requires_grad, hooks, state) */
        if (n != (allowed[f->u.i].what == G_PARAM ? 3u : 4u))
            return fail(m, "%s: %zu arguments", allowed[f->u.i].name, n);
        if (a[0]->k != V_TENSOR || a[1]->k != V_BOOL || a[2]->k != V_DICT ||
            (n == 4 && a[3]->k != V_DICT && a[3]->k != V_NONE))
            return fail(m, "%s: bad arguments", allowed[f->u.i].name);
        r = a[0];
        break;
    }
    m->sp -= 2;
    return push(m, r);
}

/* SETITEM(S) and APPEND(S): the top n stack items (SETITEM 2, APPEND 1),
 * or with n = 0 every item since the last MARK (popped; a dict takes them
 * as key, value pairs), appended to the container of kind below them. */
static int into_container(machine *m, size_t n, vkind kind, const char *many)
{
    size_t base;
    if (n) {
        int rc = need_stack(m, n + 1);
        if (rc) return rc;
        base = m->sp - n;
    } else {
        if (!m->nmark) return fail(m, "malformed pickle: %s without MARK", many);
        base = m->marks[--m->nmark];
        if (kind == V_DICT && (m->sp - base) % 2) return fail(m, "malformed pickle: odd number of items in %s", many);
        if (base <= fence(m)) return fail(m, "malformed pickle: stack underflow in %s", many);
    }
    val *c = m->stack[base - 1];
    if (c->k != kind) return fail(m, "refused %s on %s", op_name(m->op), kind_name[c->k]);
    for (size_t i = base; i < m->sp; i++)
        if (seq_push(c, m->stack[i])) return oom(m);
    m->sp = base;
    return SPO_OK;
}

static int step(machine *m, int *stop)
{
    m->at = m->pos;
    m->op = m->p[m->pos++];
    size_t w = opcodes[m->op].arg;
    int rc = need_bytes(m, w);
    if (rc) return rc;
    const uint64_t a = rd_le(m->p + m->pos, (int)w); /* the opcode's argument */
    m->pos += w;
    const uint8_t *q = m->p + m->pos;
    val *v;
    switch (m->op) {
    case 0x80: /* PROTO */
        if (a > 5) return fail(m, "unsupported pickle protocol %d", (int)a);
        return SPO_OK;
    case 0x95: /* FRAME: a length hint only */
        if (a > m->len - m->pos) return fail(m, "truncated pickle in FRAME");
        return SPO_OK;
    case '}': return push(m, mk(m, V_DICT));
    case ']': return push(m, mk(m, V_LIST));
    case ')': return push(m, mk(m, V_TUPLE));
    case '(':
        if (m->nmark == MAX_MARKS) return fail(m, "refused pickle: MARKs nested deeper than %d", MAX_MARKS);
        m->marks[m->nmark++] = m->sp;
        return SPO_OK;
    case 't':
        if (!(v = mk(m, V_TUPLE))) return oom(m);
        if ((rc = pop_mark_into(m, v))) return rc;
        return push(m, v);
    case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
        size_t k = (size_t)(m->op - 0x84);
        if ((rc = need_stack(m, k))) return rc;
        if (!(v = mk(m, V_TUPLE))) return oom(m);
        for (size_t i = m->sp - k; i < m->sp; i++)
            if (seq_push(v, m->stack[i])) return oom(m);
        m->sp -= k;
        return push(m, v);
    }
    case 's': return into_container(m, 2, V_DICT, "SETITEMS"); /* SETITEM */
    case 'u': return into_container(m, 0, V_DICT, "SETITEMS");
    case 'a': return into_container(m, 1, V_LIST, "APPENDS"); /* APPEND */
    case 'e': return into_container(m, 0, V_LIST, "APPENDS");
    case 'q': case 'r': return put_memo(m, a); /* BINPUT, LONG_BINPUT */
    case 0x94: return put_memo(m, m->memo_used);
    case 'h': case 'j': return get_memo(m, a); /* BINGET, LONG_BINGET */
    case 'J': return push_int(m, V_INT, (int32_t)(uint32_t)a);
    case 'K': case 'M': return push_int(m, V_INT, (int64_t)a);
    case 0x8a: { /* LONG1: n bytes, little-endian two's complement */
        if ((rc = need_bytes(m, 1))) return rc;
        int n = q[0];
        if (n > 8) return fail(m, "refused LONG1 of %d bytes (integer too large)", n);
        if ((rc = need_bytes(m, 1 + (size_t)n))) return rc;
        uint64_t u = rd_le(q + 1, n);
        if (n && n < 8 && (q[n] & 0x80)) u |= ~UINT64_C(0) << (8 * n); /* sign-extend */
        m->pos += 1 + (size_t)n;
        int64_t i;
        memcpy(&i, &u, sizeof i);
        return push_int(m, V_INT, i);
    }
    case 'G': {
        if ((rc = need_bytes(m, 8))) return rc;
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = u << 8 | q[i]; /* big-endian */
        m->pos += 8;
        if (!(v = mk(m, V_FLOAT))) return oom(m);
        memcpy(&v->u.f, &u, sizeof u);
        return push(m, v);
    }
    case 0x88: return push_int(m, V_BOOL, 1);
    case 0x89: return push_int(m, V_BOOL, 0);
    case 'N': return push(m, mk(m, V_NONE));
    case 'X': case 0x8c: case 'U': case 0x8d: return push_str(m, a);
    case 'T':
        if ((int32_t)(uint32_t)a < 0) return fail(m, "malformed pickle: negative BINSTRING length");
        return push_str(m, a);
    case 'c': {
        const uint8_t *mod, *name;
        size_t nm, nn;
        if ((rc = read_line(m, &mod, &nm)) || (rc = read_line(m, &name, &nn))) return rc;
        return push_global(m, mod, nm, name, nn);
    }
    case 0x93: {
        if ((rc = need_stack(m, 2))) return rc;
        val *mod = m->stack[m->sp - 2], *name = m->stack[m->sp - 1];
        if (mod->k != V_STR || name->k != V_STR) return fail(m, "malformed pickle: STACK_GLOBAL of non-strings");
        m->sp -= 2;
        return push_global(m, mod->u.str.s, mod->u.str.n, name->u.str.s, name->u.str.n);
    }
    case 'R': return reduce(m);
    case 'b': {
        if ((rc = need_stack(m, 2))) return rc;
        val *st = m->stack[m->sp - 1], *obj = m->stack[m->sp - 2];
        if (obj->k != V_DICT) return fail(m, "refused pickle BUILD on %s", kind_name[obj->k]);
        if (st->k != V_DICT && st->k != V_NONE) return fail(m, "refused pickle BUILD with %s state", kind_name[st->k]);
        m->sp -= 1; /* the state (torch's `_metadata`) is ignored */
        return SPO_OK;
    }
    case 'Q': return persistent(m);
    case '.':
        if ((rc = need_stack(m, 1))) return rc;
        *stop = 1;
        return SPO_OK;
    default: {
        const char *s = op_name(m->op);
        if (s) return fail(m, "refused pickle opcode %s (0x%02x)", s, m->op);
        return fail(m, "refused unknown pickle opcode 0x%02x", m->op);
    }
    }
}

/* ---- the result ---------------------------------------------------------- */
static int utf8_ok(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t k = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 9;
        if (!c || k == 9 || (k == 1 && c < 0xc2) || (c > 0xf4) || n - i - 1 < k) return 0;
        uint32_t cp = k ? c & (0x3f >> k) : c;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += k + 1;
    }
    return 1;
}

static char *dup_str(const val *v)
{
    char *s = malloc(v->u.str.n + 1);
    if (s) memcpy(s, v->u.str.s, v->u.str.n), s[v->u.str.n] = 0;
    return s;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const spo_pkl_tensor *const *)a)->name, (*(const spo_pkl_tensor *const *)b)->name);
}

static int all_tensors(const val *d)
{
    for (size_t i = 1; i < d->u.seq.n; i += 2)
        if (d->u.seq.v[i]->k != V_TENSOR) return 0;
    return 1;
}

static int collect(machine *m, const val *top, spo_pkl_dict *out)
{
    const char *f = m->name;
    if (top->k != V_DICT) return spo_err(SPO_EINVAL, "%s: not a state dict (data.pkl holds %s)", f, kind_name[top->k]);
    const val *d = top;
    if (!all_tensors(d))
        for (size_t i = 0; i < top->u.seq.n; i += 2)
            if (str_eq(top->u.seq.v[i], "state_dict") && top->u.seq.v[i + 1]->k == V_DICT) d = top->u.seq.v[i + 1];
    size_t n = d->u.seq.n / 2;
    if (n > 10000000) return spo_err(SPO_EINVAL, "%s: too many tensors (%zu)", f, n);
    out->t = calloc(n ? n : 1, sizeof *out->t);
    if (!out->t) return oom(m);
    for (size_t i = 0; i < n; i++) {
        const val *k = d->u.seq.v[2 * i], *v = d->u.seq.v[2 * i + 1];
        char shown[128];
        if (k->k != V_STR) return spo_err(SPO_EINVAL, "%s: not a state dict (a key is %s)", f, kind_name[k->k]);
        show(shown, sizeof shown, k->u.str.s, k->u.str.n);
        if (v->k != V_TENSOR)
            return spo_err(SPO_EINVAL, "%s: not a state dict ('%s' is %s, not a tensor)", f, shown, kind_name[v->k]);
        if (!k->u.str.n || k->u.str.n > 4096 || !utf8_ok(k->u.str.s, k->u.str.n))
            return spo_err(SPO_EINVAL, "%s: bad tensor name '%s'", f, shown);
        const tensor_rec *t = v->u.t;
        spo_pkl_tensor *o = &out->t[out->n++];
        o->name = dup_str(k);
        o->key = dup_str(t->storage->u.st.key);
        if (!o->name || !o->key) return oom(m);
        o->dtype = t->storage->u.st.dt;
        o->storage_numel = t->storage->u.st.numel;
        o->ndim = t->ndim;
        memcpy(o->shape, t->shape, sizeof o->shape);
        memcpy(o->stride, t->stride, sizeof o->stride);
        o->offset = t->off;
        o->numel = t->numel;
    }
    if (n > 1) {
        spo_pkl_tensor **s = malloc(n * sizeof *s);
        if (!s) return oom(m);
        for (size_t i = 0; i < n; i++) s[i] = &out->t[i];
        qsort(s, n, sizeof *s, cmp_name);
        for (size_t i = 1; i < n; i++)
            if (!strcmp(s[i - 1]->name, s[i]->name)) {
                char shown[128];
                show(shown, sizeof shown, (const uint8_t *)s[i]->name, strlen(s[i]->name));
                free(s);
                return spo_err(SPO_EINVAL, "%s: duplicate tensor name '%s'", f, shown);
            }
        free(s);
    }
    return SPO_OK;
}

int spo_unpickle_state_dict(const uint8_t *buf, size_t len, const char *name, spo_pkl_dict *out)
{
    machine m = {.p = buf, .len = len, .name = name ? name : "pickle"};
    memset(out, 0, sizeof *out);
    int rc = SPO_OK, stop = 0;
    while (!rc && !stop) {
        if (m.pos >= m.len) {
            m.at = m.pos;
            rc = fail(&m, "truncated pickle (no STOP)");
            break;
        }
        rc = step(&m, &stop);
    }
    if (!rc) rc = collect(&m, m.stack[m.sp - 1], out);
    if (rc) spo_pkl_dict_free(out);
    free_all(m.all);
    free(m.stack);
    free(m.memo);
    return rc;
}

void spo_pkl_dict_free(spo_pkl_dict *d)
{
    if (!d) return;
    for (int i = 0; i < d->n; i++) free(d->t[i].name), free(d->t[i].key);
    free(d->t);
    d->t = NULL;
    d->n = 0;
}

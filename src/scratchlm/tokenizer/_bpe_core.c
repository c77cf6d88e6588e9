/*
 * scratchlm.tokenizer._bpe_core: the BPE merge-learning loop in C.
 *
 * A line-for-line port of scratchlm.tokenizer.bpe.learn_merges, giving exactly the same merges:
 *   - words are int32 id arrays (initial ids are byte values), merged in place;
 *   - pair counts (int64) live in an open-addressing hash map keyed by (uint64)a << 32 | b;
 *   - each pair keeps a growable array of indices of the words that may contain it (stale entries
 *     are allowed and skipped; a per-word stamp dedupes them within one merge);
 *   - a binary max-heap of (count, a, b) with lazy invalidation picks the next merge: highest count,
 *     then smallest (a, b). A popped entry whose count is out of date is pushed back with the
 *     current count when that is > 0.
 *   - `new_token(a, b)` (a Python callable) is called once per merge and returns the merged id.
 *
 * learn_merges(words: list[bytes], freqs: list[int], num_merges: int,
 *              new_token: Callable[[int, int], int], min_frequency: int = 2) -> list[tuple[int, int]]
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#define EMPTY_KEY UINT64_MAX /* ids are < 2**31, so no real key has all bits set */

/* ------------------------------------------------------------------------------------------------ */
/* Pairs: hash map (a, b) -> index into a dense array of pair records.                               */

typedef struct {
    int64_t count;
    int32_t a, b;
    int32_t *where; /* indices of words that may contain the pair; may hold stale entries */
    Py_ssize_t nwhere, capwhere;
    uint32_t touched; /* merge stamp: already queued for a heap push in this merge */
} Pair;

typedef struct {
    uint64_t *keys;
    int32_t *vals;
    size_t mask; /* capacity - 1; capacity is a power of two */
    Pair *pairs;
    Py_ssize_t npairs, cappairs;
} PairMap;

static inline uint64_t
pair_key(int32_t a, int32_t b)
{
    return ((uint64_t)(uint32_t)a << 32) | (uint64_t)(uint32_t)b;
}

static inline uint64_t
mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static int
pairmap_init(PairMap *m, size_t cap)
{
    size_t i;
    memset(m, 0, sizeof(*m));
    m->keys = PyMem_Malloc(cap * sizeof(uint64_t));
    m->vals = PyMem_Malloc(cap * sizeof(int32_t));
    if (m->keys == NULL || m->vals == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < cap; i++)
        m->keys[i] = EMPTY_KEY;
    m->mask = cap - 1;
    return 0;
}

static void
pairmap_free(PairMap *m)
{
    Py_ssize_t i;
    if (m->pairs != NULL) {
        for (i = 0; i < m->npairs; i++)
            PyMem_Free(m->pairs[i].where);
    }
    PyMem_Free(m->pairs);
    PyMem_Free(m->keys);
    PyMem_Free(m->vals);
    memset(m, 0, sizeof(*m));
}

static int
pairmap_grow(PairMap *m)
{
    size_t oldcap = m->mask + 1, newcap = oldcap * 2, i, j, newmask = newcap - 1;
    uint64_t *keys;
    int32_t *vals;
    if (newcap > ((size_t)PY_SSIZE_T_MAX / sizeof(uint64_t))) {
        PyErr_NoMemory();
        return -1;
    }
    keys = PyMem_Malloc(newcap * sizeof(uint64_t));
    vals = PyMem_Malloc(newcap * sizeof(int32_t));
    if (keys == NULL || vals == NULL) {
        PyMem_Free(keys);
        PyMem_Free(vals);
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < newcap; i++)
        keys[i] = EMPTY_KEY;
    for (i = 0; i < oldcap; i++) {
        uint64_t k = m->keys[i];
        if (k == EMPTY_KEY)
            continue;
        j = (size_t)mix64(k) & newmask;
        while (keys[j] != EMPTY_KEY)
            j = (j + 1) & newmask;
        keys[j] = k;
        vals[j] = m->vals[i];
    }
    PyMem_Free(m->keys);
    PyMem_Free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->mask = newmask;
    return 0;
}

/* Index of pair (a, b), inserting it with count 0 if absent. -1 with an exception set on failure.
 * Inserting may move m->pairs: do not hold Pair pointers across this call. */
static Py_ssize_t
pairmap_get_or_insert(PairMap *m, int32_t a, int32_t b)
{
    uint64_t key = pair_key(a, b);
    size_t j = (size_t)mix64(key) & m->mask;
    Pair *p;
    while (m->keys[j] != EMPTY_KEY) {
        if (m->keys[j] == key)
            return m->vals[j];
        j = (j + 1) & m->mask;
    }
    /* Not found: insert. Keep the load factor at most 1/2. */
    if ((size_t)(m->npairs + 1) * 2 > m->mask + 1) {
        if (pairmap_grow(m) < 0)
            return -1;
        j = (size_t)mix64(key) & m->mask;
        while (m->keys[j] != EMPTY_KEY)
            j = (j + 1) & m->mask;
    }
    if (m->npairs >= INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too many distinct pairs");
        return -1;
    }
    if (m->npairs == m->cappairs) {
        Py_ssize_t newcap = m->cappairs ? m->cappairs * 2 : 1024;
        Pair *np;
        if ((size_t)newcap > (size_t)PY_SSIZE_T_MAX / sizeof(Pair)) {
            PyErr_NoMemory();
            return -1;
        }
        np = PyMem_Realloc(m->pairs, (size_t)newcap * sizeof(Pair));
        if (np == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        m->pairs = np;
        m->cappairs = newcap;
    }
    p = &m->pairs[m->npairs];
    p->count = 0;
    p->a = a;
    p->b = b;
    p->where = NULL;
    p->nwhere = 0;
    p->capwhere = 0;
    p->touched = 0;
    m->keys[j] = key;
    m->vals[j] = (int32_t)m->npairs;
    return m->npairs++;
}

/* Record that word w may contain pair p (skips an immediate repeat of the same word). */
static int
pair_add_word(Pair *p, int32_t w)
{
    if (p->nwhere > 0 && p->where[p->nwhere - 1] == w)
        return 0;
    if (p->nwhere == p->capwhere) {
        Py_ssize_t newcap = p->capwhere ? p->capwhere * 2 : 4;
        int32_t *nw;
        if ((size_t)newcap > (size_t)PY_SSIZE_T_MAX / sizeof(int32_t)) {
            PyErr_NoMemory();
            return -1;
        }
        nw = PyMem_Realloc(p->where, (size_t)newcap * sizeof(int32_t));
        if (nw == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        p->where = nw;
        p->capwhere = newcap;
    }
    p->where[p->nwhere++] = w;
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Max-heap of (count, a, b): higher count first, then smaller a, then smaller b.                   */

typedef struct {
    int64_t count;
    int32_t a, b;
    int32_t idx; /* pair index, to skip a hash lookup on pop */
} HeapEntry;

typedef struct {
    HeapEntry *data;
    Py_ssize_t n, cap;
} Heap;

static inline int
heap_before(const HeapEntry *x, const HeapEntry *y)
{
    if (x->count != y->count)
        return x->count > y->count;
    if (x->a != y->a)
        return x->a < y->a;
    return x->b < y->b;
}

static void
heap_sift_down(Heap *h, Py_ssize_t i)
{
    HeapEntry e = h->data[i];
    Py_ssize_t n = h->n;
    for (;;) {
        Py_ssize_t l = 2 * i + 1, best;
        if (l >= n)
            break;
        best = l;
        if (l + 1 < n && heap_before(&h->data[l + 1], &h->data[l]))
            best = l + 1;
        if (!heap_before(&h->data[best], &e))
            break;
        h->data[i] = h->data[best];
        i = best;
    }
    h->data[i] = e;
}

static int
heap_push(Heap *h, int64_t count, int32_t a, int32_t b, int32_t idx)
{
    HeapEntry e;
    Py_ssize_t i;
    if (h->n == h->cap) {
        Py_ssize_t newcap = h->cap ? h->cap * 2 : 1024;
        HeapEntry *nd;
        if ((size_t)newcap > (size_t)PY_SSIZE_T_MAX / sizeof(HeapEntry)) {
            PyErr_NoMemory();
            return -1;
        }
        nd = PyMem_Realloc(h->data, (size_t)newcap * sizeof(HeapEntry));
        if (nd == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        h->data = nd;
        h->cap = newcap;
    }
    e.count = count;
    e.a = a;
    e.b = b;
    e.idx = idx;
    i = h->n++;
    while (i > 0) {
        Py_ssize_t parent = (i - 1) / 2;
        if (!heap_before(&e, &h->data[parent]))
            break;
        h->data[i] = h->data[parent];
        i = parent;
    }
    h->data[i] = e;
    return 0;
}

static HeapEntry
heap_pop(Heap *h)
{
    HeapEntry top = h->data[0];
    h->n--;
    if (h->n > 0) {
        h->data[0] = h->data[h->n];
        heap_sift_down(h, 0);
    }
    return top;
}

/* ------------------------------------------------------------------------------------------------ */

/* Add `delta` to the count of every adjacent pair of s[0..n). */
static int
add_pairs(PairMap *m, const int32_t *s, Py_ssize_t n, int64_t delta)
{
    Py_ssize_t i;
    for (i = 0; i + 1 < n; i++) {
        Py_ssize_t idx = pairmap_get_or_insert(m, s[i], s[i + 1]);
        if (idx < 0)
            return -1;
        m->pairs[idx].count += delta;
    }
    return 0;
}

PyDoc_STRVAR(learn_merges_doc,
"learn_merges(words, freqs, num_merges, new_token, min_frequency=2)\n"
"--\n"
"\n"
"Learn up to num_merges BPE merges over unique words (list of bytes) and their counts (list of\n"
"int). Initial ids are byte values; new_token(a, b) is called once per merge and returns the id of\n"
"the merged token. Words shorter than 2 bytes or with a count <= 0 are ignored. Returns the merged\n"
"pairs as a list of (a, b) tuples, exactly as scratchlm.tokenizer.bpe.learn_merges does.");

static PyObject *
learn_merges(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"words", "freqs", "num_merges", "new_token", "min_frequency", NULL};
    PyObject *words_obj, *freqs_obj, *new_token;
    Py_ssize_t num_merges;
    long long min_frequency = 2;

    PyObject *words_fast = NULL, *freqs_fast = NULL, *result = NULL;
    Py_ssize_t n_in, i, nwords = 0, total_len = 0, w;
    int64_t total_pairs = 0;

    /* Words, flattened. */
    int32_t *ids = NULL;
    Py_ssize_t *woff = NULL, *wlen = NULL;
    int64_t *wfreq = NULL;
    uint32_t *wstamp = NULL;

    PairMap map;
    Heap heap = {NULL, 0, 0};
    int32_t *merges = NULL; /* 2 ids per merge */
    Py_ssize_t nmerges = 0, capmerges = 0;
    int32_t *touched = NULL;
    Py_ssize_t ntouched = 0, captouched = 0;
    int32_t *detached = NULL;
    uint32_t stamp = 0;

    memset(&map, 0, sizeof(map));

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOnO|L:learn_merges", kwlist, &words_obj,
                                     &freqs_obj, &num_merges, &new_token, &min_frequency))
        return NULL;
    if (!PyCallable_Check(new_token)) {
        PyErr_SetString(PyExc_TypeError, "new_token must be callable");
        return NULL;
    }
    words_fast = PySequence_Fast(words_obj, "words must be a sequence of bytes");
    if (words_fast == NULL)
        goto done;
    freqs_fast = PySequence_Fast(freqs_obj, "freqs must be a sequence of int");
    if (freqs_fast == NULL)
        goto done;
    n_in = PySequence_Fast_GET_SIZE(words_fast);
    if (PySequence_Fast_GET_SIZE(freqs_fast) != n_in) {
        PyErr_SetString(PyExc_ValueError, "words and freqs must have the same length");
        goto done;
    }

    /* Pass 1: validate, pick the words that can hold a pair, size the buffers. */
    wfreq = PyMem_Malloc((size_t)(n_in > 0 ? n_in : 1) * sizeof(int64_t));
    if (wfreq == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (i = 0; i < n_in; i++) {
        PyObject *word = PySequence_Fast_GET_ITEM(words_fast, i);
        PyObject *freq = PySequence_Fast_GET_ITEM(freqs_fast, i);
        int overflow = 0;
        long long f;
        Py_ssize_t len;
        if (!PyBytes_Check(word)) {
            PyErr_Format(PyExc_TypeError, "words must be bytes, not %.200s", Py_TYPE(word)->tp_name);
            goto done;
        }
        f = PyLong_AsLongLongAndOverflow(freq, &overflow);
        if (f == -1 && PyErr_Occurred())
            goto done;
        if (overflow > 0) {
            PyErr_SetString(PyExc_OverflowError, "word count does not fit in 64 bits");
            goto done;
        }
        len = PyBytes_GET_SIZE(word);
        if (overflow < 0 || f <= 0 || len < 2) {
            wfreq[i] = 0; /* ignored */
            continue;
        }
        wfreq[i] = (int64_t)f;
        /* Every pair count is at most sum(freq * (len - 1)): keep that within int64. */
        {
            int64_t contrib;
            if (__builtin_mul_overflow((int64_t)f, (int64_t)(len - 1), &contrib) ||
                __builtin_add_overflow(total_pairs, contrib, &total_pairs)) {
                PyErr_SetString(PyExc_OverflowError, "total pair count does not fit in 64 bits");
                goto done;
            }
        }
        nwords++;
        total_len += len;
    }
    if (nwords > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too many words");
        goto done;
    }

    ids = PyMem_Malloc((size_t)(total_len > 0 ? total_len : 1) * sizeof(int32_t));
    woff = PyMem_Malloc((size_t)(nwords > 0 ? nwords : 1) * sizeof(Py_ssize_t));
    wlen = PyMem_Malloc((size_t)(nwords > 0 ? nwords : 1) * sizeof(Py_ssize_t));
    wstamp = PyMem_Calloc((size_t)(nwords > 0 ? nwords : 1), sizeof(uint32_t));
    if (ids == NULL || woff == NULL || wlen == NULL || wstamp == NULL) {
        PyErr_NoMemory();
        goto done;
    }

    /* Pass 2: copy the kept words as id arrays; compact their counts to the front of wfreq. */
    {
        Py_ssize_t pos = 0, k = 0;
        for (i = 0; i < n_in; i++) {
            PyObject *word;
            const unsigned char *bytes;
            Py_ssize_t len, j;
            if (wfreq[i] <= 0)
                continue;
            word = PySequence_Fast_GET_ITEM(words_fast, i);
            bytes = (const unsigned char *)PyBytes_AS_STRING(word);
            len = PyBytes_GET_SIZE(word);
            woff[k] = pos;
            wlen[k] = len;
            wfreq[k] = wfreq[i];
            for (j = 0; j < len; j++)
                ids[pos + j] = (int32_t)bytes[j];
            pos += len;
            k++;
        }
    }

    /* Initial pair counts and word indices. */
    {
        size_t cap = 1024;
        while (cap < (size_t)total_len && cap < ((size_t)1 << 22))
            cap *= 2;
        if (pairmap_init(&map, cap) < 0)
            goto done;
    }
    for (w = 0; w < nwords; w++) {
        const int32_t *s = ids + woff[w];
        Py_ssize_t n = wlen[w];
        for (i = 0; i + 1 < n; i++) {
            Py_ssize_t idx = pairmap_get_or_insert(&map, s[i], s[i + 1]);
            if (idx < 0)
                goto done;
            map.pairs[idx].count += wfreq[w];
            if (pair_add_word(&map.pairs[idx], (int32_t)w) < 0)
                goto done;
        }
    }

    /* Heap of every pair, heapified. */
    if (map.npairs > 0) {
        heap.cap = map.npairs + 1024;
        heap.data = PyMem_Malloc((size_t)heap.cap * sizeof(HeapEntry));
        if (heap.data == NULL) {
            heap.cap = 0;
            PyErr_NoMemory();
            goto done;
        }
        for (i = 0; i < map.npairs; i++) {
            heap.data[i].count = map.pairs[i].count;
            heap.data[i].a = map.pairs[i].a;
            heap.data[i].b = map.pairs[i].b;
            heap.data[i].idx = (int32_t)i;
        }
        heap.n = map.npairs;
        for (i = heap.n / 2 - 1; i >= 0; i--)
            heap_sift_down(&heap, i);
    }

    while (heap.n > 0 && nmerges < num_merges) {
        HeapEntry top = heap_pop(&heap);
        Pair *pp = &map.pairs[top.idx];
        int64_t current = pp->count;
        int32_t a = top.a, b = top.b, new_id, pidx = top.idx;
        Py_ssize_t ndetached, k;
        PyObject *ret;
        long new_id_long;

        if (current != top.count) {
            if (current > 0 && heap_push(&heap, current, a, b, pidx) < 0)
                goto done;
            continue;
        }
        if (current < min_frequency)
            break;

        /* Assign the merged id (this also drives the caller's progress reporting). */
        ret = PyObject_CallFunction(new_token, "ii", (int)a, (int)b);
        if (ret == NULL)
            goto done;
        new_id_long = PyLong_AsLong(ret);
        Py_DECREF(ret);
        if (new_id_long == -1 && PyErr_Occurred())
            goto done;
        if (new_id_long < 0 || new_id_long > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "new_token returned %ld: ids must be in [0, 2**31)",
                         new_id_long);
            goto done;
        }
        new_id = (int32_t)new_id_long;

        if (nmerges == capmerges) {
            Py_ssize_t newcap = capmerges ? capmerges * 2 : 1024;
            int32_t *nm = PyMem_Realloc(merges, (size_t)newcap * 2 * sizeof(int32_t));
            if (nm == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            merges = nm;
            capmerges = newcap;
        }
        merges[2 * nmerges] = a;
        merges[2 * nmerges + 1] = b;
        nmerges++;
        stamp++;
        ntouched = 0;

        /* Detach the pair's word list (like `where.pop(pair)`): words re-registered under the same
         * pair during this merge go into a fresh list. */
        detached = pp->where;
        ndetached = pp->nwhere;
        pp->where = NULL;
        pp->nwhere = 0;
        pp->capwhere = 0;

        for (k = 0; k < ndetached; k++) {
            int32_t wi = detached[k];
            int32_t *s = ids + woff[wi];
            Py_ssize_t n = wlen[wi], j, out;
            int64_t freq = wfreq[wi];
            int found = 0;

            if (wstamp[wi] == stamp)
                continue; /* already handled in this merge */
            wstamp[wi] = stamp;
            if (n < 2)
                continue;
            for (j = 0; j + 1 < n; j++) {
                if (s[j] == a && s[j + 1] == b) {
                    found = 1;
                    break;
                }
            }
            if (!found)
                continue; /* stale index: the pair left this word in an earlier merge */

            if (add_pairs(&map, s, n, -freq) < 0)
                goto done;
            /* Merge left to right, non-overlapping, in place. */
            for (j = 0, out = 0; j < n;) {
                if (j + 1 < n && s[j] == a && s[j + 1] == b) {
                    s[out++] = new_id;
                    j += 2;
                }
                else {
                    s[out++] = s[j++];
                }
            }
            wlen[wi] = n = out;
            for (j = 0; j + 1 < n; j++) {
                Py_ssize_t idx = pairmap_get_or_insert(&map, s[j], s[j + 1]);
                Pair *q;
                if (idx < 0)
                    goto done;
                q = &map.pairs[idx];
                q->count += freq;
                if (s[j] == new_id || s[j + 1] == new_id) {
                    if (pair_add_word(q, wi) < 0)
                        goto done;
                    if (q->touched != stamp) {
                        q->touched = stamp;
                        if (ntouched == captouched) {
                            Py_ssize_t newcap = captouched ? captouched * 2 : 256;
                            int32_t *nt = PyMem_Realloc(touched, (size_t)newcap * sizeof(int32_t));
                            if (nt == NULL) {
                                PyErr_NoMemory();
                                goto done;
                            }
                            touched = nt;
                            captouched = newcap;
                        }
                        touched[ntouched++] = (int32_t)idx;
                    }
                }
            }
        }
        PyMem_Free(detached);
        detached = NULL;

        map.pairs[pidx].count = 0; /* `counts.pop(pair)` */
        /* Only pairs that contain the new token can have grown: push their fresh counts. */
        for (k = 0; k < ntouched; k++) {
            Pair *q = &map.pairs[touched[k]];
            if (q->count > 0 && heap_push(&heap, q->count, q->a, q->b, touched[k]) < 0)
                goto done;
        }
    }

    result = PyList_New(nmerges);
    if (result == NULL)
        goto done;
    for (i = 0; i < nmerges; i++) {
        PyObject *t = Py_BuildValue("(ii)", (int)merges[2 * i], (int)merges[2 * i + 1]);
        if (t == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, t);
    }

done:
    Py_XDECREF(words_fast);
    Py_XDECREF(freqs_fast);
    PyMem_Free(ids);
    PyMem_Free(woff);
    PyMem_Free(wlen);
    PyMem_Free(wfreq);
    PyMem_Free(wstamp);
    pairmap_free(&map);
    PyMem_Free(heap.data);
    PyMem_Free(merges);
    PyMem_Free(touched);
    PyMem_Free(detached);
    return result;
}

static PyMethodDef bpe_core_methods[] = {
    {"learn_merges", (PyCFunction)(void (*)(void))learn_merges, METH_VARARGS | METH_KEYWORDS,
     learn_merges_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef bpe_core_module = {
    PyModuleDef_HEAD_INIT,
    "scratchlm.tokenizer._bpe_core",
    "C implementation of the BPE merge-learning loop (see scratchlm.tokenizer.bpe.learn_merges).",
    -1,
    bpe_core_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__bpe_core(void)
{
    return PyModule_Create(&bpe_core_module);
}

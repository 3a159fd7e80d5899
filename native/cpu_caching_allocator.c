/*
 * A caching CPU allocator for libtorch, installed in place of its default one (c10's
 * DefaultCPUAllocator, which is posix_memalign and free). Under the recomputing reverse pass a
 * block allocates and frees the same few large buffers (4-35 MB) in a shifting order; glibc keeps
 * the freed ones in its heap, split and merged, and the heap grows 100-200 MB past what is live.
 * Here every buffer of LARGE bytes or more is its own mapping; a freed one is kept, whole, for the
 * next request of (nearly) its size, so a repeating pattern reuses the same pages without a page
 * fault or the kernel zeroing them again. Before a new mapping would take the footprint (live plus
 * cached) past the most that was live at once by more than cache_limit — or by more than that
 * high-water mark itself, where it is the smaller — cached blocks are unmapped, oldest first: the
 * cache spends memory the process has already needed, and little more. When a new buffer would
 * take the footprint past that bound, the cached block that would be unmapped for it is taken over
 * instead (its tail unmapped, or the block grown by mremap): its pages are already resident, so
 * only the growth is faulted in and zeroed by the kernel, not the whole buffer. Mappings
 * of 2 MiB and more ask for transparent huge pages: a fresh one is faulted in 2 MiB at a time, not
 * 4 KiB, which is most of the system time when a step's shapes change with every batch.
 * Smaller buffers go to glibc as before.
 *
 * libtorch ships no C++ headers with the JavaCPP jars, so the allocator object is built to the
 * Itanium C++ ABI by hand: a pointer to a copy of the default allocator's vtable with two slots
 * replaced (allocate, raw_deleter). bt_allocator_install checks every assumption that takes
 * (the vtable the default object points at, the DataPtr layout of an allocation the default makes)
 * and installs nothing when one fails. The Java side checks the libtorch version the slot numbers
 * were read from (nm and readelf on its libc10.so: benchmarks/FINDINGS.md).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* c10::DataPtr: UniqueVoidPtr {data, unique_ptr<void, DeleterFnPtr>} then Device; the unique_ptr's
   two words (context, deleter) in the order the install check finds. */
typedef struct {
    void *data;
    void *word1;
    void *word2;
    int8_t device_type;
    int8_t device_index;
} data_ptr;

typedef void (*deleter_fn)(void *);
typedef data_ptr *(*allocate_fn)(data_ptr *, const void *, size_t);
typedef deleter_fn (*raw_deleter_fn)(const void *);

enum { SLOTS = 6, ALLOCATE_SLOT = 2, IS_SIMPLE_SLOT = 3, RAW_DELETER_SLOT = 4 };
enum { HEADER = 64, ALIGN = 64, MAX_CACHED = 1024 };
/* Down to a quarter MiB: a short batch's per-layer tensors (a few hundred positions) fall below
   1 MiB, and glibc's heap kept them resident past the step on real data; here they are cached and
   bounded with the rest (benchmarks/FINDINGS.md). */
static const size_t LARGE = (size_t)1 << 18;
static const size_t PAGE = 4096;
static const size_t HUGE_PAGE = (size_t)2 << 20;
static const uint64_t MAGIC_SMALL = 0x626c6f6f6d736d6cULL;
static const uint64_t MAGIC_LARGE = 0x626c6f6f6d6c7267ULL;

/* What sits in front of every block this allocator hands out. */
typedef struct {
    uint64_t magic;
    size_t length;   /* the mapping's length (large) or the bytes asked of glibc (small) */
    void *base;      /* what to free or unmap */
    int huge;        /* large: mapped for huge pages */
} header;

typedef struct {
    char *base;
    size_t length;
    uint64_t age;
    int huge;        /* mapped for huge pages: handed only to requests that map them too */
} cached_block;

static const void *vtable[2 + SLOTS];
static const void *const *allocator_object = vtable + 2;
static allocate_fn default_allocate;
static const void *default_allocator;
static deleter_fn default_deleter;
static int deleter_word;     /* 1 or 2: where the deleter sits in a DataPtr */
static int huge_pages = 1;   /* atomic: read outside the lock */
static __thread int small_pages_here;   /* this thread's new mappings on 4 KiB pages all the same */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cached_block cache[MAX_CACHED];
static int cached_count;
static uint64_t clock_ticks;
static size_t cache_limit;   /* bytes the cache may hold above the live high-water mark */
static int caching = 1;      /* 0: every freed block unmapped at once */
static size_t high_water;    /* the most large bytes live at once since the cache was last emptied */
/* stats: [0] large bytes in use, [1] large bytes cached, [2] hits, [3] misses, [4] small bytes in use,
   [5] misses served by taking over a cached block's pages */
static uint64_t stats[6];
/* Buffers the default allocator made when this one could not (raw_deallocate may hand them back). */
enum { MAX_FOREIGN = 4096 };
static void *foreign[MAX_FOREIGN];
static int foreign_count;

/* Whether a new block of length bytes, asked for on this thread, goes on huge pages. */
static int wants_huge(size_t length) {
    return __atomic_load_n(&huge_pages, __ATOMIC_RELAXED) && !small_pages_here && length >= HUGE_PAGE;
}

/* length bytes of address space from prot, started on a 2 MiB boundary (the rest of the reservation unmapped). */
static char *map_aligned(size_t length, int prot) {
    int reserve_only = prot == PROT_NONE ? MAP_NORESERVE : 0;   /* memory is committed by what moves in */
    char *raw = mmap(NULL, length + HUGE_PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS | reserve_only, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    char *start = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (start > raw) munmap(raw, (size_t)(start - raw));
    size_t tail = (size_t)(raw + length + HUGE_PAGE - (start + length));
    if (tail > 0) munmap(start + length, tail);
    return start;
}

/* A fresh mapping of length bytes, started on a 2 MiB boundary with huge pages when `huge`. */
static char *map_block(size_t length, int huge) {
    if (!huge) {
        void *p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    char *start = map_aligned(length, PROT_READ | PROT_WRITE);
    if (start != NULL) madvise(start, length, MADV_HUGEPAGE);
    return start;
}

/*
 * The block of old_length bytes at old as one of length bytes, keeping the pages it has: its tail
 * unmapped, or the mapping moved (page tables only, onto a 2 MiB boundary when huge) and extended.
 * NULL when the kernel will not (old is then unmapped).
 */
static char *resize_block(char *old, size_t old_length, size_t length, int huge) {
    if (length <= old_length) {
        if (length < old_length) munmap(old + length, old_length - length);
        return old;
    }
    void *moved;
    if (huge) {
        char *target = map_aligned(length, PROT_NONE);   /* a place for it; mremap replaces the reservation */
        moved = target == NULL ? MAP_FAILED : mremap(old, old_length, length, MREMAP_MAYMOVE | MREMAP_FIXED, target);
        if (moved == MAP_FAILED && target != NULL) munmap(target, length);
        else if (moved != MAP_FAILED) madvise(moved, length, MADV_HUGEPAGE);
    } else {
        moved = mremap(old, old_length, length, MREMAP_MAYMOVE);
    }
    if (moved != MAP_FAILED) return moved;
    munmap(old, old_length);
    return NULL;
}

/* Evicts the oldest cached block; called with the lock held. */
static void evict_oldest(void) {
    int oldest = 0;
    for (int i = 1; i < cached_count; i++) {
        if (cache[i].age < cache[oldest].age) oldest = i;
    }
    munmap(cache[oldest].base, cache[oldest].length);
    stats[1] -= cache[oldest].length;
    cache[oldest] = cache[--cached_count];
}

/*
 * What the cache may hold above live bytes once at most peak bytes were live at once: cache_limit,
 * or peak where it is smaller, so that a small model's process does not keep a cache many times
 * what its tensors ever needed.
 */
static size_t slack(size_t peak) {
    return cache_limit < peak ? cache_limit : peak;
}

/* Whether live plus cached bytes are past the most they may come to: the live high-water mark, or slack above live. */
static int past_bound(size_t live) {
    size_t bound = live + slack(high_water);
    if (bound < high_water) bound = high_water;
    return live + stats[1] > bound;
}

/* Unmaps cached blocks, oldest first, until live plus cached bytes are within the bound; called with the lock held. */
static void evict_past_bound(size_t live) {
    while (cached_count > 0 && past_bound(live)) evict_oldest();
}

/* Removes cached block i from the cache and returns it; called with the lock held. */
static cached_block take(int i) {
    cached_block b = cache[i];
    stats[1] -= b.length;
    cache[i] = cache[--cached_count];
    return b;
}

/* The smallest cached block of at least length bytes and at most an eighth more, on the pages asked for; -1 when none. */
static int fitting(size_t length, int huge) {
    int best = -1;
    for (int i = 0; i < cached_count; i++) {
        size_t l = cache[i].length;
        if (cache[i].huge == huge && l >= length && l <= length + length / 8 && (best < 0 || l < cache[best].length)) best = i;
    }
    return best;
}

/* The block to take over for a new one of length bytes: the smallest at least as long (nothing to
   fault in), else the longest shorter one (the least); on the pages asked for; -1 when none. */
static int recyclable(size_t length, int huge) {
    int longer = -1, shorter = -1;
    for (int i = 0; i < cached_count; i++) {
        if (cache[i].huge != huge) continue;
        size_t l = cache[i].length;
        if (l >= length && (longer < 0 || l < cache[longer].length)) longer = i;
        if (l < length && (shorter < 0 || l > cache[shorter].length)) shorter = i;
    }
    return longer >= 0 ? longer : shorter;
}

/* A huge block cut at a 2 MiB boundary keeps its huge pages whole. */
static size_t trimmed_length(size_t length, size_t old_length, int huge) {
    size_t keep = huge ? (length + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1) : length;
    return keep < old_length ? keep : old_length;
}

static char *allocate_large(size_t n, size_t *length, int *mapped_huge) {
    size_t need = (n + HEADER + PAGE - 1) & ~(PAGE - 1);
    int huge = wants_huge(need);
    cached_block old = {0};
    pthread_mutex_lock(&lock);
    size_t got = need;
    char *base = NULL;
    int fit = fitting(need, huge);
    if (fit >= 0) {
        cached_block b = take(fit);
        base = b.base;
        got = b.length;
        stats[2]++;
    } else {
        stats[3]++;
        /* Past the bound a cached block would be unmapped to make room: take over its pages instead. */
        int r = past_bound(stats[0] + need) ? recyclable(need, huge) : -1;
        if (r >= 0) {
            old = take(r);
            if (old.length >= need) got = trimmed_length(need, old.length, huge);
            stats[5]++;
        }
        evict_past_bound(stats[0] + got);   /* a new mapping grows the footprint: make room first */
    }
    stats[0] += got;   /* counted before the mapping exists, so racing callers see it */
    if (stats[0] > high_water) high_water = stats[0];
    pthread_mutex_unlock(&lock);
    if (old.base != NULL) base = resize_block(old.base, old.length, got, huge);
    if (base == NULL) base = map_block(got, huge);
    if (base == NULL) {
        pthread_mutex_lock(&lock);
        stats[0] -= got;
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    *length = got;
    *mapped_huge = huge;
    return base;
}

/* A freed block moves from live to cached: the footprint stays what it was. */
static void release_large(char *base, size_t length, int huge) {
    pthread_mutex_lock(&lock);
    stats[0] -= length;
    if (!caching) {
        pthread_mutex_unlock(&lock);
        munmap(base, length);
        return;
    }
    if (cached_count == MAX_CACHED) evict_oldest();
    cache[cached_count++] = (cached_block){base, length, ++clock_ticks, huge};
    stats[1] += length;
    pthread_mutex_unlock(&lock);
}

/* Whether data came from the default allocator (this one having failed): forget it if so. */
static int take_foreign(void *data) {
    if (__atomic_load_n(&foreign_count, __ATOMIC_ACQUIRE) == 0) return 0;
    int found = 0;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < foreign_count && !found; i++) {
        if (foreign[i] == data) {
            foreign[i] = foreign[foreign_count - 1];
            __atomic_store_n(&foreign_count, foreign_count - 1, __ATOMIC_RELEASE);
            found = 1;
        }
    }
    pthread_mutex_unlock(&lock);
    return found;
}

/* The deleter of every DataPtr this allocator makes (and what raw_deleter returns). */
static void free_block(void *data) {
    if (data == NULL) return;
    if (take_foreign(data)) {   /* no header in front of it: do not read one */
        default_deleter(data);
        return;
    }
    header *h = (header *)((char *)data - HEADER);
    if (h->magic == MAGIC_LARGE) {
        h->magic = 0;
        release_large(h->base, h->length, h->huge);
    } else if (h->magic == MAGIC_SMALL) {
        h->magic = 0;
        pthread_mutex_lock(&lock);
        stats[4] -= h->length;
        pthread_mutex_unlock(&lock);
        free(h->base);
    }
}

/* Out of memory here: the default allocator either finds some or throws c10's out-of-memory error,
   which unwinds through these C frames to libtorch's caller (built with -fexceptions; no lock is held). */
static data_ptr *allocate_default(data_ptr *out, size_t n) {
    default_allocate(out, default_allocator, n);
    pthread_mutex_lock(&lock);
    if (foreign_count < MAX_FOREIGN) {
        foreign[foreign_count] = out->data;
        __atomic_store_n(&foreign_count, foreign_count + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&lock);
    return out;
}

static char *allocate_small(size_t n, size_t *length) {
    void *p = NULL;
    if (posix_memalign(&p, ALIGN, n + HEADER) != 0) return NULL;
    *length = n + HEADER;
    pthread_mutex_lock(&lock);
    stats[4] += *length;
    pthread_mutex_unlock(&lock);
    return p;
}

/* c10::Allocator::allocate(size_t) const: the DataPtr is returned through the hidden pointer. */
static data_ptr *allocate(data_ptr *out, const void *self, size_t n) {
    (void)self;
    void *data = NULL;   /* n == 0: no memory, as the default gives, with the deleter attached */
    if (n > 0) {
        size_t length;
        int huge = 0;
        char *base = n >= LARGE ? allocate_large(n, &length, &huge) : allocate_small(n, &length);
        if (base == NULL) return allocate_default(out, n);
        header *h = (header *)base;
        *h = (header){n >= LARGE ? MAGIC_LARGE : MAGIC_SMALL, length, base, huge};
        data = base + HEADER;
    }
    out->data = data;
    out->word1 = deleter_word == 1 ? (void *)free_block : data;
    out->word2 = deleter_word == 1 ? data : (void *)free_block;
    out->device_type = 0;
    out->device_index = -1;
    return out;
}

static deleter_fn raw_deleter(const void *self) {
    (void)self;
    return free_block;
}

/*
 * Installs this allocator as libtorch's CPU allocator. default_object: c10::GetCPUAllocator();
 * default_vtable: the address of the symbol `vtable for c10::DefaultCPUAllocator`;
 * is_simple: `c10::Allocator::is_simple_data_ptr`; set: `c10::SetCPUAllocator`. Returns 0 when
 * installed, or which check failed (nothing installed).
 */
int bt_allocator_install(const void *default_object, const void *const *default_vtable, const void *is_simple,
                         void (*set)(const void *, uint8_t), uint64_t limit) {
    const void *const *vptr = *(const void *const *const *)default_object;
    if (vptr != default_vtable + 2) return 1;                 /* not the default allocator */
    if (vptr[IS_SIMPLE_SLOT] != is_simple) return 2;          /* slots not where 2.10 has them */
    default_allocate = (allocate_fn)vptr[ALLOCATE_SLOT];
    default_allocator = default_object;
    default_deleter = ((raw_deleter_fn)vptr[RAW_DELETER_SLOT])(default_object);
    data_ptr probe;
    memset(&probe, 0x5a, sizeof probe);
    default_allocate(&probe, default_object, 64);
    if (probe.data == NULL || probe.device_type != 0 || probe.device_index != -1) return 3;
    if (probe.word1 == (void *)default_deleter && probe.word2 == probe.data) deleter_word = 1;
    else if (probe.word2 == (void *)default_deleter && probe.word1 == probe.data) deleter_word = 2;
    else return 4;                                            /* DataPtr laid out otherwise: leak 64 bytes */
    default_deleter(probe.data);
    memcpy(vtable, default_vtable, sizeof vtable);
    vtable[2 + ALLOCATE_SLOT] = (const void *)allocate;
    vtable[2 + RAW_DELETER_SLOT] = (const void *)raw_deleter;
    cache_limit = limit;
    set(&allocator_object, 1);
    return 0;
}

/* The allocator object libtorch now calls, for comparing with c10::GetCPUAllocator(). */
const void *bt_allocator_object(void) { return &allocator_object; }

/* Sets how far above the live high-water mark the cache may take the footprint; what is over it is unmapped now. */
void bt_allocator_set_limit(uint64_t limit) {
    pthread_mutex_lock(&lock);
    cache_limit = limit;
    evict_past_bound(stats[0]);
    pthread_mutex_unlock(&lock);
}

/* Whether new mappings of 2 MiB or more ask for transparent huge pages (one fault per 2 MiB). */
void bt_allocator_set_huge_pages(int on) {
    __atomic_store_n(&huge_pages, on, __ATOMIC_RELAXED);
}

/* Whether this thread's new mappings stay on 4 KiB pages whatever bt_allocator_set_huge_pages says:
   for a buffer reserved large and written a little at a time, resident only where written. Returns
   the setting it replaces, for the caller to restore. */
int bt_allocator_small_pages_here(int on) {
    int before = small_pages_here;
    small_pages_here = on;
    return before;
}

/* What the cache may hold on top of a live peak of peak bytes (slack); 0 while nothing is cached. */
uint64_t bt_allocator_cache_allowance(uint64_t peak) {
    pthread_mutex_lock(&lock);
    uint64_t allowance = caching ? slack(peak) : 0;
    pthread_mutex_unlock(&lock);
    return allowance;
}

/* Whether freed blocks are kept at all; off, every freed block is unmapped at once. */
void bt_allocator_set_caching(int on) {
    pthread_mutex_lock(&lock);
    caching = on;
    while (!caching && cached_count > 0) evict_oldest();
    pthread_mutex_unlock(&lock);
}

/* Unmaps every cached block and starts a new high-water mark from what is live now. */
void bt_allocator_release_cached(void) {
    pthread_mutex_lock(&lock);
    while (cached_count > 0) evict_oldest();
    high_water = stats[0];
    pthread_mutex_unlock(&lock);
}

/* out[6]: large bytes in use, large bytes cached, cache hits, misses, small bytes in use, misses served by a cached block's pages. */
void bt_allocator_stats(uint64_t *out) {
    pthread_mutex_lock(&lock);
    memcpy(out, stats, sizeof stats);
    pthread_mutex_unlock(&lock);
}

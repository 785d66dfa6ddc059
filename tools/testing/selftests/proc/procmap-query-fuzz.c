// SPDX-License-Identifier: GPL-2.0
/*
 * A seeded, multi-threaded fuzzer for PROCMAP_QUERY on /proc/<pid>/maps.
 *
 * Fuzzer threads issue random ioctls: mostly PROCMAP_QUERY, also other
 * commands and PROCMAP_QUERY's number with another size or direction; random
 * sizes (short, long with a zero or non-zero tail, above a page, huge) and
 * flag words; addresses at and around every VMA boundary of the target, in
 * the writer's arena, unmapped and odd; name and build-ID buffers of sizes 0,
 * 1, small, exact, a page, huge, placed NULL, valid, straddling into a
 * read-only or an unmapped page, read-only, unmapped, kernel; the argument
 * itself placed the same ways. Meanwhile a writer thread keeps changing an
 * arena of this process: mmap, munmap, split, mprotect, mremap (in place and
 * moving), MADV_DONTNEED, PR_SET_VMA_ANON_NAME, mappings of a memfd and of a
 * temp file that it truncates, unlinks and replaces. Its ranges start and end
 * on a sparse random grid of pages; it records every boundary it creates.
 * Variants:
 *   self:   /proc/self/maps, on one shared fd and on fresh fds;
 *   reload: the same while a thread unloads and reloads the Rust module
 *           (skipped when the module cannot be reloaded, e.g. on the host);
 *   exec:   also children that exec themselves and exit, queried through
 *           it all, and fds passed over SCM_RIGHTS to a helper process that
 *           queries them there.
 * Every errno must be one the input allows (allowed()); every answer must be
 * sane (check_answer()), and one that lies inside the arena must start and
 * end at boundaries the writer created (check_arena()). One ioctl in eight is
 * PROCMAP_QUERY_BATCH or PROCMAP_QUERY_GENERATION (one_batch()): a batch
 * lookup has up to 512 addresses (more than a pass of 256), and each address
 * it answers must be covered by the record its answer names.
 *
 * PROCMAP_FUZZ_SEED=<n> (default: from the time) and PROCMAP_FUZZ_SECONDS=<s>
 * per variant (default 8); PROCMAP_FUZZ_UNLOADS=<n>: the reload variant goes
 * on past that time until the module was unloaded n times (allowing a second
 * per unload at most). The seed is printed ("# seed: N"); each thread
 * draws its inputs from its own PRNG derived from it, so rerunning with
 * PROCMAP_FUZZ_SEED=N replays the same input sequence (the answers depend on
 * timing; run under "setarch -R" to replay the addresses as well). A failure
 * prints the seed, the thread, the ioctl number and the input.
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>

#include <linux/procmap_query.h>

#include "kselftest_harness.h"
#include "procmap-query-util.h"

#ifndef PR_SET_VMA
#define PR_SET_VMA		0x53564d41
#define PR_SET_VMA_ANON_NAME	0
#endif

#define PAGE		4096
#define KSIZE		sizeof(struct procmap_query)
#define NAME_MAX_SZ	4096		/* PATH_MAX: the kernel's name buffer */
#define BUILD_ID_MAX	20		/* BUILD_ID_SIZE_MAX */
#define VMA_FLAGS	0x0fULL
#define VALID_FLAGS	0x3fULL
#define NFUZZ		3		/* fuzzer threads */
#define NCTX		(NFUZZ + 1)	/* and the helper process */
#define SCR_PAGES	18		/* 6 slots: [rw][ro or none][none] */
#define ARENA_PAGES	512
/* The most addresses of a batch lookup: over a pass's 256, for a second pass. */
#define LOOKUP_MAX	512
#define GRID_PERIOD	16		/* pages; the grid repeats */
#define NINO		64
#define NMSG		4
#define NBND		1024
#define MAPS_BUF	65536
#define TMPFS_MAGIC	0x01021994
#define B(e)		(1ULL << (e))
#define MIN(a, b)	((a) < (b) ? (a) : (b))
#define MAX(a, b)	((a) > (b) ? (a) : (b))

/* Shared with the helper process (MAP_SHARED). */
struct shared {
	atomic_int go, stop, fails, nino, ino_inexact, child;
	atomic_int reloading;		/* the module may be unloaded: ENOTTY */
	atomic_ulong batches, batch_ok;	/* PROCMAP_QUERY_BATCH calls, successes */
	atomic_uint bound[ARENA_PAGES / 32 + 1];	/* boundaries ever made */
	uint64_t ino[NINO];		/* inodes the writer maps */
	unsigned int grid[ARENA_PAGES + 1], ngrid;
	uintptr_t arena;
	char *ro_alias;			/* writable view of the arg's ro pages */
	int self_fd, sock[2];
	unsigned long helper_n, helper_ok;
	char msg[NMSG][768];
};

struct fz {
	struct shared *sh;
	int id;
	uint64_t rng;
	char *scr;			/* this context's scratch pages */
	unsigned long n, ok, arena;	/* ioctls, answers, answers in arena */
	uint32_t last_name;
	int nbnd;
	uint64_t bnd[NBND];		/* the target's VMA boundaries */
	uint64_t baddrs[LOOKUP_MAX];	/* a batch lookup's addresses */
	uint32_t bidx[LOOKUP_MAX];	/* and its answers */
	char img[2 * PAGE];		/* the argument as written */
	char maps[MAPS_BUF];
};

/* Where a buffer is: bytes readable and writable from p (-1: unknown). */
enum { P_OK, P_OK2, P_RO_EDGE, P_NONE_EDGE, P_RO, P_NONE, P_NULL, P_LOW,
	P_KERNEL, P_ARENA, P_KINDS };
static const char * const kind_name[] = { "ok", "ok2", "ro-edge", "none-edge",
	"ro", "none", "null", "low", "kernel", "arena" };
struct where {
	uint64_t p;
	long rd, wr;
	int kind;
};

struct in {
	unsigned long cmd;
	uint64_t usize;
	struct procmap_query k;		/* what the kernel reads, zero-extended */
	struct where arg, name, bid;
	bool tail_nz, live, stable;
};

static uint64_t fuzz_seed;
static double fuzz_secs = 8;
static unsigned long fuzz_unloads;

static uint64_t next(struct fz *f)	/* splitmix64 */
{
	uint64_t z = (f->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd(struct fz *f, uint64_t n)
{
	return next(f) % n;
}

static void mark(struct shared *sh, uintptr_t addr)
{
	uintptr_t i = (addr - sh->arena) / PAGE;

	if (addr >= sh->arena && i <= ARENA_PAGES)
		atomic_fetch_or(&sh->bound[i / 32], 1U << (i % 32));
}

static bool marked(struct shared *sh, uintptr_t addr)
{
	uintptr_t i = (addr - sh->arena) / PAGE;

	return atomic_load(&sh->bound[i / 32]) >> (i % 32) & 1;
}

static void fail(struct fz *f, const struct in *in, int err, uint64_t allowed,
		 const struct procmap_query *a, const char *why)
{
	struct shared *sh = f->sh;
	int i = atomic_fetch_add(&sh->fails, 1);
	int n;

	if (i >= NMSG)
		return;
	n = snprintf(sh->msg[i], sizeof(sh->msg[i]),
		"seed %llu thread %d%s ioctl #%lu: %s: cmd %#lx size %llu flags %#llx addr %#llx arg %s+%#lx (rd %ld wr %ld) name %s/%u (wr %ld) build-id %s/%u (wr %ld) tail %d stable %d -> errno %d (allowed %#llx)",
		(unsigned long long)fuzz_seed, f->id, f->id == NFUZZ ? " (helper)" : "", f->n, why,
		in->cmd, (unsigned long long)in->usize, (unsigned long long)in->k.query_flags,
		(unsigned long long)in->k.query_addr, kind_name[in->arg.kind],
		(unsigned long)(in->arg.p & (PAGE - 1)), in->arg.rd, in->arg.wr,
		kind_name[in->name.kind], in->k.vma_name_size, in->name.wr,
		kind_name[in->bid.kind], in->k.build_id_size, in->bid.wr,
		in->tail_nz, in->stable, err, (unsigned long long)allowed);
	if (a && n > 0 && n < (int)sizeof(sh->msg[i]))
		snprintf(sh->msg[i] + n, sizeof(sh->msg[i]) - n,
			 "; answer [%#llx, %#llx) flags %#llx page %#llx off %#llx ino %llu dev %u:%u name %u build-id %u",
			 (unsigned long long)a->vma_start, (unsigned long long)a->vma_end,
			 (unsigned long long)a->vma_flags, (unsigned long long)a->vma_page_size,
			 (unsigned long long)a->vma_offset, (unsigned long long)a->inode,
			 a->dev_major, a->dev_minor, a->vma_name_size, a->build_id_size);
}

/*
 * A buffer of @len bytes of kind @kind in slots @s (its RW page followed by
 * a read-only page) and @s + 1 (followed by an unmapped one).
 */
static struct where place(struct fz *f, int s, int kind, uint64_t len, bool arg)
{
	char *rw = f->scr + s * 3 * PAGE, *rw2 = rw + 3 * PAGE;
	long span = len == 0 ? 1 : len < PAGE ? (long)len : PAGE;
	struct where w = { .kind = kind };
	long o = rnd(f, PAGE - span + 1), k = 1 + rnd(f, span);

	if (rnd(f, 2))
		o &= ~7L;
	switch (kind) {
	case P_OK:
		w = (struct where){ ptr_to_u64(rw + o), 2 * PAGE - o, PAGE - o, kind };
		break;
	case P_OK2:
		w = (struct where){ ptr_to_u64(rw2 + o), PAGE - o, PAGE - o, kind };
		break;
	case P_RO_EDGE:
		w = (struct where){ ptr_to_u64(rw + PAGE - k), PAGE + k, k, kind };
		break;
	case P_NONE_EDGE:
		w.p = ptr_to_u64(rw2 + PAGE - k);
		w.rd = w.wr = k;
		break;
	case P_RO:
		o = rnd(f, PAGE);
		w = (struct where){ ptr_to_u64(rw + PAGE + o), PAGE - o, 0, kind };
		break;
	case P_NONE:
		w.p = ptr_to_u64(rw2 + PAGE + rnd(f, PAGE));
		break;
	case P_LOW:
		w.p = 1 + rnd(f, PAGE - 1);
		break;
	case P_KERNEL:
		w.p = arg ? (unsigned long)-PAGE : 0xffffffff81000000ULL + rnd(f, PAGE);
		break;
	case P_ARENA:	/* not for the argument: its content is unknown */
		w.p = f->sh->arena + rnd(f, ARENA_PAGES * PAGE);
		w.rd = w.wr = -1;
		break;
	}
	return w;
}

/* Writes the first @len bytes of the image at @w, as far as readable. */
static void put(struct fz *f, const struct where *w, long len)
{
	char *p = (char *)(uintptr_t)w->p, *ro = f->scr + PAGE;
	long n = MIN(len, w->rd), direct = MIN(n, w->wr);

	if (direct > 0)
		memcpy(p, f->img, direct);
	if (n > direct)
		memcpy(f->sh->ro_alias + f->id * PAGE + (p + direct - ro),
		       f->img + direct, n - direct);
}

/*
 * The errnos PROCMAP_QUERY can give for an input (fs/proc/task_mmu.c,
 * do_procmap_query(); the Rust module follows it check for check):
 *   EFAULT	the size unreadable; the struct unreadable (copy_struct_from_user);
 *		later, a name, build ID or answer that cannot be written;
 *   E2BIG	size above a page; a non-zero byte past the known struct;
 *   EINVAL	size below query_addr's end; unknown flags; a buffer whose
 *		address and size are not both set or both zero;
 *   ESRCH	the target has no mm (exited, exec'ed, kernel thread);
 *   ENOENT	no matching VMA;
 *   ENAMETOOLONG a name or build ID bigger than its buffer;
 *   ENOMEM	the name buffer's allocation.
 * Not EINTR: only mmap_read_lock_killable() gives it, with a fatal signal
 * pending (nothing here installs a handler: nothing else interrupts), nor
 * EAGAIN (the per-VMA lock's fallback is internal). Any other command is
 * ENOTTY (those the VFS handles itself are never drawn).
 */
static uint64_t allowed(const struct in *in)
{
	const struct procmap_query *k = &in->k;
	uint64_t ksz = MIN(in->usize, KSIZE), m;
	bool any;

	if (in->cmd != PROCMAP_QUERY)
		return B(ENOTTY);
	if (in->arg.rd < 8)
		return B(EFAULT);
	if (in->usize > PAGE)
		return B(E2BIG);
	if (in->usize < offsetof(struct procmap_query, vma_start))
		return B(EINVAL);
	/* The tail is checked before the head is copied. */
	if (in->usize > (uint64_t)in->arg.rd)
		return B(EFAULT) | (in->tail_nz ? B(E2BIG) : 0);
	if (in->tail_nz)
		return B(E2BIG);
	/*
	 * PROCMAP_QUERY_VMA_PERM_ANY (<linux/procmap_query.h>) with a permission
	 * bit: Rust answers it, C refuses it (EINVAL); either may be loaded.
	 */
	any = (k->query_flags & ~VALID_FLAGS) == PROCMAP_QUERY_VMA_PERM_ANY &&
	      k->query_flags & VMA_FLAGS;
	if ((k->query_flags & ~VALID_FLAGS && !any) ||
	    !k->vma_name_size != !k->vma_name_addr ||
	    !k->build_id_size != !k->build_id_addr)
		return B(EINVAL);
	m = any ? B(EINVAL) : 0;
	m |= in->live ? 0 : B(ESRCH);
	m |= in->stable ? 0 : B(ENOENT);
	m |= (uint64_t)in->arg.wr >= ksz ? B(0) : B(EFAULT);
	if (k->vma_name_size) {
		m |= B(ENAMETOOLONG) | B(ENOMEM);
		if (in->name.wr < (long)MIN(k->vma_name_size, NAME_MAX_SZ))
			m |= B(EFAULT);
	}
	if (k->build_id_size) {
		if (k->build_id_size < BUILD_ID_MAX)
			m |= B(ENAMETOOLONG);
		if (in->bid.wr < (long)MIN(k->build_id_size, BUILD_ID_MAX))
			m |= B(EFAULT);
	}
	return m;
}

/* An answer inside the arena describes a VMA the writer could have made. */
static const char *check_arena(struct fz *f, const struct in *in,
			       const struct procmap_query *a, bool file)
{
	struct shared *sh = f->sh;
	const char *name = (const char *)(uintptr_t)in->name.p;
	int i, n;

	f->arena++;
	if (!marked(sh, a->vma_start))
		return "arena VMA starts where the writer made no boundary";
	if (!marked(sh, a->vma_end))
		return "arena VMA ends where the writer made no boundary";
	if (a->vma_flags & PROCMAP_QUERY_VMA_EXECUTABLE ||
	    (!file && a->vma_flags & PROCMAP_QUERY_VMA_SHARED))
		return "arena VMA with flags the writer never used";
	if (!file && a->vma_name_size && in->name.wr >= 0 &&
	    strncmp(name, "[anon:fz", 8))
		return "arena VMA with a name the writer never gave";
	if (!file || atomic_load(&sh->ino_inexact))
		return NULL;
	n = atomic_load(&sh->nino);
	for (i = 0; i < n; i++)
		if (sh->ino[i] == a->inode)
			return NULL;
	return "arena VMA of a file the writer never mapped";
}

/* Checks the answer @a to @in (the ioctl succeeded); returns what is wrong. */
static const char *check_answer(struct fz *f, const struct in *in,
				struct procmap_query *out)
{
	const struct procmap_query *k = &in->k, *a = out;
	const char *name = (const char *)(uintptr_t)in->name.p;
	uint64_t n = MIN(in->usize, KSIZE), fl = k->query_flags, addr = k->query_addr;
	uint64_t arena = f->sh->arena;
	bool file, cover;

	memset(out, 0, sizeof(*out));
	memcpy(out, (void *)(uintptr_t)in->arg.p, n);
	if (a->size != in->usize || a->query_flags != fl || a->query_addr != addr)
		return "input fields changed";
	if (n < offsetof(struct procmap_query, vma_flags))
		return NULL;
	cover = !(fl & PROCMAP_QUERY_COVERING_OR_NEXT_VMA) || in->stable;
	if (a->vma_start >= a->vma_end || (a->vma_start | a->vma_end) & (PAGE - 1))
		return "bad range";
	if (cover ? addr < a->vma_start || addr >= a->vma_end : a->vma_end <= addr)
		return "range does not cover or follow the address";
	if (n < KSIZE)
		return NULL;
	if (a->vma_flags & ~VMA_FLAGS)
		return "vma_flags outside the ABI";
	if (fl & PROCMAP_QUERY_VMA_PERM_ANY ? !(a->vma_flags & fl & VMA_FLAGS) :
	    (a->vma_flags & fl & VMA_FLAGS) != (fl & VMA_FLAGS))
		return "vma_flags outside the filter";
	if (a->vma_page_size < PAGE || a->vma_page_size & (a->vma_page_size - 1))
		return "bad page size";
	/* A file's superblock always has a device number; no file, no offset. */
	file = a->inode || a->dev_major || a->dev_minor;
	if ((fl & PROCMAP_QUERY_FILE_BACKED_VMA && !file) || (!file && a->vma_offset))
		return "file backing inconsistent";
	if (a->vma_name_addr != k->vma_name_addr || a->build_id_addr != k->build_id_addr)
		return "buffer addresses changed";
	/* A file VMA always has a name: its path or [anon_shmem:...]. */
	if (a->vma_name_size > MIN(k->vma_name_size, NAME_MAX_SZ) ||
	    (in->name.wr >= 0 && a->vma_name_size > in->name.wr) ||
	    (file && k->vma_name_size && !a->vma_name_size))
		return "bad name size";
	if (a->vma_name_size && in->name.wr >= 0 &&
	    (name[a->vma_name_size - 1] || memchr(name, 0, a->vma_name_size - 1)))
		return "name not a NUL-terminated string of its size";
	if (a->build_id_size > MIN(k->build_id_size, BUILD_ID_MAX) ||
	    (in->bid.wr >= 0 && a->build_id_size > in->bid.wr) || (a->build_id_size && !file))
		return "bad build ID size";
	if (a->vma_name_size)
		f->last_name = a->vma_name_size;
	if (in->live && a->vma_start >= arena && a->vma_end <= arena + ARENA_PAGES * PAGE)
		return check_arena(f, in, a, file);
	return NULL;
}

/* Never one do_vfs_ioctl(), file_ioctl() or compat_sys_ioctl() handle. */
static bool generic_cmd(unsigned int cmd)
{
	unsigned int type = _IOC_TYPE(cmd);

	return type == 0 || type == 'T' || type == 'X' || type == 0x94 ||
	       type == 0x15 || (type == PROCFS_IOCTL_MAGIC && _IOC_NR(cmd) < 17);
}

static unsigned long pick_cmd(struct fz *f)
{
	unsigned int cmd;

	switch (rnd(f, 24)) {
	case 0:		/* PROCMAP_QUERY's number with another size */
		return _IOC(_IOC_READ | _IOC_WRITE, PROCFS_IOCTL_MAGIC, 17, rnd(f, 1 << 14));
	case 1:		/* ... or another direction */
		return _IOC(rnd(f, 4), PROCFS_IOCTL_MAGIC, 17, KSIZE);
	case 2:
		do
			cmd = next(f);
		while (generic_cmd(cmd));
		return cmd;
	}
	return PROCMAP_QUERY;
}

static uint64_t pick_size(struct fz *f)
{
	static const uint64_t huge[] = { 1ULL << 32, (1ULL << 32) + KSIZE, 1ULL << 63, ~0ULL };

	switch (rnd(f, 16)) {
	case 0:
		return rnd(f, 24);
	case 1:
		return 24 + rnd(f, KSIZE - 24);
	case 2: case 3:
		return KSIZE + 1 + rnd(f, PAGE - KSIZE);
	case 4:
		return PAGE;
	case 5:
		return PAGE + 1 + rnd(f, 64);
	case 6:
		return huge[rnd(f, 4)];
	}
	return KSIZE;
}

static uint64_t pick_flags(struct fz *f)
{
	switch (rnd(f, 12)) {
	case 0:
		return (next(f) & VALID_FLAGS) | 1ULL << (6 + rnd(f, 58));
	case 11:
		/* The any-of extension (bit 63), with and without permission bits. */
		return (next(f) & VALID_FLAGS) | PROCMAP_QUERY_VMA_PERM_ANY;
	case 1:
		return next(f);
	case 2:
		return 0;
	}
	return rnd(f, 64);
}

static uint64_t pick_addr(struct fz *f)
{
	static const uint64_t odd[] = { 0, 1, PAGE - 1, 0xffffffffULL, 1ULL << 32,
		1ULL << 47, (1ULL << 47) - PAGE, 1ULL << 56, ~0ULL, -(uint64_t)PAGE };
	static const int64_t delta[] = { 0, 0, 0, -1, 1, -PAGE, PAGE, -2 * PAGE };
	uint64_t r = rnd(f, 16);

	if (r < 8 && f->nbnd)
		return f->bnd[rnd(f, f->nbnd)] + delta[rnd(f, 8)];
	if (r < 11)
		return f->sh->arena - PAGE + rnd(f, (ARENA_PAGES + 2) * PAGE);
	if (r < 13)
		return ptr_to_u64(f->scr) + rnd(f, PAGE);	/* always mapped rw-p */
	if (r < 14)
		return odd[rnd(f, 10)];
	return r < 15 ? (uint32_t)next(f) : next(f);
}

static uint32_t pick_len(struct fz *f, bool name)
{
	static const uint32_t lens[] = { 1, 2, 8, 19, 20, 21, 64, 4096, 4097, 0xffffffff };

	switch (rnd(f, 6)) {
	case 0: case 1:
		return 0;
	case 2:
		return name ? f->last_name : BUILD_ID_MAX;	/* exact */
	case 3:
		return lens[rnd(f, 10)];
	}
	return 1 + rnd(f, name ? 256 : 32);
}

/*
 * A buffer for the address field at @off. If the size cuts that field, the
 * kernel sees the address's low bytes only: a kernel address's are never
 * mapped, where those of one of ours could be (this program's data).
 */
static struct where pick_buf(struct fz *f, int slot, uint32_t len,
			     uint64_t usize, size_t off)
{
	int kind = len ? (rnd(f, 3) ? P_OK : rnd(f, P_KINDS)) :
			 (rnd(f, 8) ? P_NULL : rnd(f, P_KINDS));

	if (usize > off && usize < off + 8)
		kind = P_KERNEL;
	return place(f, slot, kind, len, false);
}

static void bfail(struct fz *f, const struct procmap_batch *b, int err, const char *why)
{
	struct shared *sh = f->sh;
	int i = atomic_fetch_add(&sh->fails, 1);

	if (i >= NMSG)
		return;
	snprintf(sh->msg[i], sizeof(sh->msg[i]),
		 "seed %llu thread %d ioctl #%lu: PROCMAP_QUERY_BATCH: %s: size %llu flags %#llx query_flags %#llx addr %#llx count %u size %u names %u addrs %u -> errno %d",
		 (unsigned long long)fuzz_seed, f->id, f->n, why, (unsigned long long)b->size,
		 (unsigned long long)b->flags, (unsigned long long)b->query_flags,
		 (unsigned long long)b->addr, b->vma_count, b->vma_size, b->names_size,
		 b->addr_count, err);
}

/*
 * PROCMAP_QUERY_BATCH and PROCMAP_QUERY_GENERATION (<linux/procmap_query.h>)
 * with random headers, rooms, sizes, flags and buffers placed as for
 * PROCMAP_QUERY. The errno must be one the extension documents; on success,
 * every record written where it can be read back must be sane.
 */
static void one_batch(struct fz *f, int fd, bool live)
{
	static const uint32_t rooms[] = { 0, 1, 2, 7, 40, 256, 65536, UINT32_MAX };
	uint64_t m = B(0) | B(EFAULT) | B(EINVAL) | B(E2BIG) | B(ENAMETOOLONG) | B(ENOMEM);
	struct procmap_batch b, out;
	struct where arg, vmas, names;
	uint32_t vsz;
	int err, i;

	if (!live)
		m |= B(ESRCH);
	if (atomic_load(&f->sh->reloading))
		m |= B(ENOTTY);
	if (!rnd(f, 4)) {	/* the generation */
		uint64_t gen = 0;

		arg = place(f, 0, rnd(f, 3) ? P_OK : rnd(f, P_ARENA), 8, true);
		err = query_errno(fd, PROCMAP_QUERY_GENERATION, (void *)(uintptr_t)arg.p);
		f->n++;
		memset(&b, 0, sizeof(b));
		uint64_t gm = m & ~(B(EINVAL) | B(E2BIG) | B(ENAMETOOLONG) | B(ENOMEM));

		if (err >= 64 || !(gm & B(err)))
			bfail(f, &b, err, "generation: errno not allowed");
		else if (!err && arg.wr >= 8 && (memcpy(&gen, (void *)(uintptr_t)arg.p, 8), !gen))
			bfail(f, &b, err, "generation 0");
		return;
	}
	memset(&b, 0, sizeof(b));
	b.size = rnd(f, 8) ? sizeof(b) : pick_size(f);
	b.flags = rnd(f, 8) ? rnd(f, 4) : next(f);
	b.query_flags = pick_flags(f);
	if (rnd(f, 4))
		b.query_flags &= ~(uint64_t)PROCMAP_QUERY_COVERING_OR_NEXT_VMA;
	vsz = rnd(f, 6) ? sizeof(struct procmap_batch_vma) : rnd(f, 2) ? 96 : rnd(f, 5000);
	b.vma_count = rooms[rnd(f, 8)];
	vmas = place(f, 2, rnd(f, 3) ? P_OK : rnd(f, P_ARENA), (uint64_t)b.vma_count * vsz, false);
	b.vma_size = vsz;
	b.vmas = b.vma_count || rnd(f, 8) == 0 ? vmas.p : 0;
	b.names_size = rnd(f, 3) ? 0 : rnd(f, 2) ? 1 + rnd(f, 64) : 4096;
	names = place(f, 4, rnd(f, 3) ? P_OK : rnd(f, P_ARENA), b.names_size, false);
	b.names = b.names_size || !rnd(f, 8) ? names.p : 0;
	if (b.flags & PROCMAP_BATCH_LOOKUP) {
		b.addr_count = rnd(f, 4) ? rnd(f, 65) : rnd(f, LOOKUP_MAX + 1);
		for (i = 0; i < (int)b.addr_count; i++)
			f->baddrs[i] = pick_addr(f);
		b.addrs = rnd(f, 8) ? ptr_to_u64(f->baddrs) :
				      place(f, 0, rnd(f, P_ARENA), 8, false).p;
		b.addr_vmas = rnd(f, 8) ? ptr_to_u64(f->bidx) :
					  place(f, 0, rnd(f, P_ARENA), 8, false).p;
	} else {
		b.addr = pick_addr(f);
	}
	arg = place(f, 0, rnd(f, 4) ? P_OK : rnd(f, P_ARENA), sizeof(b), true);
	memcpy(f->img, &b, sizeof(b));
	put(f, &arg, sizeof(b));

	err = query_errno(fd, PROCMAP_QUERY_BATCH, (void *)(uintptr_t)arg.p);
	f->n++;
	atomic_fetch_add(&f->sh->batches, 1);
	if (err >= 64 || !(m & B(err))) {
		bfail(f, &b, err, "errno not allowed");
		return;
	}
	/* A well-formed request in readable memory is never refused. */
	if ((err == EINVAL || err == E2BIG) && arg.rd >= (long)sizeof(b) && b.size == sizeof(b) &&
	    !(b.flags & ~3ULL) && !(b.query_flags & ~0x2fULL) &&
	    vsz == sizeof(struct procmap_batch_vma) &&
	    !b.vma_count == !b.vmas && !b.names_size == !b.names &&
	    (!(b.flags & PROCMAP_BATCH_LOOKUP) ||
	     (!b.addr_count == !b.addrs && !b.addr_count == !b.addr_vmas))) {
		bfail(f, &b, err, "a valid request refused");
		return;
	}
	if (err || arg.wr < (long)sizeof(out))
		return;
	atomic_fetch_add(&f->sh->batch_ok, 1);
	memcpy(&out, (void *)(uintptr_t)arg.p, sizeof(out));
	if (out.vma_count > b.vma_count || out.names_size > b.names_size ||
	    out.addr_count > b.addr_count) {
		bfail(f, &b, err, "more written than room");
		return;
	}
	if (vmas.wr < (long)((uint64_t)out.vma_count * vsz) ||
	    vsz != sizeof(struct procmap_batch_vma))
		return;
	for (i = 0; i < (int)out.vma_count; i++) {
		struct procmap_batch_vma r;

		memcpy(&r, (char *)(uintptr_t)b.vmas + (size_t)i * vsz, sizeof(r));
		if (r.vma_start >= r.vma_end || (r.vma_start | r.vma_end) & (PAGE - 1) ||
		    r.vma_flags & ~VMA_FLAGS || r.build_id_size > BUILD_ID_MAX ||
		    (uint64_t)r.name_off + r.name_size > out.names_size) {
			bfail(f, &b, err, "bad record");
			return;
		}
	}
	if (!(b.flags & PROCMAP_BATCH_LOOKUP) || b.addrs != ptr_to_u64(f->baddrs) ||
	    b.addr_vmas != ptr_to_u64(f->bidx))
		return;
	/* Each address answered: no VMA, or a record of this call that covers it. */
	for (i = 0; i < (int)out.addr_count; i++) {
		uint32_t k = f->bidx[i];
		struct procmap_batch_vma r;

		if (k == PROCMAP_BATCH_NO_VMA)
			continue;
		if (k >= out.vma_count) {
			bfail(f, &b, err, "an answer beyond the records written");
			return;
		}
		memcpy(&r, (char *)(uintptr_t)b.vmas + (size_t)k * vsz, sizeof(r));
		if (f->baddrs[i] < r.vma_start || f->baddrs[i] >= r.vma_end) {
			bfail(f, &b, err, "an answer's record does not cover its address");
			return;
		}
	}
}

static void one(struct fz *f, int fd, bool live)
{
	struct procmap_query q, a;
	struct in in = { .live = live };
	uint64_t len, m, from, n;
	const char *why;
	int err;

	if (!rnd(f, 8)) {
		one_batch(f, fd, live);
		return;
	}
	in.cmd = pick_cmd(f);
	in.usize = pick_size(f);
	memset(&q, 0, sizeof(q));
	if (rnd(f, 2)) {	/* garbage in the out fields: overwritten */
		q.vma_start = next(f);
		q.vma_end = next(f);
		q.inode = next(f);
		q.dev_minor = next(f);
	}
	q.size = in.usize;
	q.query_flags = pick_flags(f);
	q.query_addr = pick_addr(f);
	q.vma_name_size = pick_len(f, true);
	q.build_id_size = pick_len(f, false);
	in.name = pick_buf(f, 2, q.vma_name_size, in.usize,
			   offsetof(struct procmap_query, vma_name_addr));
	in.bid = pick_buf(f, 4, q.build_id_size, in.usize,
			  offsetof(struct procmap_query, build_id_addr));
	q.vma_name_addr = in.name.p;
	q.build_id_addr = in.bid.p;

	len = in.usize > KSIZE && in.usize <= PAGE ? in.usize : KSIZE;
	memcpy(f->img, &q, KSIZE);
	memset(f->img + KSIZE, 0, len - KSIZE);
	if (len > KSIZE && !rnd(f, 4))
		f->img[KSIZE + rnd(f, len - KSIZE)] = 1 + rnd(f, 255);
	in.arg = place(f, 0, rnd(f, 4) ? P_OK + rnd(f, 2) : rnd(f, P_ARENA), len, true);
	put(f, &in.arg, len);

	memset(&in.k, 0, KSIZE);
	memcpy(&in.k, f->img, MIN(in.usize, KSIZE));
	/* A size that cuts a buffer's address leaves another one. */
	if (in.k.vma_name_addr != in.name.p)
		in.name.wr = -1;
	if (in.k.build_id_addr != in.bid.p)
		in.bid.wr = -1;
	n = MIN(len, (uint64_t)(in.arg.rd > 0 ? in.arg.rd : 0));
	for (from = KSIZE; in.usize > KSIZE && in.usize <= PAGE && from < n; from++)
		in.tail_nz |= f->img[from] != 0;
	in.stable = live && in.k.query_addr - ptr_to_u64(f->scr) < PAGE &&
		    !(in.k.query_flags & (PROCMAP_QUERY_VMA_EXECUTABLE |
		      PROCMAP_QUERY_VMA_SHARED | PROCMAP_QUERY_FILE_BACKED_VMA));

	err = query_errno(fd, in.cmd, (void *)(uintptr_t)in.arg.p);
	f->n++;
	m = allowed(&in);
	if (err >= 64 || !(m & B(err))) {
		fail(f, &in, err, m, NULL, "errno not allowed");
		return;
	}
	/* Only the answer is written, on success (or EFAULT, partly). */
	from = err == 0 || err == EFAULT ? MIN(in.usize, KSIZE) : 0;
	n = MIN(len, (uint64_t)(in.arg.wr > 0 ? in.arg.wr : 0));
	if (n > from && memcmp((char *)(uintptr_t)in.arg.p + from, f->img + from, n - from)) {
		fail(f, &in, err, m, NULL, "argument written outside the answer");
		return;
	}
	if (err || in.cmd != PROCMAP_QUERY)
		return;
	f->ok++;
	why = check_answer(f, &in, &a);
	if (why)
		fail(f, &in, err, m, &a, why);
}

/* Every boundary /proc/<pid>/maps shows, as query addresses. */
static void refresh(struct fz *f, int fd)
{
	long got = 0, r;
	char *p, *end;

	while (got < MAPS_BUF - 1 &&
	       (r = pread(fd, f->maps + got, MAPS_BUF - 1 - got, got)) > 0)
		got += r;
	f->maps[got] = 0;
	f->nbnd = 0;
	for (p = f->maps; *p && f->nbnd < NBND - 1; p = end) {
		f->bnd[f->nbnd++] = strtoull(p, &end, 16);
		if (*end == '-')
			f->bnd[f->nbnd++] = strtoull(end + 1, &end, 16);
		end = strchr(end, '\n');
		if (!end)
			break;
		end++;
	}
}

static void wait_go(struct shared *sh)
{
	while (!atomic_load(&sh->go))
		sched_yield();
}

static void *fuzzer(void *arg)
{
	struct fz *f = arg;
	struct shared *sh = f->sh;
	char path[64];
	int fd, i, r, pid;
	bool live;

	wait_go(sh);
	while (!atomic_load(&sh->stop)) {
		r = rnd(f, 8);
		fd = sh->self_fd;
		live = true;
		pid = atomic_load(&sh->child);
		if (r >= 6 && pid > 0) {	/* the exec variant's target */
			snprintf(path, sizeof(path), "/proc/%d/maps", pid);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			live = false;
		} else if (r >= 3) {
			fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
		}
		if (fd < 0)
			continue;
		refresh(f, fd);
		for (i = 0; i < 200 && !atomic_load(&sh->stop); i++)
			one(f, fd, live);
		if (fd != sh->self_fd)
			close(fd);
	}
	return NULL;
}

static void record_ino(struct shared *sh, int fd)
{
	struct statfs sfs;
	struct stat st;
	int n = atomic_load(&sh->nino);

	/* Elsewhere (overlayfs...), st_ino may not be the inode's i_ino. */
	if (fstat(fd, &st) || fstatfs(fd, &sfs) || sfs.f_type != TMPFS_MAGIC || n == NINO)
		atomic_store(&sh->ino_inexact, 1);
	else
		sh->ino[n] = st.st_ino;
	atomic_store(&sh->nino, MIN(n + 1, NINO));
}

static int new_file(struct fz *f, char *path, size_t size, int nr)
{
	const char *const dirs[] = { getenv("TMPDIR"), "/dev/shm", "/tmp", "." };
	int i, fd = -1;

	for (i = 0; i < 4 && fd < 0; i++) {
		if (!dirs[i])
			continue;
		snprintf(path, size, "%s/procmap-query-fuzz-%d-%d-%s", dirs[i], getpid(), nr,
			 "a-somewhat-long-name-for-names-that-do-not-fit-small-buffers");
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (fd < 0) {
		path[0] = 0;
		return -1;
	}
	record_ino(f->sh, fd);
	if (ftruncate(fd, 16 * PAGE))
		f->ok++;	/* failed writer calls */
	return fd;
}

static void *writer(void *arg)
{
	static const int prots[] = { PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE };
	struct fz *f = arg;
	struct shared *sh = f->sh;
	char *ar = (char *)sh->arena, *p, *q, path[256], name[96];
	int mfd, ffd, nfile = 0, prot, fd;
	unsigned int i, j, g = sh->ngrid;
	size_t len, len2, c;
	long k;

	mfd = memfd_create("procmap-query-fuzz", MFD_CLOEXEC);
	if (mfd >= 0) {
		record_ino(sh, mfd);
		if (ftruncate(mfd, 16 * PAGE))
			f->ok++;	/* failed writer calls */
	}
	ffd = new_file(f, path, sizeof(path), nfile++);
	wait_go(sh);
	for (; !atomic_load(&sh->stop); f->n++) {
		/*
		 * A range on the grid; for mremap, another length that ends on
		 * it and a destination a whole number of periods away.
		 */
		i = rnd(f, g - 1);
		j = i + 1 + rnd(f, MIN(4, g - 1 - i));
		p = ar + (size_t)sh->grid[i] * PAGE;
		len = (size_t)(sh->grid[j] - sh->grid[i]) * PAGE;
		len2 = (size_t)(sh->grid[i + 1 + rnd(f, MIN(4, g - 1 - i))] - sh->grid[i]) * PAGE;
		k = (1 + rnd(f, 8)) * (rnd(f, 2) ? 1 : -1);
		q = p + k * GRID_PERIOD * PAGE;
		prot = prots[rnd(f, 3)];
		mark(sh, ptr_to_u64(p));
		mark(sh, ptr_to_u64(p + len));
		switch (rnd(f, 12)) {
		case 0: case 1:
			if (mmap(p, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
			    MAP_FAILED || !(prot & PROT_WRITE))
				break;
			for (c = 0; c < len; c += PAGE)
				p[c] = 1;
			break;
		case 2:
			munmap(p, len);
			break;
		case 3:		/* split: unmap one grid step in the middle */
			q = ar + (size_t)sh->grid[(i + j) / 2] * PAGE;
			c = (size_t)sh->grid[(i + j) / 2 + 1] * PAGE;
			mark(sh, ptr_to_u64(q));
			mark(sh, ptr_to_u64(ar + c));
			munmap(q, ar + c - q);
			break;
		case 4:
			mprotect(p, len, prot);
			break;
		case 5:		/* grow or shrink in place */
			mark(sh, ptr_to_u64(p + len2));
			mremap(p, len, len2, 0);
			break;
		case 6:		/* move (and resize) */
			if (q < ar || q + MAX(len, len2) > ar + ARENA_PAGES * PAGE)
				break;
			mark(sh, ptr_to_u64(q));
			mark(sh, ptr_to_u64(q + len2));
			/* A shrinking move that fails may have shrunk the source. */
			if (len2 < len)
				mark(sh, ptr_to_u64(p + len2));
			/*
			 * A plain move takes every VMA in the range along (6.17+),
			 * gaps kept: the grid's period keeps them on the grid.
			 */
			for (c = 0; len2 == len && c <= len; c += PAGE)
				if (marked(sh, ptr_to_u64(p + c)))
					mark(sh, ptr_to_u64(q + c));
			mremap(p, len, len2, MREMAP_MAYMOVE | MREMAP_FIXED, q);
			break;
		case 7:
			madvise(p, len, MADV_DONTNEED);
			break;
		case 8:
			c = rnd(f, 10);
			snprintf(name, sizeof(name), "fz%zu%s", c, c ? "" :
				 "-a-long-anon-name-up-to-the-limit-of-eighty-bytes-xxxxxxxxxxxxxxxx");
			prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, len,
			      c == 9 ? NULL : name);
			break;
		case 9: case 10:
			fd = ffd >= 0 && rnd(f, 2) ? ffd : mfd;
			if (fd >= 0)
				mmap(p, len, prot,
				     (rnd(f, 2) ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED, fd,
				     rnd(f, 20) * PAGE);
			break;
		case 11:	/* truncate, or unlink and start another file */
			fd = ffd >= 0 && rnd(f, 2) ? ffd : mfd;
			if (rnd(f, 4) && fd >= 0) {
				if (ftruncate(fd, rnd(f, 20) * PAGE))
					f->ok++;
			} else if (path[0]) {
				unlink(path);
				path[0] = 0;
				if (nfile < NINO - 2) {
					close(ffd);
					ffd = new_file(f, path, sizeof(path), nfile++);
				}
			}
			break;
		}
	}
	if (path[0])
		unlink(path);
	close(ffd);
	close(mfd);
	return NULL;
}

static void *reloader(void *arg)
{
	struct fz *f = arg;

	wait_go(f->sh);
	while (!atomic_load(&f->sh->stop)) {
		if (!unload_rust())	/* read by the main thread */
			__atomic_store_n(&f->n, f->n + 1, __ATOMIC_RELAXED);
		if (!rust_loaded() && load_rust())
			f->ok++;	/* failed loads */
	}
	return NULL;
}

/* Sends @fd over @sock with the byte @tag, or receives one (@fd < 0). */
static int xfer_fd(int sock, int fd, char *tag)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u = { 0 };
	struct iovec iov = { .iov_base = tag, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	if (fd >= 0) {
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
		return sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == 1 ? fd : -1;
	}
	if (recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* Opens @path and passes the fd to the helper process. */
static void pass(struct shared *sh, const char *path, char tag)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		xfer_fd(sh->sock[0], fd, &tag);
		close(fd);
	}
}

/* Forks children that exec themselves twice and exit; passes fds on. */
static void *spawner(void *arg)
{
	static char *const argv[] = { "procmap-query-fuzz", NULL };
	static char *const envp[] = { "PROCMAP_FUZZ_CHILD=2", NULL };
	struct fz *f = arg;
	struct shared *sh = f->sh;
	char path[64];
	pid_t pid;

	wait_go(sh);
	while (!atomic_load(&sh->stop)) {
		pid = fork();
		if (pid == 0) {
			execve("/proc/self/exe", argv, envp);
			_exit(127);
		}
		if (pid < 0) {
			usleep(10000);
			continue;
		}
		atomic_store(&sh->child, pid);
		snprintf(path, sizeof(path), "/proc/%d/maps", pid);
		pass(sh, path, 'C');
		pass(sh, "/proc/self/maps", 'S');
		waitpid(pid, NULL, 0);
		f->n++;
	}
	return NULL;
}

/* The helper process: queries the fds it is sent, in its own process. */
static void helper(struct fz *f)
{
	struct shared *sh = f->sh;
	int fds[4], fd, i, j, got = 0;
	time_t end = time(NULL) + fuzz_secs * 2 + 30;
	bool live[4];
	char tag;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	while (!atomic_load(&sh->stop) && time(NULL) < end) {
		while ((fd = xfer_fd(sh->sock[1], -1, &tag)) >= 0) {
			i = got++ % 4;
			if (got > 4)
				close(fds[i]);
			fds[i] = fd;
			live[i] = tag == 'S';	/* the parent: alive, same layout */
		}
		if (!got) {
			usleep(1000);
			continue;
		}
		i = rnd(f, MIN(got, 4));
		refresh(f, fds[i]);
		for (j = 0; j < 100 && !atomic_load(&sh->stop); j++)
			one(f, fds[i], live[i]);
	}
	sh->helper_n = f->n;
	sh->helper_ok = f->ok;
}

enum { M_SELF, M_RELOAD, M_EXEC };

FIXTURE(fuzz) {
	struct shared *sh;
	struct fz *fz;		/* NCTX, the writer, the reloader or spawner */
	int was_loaded;		/* -1: module state untouched */
};

FIXTURE_VARIANT(fuzz) {
	int mode;
};

FIXTURE_VARIANT_ADD(fuzz, self) { .mode = M_SELF };
FIXTURE_VARIANT_ADD(fuzz, reload) { .mode = M_RELOAD };
FIXTURE_VARIANT_ADD(fuzz, exec) { .mode = M_EXEC };

FIXTURE_SETUP(fuzz)
{
	struct shared *sh;
	struct fz grid_rng = { .rng = fuzz_seed ^ 0x5eed };
	unsigned int g, pattern = 1;
	char *scr, *rw;
	int i, s, mfd;

	printf("# seed: %llu (rerun: PROCMAP_FUZZ_SEED=%llu)\n",
	       (unsigned long long)fuzz_seed, (unsigned long long)fuzz_seed);
	fflush(stdout);
	self->was_loaded = -1;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(sh != MAP_FAILED);
	self->sh = sh;
	sh->self_fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	ASSERT_GE(sh->self_fd, 0);

	/*
	 * The arena, and the sparse grid the writer's ranges start and end on:
	 * a random third of the pages in a period, the same in every period.
	 */
	sh->arena = (uintptr_t)mmap(NULL, ARENA_PAGES * PAGE, PROT_NONE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_TRUE(sh->arena != (uintptr_t)MAP_FAILED);
	for (g = 1; g < GRID_PERIOD; g++)
		pattern |= !rnd(&grid_rng, 3) << g;
	for (g = 0; g <= ARENA_PAGES; g++)
		if (pattern >> (g % GRID_PERIOD) & 1)
			sh->grid[sh->ngrid++] = g;
	mark(sh, sh->arena);
	mark(sh, sh->arena + ARENA_PAGES * PAGE);

	/*
	 * Each context's scratch: slots [rw][bad][none], bad read-only in even
	 * slots (slot 0's a memfd page, written through ro_alias), unmapped
	 * (PROT_NONE) in odd ones.
	 */
	scr = mmap(NULL, NCTX * SCR_PAGES * PAGE, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(scr != MAP_FAILED);
	mfd = memfd_create("procmap-query-fuzz-ro", MFD_CLOEXEC);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(0, ftruncate(mfd, NCTX * PAGE));
	sh->ro_alias = mmap(NULL, NCTX * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ASSERT_TRUE(sh->ro_alias != MAP_FAILED);
	for (i = 0; i < NCTX; i++) {
		for (s = 0; s < 6; s++) {
			rw = scr + (i * SCR_PAGES + s * 3) * PAGE;
			ASSERT_EQ(0, mprotect(rw, PAGE, PROT_READ | PROT_WRITE));
			if (s == 0) {
				ASSERT_TRUE(mmap(rw + PAGE, PAGE, PROT_READ, MAP_SHARED | MAP_FIXED,
						 mfd, i * PAGE) != MAP_FAILED);
			} else if (s % 2 == 0) {
				ASSERT_EQ(0, mprotect(rw + PAGE, PAGE, PROT_READ));
			}
		}
	}
	close(mfd);
	self->fz = mmap(NULL, (NCTX + 2) * sizeof(struct fz), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(self->fz != MAP_FAILED);
	for (i = 0; i < NCTX + 2; i++) {
		self->fz[i].sh = sh;
		self->fz[i].id = i;
		self->fz[i].rng = fuzz_seed ^ (0xd1342543de82ef95ULL * (i + 1));
		self->fz[i].scr = i < NCTX ? scr + i * SCR_PAGES * PAGE : NULL;
	}
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sh->sock));
}

FIXTURE_TEARDOWN(fuzz)
{
	if (self->was_loaded >= 0)
		use_impl(self->was_loaded ? IMPL_RUST : IMPL_C);
}

TEST_F_TIMEOUT(fuzz, run, 300)
{
	struct shared *sh = self->sh;
	struct fz *fz = self->fz;
	pthread_t th[NFUZZ + 2];
	unsigned long n = 0, ok = 0, in_arena = 0, marks = 0;
	struct timespec t0, t1;
	double t = 0;
	pid_t pid = 0;
	int i, nth = 0, status;

	alarm(fuzz_secs * 3 + 60 + fuzz_unloads);	/* watchdog */
	if (variant->mode == M_RELOAD) {
		atomic_store(&self->sh->reloading, 1);
		self->was_loaded = rust_loaded();
		if (!self->was_loaded && load_rust())
			SKIP(self->was_loaded = -1; return,
			     "the Rust module procmap_query is not available");
		if (unload_rust() || load_rust())
			SKIP(return, "the Rust module cannot be unloaded and reloaded");
	}
	if (variant->mode == M_EXEC) {
		pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			helper(&fz[NFUZZ]);
			_exit(0);
		}
	}
	/* Every thread exists before the writer starts: nothing else maps. */
	for (i = 0; i < NFUZZ; i++)
		ASSERT_EQ(0, pthread_create(&th[nth++], NULL, fuzzer, &fz[i]));
	ASSERT_EQ(0, pthread_create(&th[nth++], NULL, writer, &fz[NCTX]));
	if (variant->mode != M_SELF)
		ASSERT_EQ(0, pthread_create(&th[nth++], NULL,
					    variant->mode == M_EXEC ? spawner : reloader,
					    &fz[NCTX + 1]));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	atomic_store(&sh->go, 1);
	while (t < fuzz_secs || (variant->mode == M_RELOAD && t < fuzz_secs + fuzz_unloads &&
				 __atomic_load_n(&fz[NCTX + 1].n, __ATOMIC_RELAXED) <
				 fuzz_unloads)) {
		usleep(MAX(MIN(fuzz_secs - t, 0.1), 0.01) * 1e6);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		t = t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	}
	atomic_store(&sh->stop, 1);
	for (i = 0; i < nth; i++)
		ASSERT_EQ(0, pthread_join(th[i], NULL));
	if (pid > 0) {
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	}
	for (i = 0; i <= ARENA_PAGES; i++)
		marks += marked(sh, sh->arena + (uintptr_t)i * PAGE);
	for (i = 0; i < NFUZZ; i++) {
		n += fz[i].n;
		ok += fz[i].ok;
		in_arena += fz[i].arena;
	}
	printf("# ioctls: %lu (%.0f/s), answered %lu (%lu in the arena)\n",
	       n + sh->helper_n, (n + sh->helper_n) / t, ok + sh->helper_ok, in_arena);
	printf("# batches: %lu, answered %lu\n", atomic_load(&sh->batches),
	       atomic_load(&sh->batch_ok));
	printf("# writer: %lu calls, boundaries %lu/%u pages (grid %u), inode check %s\n",
	       fz[NCTX].n, marks, ARENA_PAGES + 1, sh->ngrid,
	       atomic_load(&sh->ino_inexact) ? "off" : "on");
	if (variant->mode == M_RELOAD)
		printf("# module unloads: %lu, failed loads: %lu\n",
		       fz[NCTX + 1].n, fz[NCTX + 1].ok);
	if (variant->mode == M_EXEC)
		printf("# exec targets: %lu; helper ioctls %lu, answered %lu\n",
		       fz[NCTX + 1].n, sh->helper_n, sh->helper_ok);
	fflush(stdout);
	for (i = 0; i < MIN(atomic_load(&sh->fails), NMSG); i++)
		TH_LOG("%s", sh->msg[i]);
	EXPECT_EQ(0, atomic_load(&sh->fails))
		TH_LOG("rerun: PROCMAP_FUZZ_SEED=%llu", (unsigned long long)fuzz_seed);
	EXPECT_LT(0, n);
	if (variant->mode == M_RELOAD)
		EXPECT_TRUE(rust_loaded() || load_rust() == 0);
}

/* The exec variant's child: maps a little, execs itself @n more times, exits. */
static void exec_child(int n)
{
	static char *const argv[] = { "procmap-query-fuzz", NULL };
	char env[32], *envp[] = { env, NULL };
	char *p = mmap(NULL, 8 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p != MAP_FAILED)
		munmap(p + 2 * PAGE, PAGE);
	usleep(1000);
	if (n > 0) {
		snprintf(env, sizeof(env), "PROCMAP_FUZZ_CHILD=%d", n - 1);
		execve("/proc/self/exe", argv, envp);
	}
	_exit(0);
}

/* After the harness registered the test: its timeout follows the duration. */
static void __attribute__((constructor(KSELFTEST_PRIO_TEST + 1))) fuzz_init(void)
{
	const char *s = getenv("PROCMAP_FUZZ_CHILD");
	struct timespec ts;

	if (s)
		exec_child(atoi(s));
	clock_gettime(CLOCK_REALTIME, &ts);
	s = getenv("PROCMAP_FUZZ_SEED");
	fuzz_seed = s ? strtoull(s, NULL, 0) : (uint64_t)ts.tv_sec * 1000003 ^ ts.tv_nsec;
	s = getenv("PROCMAP_FUZZ_SECONDS");
	if (s)
		fuzz_secs = strtod(s, NULL);
	if (!(fuzz_secs > 0))
		fuzz_secs = 8;
	s = getenv("PROCMAP_FUZZ_UNLOADS");
	if (s)
		fuzz_unloads = strtoul(s, NULL, 0);
	if (fuzz_secs * 4 + 120 + fuzz_unloads > 300)
		_fuzz_run_object->timeout = fuzz_secs * 4 + 120 + fuzz_unloads;
}

TEST_HARNESS_MAIN

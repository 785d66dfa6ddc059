// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of the PROCMAP_QUERY extensions (<linux/procmap_query.h>):
 * PROCMAP_QUERY_BATCH, PROCMAP_QUERY_VMA_PERM_ANY, PROCMAP_QUERY_GENERATION.
 *
 * The oracle is PROCMAP_QUERY itself: every batch (walk or lookup, every
 * filter, start address, record room and names buffer) must answer what the
 * sequence of single queries answers, from the C handler (module unloaded)
 * and from Rust, byte for byte; the any-of filter must equal a full walk
 * filtered here; the generation must change with every kind of VMA change
 * and only then, and a batch with equal generations must equal the maps text.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/procmap_query.h>

#include "kselftest_harness.h"
#include "procmap-query-util.h"

#ifndef PR_SET_VMA
#define PR_SET_VMA		0x53564d41
#define PR_SET_VMA_ANON_NAME	0
#endif

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP	4
#endif

#define PAGE		4096UL
#define FILLERS		24
#define MAX_VMAS	256
#define NAMES_MAX	4096
#define NO_VMA		PROCMAP_BATCH_NO_VMA

#define Q_R	PROCMAP_QUERY_VMA_READABLE
#define Q_W	PROCMAP_QUERY_VMA_WRITABLE
#define Q_X	PROCMAP_QUERY_VMA_EXECUTABLE
#define Q_S	PROCMAP_QUERY_VMA_SHARED
#define Q_FILE	PROCMAP_QUERY_FILE_BACKED_VMA
#define Q_NEXT	PROCMAP_QUERY_COVERING_OR_NEXT_VMA
#define Q_ANY	PROCMAP_QUERY_VMA_PERM_ANY

/* One answer, as a single query gives it and as a batch record must. */
struct answer {
	struct procmap_batch_vma rec;	/* name_off zero */
	char name[NAMES_MAX];
};

static void die(const char *what)
{
	perror(what);
	_exit(1);
}

/* The target: diverse mappings; reports ready on @ready_fd, then waits. */
static void target(int ready_fd, const char *dir)
{
	char path[256];
	int fd, i;
	char *p;

	snprintf(path, sizeof(path), "%s/pqb-file", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 16 * PAGE))
		die("file");
	if (mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED ||
	    mmap(NULL, 2 * PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 4 * PAGE) == MAP_FAILED ||
	    mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 9 * PAGE) == MAP_FAILED ||
	    mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE, fd, 10 * PAGE) == MAP_FAILED ||
	    mmap(NULL, PAGE, PROT_EXEC, MAP_PRIVATE, fd, 11 * PAGE) == MAP_FAILED ||
	    mmap(NULL, PAGE, PROT_WRITE, MAP_SHARED, fd, 12 * PAGE) == MAP_FAILED)
		die("mmap file");
	close(fd);
	unlink(path);	/* " (deleted)" */
	fd = syscall(SYS_memfd_create, "pqb-memfd", 0);
	if (fd < 0 || ftruncate(fd, 2 * PAGE) ||
	    mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED)
		die("memfd");
	close(fd);
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, p, 2 * PAGE, "pqb-shm"))
		die("anon_shmem");
	p = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, p, PAGE, "pqb-anon") ||
	    prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, p + 2 * PAGE, PAGE,
		  "pqb-a-rather-long-anonymous-vma-name-0123456789-0123456789-0123456789"))
		die("anon name");
	p = mmap(NULL, 2 * FILLERS * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("fillers");
	for (i = 0; i < FILLERS; i++) {
		static const int prots[] = { PROT_READ, PROT_READ | PROT_WRITE,
					     PROT_READ | PROT_EXEC, PROT_EXEC, PROT_WRITE };

		if (mprotect(p + 2 * i * PAGE, PAGE, prots[i % 5]))
			die("mprotect");
	}
	if (write(ready_fd, "r", 1) != 1)
		die("ready");
	for (;;)
		pause();
}

static int batch(int fd, struct procmap_batch *b)
{
	return query_errno(fd, PROCMAP_QUERY_BATCH, b);
}

/* A single PROCMAP_QUERY, as a record; 0 or the errno. */
static int single(int fd, uint64_t addr, uint64_t flags, bool names, bool build_id,
		  struct answer *a)
{
	struct procmap_query q;
	int err;

	memset(&q, 0, sizeof(q));
	memset(a, 0, sizeof(*a));
	q.size = sizeof(q);
	q.query_addr = addr;
	q.query_flags = flags;
	if (names) {
		q.vma_name_size = NAMES_MAX;
		q.vma_name_addr = ptr_to_u64(a->name);
	}
	if (build_id) {
		q.build_id_size = sizeof(a->rec.build_id);
		q.build_id_addr = ptr_to_u64(a->rec.build_id);
	}
	err = query_errno(fd, PROCMAP_QUERY, &q);
	if (err)
		return err;
	a->rec.vma_start = q.vma_start;
	a->rec.vma_end = q.vma_end;
	a->rec.vma_flags = q.vma_flags;
	a->rec.vma_page_size = q.vma_page_size;
	a->rec.vma_offset = q.vma_offset;
	a->rec.inode = q.inode;
	a->rec.dev_major = q.dev_major;
	a->rec.dev_minor = q.dev_minor;
	a->rec.name_size = names ? q.vma_name_size : 0;
	a->rec.build_id_size = build_id ? q.build_id_size : 0;
	return 0;
}

/* The walk by single queries from @addr: fills @out, returns the count. */
static int single_walk(int fd, uint64_t addr, uint64_t filters, bool names, bool build_id,
		       struct answer *out, int max)
{
	int n = 0;

	while (n < max && single(fd, addr, filters | Q_NEXT, names, build_id, &out[n]) == 0)
		addr = out[n++].rec.vma_end;
	return n;
}

/* Compares a batch record (and its name in @names) with an answer. */
static bool same(const struct procmap_batch_vma *r, const char *names, const struct answer *a)
{
	struct procmap_batch_vma x = *r;

	x.name_off = 0;
	if (memcmp(&x, &a->rec, sizeof(x)))
		return false;
	return !r->name_size || !memcmp(names + r->name_off, a->name, r->name_size);
}

static void init_walk(struct procmap_batch *b, uint64_t addr, uint64_t filters, uint64_t flags,
		      void *vmas, uint32_t vma_count, char *names, uint32_t names_size)
{
	memset(b, 0, sizeof(*b));
	b->size = sizeof(*b);
	b->flags = flags;
	b->query_flags = filters;
	b->addr = addr;
	b->vmas = ptr_to_u64(vmas);
	b->vma_count = vma_count;
	b->vma_size = sizeof(struct procmap_batch_vma);
	b->names = names_size ? ptr_to_u64(names) : 0;
	b->names_size = names_size;
}

static const uint64_t filter_set[] = {
	0, Q_R, Q_W, Q_X, Q_S, Q_FILE, Q_R | Q_W, Q_R | Q_X, Q_R | Q_S, Q_W | Q_S, Q_FILE | Q_R,
	Q_FILE | Q_X, Q_FILE | Q_S | Q_W, Q_R | Q_W | Q_X | Q_S,
	Q_ANY | Q_R, Q_ANY | Q_R | Q_X, Q_ANY | Q_W | Q_S, Q_ANY | Q_X | Q_FILE,
	Q_ANY | Q_R | Q_W | Q_X | Q_S, Q_ANY | Q_S | Q_FILE,
};

FIXTURE(batch) {
	pid_t pid;
	int fd;
	char dir[64];
	uint64_t bounds[2 * MAX_VMAS];
	int nbounds;
	bool injecting;	/* lock failures injected: stop them */
};

FIXTURE_SETUP(batch)
{
	int pipefd[2];
	char c, path[64];
	struct answer *all;
	int i, n;

	ASSERT_TRUE(use_impl(IMPL_RUST));
	snprintf(self->dir, sizeof(self->dir), "/tmp/pqb-XXXXXX");
	ASSERT_TRUE((mkdtemp(self->dir)) != NULL);
	ASSERT_EQ(0, pipe(pipefd));
	self->pid = fork();
	ASSERT_LE(0, self->pid);
	if (!self->pid) {
		close(pipefd[0]);
		target(pipefd[1], self->dir);
	}
	close(pipefd[1]);
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	close(pipefd[0]);
	snprintf(path, sizeof(path), "/proc/%d/maps", self->pid);
	self->fd = open(path, O_RDONLY);
	ASSERT_LE(0, self->fd);
	/* Start addresses: 0, every VMA boundary and its neighbours. */
	all = calloc(MAX_VMAS, sizeof(*all));
	ASSERT_TRUE((all) != NULL);
	n = single_walk(self->fd, 0, 0, false, false, all, MAX_VMAS);
	ASSERT_LT(20, n);
	self->nbounds = 0;
	self->bounds[self->nbounds++] = 0;
	for (i = 0; i < n && self->nbounds + 4 <= 2 * MAX_VMAS; i += 3) {
		self->bounds[self->nbounds++] = all[i].rec.vma_start - 1;
		self->bounds[self->nbounds++] = all[i].rec.vma_start;
		self->bounds[self->nbounds++] = all[i].rec.vma_end - 1;
	}
	self->bounds[self->nbounds++] = all[n - 1].rec.vma_end;
	free(all);
}

/* Failures of the VMA lookups made to happen (see the test that makes them). */
enum inject { INJECT_NONE, INJECT_NEXT, INJECT_NEXT_THIRD, INJECT_UNDER_RCU, INJECT_BOTH };
static bool fail_lookups(enum inject which);

FIXTURE_TEARDOWN(batch)
{
	if (self->injecting)
		fail_lookups(INJECT_NONE);
	kill(self->pid, SIGKILL);
	waitpid(self->pid, NULL, 0);
	close(self->fd);
	rmdir(self->dir);
	use_impl(IMPL_RUST);
}

/*
 * Walks with batches of @room records and @names_size bytes of names from
 * @addr to the end and compares with @ref (@nref answers). Returns false on
 * the first difference.
 */
static bool walk_matches(struct __test_metadata *_metadata, int fd, uint64_t addr,
			 uint64_t filters, uint64_t flags, uint32_t room, uint32_t names_size,
			 const struct answer *ref, int nref)
{
	static struct procmap_batch_vma recs[MAX_VMAS];
	static char names[NAMES_MAX];
	struct procmap_batch b;
	int got = 0, calls = 0, i;

	for (;;) {
		memset(recs, 0xa5, sizeof(recs));
		init_walk(&b, addr, filters, flags, recs, room, names, names_size);
		EXPECT_EQ(0, batch(fd, &b)) {
			TH_LOG("walk from %#" PRIx64 " filters %#" PRIx64 " room %u names %u",
			       addr, filters, room, names_size);
			return false;
		}
		EXPECT_GE(room, b.vma_count) return false;
		for (i = 0; i < (int)b.vma_count; i++, got++) {
			EXPECT_LT(got, nref) return false;
			EXPECT_TRUE(same(&recs[i], names, &ref[got])) {
				TH_LOG("record %d of the walk from %#" PRIx64 " filters %#" PRIx64
				       " room %u names %u: %#llx-%#llx vs %#llx-%#llx", got, addr,
				       filters, room, names_size, recs[i].vma_start,
				       recs[i].vma_end, ref[got].rec.vma_start,
				       ref[got].rec.vma_end);
				return false;
			}
		}
		/* It resumes after the last record (and the VMAs it skipped after it). */
		if (b.vma_count)
			EXPECT_LE(recs[b.vma_count - 1].vma_end, b.addr) return false;
		if (b.out_flags & PROCMAP_BATCH_DONE)
			break;
		/* Not done: it must have stopped for room, so it made progress. */
		EXPECT_NE(0, b.vma_count) return false;
		addr = b.addr;
		EXPECT_GT(10000, ++calls) return false;
	}
	EXPECT_EQ(nref, got) return false;
	return true;
}

/* As walk_matches(); without names (@names_size 0), records carry none. */
static bool walk_matches_any_names(struct __test_metadata *_metadata, int fd, uint64_t addr,
				   uint64_t filters, uint64_t flags, uint32_t room,
				   uint32_t names_size, const struct answer *ref, int nref)
{
	struct answer *bare;
	bool ok;
	int i;

	if (names_size)
		return walk_matches(_metadata, fd, addr, filters, flags, room, names_size, ref,
				    nref);
	bare = calloc(MAX_VMAS, sizeof(*bare));
	if (!bare)
		return false;
	for (i = 0; i < nref; i++) {
		bare[i] = ref[i];
		bare[i].rec.name_size = 0;
	}
	ok = walk_matches(_metadata, fd, addr, filters, flags, room, 0, bare, nref);
	free(bare);
	return ok;
}

/*
 * Every walk (filters, start addresses, room, names buffers, build IDs)
 * equals the single queries, and those are the same from C and Rust.
 */
TEST_F_TIMEOUT(batch, walk_equals_single_queries, 1800)
{
	static const uint32_t rooms[] = { 1, 2, 7, 64, MAX_VMAS };
	static const uint32_t name_sizes[] = { 0, 100, NAMES_MAX };
	int nf = ARRAY_SIZE(filter_set);
	struct answer *c_ref, *rust_ref;
	int f, s, r, ns, nc = 0, nr, checked = 0;

	c_ref = calloc(MAX_VMAS, sizeof(*c_ref));
	rust_ref = calloc(MAX_VMAS, sizeof(*rust_ref));
	ASSERT_TRUE((c_ref) != NULL);
	ASSERT_TRUE((rust_ref) != NULL);
	for (f = 0; f < nf; f++) {
		for (s = 0; s < self->nbounds; s += (f ? 5 : 1)) {
			uint64_t addr = self->bounds[s];
			bool bid = (f + s) % 2;
			uint64_t flags = bid ? PROCMAP_BATCH_BUILD_ID : 0;

			/* Any-of filters: C refuses them (EINVAL); Rust singles are the oracle. */
			if (!(filter_set[f] & Q_ANY)) {
				ASSERT_TRUE(use_impl(IMPL_C));
				nc = single_walk(self->fd, addr, filter_set[f], true, bid, c_ref,
						 MAX_VMAS);
				ASSERT_TRUE(use_impl(IMPL_RUST));
			}
			nr = single_walk(self->fd, addr, filter_set[f], true, bid, rust_ref,
					 MAX_VMAS);
			if (!(filter_set[f] & Q_ANY)) {
				ASSERT_EQ(nc, nr);
				ASSERT_EQ(0, memcmp(c_ref, rust_ref, nr * sizeof(*c_ref)));
			}
			for (r = 0; r < 5; r++) {
				for (ns = 0; ns < 3; ns++) {
					ASSERT_TRUE(walk_matches_any_names(_metadata, self->fd,
									   addr, filter_set[f],
									   flags, rooms[r],
									   name_sizes[ns],
									   rust_ref, nr));
					checked++;
				}
			}
		}
	}
	TH_LOG("%d walks, each equal to the single queries", checked);
	free(c_ref);
	free(rust_ref);
}

/*
 * Every valid filter word (each set of permission bits, all-of or any-of,
 * with and without FILE_BACKED_VMA: 62), with and without build IDs: a whole
 * walk with names equals the single queries (from C too, for the all-of
 * words C knows).
 */
TEST_F_TIMEOUT(batch, every_filter_word_walks_as_single_queries, 1800)
{
	struct answer *c_ref = calloc(MAX_VMAS, sizeof(*c_ref));
	struct answer *rust_ref = calloc(MAX_VMAS, sizeof(*rust_ref));
	int w, bid, nc = 0, nr, words = 0;

	ASSERT_TRUE((c_ref) != NULL);
	ASSERT_TRUE((rust_ref) != NULL);
	for (w = 0; w < 64; w++) {
		bool any = w & 32, file = w & 16;
		uint64_t filters = (any ? Q_ANY : 0) | (file ? Q_FILE : 0) |
				   (w & 1 ? Q_R : 0) | (w & 2 ? Q_W : 0) |
				   (w & 4 ? Q_X : 0) | (w & 8 ? Q_S : 0);

		/* Any-of needs a permission bit. */
		if (any && !(w & 15))
			continue;
		words++;
		for (bid = 0; bid < 2; bid++) {
			/* Any-of: C refuses it (EINVAL); Rust singles are the oracle. */
			if (!any) {
				ASSERT_TRUE(use_impl(IMPL_C));
				nc = single_walk(self->fd, 0, filters, true, bid, c_ref, MAX_VMAS);
				ASSERT_TRUE(use_impl(IMPL_RUST));
			}
			nr = single_walk(self->fd, 0, filters, true, bid, rust_ref, MAX_VMAS);
			if (!any) {
				ASSERT_EQ(nc, nr);
				ASSERT_EQ(0, memcmp(c_ref, rust_ref, nr * sizeof(*c_ref)));
			}
			ASSERT_TRUE(walk_matches(_metadata, self->fd, 0, filters,
						 bid ? PROCMAP_BATCH_BUILD_ID : 0, MAX_VMAS,
						 NAMES_MAX, rust_ref, nr));
		}
	}
	ASSERT_EQ(62, words);
	free(c_ref);
	free(rust_ref);
}

/*
 * Looks @addrs up with batches of @room records, resuming until all are
 * answered, and compares each answer with the single query's (@ref, @ref_err).
 */
static bool lookup_matches(struct __test_metadata *_metadata, int fd, const uint64_t *addrs,
			   int n, uint64_t filters, bool bid, uint32_t room,
			   const struct answer *ref, const int *ref_err, uint32_t *idx)
{
	static struct procmap_batch_vma recs[MAX_VMAS];
	static char names[NAMES_MAX];
	int done = 0, calls = 0, k, j;

	while (done < n) {
		struct procmap_batch b;

		memset(&b, 0, sizeof(b));
		memset(idx, 0xa5, n * sizeof(*idx));
		b.size = sizeof(b);
		b.flags = PROCMAP_BATCH_LOOKUP | (bid ? PROCMAP_BATCH_BUILD_ID : 0);
		b.query_flags = filters;
		b.addrs = ptr_to_u64(addrs + done);
		b.addr_vmas = ptr_to_u64(idx + done);
		b.addr_count = n - done;
		b.vmas = ptr_to_u64(recs);
		b.vma_count = room;
		b.vma_size = sizeof(recs[0]);
		b.names = ptr_to_u64(names);
		b.names_size = sizeof(names);
		EXPECT_EQ(0, batch(fd, &b)) return false;
		EXPECT_GE(room, b.vma_count) return false;
		EXPECT_LT(0, b.addr_count) return false;
		EXPECT_GE(n - done, (int)b.addr_count) return false;
		EXPECT_EQ(done + b.addr_count == (uint32_t)n, !!(b.out_flags & PROCMAP_BATCH_DONE))
			return false;
		for (k = 0; k < (int)b.addr_count; k++) {
			int a = done + k;

			if (ref_err[a]) {
				EXPECT_EQ(ENOENT, ref_err[a]) return false;
				EXPECT_EQ(NO_VMA, idx[a]) return false;
				continue;
			}
			EXPECT_GT(b.vma_count, idx[a]) {
				TH_LOG("address %#" PRIx64 " filters %#" PRIx64, addrs[a], filters);
				return false;
			}
			EXPECT_TRUE(same(&recs[idx[a]], names, &ref[a])) return false;
		}
		/* Each VMA once per call. */
		for (k = 0; k < (int)b.vma_count; k++)
			for (j = k + 1; j < (int)b.vma_count; j++)
				EXPECT_NE(recs[k].vma_start, recs[j].vma_start) return false;
		done += b.addr_count;
		EXPECT_GT(10000, ++calls) return false;
	}
	return true;
}

/* Shuffles @n addresses in place (Fisher-Yates), drawing from @seed. */
static void shuffle(uint64_t *addrs, uint32_t n, unsigned int *seed)
{
	uint32_t i, j;

	for (i = n - 1; n > 1 && i > 0; i--) {
		uint64_t t = addrs[i];

		j = rand_r(seed) % (i + 1);
		addrs[i] = addrs[j];
		addrs[j] = t;
	}
}

/* Lookups (in order, shuffled, repeated; every room) equal the single queries. */
TEST_F_TIMEOUT(batch, lookup_equals_single_queries, 1800)
{
	static const uint32_t rooms[] = { 1, 3, MAX_VMAS };
	int nf = ARRAY_SIZE(filter_set);
	int n = self->nbounds * 2, f, r, i, order, checked = 0;
	uint64_t *addrs = calloc(n, sizeof(*addrs));
	uint32_t *idx = calloc(n, sizeof(*idx));
	struct answer *ref = calloc(n, sizeof(*ref));
	int *ref_err = calloc(n, sizeof(*ref_err));
	unsigned int seed = 1;

	ASSERT_TRUE((addrs) != NULL);
	ASSERT_TRUE((idx) != NULL);
	ASSERT_TRUE((ref) != NULL);
	ASSERT_TRUE((ref_err) != NULL);
	for (order = 0; order < 3; order++) {
		/*
		 * Each bound and the address after it (a VMA's last byte, then
		 * its end: where the next VMA starts, or a gap); 0: ascending,
		 * 1: shuffled, 2: descending.
		 */
		for (i = 0; i < n; i++)
			addrs[i] = self->bounds[i / 2] + i % 2;
		if (order == 1) {
			shuffle(addrs, n, &seed);
		} else if (order == 2) {
			for (i = 0; i < n / 2; i++) {
				uint64_t t = addrs[i];

				addrs[i] = addrs[n - 1 - i];
				addrs[n - 1 - i] = t;
			}
		}
		for (f = 0; f < nf; f++) {
			bool bid = (f + order) % 2;

			for (i = 0; i < n; i++)
				ref_err[i] = single(self->fd, addrs[i], filter_set[f], true, bid,
						    &ref[i]);
			if (!(filter_set[f] & Q_ANY)) {
				struct answer c;

				ASSERT_TRUE(use_impl(IMPL_C));
				for (i = 0; i < n; i++) {
					ASSERT_EQ(ref_err[i], single(self->fd, addrs[i],
								     filter_set[f], true, bid,
								     &c));
					if (!ref_err[i])
						ASSERT_EQ(0, memcmp(&c, &ref[i], sizeof(c)));
				}
				ASSERT_TRUE(use_impl(IMPL_RUST));
			}
			for (r = 0; r < 3; r++) {
				ASSERT_TRUE(lookup_matches(_metadata, self->fd, addrs, n,
							   filter_set[f], bid, rooms[r], ref,
							   ref_err, idx));
				checked++;
			}
		}
	}
	TH_LOG("%d lookups of %d addresses, each equal to the single queries", checked, n);
	free(addrs);
	free(idx);
	free(ref);
	free(ref_err);
}

/* The any-of filter equals a full walk filtered here, in single queries and batches. */
TEST_F(batch, any_of_equals_filtered_walk)
{
	static struct procmap_batch_vma recs[MAX_VMAS];
	struct answer *all = calloc(MAX_VMAS, sizeof(*all));
	struct answer *any = calloc(MAX_VMAS, sizeof(*any));
	int n, perm, file, i, k;

	ASSERT_TRUE((all) != NULL);
	ASSERT_TRUE((any) != NULL);
	n = single_walk(self->fd, 0, 0, false, false, all, MAX_VMAS);
	for (perm = 1; perm < 16; perm++) {
		for (file = 0; file < 2; file++) {
			uint64_t filters = Q_ANY | perm | (file ? Q_FILE : 0);
			struct procmap_batch b;
			int m;

			m = single_walk(self->fd, 0, filters, false, false, any, MAX_VMAS);
			init_walk(&b, 0, filters, 0, recs, MAX_VMAS, NULL, 0);
			ASSERT_EQ(0, batch(self->fd, &b));
			ASSERT_TRUE(b.out_flags & PROCMAP_BATCH_DONE);
			ASSERT_EQ(m, (int)b.vma_count);
			for (i = 0, k = 0; i < n; i++) {
				if (!(all[i].rec.vma_flags & perm))
					continue;
				if (file && !all[i].rec.inode && !all[i].rec.dev_major &&
				    !all[i].rec.dev_minor)
					continue;	/* anonymous (memfd/shm have an inode) */
				ASSERT_GT(m, k);
				ASSERT_EQ(all[i].rec.vma_start, any[k].rec.vma_start);
				ASSERT_EQ(all[i].rec.vma_start, recs[k].vma_start);
				k++;
			}
			ASSERT_EQ(m, k) TH_LOG("perm %#x file %d", perm, file);
		}
	}
	/* C does not know the flag: EINVAL, the way to detect the extension. */
	ASSERT_TRUE(use_impl(IMPL_C));
	ASSERT_EQ(EINVAL, single(self->fd, 0, Q_ANY | Q_R | Q_NEXT, false, false, any));
	ASSERT_TRUE(use_impl(IMPL_RUST));
	free(all);
	free(any);
}

static uint64_t generation(int fd)
{
	uint64_t gen = 0;

	if (ioctl(fd, PROCMAP_QUERY_GENERATION, &gen))
		return 0;
	return gen;
}

static void read_maps_text(void)
{
	char buf[4096];
	int mfd = open("/proc/self/maps", O_RDONLY);

	while (mfd >= 0 && read(mfd, buf, sizeof(buf)) > 0)
		;
	close(mfd);
}

/*
 * Whether the kernel cannot tell the generation: one without per-VMA locks
 * (CONFIG_PER_VMA_LOCK needs SMP) reports PROCMAP_GENERATION_UNKNOWN. Which
 * kind of kernel runs the tests is for the runner to say, in
 * PROCMAP_EXPECT_GENERATION ("counted" or "unknown"), so that a kernel that
 * lost count cannot pass for one that never had it.
 */
static bool generation_unknown(int fd)
{
	return generation(fd) == PROCMAP_GENERATION_UNKNOWN;
}

/*
 * Generation: changes with every kind of VMA change, not without one; or,
 * where the kernel cannot tell, PROCMAP_GENERATION_UNKNOWN every time.
 */
TEST(generation_changes_with_the_vmas)
{
	const char *want = getenv("PROCMAP_EXPECT_GENERATION"), *kind;
	int fd = open("/proc/self/maps", O_RDONLY);
	bool unknown;
	uint64_t g0, g1;
	char *p, *q;

	ASSERT_TRUE(use_impl(IMPL_RUST));
	ASSERT_LE(0, fd);
	unknown = generation_unknown(fd);
	kind = unknown ? "unknown" : "counted";
	ASSERT_STREQ(want ? want : kind, kind);
	TH_LOG("generation: %s", kind);
	g0 = generation(fd);
	ASSERT_NE(0, g0);
	ASSERT_TRUE(unknown || g0 % 2 == 0);
	ASSERT_EQ(g0, generation(fd));
	/* Reading the maps, queries, getpid(): no VMA change. */
	read_maps_text();
	getpid();
	ASSERT_EQ(g0, generation(fd));

#define CHANGED(what) do {					\
		g1 = generation(fd);				\
		EXPECT_TRUE(unknown ? g1 == PROCMAP_GENERATION_UNKNOWN : \
			    g1 != g0 && g1 % 2 == 0)		\
			TH_LOG("after %s: %#llx, before: %#llx", what, \
			       (unsigned long long)g1, (unsigned long long)g0); \
		g0 = g1;					\
	} while (0)

	p = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE((p) != MAP_FAILED);
	CHANGED("mmap");
	ASSERT_EQ(0, mprotect(p, PAGE, PROT_READ));
	CHANGED("mprotect");
	ASSERT_EQ(0, madvise(p + 4 * PAGE, PAGE, MADV_DONTFORK));
	CHANGED("a splitting madvise");
	ASSERT_EQ(0, prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, p + 6 * PAGE, PAGE, "pqb-gen"));
	CHANGED("PR_SET_VMA_ANON_NAME");
	q = mremap(p + 6 * PAGE, PAGE, 2 * PAGE, MREMAP_MAYMOVE);
	ASSERT_TRUE((q) != MAP_FAILED);
	CHANGED("mremap");
	ASSERT_EQ(0, munmap(p, 6 * PAGE));
	CHANGED("munmap");
	ASSERT_EQ(0, munmap(q, 2 * PAGE));
	CHANGED("munmap of the moved VMA");
	q = sbrk(0);
	ASSERT_TRUE((sbrk(64 * PAGE)) != (void *)-1);
	CHANGED("brk");
	ASSERT_TRUE((sbrk(-64 * PAGE)) != (void *)-1);
	CHANGED("brk down");
	ASSERT_EQ(g0, generation(fd));
	close(fd);
}

/* One line of the maps text. */
struct text_line {
	uint64_t start, end, offset, inode;
	unsigned int major, minor, flags;
	char name[256];
};

/* Parses the maps text of @pid into @out (no [vsyscall]); returns the count. */
static int read_text(int pid, struct text_line *out, int max)
{
	char path[64], line[512], perms[8];
	int n = 0, pos;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (n < max && fgets(line, sizeof(line), f)) {
		struct text_line *t = &out[n];
		char *name;

		if (strstr(line, "[vsyscall]"))
			continue;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 "%n",
			   &t->start, &t->end, perms, &t->offset, &t->major, &t->minor, &t->inode,
			   &pos) != 7)
			break;
		t->flags = (perms[0] == 'r' ? Q_R : 0) | (perms[1] == 'w' ? Q_W : 0) |
			   (perms[2] == 'x' ? Q_X : 0) | (perms[3] == 's' ? Q_S : 0);
		for (name = line + pos; *name == ' '; name++)
			;
		name[strcspn(name, "\n")] = 0;
		snprintf(t->name, sizeof(t->name), "%s", name);
		n++;
	}
	fclose(f);
	return n;
}

/* A batch with equal generations is a snapshot: it equals the maps text. */
TEST_F(batch, equal_generations_mean_the_maps_text)
{
	static struct procmap_batch_vma recs[MAX_VMAS];
	static struct text_line text[MAX_VMAS];
	struct procmap_batch b;
	int n, i;

	init_walk(&b, 0, 0, 0, recs, MAX_VMAS, NULL, 0);
	ASSERT_EQ(0, batch(self->fd, &b));
	ASSERT_TRUE(b.out_flags & PROCMAP_BATCH_DONE);
	ASSERT_EQ(b.gen_start, b.gen_end);
	/* Where the kernel cannot tell, no batch says it is a snapshot. */
	ASSERT_TRUE(generation_unknown(self->fd) ? b.gen_start == PROCMAP_GENERATION_UNKNOWN :
		    b.gen_start % 2 == 0);
	/* The fixture's process does not change its VMAs: the text is the same. */
	n = read_text(self->pid, text, MAX_VMAS);
	ASSERT_EQ(b.gen_end, generation(self->fd));
	ASSERT_EQ(n, (int)b.vma_count);
	for (i = 0; i < n; i++)
		ASSERT_EQ(text[i].start, recs[i].vma_start);
	/* N = 0: nothing examined, the generation read, not done. */
	init_walk(&b, 0, 0, 0, NULL, 0, NULL, 0);
	ASSERT_EQ(0, batch(self->fd, &b));
	ASSERT_EQ(0, b.vma_count);
	ASSERT_EQ(0, b.addr);
	ASSERT_EQ(0, b.out_flags);
	ASSERT_EQ(generation(self->fd), b.gen_start);
}

/*
 * The mmap-lock fallback. lock_next_vma() gives -EAGAIN only when a VMA
 * cannot be read-locked on its own (its lock count would overflow: about
 * 2^30 readers at once), and lock_vma_under_rcu() fails for a mapped address
 * only in a race with a writer, so no test can get there reliably by locking.
 * The kernel lets both be made to fail (fail_function, ALLOW_ERROR_INJECTION):
 * with every call failing, or every third, each search of C and Rust must go
 * on under the mmap read lock (or the next lookup) and answer exactly as
 * without the failures. They are for every task while the test runs: here
 * fail_function fails from a kprobe's int3, which x86 enters as an NMI, where
 * its task filter (make-it-fail) never matches. A kernel without
 * fail_function skips the test, unless PROCMAP_REQUIRE_INJECTION is set.
 */
#define FAIL_FN "fail_function"
#define INJECTIONS 100000000L

static const struct {
	const char *name;
	bool next, under_rcu;	/* lock_next_vma(), lock_vma_under_rcu() fail */
	const char *interval;	/* every call fails, or every third */
} injections[] = {
	[INJECT_NEXT] = { "every lock_next_vma()", true, false, "1" },
	[INJECT_NEXT_THIRD] = { "every third lock_next_vma()", true, false, "3" },
	[INJECT_UNDER_RCU] = { "every lock_vma_under_rcu()", false, true, "1" },
	[INJECT_BOTH] = { "every lock_next_vma() and lock_vma_under_rcu()", true, true, "1" },
};

/* Failures still to inject (fail_function's "times"), or -1 if unreadable. */
static long injections_left(void)
{
	FILE *f = fopen("/sys/kernel/debug/" FAIL_FN "/times", "r");
	long n = -1;

	if (f && fscanf(f, "%ld", &n) != 1)
		n = -1;
	if (f)
		fclose(f);
	return n;
}

/* Makes the VMA lookups of @which fail (lock_next_vma() with -EAGAIN), or none. */
static bool fail_lookups(enum inject which)
{
	char times[32];

	mount_debugfs();
	if (!set_debugfs(FAIL_FN "/probability", "0") || !set_debugfs(FAIL_FN "/inject", "\n"))
		return false;
	if (which == INJECT_NONE)
		return true;
	snprintf(times, sizeof(times), "%ld", INJECTIONS);
	/* An ERRNO injection returns -EINVAL unless told otherwise. */
	return (!injections[which].next ||
		(set_debugfs(FAIL_FN "/inject", "lock_next_vma") &&
		 set_debugfs(FAIL_FN "/lock_next_vma/retval", "0xfffffffffffffff5"))) &&
	       (!injections[which].under_rcu ||
		set_debugfs(FAIL_FN "/inject", "lock_vma_under_rcu")) &&
	       set_debugfs(FAIL_FN "/task-filter", "N") && set_debugfs(FAIL_FN "/verbose", "0") &&
	       set_debugfs(FAIL_FN "/interval", injections[which].interval) &&
	       set_debugfs(FAIL_FN "/times", times) && set_debugfs(FAIL_FN "/probability", "100");
}

/* The whole maps text of @pid into @buf; its length, or -1. */
static ssize_t maps_bytes(pid_t pid, char *buf, size_t size)
{
	char path[64];
	ssize_t n, len = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while ((size_t)len < size && (n = read(fd, buf + len, size - len)) > 0)
		len += n;
	close(fd);
	return len;
}

/*
 * Failures since *@left, logged; updates *@left. Only lock_next_vma() failures
 * are all ours: anything may call lock_vma_under_rcu() (a page fault), so
 * where it fails too, the count proves nothing and 0 is returned.
 */
static long count_failures(struct __test_metadata *_metadata, enum inject mode,
			   const char *what, long *left)
{
	long now = injections_left(), n = *left - now;

	*left = now;
	TH_LOG("%s failing: %s, %ld failures", injections[mode].name, what, n);
	return injections[mode].under_rcu ? 0 : n;
}

/*
 * The single queries with @filters (and a build ID if @bid) equal the answers
 * taken without failures: a walk by COVERING_OR_NEXT_VMA (@walk, @nwalk
 * VMAs) and exact queries at the @n addresses of @bounds (@exact, @exact_err).
 */
static bool singles_match(struct __test_metadata *_metadata, int fd, uint64_t filters, bool bid,
			  const struct answer *walk, int nwalk, const uint64_t *bounds, int n,
			  const struct answer *exact, const int *exact_err, struct answer *a)
{
	int i;

	EXPECT_EQ(nwalk, single_walk(fd, 0, filters, true, bid, a, MAX_VMAS)) return false;
	for (i = 0; i < nwalk; i++)
		EXPECT_EQ(0, memcmp(&a[i], &walk[i], sizeof(*a))) {
			TH_LOG("VMA %d, filters %#llx", i, (unsigned long long)filters);
			return false;
		}
	for (i = 0; i < n; i++) {
		EXPECT_EQ(exact_err[i], single(fd, bounds[i], filters, true, bid, a)) {
			TH_LOG("%#llx, filters %#llx", (unsigned long long)bounds[i],
			       (unsigned long long)filters);
			return false;
		}
		if (!exact_err[i])
			EXPECT_EQ(0, memcmp(a, &exact[i], sizeof(*a))) return false;
	}
	return true;
}

TEST_F_TIMEOUT(batch, lock_failures_fall_back_to_the_mmap_lock, 900)
{
	static const uint64_t filters[] = { 0, Q_R, Q_FILE | Q_X, Q_ANY | Q_R | Q_X };
	static const uint32_t rooms[] = { 1, 3, MAX_VMAS };
	static char text[16384], text2[16384];
	enum { NF = ARRAY_SIZE(filters) };
	struct answer *walk[NF], *exact[NF], *a = calloc(MAX_VMAS, sizeof(*a));
	int nwalk[NF], *exact_err[NF], n = self->nbounds, f, i, r, mode, next_queries;
	uint32_t *idx = calloc(n, sizeof(*idx));
	ssize_t len, len2;
	long left, got;

	ASSERT_TRUE(a && idx);
	if (generation_unknown(self->fd)) {
		ASSERT_STREQ("unknown", getenv("PROCMAP_EXPECT_GENERATION") ?: "unknown");
		SKIP(return, "no per-VMA locks: every search takes the mmap lock already");
	}
	/* The answers without failures (Rust; other tests hold it equal to C). */
	for (f = 0; f < NF; f++) {
		walk[f] = calloc(MAX_VMAS, sizeof(**walk));
		exact[f] = calloc(n, sizeof(**exact));
		exact_err[f] = calloc(n, sizeof(**exact_err));
		ASSERT_TRUE(walk[f] && exact[f] && exact_err[f]);
		nwalk[f] = single_walk(self->fd, 0, filters[f], true, f % 2, walk[f], MAX_VMAS);
		ASSERT_LT(0, nwalk[f]);
		for (i = 0; i < n; i++)
			exact_err[f][i] = single(self->fd, self->bounds[i], filters[f], true, f % 2,
						 &exact[f][i]);
	}
	len = maps_bytes(self->pid, text, sizeof(text));
	ASSERT_LT(0, len);
	ASSERT_GT((ssize_t)sizeof(text), len);

	self->injecting = true;
	if (!fail_lookups(INJECT_NEXT)) {
		/* The project's test kernel has it; elsewhere it may be missing. */
		ASSERT_TRUE(!getenv("PROCMAP_REQUIRE_INJECTION"))
			TH_LOG("no fail_function for lock_next_vma()");
		SKIP(return, "no fail_function for lock_next_vma() (CONFIG_FAIL_FUNCTION)");
	}
	for (mode = INJECT_NEXT; mode <= INJECT_BOTH; mode++) {
		const char *name = injections[mode].name;

		ASSERT_TRUE(fail_lookups(mode));
		left = injections_left();

		/* Rust, single queries: walks by COVERING_OR_NEXT_VMA, and exact ones. */
		next_queries = 0;
		for (f = 0; f < NF; f++) {
			ASSERT_TRUE(singles_match(_metadata, self->fd, filters[f], f % 2, walk[f],
						  nwalk[f], self->bounds, n, exact[f],
						  exact_err[f], a))
				TH_LOG("%s failing", name);
			next_queries += nwalk[f] + 1;
		}
		got = count_failures(_metadata, mode, "Rust single queries", &left);
		/* Each query that goes on to the next VMA tries to lock one on its own. */
		if (mode == INJECT_NEXT)
			ASSERT_LE(next_queries, got);

		/* Rust, batch walks and lookups. */
		for (f = 0; f < NF; f++) {
			uint64_t bid = f % 2 ? PROCMAP_BATCH_BUILD_ID : 0;

			for (r = 0; r < 3; r++)
				ASSERT_TRUE(walk_matches_any_names(_metadata, self->fd, 0,
								   filters[f], bid, rooms[r],
								   r ? NAMES_MAX : 0, walk[f],
								   nwalk[f]))
					TH_LOG("%s failing", name);
		}
		got = count_failures(_metadata, mode, "Rust batch walks", &left);
		ASSERT_TRUE(injections[mode].under_rcu || got > 0);
		for (f = 0; f < NF; f++)
			for (r = 0; r < 3; r++)
				ASSERT_TRUE(lookup_matches(_metadata, self->fd, self->bounds, n,
							   filters[f], f % 2, rooms[r], exact[f],
							   exact_err[f], idx))
					TH_LOG("%s failing", name);
		/* The addresses no VMA covers are searched on from there. */
		got = count_failures(_metadata, mode, "Rust batch lookups", &left);
		ASSERT_TRUE(injections[mode].under_rcu || got > 0);

		/* C, the oracle, and the maps text (C too), under the same failures. */
		ASSERT_TRUE(use_impl(IMPL_C));
		for (f = 0; f < NF; f++)
			if (!(filters[f] & Q_ANY))
				ASSERT_TRUE(singles_match(_metadata, self->fd, filters[f], f % 2,
							  walk[f], nwalk[f], self->bounds, n,
							  exact[f], exact_err[f], a))
					TH_LOG("C, %s failing", name);
		got = count_failures(_metadata, mode, "C single queries", &left);
		ASSERT_TRUE(injections[mode].under_rcu || got > 0);
		len2 = maps_bytes(self->pid, text2, sizeof(text2));
		ASSERT_EQ(len, len2);
		ASSERT_EQ(0, memcmp(text, text2, len)) TH_LOG("%s failing", name);
		got = count_failures(_metadata, mode, "the maps text", &left);
		ASSERT_TRUE(injections[mode].under_rcu || got > 0);
		ASSERT_TRUE(use_impl(IMPL_RUST));
	}

	ASSERT_TRUE(fail_lookups(INJECT_NONE));
	self->injecting = false;
	for (f = 0; f < NF; f++) {
		free(walk[f]);
		free(exact[f]);
		free(exact_err[f]);
	}
	free(a);
	free(idx);
}

static int batch_errno(int fd, struct procmap_batch *b)
{
	return batch(fd, b);
}

/* Contract: sizes, flags, buffers set by half, the other mode's fields. */
TEST_F(batch, contract_einval_e2big)
{
	static struct procmap_batch_vma recs[4];
	static char names[64];
	char big[PAGE + 16];
	struct procmap_batch b;
	uint64_t addrs[1] = { 0 };
	uint32_t idx[1];

	init_walk(&b, 0, 0, 0, recs, 4, names, sizeof(names));
#define EXPECT_ERR(err, field, value) do {				\
		struct procmap_batch c = b;				\
		c.field = value;					\
		EXPECT_EQ(err, batch_errno(self->fd, &c)) TH_LOG(#field " = " #value); \
	} while (0)
	EXPECT_ERR(EINVAL, size, 0);
	EXPECT_ERR(EINVAL, size, sizeof(b) - 8);
	EXPECT_ERR(E2BIG, size, PAGE + 1);
	EXPECT_ERR(EINVAL, flags, 4);
	EXPECT_ERR(EINVAL, flags, 1ULL << 63);
	EXPECT_ERR(EINVAL, query_flags, Q_NEXT);
	EXPECT_ERR(EINVAL, query_flags, Q_ANY);
	EXPECT_ERR(EINVAL, query_flags, Q_ANY | Q_FILE);
	EXPECT_ERR(EINVAL, query_flags, 0x40);
	EXPECT_ERR(EINVAL, vma_size, 0);
	EXPECT_ERR(EINVAL, vma_size, sizeof(recs[0]) - 8);
	EXPECT_ERR(EINVAL, vma_size, sizeof(recs[0]) + 4);
	EXPECT_ERR(E2BIG, vma_size, PAGE + 8);
	EXPECT_ERR(E2BIG, vma_size, PAGE + 4);	/* above a page comes first */
	EXPECT_ERR(EINVAL, vmas, 0);
	EXPECT_ERR(EINVAL, vma_count, 0);
	EXPECT_ERR(EINVAL, names, 0);
	EXPECT_ERR(EINVAL, names_size, 0);
	EXPECT_ERR(EINVAL, addrs, ptr_to_u64(addrs));
	EXPECT_ERR(EINVAL, addr_vmas, ptr_to_u64(idx));
	EXPECT_ERR(EINVAL, addr_count, 1);
	/* A lookup: all three of its arrays, and no start address. */
	b.flags = PROCMAP_BATCH_LOOKUP;
	b.addrs = ptr_to_u64(addrs);
	b.addr_vmas = ptr_to_u64(idx);
	b.addr_count = 1;
	EXPECT_EQ(0, batch_errno(self->fd, &b));
	EXPECT_ERR(EINVAL, addr, 0x1000);
	EXPECT_ERR(EINVAL, addrs, 0);
	EXPECT_ERR(EINVAL, addr_vmas, 0);
	EXPECT_ERR(EINVAL, addr_count, 0);

	/* Size-extensible: a longer struct with a zero tail works, a non-zero tail is E2BIG. */
	init_walk(&b, 0, 0, 0, recs, 4, names, sizeof(names));
	memset(big, 0, sizeof(big));
	b.size = sizeof(b) + 16;
	memcpy(big, &b, sizeof(b));
	EXPECT_EQ(0, query_errno(self->fd, PROCMAP_QUERY_BATCH, big));
	big[sizeof(b) + 8] = 1;
	EXPECT_EQ(E2BIG, query_errno(self->fd, PROCMAP_QUERY_BATCH, big));
}

/* A larger record than the kernel's: its tail is zeroed. */
TEST_F(batch, larger_records_have_a_zeroed_tail)
{
	static unsigned char buf[8][sizeof(struct procmap_batch_vma) + 24];
	static struct procmap_batch_vma recs[8];
	struct procmap_batch b;
	int i;

	init_walk(&b, 0, 0, 0, recs, 8, NULL, 0);
	ASSERT_EQ(0, batch(self->fd, &b));
	memset(buf, 0xff, sizeof(buf));
	init_walk(&b, 0, 0, 0, buf, 8, NULL, 0);
	b.vma_size = sizeof(buf[0]);
	ASSERT_EQ(0, batch(self->fd, &b));
	ASSERT_EQ(8, b.vma_count);
	for (i = 0; i < 8; i++) {
		unsigned char zero[24] = { 0 };

		ASSERT_EQ(0, memcmp(buf[i], &recs[i], sizeof(recs[i])));
		ASSERT_EQ(0, memcmp(buf[i] + sizeof(recs[i]), zero, sizeof(zero)));
	}
}

/*
 * EFAULT: the header, and an array or buffer faulting at its first, a middle
 * and its last element (the array ends in a PROT_NONE page).
 */
TEST_F(batch, bad_pointers_are_efault)
{
	size_t rs = sizeof(struct procmap_batch_vma);
	char *area = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *guard = area + 2 * PAGE;
	struct procmap_batch b;
	int at;

	ASSERT_TRUE((area) != MAP_FAILED);
	ASSERT_EQ(0, mprotect(guard, 2 * PAGE, PROT_NONE));
	EXPECT_EQ(EFAULT, query_errno(self->fd, PROCMAP_QUERY_BATCH, guard));
	EXPECT_EQ(EFAULT, query_errno(self->fd, PROCMAP_QUERY_BATCH, (void *)8));
	/* Records: element 0, 5 and 99 of 100 are the first in the guard page. */
	for (at = 0; at < 3; at++) {
		int first_bad = at == 0 ? 0 : at == 1 ? 5 : 19;
		char *vmas = guard - first_bad * rs;

		init_walk(&b, 0, 0, 0, vmas, 20, NULL, 0);
		EXPECT_EQ(EFAULT, batch(self->fd, &b)) TH_LOG("record %d faults", first_bad);
		/* With room for just the good ones, it works. */
		if (first_bad) {
			init_walk(&b, 0, 0, 0, vmas, first_bad, NULL, 0);
			EXPECT_EQ(0, batch(self->fd, &b));
			EXPECT_EQ(first_bad, (int)b.vma_count);
		}
	}
	/* Names: the buffer runs into the guard page. */
	{
		static struct procmap_batch_vma recs[MAX_VMAS];

		init_walk(&b, 0, 0, 0, recs, MAX_VMAS, guard - 64, NAMES_MAX);
		EXPECT_EQ(EFAULT, batch(self->fd, &b));
	}
	/*
	 * Lookup: the addresses, or the answers, fault at the first, a middle or
	 * the last element; the header is then left as it was.
	 */
	for (at = 0; at < 3; at++) {
		static struct procmap_batch_vma recs[MAX_VMAS];
		int first_bad = at == 0 ? 0 : at == 1 ? 57 : 99;
		uint64_t *addrs = (uint64_t *)(guard - first_bad * sizeof(uint64_t));
		uint32_t *idx = (uint32_t *)(guard - first_bad * sizeof(uint32_t));
		uint32_t good_idx[100];
		uint64_t good_addrs[100];
		struct procmap_batch before;
		int i, arr;

		for (i = 0; i < 100; i++)
			good_addrs[i] = self->bounds[i % self->nbounds];
		memcpy(addrs, good_addrs, first_bad * sizeof(*addrs));
		for (arr = 0; arr < 2; arr++) {
			memset(&b, 0, sizeof(b));
			b.size = sizeof(b);
			b.flags = PROCMAP_BATCH_LOOKUP;
			b.vmas = ptr_to_u64(recs);
			b.vma_count = MAX_VMAS;
			b.vma_size = rs;
			b.addrs = ptr_to_u64(arr ? good_addrs : addrs);
			b.addr_vmas = ptr_to_u64(arr ? idx : good_idx);
			b.addr_count = 100;
			before = b;
			EXPECT_EQ(EFAULT, batch(self->fd, &b))
				TH_LOG("%s: element %d faults",
				       arr ? "addr_vmas" : "addrs", first_bad);
			EXPECT_EQ(0, memcmp(&before, &b, sizeof(b)));
		}
	}
	/* A walk's header is left as it was too. */
	{
		struct procmap_batch before;

		init_walk(&b, 0, 0, 0, guard - 5 * rs, 20, NULL, 0);
		before = b;
		EXPECT_EQ(EFAULT, batch(self->fd, &b));
		EXPECT_EQ(0, memcmp(&before, &b, sizeof(b)));
	}
	/* Lookup: the addresses, and the answers, fault in the middle. */
	{
		static struct procmap_batch_vma recs[MAX_VMAS];
		uint64_t *addrs = (uint64_t *)(guard - 100 * sizeof(uint64_t));
		uint32_t *idx = (uint32_t *)(guard - 100 * sizeof(uint32_t));
		uint32_t good_idx[200];
		uint64_t good_addrs[200];
		int i;

		for (i = 0; i < 200; i++)
			good_addrs[i] = self->bounds[i % self->nbounds];
		memcpy(addrs, good_addrs, 100 * sizeof(*addrs));
		memset(&b, 0, sizeof(b));
		b.size = sizeof(b);
		b.flags = PROCMAP_BATCH_LOOKUP;
		b.vmas = ptr_to_u64(recs);
		b.vma_count = MAX_VMAS;
		b.vma_size = rs;
		b.addrs = ptr_to_u64(addrs);
		b.addr_vmas = ptr_to_u64(good_idx);
		b.addr_count = 200;
		EXPECT_EQ(EFAULT, batch(self->fd, &b));
		b.addrs = ptr_to_u64(good_addrs);
		b.addr_vmas = ptr_to_u64(idx);
		b.addr_count = 100;
		EXPECT_EQ(0, batch(self->fd, &b));
		EXPECT_EQ(100, b.addr_count);
		b.vma_count = MAX_VMAS;
		b.addr_count = 200;
		EXPECT_EQ(EFAULT, batch(self->fd, &b));
	}
	munmap(area, 4 * PAGE);
}

/* Names that do not fit: ENAMETOOLONG if none fits, else the batch stops before it. */
TEST_F(batch, names_that_do_not_fit)
{
	static struct procmap_batch_vma recs[MAX_VMAS];
	static char names[NAMES_MAX];
	struct answer *ref = calloc(MAX_VMAS, sizeof(*ref));
	struct procmap_batch b;
	int n, i, named = -1;

	ASSERT_TRUE((ref) != NULL);
	n = single_walk(self->fd, 0, 0, true, false, ref, MAX_VMAS);
	/* A named VMA right after one without a name (the target has such pairs). */
	for (i = 1; i < n && named < 0; i++)
		if (ref[i].rec.name_size > 2 && ref[i - 1].rec.name_size == 0 &&
		    ref[i - 1].rec.vma_end == ref[i].rec.vma_start)
			named = i;
	ASSERT_LT(0, named);
	/* The first named VMA with a 2-byte buffer: as PROCMAP_QUERY, ENAMETOOLONG. */
	init_walk(&b, ref[named].rec.vma_start, 0, 0, recs, MAX_VMAS, names, 2);
	EXPECT_EQ(ENAMETOOLONG, batch(self->fd, &b));
	/* From before it, with the 2 bytes: it stops before the named VMA, not done. */
	init_walk(&b, ref[named - 1].rec.vma_start, 0, 0, recs, MAX_VMAS, names, 2);
	EXPECT_EQ(0, batch(self->fd, &b));
	EXPECT_EQ(1, b.vma_count);
	EXPECT_EQ(0, b.out_flags);
	EXPECT_EQ(ref[named - 1].rec.vma_end, b.addr);
	EXPECT_EQ(0, b.names_size);
	/* The next call goes on from the named VMA: ENAMETOOLONG there, as above. */
	init_walk(&b, b.addr, 0, 0, recs, MAX_VMAS, names, 2);
	EXPECT_EQ(ENAMETOOLONG, batch(self->fd, &b));
	free(ref);
}

/* Overlapping buffers: the kernel's answer stands, nothing breaks. */
TEST_F(batch, overlapping_buffers)
{
	static struct procmap_batch_vma recs[MAX_VMAS];
	static struct procmap_batch_vma shared[MAX_VMAS];
	struct procmap_batch b, *h;

	init_walk(&b, 0, 0, 0, recs, MAX_VMAS, NULL, 0);
	ASSERT_EQ(0, batch(self->fd, &b));
	/* Records and names in one buffer: names are written first, records over them. */
	init_walk(&b, 0, 0, 0, shared, MAX_VMAS, (char *)shared, sizeof(shared));
	ASSERT_EQ(0, batch(self->fd, &b));
	ASSERT_EQ(0, memcmp(&recs[0].vma_start, &shared[0].vma_start, 6 * sizeof(uint64_t)));
	/* The header inside the record array: it is written last. */
	h = (struct procmap_batch *)&shared[1];
	init_walk(h, 0, 0, 0, shared, MAX_VMAS, NULL, 0);
	ASSERT_EQ(0, batch(self->fd, h));
	ASSERT_TRUE(h->out_flags & PROCMAP_BATCH_DONE);
	ASSERT_EQ(shared[0].vma_start, recs[0].vma_start);
}

/* Huge N: the room and sizes asked for are not allocated; the walk is bounded. */
TEST_F(batch, huge_n)
{
	static struct procmap_batch_vma recs[MAX_VMAS];
	static char names[NAMES_MAX];
	struct procmap_batch b;

	init_walk(&b, 0, 0, 0, recs, UINT32_MAX, names, UINT32_MAX);
	b.names_size = sizeof(names);
	ASSERT_EQ(0, batch(self->fd, &b));
	ASSERT_TRUE(b.out_flags & PROCMAP_BATCH_DONE);
	ASSERT_GT(MAX_VMAS, b.vma_count);
	/* A names size larger than the buffer: fine while the names fit the real one. */
	init_walk(&b, 0, 0, 0, recs, UINT32_MAX, names, UINT32_MAX);
	ASSERT_EQ(0, batch(self->fd, &b));
}

static void init_lookup(struct procmap_batch *b, const uint64_t *addrs, uint32_t *idx,
			uint32_t n, void *vmas, uint32_t vma_count)
{
	memset(b, 0, sizeof(*b));
	b->size = sizeof(*b);
	b->flags = PROCMAP_BATCH_LOOKUP;
	b->addrs = n ? ptr_to_u64(addrs) : 0;
	b->addr_vmas = n ? ptr_to_u64(idx) : 0;
	b->addr_count = n;
	b->vmas = vma_count ? ptr_to_u64(vmas) : 0;
	b->vma_count = vma_count;
	b->vma_size = sizeof(struct procmap_batch_vma);
}

/*
 * A lookup of no address answers nothing and is done; a lookup answers at
 * most PROCMAP_BATCH_MAX_VMAS addresses per call, then returns where to
 * resume, even when every address has the same answer.
 */
TEST_F(batch, lookup_of_none_and_of_too_many)
{
	static struct procmap_batch_vma recs[4];
	const uint32_t n = PROCMAP_BATCH_MAX_VMAS + 4464;
	uint64_t *addrs = calloc(n, sizeof(*addrs));
	uint32_t *idx = calloc(n, sizeof(*idx));
	struct procmap_batch b;
	uint32_t i, wrong = 0;

	ASSERT_TRUE((addrs) != NULL && (idx) != NULL);
	init_lookup(&b, NULL, NULL, 0, recs, 4);
	ASSERT_EQ(0, batch(self->fd, &b));
	EXPECT_EQ(0, b.addr_count);
	EXPECT_EQ(0, b.vma_count);
	EXPECT_EQ(PROCMAP_BATCH_DONE, b.out_flags);
	EXPECT_EQ(generation(self->fd), b.gen_start);

	for (i = 0; i < n; i++) {
		addrs[i] = self->bounds[2] + (i % 7);
		idx[i] = 12345;
	}
	init_lookup(&b, addrs, idx, n, recs, 4);
	ASSERT_EQ(0, batch(self->fd, &b));
	ASSERT_EQ(PROCMAP_BATCH_MAX_VMAS, b.addr_count);
	EXPECT_EQ(0, b.out_flags);
	ASSERT_EQ(1, b.vma_count);
	EXPECT_LE(recs[0].vma_start, addrs[0]);
	EXPECT_GT(recs[0].vma_end, addrs[0]);
	for (i = 0; i < n; i++)
		wrong += idx[i] != (i < PROCMAP_BATCH_MAX_VMAS ? 0 : 12345);
	EXPECT_EQ(0, wrong);
	/* Resumed at the next address: the rest, and done. */
	init_lookup(&b, addrs + PROCMAP_BATCH_MAX_VMAS, idx + PROCMAP_BATCH_MAX_VMAS,
		    n - PROCMAP_BATCH_MAX_VMAS, recs, 4);
	ASSERT_EQ(0, batch(self->fd, &b));
	EXPECT_EQ(n - PROCMAP_BATCH_MAX_VMAS, b.addr_count);
	EXPECT_EQ(PROCMAP_BATCH_DONE, b.out_flags);
	EXPECT_EQ(1, b.vma_count);
	for (i = PROCMAP_BATCH_MAX_VMAS; i < n; i++)
		wrong += idx[i] != 0;
	EXPECT_EQ(0, wrong);
	free(addrs);
	free(idx);
}

/*
 * Maps @vmas VMAs of @size pages each, every other one writable, so that
 * each is a VMA of its own: the area, or MAP_FAILED.
 */
static char *page_vmas(uint32_t vmas, uint32_t size)
{
	size_t len = (size_t)vmas * size * PAGE;
	char *area = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint32_t i;

	if (area == MAP_FAILED)
		return area;
	for (i = 1; i < vmas; i += 2) {
		if (mprotect(area + (size_t)i * size * PAGE, size * PAGE, PROT_READ | PROT_WRITE)) {
			munmap(area, len);
			return MAP_FAILED;
		}
	}
	return area;
}

/*
 * A lookup whose addresses come back below a VMA it reported keeps its
 * records sorted, merging new ones into them: such a call ends once it
 * holds 4096 records, and the next one resumes. Ascending addresses are
 * answered in one call.
 */
TEST(unsorted_lookup_ends_at_4096_records)
{
	static struct procmap_batch_vma recs[4200];
	static uint64_t addrs[4200];
	static uint32_t idx[4200];
	const uint32_t n = ARRAY_SIZE(addrs), most = 4096;
	unsigned int seed = 11;
	struct procmap_batch b;
	uint32_t i, done, calls;
	struct answer a;
	int fd, order;
	char *area;

	area = page_vmas(n, 1);
	ASSERT_TRUE(area != MAP_FAILED);
	fd = open("/proc/self/maps", O_RDONLY);
	ASSERT_LE(0, fd);
	for (order = 0; order < 3; order++) {
		/* 0: ascending; 1: descending; 2: shuffled. */
		for (i = 0; i < n; i++)
			addrs[i] = ptr_to_u64(area + (order == 1 ? n - 1 - i : i) * PAGE + 8);
		if (order == 2)
			shuffle(addrs, n, &seed);
		for (done = 0, calls = 0; done < n; done += b.addr_count, calls++) {
			init_lookup(&b, addrs + done, idx + done, n - done, recs,
				    ARRAY_SIZE(recs));
			ASSERT_EQ(0, batch(fd, &b));
			ASSERT_EQ(order ? (n - done < most ? n - done : most) : n, b.addr_count);
			ASSERT_EQ(b.addr_count, b.vma_count);
			ASSERT_EQ(done + b.addr_count == n, !!(b.out_flags & PROCMAP_BATCH_DONE));
			for (i = 0; i < b.vma_count; i++) {
				ASSERT_EQ(i, idx[done + i]);
				ASSERT_EQ(0, single(fd, addrs[done + i], 0, false, false, &a));
				ASSERT_EQ(a.rec.vma_start, recs[i].vma_start);
				ASSERT_EQ(a.rec.vma_end, recs[i].vma_end);
			}
		}
		EXPECT_EQ(order ? 2 : 1, calls);
	}
	close(fd);
	munmap(area, n * PAGE);
}

/*
 * Looks @n addresses up in one batch of @room records: it must answer them
 * all, with @vmas records, each VMA once, each answer the single query's.
 */
static bool one_call_answers(struct __test_metadata *_metadata, int fd, const uint64_t *addrs,
			     uint32_t *idx, uint32_t n, struct procmap_batch_vma *recs,
			     uint32_t room, uint32_t vmas)
{
	struct procmap_batch b;
	struct answer a;
	uint32_t i, j;

	init_lookup(&b, addrs, idx, n, recs, room);
	EXPECT_EQ(0, batch(fd, &b)) return false;
	EXPECT_EQ(n, b.addr_count) return false;
	EXPECT_TRUE(b.out_flags & PROCMAP_BATCH_DONE) return false;
	EXPECT_EQ(vmas, b.vma_count) return false;
	for (i = 0; i < b.vma_count; i++)
		for (j = i + 1; j < b.vma_count; j++)
			EXPECT_NE(recs[i].vma_start, recs[j].vma_start) return false;
	for (i = 0; i < n; i++) {
		EXPECT_LT(idx[i], b.vma_count) return false;
		EXPECT_EQ(0, single(fd, addrs[i], 0, false, false, &a)) return false;
		EXPECT_EQ(a.rec.vma_start, recs[idx[i]].vma_start) return false;
		EXPECT_EQ(a.rec.vma_end, recs[idx[i]].vma_end) return false;
	}
	return true;
}

/*
 * Maps @vmas VMAs of @size pages (page_vmas()) and looks up @n addresses in
 * them (each VMA once, then VMAs drawn at random from @seed, anywhere in
 * them; shuffled) in one batch of @room records: one_call_answers().
 */
static bool repeated_vmas_answer(struct __test_metadata *_metadata, uint32_t vmas, uint32_t size,
				 uint64_t *addrs, uint32_t *idx, uint32_t n,
				 struct procmap_batch_vma *recs, uint32_t room, unsigned int seed)
{
	char *area = page_vmas(vmas, size);
	bool ok = false;
	uint32_t i;
	int fd;

	EXPECT_TRUE(area != MAP_FAILED) return false;
	fd = open("/proc/self/maps", O_RDONLY);
	EXPECT_LE(0, fd) goto out;
	for (i = 0; i < n; i++) {
		uint32_t vma = i < vmas ? i : rand_r(&seed) % vmas;
		uint32_t page = vma * size + rand_r(&seed) % size;

		addrs[i] = ptr_to_u64(area + (size_t)page * PAGE + rand_r(&seed) % PAGE);
	}
	shuffle(addrs, n, &seed);
	ok = one_call_answers(_metadata, fd, addrs, idx, n, recs, room, vmas);
	close(fd);
out:
	munmap(area, (size_t)vmas * size * PAGE);
	return ok;
}

/*
 * A lookup out of address order, of more addresses than one pass answers
 * (256), whose VMAs repeat: each address is answered by the record of the
 * VMA covering it, as the single query finds it, and each VMA is reported
 * once, in one call (600 VMAs: more than one pass stages, below the 4096
 * records where such a call ends). Later passes find the records already
 * reported by a binary search of them sorted by address: the VMAs span
 * 2400 pages, more than the page cache's 1024 slots.
 */
TEST(unsorted_lookup_answers_each_vma_once)
{
	static struct procmap_batch_vma recs[1024];
	static uint64_t addrs[3000];
	static uint32_t idx[3000];

	ASSERT_TRUE(repeated_vmas_answer(_metadata, 600, 4, addrs, idx, ARRAY_SIZE(addrs), recs,
					 ARRAY_SIZE(recs), 7));
}

/*
 * A stack trace: 64 addresses out of order over 40 VMAs (each VMA once, then
 * VMAs drawn at random). A lookup of so few addresses stages fewer records
 * per pass (23) than it has VMAs: a second pass finds the first one's
 * records by searching them and reports only the new VMAs. One call answers
 * all, each VMA reported once, each answer the single query's.
 */
TEST(short_trace_over_more_vmas_than_its_stage)
{
	static struct procmap_batch_vma recs[64];
	static uint64_t addrs[64];
	static uint32_t idx[64];

	ASSERT_TRUE(repeated_vmas_answer(_metadata, 40, 2, addrs, idx, ARRAY_SIZE(addrs), recs,
					 ARRAY_SIZE(recs), 3));
}

/*
 * A lookup whose addresses ascend over more VMAs than a pass stages, then
 * descend: the records in order before the first that was not span passes,
 * and are merged with those after. One call answers all, each VMA reported
 * once, each answer the single query's.
 */
TEST(lookup_out_of_order_after_ascending_passes)
{
	static struct procmap_batch_vma recs[300];
	static uint64_t addrs[300];
	static uint32_t idx[300];
	const uint32_t n = ARRAY_SIZE(addrs), up = 100;
	uint32_t i;
	char *area;
	int fd;

	area = page_vmas(n, 1);
	ASSERT_TRUE(area != MAP_FAILED);
	fd = open("/proc/self/maps", O_RDONLY);
	ASSERT_LE(0, fd);
	/* Pages 0 to 99 ascending, then 299 down to 100. */
	for (i = 0; i < n; i++)
		addrs[i] = ptr_to_u64(area + (i < up ? i : n - 1 - (i - up)) * PAGE + 16);
	ASSERT_TRUE(one_call_answers(_metadata, fd, addrs, idx, n, recs, ARRAY_SIZE(recs), n));
	close(fd);
	munmap(area, n * PAGE);
}

/*
 * Tests that take long under TCG and need a timeout of their own; what they
 * change outside the process is undone in the teardown, which also runs when
 * an assertion fails: a writer process, vm.max_map_count.
 */
FIXTURE(slow) {
	pid_t pid;
	int sys;
	char old[32];
	ssize_t len;
};

FIXTURE_SETUP(slow)
{
	self->pid = 0;
	self->sys = -1;
	self->len = 0;
}

FIXTURE_TEARDOWN(slow)
{
	if (self->pid > 0) {
		kill(self->pid, SIGKILL);
		waitpid(self->pid, NULL, 0);
	}
	if (self->sys >= 0) {
		if (self->len > 0 && pwrite(self->sys, self->old, self->len, 0) != self->len)
			TH_LOG("vm.max_map_count not restored");
		close(self->sys);
	}
}

/*
 * A walk examines at most PROCMAP_BATCH_MAX_VMAS VMAs per call, reported or
 * filtered out, then returns where to resume: here 70000 anonymous VMAs
 * walked with a filter that none of them passes.
 */
TEST_F_TIMEOUT(slow, walk_examines_at_most_max_vmas, 900)
{
	const long nvmas = 70000;
	static struct procmap_batch_vma recs[4];
	struct procmap_batch b;
	int fd, calls = 0;
	uint64_t lo;
	char *area;
	long i;

	ASSERT_TRUE(use_impl(IMPL_RUST));
	/* Room for 70000 more VMAs than the default of 65530. */
	self->sys = open("/proc/sys/vm/max_map_count", O_RDWR);
	ASSERT_LE(0, self->sys);
	self->len = read(self->sys, self->old, sizeof(self->old) - 1);
	ASSERT_LT(0, self->len);
	ASSERT_EQ(6, pwrite(self->sys, "200000", 6, 0));
	area = mmap(NULL, nvmas * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	ASSERT_TRUE((area) != MAP_FAILED);
	for (i = 1; i < nvmas; i += 2)
		ASSERT_EQ(0, mprotect(area + i * PAGE, PAGE, PROT_READ));
	lo = ptr_to_u64(area);
	fd = open("/proc/self/maps", O_RDONLY);
	ASSERT_LE(0, fd);
	init_walk(&b, lo, Q_FILE, 0, recs, 4, NULL, 0);
	ASSERT_EQ(0, batch(fd, &b));
	EXPECT_EQ(0, b.vma_count);
	EXPECT_EQ(0, b.out_flags);
	EXPECT_EQ(lo + PROCMAP_BATCH_MAX_VMAS * PAGE, b.addr);
	/* Resumed, it goes on past the area to the end of the address space. */
	while (!(b.out_flags & PROCMAP_BATCH_DONE) && calls++ < 10) {
		uint64_t at = b.addr;

		init_walk(&b, at, Q_FILE, 0, recs, 4, NULL, 0);
		ASSERT_EQ(0, batch(fd, &b));
		if (b.vma_count)
			EXPECT_LE(lo + nvmas * PAGE, recs[0].vma_start);
		if (!(b.out_flags & PROCMAP_BATCH_DONE) && b.vma_count < 4)
			EXPECT_LT(at, b.addr);
	}
	EXPECT_TRUE(b.out_flags & PROCMAP_BATCH_DONE);
	close(fd);
	munmap(area, nvmas * PAGE);
}

/*
 * A name longer than PATH_MAX: PROCMAP_QUERY fails with ENAMETOOLONG, from C
 * and from Rust, and so does a batch that reaches its VMA, however large its
 * names buffer. A lookup that answered addresses before it (unmapped ones,
 * in the same pass or in an earlier one) returns those, and the next call
 * fails at its first address.
 */
TEST(name_longer_than_path_max)
{
	static struct procmap_batch_vma recs[4];
	static char names[4 * 4096];
	static uint64_t addrs[300];
	static uint32_t idx[300];
	char comp[251], cwd[256], root[] = "/tmp/pqn-XXXXXX";
	struct procmap_batch b;
	struct answer a;
	int fd, depth, impl, i, n;
	char *p;

	ASSERT_TRUE(getcwd(cwd, sizeof(cwd)) != NULL);
	memset(comp, 'd', sizeof(comp) - 1);
	comp[sizeof(comp) - 1] = 0;
	ASSERT_TRUE(mkdtemp(root) != NULL);
	ASSERT_EQ(0, chdir(root));
	/* 17 levels of 251 bytes: the path is over 4096 bytes. */
	for (depth = 0; depth < 17; depth++) {
		ASSERT_EQ(0, mkdir(comp, 0700));
		ASSERT_EQ(0, chdir(comp));
	}
	fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, PAGE));
	p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	ASSERT_TRUE((p) != MAP_FAILED);
	close(fd);
	fd = open("/proc/self/maps", O_RDONLY);
	ASSERT_LE(0, fd);
	for (impl = 0; impl < 2; impl++) {
		ASSERT_TRUE(use_impl(impl ? IMPL_RUST : IMPL_C));
		EXPECT_EQ(ENAMETOOLONG, single(fd, ptr_to_u64(p), 0, true, false, &a));
		EXPECT_EQ(0, single(fd, ptr_to_u64(p), 0, false, false, &a));
	}
	init_walk(&b, ptr_to_u64(p), 0, 0, recs, 4, names, sizeof(names));
	EXPECT_EQ(ENAMETOOLONG, batch(fd, &b));
	/* Without names it is reported. */
	init_walk(&b, ptr_to_u64(p), 0, 0, recs, 4, NULL, 0);
	ASSERT_EQ(0, batch(fd, &b));
	ASSERT_LE(1, b.vma_count);
	EXPECT_EQ(ptr_to_u64(p), recs[0].vma_start);
	/*
	 * Lookups: n - 2 unmapped addresses (page 0), then two in the VMA; 1
	 * and 298 before it (answered in the pass that meets it, and in one
	 * before, which a pass of 256 addresses makes).
	 */
	for (n = 3; n <= 300; n += 297) {
		for (i = 0; i < n - 2; i++)
			addrs[i] = i;
		addrs[n - 2] = ptr_to_u64(p);
		addrs[n - 1] = ptr_to_u64(p) + 1;
		memset(idx, 0xa5, sizeof(idx));
		init_lookup(&b, addrs, idx, n, recs, 4);
		b.names = ptr_to_u64(names);
		b.names_size = sizeof(names);
		ASSERT_EQ(0, batch(fd, &b));
		EXPECT_EQ(n - 2, b.addr_count);
		EXPECT_EQ(0, b.vma_count);
		EXPECT_EQ(0, b.names_size);
		EXPECT_EQ(0, b.out_flags);
		for (i = 0; i < n - 2; i++)
			EXPECT_EQ(NO_VMA, idx[i]);
		EXPECT_EQ(0xa5a5a5a5, idx[n - 2]);
		/* The next call, from the address in it, fails at once. */
		init_lookup(&b, addrs + n - 2, idx, 2, recs, 4);
		b.names = ptr_to_u64(names);
		b.names_size = sizeof(names);
		EXPECT_EQ(ENAMETOOLONG, batch(fd, &b));
		/* Without names, both are answered with its record. */
		init_lookup(&b, addrs + n - 2, idx, 2, recs, 4);
		ASSERT_EQ(0, batch(fd, &b));
		EXPECT_EQ(2, b.addr_count);
		EXPECT_EQ(1, b.vma_count);
		EXPECT_EQ(PROCMAP_BATCH_DONE, b.out_flags);
		EXPECT_EQ(ptr_to_u64(p), recs[0].vma_start);
		EXPECT_EQ(0, idx[0]);
		EXPECT_EQ(0, idx[1]);
	}
	close(fd);
	munmap(p, PAGE);
	EXPECT_EQ(0, unlink("f"));
	for (depth = 0; depth < 17; depth++) {
		ASSERT_EQ(0, chdir(".."));
		EXPECT_EQ(0, rmdir(comp));
	}
	ASSERT_EQ(0, chdir(cwd));
	EXPECT_EQ(0, rmdir(root));
}

/* ESRCH once the process is gone; ENOTTY from the C handler. */
TEST(esrch_after_exit_enotty_from_c)
{
	static struct procmap_batch_vma recs[4];
	struct procmap_batch b;
	char path[64];
	uint64_t gen;
	pid_t pid;
	int fd;

	ASSERT_TRUE(use_impl(IMPL_RUST));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		pause();
		_exit(0);
	}
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	init_walk(&b, 0, 0, 0, recs, 4, NULL, 0);
	ASSERT_EQ(0, batch(fd, &b));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	init_walk(&b, 0, 0, 0, recs, 4, NULL, 0);
	EXPECT_EQ(ESRCH, batch(fd, &b));
	EXPECT_EQ(ESRCH, query_errno(fd, PROCMAP_QUERY_GENERATION, &gen));
	/* ESRCH, not EFAULT, whatever the pointers of a lookup. */
	init_lookup(&b, (uint64_t *)8, (uint32_t *)8, 4, recs, 4);
	EXPECT_EQ(ESRCH, batch(fd, &b));
	close(fd);

	fd = open("/proc/self/maps", O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_TRUE(use_impl(IMPL_C));
	init_walk(&b, 0, 0, 0, recs, 4, NULL, 0);
	EXPECT_EQ(ENOTTY, batch(fd, &b));
	EXPECT_EQ(ENOTTY, query_errno(fd, PROCMAP_QUERY_GENERATION, &gen));
	ASSERT_TRUE(use_impl(IMPL_RUST));
	EXPECT_EQ(0, query_errno(fd, PROCMAP_QUERY_GENERATION, &gen));
	close(fd);
}

/* Races: batches while another thread splits, merges and remaps. */
static atomic_int stop_writer;
static char *race_area;

static void *writer(void *arg)
{
	unsigned int seed = 7;

	while (!atomic_load(&stop_writer)) {
		int i = rand_r(&seed) % 16;

		switch (rand_r(&seed) % 4) {
		case 0:
			mprotect(race_area + i * PAGE, PAGE, PROT_READ);
			break;
		case 1:
			mprotect(race_area + i * PAGE, PAGE, PROT_READ | PROT_WRITE);
			break;
		case 2:
			mmap(race_area + i * PAGE, PAGE, PROT_READ | PROT_EXEC,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			break;
		default:
			/* Moves a page over another; the source stays mapped (empty). */
			mremap(race_area + ((i + 1) % 16) * PAGE, PAGE, PAGE,
			       MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
			       race_area + i * PAGE);
			break;
		}
	}
	return NULL;
}

FIXTURE(race) {
	int unused;
};

FIXTURE_SETUP(race)
{
}

FIXTURE_TEARDOWN(race)
{
}

static bool same_range(const struct procmap_batch_vma *a, const struct procmap_batch_vma *b)
{
	return a->vma_start == b->vma_start && a->vma_end == b->vma_end;
}

TEST_F_TIMEOUT(race, batches_under_a_writer_are_not_torn, 600)
{
	static struct procmap_batch_vma recs[16], many_recs[256];
	static uint64_t many[600];
	static uint32_t many_idx[600];
	int fd = open("/proc/self/maps", O_RDONLY);
	uint64_t lo, hi, addrs[32];
	uint32_t idx[32], done, calls;
	unsigned int seed = 3;
	int round, i, snapshots = 0, gaps = 0;
	pthread_t t;

	ASSERT_TRUE(use_impl(IMPL_RUST));
	ASSERT_LE(0, fd);
	race_area = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE((race_area) != MAP_FAILED);
	lo = ptr_to_u64(race_area);
	hi = lo + 16 * PAGE;
	for (i = 0; i < 32; i++)
		addrs[i] = lo + (i % 16) * PAGE + (i / 16) * 100;
	atomic_store(&stop_writer, 0);
	ASSERT_EQ(0, pthread_create(&t, NULL, writer, NULL));
	for (round = 0; round < 3000; round++) {
		struct procmap_batch b;
		uint64_t prev_end = 0;

		/* A walk of the area in records of up to 16: no gap, no overlap, no torn range. */
		init_walk(&b, lo, 0, 0, recs, 16, NULL, 0);
		ASSERT_EQ(0, batch(fd, &b));
		for (i = 0; i < (int)b.vma_count && recs[i].vma_start < hi; i++) {
			ASSERT_LT(recs[i].vma_start, recs[i].vma_end);
			ASSERT_EQ(0, recs[i].vma_start % PAGE);
			ASSERT_EQ(0, recs[i].vma_end % PAGE);
			/*
			 * Each record goes on from the end of the previous one, as
			 * single queries do. While the writer works, a record may
			 * begin before that end (a merge or a move in between) and a
			 * page being replaced may show as a gap, as to single
			 * queries; a batch with equal, even generations is a
			 * snapshot: disjoint and without a gap in the area.
			 */
			if (i > 0) {
				bool snapshot = b.gen_start == b.gen_end && !(b.gen_start % 2);

				ASSERT_LT(prev_end, recs[i].vma_end);
				if (snapshot)
					ASSERT_EQ(prev_end, recs[i].vma_start);
				gaps += prev_end != recs[i].vma_start;
			}
			/* A whole state of the writer: r--, rw- or r-x. */
			if (recs[i].vma_start >= lo && recs[i].vma_end <= hi) {
				uint64_t fl = recs[i].vma_flags;

				ASSERT_TRUE(fl == Q_R || fl == (Q_R | Q_W) || fl == (Q_R | Q_X))
					TH_LOG("flags %#llx", (unsigned long long)fl);
				ASSERT_EQ(0, recs[i].inode);
			}
			prev_end = recs[i].vma_end;
		}
		if (b.gen_start == b.gen_end)
			snapshots++;
		/* A lookup: every address of the area is covered. */
		memset(&b, 0, sizeof(b));
		b.size = sizeof(b);
		b.flags = PROCMAP_BATCH_LOOKUP;
		b.addrs = ptr_to_u64(addrs);
		b.addr_vmas = ptr_to_u64(idx);
		b.addr_count = 32;
		b.vmas = ptr_to_u64(recs);
		b.vma_count = 16;
		b.vma_size = sizeof(recs[0]);
		ASSERT_EQ(0, batch(fd, &b));
		ASSERT_EQ(32, b.addr_count);
		for (i = 0; i < (int)b.addr_count; i++) {
			if (idx[i] == NO_VMA) {
				/* Only while the writer works: not a snapshot. */
				ASSERT_FALSE(b.gen_start == b.gen_end && !(b.gen_start % 2));
				gaps++;
				continue;
			}
			ASSERT_GT(b.vma_count, idx[i]);
			ASSERT_LE(recs[idx[i]].vma_start, addrs[i]);
			ASSERT_GT(recs[idx[i]].vma_end, addrs[i]);
		}
		/*
		 * Every tenth round, a lookup of 600 shuffled addresses of the
		 * area: three passes, its records out of address order, the
		 * VMAs changing between passes. Each answer covers its address,
		 * and no VMA range is reported twice in a call (a record that
		 * covers an address answers it, even if VMAs merged after it
		 * was reported and overlap it now).
		 */
		if (round % 10)
			continue;
		for (i = 0; i < 600; i++) {
			int j = rand_r(&seed) % (i + 1);

			many[i] = many[j];
			many[j] = lo + (i % 16) * PAGE + (i / 16) * 64;
		}
		for (done = 0, calls = 0; done < 600; done += b.addr_count, calls++) {
			uint32_t k, m;

			ASSERT_GT(10, calls);
			init_lookup(&b, many + done, many_idx + done, 600 - done, many_recs,
				    ARRAY_SIZE(many_recs));
			ASSERT_EQ(0, batch(fd, &b));
			ASSERT_LT(0, b.addr_count);
			for (k = 0; k < b.vma_count; k++)
				for (m = k + 1; m < b.vma_count; m++)
					ASSERT_FALSE(same_range(&many_recs[k], &many_recs[m]));
			for (k = done; k < done + b.addr_count; k++) {
				if (many_idx[k] == NO_VMA) {
					gaps++;
					continue;
				}
				ASSERT_GT(b.vma_count, many_idx[k]);
				ASSERT_LE(many_recs[many_idx[k]].vma_start, many[k]);
				ASSERT_GT(many_recs[many_idx[k]].vma_end, many[k]);
			}
		}
	}
	atomic_store(&stop_writer, 1);
	pthread_join(t, NULL);
	TH_LOG("3000 walks and lookups (300 of 600 addresses), a writer: %d snapshots, %d gaps",
	       snapshots, gaps);
	munmap(race_area, 16 * PAGE);
	close(fd);
}

/*
 * While another process changes its VMAs in bursts, a batch walk of its maps
 * whose generations equal those read around a read of the text (even, and
 * unchanged) is that text: every VMA, field and name. It must happen at
 * least 20 times, and the writer must have been caught at work too. Where
 * the kernel cannot tell the generation, no batch may claim to be a snapshot.
 */
TEST_F_TIMEOUT(slow, snapshot_under_a_writer_is_the_text, 900)
{
	static struct procmap_batch_vma recs[MAX_VMAS];
	static struct text_line text[MAX_VMAS];
	static char names[16 * NAMES_MAX];
	int fd, round, hits = 0, busy = 0;
	char path[64];
	pid_t pid;

	ASSERT_TRUE(use_impl(IMPL_RUST));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		race_area = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (race_area == MAP_FAILED)
			_exit(1);
		for (;;) {
			pthread_t t;

			atomic_store(&stop_writer, 0);
			if (pthread_create(&t, NULL, writer, NULL))
				_exit(1);
			usleep(2000);
			atomic_store(&stop_writer, 1);
			pthread_join(t, NULL);
			usleep(20000);
		}
	}
	self->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	if (generation_unknown(fd)) {
		/* The kernel cannot tell: no reading and no batch may claim a snapshot. */
		for (round = 0; round < 50; round++) {
			struct procmap_batch b;

			init_walk(&b, 0, 0, 0, recs, MAX_VMAS, names, sizeof(names));
			ASSERT_EQ(0, batch(fd, &b));
			ASSERT_TRUE(b.out_flags & PROCMAP_BATCH_DONE);
			ASSERT_LT(0, b.vma_count);
			ASSERT_EQ(PROCMAP_GENERATION_UNKNOWN, b.gen_start);
			ASSERT_EQ(PROCMAP_GENERATION_UNKNOWN, b.gen_end);
			ASSERT_EQ(PROCMAP_GENERATION_UNKNOWN, generation(fd));
		}
		close(fd);
		TH_LOG("generation unknown: 50 walks under a writer, none a snapshot");
		return;
	}
	for (round = 0; round < 3000 && (hits < 20 || !busy); round++) {
		uint64_t g1 = generation(fd), g2;
		struct procmap_batch b;
		int n, i;

		n = read_text(pid, text, MAX_VMAS);
		ASSERT_LT(0, n);
		g2 = generation(fd);
		init_walk(&b, 0, 0, 0, recs, MAX_VMAS, names, sizeof(names));
		ASSERT_EQ(0, batch(fd, &b));
		ASSERT_TRUE(b.out_flags & PROCMAP_BATCH_DONE);
		if (g1 != g2 || g2 != b.gen_start || b.gen_start != b.gen_end || g1 % 2) {
			busy++;
			continue;
		}
		hits++;
		ASSERT_EQ(n, (int)b.vma_count);
		for (i = 0; i < n; i++) {
			const struct procmap_batch_vma *r = &recs[i];
			const char *name = r->name_size ? names + r->name_off : "";

			ASSERT_EQ(text[i].start, r->vma_start);
			ASSERT_EQ(text[i].end, r->vma_end);
			ASSERT_EQ(text[i].flags, r->vma_flags);
			ASSERT_EQ(text[i].offset, r->vma_offset);
			ASSERT_EQ(text[i].inode, r->inode);
			ASSERT_EQ(text[i].major, r->dev_major);
			ASSERT_EQ(text[i].minor, r->dev_minor);
			ASSERT_STREQ(text[i].name, name);
		}
	}
	close(fd);
	TH_LOG("%d rounds: %d snapshots equal to the text, %d with the writer at work",
	       round, hits, busy);
	ASSERT_LE(20, hits);
	ASSERT_LE(1, busy);
}

TEST_HARNESS_MAIN

// SPDX-License-Identifier: GPL-2.0
/*
 * Differential test of PROCMAP_QUERY: the Rust module against the built-in C
 * handler, in one boot. A child process sets up diverse mappings (files,
 * a deleted file, memfd, shared anonymous, hugetlb, prctl anon names,
 * PROT_NONE gaps, stack/heap/vdso, hundreds of small VMAs) and freezes. For
 * every VMA boundary +-1 and pseudo-random addresses, every flag combination,
 * and name/build-ID buffers of size 0, 1, exact-1, exact and large, the
 * errno, the whole output struct and the name and build-ID buffers with the
 * module unloaded (C) must equal those with it loaded (Rust). Every VMA is
 * also checked against the /proc/<pid>/maps text.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "procmap-query-util.h"

#ifndef PR_SET_VMA
#define PR_SET_VMA		0x53564d41
#define PR_SET_VMA_ANON_NAME	0
#endif

#define PAGE		4096UL
#define FILLERS		100
#define MAX_VMAS	512
#define NAME_LARGE	512
#define BUILD_ID_LARGE	64
#define RANDOM_ADDRS	100

struct vma_text {
	uint64_t start, end, offset, inode;
	unsigned int major, minor;
	char perms[5];
	char name[256];
};

/* One query: inputs only; the answer is hashed. */
struct qcase {
	uint64_t addr;
	uint64_t flags;
	uint32_t name_size;	/* 0 or the buffer size offered */
	uint32_t build_id_size;
};

static void die(const char *what)
{
	perror(what);
	_exit(1);
}

/* The target: sets up mappings, reports ready on @fd, then waits forever. */
static void target(int ready_fd, const char *dir)
{
	char path[256], deleted[256];
	int fd, i;
	char *p;

	/* A file mapped in pieces with different protections and offsets. */
	snprintf(path, sizeof(path), "%s/pq-file", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 16 * PAGE))
		die("file");
	if (mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED ||
	    mmap(NULL, 2 * PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 4 * PAGE) == MAP_FAILED ||
	    mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 8 * PAGE) == MAP_FAILED ||
	    mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 9 * PAGE) == MAP_FAILED ||
	    mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE, fd, 10 * PAGE) == MAP_FAILED)
		die("mmap file");
	close(fd);

	/* A deleted file: " (deleted)". */
	snprintf(deleted, sizeof(deleted), "%s/pq-deleted", dir);
	fd = open(deleted, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 2 * PAGE))
		die("deleted");
	if (mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
		die("mmap deleted");
	close(fd);
	unlink(deleted);

	/* memfd, shared and private. */
	fd = syscall(SYS_memfd_create, "pq-memfd", 0);
	if (fd < 0 || ftruncate(fd, 2 * PAGE))
		die("memfd");
	if (mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED ||
	    mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, PAGE) == MAP_FAILED)
		die("mmap memfd");
	close(fd);

	/* Shared anonymous, and named with prctl: [anon_shmem:...]. */
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("shared anon");
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, p, 2 * PAGE, "pq-shm"))
		die("anon_shmem name");

	/* Private anonymous named with prctl: [anon:...], and a long name. */
	p = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, p, PAGE, "pq-anon") ||
	    prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, p + 2 * PAGE, PAGE,
		  "pq-a-rather-long-anonymous-vma-name-0123456789-0123456789-0123456789"))
		die("anon name");

	/* hugetlb, if the kernel has huge pages reserved. */
	p = mmap(NULL, 2UL << 20, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (p != MAP_FAILED)
		p[0] = 1;

	/* Many small VMAs with PROT_NONE gaps and alternating protections. */
	p = mmap(NULL, 2 * FILLERS * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("fillers");
	for (i = 0; i < FILLERS; i++) {
		int prot = (i % 3 == 0) ? PROT_READ : (i % 3 == 1) ? PROT_READ | PROT_WRITE :
			   PROT_READ | PROT_EXEC;

		if (mprotect(p + 2 * i * PAGE, PAGE, prot))
			die("mprotect");
	}

	/* The heap. */
	p = malloc(64 * 1024);
	if (!p)
		die("malloc");
	p[0] = 1;

	if (write(ready_fd, "r", 1) != 1)
		die("ready");
	for (;;)
		pause();
}

static int parse_maps(pid_t pid, struct vma_text *v, int max)
{
	char path[64], line[512];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (n < max && fgets(line, sizeof(line), f)) {
		int pos = 0;

		memset(&v[n], 0, sizeof(v[n]));
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 " %n",
			   &v[n].start, &v[n].end, v[n].perms, &v[n].offset, &v[n].major,
			   &v[n].minor, &v[n].inode, &pos) < 7)
			continue;
		line[strcspn(line, "\n")] = 0;
		snprintf(v[n].name, sizeof(v[n].name), "%s", line + pos);
		n++;
	}
	fclose(f);
	return n;
}

/* FNV-1a, 64-bit. */
static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

static char name_buf[NAME_LARGE];
static unsigned char build_id_buf[BUILD_ID_LARGE];

/* Issues @c on @fd; returns the hash of everything the caller can see. */
static uint64_t run_case(int fd, const struct qcase *c, struct procmap_query *out, int *err)
{
	struct procmap_query q;
	uint64_t h = 0xcbf29ce484222325ULL;

	memset(&q, 0, sizeof(q));
	memset(name_buf, 0xa5, sizeof(name_buf));
	memset(build_id_buf, 0x5a, sizeof(build_id_buf));
	q.size = sizeof(q);
	q.query_addr = c->addr;
	q.query_flags = c->flags;
	if (c->name_size) {
		q.vma_name_size = c->name_size;
		q.vma_name_addr = ptr_to_u64(name_buf);
	}
	if (c->build_id_size) {
		q.build_id_size = c->build_id_size;
		q.build_id_addr = ptr_to_u64(build_id_buf);
	}
	*err = query_errno(fd, PROCMAP_QUERY, &q);
	h = fnv(h, err, sizeof(*err));
	h = fnv(h, &q, sizeof(q));
	h = fnv(h, name_buf, sizeof(name_buf));
	h = fnv(h, build_id_buf, sizeof(build_id_buf));
	if (out)
		*out = q;
	return h;
}

/* The queries to compare, growing. */
struct cases {
	struct qcase *v;
	size_t n, cap;
};

FIXTURE(diff) {
	pid_t pid;
	int fd;
	struct vma_text vmas[MAX_VMAS];
	int nvmas;
	struct cases list;
	uint64_t *c_hash, *rust_hash;
};

FIXTURE_SETUP(diff)
{
	int pipefd[2];
	char c, path[64];

	ASSERT_EQ(0, pipe(pipefd));
	self->pid = fork();
	ASSERT_GE(self->pid, 0);
	if (self->pid == 0) {
		close(pipefd[0]);
		target(pipefd[1], "/tmp");
	}
	close(pipefd[1]);
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	close(pipefd[0]);
	snprintf(path, sizeof(path), "/proc/%d/maps", self->pid);
	self->fd = open(path, O_RDONLY);
	ASSERT_GE(self->fd, 0);
	self->nvmas = parse_maps(self->pid, self->vmas, MAX_VMAS);
	ASSERT_GT(self->nvmas, FILLERS);
	self->list = (struct cases){ NULL, 0, 0 };
	self->c_hash = self->rust_hash = NULL;
}

FIXTURE_TEARDOWN(diff)
{
	kill(self->pid, SIGKILL);
	waitpid(self->pid, NULL, 0);
	close(self->fd);
	free(self->list.v);
	free(self->c_hash);
	free(self->rust_hash);
	use_impl(IMPL_RUST);
}

static void add_case(struct __test_metadata *_metadata, struct cases *l,
		     uint64_t addr, uint64_t flags, uint32_t ns, uint32_t bs)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 4096;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		ASSERT_NE(0, l->v != NULL);
	}
	l->v[l->n++] = (struct qcase){ addr, flags, ns, bs };
}

static const char *flag_str(uint64_t f)
{
	static char s[64];

	snprintf(s, sizeof(s), "%s%s%s%s%s%s", f & 1 ? "r" : "", f & 2 ? "w" : "",
		 f & 4 ? "x" : "", f & 8 ? "s" : "", f & 16 ? "+next" : "",
		 f & 32 ? "+file" : "");
	return s;
}

TEST_F_TIMEOUT(diff, rust_equals_c, 1800)
{
	uint64_t addrs[4 * MAX_VMAS + RANDOM_ADDRS + 8];
	size_t naddrs = 0, i, bad = 0;
	uint64_t lo = UINT64_MAX, hi = 0, seed = 0x9e3779b97f4a7c15ULL;
	struct procmap_query q;
	int err, v;

	/* Addresses: every boundary +-1, pseudo-random ones, extremes. */
	for (v = 0; v < self->nvmas; v++) {
		struct vma_text *t = &self->vmas[v];

		addrs[naddrs++] = t->start - 1;
		addrs[naddrs++] = t->start;
		addrs[naddrs++] = t->end - 1;
		addrs[naddrs++] = t->end;
		if (t->start < lo)
			lo = t->start;
		if (t->end > hi && t->end < (1ULL << 47))
			hi = t->end;
	}
	for (i = 0; i < RANDOM_ADDRS; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		addrs[naddrs++] = lo + (seed >> 11) % (hi - lo + (1 << 20));
	}
	addrs[naddrs++] = 0;
	addrs[naddrs++] = 1;
	addrs[naddrs++] = hi + PAGE;
	addrs[naddrs++] = (1ULL << 47) - 1;
	addrs[naddrs++] = 1ULL << 47;
	addrs[naddrs++] = 0xffffffff;
	addrs[naddrs++] = 0x100000000ULL;
	addrs[naddrs++] = UINT64_MAX;

	/*
	 * Without name or build ID: every flag combination at every 8th address
	 * (a COVERING_OR_NEXT query with a filter nothing matches walks every
	 * VMA, and TCG is slow), representative combinations at the others.
	 */
	for (i = 0; i < naddrs; i++) {
		static const uint64_t some[] = { 0x00, 0x01, 0x05, 0x10, 0x12, 0x20, 0x30, 0x3f };

		if (i % 8 == 0) {
			for (uint64_t f = 0; f < 64; f++)
				add_case(_metadata, &self->list, addrs[i], f, 0, 0);
		} else {
			for (unsigned int k = 0; k < ARRAY_SIZE(some); k++)
				add_case(_metadata, &self->list, addrs[i], some[k], 0, 0);
		}
	}

	/*
	 * Name and build-ID buffers of size 1, exact-1, exact and large, for
	 * the covering lookup and the next-VMA lookup at each address. The
	 * exact sizes come from a large query answered by C.
	 */
	ASSERT_TRUE(use_impl(IMPL_C));
	for (i = 0; i < naddrs; i++) {
		uint64_t fl[] = { 0, PROCMAP_QUERY_COVERING_OR_NEXT_VMA,
				  PROCMAP_QUERY_COVERING_OR_NEXT_VMA |
				  PROCMAP_QUERY_FILE_BACKED_VMA };

		for (unsigned int k = 0; k < ARRAY_SIZE(fl); k++) {
			struct qcase big = { addrs[i], fl[k], NAME_LARGE, BUILD_ID_LARGE };
			uint32_t ns, bs;

			run_case(self->fd, &big, &q, &err);
			if (err)
				continue;
			ns = q.vma_name_size;
			bs = q.build_id_size;
			add_case(_metadata, &self->list, addrs[i], fl[k], NAME_LARGE,
				 BUILD_ID_LARGE);
			add_case(_metadata, &self->list, addrs[i], fl[k], 1, 1);
			add_case(_metadata, &self->list, addrs[i], fl[k], NAME_LARGE, 0);
			add_case(_metadata, &self->list, addrs[i], fl[k], 0, BUILD_ID_LARGE);
			if (ns) {
				add_case(_metadata, &self->list, addrs[i], fl[k], ns, 0);
				if (ns > 1)
					add_case(_metadata, &self->list, addrs[i], fl[k],
						 ns - 1, 0);
			}
			if (bs) {
				add_case(_metadata, &self->list, addrs[i], fl[k], 0, bs);
				add_case(_metadata, &self->list, addrs[i], fl[k], 0, bs - 1);
			}
		}
	}

	self->c_hash = calloc(self->list.n, sizeof(uint64_t));
	self->rust_hash = calloc(self->list.n, sizeof(uint64_t));
	ASSERT_TRUE(self->c_hash && self->rust_hash);

	for (i = 0; i < self->list.n; i++)
		self->c_hash[i] = run_case(self->fd, &self->list.v[i], NULL, &err);
	ASSERT_TRUE(use_impl(IMPL_RUST));
	for (i = 0; i < self->list.n; i++)
		self->rust_hash[i] = run_case(self->fd, &self->list.v[i], NULL, &err);

	for (i = 0; i < self->list.n; i++) {
		struct qcase *c = &self->list.v[i];
		struct procmap_query cq, rq;
		int cerr, rerr;

		if (self->c_hash[i] == self->rust_hash[i])
			continue;
		if (++bad > 10)
			continue;
		/* The target is frozen: ask both again for the details. */
		ASSERT_TRUE(use_impl(IMPL_C));
		run_case(self->fd, c, &cq, &cerr);
		ASSERT_TRUE(use_impl(IMPL_RUST));
		run_case(self->fd, c, &rq, &rerr);
		TH_LOG(
		       "case %zu: addr %#llx flags %s name %u build-id %u: c err %d [%#llx-%#llx f%llx off %#llx %u:%u ino %llu name %u bid %u] rust err %d [%#llx-%#llx f%llx off %#llx %u:%u ino %llu name %u bid %u]",
		       i, (unsigned long long)c->addr, flag_str(c->flags), c->name_size,
		       c->build_id_size, cerr,
		       cq.vma_start, cq.vma_end, cq.vma_flags, cq.vma_offset, cq.dev_major,
		       cq.dev_minor, cq.inode, cq.vma_name_size, cq.build_id_size, rerr,
		       rq.vma_start, rq.vma_end, rq.vma_flags, rq.vma_offset, rq.dev_major,
		       rq.dev_minor, rq.inode, rq.vma_name_size, rq.build_id_size);
	}
	TH_LOG("%zu queries over %d VMAs and %zu addresses: %zu differ", self->list.n,
	       self->nvmas, naddrs, bad);
	EXPECT_EQ(0, bad);
}

static const char *const expected_names[] = {
	"/tmp/pq-file", "/tmp/pq-deleted (deleted)", "/memfd:pq-memfd (deleted)",
	"/dev/zero (deleted)", "[anon_shmem:pq-shm]", "[anon:pq-anon]",
	"[anon:pq-a-rather-long", "/anon_hugepage (deleted)", "[heap]", "[stack]",
	"[vdso]", "[vvar]",
};

/* Each VMA of the text file, queried through the Rust module. */
TEST_F(diff, rust_matches_maps_text)
{
	int v, checked = 0, named = 0, with_build_id = 0;

	ASSERT_TRUE(use_impl(IMPL_RUST));
	for (v = 0; v < self->nvmas; v++) {
		struct vma_text *t = &self->vmas[v];
		struct qcase c = { t->start, 0, NAME_LARGE, BUILD_ID_LARGE };
		struct procmap_query q;
		int err;

		if (!strcmp(t->name, "[vsyscall]"))
			continue;	/* the gate VMA: not in the tree, never answered */
		run_case(self->fd, &c, &q, &err);
		ASSERT_EQ(0, err) TH_LOG("%#" PRIx64 " %s", t->start, t->name);
		EXPECT_EQ(t->start, q.vma_start);
		EXPECT_EQ(t->end, q.vma_end);
		EXPECT_EQ(t->perms[0] == 'r', !!(q.vma_flags & PROCMAP_QUERY_VMA_READABLE));
		EXPECT_EQ(t->perms[1] == 'w', !!(q.vma_flags & PROCMAP_QUERY_VMA_WRITABLE));
		EXPECT_EQ(t->perms[2] == 'x', !!(q.vma_flags & PROCMAP_QUERY_VMA_EXECUTABLE));
		EXPECT_EQ(t->perms[3] == 's', !!(q.vma_flags & PROCMAP_QUERY_VMA_SHARED));
		EXPECT_EQ(t->offset, q.vma_offset);
		EXPECT_EQ(t->major, q.dev_major);
		EXPECT_EQ(t->minor, q.dev_minor);
		EXPECT_EQ(t->inode, q.inode);
		if (t->name[0]) {
			EXPECT_EQ(strlen(t->name) + 1, q.vma_name_size);
			EXPECT_STREQ(t->name, name_buf) TH_LOG("%#" PRIx64, t->start);
			named++;
		} else {
			EXPECT_EQ(0, q.vma_name_size);
		}
		if (q.build_id_size)
			with_build_id++;
		checked++;
	}
	TH_LOG("%d VMAs checked, %d named, %d with a build ID", checked, named, with_build_id);
	/* The kinds of names the target set up must all have been seen. */
	for (unsigned int k = 0; k < ARRAY_SIZE(expected_names); k++) {
		bool seen = false;

		for (v = 0; v < self->nvmas; v++)
			seen |= strstr(self->vmas[v].name, expected_names[k]) != NULL;
		EXPECT_TRUE(seen) TH_LOG("no VMA named like %s", expected_names[k]);
	}
	/* The mappings the target set up must be there. */
	EXPECT_LT(FILLERS, checked);
	EXPECT_LT(0, with_build_id);
}

TEST_HARNESS_MAIN

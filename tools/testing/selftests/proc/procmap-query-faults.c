// SPDX-License-Identifier: GPL-2.0
/*
 * Fault injection into PROCMAP_QUERY and the batch extensions: with
 * /proc/thread-self/fail-nth (CONFIG_FAULT_INJECTION, with FAILSLAB,
 * FAIL_PAGE_ALLOC and FAULT_INJECTION_USERCOPY), the n-th allocation or user
 * copy of one ioctl fails, for n = 1, 2, ... until a call completes without
 * reaching it. A call that met a failure must fail with ENOMEM or EFAULT, or
 * succeed where the failure is absorbed as the C code absorbs it (a build ID
 * that cannot be read has size 0); the call after it must answer exactly as
 * before it: nothing half-done is left, no lock and no reference kept. C
 * (module unloaded) and Rust alike.
 *
 * Then the leaks: the target exits and the memory of its address space and of
 * its mapped file comes back (no mmget or get_file kept), and kmemleak finds
 * no object allocated by the handler. Needs the soak kernel (tools/soak).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
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

#define PAGE		4096UL
#define ANON_MB		64
#define FILE_MB		32
#define MAX_VMAS	256
#define NAMES		65536

/* What one call left for user space to see. */
struct outcome {
	int err;
	struct procmap_query q;
	struct procmap_batch b;
	struct procmap_batch_vma vmas[MAX_VMAS];
	char names[NAMES];
	char name[PATH_MAX];
	unsigned char build_id[64];
	uint32_t idx[64];
	uint64_t gen;
};

enum call { SINGLE, WALK, LOOKUP, GENERATION, NCALLS };
static const char *const call_names[] = { "single query", "batch walk", "batch lookup",
					  "generation" };

static uint64_t lookup_addrs[64];

static void do_call(int fd, enum call c, struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	switch (c) {
	case SINGLE:
		o->q.size = sizeof(o->q);
		o->q.query_addr = lookup_addrs[0];
		o->q.query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA | PROCMAP_QUERY_FILE_BACKED_VMA;
		o->q.vma_name_addr = ptr_to_u64(o->name);
		o->q.vma_name_size = sizeof(o->name);
		o->q.build_id_addr = ptr_to_u64(o->build_id);
		o->q.build_id_size = sizeof(o->build_id);
		o->err = query_errno(fd, PROCMAP_QUERY, &o->q);
		break;
	case WALK:
	case LOOKUP:
		o->b.size = sizeof(o->b);
		o->b.flags = PROCMAP_BATCH_BUILD_ID;
		o->b.vmas = ptr_to_u64(o->vmas);
		o->b.vma_count = MAX_VMAS;
		o->b.vma_size = sizeof(o->vmas[0]);
		o->b.names = ptr_to_u64(o->names);
		o->b.names_size = sizeof(o->names);
		if (c == LOOKUP) {
			o->b.flags |= PROCMAP_BATCH_LOOKUP;
			o->b.addrs = ptr_to_u64(lookup_addrs);
			o->b.addr_vmas = ptr_to_u64(o->idx);
			o->b.addr_count = 64;
		}
		o->err = query_errno(fd, PROCMAP_QUERY_BATCH, &o->b);
		break;
	case GENERATION:
		o->err = query_errno(fd, PROCMAP_QUERY_GENERATION, &o->gen);
		break;
	default:
		break;
	}
}

/* The first 64 VMAs' starts (again from the first, if there are fewer). */
static void pick_addrs(int fd)
{
	struct procmap_query q;
	uint64_t a = 0;

	for (int i = 0; i < 64; i++) {
		memset(&q, 0, sizeof(q));
		q.size = sizeof(q);
		q.query_addr = a;
		q.query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA;
		if (ioctl(fd, PROCMAP_QUERY, &q))
			a = 0, q.vma_start = lookup_addrs[0];
		else
			a = q.vma_end;
		lookup_addrs[i] = q.vma_start;
	}
}

/* The outcome without the buffers' own addresses, which differ between outcomes. */
static void normalize(struct outcome *o)
{
	o->q.vma_name_addr = o->q.build_id_addr = 0;
	o->b.vmas = o->b.names = o->b.addrs = o->b.addr_vmas = 0;
}

/* The outcome without its build IDs. */
static void drop_build_ids(struct outcome *o)
{
	o->q.build_id_size = 0;
	memset(o->build_id, 0, sizeof(o->build_id));
	for (int i = 0; i < MAX_VMAS; i++) {
		o->vmas[i].build_id_size = 0;
		memset(o->vmas[i].build_id, 0, sizeof(o->vmas[i].build_id));
	}
}

/* Whether two outcomes show user space the same thing. */
static bool same_outcome(struct outcome *a, struct outcome *b)
{
	normalize(a);
	normalize(b);
	return !memcmp(a, b, sizeof(*a));
}

static size_t first_difference(struct outcome *a, struct outcome *b)
{
	const unsigned char *x = (const void *)a, *y = (const void *)b;
	size_t i;

	for (i = 0; i < sizeof(*a) && x[i] == y[i]; i++)
		;
	return i;
}

/* Arms fail-nth for this thread: the n-th fault site from now fails. */
static bool arm(int nth_fd, int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", n);

	return pwrite(nth_fd, buf, len, 0) == len;
}

/* Whether the fault was injected since arm(); disarms it otherwise. */
static bool injected(int nth_fd)
{
	char buf[16] = "";
	bool yes;

	/* The read itself is a fault site: if it fails, the fault was not injected before it. */
	if (pread(nth_fd, buf, sizeof(buf) - 1, 0) <= 0)
		return false;
	yes = atoi(buf) == 0;
	if (!yes)
		arm(nth_fd, 0);
	return yes;
}

static long meminfo_kb(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atol(line + strlen(key));
	if (f)
		fclose(f);
	return v;
}

/* The target: anonymous and shared-file memory, touched, a named VMA; waits. */
static void target(int ready)
{
	size_t anon = ANON_MB << 20, file = FILE_MB << 20;
	int mfd = syscall(SYS_memfd_create, "pqf-file", 0);
	char *a, *f;

	if (mfd < 0 || ftruncate(mfd, file))
		_exit(1);
	a = mmap(NULL, anon, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	f = mmap(NULL, file, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (a == MAP_FAILED || f == MAP_FAILED)
		_exit(1);
	close(mfd);
	memset(a, 1, anon);
	memset(f, 1, file);
	prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, a, PAGE, "pqf-anon");
	if (write(ready, "r", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

FIXTURE(faults) {
	int unused;
};

FIXTURE_SETUP(faults)
{
}

FIXTURE_TEARDOWN(faults)
{
	use_impl(IMPL_RUST);
}

/*
 * kmemleak: nothing allocated by the handler is left unreferenced, in this
 * boot so far (this program runs last in the soak). Returns the number of
 * reported objects whose allocation backtrace is in procmap_query, or -1.
 */
static int kmemleak_ours(int *all)
{
	static char report[1 << 20];
	int fd, ours = 0;
	ssize_t r, len = 0;
	char *p;

	mount_debugfs();
	/* Two scans: an object must be unreferenced in both to be reported. */
	for (int i = 0; i < 2; i++) {
		fd = open("/sys/kernel/debug/kmemleak", O_WRONLY);
		if (fd < 0 || write(fd, "scan", 4) != 4) {
			perror("kmemleak scan");
			return -1;
		}
		close(fd);
		sleep(1);
	}
	fd = open("/sys/kernel/debug/kmemleak", O_RDONLY);
	if (fd < 0)
		return -1;
	while ((r = read(fd, report + len, sizeof(report) - 1 - len)) > 0)
		len += r;
	report[len] = 0;
	close(fd);
	*all = 0;
	for (p = report; (p = strstr(p, "unreferenced object")); p++)
		(*all)++;
	for (p = report; (p = strstr(p, "procmap_query")); p++)
		ours++;
	if (*all)
		fprintf(stderr, "%.*s\n", (int)(len < 8192 ? len : 8192), report);
	return ours;
}

TEST_F_TIMEOUT(faults, every_failure_is_answered_and_leaves_nothing_behind, 3600)
{
	const char *s = getenv("PROCMAP_FAULT_TARGET");
	long want = s ? atol(s) : 10000, total = 0, rust_total = 0, absorbed = 0;
	long by_errno[2] = { 0, 0 };
	long shmem0, free0, shmem1 = 0, free1 = 0;
	static struct outcome base, got, again;
	int nth_fd, ready[2], fd, rounds = 0, i, all = 0, ours;
	char path[64];
	pid_t pid;

	/*
	 * Allocations that may sleep are left alone by default
	 * (ignore-gfp-wait), and so are order-0 pages: fail them too. Quietly.
	 */
	mount_debugfs();
	ASSERT_TRUE(set_debugfs("failslab/ignore-gfp-wait", "N"));
	ASSERT_TRUE(set_debugfs("fail_page_alloc/ignore-gfp-wait", "N"));
	ASSERT_TRUE(set_debugfs("fail_page_alloc/min-order", "0"));
	ASSERT_TRUE(set_debugfs("failslab/verbose", "0"));
	ASSERT_TRUE(set_debugfs("fail_page_alloc/verbose", "0"));
	ASSERT_TRUE(set_debugfs("fail_usercopy/verbose", "0"));
	nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	ASSERT_LE(0, nth_fd) TH_LOG("no fail-nth: a kernel without CONFIG_FAULT_INJECTION");
	shmem0 = meminfo_kb("Shmem:");
	free0 = meminfo_kb("AnonPages:");
	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		target(ready[1]);
	ASSERT_EQ(1, read(ready[0], path, 1));
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	/* Addresses: the first 64 VMAs' starts, spread over file, anonymous and named ones. */
	pick_addrs(fd);

	/* C (its single query) until a fifth of the target, then Rust until the target. */
	for (int impl = 0; impl < 2; impl++) {
		ASSERT_TRUE(use_impl(impl ? IMPL_RUST : IMPL_C));
		while (impl ? rust_total < want : total < want / 5) {
			for (enum call c = 0; c < NCALLS; c++) {
				/* C has no extension: only its single query. */
				if (!impl && c != SINGLE)
					continue;
				do_call(fd, c, &base);
				ASSERT_EQ(0, base.err) TH_LOG("%s", call_names[c]);
				for (int n = 1; n < 10000; n++) {
					ASSERT_TRUE(arm(nth_fd, n));
					do_call(fd, c, &got);
					if (!injected(nth_fd))
						break;	/* it got through every fault site */
					total++;
					rust_total += impl;
					if (got.err == ENOMEM || got.err == EFAULT) {
						by_errno[got.err == EFAULT]++;
					} else {
						/*
						 * Absorbed as C absorbs it: a build ID that could not
						 * be read is left out; all else is the same.
						 */
						ASSERT_EQ(0, got.err) {
							TH_LOG("%s (%s), failure %d: errno %d", call_names[c],
							       impl ? "Rust" : "C", n, got.err);
						}
						again = base;
						drop_build_ids(&again);
						drop_build_ids(&got);
						ASSERT_TRUE(same_outcome(&again, &got)) {
							TH_LOG("%s (%s), failure %d absorbed, but the answer differs at byte %zu",
							       call_names[c], impl ? "Rust" : "C", n,
							       first_difference(&again, &got));
						}
						absorbed++;
					}
					do_call(fd, c, &again);
					ASSERT_TRUE(same_outcome(&base, &again)) {
						TH_LOG("%s (%s): the call after failure %d differs at byte %zu (errno %d then %d)",
						       call_names[c], impl ? "Rust" : "C", n,
						       first_difference(&base, &again), got.err, again.err);
					}
				}
			}
			rounds++;
		}
	}
	TH_LOG("%d rounds: %ld failures injected: %ld ENOMEM, %ld EFAULT, %ld absorbed (a build ID left out) (%ld in Rust)",
	       rounds, total, by_errno[0], by_errno[1], absorbed, rust_total);

	/* The target's memory comes back once it has exited: no reference kept. */
	close(fd);
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, NULL, 0));
	for (i = 0; i < 50; i++) {
		shmem1 = meminfo_kb("Shmem:");
		free1 = meminfo_kb("AnonPages:");
		if (shmem1 < shmem0 + (FILE_MB << 10) / 2 && free1 < free0 + (ANON_MB << 10) / 2)
			break;
		usleep(100000);
	}
	TH_LOG("Shmem %ld -> %ld kB, AnonPages %ld -> %ld kB after the target exited",
	       shmem0, shmem1, free0, free1);
	ASSERT_GT(shmem0 + (FILE_MB << 10) / 2, shmem1);
	ASSERT_GT(free0 + (ANON_MB << 10) / 2, free1);
	close(nth_fd);

	/* The module's allocations, after all the failures and reloads. */
	ASSERT_TRUE(use_impl(IMPL_C));
	ASSERT_TRUE(use_impl(IMPL_RUST));
	ours = kmemleak_ours(&all);
	ASSERT_LE(0, ours) TH_LOG("no kmemleak: a kernel without CONFIG_DEBUG_KMEMLEAK");
	TH_LOG("kmemleak: %d unreferenced objects in this boot, %d lines in procmap_query",
	       all, ours);
	ASSERT_EQ(0, ours);
}

TEST_HARNESS_MAIN

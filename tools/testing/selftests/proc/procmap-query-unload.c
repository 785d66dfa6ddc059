// SPDX-License-Identifier: GPL-2.0
/*
 * Unload and reload the Rust PROCMAP_QUERY module while threads keep issuing
 * ioctls on /proc/self/maps. Every answer must be one the C handler or the
 * Rust module gives for that query; the guest kernel log must stay free of
 * splats (the VM runner checks it).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>

#include "kselftest_harness.h"
#include "procmap-query-util.h"

#define THREADS 4
#define CYCLES 100

struct shared {
	int fd;
	void *addr;
	atomic_bool stop;
	atomic_ulong valid, einval;	/* answers to a valid and an invalid query */
	atomic_ulong bad;
	atomic_int bad_errno;
};

static void *hammer(void *arg)
{
	struct shared *sh = arg;
	struct procmap_query q;
	int err;

	while (!atomic_load(&sh->stop)) {
		/* A valid query: both answer it, the same way. */
		memset(&q, 0, sizeof(q));
		q.size = sizeof(q);
		q.query_addr = (uintptr_t)sh->addr;
		err = query_errno(sh->fd, PROCMAP_QUERY, &q);
		if (err == 0 && q.vma_start == (uintptr_t)sh->addr &&
		    q.vma_end == (uintptr_t)sh->addr + 4096 &&
		    q.vma_flags == PROCMAP_QUERY_VMA_READABLE)
			atomic_fetch_add(&sh->valid, 1);
		else {
			atomic_fetch_add(&sh->bad, 1);
			atomic_store(&sh->bad_errno, err);
		}

		/* An invalid one: both answer EINVAL. */
		q.query_flags = 1ULL << 63;
		err = query_errno(sh->fd, PROCMAP_QUERY, &q);
		if (err == EINVAL)
			atomic_fetch_add(&sh->einval, 1);
		else {
			atomic_fetch_add(&sh->bad, 1);
			atomic_store(&sh->bad_errno, err);
		}

		/* An unknown command: both answer ENOTTY. */
		err = query_errno(sh->fd, _IO('f', 99), NULL);
		if (err != ENOTTY) {
			atomic_fetch_add(&sh->bad, 1);
			atomic_store(&sh->bad_errno, err);
		}
	}
	return NULL;
}

FIXTURE(unload) {
};

FIXTURE_SETUP(unload)
{
}

FIXTURE_TEARDOWN(unload)
{
	use_impl(IMPL_RUST);
}

/* Generous: TCG with lockdep and KASAN is slow; the loop itself is bounded. */
TEST_F_TIMEOUT(unload, while_querying, 900)
{
	static struct shared sh;
	pthread_t threads[THREADS];
	struct timespec t0, t1;
	int i;

	sh.fd = open("/proc/self/maps", O_RDONLY);
	ASSERT_GE(sh.fd, 0);
	sh.addr = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(sh.addr != MAP_FAILED);
	ASSERT_TRUE(use_impl(IMPL_RUST));

	for (i = 0; i < THREADS; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, hammer, &sh));

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < CYCLES; i++) {
		ASSERT_EQ(0, unload_rust()) TH_LOG("cycle %d: unload", i);
		ASSERT_EQ(0, load_rust()) TH_LOG("cycle %d: load", i);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

	atomic_store(&sh.stop, true);
	for (i = 0; i < THREADS; i++)
		ASSERT_EQ(0, pthread_join(threads[i], NULL));

	TH_LOG("%d unload/load cycles in %.1f s; answers: valid %lu, einval %lu",
	       CYCLES, t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9,
	       atomic_load(&sh.valid), atomic_load(&sh.einval));
	EXPECT_EQ(0, atomic_load(&sh.bad)) TH_LOG("unexpected errno %d",
						atomic_load(&sh.bad_errno));
	/* Both implementations must have been exercised. */
	EXPECT_LT(0, atomic_load(&sh.einval));
	EXPECT_LT(0, atomic_load(&sh.valid));
	EXPECT_TRUE(rust_loaded());
	close(sh.fd);
}

TEST_HARNESS_MAIN

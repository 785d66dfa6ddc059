// SPDX-License-Identifier: GPL-2.0
/*
 * A batch walk with build IDs over VMAs of one open file, against one without
 * and against single queries with build IDs (the handler loaded), per VMA, in
 * guest clock nanoseconds (instructions under VM_ICOUNT=1). Built and run as
 * Documentation/procmap_query_performance.md says ("Build IDs in a batch").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/fs.h>
#include <linux/procmap_query.h>

#define PAGE 4096UL
#define ROOM 256
static struct procmap_batch_vma recs[ROOM];
static int maps_fd;

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static long walk(int ids)
{
	struct procmap_batch b;
	uint64_t a = 0;
	long n = 0, with = 0;

	for (;;) {
		memset(&b, 0, sizeof(b));
		b.size = sizeof(b);
		b.flags = ids ? PROCMAP_BATCH_BUILD_ID : 0;
		b.addr = a;
		b.vmas = (uintptr_t)recs;
		b.vma_count = ROOM;
		b.vma_size = sizeof(recs[0]);
		if (ioctl(maps_fd, PROCMAP_QUERY_BATCH, &b))
			return -errno;
		for (uint32_t i = 0; i < b.vma_count; i++)
			with += recs[i].build_id_size != 0;
		n += b.vma_count;
		a = b.addr;
		if (b.out_flags & PROCMAP_BATCH_DONE)
			return ids ? with : n;
	}
}

static long walk_single(int ids)
{
	struct procmap_query q;
	unsigned char bid[20];
	uint64_t a = 0;
	long n = 0;

	for (;;) {
		memset(&q, 0, sizeof(q));
		q.size = sizeof(q);
		q.query_addr = a;
		q.query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA;
		if (ids) {
			q.build_id_size = sizeof(bid);
			q.build_id_addr = (uintptr_t)bid;
		}
		if (ioctl(maps_fd, PROCMAP_QUERY, &q))
			return errno == ENOENT ? n : -errno;
		n += !ids || q.build_id_size;
		a = q.vma_end;
	}
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000;
	int fd = open("/proc/self/exe", O_RDONLY);
	char *p;
	FILE *f = fopen("/proc/sys/vm/max_map_count", "w");

	if (f) { fprintf(f, "262144\n"); fclose(f); }
	maps_fd = open("/proc/self/maps", O_RDONLY);
	/* n VMAs of one open file: every other page readable. */
	p = mmap(NULL, n * PAGE, PROT_NONE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) { perror("mmap"); return 1; }
	for (long i = 0; i < n; i += 2)
		mprotect(p + i * PAGE, PAGE, PROT_READ);
	long total = walk(0);
	printf("VMAs %ld, with build IDs (batch) %ld, (single) %ld\n", total, walk(1), walk_single(1));
	for (int round = 0; round < 3; round++) {
		double t0 = now_ns(); long a = walk(0);
		double t1 = now_ns(); long b = walk(1);
		double t2 = now_ns(); long c = walk_single(1);
		double t3 = now_ns();
		if (a < 0 || b < 0 || c < 0) { printf("error %ld %ld %ld\n", a, b, c); return 1; }
		printf("per VMA: batch %.0f, batch+ids %.0f, single+ids %.0f (Rust)\n",
		       (t1 - t0) / total, (t2 - t1) / total, (t3 - t2) / total);
	}
	return 0;
}

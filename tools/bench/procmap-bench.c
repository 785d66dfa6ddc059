// SPDX-License-Identifier: GPL-2.0
/*
 * PROCMAP_QUERY benchmark, run in the guest (tools/bench/run). Prints ratios
 * measured in one boot: Rust (module loaded) vs C (unloaded), interleaved
 * rounds, medians. With "costs" the guest runs under -icount (the clock counts
 * instructions); with "contention" it runs on 2 vCPUs in wall-clock time.
 * "batch" and "batch-contention" measure the extensions the same two ways;
 * "build-ids [N]" only rows 6e/6f of "batch" (walks with build IDs).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <linux/fs.h>
#include <linux/procmap_query.h>

#include "procmap-query-util.h"

#define PAGE 4096UL
static int maps_fd;
/* Built-in kernel (CONFIG_PROCMAP_QUERY_RUST=y): Rust only, nothing to switch. */
static int builtin;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Rust (module loaded) or C (unloaded); the run is void if that fails. */
static void use_rust(int on)
{
	if (builtin)
		return;
	if (!use_impl(on ? IMPL_RUST : IMPL_C)) {
		fprintf(stderr, "cannot %s procmap_query\n", on ? "load" : "unload");
		exit(1);
	}
}

static char name_buf[4096];
static unsigned char bid_buf[64];

/* @with_name: 0 neither, 1 name and build ID, 2 the name, 3 the build ID. */
static int query(uint64_t addr, uint64_t flags, int with_name, struct procmap_query *q)
{
	memset(q, 0, sizeof(*q));
	q->size = sizeof(*q);
	q->query_addr = addr;
	q->query_flags = flags;
	if (with_name == 1 || with_name == 2) {
		q->vma_name_size = sizeof(name_buf);
		q->vma_name_addr = (uintptr_t)name_buf;
	}
	if (with_name == 1 || with_name == 3) {
		q->build_id_size = sizeof(bid_buf);
		q->build_id_addr = (uintptr_t)bid_buf;
	}
	return ioctl(maps_fd, PROCMAP_QUERY, q) ? errno : 0;
}

/* ns per call of @fn over @iters calls. */
#define TIME_LOOP(iters, stmt) ({					\
	double _t0 = now_ns();						\
	for (long _i = 0; _i < (iters); _i++) { stmt; }			\
	(now_ns() - _t0) / (iters);					\
})

enum kind { EXACT, NAMED, NAME_ONLY, FLOOR, EARLY };

static double measure_loop(enum kind k, uint64_t addr, long iters)
{
	struct procmap_query q;

	switch (k) {
	case EXACT:
		return TIME_LOOP(iters, query(addr, 0, 0, &q));
	case NAMED:
		return TIME_LOOP(iters, query(addr, 0, 1, &q));
	case NAME_ONLY:
		return TIME_LOOP(iters, query(addr, 0, 2, &q));
	case FLOOR:
		return TIME_LOOP(iters, ioctl(maps_fd, _IO('f', 99), NULL));
	case EARLY:
		/* PROCMAP_QUERY turned down at its first check: size 8 is EINVAL. */
		memset(&q, 0, sizeof(q));
		q.size = 8;
		return TIME_LOOP(iters, ioctl(maps_fd, PROCMAP_QUERY, &q));
	}
	return 0;
}

/*
 * ns per call of @k, over @iters calls after a tenth as many untimed: each
 * round loads or unloads the module, and under TCG the first calls through
 * freshly loaded code pay for its translation (wall clock only: the
 * instruction clock does not count it).
 */
static double measure(enum kind k, uint64_t addr, long iters)
{
	measure_loop(k, addr, iters / 10);
	return measure_loop(k, addr, iters);
}

#define ROUNDS 7

/* Interleaved rounds, C then Rust; medians. */
static void rust_vs_c(enum kind k, uint64_t addr, long iters, double *c, double *r)
{
	double cv[ROUNDS], rv[ROUNDS];

	for (int i = 0; i < ROUNDS; i++) {
		use_rust(0);
		cv[i] = measure(k, addr, iters);
		use_rust(1);
		rv[i] = measure(k, addr, iters);
	}
	*c = median(cv, ROUNDS);
	*r = median(rv, ROUNDS);
}

/*
 * Raises vm.max_map_count above the default 65530, for 100k VMAs: 0, or -1
 * if it could not.
 */
static int raise_max_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "w");
	int bad;

	if (!f)
		return -1;
	bad = fprintf(f, "262144\n") < 0;
	return fclose(f) || bad ? -1 : 0;
}

/*
 * Makes about @n more VMAs: a PROT_NONE reservation of @n pages with every
 * other page readable (each page its own VMA). Returns it, or NULL for none.
 */
static void *make_vmas(long n)
{
	char *p;

	n /= 2;
	if (n <= 0)
		return NULL;
	p = mmap(NULL, 2 * n * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	for (long i = 0; i < n; i++)
		if (mprotect(p + 2 * i * PAGE, PAGE, PROT_READ)) {
			perror("mprotect");
			exit(1);
		}
	return p;
}

struct text_vma { uint64_t start, end, off; };

/* Reads and parses the maps text; returns the number of VMAs. */
static long parse_text(struct text_vma *v, long max)
{
	static char buf[1 << 16];
	char line[4096];
	long n = 0, ll = 0;
	ssize_t r;
	int fd = open("/proc/self/maps", O_RDONLY);

	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] != '\n') {
				if (ll < (long)sizeof(line) - 1)
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = 0;
			ll = 0;
			if (n < max) {
				unsigned long long s, e, o;

				if (sscanf(line, "%llx-%llx %*s %llx", &s, &e, &o) == 3)
					v[n++] = (struct text_vma){ s, e, o };
			}
		}
	}
	close(fd);
	return n;
}

static long text_lookup(struct text_vma *v, long n, uint64_t a)
{
	long lo = 0, hi = n;

	while (lo < hi) {
		long mid = (lo + hi) / 2;

		if (v[mid].end <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo].start <= a ? lo : -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The seed author's workload: about 655 VMAs (*@more of them made here, at
 * *@extra, for the caller to unmap) and 3244 addresses of which 464 unique,
 * into @addrs. Returns the number of VMAs, read into @tv.
 */
static long seed_workload(struct text_vma *tv, uint64_t *addrs, void **extra, long *more)
{
	static uint64_t uniq[464];
	long have = parse_text(tv, 300000), nv;
	uint64_t seed = 42;

	*more = 655 - have > 0 ? 655 - have : 0;
	*extra = make_vmas(*more);
	nv = parse_text(tv, 300000);
	for (int i = 0; i < 464; i++) {
		struct text_vma *v;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		v = &tv[(seed >> 33) % nv];
		uniq[i] = v->start + (seed >> 7) % (v->end - v->start);
	}
	for (int i = 0; i < 3244; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		addrs[i] = uniq[(seed >> 33) % 464];
	}
	return nv;
}

/* The seed author's workload: resolve all addresses to VMA + file offset. */
static void symbolize(uint64_t *addrs, long n, uint64_t *out_ioctl, uint64_t *out_text,
		      double *t_ioctl, double *t_text, struct text_vma *tv, long tmax)
{
	static uint64_t sorted[8192];
	struct procmap_query q;
	double t0;
	long nt;

	/* Sorting is common to both ways: not timed. */
	memcpy(sorted, addrs, n * sizeof(*addrs));
	qsort(sorted, n, sizeof(*sorted), cmp_u64);
	t0 = now_ns();
	{
		uint64_t vs = 1, ve = 0, vo = 0;

		for (long i = 0; i < n; i++) {
			uint64_t a = sorted[i];

			if (!(vs <= a && a < ve)) {
				if (query(a, PROCMAP_QUERY_COVERING_OR_NEXT_VMA, 0, &q)) {
					vs = 1, ve = 0;
					continue;
				}
				vs = q.vma_start, ve = q.vma_end, vo = q.vma_offset;
			}
			out_ioctl[i] = vs <= a && a < ve ? a - vs + vo : ~0ULL;
		}
	}
	*t_ioctl = now_ns() - t0;

	t0 = now_ns();
	nt = parse_text(tv, tmax);
	for (long i = 0; i < n; i++) {
		long k = text_lookup(tv, nt, sorted[i]);

		out_text[i] = k < 0 ? ~0ULL : sorted[i] - tv[k].start + tv[k].off;
	}
	*t_text = now_ns() - t0;
}

static void costs(void)
{
	struct procmap_query q;
	double c, r, cn, rn, cf, rf;
	uint64_t code = (uintptr_t)&costs;
	static struct text_vma tv[300000];

	printf("| # | measure (instruction-count clock: -icount shift=0) | C | Rust | Rust/C |\n");
	printf("|---|---|---|---|---|\n");
	rust_vs_c(EXACT, code, 2000, &c, &r);
	printf("| 1a | exact query, no name (ns/query) | %.0f | %.0f | %.3f |\n", c, r, r / c);
	rust_vs_c(NAMED, code, 1000, &cn, &rn);
	printf("| 1b | exact query + name + build ID (ns/query) | %.0f | %.0f | %.3f |\n", cn, rn,
	       rn / cn);
	rust_vs_c(NAME_ONLY, code, 2000, &cn, &rn);
	printf("| 1c | exact query + name, no build ID (ns/query) | %.0f | %.0f | %.3f |\n", cn, rn,
	       rn / cn);
	rust_vs_c(FLOOR, 0, 4000, &cf, &rf);
	printf("| 2a | floor: bare ioctl, ENOTTY (ns/call) | %.0f | %.0f | %.3f |\n", cf, rf, rf / cf);
	printf("| 2b | exact query / floor (x) | %.2f | %.2f | |\n", c / cf, r / rf);
	rust_vs_c(EARLY, 0, 4000, &c, &r);
	printf("| 2c | PROCMAP_QUERY turned down at once (size 8: EINVAL) (ns/call) | %.0f | %.0f | %.3f |\n",
	       c, r, r / c);

	/* 3: ~655 VMAs, 3244 addresses of which 464 unique. */
	{
		static uint64_t addrs[3244], o1[3244], o2[3244];
		double ti[ROUNDS], tt[ROUNDS];
		long more;
		void *extra;
		long nv = seed_workload(tv, addrs, &extra, &more), bad = 0;

		use_rust(1);
		for (int i = 0; i < ROUNDS; i++)
			symbolize(addrs, 3244, o1, o2, &ti[i], &tt[i], tv, 300000);
		for (int i = 0; i < 3244; i++)
			bad += o1[i] != o2[i];
		printf("| 3 | %ld VMAs, 3244 addresses (464 unique) to VMA + offset: text / ioctl (Rust) (x) | %.0f us text | %.0f us ioctl | %.1f |\n",
		       nv, median(tt, ROUNDS) / 1e3, median(ti, ROUNDS) / 1e3,
		       median(tt, ROUNDS) / median(ti, ROUNDS));
		if (bad)
			printf("|   | ERROR: %ld answers differ between text and ioctl |\n", bad);
		if (extra)
			munmap(extra, (more / 2) * 2 * PAGE);
	}

	/* 4: scaling; 100k VMAs need a vm.max_map_count above the default 65530. */
	{
		long sizes[] = { 100, 10000, 100000 };

		if (raise_max_map_count()) {
			printf("|   | (vm.max_map_count not raised: largest size 60000) |\n");
			sizes[2] = 60000;
		}
		long base = parse_text(tv, 300000);

		for (unsigned int s = 0; s < 3; s++) {
			long want = sizes[s] - base > 0 ? sizes[s] - base : 0;
			char *p = make_vmas(want);
			/* A VMA in the middle of the address-ordered set. */
			uint64_t mid = p ? (uintptr_t)p + 2 * (want / 4) * PAGE : (uintptr_t)&costs;
			double tc, tr, tt;
			long nv;

			rust_vs_c(EXACT, mid, 1000, &tc, &tr);
			{
				double v[3];

				for (int i = 0; i < 3; i++) {
					double t0 = now_ns();

					nv = parse_text(tv, 300000);
					v[i] = now_ns() - t0;
				}
				tt = median(v, 3);
			}
			printf("| 4 | %ld VMAs: point query C / Rust (ns); text parse (us) | %.0f | %.0f | %.3f | text %.0f us = %.0fx a query |\n",
			       nv, tc, tr, tr / tc, tt / 1e3, tt / tr);
			if (p)
				munmap(p, (want / 2) * 2 * PAGE);
		}
	}
	(void)q;
}

/*
 * Batches (rows 6-10): <linux/procmap_query.h>, Rust only (C has no batch).
 * The oracle for the walk is the single-query walk of C.
 */
#define BATCH_ROOM 1024
static struct procmap_batch_vma batch_recs[BATCH_ROOM];
static char batch_names[1 << 16];

/* Records with a build ID in the last walk (single or batch) asking for them. */
static long walk_build_ids;

/*
 * A full walk with single queries (COVERING_OR_NEXT_VMA from each end): the
 * count. @with_names as query()'s @with_name.
 */
static long walk_single(int with_names)
{
	struct procmap_query q;
	uint64_t a = 0;
	long n = 0;

	walk_build_ids = 0;
	while (!query(a, PROCMAP_QUERY_COVERING_OR_NEXT_VMA, with_names, &q)) {
		a = q.vma_end;
		walk_build_ids += q.build_id_size != 0;
		n++;
	}
	return n;
}

/*
 * A full walk with batches of BATCH_ROOM records, names if @with_names,
 * @filters (PROCMAP_QUERY_*) and batch @flags (PROCMAP_BATCH_BUILD_ID): the
 * count.
 */
static long walk_batch_filtered(int with_names, uint64_t filters, uint64_t flags)
{
	struct procmap_batch b;
	uint64_t a = 0;
	long n = 0;

	walk_build_ids = 0;
	for (;;) {
		memset(&b, 0, sizeof(b));
		b.size = sizeof(b);
		b.flags = flags;
		b.query_flags = filters;
		b.addr = a;
		b.vmas = (uintptr_t)batch_recs;
		b.vma_count = BATCH_ROOM;
		b.vma_size = sizeof(batch_recs[0]);
		if (with_names) {
			b.names = (uintptr_t)batch_names;
			b.names_size = sizeof(batch_names);
		}
		if (ioctl(maps_fd, PROCMAP_QUERY_BATCH, &b))
			return -errno;
		for (uint32_t i = 0; i < b.vma_count; i++)
			walk_build_ids += batch_recs[i].build_id_size != 0;
		n += b.vma_count;
		a = b.addr;
		if (b.out_flags & PROCMAP_BATCH_DONE)
			return n;
	}
}

/* A full walk with batches of BATCH_ROOM records: the count. */
static long walk_batch(int with_names)
{
	return walk_batch_filtered(with_names, 0, 0);
}

/* A full walk by parsing the text: the count. */
static long walk_text(void)
{
	static struct text_vma tv[300000];

	return parse_text(tv, 300000);
}

/* One batch lookup of @n addresses (all fit one call): the number answered. */
static long lookup_batch(const uint64_t *addrs, long n, uint32_t *idx)
{
	struct procmap_batch b;
	long done = 0;

	while (done < n) {
		memset(&b, 0, sizeof(b));
		b.size = sizeof(b);
		b.flags = PROCMAP_BATCH_LOOKUP;
		b.addrs = (uintptr_t)(addrs + done);
		b.addr_vmas = (uintptr_t)(idx + done);
		b.addr_count = n - done;
		b.vmas = (uintptr_t)batch_recs;
		b.vma_count = BATCH_ROOM;
		b.vma_size = sizeof(batch_recs[0]);
		if (ioctl(maps_fd, PROCMAP_QUERY_BATCH, &b))
			return -errno;
		done += b.addr_count;
	}
	return done;
}

/* Median ns of @rounds runs of @expr. */
#define TIME_MEDIAN(rounds, expr) ({					\
	double __v[ROUNDS];						\
	for (int __i = 0; __i < (rounds); __i++) {			\
		double __t0 = now_ns();					\
		expr;							\
		__v[__i] = now_ns() - __t0;				\
	}								\
	median(__v, (rounds));						\
})

/*
 * Row 8's stack trace: 64 addresses over @vmas (20) readable one-page VMAs (of
 * twice as many mapped pages, which it returns), in a fixed pseudo-random
 * order.
 */
static char *make_trace(uint64_t trace[64], int vmas)
{
	char *p = make_vmas(2 * vmas);	/* @vmas readable VMAs */
	uint64_t seed = 7;

	for (int i = 0; i < 64; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		trace[i] = (uintptr_t)p + 2 * ((seed >> 33) % vmas) * PAGE + (seed >> 7) % PAGE;
	}
	return p;
}

/*
 * Row 6e: a walk of about @n VMAs of one open file (every other page of a
 * mapping of this program, which has a build ID) with build IDs: single
 * queries (C), and a batch walk, which parses the notes once for records of
 * the file of the record before. Per VMA for scale: the same walks in Rust,
 * and a batch walk without build IDs.
 */
static void build_id_walks(long n)
{
	int fd = open("/proc/self/exe", O_RDONLY);
	long nc, nr, nb, ic, ir, ib;
	double tc, tr, tb, t0;
	char *p;

	if (fd < 0) {
		perror("/proc/self/exe");
		exit(1);
	}
	n = n / 2 * 2;
	p = mmap(NULL, n * PAGE, PROT_NONE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	for (long i = 0; i < n; i += 2)
		if (mprotect(p + i * PAGE, PAGE, PROT_READ)) {
			perror("mprotect");
			exit(1);
		}
	use_rust(0);
	nc = walk_single(3);
	ic = walk_build_ids;
	tc = TIME_MEDIAN(3, walk_single(3));
	use_rust(1);
	nr = walk_single(3);
	ir = walk_build_ids;
	tr = TIME_MEDIAN(3, walk_single(3));
	nb = walk_batch_filtered(0, 0, PROCMAP_BATCH_BUILD_ID);
	ib = walk_build_ids;
	tb = TIME_MEDIAN(3, walk_batch_filtered(0, 0, PROCMAP_BATCH_BUILD_ID));
	t0 = TIME_MEDIAN(3, walk_batch(0));
	printf("| 6e | full walk of %ld VMAs (%ld with a build ID, %ld of one file) with build IDs: single queries (C) vs one batch walk (us) | %.0f | %.0f | %.1f | |\n",
	       nb, ic, n, tc / 1e3, tb / 1e3, tc / tb);
	printf("| 6f | per VMA (ns), with build IDs: single query (C) %.0f, (Rust) %.0f; batch walk %.0f, without build IDs %.0f | | | | |\n",
	       tc / nc, tr / nr, tb / nb, t0 / nb);
	if (nc != nb || nr != nb || ic != ib || ir != ib || ib < n)
		printf("|   | ERROR: VMAs (build IDs): single C %ld (%ld), Rust %ld (%ld), batch %ld (%ld); %ld mapped |\n",
		       nc, ic, nr, ir, nb, ib, n);
	munmap(p, n * PAGE);
}

static void batches(void)
{
	static struct text_vma tv[300000];
	static uint32_t idx[8192];
	long base, sizes[] = { 10000, 100000 };
	double c, r, x;

	if (raise_max_map_count())
		printf("|   | (vm.max_map_count not raised) |\n");
	printf("| # | measure | baseline | batch (Rust) | baseline / batch (x) | goal |\n");
	printf("|---|---|---|---|---|---|\n");

	/* 6: full walks. */
	base = parse_text(tv, 300000);
	for (unsigned int s = 0; s < 2; s++) {
		long want = sizes[s] - base > 0 ? sizes[s] - base : 0;
		char *p = make_vmas(want);
		long nv = parse_text(tv, 300000), ns, nb, nt;
		double ts, tb, tt, tbn, tsn;

		use_rust(0);
		ns = walk_single(0);
		ts = TIME_MEDIAN(3, walk_single(0));
		tsn = TIME_MEDIAN(3, walk_single(1));
		use_rust(1);
		nb = walk_batch(0);
		tb = TIME_MEDIAN(3, walk_batch(0));
		tbn = TIME_MEDIAN(3, walk_batch(1));
		nt = walk_text();
		tt = TIME_MEDIAN(3, walk_text());
		printf("| 6a | full walk of %ld VMAs: single queries (C) vs one batch walk (us) | %.0f | %.0f | %.1f | >= 5 |\n",
		       nv, ts / 1e3, tb / 1e3, ts / tb);
		printf("| 6b | the same, with names (us) | %.0f | %.0f | %.1f | |\n", tsn / 1e3,
		       tbn / 1e3, tsn / tbn);
		printf("| 6c | full walk of %ld VMAs: parsing the text vs the batch walk (us) | %.0f | %.0f | %.1f | >= 20 |\n",
		       nv, tt / 1e3, tb / 1e3, tt / tb);
		{
			/* Where a record's cost goes: VMAs examined and dropped (all anonymous). */
			double tf = TIME_MEDIAN(3, walk_batch_filtered(0, PROCMAP_QUERY_FILE_BACKED_VMA, 0));

			printf("| 6d | per VMA (ns): batch walk %.0f, of which locking and filtering (a walk that reports none of them) %.0f; single query (C) %.0f | | | | |\n",
			       tb / nb, tf / nb, ts / ns);
		}
		/* The text also shows [vsyscall], which no query reports. */
		if (ns != nb || (nt != nb && nt != nb + 1))
			printf("|   | ERROR: %ld VMAs by single queries, %ld by batches, %ld in the text |\n",
			       ns, nb, nt);
		if (p)
			munmap(p, (want / 2) * 2 * PAGE);
	}

	build_id_walks(10000);

	/* 7: the seed workload: ~655 VMAs, 3244 addresses (464 unique), to VMA + offset. */
	{
		static uint64_t addrs[3244], sorted[3244], o1[3244], o2[3244];
		long more;
		void *extra;
		long nv = seed_workload(tv, addrs, &extra, &more), bad = 0;
		double tb, tt;

		/* Sorting is common to both ways: not timed (as row 3). */
		memcpy(sorted, addrs, sizeof(sorted));
		qsort(sorted, 3244, sizeof(*sorted), cmp_u64);
		use_rust(1);
		tb = TIME_MEDIAN(ROUNDS, ({
			lookup_batch(sorted, 3244, idx);
			for (int i = 0; i < 3244; i++)
				o1[i] = idx[i] == PROCMAP_BATCH_NO_VMA ? ~0ULL :
					sorted[i] - batch_recs[idx[i]].vma_start +
					batch_recs[idx[i]].vma_offset;
		}));
		tt = TIME_MEDIAN(ROUNDS, ({
			long nt = parse_text(tv, 300000);

			for (int i = 0; i < 3244; i++) {
				long k = text_lookup(tv, nt, sorted[i]);

				o2[i] = k < 0 ? ~0ULL : sorted[i] - tv[k].start + tv[k].off;
			}
		}));
		for (int i = 0; i < 3244; i++)
			bad += o1[i] != o2[i];
		printf("| 7 | seed workload: %ld VMAs, 3244 addresses (464 unique) to VMA + offset: text vs one batch lookup (us) | %.0f | %.0f | %.1f | >= 20 |\n",
		       nv, tt / 1e3, tb / 1e3, tt / tb);
		if (bad)
			printf("|   | ERROR: %ld answers differ between text and batch |\n", bad);
		if (extra)
			munmap(extra, (more / 2) * 2 * PAGE);
	}

	/* 8: a 64-address stack trace over ~20 VMAs: 64 single queries (C) vs one batch. */
	{
		static uint64_t trace[64];
		struct procmap_query q;
		char *p = make_trace(trace, 20);

		use_rust(0);
		c = TIME_MEDIAN(ROUNDS, for (int i = 0; i < 64; i++) query(trace[i], 0, 0, &q));
		use_rust(1);
		r = TIME_MEDIAN(ROUNDS, lookup_batch(trace, 64, idx));
		printf("| 8 | 64-address stack trace over 20 VMAs: 64 single queries (C) vs one batch lookup (ns) | %.0f | %.0f | %.2f | >= 4 |\n",
		       c, r, c / r);
		munmap(p, 40 * PAGE);
	}

	/* 9: the generation against the bare ioctl floor. */
	{
		uint64_t gen;

		double fr;

		/*
		 * The floor: an unknown command with the module unloaded (no
		 * delegation), and loaded. Medians of rounds of 4000 calls: one
		 * loop alone may take in a tick's work, 5 % of a call this short.
		 */
		rust_vs_c(FLOOR, 0, 4000, &c, &fr);	/* ends with Rust loaded */
		r = TIME_MEDIAN(ROUNDS, TIME_LOOP(4000, ioctl(maps_fd, PROCMAP_QUERY_GENERATION,
							      &gen))) / 4000;
		x = TIME_MEDIAN(ROUNDS, measure(EXACT, (uintptr_t)&costs, 2000)) / 2000;
		printf("| 9 | PROCMAP_QUERY_GENERATION vs the bare ioctl floor (ENOTTY, module unloaded) (ns/call) | %.0f | %.0f | %.2f (generation / floor) | <= 1.2 |\n",
		       c, r, r / c);
		printf("| 9b | for scale: ENOTTY with the module loaded (delegated); an exact query (ns/call) | %.0f | %.0f | | |\n",
		       fr, x);
	}
}

static atomic_int stop;
static atomic_long churn_ops, query_ops;

static void *churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		void *p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		munmap(p, PAGE);
		atomic_fetch_add(&churn_ops, 1);
	}
	return NULL;
}

static void *querier(void *arg)
{
	struct procmap_query q;
	uint64_t a = (uintptr_t)arg;

	while (!atomic_load(&stop)) {
		query(a, 0, 0, &q);
		atomic_fetch_add(&query_ops, 1);
	}
	return NULL;
}

/* Runs the churn and/or query threads for @ms; rates per second. */
static void run(int with_churn, int with_query, double ms, double *churn_rate, double *query_rate)
{
	pthread_t a, b;
	struct timespec d = { 0, (long)(ms * 1e6) };
	double t0;

	atomic_store(&stop, 0);
	atomic_store(&churn_ops, 0);
	atomic_store(&query_ops, 0);
	t0 = now_ns();
	if (with_churn)
		pthread_create(&a, NULL, churn, NULL);
	if (with_query)
		pthread_create(&b, NULL, querier, (void *)(uintptr_t)&costs);
	nanosleep(&d, NULL);
	/* The window ends now: a thread may take a while to see @stop. */
	t0 = (now_ns() - t0) / 1e9;
	atomic_store(&stop, 1);
	if (with_churn)
		pthread_join(a, NULL);
	if (with_query)
		pthread_join(b, NULL);
	*churn_rate = atomic_load(&churn_ops) / t0;
	*query_rate = atomic_load(&query_ops) / t0;
}

static void contention(void)
{
	enum { R = 9 };
	double ci[R], cq[R], qi[R], qc[R], x;

	printf("| 5 | contention (wall clock, 2 vCPUs, %d rounds of 300 ms; median [min-max]) | C | Rust |\n", R);
	printf("|---|---|---|---|\n");
	for (int impl = 0; impl < 2; impl++) {
		static double res[2][4][3];

		use_rust(impl);
		for (int i = 0; i < R; i++) {
			run(1, 0, 300, &ci[i], &x);	/* mmap/munmap alone */
			run(1, 1, 300, &cq[i], &qc[i]);	/* both */
			run(0, 1, 300, &x, &qi[i]);	/* queries alone */
		}
		double *sets[4] = { qi, qc, ci, cq };
		for (int s = 0; s < 4; s++) {
			qsort(sets[s], R, sizeof(double), cmp_d);
			res[impl][s][0] = sets[s][R / 2];
			res[impl][s][1] = sets[s][0];
			res[impl][s][2] = sets[s][R - 1];
		}
		if (impl == 1) {
			const char *names[4] = {
				"queries/s, idle", "queries/s, while another thread mmaps/munmaps",
				"mmap+munmap/s, idle", "mmap+munmap/s, while queries run",
			};
			for (int s = 0; s < 4; s++)
				printf("| 5 | %s | %.0f [%.0f-%.0f] | %.0f [%.0f-%.0f] |\n", names[s],
				       res[0][s][0], res[0][s][1], res[0][s][2], res[1][s][0],
				       res[1][s][1], res[1][s][2]);
		}
	}
}

static void *batch_walker(void *arg)
{
	static char *stream;

	if ((uintptr_t)arg == 2 && !stream)
		stream = malloc(32 << 20);
	while (!atomic_load(&stop)) {
		if ((uintptr_t)arg == 1)
			walk_single(0);
		else if ((uintptr_t)arg == 2)
			memset(stream, atomic_load(&query_ops), 32 << 20);	/* no kernel */
		else
			walk_batch(0);
		/* Only what was done inside the window. */
		if (!atomic_load(&stop))
			atomic_fetch_add(&query_ops, 1);
	}
	return NULL;
}

/* mmap+munmap/s while a thread walks (batches, or single queries with @single). */
static void churn_vs_walker(int single, double *churn_rate, double *walk_rate)
{
	pthread_t a, b;
	struct timespec d = { 0, 300 * 1000000L };
	double t0;

	atomic_store(&stop, 0);
	atomic_store(&churn_ops, 0);
	atomic_store(&query_ops, 0);
	t0 = now_ns();
	pthread_create(&a, NULL, churn, NULL);
	pthread_create(&b, NULL, batch_walker, (void *)(uintptr_t)single);
	nanosleep(&d, NULL);
	/*
	 * The window ends now. The walker sees @stop only after its current walk
	 * (up to a fifth of a second): counting the time until it is joined
	 * would charge the writer for time it was not running.
	 */
	t0 = (now_ns() - t0) / 1e9;
	atomic_store(&stop, 1);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	*churn_rate = atomic_load(&churn_ops) / t0;
	*walk_rate = atomic_load(&query_ops) / t0;
}

/*
 * 10: mmap+munmap/s while another thread walks 100k VMAs in batches, vs idle;
 * and the walk ratios of row 6 in wall-clock time. Wall clock, 2 vCPUs.
 */
static void batch_contention(void)
{
	enum { R = 9 };
	double idle[R], busy[R], walks[R], sbusy[R], swalks[R], mbusy[R], x;
	long want;
	char *p;
	static struct text_vma tv[300000];

	if (raise_max_map_count())
		printf("(vm.max_map_count not raised)\n");
	want = 100000 - parse_text(tv, 300000);
	p = make_vmas(want);
	use_rust(1);
	for (int i = 0; i < R; i++) {
		run(1, 0, 300, &idle[i], &x);
		churn_vs_walker(0, &busy[i], &walks[i]);
		churn_vs_walker(1, &sbusy[i], &swalks[i]);
		churn_vs_walker(2, &mbusy[i], &x);
	}
	printf("| # | measure (wall clock, 2 vCPUs, %d rounds of 300 ms; median [min-max]) | value | goal |\n", R);
	printf("|---|---|---|---|\n");
	qsort(idle, R, sizeof(double), cmp_d);
	qsort(busy, R, sizeof(double), cmp_d);
	qsort(walks, R, sizeof(double), cmp_d);
	printf("| 10 | mmap+munmap/s, idle | %.0f [%.0f-%.0f] | |\n", idle[R / 2], idle[0], idle[R - 1]);
	printf("| 10 | mmap+munmap/s while another thread walks %ld VMAs in batches | %.0f [%.0f-%.0f] | |\n",
	       walk_text(), busy[R / 2], busy[0], busy[R - 1]);
	printf("| 10 | ratio (busy / idle, medians) | %.3f | >= 0.9 |\n", busy[R / 2] / idle[R / 2]);
	printf("| 10 | full batch walks/s meanwhile | %.1f | |\n", walks[R / 2]);
	qsort(sbusy, R, sizeof(double), cmp_d);
	qsort(swalks, R, sizeof(double), cmp_d);
	printf("| 10 | for comparison: mmap+munmap/s while another thread walks with single queries (Rust) | %.0f [%.0f-%.0f] (%.3f of idle; %.1f walks/s) | |\n",
	       sbusy[R / 2], sbusy[0], sbusy[R - 1], sbusy[R / 2] / idle[R / 2], swalks[R / 2]);
	qsort(mbusy, R, sizeof(double), cmp_d);
	printf("| 10 | for comparison: mmap+munmap/s while another thread only writes 32 MiB in user space, over and over | %.0f [%.0f-%.0f] (%.3f of idle) | |\n",
	       mbusy[R / 2], mbusy[0], mbusy[R - 1], mbusy[R / 2] / idle[R / 2]);
	{
		double ts, tb, tt;

		use_rust(0);
		ts = TIME_MEDIAN(3, walk_single(0));
		use_rust(1);
		tb = TIME_MEDIAN(3, walk_batch(0));
		tt = TIME_MEDIAN(3, walk_text());
		printf("| 6a-wall | full walk of %ld VMAs, wall clock: single queries (C) / batch | %.1f | >= 5 |\n",
		       walk_text(), ts / tb);
		printf("| 6c-wall | full walk of %ld VMAs, wall clock: text / batch | %.1f | >= 20 |\n",
		       walk_text(), tt / tb);
	}
	if (p)
		munmap(p, (want / 2) * 2 * PAGE);
}

/*
 * For tools/bench/profile/run: about @vmas VMAs, then @n runs of @what (a
 * full walk: "batch", "batch-names" (with names), "batch-none" (filtered
 * to report none), "single" (C:
 * the module unloaded), "single-rust", "text"; or "lookup": the seed
 * workload's batch lookup, its addresses sorted as row 7 does, or
 * "lookup-unsorted"; or "trace": row 8's lookup, counted per call, or
 * "trace40": the same over 40 VMAs instead of 20; @vmas
 * does not apply to them). The instructions of
 * each kernel function are counted by the TCG plugin: the difference
 * between two boots with different @n is the cost of the extra runs.
 */
static int profile(const char *what, long vmas, long n)
{
	static struct text_vma tv[300000];
	static uint64_t addrs[3244];
	static uint32_t idx[3244];
	int lookup = !strcmp(what, "lookup"), unsorted = !strcmp(what, "lookup-unsorted");
	int trace = !strcmp(what, "trace"), trace40 = !strcmp(what, "trace40");
	static uint64_t stack[64];
	long base, nv, got = 0, more = 0;
	void *extra;

	if (raise_max_map_count())
		return 1;
	if (lookup || unsorted) {
		if (seed_workload(tv, addrs, &extra, &more) <= 0)
			return 1;
		if (lookup)
			qsort(addrs, 3244, sizeof(*addrs), cmp_u64);
	} else if (trace || trace40) {
		make_trace(stack, trace ? 20 : 40);
	} else {
		base = parse_text(tv, 300000);
		if (vmas > base)
			make_vmas(vmas - base);
	}
	/* The unit of a walk: the VMAs it examines, reported or not. */
	nv = parse_text(tv, 300000);
	use_rust(strcmp(what, "single") != 0);
	for (long i = 0; i < n; i++) {
		if (!strcmp(what, "batch"))
			got = walk_batch(0);
		else if (!strcmp(what, "batch-names"))
			got = walk_batch(1);
		else if (!strcmp(what, "batch-none"))
			got = walk_batch_filtered(0, PROCMAP_QUERY_FILE_BACKED_VMA, 0) < 0 ? -1 : nv;
		else if (!strcmp(what, "single") || !strcmp(what, "single-rust"))
			got = walk_single(0);
		else if (!strcmp(what, "text"))
			got = walk_text();
		else if (lookup || unsorted)
			got = lookup_batch(addrs, 3244, idx);
		else if (trace || trace40)
			got = lookup_batch(stack, 64, idx) < 0 ? -1 : 1;
		else
			return 2;
		if (got < 0)
			return 1;
	}
	printf("profile: %s x %ld: %ld each\n", what, n, got);
	return 0;
}

int main(int argc, char **argv)
{
	struct utsname u;

	uname(&u);
	maps_fd = open("/proc/self/maps", O_RDONLY);
	if (maps_fd < 0)
		return 1;
	printf("kernel %s, %ld CPUs\n\n", u.release, sysconf(_SC_NPROCESSORS_ONLN));
	builtin = argc > 1 && !strcmp(argv[1], "costs-builtin");
	if (argc == 5 && !strcmp(argv[1], "profile"))
		return profile(argv[2], atol(argv[3]), atol(argv[4]));
	if (argc > 1 && !strcmp(argv[1], "contention"))
		contention();
	else if (argc > 1 && !strcmp(argv[1], "batch"))
		batches();
	else if (argc > 1 && !strcmp(argv[1], "batch-contention"))
		batch_contention();
	else if (argc > 1 && !strcmp(argv[1], "build-ids")) {
		raise_max_map_count();
		printf("| # | measure | baseline | batch (Rust) | baseline / batch (x) | goal |\n");
		printf("|---|---|---|---|---|---|\n");
		build_id_walks(argc > 2 ? atol(argv[2]) : 10000);
	}
	else
		costs();
	use_rust(1);
	return 0;
}

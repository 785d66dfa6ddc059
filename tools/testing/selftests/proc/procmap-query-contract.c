// SPDX-License-Identifier: GPL-2.0
/*
 * The input contract of PROCMAP_QUERY (include/uapi/linux/fs.h), errno for
 * errno: every case runs against the built-in C handler (module unloaded)
 * and the Rust module (loaded), and both must give the same answer. Each
 * case also states the errno the ABI documents, so that a case that stops
 * exercising its path fails instead of passing on two equal wrong answers.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "procmap-query-util.h"

#define PAGE 4096

FIXTURE(contract) {
	int self_fd;	/* /proc/self/maps */
	int dead_fd;	/* maps of a process that has exited: no mm */
	char *page;	/* two pages, the second one unmapped */
};

FIXTURE_SETUP(contract)
{
	pid_t pid;
	char path[64];
	int pipefd[2];
	char c;

	self->self_fd = open("/proc/self/maps", O_RDONLY);
	ASSERT_GE(self->self_fd, 0);

	ASSERT_EQ(pipe(pipefd), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		close(pipefd[1]);
		read(pipefd[0], &c, 1);
		_exit(0);
	}
	close(pipefd[0]);
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	self->dead_fd = open(path, O_RDONLY);
	ASSERT_GE(self->dead_fd, 0);
	close(pipefd[1]);
	ASSERT_EQ(waitpid(pid, NULL, 0), pid);

	self->page = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(self->page != MAP_FAILED);
	ASSERT_EQ(munmap(self->page + PAGE, PAGE), 0);
}

FIXTURE_TEARDOWN(contract)
{
	close(self->self_fd);
	close(self->dead_fd);
	munmap(self->page, PAGE);
	use_impl(IMPL_RUST);
}

/*
 * Issues @q on @fd with each implementation. The Rust errno must equal the C
 * errno, and the C errno must be @want.
 */
static int expect(struct __test_metadata *_metadata, int fd,
		  unsigned long cmd, const void *arg, size_t len, int want)
{
	char orig[PAGE];
	int c_err, rust_err;

	/* Both see the same bytes: the C call must not change the input. */
	memcpy(orig, arg, len);
	EXPECT_TRUE(use_impl(IMPL_C));
	c_err = query_errno(fd, cmd, (void *)arg);
	memcpy((void *)arg, orig, len);
	EXPECT_TRUE(use_impl(IMPL_RUST));
	rust_err = query_errno(fd, cmd, (void *)arg);
	TH_LOG("cmd %#lx: c %s, rust %s, want %s", cmd, strerror(c_err),
	       strerror(rust_err), strerror(want));
	EXPECT_EQ(want, c_err);
	EXPECT_EQ(c_err, rust_err);
	return rust_err;
}

static void init_query(struct procmap_query *q, size_t size)
{
	memset(q, 0, sizeof(*q));
	q->size = size;
	q->query_addr = 0;
	q->query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA;
}

/* On a process without mm, a query that passes every check gets ESRCH. */
TEST_F(contract, valid_query_on_dead_process_is_esrch)
{
	struct procmap_query q;

	init_query(&q, sizeof(q));
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, &q, sizeof(q), ESRCH);
}

TEST_F(contract, size_above_page_is_e2big)
{
	struct procmap_query q;
	uint64_t sizes[] = { PAGE + 1, PAGE + 8, 1ULL << 32, (1ULL << 32) + 104, ~0ULL };

	for (unsigned int i = 0; i < ARRAY_SIZE(sizes); i++) {
		init_query(&q, 0);
		q.size = sizes[i];
		expect(_metadata, self->self_fd, PROCMAP_QUERY, &q, sizeof(q), E2BIG);
		expect(_metadata, self->dead_fd, PROCMAP_QUERY, &q, sizeof(q), E2BIG);
	}
}

TEST_F(contract, size_below_query_addr_is_einval)
{
	struct procmap_query q;
	uint64_t sizes[] = { 0, 1, 8, 16, 23 };

	for (unsigned int i = 0; i < ARRAY_SIZE(sizes); i++) {
		init_query(&q, sizes[i]);
		expect(_metadata, self->dead_fd, PROCMAP_QUERY, &q, sizeof(q), EINVAL);
	}
}

/* A short struct is zero-extended: whatever follows it is not read. */
TEST_F(contract, short_struct_is_zero_extended)
{
	struct procmap_query q;

	init_query(&q, offsetof(struct procmap_query, query_addr) + 8);
	q.vma_name_size = 16;		/* past the end: ignored */
	q.build_id_addr = 0x1000;	/* past the end: ignored */
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, &q, sizeof(q), ESRCH);

	/* Within the given size, the same fields are checked. */
	q.size = offsetof(struct procmap_query, vma_name_addr);
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, &q, sizeof(q), EINVAL);
}

/* A short struct that ends at the end of a mapping is read, nothing after. */
TEST_F(contract, short_struct_at_end_of_mapping)
{
	size_t size = offsetof(struct procmap_query, query_addr) + 8;
	struct procmap_query *q = (void *)(self->page + PAGE - size);

	memset(q, 0, size);
	q->size = size;
	q->query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA;
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, q, size, ESRCH);
}

TEST_F(contract, longer_struct_with_zero_tail_is_accepted)
{
	char buf[PAGE] = { 0 };
	struct procmap_query *q = (void *)buf;

	init_query(q, PAGE);
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, buf, sizeof(buf), ESRCH);
	q->size = sizeof(*q) + 1;
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, buf, sizeof(buf), ESRCH);
}

TEST_F(contract, longer_struct_with_nonzero_tail_is_e2big)
{
	char buf[PAGE] = { 0 };
	struct procmap_query *q = (void *)buf;
	size_t where[] = { sizeof(*q), sizeof(*q) + 7, PAGE - 1 };

	for (unsigned int i = 0; i < ARRAY_SIZE(where); i++) {
		memset(buf, 0, sizeof(buf));
		init_query(q, PAGE);
		buf[where[i]] = 1;
		expect(_metadata, self->dead_fd, PROCMAP_QUERY, buf, sizeof(buf), E2BIG);
		expect(_metadata, self->self_fd, PROCMAP_QUERY, buf, sizeof(buf), E2BIG);
	}
	/* A non-zero byte past the given size does not count. */
	memset(buf, 0, sizeof(buf));
	init_query(q, sizeof(*q) + 8);
	buf[sizeof(*q) + 8] = 1;
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, buf, sizeof(buf), ESRCH);
}

TEST_F(contract, unknown_flags_are_einval)
{
	struct procmap_query q;

	for (int bit = 6; bit < 64; bit++) {
		init_query(&q, sizeof(q));
		q.query_flags |= 1ULL << bit;
		expect(_metadata, self->dead_fd, PROCMAP_QUERY, &q, sizeof(q), EINVAL);
	}
	/* Every known flag together is valid. */
	init_query(&q, sizeof(q));
	q.query_flags = 0x3f;
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, &q, sizeof(q), ESRCH);
}

TEST_F(contract, buffers_set_by_half_are_einval)
{
	struct procmap_query q;
	char name[64], build_id[32];

	init_query(&q, sizeof(q));
	q.vma_name_size = sizeof(name);
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, &q, sizeof(q), EINVAL);

	init_query(&q, sizeof(q));
	q.vma_name_addr = ptr_to_u64(name);
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, &q, sizeof(q), EINVAL);

	init_query(&q, sizeof(q));
	q.build_id_size = sizeof(build_id);
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, &q, sizeof(q), EINVAL);

	init_query(&q, sizeof(q));
	q.build_id_addr = ptr_to_u64(build_id);
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, &q, sizeof(q), EINVAL);

	/* Both set, or both zero, is valid. */
	init_query(&q, sizeof(q));
	q.vma_name_size = sizeof(name);
	q.vma_name_addr = ptr_to_u64(name);
	q.build_id_size = sizeof(build_id);
	q.build_id_addr = ptr_to_u64(build_id);
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, &q, sizeof(q), ESRCH);
}

/* Flags are checked before the buffers, and both before the mm. */
TEST_F(contract, check_order)
{
	struct procmap_query q;

	init_query(&q, sizeof(q));
	q.query_flags = 1ULL << 40;
	q.vma_name_size = 8;
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, &q, sizeof(q), EINVAL);
	q.size = PAGE + 1;
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, &q, sizeof(q), E2BIG);
}

TEST_F(contract, bad_pointers_are_efault)
{
	struct procmap_query *q;

	expect(_metadata, self->self_fd, PROCMAP_QUERY, NULL, 0, EFAULT);
	expect(_metadata, self->self_fd, PROCMAP_QUERY, self->page + PAGE, 0, EFAULT);
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, (void *)1, 0, EFAULT);

	/* size readable, the rest of the struct not. */
	q = (void *)(self->page + PAGE - 8);
	q->size = sizeof(*q);
	expect(_metadata, self->self_fd, PROCMAP_QUERY, q, 8, EFAULT);
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, q, 8, EFAULT);

	/* Checked before anything else is read: E2BIG, EINVAL win. */
	q->size = PAGE + 1;
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, q, 8, E2BIG);
	q->size = 8;
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, q, 8, EINVAL);

	/* A longer struct whose tail runs into the unmapped page. */
	q = (void *)(self->page + PAGE - sizeof(*q));
	memset(q, 0, sizeof(*q));
	q->size = sizeof(*q) + 8;
	expect(_metadata, self->dead_fd, PROCMAP_QUERY, q, sizeof(*q), EFAULT);
}

TEST_F(contract, unknown_commands_are_enotty)
{
	struct procmap_query q;
	unsigned long cmds[] = {
		_IOWR('f', 18, struct procmap_query),
		_IOWR('f', 17, uint64_t),	/* PROCMAP_QUERY with another size */
		_IOR('f', 17, struct procmap_query),
		0, 0x1234,
	};

	for (unsigned int i = 0; i < ARRAY_SIZE(cmds); i++) {
		init_query(&q, sizeof(q));
		expect(_metadata, self->self_fd, cmds[i], &q, sizeof(q), ENOTTY);
		expect(_metadata, self->dead_fd, cmds[i], &q, sizeof(q), ENOTTY);
	}
}

/* A kernel thread has no mm: its maps file answers ESRCH. */
TEST_F(contract, kernel_thread_is_esrch)
{
	struct procmap_query q;
	int fd = open("/proc/2/maps", O_RDONLY);
	char comm[32] = "";
	FILE *f = fopen("/proc/2/comm", "r");

	ASSERT_TRUE(f != NULL);
	ASSERT_TRUE(fgets(comm, sizeof(comm), f) != NULL);
	fclose(f);
	ASSERT_EQ(0, strcmp(comm, "kthreadd\n"));
	ASSERT_GE(fd, 0);
	init_query(&q, sizeof(q));
	expect(_metadata, fd, PROCMAP_QUERY, &q, sizeof(q), ESRCH);
	close(fd);
}

/*
 * A valid query on a live process gets the same answer from both (the
 * differential test covers this in depth); in particular the Rust module
 * answers it, with no EOPNOTSUPP left.
 */
TEST_F(contract, valid_query_is_answered_as_c_does)
{
	struct procmap_query c_q, rust_q;
	int c_err, rust_err;

	init_query(&c_q, sizeof(c_q));
	c_q.query_addr = (uintptr_t)self->page;
	rust_q = c_q;
	ASSERT_TRUE(use_impl(IMPL_C));
	c_err = query_errno(self->self_fd, PROCMAP_QUERY, &c_q);
	ASSERT_TRUE(use_impl(IMPL_RUST));
	rust_err = query_errno(self->self_fd, PROCMAP_QUERY, &rust_q);
	ASSERT_EQ(0, c_err);
	ASSERT_EQ((uintptr_t)self->page, c_q.vma_start);
	ASSERT_EQ(0, rust_err);
	ASSERT_EQ(0, memcmp(&c_q, &rust_q, sizeof(c_q)));
}

/* Copy-out to bad buffers: EFAULT from both, after the lookup succeeded. */
TEST_F(contract, bad_output_buffers_are_efault)
{
	struct procmap_query q;
	char *bad = self->page + PAGE;

	/* This program's code: a file mapping, which has a name. */
	init_query(&q, sizeof(q));
	q.query_addr = (uintptr_t)&init_query;
	q.vma_name_size = 64;
	q.vma_name_addr = ptr_to_u64(bad);
	expect(_metadata, self->self_fd, PROCMAP_QUERY, &q, sizeof(q), EFAULT);

	/* ...and a build ID. */
	init_query(&q, sizeof(q));
	q.query_addr = (uintptr_t)&init_query;
	q.build_id_size = 20;
	q.build_id_addr = ptr_to_u64(bad);
	expect(_metadata, self->self_fd, PROCMAP_QUERY, &q, sizeof(q), EFAULT);

	/* An anonymous VMA has no name: the name buffer is not written. */
	init_query(&q, sizeof(q));
	q.query_addr = (uintptr_t)self->page;
	q.vma_name_size = 64;
	q.vma_name_addr = ptr_to_u64(bad);
	expect(_metadata, self->self_fd, PROCMAP_QUERY, &q, sizeof(q), 0);

	/* An anonymous VMA has no build ID: its buffer is not written. */
	init_query(&q, sizeof(q));
	q.query_addr = (uintptr_t)self->page;
	q.build_id_size = 20;
	q.build_id_addr = ptr_to_u64(bad);
	expect(_metadata, self->self_fd, PROCMAP_QUERY, &q, sizeof(q), 0);

	/* The struct itself, straddling into the unmapped page. */
	{
		struct procmap_query *sq = (void *)(self->page + PAGE - 32);

		memset(sq, 0, 32);
		sq->size = sizeof(*sq);
		expect(_metadata, self->self_fd, PROCMAP_QUERY, sq, 32, EFAULT);
	}
}

TEST_HARNESS_MAIN

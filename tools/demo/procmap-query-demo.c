// SPDX-License-Identifier: GPL-2.0
/*
 * Shows PROCMAP_QUERY answered in a real process, by the Rust module and by
 * the built-in C handler, for a few addresses of this process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>

static int loaded(void)
{
	struct stat st;

	return stat("/sys/module/procmap_query", &st) == 0;
}

static void query(int fd, const char *what, uintptr_t addr, uint64_t flags)
{
	struct procmap_query q;
	char name[256];

	memset(&q, 0, sizeof(q));
	q.size = sizeof(q);
	q.query_addr = addr;
	q.query_flags = flags;
	q.vma_name_addr = (uintptr_t)name;
	q.vma_name_size = sizeof(name);
	if (ioctl(fd, PROCMAP_QUERY, &q)) {
		printf("  %-22s %#18lx -> error %d (%s)\n", what, (unsigned long)addr,
		       errno, strerror(errno));
		return;
	}
	printf("  %-22s %#18lx -> %08llx-%08llx %c%c%c%c %08llx %02x:%02x %llu %s\n",
	       what, (unsigned long)addr, (unsigned long long)q.vma_start,
	       (unsigned long long)q.vma_end,
	       q.vma_flags & PROCMAP_QUERY_VMA_READABLE ? 'r' : '-',
	       q.vma_flags & PROCMAP_QUERY_VMA_WRITABLE ? 'w' : '-',
	       q.vma_flags & PROCMAP_QUERY_VMA_EXECUTABLE ? 'x' : '-',
	       q.vma_flags & PROCMAP_QUERY_VMA_SHARED ? 's' : 'p',
	       (unsigned long long)q.vma_offset, q.dev_major, q.dev_minor,
	       (unsigned long long)q.inode, q.vma_name_size ? name : "");
}

static void round_of_queries(int fd)
{
	int on_stack;
	void *heap = malloc(100);

	printf("PROCMAP_QUERY answered by %s:\n",
	       loaded() ? "the Rust module (procmap_query loaded)" : "the C code (module unloaded)");
	query(fd, "code (main)", (uintptr_t)&round_of_queries, 0);
	query(fd, "heap", (uintptr_t)heap, 0);
	query(fd, "stack", (uintptr_t)&on_stack, 0);
	query(fd, "0, covering or next", 0, PROCMAP_QUERY_COVERING_OR_NEXT_VMA);
	query(fd, "unknown flag bit 40", 0, 1ULL << 40);
	free(heap);
}

int main(void)
{
	int fd = open("/proc/self/maps", O_RDONLY);

	if (fd < 0) {
		perror("open /proc/self/maps");
		return 1;
	}
	if (!loaded() && system("modprobe procmap_query"))
		return 1;
	round_of_queries(fd);
	if (system("rmmod procmap_query"))
		return 1;
	round_of_queries(fd);
	if (system("modprobe procmap_query"))
		return 1;
	close(fd);
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the PROCMAP_QUERY selftests: switch between the Rust module
 * (procmap_query) and the built-in C handler, and issue raw queries.
 */
#ifndef PROCMAP_QUERY_UTIL_H
#define PROCMAP_QUERY_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>

enum impl { IMPL_C, IMPL_RUST };

static inline const char *impl_name(enum impl impl)
{
	return impl == IMPL_RUST ? "rust" : "c";
}

static inline bool rust_loaded(void)
{
	struct stat st;

	return stat("/sys/module/procmap_query", &st) == 0;
}

/* Loads or unloads the Rust module; returns false if that failed. */
static inline bool use_impl(enum impl impl)
{
	if (impl == IMPL_RUST && !rust_loaded()) {
		if (system("modprobe procmap_query") != 0)
			return false;
	} else if (impl == IMPL_C && rust_loaded()) {
		if (system("rmmod procmap_query") != 0)
			return false;
	}
	return rust_loaded() == (impl == IMPL_RUST);
}

/* Issues the ioctl; returns 0 or the errno. */
static inline int query_errno(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) == 0 ? 0 : errno;
}

static inline uint64_t ptr_to_u64(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

#endif /* PROCMAP_QUERY_UTIL_H */

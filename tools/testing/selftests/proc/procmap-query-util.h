/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the PROCMAP_QUERY selftests: switch between the Rust module
 * (procmap_query) and the built-in C handler, issue raw queries, and set
 * debugfs knobs (fault injection).
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
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <linux/fs.h>
#include <linux/magic.h>

enum impl { IMPL_C, IMPL_RUST };

static inline bool rust_loaded(void)
{
	struct stat st;

	return stat("/sys/module/procmap_query", &st) == 0;
}

/* Loads the Rust module (finit_module); returns 0 or the errno. */
static inline int load_rust(void)
{
	char path[256];
	struct utsname uts;
	int fd, ret;

	if (uname(&uts))
		return errno;
	snprintf(path, sizeof(path),
		 "/lib/modules/%s/kernel/fs/proc/procmap_query/procmap_query.ko", uts.release);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	ret = syscall(SYS_finit_module, fd, "", 0) ? errno : 0;
	close(fd);
	return ret;
}

/* Unloads the Rust module (delete_module); returns 0 or the errno. */
static inline int unload_rust(void)
{
	return syscall(SYS_delete_module, "procmap_query", O_NONBLOCK) ? errno : 0;
}

/* Loads or unloads the Rust module; returns false if that failed. */
static inline bool use_impl(enum impl impl)
{
	if (impl == IMPL_RUST && !rust_loaded()) {
		if (load_rust())
			return false;
	} else if (impl == IMPL_C && rust_loaded()) {
		if (unload_rust())
			return false;
	}
	return rust_loaded() == (impl == IMPL_RUST);
}

/* Issues the ioctl; returns 0 or the errno. */
static inline int query_errno(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) == 0 ? 0 : errno;
}

/* Mounts debugfs on /sys/kernel/debug unless it is there. */
static inline void mount_debugfs(void)
{
	struct statfs sf;

	if (statfs("/sys/kernel/debug", &sf) || sf.f_type != DEBUGFS_MAGIC)
		mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
}

/* Writes @value to the debugfs file @file (under /sys/kernel/debug). */
static inline bool set_debugfs(const char *file, const char *value)
{
	char path[128];
	bool ok;
	int fd;

	snprintf(path, sizeof(path), "/sys/kernel/debug/%s", file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ok = write(fd, value, strlen(value)) == (ssize_t)strlen(value);
	close(fd);
	return ok;
}

static inline uint64_t ptr_to_u64(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

#endif /* PROCMAP_QUERY_UTIL_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Registration point for an alternative handler of the ioctls on
 * /proc/<pid>/maps (PROCMAP_QUERY), used by the Rust implementation.
 */
#ifndef _LINUX_PROCMAP_QUERY_H
#define _LINUX_PROCMAP_QUERY_H

struct mm_struct;
struct path;
struct vm_area_struct;

/**
 * struct procmap_query_ops - handler of ioctls on /proc/<pid>/maps
 * @ioctl: handles an ioctl; @mm is the mm_struct the file was opened on
 *	(may be NULL, e.g. for a kernel thread; the file holds an mm_count
 *	reference but no mm_users one), @arg is a native user pointer value.
 *	Returns like &file_operations.unlocked_ioctl (-ENOIOCTLCMD for
 *	commands it does not know).
 * @compat_ioctl: optional, for 32-bit callers; @arg is the caller's raw
 *	argument. When NULL, compat calls go to @ioctl through compat_ptr().
 *
 * While registered, these replace the built-in handler. A call runs inside
 * an SRCU read-side section, so procmap_query_unregister() returns only
 * after every call that started before it has returned.
 */
struct procmap_query_ops {
	long (*ioctl)(struct mm_struct *mm, unsigned int cmd, unsigned long arg);
	long (*compat_ioctl)(struct mm_struct *mm, unsigned int cmd,
			     unsigned long arg);
};

int procmap_query_register(const struct procmap_query_ops *ops);
void procmap_query_unregister(const struct procmap_query_ops *ops);

/*
 * The name /proc/<pid>/maps shows for a VMA (fs/proc/task_mmu.c); the caller
 * holds the VMA's read lock or the mmap_lock.
 */
void get_vma_name(struct vm_area_struct *vma, const struct path **path,
		  const char **name, const char **name_fmt);

#endif /* _LINUX_PROCMAP_QUERY_H */

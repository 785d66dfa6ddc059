/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The Rust handler of PROCMAP_QUERY on /proc/<pid>/maps (see
 * fs/proc/procmap_query/): built in, the ioctl calls it directly; as a
 * module, it registers here and takes the ioctl over while it is loaded.
 */
#ifndef _LINUX_PROCMAP_QUERY_H
#define _LINUX_PROCMAP_QUERY_H

#include <linux/compiler_types.h>
#include <linux/types.h>
#include <uapi/linux/procmap_query.h>

struct mm_struct;
struct path;
struct vm_area_struct;

/**
 * struct procmap_query_ops - handler of PROCMAP_QUERY on /proc/<pid>/maps
 * @ioctl: handles the ioctl @cmd; @mm is the mm_struct the file was opened
 *	on (may be NULL, e.g. for a kernel thread; the file holds an mm_count
 *	reference but no mm_users one), @uarg the user's argument. Returns
 *	like &file_operations.unlocked_ioctl: PROCMAP_QUERY it answers;
 *	-ENOIOCTLCMD, for a command it does not implement, fails the call
 *	with ENOTTY.
 * @compat_ioctl: optional, called instead of @ioctl for 32-bit callers;
 *	@uarg is already converted by compat_ptr().
 *
 * While registered, these replace the built-in handler; @ioctl is reached
 * by a static call, a direct call once registered. A call runs inside an
 * SRCU read-side section, so procmap_query_unregister() returns only after
 * every call that started before it has returned.
 */
struct procmap_query_ops {
	long (*ioctl)(struct mm_struct *mm, unsigned int cmd, void __user *uarg);
	long (*compat_ioctl)(struct mm_struct *mm, unsigned int cmd,
			     void __user *uarg);
};

/* CONFIG_PROCMAP_QUERY_RUST=m */
int procmap_query_register(const struct procmap_query_ops *ops);
void procmap_query_unregister(const struct procmap_query_ops *ops);

/* CONFIG_PROCMAP_QUERY_RUST=y: the handler, defined by the Rust code. */
long procmap_query_builtin_ioctl(struct mm_struct *mm, unsigned int cmd,
				 void __user *uarg, bool compat);

/*
 * The name /proc/<pid>/maps shows for a VMA (fs/proc/task_mmu.c); the caller
 * holds the VMA's read lock or the mmap_lock.
 */
void proc_get_vma_name(struct vm_area_struct *vma, const struct path **path,
		       const char **name, const char **name_fmt);

#endif /* _LINUX_PROCMAP_QUERY_H */

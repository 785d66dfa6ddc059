/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Extensions of PROCMAP_QUERY (<linux/fs.h>) on /proc/<pid>/maps, answered
 * by the Rust handler (CONFIG_PROCMAP_QUERY_RUST):
 *
 * - PROCMAP_QUERY_BATCH: many VMAs in one call, either a walk (the
 *   consecutive VMAs that pass the filters, from an address on) or a lookup
 *   (the VMA covering each of an array of addresses, each VMA reported once);
 * - PROCMAP_QUERY_VMA_PERM_ANY: a query flag that makes the permission
 *   filter match VMAs with at least one of the requested permissions, for
 *   PROCMAP_QUERY and PROCMAP_QUERY_BATCH alike;
 * - PROCMAP_QUERY_GENERATION: a value that changes whenever a VMA of the
 *   process may have been added, removed or changed.
 *
 * Detection: a kernel without the extension (upstream, or the procmap_query
 * module unloaded) fails PROCMAP_QUERY_BATCH and PROCMAP_QUERY_GENERATION
 * with ENOTTY, and PROCMAP_QUERY with PROCMAP_QUERY_VMA_PERM_ANY with
 * EINVAL (an unknown flag bit).
 *
 * Numbers: the commands use the 'f' type of PROCMAP_QUERY (which is
 * _IOWR('f', 17, ...)) with numbers 0xe0 and 0xe1, outside every 'f' range
 * in Documentation/userspace-api/ioctl/ioctl-number.rst (00-27, 28-2E,
 * 81-8F); each value also encodes its argument's size and direction, so a
 * future command would have to match those too to collide. The new query
 * flag is the top bit of the 64-bit flags word, while upstream allocates
 * from the bottom (0x01-0x20 in 6.11-7.3).
 *
 * See Documentation/filesystems/procmap_query_rust.rst.
 */
#ifndef _UAPI_LINUX_PROCMAP_QUERY_H
#define _UAPI_LINUX_PROCMAP_QUERY_H

#include <linux/fs.h>
#include <linux/ioctl.h>
#include <linux/types.h>

/*
 * In procmap_query.query_flags and procmap_batch.query_flags: a VMA passes
 * the permission filter if it has at least one of the PROCMAP_QUERY_VMA_*
 * permission bits given (READABLE, WRITABLE, EXECUTABLE, SHARED), instead of
 * all of them. At least one permission bit must be given (else EINVAL).
 */
#define PROCMAP_QUERY_VMA_PERM_ANY	(1ULL << 63)

/*
 * Generation of the process's VMA set: a value that changes whenever a VMA
 * may have been added, removed or changed (range, flags, offset, file,
 * anonymous name). Two equal, even values read at two moments mean that no
 * VMA changed in between. An odd value means a change was in progress when
 * it was read: a batch whose gen_start or gen_end is odd is not a snapshot.
 * PROCMAP_GENERATION_UNKNOWN (odd) is reported by kernels that cannot tell
 * (built without CONFIG_PER_VMA_LOCK). The count behind it is 32 bits wide
 * and repeats after 2^31 changes: a process can bring it back on purpose, so
 * it cannot tell a reader that a process trying to deceive it changed nothing.
 */
#define PROCMAP_GENERATION_UNKNOWN	(~0ULL)

/* Reads the generation: one __u64. */
#define PROCMAP_QUERY_GENERATION	_IOR(PROCFS_IOCTL_MAGIC, 0xe1, __u64)

/* In procmap_batch.flags. */
enum procmap_batch_flags {
	/*
	 * Lookup: answer the addresses at procmap_batch.addrs. Without it,
	 * walk: the VMAs from procmap_batch.addr on.
	 */
	PROCMAP_BATCH_LOOKUP		= 0x01,
	/* Fill procmap_batch_vma.build_id. */
	PROCMAP_BATCH_BUILD_ID		= 0x02,
};

/* In procmap_batch.out_flags. */
enum procmap_batch_out_flags {
	/*
	 * Walk: no VMA is left to report after the last record. Lookup: every
	 * address was answered.
	 */
	PROCMAP_BATCH_DONE		= 0x01,
};

/* In the procmap_batch.addr_vmas array: no VMA answers the address. */
#define PROCMAP_BATCH_NO_VMA		(~0U)

/*
 * Work per call: at most this many VMAs are examined (walk and lookup) and
 * this many addresses answered (lookup); the call then returns early.
 */
#define PROCMAP_BATCH_MAX_VMAS		65536

/* One VMA of a batch: what a single PROCMAP_QUERY reports for it. */
struct procmap_batch_vma {
	__u64 vma_start;	/* as procmap_query.vma_start */
	__u64 vma_end;		/* as procmap_query.vma_end */
	__u64 vma_flags;	/* as procmap_query.vma_flags */
	__u64 vma_page_size;	/* as procmap_query.vma_page_size */
	__u64 vma_offset;	/* as procmap_query.vma_offset */
	__u64 inode;		/* as procmap_query.inode */
	__u32 dev_major;	/* as procmap_query.dev_major */
	__u32 dev_minor;	/* as procmap_query.dev_minor */
	/*
	 * The name, as procmap_query.vma_name_addr receives it (terminated by
	 * a NUL, which name_size counts), at this offset of the names buffer;
	 * name_size is 0 if the VMA has no name or names were not asked for.
	 */
	__u32 name_off;
	__u32 name_size;
	/*
	 * With PROCMAP_BATCH_BUILD_ID: the build ID's size (0: none) and its
	 * bytes; the rest of build_id is zero. Without: 0 and zeros.
	 */
	__u32 build_id_size;
	__u8 build_id[20];
};

#define PROCMAP_BATCH_VMA_SIZE_VER0	88

/*
 * The argument of PROCMAP_QUERY_BATCH. All pointers are user addresses in a
 * __u64, so the layout is the same for 32- and 64-bit callers. Like struct
 * procmap_query, it is size-extensible: 'size' is the caller's sizeof.
 */
struct procmap_batch {
	__u64 size;		/* in: sizeof(struct procmap_batch) */
	__u64 flags;		/* in: PROCMAP_BATCH_* */
	/*
	 * in: the filters of procmap_query.query_flags: the permission bits
	 * (all of them, or any with PROCMAP_QUERY_VMA_PERM_ANY) and
	 * PROCMAP_QUERY_FILE_BACKED_VMA. COVERING_OR_NEXT_VMA is not allowed:
	 * a walk always goes on to the next VMA, a lookup never does.
	 */
	__u64 query_flags;
	/*
	 * Walk: in: the first VMA reported is the first one that ends above
	 * addr and passes the filters (as PROCMAP_QUERY with
	 * COVERING_OR_NEXT_VMA); out: where to resume (the end of the last VMA
	 * examined). Lookup: must be 0.
	 */
	__u64 addr;
	/* Lookup: in: a __u64 array of addr_count addresses. Walk: 0. */
	__u64 addrs;
	/*
	 * Lookup: in: a __u32 array of addr_count entries; out: for each
	 * address answered, the index in vmas of the VMA covering it (which
	 * passes the filters), or PROCMAP_BATCH_NO_VMA. Walk: 0.
	 */
	__u64 addr_vmas;
	/* Lookup: in: the number of addresses; out: how many were answered. */
	__u32 addr_count;
	/* in: room in vmas, in records; out: records written. */
	__u32 vma_count;
	/* in: an array of vma_count records of vma_size bytes. */
	__u64 vmas;
	/*
	 * in: sizeof(struct procmap_batch_vma), at least
	 * PROCMAP_BATCH_VMA_SIZE_VER0, a multiple of 8; the bytes of a record
	 * beyond what the kernel knows are zeroed.
	 */
	__u32 vma_size;
	/*
	 * in: size of the names buffer, 0 for no names; out: bytes used. A
	 * buffer of PATH_MAX bytes has room for any name PROCMAP_QUERY can
	 * give; a longer one is ENAMETOOLONG, as there.
	 */
	__u32 names_size;
	__u64 names;		/* in: the names buffer */
	/* out: the generation before the first VMA and after the last. */
	__u64 gen_start;
	__u64 gen_end;
	__u64 out_flags;	/* out: PROCMAP_BATCH_DONE */
};

#define PROCMAP_BATCH_SIZE_VER0		104

#define PROCMAP_QUERY_BATCH	_IOWR(PROCFS_IOCTL_MAGIC, 0xe0, struct procmap_batch)

#endif /* _UAPI_LINUX_PROCMAP_QUERY_H */

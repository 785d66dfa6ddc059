// SPDX-License-Identifier: GPL-2.0

//! Checks on the `PROCMAP_QUERY` argument that need no process: the input contract of
//! `do_procmap_query()` in `fs/proc/task_mmu.c`.

use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    proc_maps::{batch, flags, ProcmapBatch, ProcmapBatchVma, ProcmapQuery},
};

/// The permission bits of `query_flags` (and `vma_flags`).
pub(crate) const VMA_FLAGS: u64 =
    flags::VMA_READABLE | flags::VMA_WRITABLE | flags::VMA_EXECUTABLE | flags::VMA_SHARED;

/// The bits of `query_flags` upstream's `PROCMAP_QUERY` knows.
pub(crate) const UPSTREAM_QUERY_FLAGS: u64 =
    flags::COVERING_OR_NEXT_VMA | flags::FILE_BACKED_VMA | VMA_FLAGS;

/// Every bit `query_flags` may have.
pub(crate) const VALID_QUERY_FLAGS: u64 =
    flags::COVERING_OR_NEXT_VMA | flags::FILE_BACKED_VMA | VMA_FLAGS | flags::VMA_PERM_ANY;

/// The smallest argument: `offsetofend(struct procmap_query, query_addr)`.
pub(crate) const MIN_SIZE: usize =
    core::mem::offset_of!(ProcmapQuery, query_addr) + size_of::<u64>();

/// Checks the size user space gives for its `struct procmap_query`.
///
/// Returns the size as `usize`; [`E2BIG`] if it is larger than a page (abuse: the structure can
/// never be that large), [`EINVAL`] if it is too small to hold `query_flags` and `query_addr`.
pub(crate) fn check_size(size: u64) -> Result<usize> {
    let size = usize::try_from(size).map_err(|_| E2BIG)?;
    if size > PAGE_SIZE {
        return Err(E2BIG);
    }
    if size < MIN_SIZE {
        return Err(EINVAL);
    }
    Ok(size)
}

/// Checks the fields of a copied-in argument.
///
/// [`EINVAL`] for unknown `query_flags` bits, `VMA_PERM_ANY` without a permission bit, or a
/// name or build-ID buffer whose size and address are not both set or both zero.
pub(crate) fn check_query(q: &ProcmapQuery) -> Result {
    // Upstream's flags take one test; the extension is looked at only when another bit is set.
    if q.query_flags & !UPSTREAM_QUERY_FLAGS != 0 {
        check_query_flags(q.query_flags, VALID_QUERY_FLAGS)?;
    }
    if (q.vma_name_size != 0) != (q.vma_name_addr != 0) {
        return Err(EINVAL);
    }
    if (q.build_id_size != 0) != (q.build_id_addr != 0) {
        return Err(EINVAL);
    }
    Ok(())
}

/// Checks a `query_flags` word: only bits of `valid`, and `VMA_PERM_ANY` (an extension upstream
/// does not know) only with at least one permission bit, which it would otherwise ignore.
#[cold]
pub(crate) fn check_query_flags(query_flags: u64, valid: u64) -> Result {
    if query_flags & !valid != 0 {
        return Err(EINVAL);
    }
    if query_flags & flags::VMA_PERM_ANY != 0 && query_flags & VMA_FLAGS == 0 {
        return Err(EINVAL);
    }
    Ok(())
}

/// The filters a batch takes: those of `PROCMAP_QUERY` but `COVERING_OR_NEXT_VMA`.
pub(crate) const VALID_BATCH_QUERY_FLAGS: u64 =
    flags::FILE_BACKED_VMA | VMA_FLAGS | flags::VMA_PERM_ANY;

/// Every bit `procmap_batch.flags` may have.
pub(crate) const VALID_BATCH_FLAGS: u64 = batch::LOOKUP | batch::BUILD_ID;

/// Checks the size user space gives for its `struct procmap_batch`: [`E2BIG`] above a page,
/// [`EINVAL`] below the first version of the structure.
pub(crate) fn check_batch_size(size: u64) -> Result<usize> {
    let size = usize::try_from(size).map_err(|_| E2BIG)?;
    if size > PAGE_SIZE {
        return Err(E2BIG);
    }
    if size < size_of::<ProcmapBatch>() {
        return Err(EINVAL);
    }
    Ok(size)
}

/// Checks a copied-in `struct procmap_batch`: [`EINVAL`] for unknown flags or filters, a record
/// size below the first version or not a multiple of 8 ([`E2BIG`] above a page, first), an array or
/// buffer whose address and size are not both set or both zero, or a field of the other mode
/// (walk or lookup) set.
pub(crate) fn check_batch(b: &ProcmapBatch) -> Result {
    if b.flags & !VALID_BATCH_FLAGS != 0 {
        return Err(EINVAL);
    }
    check_query_flags(b.query_flags, VALID_BATCH_QUERY_FLAGS)?;
    // Above a page is `E2BIG` whatever else is wrong with it, as for the header's size.
    let vma_size = b.vma_size as usize;
    if vma_size > PAGE_SIZE {
        return Err(E2BIG);
    }
    if vma_size < size_of::<ProcmapBatchVma>() || vma_size % 8 != 0 {
        return Err(EINVAL);
    }
    if (b.vma_count != 0) != (b.vmas != 0) || (b.names_size != 0) != (b.names != 0) {
        return Err(EINVAL);
    }
    if b.flags & batch::LOOKUP != 0 {
        let set = b.addr_count != 0;
        if b.addr != 0 || (b.addrs != 0) != set || (b.addr_vmas != 0) != set {
            return Err(EINVAL);
        }
    } else if b.addrs != 0 || b.addr_vmas != 0 || b.addr_count != 0 {
        return Err(EINVAL);
    }
    Ok(())
}

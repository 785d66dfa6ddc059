// SPDX-License-Identifier: GPL-2.0

//! Checks on the `PROCMAP_QUERY` argument that need no process: the input contract of
//! `do_procmap_query()` in `fs/proc/task_mmu.c`.

use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    proc_maps::{flags, ProcmapQuery},
};

/// The permission bits of `query_flags` (and `vma_flags`).
pub(crate) const VMA_FLAGS: u64 =
    flags::VMA_READABLE | flags::VMA_WRITABLE | flags::VMA_EXECUTABLE | flags::VMA_SHARED;

/// Every bit `query_flags` may have.
pub(crate) const VALID_QUERY_FLAGS: u64 =
    flags::COVERING_OR_NEXT_VMA | flags::FILE_BACKED_VMA | VMA_FLAGS;

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
/// [`EINVAL`] for unknown `query_flags` bits, or a name or build-ID buffer whose size and
/// address are not both set or both zero.
pub(crate) fn check_query(q: &ProcmapQuery) -> Result {
    if q.query_flags & !VALID_QUERY_FLAGS != 0 {
        return Err(EINVAL);
    }
    if (q.vma_name_size != 0) != (q.vma_name_addr != 0) {
        return Err(EINVAL);
    }
    if (q.build_id_size != 0) != (q.build_id_addr != 0) {
        return Err(EINVAL);
    }
    Ok(())
}

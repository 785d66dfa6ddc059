// SPDX-License-Identifier: GPL-2.0

//! The parts of a `PROCMAP_QUERY` answer that need no live process: which VMA matches a query,
//! the permission bits, and the size of the name buffer. They follow `query_matching_vma()` and
//! `do_procmap_query()` in `fs/proc/task_mmu.c`.

use kernel::{
    mm::virt::{flags as vm, vm_flags_t},
    proc_maps::flags,
};

/// What the lookup needs to know of a VMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VmaFacts {
    /// `vm_start`.
    pub(crate) start: usize,
    /// `vm_end`.
    pub(crate) end: usize,
    /// `vm_flags`.
    pub(crate) flags: vm_flags_t,
    /// Whether `vm_file` is set.
    pub(crate) file_backed: bool,
}

/// What to do with the first VMA that ends above the query address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// This VMA is the answer.
    Answer,
    /// Look at the first VMA that ends above this address (`COVERING_OR_NEXT_VMA` only).
    Next(usize),
    /// No VMA matches: `ENOENT`.
    NotFound,
}

/// The `vm_flags` a VMA must all have to match the permission bits of `query_flags`.
///
/// Spelled out (and mirrored by [`vma_flags`]) rather than folded over a table: the fold
/// cost about 50 more instructions per query on the hot path.
pub(crate) fn required_vm_flags(query_flags: u64) -> vm_flags_t {
    let mut perm = 0;
    if query_flags & flags::VMA_READABLE != 0 {
        perm |= vm::READ;
    }
    if query_flags & flags::VMA_WRITABLE != 0 {
        perm |= vm::WRITE;
    }
    if query_flags & flags::VMA_EXECUTABLE != 0 {
        perm |= vm::EXEC;
    }
    if query_flags & flags::VMA_SHARED != 0 {
        perm |= vm::MAYSHARE;
    }
    perm
}

/// The filters of `query_flags`, decoded once (a batch applies them to every VMA it examines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Filter {
    /// `FILE_BACKED_VMA`: only VMAs with a file.
    file_backed: bool,
    /// The `vm_flags` of the permission filter ([`required_vm_flags`]).
    perm: vm_flags_t,
    /// `VMA_PERM_ANY`: any of `perm` (at least one), instead of all of them.
    any: bool,
}

impl Filter {
    /// Decodes the filters of `query_flags`.
    #[inline]
    pub(crate) fn new(query_flags: u64) -> Self {
        Self {
            file_backed: query_flags & flags::FILE_BACKED_VMA != 0,
            perm: required_vm_flags(query_flags),
            any: query_flags & flags::VMA_PERM_ANY != 0,
        }
    }

    /// Whether a VMA with `vm_flags`, file-backed or not, passes: it has a file if that is
    /// asked for, and all the permission bits asked for, or any of them with `VMA_PERM_ANY`
    /// (which requires at least one).
    #[inline]
    pub(crate) fn passes(&self, file_backed: bool, vm_flags: vm_flags_t) -> bool {
        if self.file_backed && !file_backed {
            return false;
        }
        let have = vm_flags & self.perm;
        if self.any {
            have != 0
        } else {
            have == self.perm
        }
    }
}

/// Whether `vma` passes the filters of `query_flags`: file-backed, and the permissions.
#[inline]
pub(crate) fn passes(vma: &VmaFacts, query_flags: u64) -> bool {
    Filter::new(query_flags).passes(vma.file_backed, vma.flags)
}

/// Decides about `vma`, the first VMA that ends above `addr`.
///
/// It is the answer if it passes the filters (file-backed, and a match of the permissions:
/// all of them, or any with `VMA_PERM_ANY`) and covers `addr`, or lies above it with
/// `COVERING_OR_NEXT_VMA`. Otherwise, only `COVERING_OR_NEXT_VMA` goes on, from the end of this
/// VMA.
pub(crate) fn step(vma: &VmaFacts, addr: usize, query_flags: u64) -> Step {
    let or_next = query_flags & flags::COVERING_OR_NEXT_VMA != 0;
    if passes(vma, query_flags) && (or_next || vma.start <= addr) {
        Step::Answer
    } else if or_next {
        Step::Next(vma.end)
    } else {
        Step::NotFound
    }
}

/// The `vma_flags` of the answer for a VMA with `vm_flags`.
pub(crate) fn vma_flags(vm_flags: vm_flags_t) -> u64 {
    let mut out = 0;
    if vm_flags & vm::READ != 0 {
        out |= flags::VMA_READABLE;
    }
    if vm_flags & vm::WRITE != 0 {
        out |= flags::VMA_WRITABLE;
    }
    if vm_flags & vm::EXEC != 0 {
        out |= flags::VMA_EXECUTABLE;
    }
    if vm_flags & vm::MAYSHARE != 0 {
        out |= flags::VMA_SHARED;
    }
    out
}

/// The record that covers `addr` among those `order` lists: `records` are a lookup's `(start,
/// end)`, in the order they were reported, and `order` indices of some of them, sorted by start,
/// no two overlapping (as [`slot_in_order`] keeps them). The only candidate is the last one
/// starting at or below `addr`.
pub(crate) fn find_in_order(order: &[u32], records: &[(usize, usize)], addr: usize) -> Option<u32> {
    let start = |r: u32| {
        records
            .get(r as usize)
            .map_or(usize::MAX, |&(start, _)| start)
    };
    let i = order.partition_point(|&r| start(r) <= addr);
    let r = *order.get(i.checked_sub(1)?)?;
    records
        .get(r as usize)
        .filter(|&&(start, end)| start <= addr && addr < end)
        .map(|_| r)
}

/// Where in `order` (see [`find_in_order`]) a record `(start, end)` goes to keep it sorted, or
/// `None` if it overlaps one of the records there: then a binary search could miss the one that
/// covers an address. Of sorted records that do not overlap, only the neighbours of its place
/// can overlap it.
pub(crate) fn slot_in_order(
    order: &[u32],
    records: &[(usize, usize)],
    start: usize,
    end: usize,
) -> Option<usize> {
    let rec = |r: u32| {
        records
            .get(r as usize)
            .copied()
            .unwrap_or((usize::MAX, usize::MAX))
    };
    let at = order.partition_point(|&r| rec(r).0 < start);
    let below_end = at
        .checked_sub(1)
        .and_then(|i| order.get(i))
        .map_or(0, |&r| rec(r).1);
    let above_start = order.get(at).map_or(usize::MAX, |&r| rec(r).0);
    (below_end <= start && end <= above_start).then_some(at)
}

/// `PATH_MAX`: the largest name buffer.
pub(crate) const PATH_MAX: usize = kernel::bindings::PATH_MAX as usize;

/// The buffer the name is built in: the size user space gives, at most `PATH_MAX`.
pub(crate) fn name_buf_size(vma_name_size: u32) -> usize {
    (vma_name_size as usize).min(PATH_MAX)
}

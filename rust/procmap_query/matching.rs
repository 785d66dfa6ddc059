// SPDX-License-Identifier: GPL-2.0

//! The parts of a `PROCMAP_QUERY` answer that need no live process: which VMA matches a query,
//! the permission bits, and the size of the name buffer. They follow `query_matching_vma()` and
//! `do_procmap_query()` in `fs/proc/task_mmu.c`.

use kernel::{
    alloc::KVVec,
    mm::virt::{flags as vm, vm_flags_t},
    page::PAGE_SHIFT,
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

/// The record that covers `addr` among `records`, `(start, end)` sorted by start, no two
/// overlapping: the first one ending above `addr`, if it starts at or below it.
#[inline]
pub(crate) fn find_sorted(records: &[(usize, usize)], addr: usize) -> Option<u32> {
    let i = records.partition_point(|&(_, end)| end <= addr);
    records
        .get(i)
        .filter(|&&(start, end)| start <= addr && addr < end)
        // Record indices are `u32`s.
        .map(|_| i as u32)
}

/// The position of the record that covers `addr` among `records`, `(start, end)` in any order,
/// searched one by one: four to a step (a record starting above `addr` is passed over in two
/// instructions), as a lookup's records that are not merged yet are searched for each address that
/// is new to its page cache, most of them in none.
#[inline]
pub(crate) fn find_unsorted(records: &[(usize, usize)], addr: usize) -> Option<usize> {
    let covers = |&(start, end): &(usize, usize)| start <= addr && addr < end;
    let mut chunks = records.chunks_exact(4);
    for (k, chunk) in chunks.by_ref().enumerate() {
        if let [a, b, c, d] = chunk {
            let i = if covers(a) {
                0
            } else if covers(b) {
                1
            } else if covers(c) {
                2
            } else if covers(d) {
                3
            } else {
                continue;
            };
            // Below `records.len()`.
            return Some(k.wrapping_mul(4).wrapping_add(i));
        }
    }
    let rest = chunks.remainder();
    let i = rest.iter().position(covers)?;
    Some(records.len().wrapping_sub(rest.len()).wrapping_add(i))
}

/// A record of a lookup in its order (see [`find_in_order`]): `(start, end, index)`.
pub(crate) type Ordered = (usize, usize, u32);

/// The index of the record that covers `addr` in `order`: a lookup's records, sorted by start, no
/// two overlapping (as [`merge_in_order`] keeps them).
#[inline]
pub(crate) fn find_in_order(order: &[Ordered], addr: usize) -> Option<u32> {
    let i = order.partition_point(|&(_, end, _)| end <= addr);
    order
        .get(i)
        .filter(|&&(start, _, _)| start <= addr)
        .map(|&(_, _, r)| r)
}

/// Merges `order`, sorted by start (see [`find_in_order`]), and the records `from..` of
/// `records` (a lookup's `(start, end)`, in the order they were reported; those not merged yet,
/// at most [`MERGE_MAX`]) into `merged`, sorted by start.
///
/// Returns `false` if two of the records overlap, where a binary search could miss the one that
/// covers an address (the VMAs of a lookup may change between its passes), if there are more
/// than [`MERGE_MAX`] records to merge, or if `merged` is out of room; `merged` is incomplete
/// then.
pub(crate) fn merge_in_order(
    order: &[Ordered],
    records: &[(usize, usize)],
    from: usize,
    merged: &mut KVVec<Ordered>,
) -> bool {
    let fresh = records.get(from..).unwrap_or(&[]);
    // Sorted by start (by page: VMAs start on one), as keys of the page and the position, by
    // insertion: they are a few dozen at most.
    let mut keys = [0u64; MERGE_MAX];
    let Some(keys) = keys.get_mut(..fresh.len()) else {
        return false;
    };
    for (i, &(start, _)) in fresh.iter().enumerate() {
        let Some(key) = keys.get_mut(i) else {
            return false;
        };
        *key = ((start >> PAGE_SHIFT) as u64) << 8 | i as u64;
        let mut j = i;
        while j > 0 && keys[j - 1] > keys[j] {
            keys.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut below = 0;
    let mut last_end = 0;
    let mut push = |ordered: Ordered, last_end: &mut usize| {
        // Sorted by start: only the record before can overlap this one.
        let ok = ordered.0 >= *last_end && merged.push_within_capacity(ordered).is_ok();
        *last_end = ordered.1;
        ok
    };
    for &key in keys.iter() {
        let i = (key & 0xff) as usize;
        let Some(&(start, end)) = fresh.get(i) else {
            return false;
        };
        // The records of `order` below this one, then this one.
        while let Some(&ordered) = order.get(below).filter(|o| o.0 < start) {
            if !push(ordered, &mut last_end) {
                return false;
            }
            below += 1;
        }
        // Record indices are `u32`s.
        if !push((start, end, from.saturating_add(i) as u32), &mut last_end) {
            return false;
        }
    }
    for &ordered in order.get(below..).unwrap_or(&[]) {
        if !push(ordered, &mut last_end) {
            return false;
        }
    }
    true
}

/// The most records [`merge_in_order`] merges into an order at once (below 256: a key holds the
/// position in 8 bits).
pub(crate) const MERGE_MAX: usize = 64;

/// `PATH_MAX`: the largest name buffer.
pub(crate) const PATH_MAX: usize = kernel::bindings::PATH_MAX as usize;

/// The buffer the name is built in: the size user space gives, at most `PATH_MAX`.
pub(crate) fn name_buf_size(vma_name_size: u32) -> usize {
    (vma_name_size as usize).min(PATH_MAX)
}

// SPDX-License-Identifier: GPL-2.0

//! KUnit tests for the logic of the `procmap_query` module that needs no live process: the
//! argument checks, VMA matching, permission bits and name sizes.
//!
//! The expected values come from the ABI (`include/uapi/linux/fs.h`) and from
//! `do_procmap_query()` in `fs/proc/task_mmu.c`, not from the code under test.

use kernel::prelude::*;

#[path = "args.rs"]
mod args;
#[path = "matching.rs"]
mod matching;

module! {
    type: ProcmapQueryKunit,
    name: "procmap_query_kunit",
    authors: ["procmap-query project"],
    description: "KUnit tests for the Rust PROCMAP_QUERY handler",
    license: "GPL",
}

struct ProcmapQueryKunit;

impl kernel::Module for ProcmapQueryKunit {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Self)
    }
}

#[kunit_tests(rust_procmap_query_args)]
mod tests {
    use super::args::{check_query, check_size};
    use kernel::{page::PAGE_SIZE, prelude::*, proc_maps::ProcmapQuery};

    /// `offsetofend(struct procmap_query, query_addr)`: three `__u64` fields.
    const UAPI_MIN_SIZE: u64 = 24;
    /// `sizeof(struct procmap_query)` in the 7.3 UAPI.
    const UAPI_SIZE: u64 = 104;

    fn query(flags: u64) -> ProcmapQuery {
        ProcmapQuery {
            size: UAPI_SIZE,
            query_flags: flags,
            ..Default::default()
        }
    }

    #[test]
    fn size_limits() {
        assert_eq!(check_size(0), Err(EINVAL));
        assert_eq!(check_size(8), Err(EINVAL));
        assert_eq!(check_size(UAPI_MIN_SIZE - 1), Err(EINVAL));
        assert_eq!(check_size(UAPI_MIN_SIZE), Ok(UAPI_MIN_SIZE as usize));
        assert_eq!(check_size(UAPI_SIZE), Ok(UAPI_SIZE as usize));
        assert_eq!(check_size(PAGE_SIZE as u64), Ok(PAGE_SIZE));
        assert_eq!(check_size(PAGE_SIZE as u64 + 1), Err(E2BIG));
        assert_eq!(check_size(u64::MAX), Err(E2BIG));
        // A size that truncates to a small value must still be too big.
        assert_eq!(check_size((1u64 << 32) + UAPI_SIZE), Err(E2BIG));
    }

    #[test]
    fn known_flags_accepted() {
        // READABLE, WRITABLE, EXECUTABLE, SHARED, COVERING_OR_NEXT_VMA, FILE_BACKED_VMA.
        for bit in 0..6 {
            assert_eq!(check_query(&query(1 << bit)), Ok(()));
        }
        assert_eq!(check_query(&query(0x3f)), Ok(()));
    }

    #[test]
    fn perm_any_needs_a_permission_bit() {
        // PROCMAP_QUERY_VMA_PERM_ANY (include/uapi/linux/procmap_query.h): the top bit.
        const ANY: u64 = 1 << 63;
        for bit in 0..4 {
            assert_eq!(check_query(&query(ANY | (1 << bit))), Ok(()));
        }
        assert_eq!(check_query(&query(ANY | 0x3f)), Ok(()));
        // Without a permission bit it would match nothing: refused.
        assert_eq!(check_query(&query(ANY)), Err(EINVAL));
        assert_eq!(check_query(&query(ANY | 0x30)), Err(EINVAL));
    }

    #[test]
    fn unknown_flags_rejected() {
        for bit in 6..63 {
            assert_eq!(check_query(&query(1u64 << bit)), Err(EINVAL));
            assert_eq!(check_query(&query(0x3f | (1u64 << bit))), Err(EINVAL));
        }
    }

    #[test]
    fn buffers_set_by_half_rejected() {
        let mut q = query(0);
        q.vma_name_size = 16;
        assert_eq!(check_query(&q), Err(EINVAL));
        q.vma_name_addr = 0x1000;
        assert_eq!(check_query(&q), Ok(()));
        q.vma_name_size = 0;
        assert_eq!(check_query(&q), Err(EINVAL));

        let mut q = query(0);
        q.build_id_addr = 0x1000;
        assert_eq!(check_query(&q), Err(EINVAL));
        q.build_id_size = 20;
        assert_eq!(check_query(&q), Ok(()));
        q.build_id_addr = 0;
        assert_eq!(check_query(&q), Err(EINVAL));
    }
}

#[kunit_tests(rust_procmap_query_batch_args)]
mod batch_tests {
    use super::args::{check_batch, check_batch_size};
    use kernel::{page::PAGE_SIZE, prelude::*, proc_maps::ProcmapBatch};

    /// `sizeof(struct procmap_batch)` and `sizeof(struct procmap_batch_vma)`, version 0
    /// (include/uapi/linux/procmap_query.h).
    const SIZE: u64 = 104;
    const VMA_SIZE: u32 = 88;
    // PROCMAP_BATCH_LOOKUP, PROCMAP_BATCH_BUILD_ID; PROCMAP_QUERY_VMA_PERM_ANY.
    const LOOKUP: u64 = 1;
    const BUILD_ID: u64 = 2;
    const ANY: u64 = 1 << 63;

    /// A walk from 0 into 16 records, with names.
    fn walk() -> ProcmapBatch {
        ProcmapBatch {
            size: SIZE,
            vma_count: 16,
            vmas: 0x10000,
            vma_size: VMA_SIZE,
            names_size: 4096,
            names: 0x20000,
            ..Default::default()
        }
    }

    /// A lookup of 8 addresses.
    fn lookup() -> ProcmapBatch {
        ProcmapBatch {
            flags: LOOKUP,
            addrs: 0x30000,
            addr_vmas: 0x40000,
            addr_count: 8,
            ..walk()
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(check_batch_size(SIZE), Ok(104));
        assert_eq!(check_batch_size(SIZE - 8), Err(EINVAL));
        assert_eq!(check_batch_size(0), Err(EINVAL));
        assert_eq!(check_batch_size(PAGE_SIZE as u64), Ok(PAGE_SIZE));
        assert_eq!(check_batch_size(PAGE_SIZE as u64 + 1), Err(E2BIG));
        assert_eq!(check_batch_size(u64::MAX), Err(E2BIG));
        assert_eq!(check_batch_size((1u64 << 32) + SIZE), Err(E2BIG));
    }

    #[test]
    fn flags_and_filters() {
        assert_eq!(check_batch(&walk()), Ok(()));
        assert_eq!(check_batch(&lookup()), Ok(()));
        let with = |flags, query_flags| ProcmapBatch {
            flags,
            query_flags,
            ..walk()
        };
        assert_eq!(check_batch(&with(BUILD_ID, 0x2f)), Ok(()));
        assert_eq!(check_batch(&with(0, ANY | 0x5)), Ok(()));
        for bit in 2..64 {
            assert_eq!(check_batch(&with(1 << bit, 0)), Err(EINVAL));
        }
        // COVERING_OR_NEXT_VMA (0x10) has no meaning in a batch; PERM_ANY needs a permission.
        assert_eq!(check_batch(&with(0, 0x10)), Err(EINVAL));
        assert_eq!(check_batch(&with(0, ANY)), Err(EINVAL));
        assert_eq!(check_batch(&with(0, ANY | 0x20)), Err(EINVAL));
        for bit in 6..63 {
            assert_eq!(check_batch(&with(0, 1 << bit)), Err(EINVAL));
        }
    }

    #[test]
    fn record_sizes() {
        let with = |vma_size| ProcmapBatch { vma_size, ..walk() };
        assert_eq!(check_batch(&with(VMA_SIZE + 8)), Ok(()));
        assert_eq!(check_batch(&with(PAGE_SIZE as u32)), Ok(()));
        assert_eq!(check_batch(&with(VMA_SIZE - 8)), Err(EINVAL));
        assert_eq!(check_batch(&with(0)), Err(EINVAL));
        assert_eq!(check_batch(&with(VMA_SIZE + 4)), Err(EINVAL));
        assert_eq!(check_batch(&with(PAGE_SIZE as u32 + 8)), Err(E2BIG));
        // Above a page and not a multiple of 8: above a page comes first.
        assert_eq!(check_batch(&with(PAGE_SIZE as u32 + 4)), Err(E2BIG));
        assert_eq!(check_batch(&with(u32::MAX)), Err(E2BIG));
    }

    #[test]
    fn buffers_set_by_half_rejected() {
        let mut b = walk();
        b.vmas = 0;
        assert_eq!(check_batch(&b), Err(EINVAL));
        b.vma_count = 0;
        assert_eq!(check_batch(&b), Ok(()));
        let mut b = walk();
        b.names = 0;
        assert_eq!(check_batch(&b), Err(EINVAL));
        b.names_size = 0;
        assert_eq!(check_batch(&b), Ok(()));
        let mut b = lookup();
        b.addr_vmas = 0;
        assert_eq!(check_batch(&b), Err(EINVAL));
        let mut b = lookup();
        b.addrs = 0;
        assert_eq!(check_batch(&b), Err(EINVAL));
        let mut b = lookup();
        b.addr_count = 0;
        assert_eq!(check_batch(&b), Err(EINVAL));
        b.addrs = 0;
        b.addr_vmas = 0;
        assert_eq!(check_batch(&b), Ok(()));
    }

    #[test]
    fn fields_of_the_other_mode_rejected() {
        // A walk takes no addresses; a lookup no start address.
        for b in [
            ProcmapBatch {
                addrs: 0x30000,
                ..walk()
            },
            ProcmapBatch {
                addr_vmas: 0x30000,
                ..walk()
            },
            ProcmapBatch {
                addr_count: 1,
                ..walk()
            },
            ProcmapBatch {
                addr: 0x1000,
                ..lookup()
            },
        ] {
            assert_eq!(check_batch(&b), Err(EINVAL));
        }
        assert_eq!(
            check_batch(&ProcmapBatch {
                addr: 0x1000,
                ..walk()
            }),
            Ok(())
        );
    }
}

#[kunit_tests(rust_procmap_query_matching)]
mod matching_tests {
    use super::matching::{name_buf_size, required_vm_flags, step, vma_flags, Step, VmaFacts};
    use kernel::{mm::virt::flags as vm, prelude::*, proc_maps::NameBuf};

    // The UAPI flag values (include/uapi/linux/fs.h).
    const Q_R: u64 = 0x1;
    const Q_W: u64 = 0x2;
    const Q_X: u64 = 0x4;
    const Q_S: u64 = 0x8;
    const Q_NEXT: u64 = 0x10;
    const Q_FILE: u64 = 0x20;

    /// An anonymous r-x VMA at [0x10000, 0x20000).
    const ANON_RX: VmaFacts = VmaFacts {
        start: 0x10000,
        end: 0x20000,
        flags: vm::READ | vm::EXEC | vm::MAYREAD | vm::MAYEXEC,
        file_backed: false,
    };

    #[test]
    fn covering_lookup() {
        // find_vma() gives the first VMA ending above the address.
        assert_eq!(step(&ANON_RX, 0x10000, 0), Step::Answer);
        assert_eq!(step(&ANON_RX, 0x1ffff, 0), Step::Answer);
        // Below the VMA: not covering; the exact lookup fails (the seed's v1 bug returned it).
        assert_eq!(step(&ANON_RX, 0xffff, 0), Step::NotFound);
        assert_eq!(step(&ANON_RX, 0, 0), Step::NotFound);
        // ...and COVERING_OR_NEXT_VMA takes it.
        assert_eq!(step(&ANON_RX, 0xffff, Q_NEXT), Step::Answer);
        assert_eq!(step(&ANON_RX, 0, Q_NEXT), Step::Answer);
    }

    #[test]
    fn file_backed_filter() {
        let file = VmaFacts {
            file_backed: true,
            ..ANON_RX
        };
        assert_eq!(step(&file, 0x10000, Q_FILE), Step::Answer);
        assert_eq!(step(&ANON_RX, 0x10000, Q_FILE), Step::NotFound);
        // Skipping goes on from the end of the VMA, only with COVERING_OR_NEXT_VMA.
        assert_eq!(
            step(&ANON_RX, 0x10000, Q_FILE | Q_NEXT),
            Step::Next(0x20000)
        );
        assert_eq!(step(&ANON_RX, 0x100, Q_FILE | Q_NEXT), Step::Next(0x20000));
    }

    #[test]
    fn permission_filter_is_a_subset_match() {
        assert_eq!(step(&ANON_RX, 0x10000, Q_R), Step::Answer);
        assert_eq!(step(&ANON_RX, 0x10000, Q_X), Step::Answer);
        assert_eq!(step(&ANON_RX, 0x10000, Q_R | Q_X), Step::Answer);
        assert_eq!(step(&ANON_RX, 0x10000, Q_W), Step::NotFound);
        assert_eq!(step(&ANON_RX, 0x10000, Q_R | Q_W), Step::NotFound);
        assert_eq!(step(&ANON_RX, 0x10000, Q_S), Step::NotFound);
        assert_eq!(
            step(&ANON_RX, 0x10000, Q_R | Q_W | Q_NEXT),
            Step::Next(0x20000)
        );
        // SHARED means VM_MAYSHARE, as the 's' of /proc/<pid>/maps.
        let shared = VmaFacts {
            flags: vm::READ | vm::SHARED | vm::MAYSHARE,
            ..ANON_RX
        };
        assert_eq!(step(&shared, 0x10000, Q_S | Q_R), Step::Answer);
        let ro_shared_file = VmaFacts {
            flags: vm::READ | vm::MAYSHARE,
            ..ANON_RX
        };
        assert_eq!(step(&ro_shared_file, 0x10000, Q_S), Step::Answer);
    }

    #[test]
    fn permission_filter_any_of() {
        const ANY: u64 = 1 << 63;
        // r OR x, what blazesym wants: r-x, r-- and --x match, -w- and --- do not.
        let with = |flags| VmaFacts { flags, ..ANON_RX };
        let r_or_x = ANY | Q_R | Q_X;
        assert_eq!(step(&ANON_RX, 0x10000, r_or_x), Step::Answer);
        assert_eq!(step(&with(vm::READ), 0x10000, r_or_x), Step::Answer);
        assert_eq!(step(&with(vm::EXEC), 0x10000, r_or_x), Step::Answer);
        assert_eq!(step(&with(vm::WRITE), 0x10000, r_or_x), Step::NotFound);
        assert_eq!(step(&with(0), 0x10000, r_or_x), Step::NotFound);
        assert_eq!(
            step(&with(vm::WRITE | vm::MAYREAD), 0x10000, r_or_x | Q_NEXT),
            Step::Next(0x20000)
        );
        // The subset match would refuse r-- and --x for r AND x.
        assert_eq!(step(&with(vm::READ), 0x10000, Q_R | Q_X), Step::NotFound);
        // VM_MAY* bits do not count; SHARED is VM_MAYSHARE.
        assert_eq!(
            step(&with(vm::MAYREAD | vm::MAYEXEC), 0x10000, r_or_x),
            Step::NotFound
        );
        assert_eq!(step(&with(vm::MAYSHARE), 0x10000, ANY | Q_S), Step::Answer);
    }

    #[test]
    fn required_and_reported_flags() {
        assert_eq!(required_vm_flags(0), 0);
        assert_eq!(required_vm_flags(Q_NEXT | Q_FILE), 0);
        assert_eq!(
            required_vm_flags(Q_R | Q_W | Q_X | Q_S),
            vm::READ | vm::WRITE | vm::EXEC | vm::MAYSHARE
        );
        assert_eq!(vma_flags(0), 0);
        assert_eq!(vma_flags(vm::READ | vm::EXEC | vm::MAYREAD), Q_R | Q_X);
        assert_eq!(vma_flags(vm::WRITE | vm::MAYSHARE), Q_W | Q_S);
        // VM_SHARED without VM_MAYSHARE cannot happen, and VM_MAY* bits are not reported.
        assert_eq!(vma_flags(vm::MAYREAD | vm::MAYWRITE | vm::MAYEXEC), 0);
    }

    #[test]
    fn name_buffer_sizes() {
        // The buffer is min(PATH_MAX, size).
        assert_eq!(name_buf_size(1), 1);
        assert_eq!(name_buf_size(4096), 4096);
        assert_eq!(name_buf_size(4097), 4096);
        assert_eq!(name_buf_size(u32::MAX), 4096);
    }

    #[test]
    fn names_are_built_as_snprintf_would() -> Result {
        // "[anon:" + "x" + "]" and a NUL: 9 bytes; the size reported includes the NUL.
        let mut buf = NameBuf::new(16, GFP_KERNEL)?;
        assert_eq!(buf.concat(&[b"[anon:", b"x", b"]"]), Ok(9));
        assert_eq!(buf.as_bytes(), b"[anon:x]\0");
        // Exactly fitting, NUL included.
        let mut buf = NameBuf::new(8, GFP_KERNEL)?;
        assert_eq!(buf.concat(&[b"[stack]"]), Ok(8));
        assert_eq!(buf.as_bytes(), b"[stack]\0");
        // One byte short: the would-be size decides, nothing is truncated silently, and the
        // name built before stays.
        assert_eq!(buf.concat(&[b"[stack]", b"x"]), Err(ENAMETOOLONG));
        assert_eq!(buf.as_bytes(), b"[stack]\0");
        let mut buf = NameBuf::new(7, GFP_KERNEL)?;
        assert_eq!(buf.concat(&[b"[stack]"]), Err(ENAMETOOLONG));
        assert_eq!(buf.as_bytes(), b"");
        let mut buf = NameBuf::new(1, GFP_KERNEL)?;
        assert_eq!(buf.concat(&[b""]), Ok(1));
        assert_eq!(buf.as_bytes(), b"\0");
        // A later, shorter name replaces the earlier one.
        let mut buf = NameBuf::new(32, GFP_KERNEL)?;
        assert_eq!(buf.concat(&[b"[anon:", b"long name", b"]"]), Ok(17));
        assert_eq!(buf.concat(&[b"[heap]"]), Ok(7));
        assert_eq!(buf.as_bytes(), b"[heap]\0");
        Ok(())
    }
}

#[kunit_tests(rust_procmap_query_lookup_order)]
mod lookup_order_tests {
    use super::matching::{
        find_in_order, find_sorted, find_unsorted, merge_in_order, Ordered, MERGE_MAX,
    };
    use kernel::{alloc::KVVec, prelude::*};

    /// The record covering `addr`, searched one by one: the oracle.
    fn linear(records: &[(usize, usize)], addr: usize) -> Option<u32> {
        records
            .iter()
            .position(|&(start, end)| start <= addr && addr < end)
            .map(|r| r as u32)
    }

    /// Merges `records` into an order in passes of `pass` records, in the order given, as a
    /// lookup reports them; `None` if a merge refuses them.
    fn ordered(records: &[(usize, usize)], pass: usize) -> Result<Option<KVVec<Ordered>>> {
        let mut order = KVVec::new();
        for from in (0..records.len()).step_by(pass) {
            let to = records.len().min(from + pass);
            let mut merged = KVVec::with_capacity(to, GFP_KERNEL)?;
            if !merge_in_order(&order, &records[..to], from, &mut merged) {
                return Ok(None);
            }
            order = merged;
        }
        Ok(Some(order))
    }

    #[test]
    fn disjoint_records_are_found_by_bisection() -> Result {
        // Reported out of order, with gaps between some and edge to edge elsewhere.
        let records = [
            (0x5000, 0x6000),
            (0x1000, 0x3000),
            (0x9000, 0xa000),
            (0x3000, 0x4000),
            (0x7000, 0x9000),
        ];
        // One pass, passes of a record, and passes that split the records unevenly.
        for pass in [5, 1, 2, 3] {
            let order = ordered(&records, pass)?.ok_or(EINVAL)?;
            assert!(order.iter().map(|&(_, _, r)| r).eq([1, 3, 0, 4, 2]));
            for &(start, end, r) in order.iter() {
                assert_eq!(records[r as usize], (start, end));
            }
            for addr in (0..0xb000).step_by(0x800) {
                assert_eq!(find_in_order(&order, addr), linear(&records, addr));
            }
            // Each record's first and last byte; below, between and above them.
            assert_eq!(find_in_order(&order, 0x1000), Some(1));
            assert_eq!(find_in_order(&order, 0x2fff), Some(1));
            assert_eq!(find_in_order(&order, 0x3000), Some(3));
            assert_eq!(find_in_order(&order, 0x8fff), Some(4));
            assert_eq!(find_in_order(&order, 0x9fff), Some(2));
            assert_eq!(find_in_order(&order, 0xfff), None);
            assert_eq!(find_in_order(&order, 0x4000), None);
            assert_eq!(find_in_order(&order, 0x6fff), None);
            assert_eq!(find_in_order(&order, 0xa000), None);
        }
        assert_eq!(find_in_order(&[], 0x1000), None);
        Ok(())
    }

    #[test]
    fn overlapping_records_are_refused() -> Result {
        // The VMAs of a lookup may change between its passes: [0x1000, 0x2000) reported, then
        // merged into [0, 0x3000). A bisection would test the later-starting one only and miss
        // that the merged one covers 0x2800.
        let base = [(0x1000, 0x2000), (0x4000, 0x5000)];
        for later in [
            (0, 0x3000),      // covers the first
            (0x1800, 0x2800), // overlaps its end
            (0x800, 0x1800),  // overlaps its start
            (0x1000, 0x3000), // same start, longer
            (0x1200, 0x1400), // inside it
            (0x3000, 0x4001), // overlaps the second's start
        ] {
            // Reported in a later pass, or in the same one.
            assert_eq!(ordered(&[base[0], base[1], later], 2)?, None);
            assert_eq!(ordered(&[base[0], base[1], later], 3)?, None);
            assert_eq!(ordered(&[later, base[1], base[0]], 1)?, None);
        }
        // Edge to edge is not an overlap.
        assert!(ordered(&[base[0], base[1], (0x2000, 0x4000)], 2)?.is_some());
        assert!(ordered(&[base[0], base[1], (0, 0x1000)], 2)?.is_some());
        assert!(ordered(&[(0, 0x1000), base[1], base[0]], 1)?.is_some());
        Ok(())
    }

    #[test]
    fn merges_beyond_their_room_are_refused() -> Result {
        // One record more than a merge takes at once, none overlapping.
        let mut records = KVec::with_capacity(MERGE_MAX + 1, GFP_KERNEL)?;
        for i in 0..=MERGE_MAX {
            records.push(((2 * i + 1) << 12, (2 * i + 2) << 12), GFP_KERNEL)?;
        }
        let mut merged = KVVec::with_capacity(records.len(), GFP_KERNEL)?;
        assert!(!merge_in_order(&[], &records, 0, &mut merged));
        // As many as it takes.
        let mut merged = KVVec::with_capacity(records.len(), GFP_KERNEL)?;
        assert!(merge_in_order(&[], &records, 1, &mut merged));
        assert_eq!(merged.len(), MERGE_MAX);
        // Room for fewer than there are.
        let order = [(records[0].0, records[0].1, 0)];
        let mut merged = KVVec::with_capacity(2, GFP_KERNEL)?;
        assert!(!merge_in_order(&order, &records[..3], 1, &mut merged));
        let mut merged = KVVec::with_capacity(3, GFP_KERNEL)?;
        assert!(merge_in_order(&order, &records[..3], 1, &mut merged));
        Ok(())
    }

    #[test]
    fn bisection_equals_a_linear_search() -> Result {
        // 200 one-page records with gaps, reported in a shuffled order.
        let mut records = KVec::with_capacity(200, GFP_KERNEL)?;
        let mut seed: u32 = 12345;
        let mut next = || {
            seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
            (seed >> 8) as usize
        };
        for i in 0..200usize {
            let start = (3 * i + 1) << 12;
            records.push((start, start + ((1 + i % 2) << 12)), GFP_KERNEL)?;
        }
        // In address order: the bisection of the records themselves.
        for addr in (0..(3 * 201) << 12).step_by(0x700) {
            assert_eq!(find_sorted(&records, addr), linear(&records, addr));
        }
        for i in (1..records.len()).rev() {
            records.swap(i, next() % (i + 1));
        }
        // Passes of a lookup's stage (46 records), and of a few.
        for pass in [46, 7] {
            let order = ordered(&records, pass)?.ok_or(EINVAL)?;
            assert_eq!(order.len(), records.len());
            for addr in (0..(3 * 201) << 12).step_by(0x700) {
                assert_eq!(find_in_order(&order, addr), linear(&records, addr));
            }
        }
        Ok(())
    }

    #[test]
    fn unsorted_search_equals_a_linear_search() -> Result {
        // Records reported out of order, searched four at a time: every length up to 13 (each
        // remainder of four, and none), each record's first and last byte (all are multiples
        // of 0x400) and the gaps around it, and the first of two that overlap (as after a
        // change between passes).
        let all = [
            (0x9000, 0xa000),
            (0x1000, 0x3000),
            (0x5000, 0x6000),
            (0x3000, 0x4000),
            (0xc000, 0xd000),
            (0x7000, 0x9000),
            (0x10000, 0x11000),
            (0xe000, 0xf000),
            (0x6000, 0x7000),
            (0x13000, 0x15000),
            (0x11000, 0x12000),
            (0x16000, 0x17000),
            (0x800, 0x1800),
        ];
        for n in 0..=all.len() {
            let records = &all[..n];
            for addr in (0..=0x18000usize).step_by(0x400) {
                for addr in [addr, addr.wrapping_sub(1)] {
                    let found = find_unsorted(records, addr).map(|r| r as u32);
                    assert_eq!(found, linear(records, addr));
                }
            }
        }
        // The overlap: [0x800, 0x1800) is reported after [0x1000, 0x3000), which is found.
        assert_eq!(find_unsorted(&all, 0x1200), Some(1));
        assert_eq!(find_unsorted(&all, 0xfff), Some(12));
        Ok(())
    }
}

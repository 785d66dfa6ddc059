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
    fn unknown_flags_rejected() {
        for bit in 6..64 {
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

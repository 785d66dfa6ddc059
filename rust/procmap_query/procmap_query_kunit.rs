// SPDX-License-Identifier: GPL-2.0

//! KUnit tests for the argument checks of the `procmap_query` module.
//!
//! The expected values come from the ABI (`include/uapi/linux/fs.h`) and from
//! `do_procmap_query()` in `fs/proc/task_mmu.c`, not from the code under test.

use kernel::prelude::*;

#[path = "args.rs"]
mod args;

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

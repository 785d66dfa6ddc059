// SPDX-License-Identifier: GPL-2.0

//! `PROCMAP_QUERY` answered in Rust.
//!
//! While this module is loaded, the ioctls on `/proc/<pid>/maps` come here instead of to
//! `procfs_procmap_ioctl()` in `fs/proc/task_mmu.c`; `rmmod` gives them back to the C code.
//! The answers must be those of the C code, byte for byte and errno for errno.

use kernel::{
    mm::Mm,
    prelude::*,
    proc_maps::{self, ProcMapsHandler, ProcmapQuery, PROCMAP_QUERY},
    uaccess::{UserPtr, UserSlice},
    InPlaceModule,
};

mod args;

module! {
    type: ProcmapQueryModule,
    name: "procmap_query",
    authors: ["procmap-query project"],
    description: "PROCMAP_QUERY on /proc/<pid>/maps answered in Rust",
    license: "GPL",
}

#[pin_data]
struct ProcmapQueryModule {
    #[pin]
    _registration: proc_maps::Registration<RustProcmapQuery>,
}

impl InPlaceModule for ProcmapQueryModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _registration <- proc_maps::Registration::register(),
        })
    }
}

struct RustProcmapQuery;

#[vtable]
impl ProcMapsHandler for RustProcmapQuery {
    fn ioctl(mm: Option<&Mm>, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            PROCMAP_QUERY => procmap_query(mm, UserPtr::from_addr(arg)).map(|()| 0),
            _ => Err(ENOIOCTLCMD),
        }
    }
}

/// Reads the argument: its `size` first, then the size-extensible structure.
fn copy_in(uarg: UserPtr) -> Result<ProcmapQuery> {
    let size = UserSlice::new(uarg, size_of::<u64>())
        .reader()
        .read::<u64>()?;
    let size = args::check_size(size)?;
    let query = UserSlice::new(uarg, size).read_extensible::<ProcmapQuery>()?;
    args::check_query(&query)?;
    Ok(query)
}

/// `PROCMAP_QUERY`: finds the VMA the query asks for and describes it.
fn procmap_query(mm: Option<&Mm>, uarg: UserPtr) -> Result {
    let _query = copy_in(uarg)?;
    let _mm = mm.and_then(Mm::mmget_not_zero).ok_or(ESRCH)?;
    // Finding and describing the VMA is not implemented yet: refuse rather than make up an
    // answer.
    Err(EOPNOTSUPP)
}

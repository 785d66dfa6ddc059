// SPDX-License-Identifier: GPL-2.0

//! `PROCMAP_QUERY` answered in Rust.
//!
//! Built as a module, while it is loaded the ioctls on `/proc/<pid>/maps` come here instead of to
//! the C handler in `fs/proc/task_mmu.c`; `rmmod` gives them back to the C code. Built in, they
//! always come here (`procfs_procmap_ioctl()` calls `procmap_query_builtin_ioctl()`) and the C
//! handler is not compiled. The answers must be those of the C code, byte for byte and errno for
//! errno; the extensions of `include/uapi/linux/procmap_query.h` are answered here only.

use core::{mem::MaybeUninit, ops::Deref};
use kernel::{
    fs::file::{File, BUILD_ID_SIZE_MAX},
    mm::{virt::VmaRef, Mm, MmWithUser, VmaReadGuard},
    page::PAGE_SHIFT,
    prelude::*,
    proc_maps::{
        self, NameBuf, ProcMapsHandler, ProcmapQuery, VmaName, PROCMAP_QUERY, PROCMAP_QUERY_BATCH,
        PROCMAP_QUERY_GENERATION,
    },
    sync::aref::ARef,
    transmute::AsBytes,
    uaccess::{UserPtr, UserSlice},
};

mod args;
mod batch;
mod matching;

use matching::{Step, VmaFacts};

module! {
    type: ProcmapQueryModule,
    name: "procmap_query",
    authors: ["procmap-query project"],
    description: "PROCMAP_QUERY on /proc/<pid>/maps answered in Rust",
    license: "GPL",
}

/// As a module, the handler takes `PROCMAP_QUERY` over while it is loaded.
#[cfg(MODULE)]
#[pin_data]
struct ProcmapQueryModule {
    #[pin]
    _registration: proc_maps::Registration<RustProcmapQuery>,
}

#[cfg(MODULE)]
impl kernel::InPlaceModule for ProcmapQueryModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _registration <- proc_maps::Registration::register(),
        })
    }
}

/// Built in, the handler is the only one, and `fs/proc/task_mmu.c` calls it directly.
#[cfg(not(MODULE))]
struct ProcmapQueryModule;

#[cfg(not(MODULE))]
impl kernel::Module for ProcmapQueryModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Self)
    }
}

#[cfg(not(MODULE))]
kernel::procmap_query_builtin!(RustProcmapQuery);

struct RustProcmapQuery;

#[vtable]
impl ProcMapsHandler for RustProcmapQuery {
    // Inlined into the C entry point, so that the result does not go through memory.
    #[inline]
    fn ioctl(mm: Option<&Mm>, cmd: u32, arg: UserPtr) -> Result<isize> {
        match cmd {
            PROCMAP_QUERY => procmap_query(mm, arg).map(|()| 0),
            PROCMAP_QUERY_BATCH => batch::procmap_batch(mm, arg).map(|()| 0),
            PROCMAP_QUERY_GENERATION => batch::procmap_generation(mm, arg).map(|()| 0),
            _ => Err(ENOIOCTLCMD),
        }
    }
}

/// Reads the argument into `slot`: its `size` first, then the size-extensible structure.
///
/// Returns the query, in place in `slot`, and the size user space gave for it.
fn copy_in(
    uarg: UserPtr,
    slot: &mut MaybeUninit<ProcmapQuery>,
) -> Result<(&mut ProcmapQuery, usize)> {
    let size = UserSlice::new(uarg, size_of::<u64>())
        .reader()
        .read::<u64>()?;
    let size = args::check_size(size)?;
    let query = UserSlice::new(uarg, size).read_extensible(slot)?;
    args::check_query(query)?;
    Ok((query, size))
}

/// `PROCMAP_QUERY`: finds the VMA the query asks for and describes it.
///
/// The answer is filled in place, in the copy of the argument on this stack frame.
fn procmap_query(mm: Option<&Mm>, uarg: UserPtr) -> Result {
    let mut slot = MaybeUninit::uninit();
    let (query, user_size) = copy_in(uarg, &mut slot)?;
    let mm = mm.and_then(Mm::mmget_not_zero).ok_or(ESRCH)?;
    // Taken under the lock, for use after unlocking: the name, if asked for and the VMA has
    // one, and a reference to the VMA's file, if the build ID is asked for and it has a file.
    let mut name = None;
    let mut file = None;
    {
        // The C code passes the address as `unsigned long`: the same truncation on 32-bit
        // kernels.
        let mut at = query.query_addr as usize;
        let flags = query.query_flags;
        // The lock is held by one of these guards until the end of this block; the VMA cannot
        // outlive it.
        let vma_guard;
        let mmap_guard;
        let vma: &VmaRef = if cfg!(CONFIG_PER_VMA_LOCK) {
            // An exact query asks for the VMA covering the address. When there is one, it is
            // found and read-locked in one descent of the tree, as a page fault finds its VMA
            // (`lock_vma_under_rcu()`), with no iterator to set up. Otherwise (no VMA there,
            // or it cannot be locked that way), and for `COVERING_OR_NEXT_VMA`, each candidate
            // is looked up under RCU and read-locked on its own (`lock_next_vma()`); if one
            // cannot be locked that way (`EAGAIN`), the search goes on from the same address
            // under the mmap read lock.
            let exact = flags & proc_maps::flags::COVERING_OR_NEXT_VMA == 0;
            let lookup = |a| {
                if exact {
                    lock_covering_or_next(&mm, a)
                } else {
                    mm.lock_next_vma(a)
                }
            };
            match search(lookup, &mut at, flags) {
                Err(e) if e == EAGAIN => {
                    mmap_guard = mm.mmap_read_lock();
                    search(|a| Ok(mmap_guard.find_vma(a)), &mut at, flags)?
                }
                found => {
                    vma_guard = found?;
                    &vma_guard
                }
            }
        } else {
            // Without per-VMA locks, the mmap read lock is taken killably (`EINTR`).
            mmap_guard = mm.mmap_read_lock_killable()?;
            search(|a| Ok(mmap_guard.find_vma(a)), &mut at, flags)?
        };
        describe(vma, query, &mut name, &mut file)?;
    }
    // Unlocked (the guard is gone); now drop the mm, before anything that may fault.
    drop(mm);
    let mut build_id = [0u8; BUILD_ID_SIZE_MAX];
    read_build_id(query, file, &mut build_id)?;
    copy_out(uarg, user_size, query, name.as_ref(), &build_id)
}

/// The VMA covering `addr`, or else the first one above it, read-locked: found as a page fault
/// finds its VMA (`lock_vma_under_rcu()`: one descent of the tree, no iterator to set up) when
/// one covers `addr` and can be locked that way, else by `lock_next_vma()` (`EAGAIN` if that
/// VMA cannot be read-locked on its own).
#[inline]
pub(crate) fn lock_covering_or_next(
    mm: &MmWithUser,
    addr: usize,
) -> Result<Option<VmaReadGuard<'_>>> {
    match mm.lock_vma_under_rcu(addr) {
        Some(vma) => Ok(Some(vma)),
        None => mm.lock_next_vma(addr),
    }
}

/// The search from `*at` for the VMA that answers a query with `query_flags`: `lookup` gives
/// the first VMA ending above an address, locked for as long as the value it returns lives (a
/// `VmaReadGuard`, or a VMA borrowed from an `MmapReadGuard`). Each VMA that does not answer is
/// dropped, so unlocked, before the next one is looked up; the one that does is returned,
/// still locked. On an error from `lookup`, `*at` is where the search stopped.
fn search<V: Deref<Target = VmaRef>>(
    mut lookup: impl FnMut(usize) -> Result<Option<V>>,
    at: &mut usize,
    query_flags: u64,
) -> Result<V> {
    loop {
        let vma = lookup(*at)?.ok_or(ENOENT)?;
        match matching::step(&facts(&vma), *at, query_flags) {
            Step::Answer => return Ok(vma),
            Step::Next(next) => *at = next,
            Step::NotFound => return Err(ENOENT),
        }
    }
}

/// What the filters and the answer need of `vma`, read once.
pub(crate) fn facts(vma: &VmaRef) -> VmaFacts {
    VmaFacts {
        start: vma.start(),
        end: vma.end(),
        flags: vma.flags(),
        file_backed: vma.file().is_some(),
    }
}

/// Fills the answer for `vma` into `query`, builds the name into `name` and takes the file
/// reference the build ID needs into `file`. Runs under the VMA's lock.
#[inline]
fn describe(
    vma: &VmaRef,
    query: &mut ProcmapQuery,
    name: &mut Option<NameBuf>,
    file_ref: &mut Option<ARef<File>>,
) -> Result {
    query.vma_start = vma.start() as u64;
    query.vma_end = vma.end() as u64;
    query.vma_flags = matching::vma_flags(vma.flags());
    query.vma_page_size = vma.kernel_pagesize() as u64;
    let fields = file_fields(vma);
    query.vma_offset = fields.offset;
    query.dev_major = fields.dev_major;
    query.dev_minor = fields.dev_minor;
    query.inode = fields.inode;

    if query.vma_name_size != 0 {
        // At most `PATH_MAX`: it fits.
        query.vma_name_size = build_name(vma, query.vma_name_size, name)? as u32;
    }
    if query.build_id_size != 0 {
        *file_ref = vma.file().map(ARef::from);
    }
    Ok(())
}

/// The fields of an answer that come from a VMA's file: all zero for an anonymous VMA.
pub(crate) struct FileFields {
    pub(crate) offset: u64,
    pub(crate) inode: u64,
    pub(crate) dev_major: u32,
    pub(crate) dev_minor: u32,
}

/// The offset, inode and device of `vma`'s file, as `PROCMAP_QUERY` reports them.
#[inline]
pub(crate) fn file_fields(vma: &VmaRef) -> FileFields {
    match vma.file() {
        Some(file) => {
            let id = file.user_inode_id();
            FileFields {
                offset: (vma.pgoff() as u64) << PAGE_SHIFT,
                inode: id.ino,
                dev_major: id.dev_major,
                dev_minor: id.dev_minor,
            }
        }
        None => FileFields {
            offset: 0,
            inode: 0,
            dev_major: 0,
            dev_minor: 0,
        },
    }
}

/// Builds the name of `vma` as `/proc/<pid>/maps` shows it into `slot`, in a buffer of `size`
/// bytes but at most `PATH_MAX`, and returns its size (NUL included); 0, and `slot` left empty,
/// if the VMA has no name. `ENAMETOOLONG` if it does not fit.
///
/// The buffer is built where it stays until it is copied out, not moved there after.
fn build_name(vma: &VmaRef, size: u32, slot: &mut Option<NameBuf>) -> Result<usize> {
    let Some(name) = proc_maps::vma_name(vma)? else {
        return Ok(0);
    };
    // As the C code: the size asked for, at most `PATH_MAX`, not zeroed.
    let buf = slot.insert(NameBuf::new(matching::name_buf_size(size), GFP_KERNEL)?);
    match name {
        VmaName::Path(path) => buf.d_path(path),
        VmaName::Name(name) => buf.concat(&[name.to_bytes()]),
        VmaName::Formatted {
            prefix,
            arg,
            suffix,
        } => buf.concat(&[prefix, arg.to_bytes(), suffix]),
    }
}

/// Reads the build ID after unlocking, as upstream does (parsing may sleep and fault pages in,
/// which must not happen under the mmap or VMA lock). No build ID is not an error: its size is
/// then 0. A buffer too small for it is `ENAMETOOLONG`.
fn read_build_id(
    query: &mut ProcmapQuery,
    file: Option<ARef<File>>,
    buf: &mut [u8; BUILD_ID_SIZE_MAX],
) -> Result {
    if query.build_id_size == 0 {
        return Ok(());
    }
    match file.map(|file| file.build_id(buf)) {
        Some(Ok(size)) => {
            if (query.build_id_size as usize) < size {
                return Err(ENAMETOOLONG);
            }
            query.build_id_size = size as u32;
        }
        _ => query.build_id_size = 0,
    }
    Ok(())
}

/// Copies the answer out: the name, the build ID, then as much of the structure as user space
/// gave (`min(sizeof, size)`).
fn copy_out(
    uarg: UserPtr,
    user_size: usize,
    query: &ProcmapQuery,
    name: Option<&NameBuf>,
    build_id: &[u8; BUILD_ID_SIZE_MAX],
) -> Result {
    // A name was built exactly when a non-zero `vma_name_size` is reported.
    if let Some(name) = name {
        let name = name.as_bytes();
        UserSlice::new(user_ptr(query.vma_name_addr), name.len())
            .writer()
            .write_slice(name)?;
    }
    if query.build_id_size != 0 {
        // `read_build_id()` reported the size of the ID it read into `build_id`.
        let build_id = build_id.get(..query.build_id_size as usize).ok_or(EINVAL)?;
        UserSlice::new(user_ptr(query.build_id_addr), build_id.len())
            .writer()
            .write_slice(build_id)?;
    }
    let len = user_size.min(size_of::<ProcmapQuery>());
    UserSlice::new(uarg, len)
        .writer()
        .write_slice(&query.as_bytes()[..len])
}

/// A user pointer from a `__u64` field, as `u64_to_user_ptr()` makes it: on a 32-bit kernel
/// the upper half is dropped.
pub(crate) fn user_ptr(addr: u64) -> UserPtr {
    UserPtr::from_addr(addr as usize)
}

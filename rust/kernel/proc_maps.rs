// SPDX-License-Identifier: GPL-2.0

//! Handlers for the ioctls on `/proc/<pid>/maps`.
//!
//! A module implements [`ProcMapsHandler`] and holds a pinned [`Registration`]; while it is
//! registered, `PROCMAP_QUERY` on a `/proc/<pid>/maps` file goes to the handler instead of the
//! built-in one in `fs/proc/task_mmu.c`, and so do the commands of
//! `include/uapi/linux/procmap_query.h`, which only a Rust handler answers. Dropping the
//! registration gives the ioctl back and waits for the calls still running in the handler.
//!
//! C header: [`include/linux/procmap_query.h`](srctree/include/linux/procmap_query.h)
//!
//! UAPI: [`include/uapi/linux/fs.h`](srctree/include/uapi/linux/fs.h),
//! [`include/uapi/linux/procmap_query.h`](srctree/include/uapi/linux/procmap_query.h)

use crate::{
    alloc::{allocator::Kmalloc, Allocator, Flags, NumaNode},
    bindings,
    error::{to_result, VTABLE_DEFAULT_ERROR},
    ffi::{c_char, c_long, c_uint, c_void},
    fs::Path,
    mm::{virt::VmaRef, Mm},
    prelude::*,
    transmute::{AsBytes, FromBytes},
    types::Opaque,
    uaccess::UserPtr,
};
use core::{
    alloc::Layout,
    marker::PhantomData,
    mem::{size_of, MaybeUninit},
    ptr::{self, NonNull},
    slice,
};

/// The argument of `PROCMAP_QUERY`: `struct procmap_query` from `include/uapi/linux/fs.h`.
pub type ProcmapQuery = bindings::procmap_query;

// The structure must have no padding: every byte is a field's byte.
const _: () =
    assert!(size_of::<ProcmapQuery>() == 13 * size_of::<u64>() && size_of::<ProcmapQuery>() == 104);

// SAFETY: `struct procmap_query` consists of `u64` and `u32` fields only, so any bit pattern is a
// valid value.
unsafe impl FromBytes for ProcmapQuery {}

// SAFETY: `struct procmap_query` consists of `u64` and `u32` fields only and has no padding (see
// the assertion above), so all of its bytes are always initialized.
unsafe impl AsBytes for ProcmapQuery {}

/// The `PROCMAP_QUERY` ioctl command: `_IOWR('f', 17, struct procmap_query)`.
pub const PROCMAP_QUERY: u32 = crate::ioctl::_IOWR::<ProcmapQuery>(b'f' as u32, 17);

/// The argument of `PROCMAP_QUERY_BATCH`: `struct procmap_batch` from
/// `include/uapi/linux/procmap_query.h`.
pub type ProcmapBatch = bindings::procmap_batch;

/// One VMA of a `PROCMAP_QUERY_BATCH` answer: `struct procmap_batch_vma`.
pub type ProcmapBatchVma = bindings::procmap_batch_vma;

// Neither structure has padding: every byte is a field's byte.
const _: () = assert!(
    size_of::<ProcmapBatch>() == 13 * size_of::<u64>()
        && size_of::<ProcmapBatch>() == bindings::PROCMAP_BATCH_SIZE_VER0 as usize
);
const _: () = assert!(
    size_of::<ProcmapBatchVma>() == 6 * size_of::<u64>() + 5 * size_of::<u32>() + 20
        && size_of::<ProcmapBatchVma>() == bindings::PROCMAP_BATCH_VMA_SIZE_VER0 as usize
);

// SAFETY: `struct procmap_batch` consists of `u64` and `u32` fields only, so any bit pattern is a
// valid value.
unsafe impl FromBytes for ProcmapBatch {}

// SAFETY: `struct procmap_batch` consists of `u64` and `u32` fields only and has no padding (see
// the assertion above), so all of its bytes are always initialized.
unsafe impl AsBytes for ProcmapBatch {}

// SAFETY: `struct procmap_batch_vma` consists of integer fields and a byte array only, so any
// bit pattern is a valid value.
unsafe impl FromBytes for ProcmapBatchVma {}

// SAFETY: `struct procmap_batch_vma` consists of integer fields and a byte array only and has no
// padding (see the assertion above), so all of its bytes are always initialized.
unsafe impl AsBytes for ProcmapBatchVma {}

/// The `PROCMAP_QUERY_BATCH` ioctl command: `_IOWR('f', 0xe0, struct procmap_batch)`.
pub const PROCMAP_QUERY_BATCH: u32 = crate::ioctl::_IOWR::<ProcmapBatch>(b'f' as u32, 0xe0);

/// The `PROCMAP_QUERY_GENERATION` ioctl command: `_IOR('f', 0xe1, __u64)`.
pub const PROCMAP_QUERY_GENERATION: u32 = crate::ioctl::_IOR::<u64>(b'f' as u32, 0xe1);

/// The generation reported by a kernel that cannot tell (`PROCMAP_GENERATION_UNKNOWN`).
// `bindgen` types the header's `(~0ULL)` as an `i32` -1, which converts to all ones.
pub const GENERATION_UNKNOWN: u64 = bindings::PROCMAP_GENERATION_UNKNOWN as u64;
crate::static_assert!(GENERATION_UNKNOWN == u64::MAX);

/// Bits and limits of `PROCMAP_QUERY_BATCH`.
pub mod batch {
    use crate::bindings;

    /// `flags`: answer an array of addresses instead of walking from an address.
    pub const LOOKUP: u64 = bindings::procmap_batch_flags_PROCMAP_BATCH_LOOKUP as u64;
    /// `flags`: fill the build IDs.
    pub const BUILD_ID: u64 = bindings::procmap_batch_flags_PROCMAP_BATCH_BUILD_ID as u64;
    /// `out_flags`: the walk reached the last VMA, or every address was answered.
    pub const DONE: u64 = bindings::procmap_batch_out_flags_PROCMAP_BATCH_DONE as u64;
    /// In the `addr_vmas` array: no VMA answers the address.
    // `bindgen` types the header's `(~0U)` as an `i32` -1, which converts to all ones.
    pub const NO_VMA: u32 = bindings::PROCMAP_BATCH_NO_VMA as u32;
    crate::static_assert!(NO_VMA == u32::MAX);
    /// The most VMAs one call examines or reports.
    pub const MAX_VMAS: usize = bindings::PROCMAP_BATCH_MAX_VMAS as usize;
}

/// Bits of `procmap_query::query_flags` and `procmap_query::vma_flags`.
pub mod flags {
    use crate::bindings;

    /// The VMA is readable (`VM_READ`).
    pub const VMA_READABLE: u64 = bindings::procmap_query_flags_PROCMAP_QUERY_VMA_READABLE as u64;
    /// The VMA is writable (`VM_WRITE`).
    pub const VMA_WRITABLE: u64 = bindings::procmap_query_flags_PROCMAP_QUERY_VMA_WRITABLE as u64;
    /// The VMA is executable (`VM_EXEC`).
    pub const VMA_EXECUTABLE: u64 =
        bindings::procmap_query_flags_PROCMAP_QUERY_VMA_EXECUTABLE as u64;
    /// The VMA may be shared (`VM_MAYSHARE`).
    pub const VMA_SHARED: u64 = bindings::procmap_query_flags_PROCMAP_QUERY_VMA_SHARED as u64;
    /// Query: if no VMA covers the address, return the next one after it.
    pub const COVERING_OR_NEXT_VMA: u64 =
        bindings::procmap_query_flags_PROCMAP_QUERY_COVERING_OR_NEXT_VMA as u64;
    /// Query: only file-backed VMAs match.
    pub const FILE_BACKED_VMA: u64 =
        bindings::procmap_query_flags_PROCMAP_QUERY_FILE_BACKED_VMA as u64;
    /// Query: the permission bits match a VMA that has any of them, not all (an extension of
    /// `include/uapi/linux/procmap_query.h`).
    // `bindgen` types the header's `(1ULL << 63)` as an `i64`, whose bits are the same.
    pub const VMA_PERM_ANY: u64 = bindings::PROCMAP_QUERY_VMA_PERM_ANY as u64;
    crate::static_assert!(VMA_PERM_ANY == 1 << 63);
}

/// The name `/proc/<pid>/maps` shows for a VMA.
#[derive(Clone, Copy)]
pub enum VmaName<'a> {
    /// A file mapping: the file's user-visible path, to be resolved with [`Path::d_path`].
    Path(&'a Path),
    /// A fixed name such as `[heap]`, `[stack]` or `[vdso]`, or one its driver gives.
    Name(&'a CStr),
    /// `prefix`, then `arg`, then `suffix`: `[anon:NAME]` and `[anon_shmem:NAME]` for areas
    /// named with `prctl(PR_SET_VMA_ANON_NAME)`.
    Formatted {
        /// The text before the argument, e.g. `[anon:`.
        prefix: &'a [u8],
        /// The argument, e.g. the name given to `prctl()`.
        arg: &'a CStr,
        /// The text after the argument, e.g. `]`.
        suffix: &'a [u8],
    },
}

/// Returns the name `/proc/<pid>/maps` shows for `vma`, or `None` if it shows none.
///
/// This is `proc_get_vma_name()` of `fs/proc/task_mmu.c`, so the names are those of the text file.
/// The result borrows from `vma`, so it is only used while the VMA's lock is held.
#[inline]
pub fn vma_name(vma: &VmaRef) -> Result<Option<VmaName<'_>>> {
    let mut path: *const bindings::path = ptr::null();
    let mut name: *const c_char = ptr::null();
    let mut fmt: *const c_char = ptr::null();
    // SAFETY: `vma` is valid and locked (mmap or VMA read lock) by the invariants of `VmaRef`,
    // which is what `proc_get_vma_name()` needs; the out pointers are valid for writes.
    unsafe { bindings::proc_get_vma_name(vma.as_ptr(), &mut path, &mut name, &mut fmt) };

    if !path.is_null() {
        // SAFETY: The path is the user path of the VMA's file, which the VMA pins while it is
        // locked, that is for the lifetime of `vma`.
        return Ok(Some(VmaName::Path(unsafe { Path::from_raw(path) })));
    }
    // A non-null name or format is a NUL-terminated string that lives at least as long as the
    // locked VMA: a static string, the driver's, or the VMA's anon_vma_name.
    if fmt.is_null() {
        if name.is_null() {
            return Ok(None);
        }
        // SAFETY: `name` is such a string, see above.
        return Ok(Some(VmaName::Name(unsafe { CStr::from_char_ptr(name) })));
    }
    // SAFETY: `fmt` is such a string, and `name` is null or one, see above.
    unsafe { formatted(fmt, name) }
}

/// The name `name_fmt` with `name` (or `"(null)"`) in place of its `"%s"`, as
/// `proc_get_vma_name()` gives it for areas named with `prctl(PR_SET_VMA_ANON_NAME)`.
///
/// Kept out of the common names' path (a path, a fixed name, none), which do not pay for it:
/// `#[inline(never)]`.
///
/// # Safety
///
/// `fmt` is a NUL-terminated string, and `name` null or one, both living at least for `'a`.
#[inline(never)]
unsafe fn formatted<'a>(fmt: *const c_char, name: *const c_char) -> Result<Option<VmaName<'a>>> {
    // SAFETY: By the safety requirements, `fmt` is a string that lives for `'a`.
    let fmt = unsafe { CStr::from_char_ptr(fmt) }.to_bytes();
    // `vsnprintf()` prints a NULL string as "(null)".
    let arg = if name.is_null() {
        c"(null)"
    } else {
        // SAFETY: By the safety requirements, `name` is a string that lives for `'a`.
        unsafe { CStr::from_char_ptr(name) }
    };
    let at = fmt.windows(2).position(|w| w == b"%s").ok_or(EINVAL)?;
    let (prefix, rest) = fmt.split_at_checked(at).ok_or(EINVAL)?;
    let suffix = rest.strip_prefix(b"%s").ok_or(EINVAL)?;
    // Only a single "%s" can be reproduced without `snprintf()`.
    if prefix.contains(&b'%') || suffix.contains(&b'%') {
        return Err(EINVAL);
    }
    Ok(Some(VmaName::Formatted {
        prefix,
        arg,
        suffix,
    }))
}

/// A buffer a VMA name is built in, for `PROCMAP_QUERY`.
///
/// It is allocated as the C code allocates it, with [`Kmalloc`] (`kmalloc()`): the size the
/// caller asks for, not zeroed. The name and its terminating NUL are written at the end of the
/// buffer, as `d_path()` writes them, and only those bytes can be read. (Not a [`KVec`]: its
/// `with_capacity()` goes through `Vec::reserve()`, out of line, which cost a named query 55
/// instructions more.)
///
/// # Invariants
///
/// `ptr` is a [`Kmalloc`] allocation of `cap` bytes that this buffer owns (a dangling pointer if
/// `cap` is 0), `start <= cap`, and the bytes `start..cap` are initialized.
///
/// # Examples
///
/// ```
/// use kernel::proc_maps::NameBuf;
///
/// let mut name = NameBuf::new(16, GFP_KERNEL)?;
/// assert_eq!(name.concat(&[b"[anon:", b"jit", b"]"]), Ok(11));
/// assert_eq!(name.as_bytes(), b"[anon:jit]\0");
/// // Too long for the buffer: nothing is written.
/// assert_eq!(name.concat(&[b"[anon:", b"a longer name", b"]"]), Err(ENAMETOOLONG));
/// # Ok::<(), Error>(())
/// ```
pub struct NameBuf {
    ptr: NonNull<u8>,
    cap: usize,
    start: usize,
}

impl NameBuf {
    /// Allocates a buffer for a name of up to `size` bytes, its NUL included.
    #[inline]
    pub fn new(size: usize, flags: Flags) -> Result<Self> {
        let ptr = Kmalloc::alloc(Self::layout(size)?, flags, NumaNode::NO_NODE)?;
        // INVARIANT: `ptr` was just allocated with `size` bytes, and no byte is claimed to be
        // initialized yet.
        Ok(Self {
            ptr: ptr.cast(),
            cap: size,
            start: size,
        })
    }

    /// The layout of a buffer of `size` bytes.
    #[inline]
    fn layout(size: usize) -> Result<Layout> {
        Layout::array::<u8>(size).map_err(|_| ENOMEM)
    }

    /// The whole buffer, for writing a name.
    #[inline]
    fn spare(&mut self) -> &mut [MaybeUninit<u8>] {
        // SAFETY: By the type invariants, `ptr` is valid for reads and writes of `cap` bytes
        // (or is dangling, non-null and aligned, if `cap` is 0), and is owned by `self`,
        // which the slice borrows mutably.
        unsafe { slice::from_raw_parts_mut(self.ptr.as_ptr().cast(), self.cap) }
    }

    /// Builds the path name of `path` in the buffer, as `d_path()` does, and returns its size
    /// (NUL included). Fails with [`ENAMETOOLONG`] if it does not fit.
    #[inline]
    pub fn d_path(&mut self, path: &Path) -> Result<usize> {
        let size = path.d_path(self.spare())?.len();
        // INVARIANT: `Path::d_path` initialized the last `size` bytes of the buffer (a part of
        // it, so `size <= cap`).
        self.start = self.cap.checked_sub(size).ok_or(ENAMETOOLONG)?;
        Ok(size)
    }

    /// Builds the concatenation of `parts` in the buffer, as `snprintf()` does with a format
    /// like `"[anon:%s]"`, and returns its size (NUL included).
    ///
    /// Fails with [`ENAMETOOLONG`] if the whole name does not fit (the size `snprintf()` would
    /// need, not a truncated name, is what is checked); the buffer is then left as it was.
    pub fn concat(&mut self, parts: &[&[u8]]) -> Result<usize> {
        let size = concat_size(parts)?;
        let start = self.cap.checked_sub(size).ok_or(ENAMETOOLONG)?;
        write_concat(&mut self.spare()[start..], parts);
        // INVARIANT: The `size` bytes from `start` to the end of the buffer were written.
        self.start = start;
        Ok(size)
    }

    /// Returns the name built last, its NUL included (empty if none was built).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: By the type invariants, `start <= cap` and the bytes from `start` to `cap`
        // are initialized; they are borrowed from `self` and are not written while the borrow
        // lasts (every write takes `&mut self`).
        unsafe {
            slice::from_raw_parts(
                self.ptr.as_ptr().add(self.start),
                self.cap.saturating_sub(self.start),
            )
        }
    }
}

impl Drop for NameBuf {
    #[inline]
    fn drop(&mut self) {
        // `new` made this layout from `cap`.
        let Ok(layout) = Self::layout(self.cap) else {
            return;
        };
        // SAFETY: By the type invariants, `ptr` is a `Kmalloc` allocation of `layout` that `self`
        // owns, and it is not used again.
        unsafe { Kmalloc::free(self.ptr, layout) };
    }
}

/// Names built one after the other in one buffer, for `PROCMAP_QUERY_BATCH`.
///
/// Each name is built as [`NameBuf`] builds it (the bytes `/proc/<pid>/maps` shows and a NUL)
/// and packed right after the previous one. The buffer is allocated once and never grows, so
/// names can be added where allocating is not allowed (under RCU).
///
/// # Invariants
///
/// The first `buf.len()` bytes are the names added since the last [`NameArena::clear`].
///
/// # Examples
///
/// ```
/// use kernel::proc_maps::{NameArena, VmaName};
///
/// let mut names = NameArena::new(32, GFP_KERNEL)?;
/// assert_eq!(names.push(&VmaName::Name(c"[heap]"), 32), Ok((0, 7)));
/// let anon = VmaName::Formatted { prefix: b"[anon:", arg: c"jit", suffix: b"]" };
/// assert_eq!(names.push(&anon, 32), Ok((7, 11)));
/// assert_eq!(names.as_bytes(), b"[heap]\0[anon:jit]\0");
/// // At most 13 more bytes are allowed: too few, nothing is added.
/// assert_eq!(names.push(&VmaName::Name(c"[a longer one]"), 13), Err(ENAMETOOLONG));
/// assert_eq!(names.len(), 18);
/// # Ok::<(), Error>(())
/// ```
pub struct NameArena {
    buf: KVec<u8>,
}

impl NameArena {
    /// Allocates a buffer for names of `size` bytes in all.
    #[inline]
    pub fn new(size: usize, flags: Flags) -> Result<Self> {
        Ok(Self {
            buf: KVec::with_capacity(size, flags)?,
        })
    }

    /// Adds the name `name`, if it fits in `limit` more bytes (and in the buffer), and returns
    /// its offset and size (NUL included). Fails with [`ENAMETOOLONG`] if it does not fit, and
    /// then adds nothing.
    pub fn push(&mut self, name: &VmaName<'_>, limit: usize) -> Result<(usize, usize)> {
        let off = self.buf.len();
        let spare = self.buf.spare_capacity_mut();
        let room = spare.len().min(limit);
        let spare = &mut spare[..room];
        let size = match name {
            VmaName::Path(path) => {
                // `d_path()` builds the name at the end of the buffer: move it to the start.
                let size = path.d_path(spare)?.len();
                // A part of `spare`, so `size <= room`.
                spare.copy_within(room.checked_sub(size).ok_or(ENAMETOOLONG)?.., 0);
                size
            }
            VmaName::Name(name) => concat_at_start(spare, &[name.to_bytes()])?,
            VmaName::Formatted {
                prefix,
                arg,
                suffix,
            } => concat_at_start(spare, &[prefix, arg.to_bytes(), suffix])?,
        };
        // SAFETY: The first `size` bytes of the spare capacity were just written, and
        // `size <= room <= spare capacity`.
        unsafe { self.buf.inc_len(size) };
        // INVARIANT: The name was added after the previous ones.
        Ok((off, size))
    }

    /// Returns the names added since the last [`NameArena::clear`].
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Returns the number of bytes used.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Returns `true` if no name was added since the last [`NameArena::clear`].
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Removes every name; the buffer is kept.
    #[inline]
    pub fn clear(&mut self) {
        // INVARIANT: No name is left.
        self.buf.clear();
    }
}

/// The size of the concatenation of `parts` and a NUL: what `snprintf()` with a format like
/// `"[anon:%s]"` needs. [`ENAMETOOLONG`] if it overflows.
fn concat_size(parts: &[&[u8]]) -> Result<usize> {
    parts
        .iter()
        .try_fold(1usize, |size, part| size.checked_add(part.len()))
        .ok_or(ENAMETOOLONG)
}

/// Writes the concatenation of `parts` and a NUL into `dst`, whose length is
/// [`concat_size`]`(parts)`.
fn write_concat(dst: &mut [MaybeUninit<u8>], parts: &[&[u8]]) {
    let mut dst = dst.iter_mut();
    for part in parts {
        // `part` first: `zip` stops on it without taking a byte of `dst`.
        for (&byte, slot) in part.iter().zip(dst.by_ref()) {
            slot.write(byte);
        }
    }
    if let Some(nul) = dst.next() {
        nul.write(0);
    }
}

/// Writes the concatenation of `parts` and a NUL at the start of `dst` and returns its size;
/// [`ENAMETOOLONG`] (and nothing written) if it does not fit.
fn concat_at_start(dst: &mut [MaybeUninit<u8>], parts: &[&[u8]]) -> Result<usize> {
    let size = concat_size(parts)?;
    write_concat(dst.get_mut(..size).ok_or(ENAMETOOLONG)?, parts);
    Ok(size)
}

/// A handler of the ioctls on `/proc/<pid>/maps`.
///
/// The methods are called with no lock held, in process context, and may sleep.
#[vtable]
pub trait ProcMapsHandler: 'static {
    /// Handles the ioctl `cmd` (one the C code delegates: [`PROCMAP_QUERY`], or a command it does
    /// not know, such as [`PROCMAP_QUERY_BATCH`] and [`PROCMAP_QUERY_GENERATION`]) with the
    /// argument `arg`.
    ///
    /// `mm` is the address space the file was opened on, or `None` if the task had none (a
    /// kernel thread). The file holds an `mmgrab` reference for the whole call, not an `mmget`
    /// one: use [`Mm::mmget_not_zero`] to access the address space.
    ///
    /// Return [`ENOIOCTLCMD`] for a command the handler does not know: user space sees `ENOTTY`.
    /// `PROCMAP_QUERY` it must answer: while a handler is registered, the C code does not.
    fn ioctl(mm: Option<&Mm>, cmd: u32, arg: UserPtr) -> Result<isize>;

    /// Handles an ioctl of a 32-bit caller; `arg` is already converted by `compat_ptr()`.
    ///
    /// Optional, for commands whose argument differs for 32-bit callers: without it, 32-bit
    /// calls go to [`ProcMapsHandler::ioctl`].
    #[cfg(CONFIG_COMPAT)]
    fn compat_ioctl(_mm: Option<&Mm>, _cmd: u32, _arg: UserPtr) -> Result<isize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The registration of a [`ProcMapsHandler`].
///
/// # Invariants
///
/// - `inner` holds a `struct procmap_query_ops` built by `Adapter::OPS` for `T`, registered
///   with `procmap_query_register()` for the whole lifetime of the [`Registration`].
/// - It is unregistered exactly once, in its destructor, which returns only after every call
///   into the handler has returned.
///
/// # Examples
///
/// ```
/// use kernel::{
///     mm::Mm,
///     prelude::*,
///     proc_maps::{ProcMapsHandler, Registration},
///     uaccess::UserPtr,
/// };
///
/// struct Refuse;
///
/// #[vtable]
/// impl ProcMapsHandler for Refuse {
///     fn ioctl(_mm: Option<&Mm>, _cmd: u32, _arg: UserPtr) -> Result<isize> {
///         Err(ENOIOCTLCMD)
///     }
/// }
///
/// fn register() -> Result<Pin<KBox<Registration<Refuse>>>> {
///     KBox::pin_init(Registration::<Refuse>::register(), GFP_KERNEL)
/// }
/// ```
#[pin_data(PinnedDrop)]
pub struct Registration<T: ProcMapsHandler> {
    #[pin]
    inner: Opaque<bindings::procmap_query_ops>,
    _t: PhantomData<T>,
}

// SAFETY: `procmap_query_unregister()` may be called from any thread.
unsafe impl<T: ProcMapsHandler> Send for Registration<T> {}

// SAFETY: A shared reference gives access to nothing.
unsafe impl<T: ProcMapsHandler> Sync for Registration<T> {}

impl<T: ProcMapsHandler> Registration<T> {
    /// Hands the ioctls on `/proc/<pid>/maps` to `T`.
    ///
    /// Fails with [`EBUSY`] if another handler is registered.
    pub fn register() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::procmap_query_ops| {
                // SAFETY: The initializer may write to `slot`.
                unsafe { slot.write(Adapter::<T>::OPS) };
                // SAFETY: `slot` holds valid ops, and it is pinned: it stays where it is until
                // the destructor has unregistered it.
                // INVARIANT: On success, `inner` is registered.
                to_result(unsafe { bindings::procmap_query_register(slot) })
            }),
            _t: PhantomData,
        })
    }
}

#[pinned_drop]
impl<T: ProcMapsHandler> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariants, `inner` is registered; this is the only place that
        // unregisters it. `procmap_query_unregister()` waits for the calls in progress.
        unsafe { bindings::procmap_query_unregister(self.inner.get()) };
    }
}

/// The C entry points of a [`ProcMapsHandler`].
#[doc(hidden)]
pub struct Adapter<T: ProcMapsHandler>(PhantomData<T>);

impl<T: ProcMapsHandler> Adapter<T> {
    const OPS: bindings::procmap_query_ops = bindings::procmap_query_ops {
        ioctl: Some(Self::ioctl),
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: if T::HAS_COMPAT_IOCTL {
            Some(Self::compat_ioctl)
        } else {
            None
        },
        #[cfg(not(CONFIG_COMPAT))]
        compat_ioctl: None,
    };

    /// # Safety
    ///
    /// `mm` is null or points at an `mm_struct` that stays allocated during the call.
    #[inline]
    unsafe fn mm<'a>(mm: *mut bindings::mm_struct) -> Option<&'a Mm> {
        if mm.is_null() {
            None
        } else {
            // SAFETY: `mm` is not null, and the caller guarantees that it stays allocated.
            Some(unsafe { Mm::from_raw(mm) })
        }
    }

    /// # Safety
    ///
    /// `mm` is null or points at an `mm_struct` that stays allocated during the call, as
    /// `procfs_procmap_ioctl()` guarantees: the open file holds an `mmgrab` reference.
    unsafe extern "C" fn ioctl(
        mm: *mut bindings::mm_struct,
        cmd: c_uint,
        arg: *mut c_void,
    ) -> c_long {
        // SAFETY: Guaranteed by the caller.
        let mm = unsafe { Self::mm(mm) };
        match T::ioctl(mm, cmd, UserPtr::from_ptr(arg)) {
            Ok(ret) => ret as c_long,
            Err(err) => err.to_errno() as c_long,
        }
    }

    /// # Safety
    ///
    /// As for [`Adapter::ioctl`].
    #[cfg(CONFIG_COMPAT)]
    unsafe extern "C" fn compat_ioctl(
        mm: *mut bindings::mm_struct,
        cmd: c_uint,
        arg: *mut c_void,
    ) -> c_long {
        // SAFETY: Guaranteed by the caller.
        let mm = unsafe { Self::mm(mm) };
        match T::compat_ioctl(mm, cmd, UserPtr::from_ptr(arg)) {
            Ok(ret) => ret as c_long,
            Err(err) => err.to_errno() as c_long,
        }
    }

    /// The entry point of a built-in handler, see [`procmap_query_builtin!`].
    ///
    /// # Safety
    ///
    /// As for [`Adapter::ioctl`].
    #[doc(hidden)]
    #[inline]
    pub unsafe fn builtin_ioctl(
        mm: *mut bindings::mm_struct,
        cmd: c_uint,
        arg: *mut c_void,
        compat: bool,
    ) -> c_long {
        #[cfg(CONFIG_COMPAT)]
        if compat && T::HAS_COMPAT_IOCTL {
            // SAFETY: Guaranteed by the caller.
            return unsafe { Self::compat_ioctl(mm, cmd, arg) };
        }
        let _ = compat;
        // SAFETY: Guaranteed by the caller.
        unsafe { Self::ioctl(mm, cmd, arg) }
    }
}

/// Makes a [`ProcMapsHandler`] the built-in handler of `PROCMAP_QUERY`.
///
/// For a handler built into the kernel (`CONFIG_PROCMAP_QUERY_RUST=y`): this defines
/// `procmap_query_builtin_ioctl()`, which `fs/proc/task_mmu.c` calls directly, with no
/// registration, indirect call or SRCU section (a built-in handler cannot go away). A module
/// uses a [`Registration`] instead.
///
/// # Examples
///
/// ```ignore
/// use kernel::{mm::Mm, prelude::*, proc_maps::ProcMapsHandler, uaccess::UserPtr};
///
/// struct Refuse;
///
/// #[vtable]
/// impl ProcMapsHandler for Refuse {
///     fn ioctl(_mm: Option<&Mm>, _cmd: u32, _arg: UserPtr) -> Result<isize> {
///         Err(ENOIOCTLCMD)
///     }
/// }
///
/// kernel::procmap_query_builtin!(Refuse);
/// ```
#[macro_export]
macro_rules! procmap_query_builtin {
    ($handler:ty) => {
        const _: () = {
            /// The built-in `PROCMAP_QUERY` handler, see `include/linux/procmap_query.h`.
            ///
            /// # Safety
            ///
            /// `mm` is null or points at an `mm_struct` that stays allocated during the call.
            #[$crate::prelude::export]
            unsafe extern "C" fn procmap_query_builtin_ioctl(
                mm: *mut $crate::bindings::mm_struct,
                cmd: $crate::ffi::c_uint,
                uarg: *mut $crate::ffi::c_void,
                compat: bool,
            ) -> $crate::ffi::c_long {
                // SAFETY: Guaranteed by the caller, `procfs_procmap_ioctl()`: the open file
                // holds an `mmgrab` reference on `mm`.
                unsafe {
                    $crate::proc_maps::Adapter::<$handler>::builtin_ioctl(mm, cmd, uarg, compat)
                }
            }
        };
    };
}

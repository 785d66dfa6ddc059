// SPDX-License-Identifier: GPL-2.0

//! Handlers for the ioctls on `/proc/<pid>/maps`.
//!
//! A module implements [`ProcMapsHandler`] and holds a pinned [`Registration`]; while it is
//! registered, every ioctl on a `/proc/<pid>/maps` file (`PROCMAP_QUERY` and any unknown command)
//! goes to the handler instead of the built-in one in `fs/proc/task_mmu.c`. Dropping the
//! registration gives the ioctls back and waits for the calls still running in the handler.
//!
//! C header: [`include/linux/procmap_query.h`](srctree/include/linux/procmap_query.h)
//!
//! UAPI: [`include/uapi/linux/fs.h`](srctree/include/uapi/linux/fs.h)

use crate::{
    bindings,
    error::{to_result, VTABLE_DEFAULT_ERROR},
    ffi::{c_char, c_long, c_uint, c_ulong},
    fs::Path,
    mm::{virt::VmaRef, Mm},
    prelude::*,
    transmute::{AsBytes, FromBytes},
    types::Opaque,
};
use core::{marker::PhantomData, mem::size_of, ptr};

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
/// This is `get_vma_name()` of `fs/proc/task_mmu.c`, so the names are those of the text file.
/// The result borrows from `vma`, so it is only used while the VMA's lock is held.
pub fn vma_name(vma: &VmaRef) -> Result<Option<VmaName<'_>>> {
    let mut path: *const bindings::path = ptr::null();
    let mut name: *const c_char = ptr::null();
    let mut fmt: *const c_char = ptr::null();
    // SAFETY: `vma` is valid and locked (mmap or VMA read lock) by the invariants of `VmaRef`,
    // which is what `get_vma_name()` needs; the out pointers are valid for writes.
    unsafe { bindings::get_vma_name(vma.as_ptr(), &mut path, &mut name, &mut fmt) };

    if !path.is_null() {
        // SAFETY: The path is the user path of the VMA's file, which the VMA pins while it is
        // locked, that is for the lifetime of `vma`.
        return Ok(Some(VmaName::Path(unsafe { Path::from_raw(path) })));
    }
    // A non-null name or format is a NUL-terminated string that lives at least as long as the
    // locked VMA: a static string, the driver's, or the VMA's anon_vma_name.
    let as_cstr = |p: *const c_char| -> Option<&CStr> {
        // SAFETY: `p` is null or such a string, see above.
        (!p.is_null()).then(|| unsafe { CStr::from_char_ptr(p) })
    };
    let (name, fmt) = (as_cstr(name), as_cstr(fmt));
    Ok(match (fmt, name) {
        (None, None) => None,
        (None, Some(name)) => Some(VmaName::Name(name)),
        (Some(fmt), name) => {
            // `vsnprintf()` prints a NULL string as "(null)".
            let arg = name.unwrap_or(c"(null)");
            let fmt = fmt.to_bytes();
            let at = fmt.windows(2).position(|w| w == b"%s").ok_or(EINVAL)?;
            let (prefix, suffix) = (&fmt[..at], &fmt[at + 2..]);
            // Only a single "%s" can be reproduced without `snprintf()`.
            if prefix.contains(&b'%') || suffix.contains(&b'%') {
                return Err(EINVAL);
            }
            Some(VmaName::Formatted {
                prefix,
                arg,
                suffix,
            })
        }
    })
}

/// A handler of the ioctls on `/proc/<pid>/maps`.
///
/// The methods are called with no lock held, in process context, and may sleep.
#[vtable]
pub trait ProcMapsHandler: 'static {
    /// Handles the ioctl `cmd` with argument `arg` (a user pointer value).
    ///
    /// `mm` is the address space the file was opened on, or `None` if the task had none (a
    /// kernel thread). The file holds an `mmgrab` reference for the whole call, not an `mmget`
    /// one: use [`Mm::mmget_not_zero`] to access the address space.
    ///
    /// Return [`ENOIOCTLCMD`] for a command the handler does not know: user space sees `ENOTTY`.
    fn ioctl(mm: Option<&Mm>, cmd: u32, arg: usize) -> Result<isize>;

    /// Handles an ioctl of a 32-bit caller; `arg` is the caller's raw argument.
    ///
    /// Optional: without it, 32-bit calls go to [`ProcMapsHandler::ioctl`] with `arg` converted
    /// by `compat_ptr()`, as `compat_ptr_ioctl()` does.
    #[cfg(CONFIG_COMPAT)]
    fn compat_ioctl(_mm: Option<&Mm>, _cmd: u32, _arg: usize) -> Result<isize> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The registration of a [`ProcMapsHandler`].
///
/// # Invariants
///
/// - `inner` holds a `struct procmap_query_ops` built by [`Adapter::OPS`] for `T`, registered
///   with `procmap_query_register()` for the whole lifetime of the [`Registration`].
/// - It is unregistered exactly once, in [`PinnedDrop::drop`], which returns only after every
///   call into the handler has returned.
///
/// # Examples
///
/// ```
/// use kernel::{mm::Mm, prelude::*, proc_maps::{ProcMapsHandler, Registration}};
///
/// struct Refuse;
///
/// #[vtable]
/// impl ProcMapsHandler for Refuse {
///     fn ioctl(_mm: Option<&Mm>, _cmd: u32, _arg: usize) -> Result<isize> {
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
struct Adapter<T: ProcMapsHandler>(PhantomData<T>);

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
    unsafe extern "C" fn ioctl(mm: *mut bindings::mm_struct, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: Guaranteed by the caller.
        let mm = unsafe { Self::mm(mm) };
        match T::ioctl(mm, cmd, arg) {
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
        arg: c_ulong,
    ) -> c_long {
        // SAFETY: Guaranteed by the caller.
        let mm = unsafe { Self::mm(mm) };
        match T::compat_ioctl(mm, cmd, arg) {
            Ok(ret) => ret as c_long,
            Err(err) => err.to_errno() as c_long,
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Paths in the VFS.
//!
//! C headers: [`include/linux/path.h`](srctree/include/linux/path.h) and
//! [`include/linux/dcache.h`](srctree/include/linux/dcache.h)

use crate::{bindings, error::from_err_ptr, ffi::c_int, prelude::*, types::Opaque};
use core::mem::MaybeUninit;

/// A borrowed `struct path`: a mount and a dentry.
///
/// # Invariants
///
/// Instances are only created as references to a valid `struct path` whose mount and dentry are
/// pinned (by a reference the owner holds) for the lifetime of the reference.
#[repr(transparent)]
pub struct Path {
    inner: Opaque<bindings::path>,
}

impl Path {
    /// Creates a reference to a [`Path`] from a valid pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point at a valid `struct path` whose mount and dentry stay pinned for the
    /// duration of `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::path) -> &'a Path {
        // SAFETY: The caller guarantees validity for `'a`; `Path` is `repr(transparent)`.
        unsafe { &*ptr.cast() }
    }

    /// Returns a raw pointer to the inner `struct path`.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::path {
        self.inner.get()
    }

    /// Writes the path name into `buf`, as `d_path()` does, and returns it.
    ///
    /// `buf` need not be initialized. The name is built from its end: on success the returned
    /// slice is the tail of `buf` that holds the name and its terminating NUL byte (so its length
    /// is the size of the name including the NUL). An unlinked file's name ends in
    /// `" (deleted)"`. Fails with [`ENAMETOOLONG`] if the name does not fit.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use core::mem::MaybeUninit;
    /// use kernel::fs::path::Path;
    ///
    /// fn name_len(path: &Path) -> Result<usize> {
    ///     let mut buf = [MaybeUninit::<u8>::uninit(); 256];
    ///     let name = path.d_path(&mut buf)?;
    ///     // Without the NUL.
    ///     Ok(name.len() - 1)
    /// }
    /// ```
    #[inline]
    pub fn d_path<'a>(&self, buf: &'a mut [MaybeUninit<u8>]) -> Result<&'a mut [u8]> {
        let len = c_int::try_from(buf.len()).map_err(|_| ENAMETOOLONG)?;
        let base = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: `self` is a valid, pinned path by the type invariants, and `base` is valid for
        // writes of `len` bytes.
        let name = from_err_ptr(unsafe { bindings::d_path(self.as_raw(), base.cast(), len) })?;
        // `d_path()` returns a pointer into the buffer it was given.
        let start = (name as usize).wrapping_sub(base as usize);
        if start >= buf.len() {
            return Err(EINVAL);
        }
        // SAFETY: `d_path()` builds the name and its NUL at the end of the buffer, backwards
        // (`prepend_path()`; the `d_dname()` operations do the same through `dynamic_dname()`
        // and `simple_dname()`, and callers such as `do_procmap_query()` rely on it), so
        // `buf[start..]` is initialized. `start < buf.len()`, and the slice borrows `buf` for `'a`.
        Ok(unsafe { core::slice::from_raw_parts_mut(base.add(start), buf.len() - start) })
    }
}

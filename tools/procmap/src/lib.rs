//! `procmap`: which VMA of a process covers (or follows) an address, through the
//! `PROCMAP_QUERY` ioctl on `/proc/<pid>/maps`, one syscall per VMA, with a fallback that
//! parses the text of the same file when the kernel lacks the ioctl (`ENOTTY`, before 6.11).
//!
//! ```no_run
//! use procmap::{ProcMaps, Query};
//!
//! fn show(addr: u64) -> procmap::Result<()> {
//!     let mut maps = ProcMaps::open_self()?;
//!     if let Some(vma) = maps.query(addr, Query::new().name(true))? {
//!         println!("{addr:#x} is in {:#x}-{:#x} {}", vma.start, vma.end, vma.name_lossy());
//!     }
//!     Ok(())
//! }
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
mod text;

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, OwnedFd};

pub use text::parse_maps;

/// An error, with the errno where the kernel gave one.
#[derive(Debug)]
pub enum Error {
    /// The process does not exist (or is gone): `ESRCH` or `ENOENT` on open.
    NoSuchProcess(String),
    /// Not allowed to read the process's maps (`EACCES`/`EPERM`).
    PermissionDenied(String),
    /// A system call failed.
    Os {
        /// What was being done.
        op: &'static str,
        /// The errno.
        errno: i32,
    },
    /// The kernel's text could not be parsed.
    Parse(String),
}

impl Error {
    /// The errno behind the error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Os { errno, .. } => Some(*errno),
            Error::NoSuchProcess(_) => Some(libc::ESRCH),
            Error::PermissionDenied(_) => Some(libc::EACCES),
            Error::Parse(_) => None,
        }
    }

    fn os(op: &'static str, errno: i32) -> Self {
        Error::Os { op, errno }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSuchProcess(p) => write!(f, "no such process: {p}"),
            Error::PermissionDenied(p) => write!(f, "permission denied: {p}"),
            Error::Os { op, errno } => write!(
                f,
                "{op}: {} (errno {errno})",
                std::io::Error::from_raw_os_error(*errno)
            ),
            Error::Parse(l) => write!(f, "cannot parse maps line: {l:?}"),
        }
    }
}

impl std::error::Error for Error {}

/// A `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// What a query looks for and what it asks back: the kernel's query flags and the optional
/// name and build ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Query {
    flags: u64,
    name: bool,
    build_id: bool,
}

impl Query {
    /// The VMA covering the address, nothing else asked.
    pub fn new() -> Self {
        Self::default()
    }
    /// If no VMA covers the address, the next one above it (`COVERING_OR_NEXT_VMA`).
    pub fn or_next(mut self, on: bool) -> Self {
        self.set(abi::COVERING_OR_NEXT_VMA, on);
        self
    }
    /// Only file-backed VMAs (`FILE_BACKED_VMA`).
    pub fn file_backed(mut self, on: bool) -> Self {
        self.set(abi::FILE_BACKED_VMA, on);
        self
    }
    /// Only VMAs that have all these permissions (the kernel's subset match).
    pub fn perms(mut self, want: Perms) -> Self {
        self.set(abi::VMA_READABLE, want.read);
        self.set(abi::VMA_WRITABLE, want.write);
        self.set(abi::VMA_EXECUTABLE, want.exec);
        self.set(abi::VMA_SHARED, want.shared);
        self
    }
    /// Ask for the name (as `/proc/<pid>/maps` shows it).
    pub fn name(mut self, on: bool) -> Self {
        self.name = on;
        self
    }
    /// Ask for the ELF build ID of the mapped file (ioctl only).
    pub fn build_id(mut self, on: bool) -> Self {
        self.build_id = on;
        self
    }
    /// The raw `query_flags`.
    pub fn flags(&self) -> u64 {
        self.flags
    }
    /// Whether the name is asked for.
    pub fn name_wanted(&self) -> bool {
        self.name
    }
    /// Whether the build ID is asked for.
    pub fn build_id_wanted(&self) -> bool {
        self.build_id
    }
    fn set(&mut self, bit: u64, on: bool) {
        if on {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
    }
}

/// Permissions of a VMA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Perms {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// May be shared (`VM_MAYSHARE`: the `s` of `/proc/<pid>/maps`).
    pub shared: bool,
}

impl Perms {
    fn from_flags(f: u64) -> Self {
        Perms {
            read: f & abi::VMA_READABLE != 0,
            write: f & abi::VMA_WRITABLE != 0,
            exec: f & abi::VMA_EXECUTABLE != 0,
            shared: f & abi::VMA_SHARED != 0,
        }
    }
    fn contains(&self, other: &Perms) -> bool {
        (!other.read || self.read)
            && (!other.write || self.write)
            && (!other.exec || self.exec)
            && (!other.shared || self.shared)
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |b, ch| if b { ch } else { '-' };
        write!(
            f,
            "{}{}{}{}",
            c(self.read, 'r'),
            c(self.write, 'w'),
            c(self.exec, 'x'),
            if self.shared { 's' } else { 'p' }
        )
    }
}

/// A VMA, as the ioctl or the text describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vma {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Permissions.
    pub perms: Perms,
    /// Offset in the mapped file (0 for anonymous memory).
    pub offset: u64,
    /// Major number of the file's device.
    pub dev_major: u32,
    /// Minor number of the file's device.
    pub dev_minor: u32,
    /// Inode number (0 for anonymous memory).
    pub inode: u64,
    /// Page size the kernel uses for the VMA; `None` from the text fallback.
    pub page_size: Option<u64>,
    /// The name, if asked for and the VMA has one (raw bytes: paths need not be UTF-8).
    pub name: Option<Vec<u8>>,
    /// The ELF build ID, if asked for and found; always `None` from the text fallback.
    pub build_id: Option<Vec<u8>>,
}

impl Vma {
    /// The name, lossily as UTF-8 (empty if none).
    pub fn name_lossy(&self) -> String {
        self.name
            .as_deref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default()
    }
    /// Whether the VMA maps a file (the kernel's `vm_file`). From the text this is judged by a
    /// non-zero inode, which also holds for shared anonymous memory, backed by shmem.
    pub fn file_backed(&self) -> bool {
        self.inode != 0
    }
    /// Whether `addr` is inside.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

/// Where the answers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The `PROCMAP_QUERY` ioctl.
    Ioctl,
    /// Parsing the text of `/proc/<pid>/maps` (no page size, no build ID).
    Text,
}

/// An open `/proc/<pid>/maps`.
pub struct ProcMaps {
    file: File,
    backend: Backend,
    name_buf: Vec<u8>,
    build_id_buf: Vec<u8>,
    /// The parsed text, for the text backend (re-read for each walk or query).
    text: Vec<Vma>,
}

const NAME_BUF: usize = 4096; // PATH_MAX: the kernel never answers longer
const BUILD_ID_BUF: usize = 64;

impl ProcMaps {
    /// Opens the maps of process `pid`.
    pub fn open(pid: u32) -> Result<Self> {
        Self::open_path(&format!("/proc/{pid}/maps"))
    }

    /// Opens the maps of the calling process.
    pub fn open_self() -> Result<Self> {
        Self::open_path("/proc/self/maps")
    }

    fn open_path(path: &str) -> Result<Self> {
        let file = File::open(path).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => Error::NoSuchProcess(path.into()),
            Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied(path.into()),
            Some(errno) => Error::os("open", errno),
            None => Error::os("open", libc::EIO),
        })?;
        Self::from_file(file)
    }

    /// Uses an already open maps file descriptor (e.g. one received over a Unix socket).
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        Self::from_file(File::from(fd))
    }

    fn from_file(file: File) -> Result<Self> {
        let mut maps = ProcMaps {
            file,
            backend: Backend::Ioctl,
            name_buf: vec![0; NAME_BUF],
            build_id_buf: vec![0; BUILD_ID_BUF],
            text: Vec::new(),
        };
        // Probe: a query for address 0 with COVERING_OR_NEXT either answers, or ENOENT
        // (empty address space), or ENOTTY when the kernel lacks the ioctl.
        match maps.ioctl(0, Query::new().or_next(true)) {
            Err(Error::Os { errno, .. }) if errno == libc::ENOTTY || errno == libc::EINVAL => {
                maps.backend = Backend::Text;
            }
            // ESRCH: no address space (a kernel thread or a zombie), but the ioctl is there.
            _ => {}
        }
        Ok(maps)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Forces a backend (e.g. the text one, to compare or to avoid the ioctl).
    pub fn set_backend(&mut self, backend: Backend) {
        self.backend = backend;
    }

    /// The VMA that `query` finds for `addr`, or `None` (the kernel's `ENOENT`).
    pub fn query(&mut self, addr: u64, query: Query) -> Result<Option<Vma>> {
        self.lookup(addr, query, true)
    }

    /// [`ProcMaps::query`]; with the text backend, `reread` reads and parses the file again,
    /// otherwise the text read last is used (one snapshot for a whole walk).
    fn lookup(&mut self, addr: u64, query: Query, reread: bool) -> Result<Option<Vma>> {
        match self.backend {
            Backend::Ioctl => match self.ioctl(addr, query) {
                Ok(vma) => Ok(Some(vma)),
                // ESRCH: the process has no address space (a kernel thread, a zombie, or
                // exited since the open), which the text shows as empty.
                Err(Error::NoSuchProcess(_)) => Ok(None),
                Err(Error::Os { errno, .. }) if errno == libc::ENOENT => Ok(None),
                // The name is longer than PATH_MAX: ask again without it, and take the name
                // from the text, which has no such limit.
                Err(Error::Os { errno, .. }) if errno == libc::ENAMETOOLONG && query.name => {
                    let mut vma = match self.ioctl(addr, query.name(false)) {
                        Ok(vma) => vma,
                        Err(Error::NoSuchProcess(_)) => return Ok(None),
                        Err(Error::Os { errno, .. }) if errno == libc::ENOENT => return Ok(None),
                        Err(e) => return Err(e),
                    };
                    self.reload_text()?;
                    vma.name = self
                        .text
                        .iter()
                        .find(|t| t.start == vma.start && t.end == vma.end)
                        .and_then(|t| t.name.clone());
                    Ok(Some(vma))
                }
                Err(e) => Err(e),
            },
            Backend::Text => {
                if reread {
                    self.reload_text()?;
                }
                Ok(text::query(&self.text, addr, query))
            }
        }
    }

    /// All VMAs that `query`'s filters let through, in address order: one
    /// `COVERING_OR_NEXT` query per VMA with the ioctl, one read of the text otherwise.
    pub fn iter(&mut self, query: Query) -> VmaIter<'_> {
        VmaIter {
            maps: self,
            next: 0,
            query: query.or_next(true),
            done: false,
            started: false,
            started_walk: false,
        }
    }

    /// Maps many addresses to their VMA and the offset in the mapped file, with as few
    /// queries as possible: the addresses are sorted and walked with `COVERING_OR_NEXT`, so
    /// each VMA is asked for at most once (with the text backend, the text is read once).
    /// The answer is in the order of `addrs`.
    pub fn resolve(&mut self, addrs: &[u64], query: Query) -> Result<Vec<Option<Resolved>>> {
        let mut order: Vec<usize> = (0..addrs.len()).collect();
        order.sort_by_key(|&i| addrs[i]);
        let mut out = vec![None; addrs.len()];
        let mut current: Option<Vma> = None;
        let mut reread = true;
        for i in order {
            let addr = addrs[i];
            let have = current.as_ref().is_some_and(|v| v.contains(addr));
            if !have {
                if current.as_ref().is_some_and(|v| addr < v.start) {
                    // In the gap below the VMA found last: not mapped.
                    continue;
                }
                current = self.lookup(addr, query.or_next(true), reread)?;
                reread = false;
            }
            if let Some(vma) = current.as_ref().filter(|v| v.contains(addr)) {
                // Crafted text can make this overflow: leave such an address unresolved.
                let Some(file_offset) = (addr - vma.start).checked_add(vma.offset) else {
                    continue;
                };
                out[i] = Some(Resolved {
                    file_offset,
                    vma: vma.clone(),
                });
            }
        }
        Ok(out)
    }

    fn reload_text(&mut self) -> Result<()> {
        let mut s = Vec::new();
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::os("lseek", e.raw_os_error().unwrap_or(libc::EIO)))?;
        self.file
            .read_to_end(&mut s)
            .map_err(|e| Error::os("read", e.raw_os_error().unwrap_or(libc::EIO)))?;
        self.text = parse_maps(&s)?;
        Ok(())
    }

    fn ioctl(&mut self, addr: u64, query: Query) -> Result<Vma> {
        let mut q = abi::new_query();
        q.query_addr = addr;
        q.query_flags = query.flags;
        if query.name {
            q.vma_name_size = self.name_buf.len() as u32;
            q.vma_name_addr = self.name_buf.as_mut_ptr() as u64;
        }
        if query.build_id {
            q.build_id_size = self.build_id_buf.len() as u32;
            q.build_id_addr = self.build_id_buf.as_mut_ptr() as u64;
        }
        // SAFETY: `q` is a valid `struct procmap_query` of the size it declares, and the name
        // and build-ID buffers it points to are owned by `self`, live across the call and are
        // as large as the sizes given.
        let ret = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                abi::PROCMAP_QUERY as _,
                &mut q as *mut abi::procmap_query,
            )
        };
        if ret != 0 {
            let errno = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            return Err(match errno {
                libc::ESRCH => Error::NoSuchProcess("process exited".into()),
                _ => Error::os("ioctl(PROCMAP_QUERY)", errno),
            });
        }
        // Never trust sizes beyond the buffers given.
        let name_len = (q.vma_name_size as usize).min(self.name_buf.len());
        let bid_len = (q.build_id_size as usize).min(self.build_id_buf.len());
        Ok(Vma {
            start: q.vma_start,
            end: q.vma_end,
            perms: Perms::from_flags(q.vma_flags),
            offset: q.vma_offset,
            dev_major: q.dev_major,
            dev_minor: q.dev_minor,
            inode: q.inode,
            page_size: Some(q.vma_page_size),
            // The size includes the NUL.
            name: (query.name && name_len > 0).then(|| self.name_buf[..name_len - 1].to_vec()),
            build_id: (query.build_id && bid_len > 0)
                .then(|| self.build_id_buf[..bid_len].to_vec()),
        })
    }
}

/// An address resolved by [`ProcMaps::resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The VMA containing the address.
    pub vma: Vma,
    /// The address's offset in the mapped file (`addr - start + offset`).
    pub file_offset: u64,
}

/// Iterator over VMAs, from [`ProcMaps::iter`].
pub struct VmaIter<'a> {
    maps: &'a mut ProcMaps,
    next: u64,
    query: Query,
    done: bool,
    /// Whether the first VMA was looked up (after it, the text backend reuses its snapshot).
    started: bool,
    /// Whether a VMA was answered (after it, each must end above the last).
    started_walk: bool,
}

impl Iterator for VmaIter<'_> {
    type Item = Result<Vma>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let reread = !self.started;
        self.started = true;
        match self.maps.lookup(self.next, self.query, reread) {
            // Each answer must end above the last: anything else (crafted text) would loop.
            Ok(Some(vma)) if vma.end <= self.next && self.started_walk => {
                self.done = true;
                None
            }
            Ok(Some(vma)) => {
                self.started_walk = true;
                self.next = vma.end;
                Some(Ok(vma))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Applies a query's filters the way the kernel does, for the text backend.
fn matches(vma: &Vma, query: &Query) -> bool {
    let want = Perms::from_flags(query.flags);
    (query.flags & abi::FILE_BACKED_VMA == 0 || vma.file_backed()) && vma.perms.contains(&want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A text backend over `text` (a memfd: the ioctl is not there, ENOTTY).
    pub(crate) fn text_maps(text: &[u8]) -> ProcMaps {
        // SAFETY: a valid C string; the result is checked.
        let fd = unsafe { libc::memfd_create(c"procmap-test".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: `fd` was just opened and is owned by nobody else.
        let mut f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        f.write_all(text).unwrap();
        let maps = ProcMaps::from_fd(f.into()).unwrap();
        assert_eq!(maps.backend(), Backend::Text);
        maps
    }

    #[test]
    fn crafted_text_does_not_panic_or_loop() {
        let mut maps = text_maps(
            b"1000-3000 r--p fffffffffffff000 08:01 5 /overflowing\n\
              a000-b000 r--p 00000000 00:00 0\n",
        );
        // The file offset of 0x2fff does not fit in 64 bits.
        let r = maps
            .resolve(&[0x1000, 0x2fff, u64::MAX], Query::new())
            .unwrap();
        assert_eq!(r[0].as_ref().map(|r| r.file_offset), Some(u64::MAX - 0xfff));
        assert_eq!(r[1], None);
        assert_eq!(r[2], None);
        // A walk over crafted text ends.
        let mut maps =
            text_maps(b"1000-5000 r--p 0 0:0 0\n2000-3000 r--p 0 0:0 0\n9000-8000 r--p 0 0:0 0\n");
        let n = maps.iter(Query::new()).take(10).count();
        assert!(n < 10, "the walk loops");
    }
}

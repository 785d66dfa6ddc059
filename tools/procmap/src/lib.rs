//! Which VMA of a process covers (or follows) an address: the `PROCMAP_QUERY` ioctl on
//! `/proc/<pid>/maps` (Linux 6.11 and later), one system call per VMA, with a fallback that
//! parses the text of the same file when the kernel lacks the ioctl. Where the kernel has the
//! extension of `<linux/procmap_query.h>` (this project's Rust handler), walks and
//! [`ProcMaps::resolve`] go in batches (`PROCMAP_QUERY_BATCH`), [`Query::any_perm`] is done
//! by the kernel, and [`ProcMaps::generation`] tells whether the VMAs changed, which
//! [`VmaCache`] uses to keep them between lookups. [`ProcMaps::backend`] says which backend
//! answers: [`Backend::Batch`], [`Backend::Ioctl`] or [`Backend::Text`].
//!
//! ```
//! use procmap::{ProcMaps, Query};
//!
//! static HERE: u8 = 0;
//! let maps = ProcMaps::open_self()?;
//! let addr = &HERE as *const u8 as u64;
//! let vma = maps.query(addr, Query::new().name(true))?.expect("our own data is mapped");
//! assert!(vma.contains(addr));
//! println!("{addr:#x} is in {:#x}-{:#x} {}", vma.start, vma.end, vma.name_lossy());
//! # Ok::<(), procmap::Error>(())
//! ```
//!
//! All VMAs, as `/proc/<pid>/maps` lists them (minus the `[vsyscall]` gate area, which is not
//! a VMA of the process and which the ioctl never answers):
//!
//! ```
//! # use procmap::{ProcMaps, Query};
//! let maps = ProcMaps::open_self()?;
//! for vma in maps.iter(Query::new().name(true)) {
//!     let vma = vma?;
//!     println!("{:x}-{:x} {} {}", vma.start, vma.end, vma.perms, vma.name_lossy());
//! }
//! # Ok::<(), procmap::Error>(())
//! ```
//!
//! A batch of addresses (say, a stack sample) maps to deduplicated VMAs and, per address, the
//! index of its VMA and its offset in the mapped file, with at most one query per VMA:
//! see [`ProcMaps::resolve`].
//!
//! A [`ProcMaps`] answers through `&self` (the buffers are on the stack), so one handle can
//! serve several threads.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod abi;
mod batch;
mod buildid;
mod cache;
#[cfg(test)]
mod fake;
mod text;

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

pub use cache::{Freshness, UntrackedPolicy, VmaCache};
pub use text::parse_maps;

/// The generation ([`ProcMaps::generation`]) of a kernel that cannot tell whether VMAs changed
/// (`PROCMAP_GENERATION_UNKNOWN`, odd: never a snapshot), e.g. one built without
/// `CONFIG_PER_VMA_LOCK`, as uniprocessor kernels are.
pub const GENERATION_UNKNOWN: u64 = abi::GENERATION_UNKNOWN;

/// An error: what was being done and the kernel's errno, or text that could not be parsed.
///
/// [`Error::errno`] gives the errno as the kernel returned it. An `Error` converts into an
/// [`io::Error`] of the same [`io::ErrorKind`], with the `Error` as its inner error, so that
/// its message keeps what was being done; that `io::Error` has no
/// [`raw_os_error()`](io::Error::raw_os_error): the errno is the inner error's.
///
/// ```
/// fn open(pid: u32) -> std::io::Result<procmap::ProcMaps> {
///     Ok(procmap::ProcMaps::open(pid)?)
/// }
/// let err = open(u32::MAX).unwrap_err();
/// let errno = err
///     .get_ref()
///     .and_then(|inner| inner.downcast_ref::<procmap::Error>())
///     .and_then(procmap::Error::errno);
/// assert_eq!(errno, Some(libc::ENOENT));
/// assert_eq!(err.raw_os_error(), None);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Opening the maps file failed (`ENOENT` for a process that does not exist, `ESRCH` for
    /// one that exited and is being reaped as it is opened: both [`Error::is_gone`] when
    /// opened by PID; `EACCES` when not allowed, ...).
    #[non_exhaustive]
    Open {
        /// The file.
        path: PathBuf,
        /// The error, with its errno.
        source: io::Error,
        /// The process, if opened by PID ([`ProcMaps::open`], [`ProcMaps::reopen`]).
        pid: Option<u32>,
    },
    /// A system call on the open file failed.
    #[non_exhaustive]
    Os {
        /// What was being done, e.g. `"ioctl(PROCMAP_QUERY)"`.
        op: &'static str,
        /// The error, with its errno.
        source: io::Error,
        /// The process, if the handle was opened by PID ([`ProcMaps::pid`]).
        pid: Option<u32>,
    },
    /// A line of the maps text could not be parsed.
    #[non_exhaustive]
    Parse {
        /// The line, lossily as UTF-8.
        line: String,
    },
}

impl Error {
    /// The errno behind the error, if there is one.
    ///
    /// ```
    /// let err = procmap::ProcMaps::open(u32::MAX).unwrap_err();
    /// assert_eq!(err.errno(), Some(libc::ENOENT));
    /// ```
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Open { source, .. } | Error::Os { source, .. } => source.raw_os_error(),
            Error::Parse { .. } => None,
        }
    }

    /// The kind of error, as [`io::Error::kind`] tells it (`PermissionDenied`, `InvalidData`
    /// for text that does not parse, ...), but `NotFound` both for a process that does not
    /// exist and for an address space that is gone ([`Error::is_gone`]), which `ESRCH`
    /// alone would leave uncategorized.
    ///
    /// ```
    /// let err = procmap::ProcMaps::open(u32::MAX).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn kind(&self) -> io::ErrorKind {
        if self.is_gone() {
            return io::ErrorKind::NotFound;
        }
        match self {
            Error::Open { source, .. } | Error::Os { source, .. } => source.kind(),
            Error::Parse { .. } => io::ErrorKind::InvalidData,
        }
    }

    /// Whether the address space is gone (`ESRCH`): the process exited, or called `execve()`
    /// since the maps were opened (the file stays on the address space it was opened on,
    /// which never comes back), or never had one (a kernel thread). Open the maps again for
    /// the process's new program; answers received before are about the old one. An
    /// [`Error::Open`] with `ESRCH` is one too: the process exited and was being reaped while
    /// its maps were opened; and, for an open by PID ([`ProcMaps::open`]), one with `ENOENT`:
    /// no such process (exited and reaped, or there never was one), so that a profiler
    /// opening the maps of the PIDs of its samples can drop those that are gone on this one
    /// test, whichever way they went. (An open by path with `ENOENT` is not: the path may
    /// just be wrong.)
    ///
    /// Queries, walks and [`ProcMaps::resolve`] fail with such an error rather than answer
    /// that nothing is mapped: a symbolizer must not take the addresses of a process that
    /// went away for unmapped ones. A walk that it cuts short ends with it.
    ///
    /// ```no_run
    /// # use procmap::{ProcMaps, Query};
    /// # let (pid, addr) = (1, 0);
    /// let maps = ProcMaps::open(pid)?;
    /// match maps.query(addr, Query::new()) {
    ///     Ok(Some(vma)) => println!("{addr:#x} is in {:#x}-{:#x}", vma.start, vma.end),
    ///     Ok(None) => println!("{addr:#x} is not mapped"),
    ///     Err(e) if e.is_gone() => println!("process {pid} exited or ran another program"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<(), procmap::Error>(())
    /// ```
    pub fn is_gone(&self) -> bool {
        match self {
            Error::Os { .. } | Error::Open { pid: None, .. } => self.errno() == Some(libc::ESRCH),
            Error::Open { pid: Some(_), .. } => {
                matches!(self.errno(), Some(libc::ESRCH | libc::ENOENT))
            }
            Error::Parse { .. } => false,
        }
    }

    /// The process whose maps a system call failed on ([`Error::Os`]), if the handle was
    /// opened by PID ([`ProcMaps::open`], [`ProcMaps::pid`]), or whose maps could not be
    /// opened ([`Error::Open`], opened by PID). A profiler watching many processes can tell
    /// which one went away:
    ///
    /// ```
    /// use procmap::{ProcMaps, Query};
    /// let mut child = std::process::Command::new("sleep").arg("60").spawn()?;
    /// let maps = ProcMaps::open(child.id())?;
    /// child.kill()?;
    /// child.wait()?;
    /// let err = maps.query(0, Query::new()).unwrap_err();
    /// assert!(err.is_gone());
    /// assert_eq!(err.pid(), Some(child.id()));
    /// assert!(err.to_string().contains(&format!("on process {}", child.id())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        match self {
            Error::Os { pid, .. } | Error::Open { pid, .. } => *pid,
            Error::Parse { .. } => None,
        }
    }

    fn os(op: &'static str, source: io::Error) -> Self {
        Error::Os {
            op,
            source,
            pid: None,
        }
    }

    /// The error, naming process `pid` if it is an [`Error::Os`] or [`Error::Open`] that
    /// names none yet.
    pub(crate) fn of(mut self, of: Option<u32>) -> Self {
        if let Error::Os {
            pid: pid @ None, ..
        }
        | Error::Open {
            pid: pid @ None, ..
        } = &mut self
        {
            *pid = of;
        }
        self
    }

    /// The address space is gone ([`Error::is_gone`]), as found by `op`.
    pub(crate) fn gone(op: &'static str) -> Self {
        Error::os(op, io::Error::from_raw_os_error(libc::ESRCH))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Open { path, source, .. } => {
                write!(f, "cannot open {}: {source}", path.display())
            }
            Error::Os {
                op,
                source,
                pid: Some(pid),
            } => write!(f, "{op} on process {pid}: {source}"),
            Error::Os { op, source, .. } => write!(f, "{op}: {source}"),
            Error::Parse { line } => write!(f, "cannot parse maps line: {line:?}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Open { source, .. } | Error::Os { source, .. } => Some(source),
            Error::Parse { .. } => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// A `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// What a query looks for and what it asks back: the kernel's query flags and the optional
/// name and build ID.
///
/// ```
/// use procmap::Query;
/// // The next executable, file-backed VMA at or above an address, with its name.
/// let q = Query::new().or_next(true).executable(true).file_backed(true).name(true);
/// assert!(q.name_wanted() && !q.build_id_wanted());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
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
    /// Only VMAs that have all the permissions set in `want` (the kernel's subset match).
    /// Sets the permissions to exactly `want` and the match to all-of.
    pub fn perms(mut self, want: Perms) -> Self {
        self.set(abi::VMA_READABLE, want.read);
        self.set(abi::VMA_WRITABLE, want.write);
        self.set(abi::VMA_EXECUTABLE, want.exec);
        self.set(abi::VMA_SHARED, want.shared);
        self.set(abi::VMA_PERM_ANY, false);
        self
    }
    /// Only VMAs that have at least one of the permissions set in `any`: `perms(any)` with the
    /// any-of match ([`Query::any_perm`]).
    ///
    /// ```
    /// use procmap::{Perms, Query};
    /// let mut wx = Perms::default();
    /// wx.write = true;
    /// wx.exec = true;
    /// // Writable or executable VMAs: the places code can be written to or run from.
    /// let q = Query::new().perms_any(wx);
    /// assert!(q.any_perm_wanted());
    /// assert_eq!(q, Query::new().writable(true).executable(true).any_perm(true));
    /// ```
    pub fn perms_any(self, any: Perms) -> Self {
        self.perms(any).any_perm(true)
    }
    /// Switches the permission filter between all-of (`false`, the default: the VMA has every
    /// permission asked for) and any-of (`true`: at least one of them), keeping the
    /// permissions asked for ([`Query::readable`], ...).
    ///
    /// Any-of is the extension's `PROCMAP_QUERY_VMA_PERM_ANY`. Every backend gives the same
    /// answers: where the kernel lacks the extension (the C handler, which would refuse the
    /// flag with `EINVAL`, or the text), the crate never sends the flag and filters in user
    /// space instead, which costs one query per VMA looked at with the single-query backend.
    /// With one permission, any-of and all-of are the same filter; with none, there is no
    /// permission filter (rather than the kernel's `EINVAL`).
    pub fn any_perm(mut self, on: bool) -> Self {
        self.set(abi::VMA_PERM_ANY, on);
        self
    }
    /// Only readable VMAs.
    pub fn readable(mut self, on: bool) -> Self {
        self.set(abi::VMA_READABLE, on);
        self
    }
    /// Only writable VMAs.
    pub fn writable(mut self, on: bool) -> Self {
        self.set(abi::VMA_WRITABLE, on);
        self
    }
    /// Only executable VMAs.
    pub fn executable(mut self, on: bool) -> Self {
        self.set(abi::VMA_EXECUTABLE, on);
        self
    }
    /// Only shared VMAs.
    pub fn shared(mut self, on: bool) -> Self {
        self.set(abi::VMA_SHARED, on);
        self
    }
    /// Ask for the name (as `/proc/<pid>/maps` shows it, unescaped).
    pub fn name(mut self, on: bool) -> Self {
        self.name = on;
        self
    }
    /// Ask for the ELF build ID of the mapped file (its `NT_GNU_BUILD_ID` note). The ioctl
    /// backends ask the kernel, which parses the file's notes per call: a batch parses them
    /// once for the side-by-side VMAs of one open file, and single queries of a walk or a
    /// [`ProcMaps::resolve`] ask for a build ID only for a VMA that does not map the file
    /// of the VMA answered before (the segments of an ELF file lie side by side; asking
    /// costs the kernel about seven queries without). "The file": the same device and
    /// inode; for a device that is no block device (btrfs, whose subvolumes share device
    /// and inode numbers; overlayfs, which shows a file copied up as the lower one; tmpfs)
    /// also the same name, asked for ([`Query::name`]), and a VMA that continues the one
    /// before in the same mapping (no gap, the offset following on); else the VMA is asked
    /// with its build ID. (Not caught: on overlayfs, a file written through the overlay
    /// (copied up) between two mappings of it, the second placed right after the first at
    /// the offset that follows on: both get the first's build ID, where a single query of
    /// the second gives its own. Only the process itself can arrange that, with its own
    /// files.) The text backend (kernels before 6.11) reads the file
    /// itself, once per file per walk, lookup or [`ProcMaps::resolve`], and only if the
    /// file it finds is the one the maps text shows for the VMA (by device and inode): a
    /// file replaced at its path gives none, not its own. It looks through
    /// `/proc/<pid>/map_files/<start>-<end>` (the file mapped at that range, also a deleted
    /// one; needs `CAP_SYS_ADMIN` or `CAP_CHECKPOINT_RESTORE`), else by the VMA's path:
    /// under `/proc/<pid>/root`, one component at a time with no symlink followed, so that
    /// the path resolves in the process's mount namespace and root (for a process in a
    /// chroot, the root's path taken off where it starts the printed one), then as printed,
    /// from the caller's root (a file mapped before a `chroot()`), where only a file whose
    /// `fstat()` device and inode are the VMA's passes. Where `fstat()` shows an anonymous
    /// device that is not the one the maps text shows (btrfs, overlayfs before Linux 6.8),
    /// a file found through `map_files` or under the process's root is compared as the
    /// maps text shows a page of it mapped for the moment by the calling process, once per
    /// file per walk (on btrfs once per subvolume); the caller's own `mmap` events, if it
    /// records them, show it, and it keeps one descriptor of its own maps open for that.
    /// That is as precise as the maps text, which can show two btrfs subvolumes' files
    /// alike: a file found by path that passes only so must be readable by anyone, or be
    /// the caller's own (owned by its file-system user ID, not root's; a target could mount
    /// a file it cannot read over one of its own). For maps opened through a thread (the
    /// main one exited), through the directory of one of the process's threads that still
    /// runs. It parses the note as the kernel's `lib/buildid.c` does, so that both give the
    /// same build IDs, but scans at most 1 MiB of notes per file (a hostile file could take
    /// hours otherwise), and 16 MiB in all the files of a walk (notes stepped through and the
    /// file read, beyond the notes in the first 4 KiB of each, where linkers put the build
    /// ID): a file whose build ID note lies past them gives none.
    /// Where it cannot open the file (a deleted file without the
    /// capability), it reads the note in the memory of a process running as the caller's
    /// user, through `/proc/<pid>/mem` where `/proc/<pid>/pagemap` shows the pages of the
    /// file present: only files of local file systems that a mount table shows, never
    /// where a file was found that is not to be read or a lookup failed otherwise than for
    /// a name not there (see the crate's README). "As the caller's user": the owner of its
    /// `/proc` directory and its four user IDs are the calling thread's file-system user
    /// ID, read from `/proc/thread-self/status` (none where that cannot be read, or shows
    /// the overflow ID); reading its memory needs the right to `ptrace()` it too. Else
    /// (another user's process, a handle from [`ProcMaps::from_fd`] on a descriptor that
    /// is not a `/proc` maps file) it gives none. A walk keeps the process's root (`/proc/<pid>/root`) open from its first
    /// lookup by path, and its `mem` and `pagemap` from its first read in memory, until it
    /// is dropped (an unmount of that root meanwhile fails with `EBUSY`). Files of tracefs,
    /// debugfs, FUSE, sysfs and procfs are not read (a read may consume data, block or
    /// reach a device); others may block too (NFS with its server gone; a FUSE mount that
    /// lets the caller in, or one under an overlay, which `fstatfs()` shows as overlayfs).
    /// Linux 6.11's ioctl itself gave none where the note was not in the first page of the
    /// file, or that page not in the page cache; later kernels read the file, as this does.
    pub fn build_id(mut self, on: bool) -> Self {
        self.build_id = on;
        self
    }
    /// The raw `query_flags` (`PROCMAP_QUERY_*` of `<linux/fs.h>`, and
    /// `PROCMAP_QUERY_VMA_PERM_ANY`, bit 63, of `<linux/procmap_query.h>` for
    /// [`Query::any_perm`]), as set: a kernel may be sent less (see [`Query::any_perm`]).
    pub fn flags(&self) -> u64 {
        self.flags
    }
    /// Whether any filter (permissions, file-backed) is set.
    pub fn filters(&self) -> bool {
        self.wire_flags() & !abi::COVERING_OR_NEXT_VMA != 0
    }
    /// Whether the permission filter is any-of ([`Query::any_perm`]).
    pub fn any_perm_wanted(&self) -> bool {
        self.flags & abi::VMA_PERM_ANY != 0
    }
    /// Whether the name is asked for.
    pub fn name_wanted(&self) -> bool {
        self.name
    }
    /// Whether the build ID is asked for.
    pub fn build_id_wanted(&self) -> bool {
        self.build_id
    }
    /// The flags as a kernel with the extension is sent them: `PERM_ANY` only with two
    /// permissions or more (with one it is the all-of filter, with none no filter).
    fn wire_flags(&self) -> u64 {
        if (self.flags & abi::VMA_PERMS).count_ones() < 2 {
            self.flags & !abi::VMA_PERM_ANY
        } else {
            self.flags
        }
    }
    /// Whether the query needs the any-of match: a kernel without the extension cannot do it.
    fn needs_any(&self) -> bool {
        self.wire_flags() & abi::VMA_PERM_ANY != 0
    }
    /// The filters of a batch: no `COVERING_OR_NEXT_VMA` (a walk always goes on, a lookup
    /// never does).
    fn batch_flags(&self) -> u64 {
        self.wire_flags() & !abi::COVERING_OR_NEXT_VMA
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
///
/// More may come as the kernel's `vma_flags` grow, so build one from
/// [`Perms::default`] (all clear), or parse the four letters of `/proc/<pid>/maps`:
///
/// ```
/// let mut p = procmap::Perms::default();
/// p.read = true;
/// assert_eq!(p.to_string(), "r--p");
/// let q: procmap::Perms = "r-xs".parse()?;
/// assert!(q.read && !q.write && q.exec && q.shared);
/// # Ok::<(), procmap::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
    fn intersects(&self, other: &Perms) -> bool {
        (other.read && self.read)
            || (other.write && self.write)
            || (other.exec && self.exec)
            || (other.shared && self.shared)
    }
}

impl std::str::FromStr for Perms {
    type Err = Error;

    /// The four letters of `/proc/<pid>/maps` (`r` or `-`, `w` or `-`, `x` or `-`, `s` or
    /// `p`), as [`Perms`]'s `Display` writes them; [`Error::Parse`] otherwise.
    fn from_str(s: &str) -> Result<Self> {
        match s.as_bytes() {
            &[r @ (b'r' | b'-'), w @ (b'w' | b'-'), x @ (b'x' | b'-'), sh @ (b's' | b'p')] => {
                Ok(Perms {
                    read: r == b'r',
                    write: w == b'w',
                    exec: x == b'x',
                    shared: sh == b's',
                })
            }
            _ => Err(Error::Parse { line: s.into() }),
        }
    }
}

impl fmt::Display for Perms {
    /// The four letters of `/proc/<pid>/maps`, e.g. `r-xp`.
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Vma {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Permissions.
    pub perms: Perms,
    /// Offset in the mapped file, in bytes (0 for anonymous memory).
    pub offset: u64,
    /// Major number of the file's device.
    pub dev_major: u32,
    /// Minor number of the file's device.
    pub dev_minor: u32,
    /// Inode number (0 for anonymous memory).
    pub inode: u64,
    /// Page size the kernel uses for the VMA; `None` from the text fallback.
    pub page_size: Option<u64>,
    /// The name, if asked for and the VMA has one: raw bytes (paths need not be UTF-8), the
    /// same from both backends (a newline is a newline, not the text's `\012`), with the
    /// kernel's ` (deleted)` suffix where it puts one. For a path longer than `PATH_MAX`,
    /// which the ioctl cannot return, the name is taken from the text; it is `None` only if
    /// the VMA is gone from the text by then.
    pub name: Option<Vec<u8>>,
    /// The ELF build ID, if asked for and found (see [`Query::build_id`]); from the text
    /// backend, read from the mapped file where it can be opened.
    pub build_id: Option<Vec<u8>>,
}

/// What the kernel's `d_path()` puts after the path of an unlinked file.
const DELETED: &[u8] = b" (deleted)";

impl Vma {
    /// The name, lossily as UTF-8 (empty if none).
    pub fn name_lossy(&self) -> String {
        self.name
            .as_deref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default()
    }
    /// Whether the VMA maps a file (the kernel's `vm_file`), judged by a non-zero inode: this
    /// includes shared anonymous memory, which is backed by shmem.
    pub fn file_backed(&self) -> bool {
        self.inode != 0
    }
    /// The mapped file's path, as the name gives it (from the caller's root: the kernel's
    /// `d_path()`), without the ` (deleted)` that the kernel puts after the path of a file
    /// unlinked since ([`Vma::is_deleted`]); `None` for a VMA that maps no file, has no name
    /// or one that does not start with `/` (`anon_inode:[perf_event]`,
    /// `[anon_shmem:name]`). Some that do are no file of any directory: a memfd
    /// (`/memfd:name`), shared anonymous memory (`/dev/zero`), System V shared memory
    /// (`/SYSV0000002a`). To open the file itself (deleted or replaced at its path
    /// meanwhile), use [`ProcMaps::open_mapped_file`].
    ///
    /// ```
    /// # let mut v = procmap::Vma::default();
    /// v.inode = 1835;
    /// v.name = Some(b"/usr/lib/libfoo.so.1 (deleted)".to_vec());
    /// assert!(v.is_deleted());
    /// assert_eq!(v.path(), Some(&b"/usr/lib/libfoo.so.1"[..]));
    /// ```
    pub fn path(&self) -> Option<&[u8]> {
        let name = self.name.as_deref()?;
        if !self.file_backed() || !name.starts_with(b"/") {
            return None;
        }
        Some(name.strip_suffix(DELETED).unwrap_or(name))
    }
    /// Whether the kernel shows the mapped file as unlinked: its name ends with
    /// ` (deleted)`. A library deleted or replaced under a running process (an upgrade), a
    /// memfd (`/memfd:name (deleted)`), shared anonymous memory (`/dev/zero (deleted)`). The
    /// text cannot tell it from a file whose own name ends so, nor can this.
    pub fn is_deleted(&self) -> bool {
        self.file_backed() && self.name.as_deref().is_some_and(|n| n.ends_with(DELETED))
    }
    /// Whether `addr` is inside.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
    /// The offset of `addr` in the mapped file (`addr - start + offset`), for a file-backed
    /// VMA that contains `addr`; `None` otherwise, or if it does not fit in 64 bits.
    ///
    /// The `[vdso]` is no file (inode 0): it is an ELF image mapped whole from its start, so
    /// `addr - start` is the offset in that image, which a symbolizer reads from the
    /// process's memory (`/proc/<pid>/mem`), or from its own `[vdso]` when both run the same
    /// kernel and ABI.
    pub fn file_offset(&self, addr: u64) -> Option<u64> {
        if !self.file_backed() || !self.contains(addr) {
            return None;
        }
        addr.checked_sub(self.start)?.checked_add(self.offset)
    }
}

/// Where the answers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// The extension of `<linux/procmap_query.h>` (the project's Rust handler):
    /// [`ProcMaps::iter`] walks with `PROCMAP_QUERY_BATCH` (up to 256 VMAs, their names and
    /// build IDs per system call), [`ProcMaps::resolve`] uses its lookup, and
    /// [`ProcMaps::query`] one `PROCMAP_QUERY`. If the kernel stops answering the batch
    /// command (`ENOTTY`: the module was unloaded), the handle goes on with [`Backend::Ioctl`]
    /// and [`ProcMaps::backend`] says so.
    Batch,
    /// The `PROCMAP_QUERY` ioctl, one system call per VMA.
    Ioctl,
    /// Parsing the text of `/proc/<pid>/maps` (no page size; build IDs read from the mapped
    /// files, see [`Query::build_id`]). Each query reads
    /// the whole text; a walk or a [`ProcMaps::resolve`] reads it once. Threads sharing a
    /// handle read the text one at a time (the kernel keeps one read position per open file;
    /// interleaved reads would make it format the text again and again).
    Text,
}

/// How to open: by default the backend is chosen by a probe (one `PROCMAP_QUERY_BATCH` that
/// asks for nothing; if the kernel does not know it, one `PROCMAP_QUERY`);
/// [`Options::backend`] chooses it instead, without the probe.
///
/// ```
/// use procmap::{Backend, Options};
/// let maps = Options::new().backend(Backend::Text).open_self()?;
/// assert_eq!(maps.backend(), Backend::Text);
/// # Ok::<(), procmap::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    backend: Option<Backend>,
    no_pidfd: bool,
}

impl Options {
    /// Probe for the batch extension, then for the ioctl, fall back to the text.
    pub fn new() -> Self {
        Self::default()
    }
    /// Use this backend, without probing.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }
    /// Whether [`Options::open`] keeps a pidfd of the process (the default; see
    /// [`ProcMaps::open`]). Without it a handle takes one file descriptor instead of two
    /// (for a profiler keeping thousands of handles under `RLIMIT_NOFILE`), and
    /// [`ProcMaps::reopen`] tells the process by its start time instead (see there).
    pub fn pidfd(mut self, keep: bool) -> Self {
        self.no_pidfd = !keep;
        self
    }
    /// Opens `/proc/<pid>/maps`; see [`ProcMaps::open`] for a process whose main thread
    /// exited, and for the pidfd it keeps.
    pub fn open(&self, pid: u32) -> Result<ProcMaps> {
        let pidfd = if self.no_pidfd {
            Err(NoPidfd::Off)
        } else {
            pidfd_open(pid).map_err(|e| match e {
                // Not in the caller's PID namespace, though /proc/<pid> may be there
                // (another namespace's /proc): not a sign that the process is gone.
                libc::ESRCH => NoPidfd::NotInNamespace,
                e => NoPidfd::Open(e),
            })
        };
        let started_before = match pidfd {
            Ok(_) => None,
            Err(_) => leader_start(pid),
        };
        let maps = self.open_pid(pid)?;
        let pidfd = match pidfd {
            // After the open: the PID of the pidfd's process, as the /proc mount sees it.
            Ok(fd) => match pidfd_pid(&fd) {
                Some(p) if i64::from(pid) == p => Ok(Arc::new(fd)),
                // Reaped since the pidfd was taken: the maps opened may be those of another
                // process that got the PID since.
                Some(-1) => {
                    return Err(Error::Open {
                        path: format!("/proc/{pid}/maps").into(),
                        source: io::Error::from_raw_os_error(libc::ESRCH),
                        pid: Some(pid),
                    })
                }
                // Another PID namespace's /proc (0: not visible there), or no `Pid:` line
                // (before Linux 5.10), or fdinfo unreadable: the pidfd cannot be tied to
                // /proc/<pid>, and is dropped.
                _ => Err(NoPidfd::Unverified),
            },
            Err(e) => Err(e),
        };
        // Without a pidfd, the process's start time identifies it for `reopen()`: read
        // before the open and again after it, equal, the maps are that process's.
        let (mut maps, started) = match (&pidfd, started_before) {
            (Ok(_), _) => (maps, None),
            (Err(_), Some(s)) => (maps, self.started_still(pid, s)?),
            // The pidfd was dropped after the open (it could not be tied to /proc/<pid>): the
            // maps are opened again, between two reads of the start time. Rare: a /proc of
            // another PID namespace, or Linux 5.3 to 5.9.
            (Err(NoPidfd::Unverified), None) => match leader_start(pid) {
                Some(s) => (self.open_pid(pid)?, self.started_still(pid, s)?),
                None => (maps, None),
            },
            (Err(_), None) => (maps, None),
        };
        maps.origin = Some(Origin {
            pid,
            pidfd,
            started,
            options: *self,
        });
        Ok(maps)
    }

    /// `Some(started)` if process `pid`'s start time is still `started`, read after the maps
    /// were opened: the maps are that process's. Another one, or no process, and it was
    /// reaped since it was read (and the PID may be another process's, whose maps the open
    /// may have found): `ESRCH`. `None` if it cannot be read now (`EMFILE`, say): the handle
    /// then has no start time, as if the first read had failed.
    fn started_still(&self, pid: u32, started: u64) -> Result<Option<u64>> {
        match process_stat(pid) {
            Ok(Some(now)) if now.start == started => Ok(Some(started)),
            Ok(_) => Err(Error::Open {
                path: format!("/proc/{pid}/maps").into(),
                source: io::Error::from_raw_os_error(libc::ESRCH),
                pid: Some(pid),
            }),
            Err(_) => Ok(None),
        }
    }

    /// The maps of process `pid`: `/proc/<pid>/maps`, or one of its other threads' if its
    /// main thread exited.
    fn open_pid(&self, pid: u32) -> Result<ProcMaps> {
        let maps = self
            .open_path(format!("/proc/{pid}/maps").as_ref())
            .map_err(|e| e.of(Some(pid)))?;
        if maps.has_address_space() {
            return Ok(maps);
        }
        Ok(self.open_live_thread(pid).unwrap_or(maps))
    }

    /// The maps of a thread of process `pid` other than its main one, with an address space:
    /// the process's, when its main thread exited (`pthread_exit()` in `main()`) and others
    /// run on. `/proc/<pid>/maps` is the main thread's, which has none left; a thread's maps
    /// show the address space it shares with the rest of the process. The threads there
    /// were before it was opened are kept, for reads of the text after its thread exits.
    fn open_live_thread(&self, pid: u32) -> Option<ProcMaps> {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        let threads: Vec<(u32, u64)> = tasks
            .flatten()
            .filter_map(|task| {
                let tid: u32 = task.file_name().to_str()?.parse().ok()?;
                if tid == pid {
                    return None;
                }
                Some((tid, thread_start(pid, tid)?))
            })
            .collect();
        let mut maps = threads.iter().find_map(|&(tid, _)| {
            let path = format!("/proc/{pid}/task/{tid}/maps");
            let maps = self.open_path(path.as_ref()).ok()?;
            maps.has_address_space().then_some(maps)
        })?;
        maps.threads = Some(Threads { pid, threads });
        Some(maps)
    }
    /// Opens `/proc/self/maps`; if the main thread exited (`pthread_exit()` in `main()`),
    /// the calling thread's `/proc/thread-self/maps` instead, which shows the same address
    /// space.
    pub fn open_self(&self) -> Result<ProcMaps> {
        let maps = self.open_path("/proc/self/maps".as_ref())?;
        if maps.has_address_space() {
            return Ok(maps);
        }
        Ok(self
            .open_path("/proc/thread-self/maps".as_ref())
            .unwrap_or(maps))
    }
    /// Opens a maps file by path (e.g. `/proc/<pid>/task/<tid>/maps`).
    pub fn open_path(&self, path: &Path) -> Result<ProcMaps> {
        let file = File::open(path).map_err(|source| Error::Open {
            path: path.into(),
            source,
            pid: None,
        })?;
        let maps = self.from_fd(file.into());
        let _ = maps.proc_dir.set(proc_dir_of(path));
        Ok(maps)
    }
    /// Uses an already open maps file descriptor (e.g. one received over a Unix socket).
    pub fn from_fd(&self, fd: OwnedFd) -> ProcMaps {
        let mut maps = ProcMaps {
            file: File::from(fd),
            backend: AtomicU8::new(Backend::Ioctl as u8),
            ext: AtomicU8::new(EXT_UNKNOWN),
            mm_at_open: None,
            threads: None,
            origin: None,
            proc_dir: std::sync::OnceLock::new(),
            text_read: Mutex::new(None),
            #[cfg(test)]
            reads: Default::default(),
        };
        let backend = match self.backend {
            Some(b) => b,
            None => {
                let (backend, mm) = maps.probe();
                maps.mm_at_open = mm;
                backend
            }
        };
        maps.backend.store(backend as u8, Ordering::Relaxed);
        maps
    }
}

/// The directory of a maps file's path, if it is a `/proc` one (`.../maps`).
fn proc_dir_of(path: &Path) -> Option<PathBuf> {
    if path.file_name()? != "maps" {
        return None;
    }
    let dir = path.parent()?;
    dir.starts_with("/proc").then(|| dir.to_path_buf())
}

/// The process a [`ProcMaps`] was opened for by PID ([`ProcMaps::open`]), to open again
/// ([`ProcMaps::reopen`]).
#[derive(Debug)]
struct Origin {
    pid: u32,
    /// A pidfd of the process, taken before the maps were opened, or why there is none.
    pidfd: std::result::Result<Arc<OwnedFd>, NoPidfd>,
    /// Without a pidfd: the process's start time (from [`process_stat`]), the same before
    /// and after the maps were opened; `None` if it could not be read (or there is a pidfd).
    started: Option<u64>,
    options: Options,
}

impl Origin {
    /// [`ProcMaps::reopen`] of a process without a pidfd, told by its start time.
    fn reopen_started(&self, why: NoPidfd, started: u64) -> Result<ProcMaps> {
        let opened = self.options.open_pid(self.pid);
        // After the open: if the process that started then is still there, the maps are its
        // own. A failed read (`EMFILE`, say) tells nothing either way: an error, not gone.
        let now = process_stat(self.pid)
            .map_err(|e| Error::os("reopen: read /proc/<pid>/stat", e))?
            .filter(|now| now.start == started);
        let Some(now) = now else {
            return Err(Error::gone(
                "reopen (the process exited; its PID may be another process's)",
            ));
        };
        let mut maps = opened?;
        // A process that exited but is not reaped yet still has its start time, and no
        // address space. (A live one may have none either: a kernel thread, or one that
        // called `execve()` again since the open; its handle is given, as with a pidfd.)
        if now.exited() && !maps.has_address_space() {
            return Err(Error::gone("reopen (the process exited)"));
        }
        maps.origin = Some(Origin {
            pid: self.pid,
            pidfd: Err(why),
            started: Some(started),
            options: self.options,
        });
        Ok(maps)
    }
}

/// Why a handle opened by PID has no pidfd (and [`ProcMaps::reopen`] tells the process by
/// its start time, or fails if that could not be read either).
#[derive(Clone, Copy, Debug)]
enum NoPidfd {
    /// `pidfd_open()` failed with this errno (not `ESRCH`): `ENOSYS` before Linux 5.3 or
    /// under a seccomp filter, `ENOENT` (Linux 6.9 and later) or `EINVAL` (before) for the ID
    /// of a thread other than the main one, `EMFILE`, ...
    Open(i32),
    /// `pidfd_open()` said `ESRCH`: no such PID in the caller's PID namespace, while
    /// `/proc/<pid>` (maybe another namespace's `/proc`) was there.
    NotInNamespace,
    /// The pidfd's fdinfo did not show the PID of `/proc/<pid>` (another PID namespace), or
    /// could not be read (no `Pid:` line before Linux 5.10): the pidfd was dropped.
    Unverified,
    /// Turned off ([`Options::pidfd`]).
    Off,
}

impl NoPidfd {
    /// The error [`ProcMaps::reopen`] fails with: never [`Error::is_gone`], the process may
    /// well be alive.
    fn error(self) -> Error {
        let (op, errno) = match self {
            NoPidfd::Open(e) => ("reopen: no pidfd (pidfd_open() failed)", e),
            NoPidfd::NotInNamespace => (
                "reopen: no pidfd (pidfd_open() found no such PID in this PID namespace)",
                libc::EOPNOTSUPP,
            ),
            NoPidfd::Unverified => (
                "reopen: no pidfd (its fdinfo did not show the PID of /proc/<pid>: \
                 another PID namespace, or a kernel before 5.10)",
                libc::EOPNOTSUPP,
            ),
            NoPidfd::Off => (
                "reopen: no pidfd (turned off by Options::pidfd)",
                libc::EOPNOTSUPP,
            ),
        };
        Error::os(op, io::Error::from_raw_os_error(errno))
    }
}

/// `pidfd_open(pid, 0)`, close-on-exec (as pidfds always are); the errno on failure.
fn pidfd_open(pid: u32) -> std::result::Result<OwnedFd, i32> {
    #[cfg(test)]
    if let Some(e) = tests::PIDFD_OPEN_FAILS.with(std::cell::Cell::get) {
        return Err(e);
    }
    let pid = libc::pid_t::try_from(pid).map_err(|_| libc::ESRCH)?;
    // SAFETY: a system call with plain integer arguments; a new descriptor is returned.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::ENOSYS));
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| libc::EBADF)?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// The PID of the process of `pidfd`, from the `Pid:` line of `/proc/self/fdinfo/<fd>`
/// (Linux 5.10 and later): as the PID namespace of that `/proc` mount sees it (the one
/// `/proc/<pid>/maps` is opened in), 0 if it is not visible there, -1 once the process was
/// reaped. `None` if it cannot be read. No signal is sent, so no LSM or seccomp policy on
/// signals gets in the way.
fn pidfd_pid(pidfd: &OwnedFd) -> Option<i64> {
    #[cfg(test)]
    if let Some(p) = tests::PIDFD_FDINFO.with(std::cell::Cell::get) {
        return p;
    }
    let info = std::fs::read(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).ok()?;
    let info = std::str::from_utf8(&info).ok()?;
    let line = info.lines().find_map(|l| l.strip_prefix("Pid:"))?;
    line.trim().parse().ok()
}

/// Whether the process of `pidfd` exited (a zombie, or reaped): its pidfd polls readable.
fn pidfd_exited(pidfd: &OwnedFd) -> Result<bool> {
    let mut p = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, no waiting.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        if r >= 0 {
            return Ok(p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(Error::os("poll(pidfd)", e));
        }
    }
}

/// The threads of a process whose maps were opened through one of them (see
/// [`ProcMaps::open`]), as they were before that open.
#[derive(Debug)]
struct Threads {
    pid: u32,
    /// Thread ID and start time (in clock ticks after boot) of each.
    threads: Vec<(u32, u64)>,
}

impl Threads {
    /// The `/proc` directory of the first of the threads that still runs (checked by its
    /// start time), for the build IDs of the text backend: `map_files` and `root` of a
    /// thread that exited fail, as do the main thread's once it exited.
    fn live_dir(&self) -> Option<PathBuf> {
        self.threads.iter().find_map(|&(tid, start)| {
            (thread_start(self.pid, tid)? == start)
                .then(|| PathBuf::from(format!("/proc/{}/task/{tid}", self.pid)))
        })
    }

    /// The maps of the first of the threads from index `from` on that still runs, and its
    /// index: opened, then checked to be the same thread (a thread ID is not reused while its
    /// thread lives). None if none is left.
    fn open_another(&self, from: usize) -> Option<(usize, File)> {
        let mut rest = self.threads.iter().enumerate().skip(from);
        rest.find_map(|(i, &(tid, start))| {
            let file = File::open(format!("/proc/{}/task/{tid}/maps", self.pid)).ok()?;
            (thread_start(self.pid, tid)? == start).then_some((i, file))
        })
    }
}

/// The start time of thread `tid` of process `pid` (field 22 of its `stat`), if it runs.
fn thread_start(pid: u32, tid: u32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    Some(ProcStat::parse(&stat)?.start)
}

/// What `/proc/<pid>/stat` says of a process's main thread: its start time, in clock ticks
/// after boot (it stays while the process is there, a zombie included), which tells the
/// process from a later one with the same PID where there is no pidfd; and its state. Two
/// processes that got the same PID within one tick (10 ms at the usual `USER_HZ` of 100)
/// have the same start time; the PIDs are handed out in turn, so a PID comes back that soon
/// only to a caller that chooses it (`clone3()` with `set_tid`, which takes `CAP_SYS_ADMIN`
/// or `CAP_CHECKPOINT_RESTORE` in the user namespace that owns the PID namespace: an
/// unprivileged user has them in a PID namespace of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ProcStat {
    start: u64,
    state: u8,
}

impl ProcStat {
    /// The state (field 3) and start time (field 22) of a `stat` file's text.
    fn parse(stat: &[u8]) -> Option<Self> {
        // After the command name, which may hold anything but ends with the last ')'.
        let rest = stat.get(stat.iter().rposition(|&b| b == b')')? + 1..)?;
        let mut fields = rest
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty());
        let state = *fields.next()?.first()?;
        let start = std::str::from_utf8(fields.nth(18)?).ok()?.parse().ok()?;
        Some(ProcStat { start, state })
    }

    /// Whether the main thread has exited: a zombie (`Z`), or dead (`X`). It may also be
    /// the only thread that did (`pthread_exit()` in `main()`).
    fn exited(self) -> bool {
        matches!(self.state, b'Z' | b'X')
    }
}

/// [`ProcStat`] of process `pid`: `Ok(None)` if there is no such process (`ENOENT`, `ESRCH`),
/// an error if it cannot be read (`EMFILE`, ...) or parsed.
fn process_stat(pid: u32) -> io::Result<Option<ProcStat>> {
    #[cfg(test)]
    if let Some(s) = tests::PROCESS_STAT.with(|s| s.borrow_mut().pop_front()) {
        return s.map_err(io::Error::from_raw_os_error);
    }
    let stat = match std::fs::read(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => return Ok(None),
        Err(e) => return Err(e),
    };
    ProcStat::parse(&stat)
        .map(Some)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))
}

/// The start time of process `pid` if it is a process, the main thread of its thread group
/// (`Tgid:` in `/proc/<pid>/status`); `None` for another thread's ID (whose start time would
/// make [`ProcMaps::reopen`] say the process exited once that thread has), or if either
/// cannot be read.
fn leader_start(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let tgid = status.lines().find_map(|l| l.strip_prefix("Tgid:"))?;
    if tgid.trim().parse::<u32>().ok()? != pid {
        return None;
    }
    Some(process_stat(pid).ok()??.start)
}

/// Whether the kernel has the extension of `<linux/procmap_query.h>`: not known yet (a
/// backend was chosen without the probe), no, yes.
const EXT_UNKNOWN: u8 = 0;
const EXT_ABSENT: u8 = 1;
const EXT_PRESENT: u8 = 2;

/// An open `/proc/<pid>/maps`.
pub struct ProcMaps {
    file: File,
    /// The [`Backend`], as its discriminant: lowered from `Batch` to `Ioctl` if the kernel
    /// stops answering the batch command.
    backend: AtomicU8,
    /// `EXT_*`.
    ext: AtomicU8,
    /// Whether the probe at the open found an address space (`None`: it could not tell).
    mm_at_open: Option<bool>,
    /// The threads of the process, if the file is the maps of one of them (see
    /// [`ProcMaps::open`]).
    threads: Option<Threads>,
    /// The process, if opened by PID.
    origin: Option<Origin>,
    /// The `/proc` directory of the maps file (`/proc/<pid>`, `/proc/<pid>/task/<tid>`), if
    /// it is one: where the text backend opens mapped files for their build IDs. Set by
    /// [`Options::open_path`], else found from the descriptor when first needed.
    proc_dir: std::sync::OnceLock<Option<PathBuf>>,
    /// Held while the text is read: see [`ProcMaps::read_text`]. The file of another of
    /// [`ProcMaps::threads`] to read it from, once the thread of `file` exited.
    text_read: Mutex<Option<File>>,
    /// Reads of the text in progress, and how many started while another was.
    #[cfg(test)]
    reads: (std::sync::atomic::AtomicU32, std::sync::atomic::AtomicU32),
}

impl fmt::Debug for ProcMaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcMaps")
            .field("fd", &self.file.as_raw_fd())
            .field("backend", &self.backend())
            .field(
                "extension",
                &match self.ext.load(Ordering::Relaxed) {
                    EXT_PRESENT => Some(true),
                    EXT_ABSENT => Some(false),
                    _ => None,
                },
            )
            .finish()
    }
}

/// `PATH_MAX`: the kernel never answers a longer name (it says `ENAMETOOLONG`).
const NAME_BUF: usize = 4096;
/// More than `BUILD_ID_SIZE_MAX` (20): a longer build ID would be `ENAMETOOLONG` too.
const BUILD_ID_BUF: usize = 64;

impl ProcMaps {
    /// Opens the maps of process `pid`, probing for the batch extension and the ioctl.
    ///
    /// `pid` is the PID as the `/proc` mount shows it (`/proc/<pid>/maps`), in the PID
    /// namespace of that mount: the caller's, unless `/proc` is another namespace's (a
    /// container given the host's `/proc`, where the PIDs to pass are the host's, as `ps`
    /// there and a BPF program's `bpf_get_current_pid_tgid()` show them, not the
    /// container's).
    ///
    /// The kernel checks at the open that the caller may read the process's memory map
    /// (`PTRACE_MODE_READ`: the same user and a dumpable process, or `CAP_SYS_PTRACE`); an
    /// [`Error::Open`] with `EACCES` otherwise, and with `ENOENT` for a process that does not
    /// exist. The open file then answers without further checks, for the address space the
    /// process had at the open (see [`Error::is_gone`]).
    ///
    /// That is the address space of the moment, even in the middle of an `execve()`. A child
    /// just started with `std::process::Command::spawn()` or `posix_spawn()` (a
    /// `CLONE_VFORK` child sharing its parent's address space until its exec) can still be
    /// on its parent's when the call returns: the parent is woken before the exec switches
    /// the child to the new one. To read the new program's maps, wait for a sign that it
    /// runs (a line on a pipe, say) before the open.
    ///
    /// Pass a process ID (the thread group's: perf's and BPF's `pid`, not `tid`). The ID of
    /// another thread opens that thread's `/proc/<tid>/maps`: the same address space, but
    /// the handle follows the thread. Once it exits, while the process runs on, the
    /// ioctls go on answering, but reads of the text (the text backend, names longer than
    /// `PATH_MAX`) fail as [`Error::is_gone`], and [`ProcMaps::reopen`] fails for a
    /// thread's ID (checked on Linux 6.18).
    ///
    /// `/proc/<pid>/maps` is the main thread's. If that thread exited while others run on
    /// (`pthread_exit()` in `main()`), it shows no address space, though the process has
    /// one: then the maps of one of the other threads (`/proc/<pid>/task/<tid>/maps`) are
    /// opened instead, which show the same. The ioctls of that file answer for as long as
    /// the address space has users, but its text ends with that thread: reads of the text
    /// (the text backend, and names longer than `PATH_MAX`) then go through another of the
    /// threads there were at the open, while one runs (one that started since might be of
    /// another program, after an `execve()`). A file opened by path
    /// ([`Options::open_path`]) has no other threads to turn to: its text reads then fail as
    /// if the address space were gone ([`Error::is_gone`]).
    ///
    /// The handle keeps a pidfd of the process (`pidfd_open()`, Linux 5.3 and later), taken
    /// before the maps are opened: [`ProcMaps::reopen`] opens the maps of the same process
    /// again after an `execve()`, and [`ProcMaps::pidfd`] tells when it exits. After the open,
    /// the `Pid:` line of the pidfd's `/proc/self/fdinfo` entry (Linux 5.10 and later; no
    /// signal is sent, so no LSM or seccomp policy on signals matters) says which PID the
    /// pidfd's process has in the `/proc` mount's PID namespace: the PID opened, and the
    /// handle keeps the pidfd; -1, the process was reaped between the two (its PID free for
    /// another process, whose maps the open may have found), and the open fails with `ESRCH`
    /// ([`Error::is_gone`]); anything else (a `/proc` of another PID namespace than the
    /// caller's, which `pidfd_open()` looks the PID up in) or nothing readable, and the pidfd
    /// is dropped. The open never fails for want of a pidfd: without one (`pidfd_open()`
    /// failing with `ENOSYS` before 5.3 or under a seccomp filter, with `ENOENT` (Linux 6.9
    /// and later) or `EINVAL` (before) for the ID of a thread other than the main one, with
    /// `ESRCH` for a PID not in the caller's namespace; or dropped as above; or turned off
    /// with [`Options::pidfd`]), the handle works as with it, and the process's start time
    /// (field 22 of `/proc/<pid>/stat`), read before and after the open, stands for it (a
    /// pidfd dropped as above, after the open: the maps are opened again between two
    /// reads): if the two differ, the process was reaped meanwhile, and the open fails with
    /// `ESRCH` as above; if the second read fails otherwise (`EMFILE`, say), the handle has
    /// no start time. Not for the ID of a thread other than the main one (`Tgid:` in
    /// `/proc/<pid>/status`), whose start time would make [`ProcMaps::reopen`] say the
    /// process exited once that thread has. The pidfd costs one system call, one read of
    /// fdinfo and one file descriptor per handle; the start time, a read of `status` and two
    /// of `stat`, and no descriptor.
    ///
    /// ```
    /// let maps = procmap::ProcMaps::open(std::process::id())?;
    /// # Ok::<(), procmap::Error>(())
    /// ```
    pub fn open(pid: u32) -> Result<Self> {
        Options::new().open(pid)
    }

    /// Opens the maps of the same process again, with the same [`Options`] (a backend forced
    /// stays forced, a probed one is probed again): the new program's after an `execve()`,
    /// which leaves this handle [`Error::is_gone`] while the process lives on. The maps are
    /// opened as [`ProcMaps::open`] opens them (through another thread if the main one
    /// exited), then the pidfd taken at the first open (or, without one, the process's start
    /// time) says whether the process is still there: if it exited, an error for which
    /// [`Error::is_gone`] holds, and no handle (once reaped, its PID may be another
    /// process's, whose maps the open may have found). The new handle keeps the pidfd (or
    /// the start time), and can be reopened in turn.
    ///
    /// Only for a handle opened by PID ([`ProcMaps::open`], [`Options::open`]): others fail
    /// with `EINVAL`. Without a pidfd (see [`ProcMaps::open`]), the process's start time,
    /// read after the new open, says whether it is the same process: a different one (or
    /// none), and the error is [`Error::is_gone`]; so is the same one without an address
    /// space (exited, not reaped yet). The start time counts clock ticks (10 ms at the usual
    /// `USER_HZ`), so it cannot tell a process from one that got its PID within the same
    /// tick: PIDs are handed out in turn, and one comes back that soon only to a caller that
    /// chooses it (`clone3()` with `set_tid`, a privilege); the pidfd has no such gap. If
    /// the start time could not be read at the open either, an error that is not
    /// [`Error::is_gone`]: the errno of `pidfd_open()` (`ENOSYS`, `ENOENT` or `EINVAL` for a
    /// thread ID, ...), or `EOPNOTSUPP` if the pidfd could not be tied to `/proc/<pid>`
    /// (another PID namespace) or was turned off ([`Options::pidfd`]): open by PID yourself
    /// then, knowing that the PID may have been reused.
    ///
    /// ```no_run
    /// # use procmap::{ProcMaps, Query};
    /// # let (pid, addr) = (1, 0);
    /// let mut maps = ProcMaps::open(pid)?;
    /// let vma = match maps.query(addr, Query::new()) {
    ///     Err(e) if e.is_gone() => {
    ///         maps = maps.reopen()?; // the new program's, or is_gone() if the process exited
    ///         maps.query(addr, Query::new())?
    ///     }
    ///     r => r?,
    /// };
    /// # Ok::<(), procmap::Error>(())
    /// ```
    pub fn reopen(&self) -> Result<Self> {
        self.named(self.reopen_unnamed())
    }

    /// [`ProcMaps::reopen`], with errors that do not name the process yet.
    fn reopen_unnamed(&self) -> Result<Self> {
        let Some(origin) = &self.origin else {
            return Err(Error::os(
                "reopen (not opened by PID)",
                io::Error::from_raw_os_error(libc::EINVAL),
            ));
        };
        let pidfd = match (&origin.pidfd, origin.started) {
            (Ok(fd), _) => fd,
            (Err(why), Some(started)) => return origin.reopen_started(*why, started),
            (Err(why), None) => return Err(why.error()),
        };
        let opened = origin.options.open_pid(origin.pid);
        // After the open: if the process had not exited by then, the maps are its own.
        if pidfd_exited(pidfd)? {
            return Err(Error::gone("reopen (the process exited)"));
        }
        let mut maps = opened?;
        maps.origin = Some(Origin {
            pid: origin.pid,
            pidfd: Ok(Arc::clone(pidfd)),
            started: None,
            options: origin.options,
        });
        Ok(maps)
    }

    /// `r`, its error naming the process the handle was opened for ([`Error::pid`]): what every
    /// public call returns.
    pub(crate) fn named<T>(&self, r: Result<T>) -> Result<T> {
        r.map_err(|e| e.of(self.pid()))
    }

    /// The PID the handle was opened for ([`ProcMaps::open`]); `None` for other handles.
    pub fn pid(&self) -> Option<u32> {
        self.origin.as_ref().map(|o| o.pid)
    }

    /// The pidfd of the process the handle was opened for ([`ProcMaps::open`]), if
    /// `pidfd_open()` gave one: it polls readable (`POLLIN`) once the process exited.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        match &self.origin.as_ref()?.pidfd {
            Ok(fd) => Some(fd.as_fd()),
            Err(_) => None,
        }
    }

    /// Opens the maps of the calling process, probing for the batch extension and the ioctl.
    pub fn open_self() -> Result<Self> {
        Options::new().open_self()
    }

    /// Uses an already open maps file descriptor, probing for the batch extension and the ioctl.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Options::new().from_fd(fd)
    }

    /// The extension first (as [`ProcMaps::has_extension`] asks), then one `PROCMAP_QUERY`: `ENOTTY`
    /// (or `EINVAL`) means the kernel lacks it. Anything else, including `ESRCH` (no address
    /// space: a kernel thread or a zombie), means it is there. Also whether there is an
    /// address space, where the answers tell.
    fn probe(&self) -> (Backend, Option<bool>) {
        if let Some(mm) = self.ask_extension() {
            return (Backend::Batch, Some(mm));
        }
        match self.probe_query() {
            Err(e) if e == libc::ENOTTY || e == libc::EINVAL => (Backend::Text, None),
            r => (Backend::Ioctl, Some(r != Err(libc::ESRCH))),
        }
    }

    /// A `PROCMAP_QUERY` for the lowest VMA, with no name or build ID.
    fn probe_query(&self) -> std::result::Result<(), i32> {
        let mut name = [];
        let mut bid = [];
        self.ioctl(0, Query::new().or_next(true), &mut name, &mut bid)
            .map(drop)
    }

    /// Whether the file has an address space to show (not a zombie's, a kernel thread's,
    /// or one left by `exit()` or `execve()`): known from the probe at the open, else asked
    /// with one system call. An error other than `ESRCH` says yes: the calls that follow
    /// will tell.
    fn has_address_space(&self) -> bool {
        if let Some(mm) = self.mm_at_open {
            return mm;
        }
        match self.backend() {
            Backend::Text => !self.text_is_empty().unwrap_or(false),
            Backend::Batch | Backend::Ioctl => {
                if self.ext.load(Ordering::Relaxed) != EXT_ABSENT {
                    if let Some(mm) = self.ask_extension() {
                        return mm;
                    }
                }
                self.probe_query() != Err(libc::ESRCH)
            }
        }
    }

    /// Whether the kernel has the extension of `<linux/procmap_query.h>` (batches, the any-of
    /// filter, the generation), whatever the backend in use: known from the probe at the
    /// open, else asked once with a `PROCMAP_QUERY_BATCH` that asks for nothing (it answers,
    /// or says `ESRCH` for an address space without users, where the extension is there;
    /// `ENOTTY` where it is not). `false` once the kernel stopped answering it (the module
    /// was unloaded).
    ///
    /// ```
    /// let maps = procmap::ProcMaps::open_self()?;
    /// if maps.has_extension() {
    ///     assert!(maps.generation()?.is_some());
    /// }
    /// # Ok::<(), procmap::Error>(())
    /// ```
    pub fn has_extension(&self) -> bool {
        match self.ext.load(Ordering::Relaxed) {
            EXT_PRESENT => true,
            EXT_ABSENT => false,
            _ => self.ask_extension().is_some(),
        }
    }

    /// Asks the kernel for the extension with a `PROCMAP_QUERY_BATCH` that asks for nothing,
    /// and records the answer: where the extension is, the call answers, or says `ESRCH` for
    /// an address space without users; elsewhere it fails otherwise (`ENOTTY`). With the
    /// extension, whether there is an address space; `None` without it.
    fn ask_extension(&self) -> Option<bool> {
        let mut b = abi::new_batch();
        let r = self.batch_ioctl(&mut b);
        let present = matches!(r, Ok(()) | Err(libc::ESRCH));
        let v = if present { EXT_PRESENT } else { EXT_ABSENT };
        self.ext.store(v, Ordering::Relaxed);
        present.then_some(r.is_ok())
    }

    /// The kernel stopped answering the extension (the module was unloaded): single queries
    /// from now on.
    fn lost_extension(&self) {
        self.ext.store(EXT_ABSENT, Ordering::Relaxed);
        let _ = self.backend.compare_exchange(
            Backend::Batch as u8,
            Backend::Ioctl as u8,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// The backend in use: the one [`Options::backend`] chose or the probe found, or
    /// [`Backend::Ioctl`] after the kernel stopped answering batches.
    pub fn backend(&self) -> Backend {
        match self.backend.load(Ordering::Relaxed) {
            b if b == Backend::Batch as u8 => Backend::Batch,
            b if b == Backend::Ioctl as u8 => Backend::Ioctl,
            _ => Backend::Text,
        }
    }

    /// Switches to another backend (e.g. the text one, to compare).
    pub fn set_backend(&mut self, backend: Backend) {
        *self.backend.get_mut() = backend as u8;
    }

    /// The generation of the process's VMA set (`PROCMAP_QUERY_GENERATION`): a value that
    /// changes whenever a VMA may have been added, removed or changed (range, permissions,
    /// offset, file, anonymous name). Two equal, even values read at two moments mean that no
    /// VMA changed in between, up to the limits listed at [`VmaCache`] (a 32-bit counter that
    /// repeats; file names that change without the VMAs changing). An odd value means a
    /// change was in progress; [`GENERATION_UNKNOWN`] is a kernel that cannot tell (built
    /// without `CONFIG_PER_VMA_LOCK`).
    ///
    /// `None` where the kernel lacks the extension, whatever the backend. An error with
    /// `ESRCH` ([`Error::errno`]) for an address space without users: a kernel thread, or a
    /// process that exited or called `execve()` since the open (the file stays on the old
    /// address space, which never comes back: open the maps again).
    ///
    /// ```
    /// let maps = procmap::ProcMaps::open_self()?;
    /// if let Some(generation) = maps.generation()? {
    ///     println!("VMA generation {generation}");
    /// }
    /// # Ok::<(), procmap::Error>(())
    /// ```
    pub fn generation(&self) -> Result<Option<u64>> {
        self.named(self.generation_unnamed())
    }

    /// [`ProcMaps::generation`], with errors that do not name the process yet.
    fn generation_unnamed(&self) -> Result<Option<u64>> {
        if self.ext.load(Ordering::Relaxed) == EXT_ABSENT {
            return Ok(None);
        }
        match self.generation_ioctl() {
            Ok(g) => {
                self.ext.store(EXT_PRESENT, Ordering::Relaxed);
                Ok(Some(g))
            }
            Err(libc::ENOTTY) => {
                self.lost_extension();
                Ok(None)
            }
            Err(e) => Err(Error::os(
                "ioctl(PROCMAP_QUERY_GENERATION)",
                io::Error::from_raw_os_error(e),
            )),
        }
    }

    /// The VMA that `query` finds for `addr`, or `None` (the kernel's `ENOENT`). An error
    /// for which [`Error::is_gone`] holds if the process has no address space (any more).
    ///
    /// ```
    /// # use procmap::{ProcMaps, Query};
    /// let maps = ProcMaps::open_self()?;
    /// // The lowest VMA of the process.
    /// let first = maps.query(0, Query::new().or_next(true))?;
    /// assert!(first.is_some());
    /// assert_eq!(maps.query(0, Query::new())?, None);
    /// # Ok::<(), procmap::Error>(())
    /// ```
    pub fn query(&self, addr: u64, query: Query) -> Result<Option<Vma>> {
        self.named(self.query_unnamed(addr, query))
    }

    /// [`ProcMaps::query`], with errors that do not name the process yet.
    fn query_unnamed(&self, addr: u64, query: Query) -> Result<Option<Vma>> {
        match self.backend() {
            Backend::Batch | Backend::Ioctl => self.single(addr, query, &mut WalkCache::default()),
            Backend::Text => {
                let snap = self.read_text()?;
                let mut ids = self.build_ids();
                Ok(snap
                    .query(0, addr, query)
                    .and_then(|i| snap.get(i))
                    .map(|v| text::answer(&snap, v, query, &mut ids)))
            }
        }
    }

    /// All VMAs that `query`'s filters let through, in address order: batches of up to 256
    /// VMAs (and 64 KiB of names) per system call with [`Backend::Batch`], resumed from where
    /// the last one ended; one `COVERING_OR_NEXT` query per VMA with [`Backend::Ioctl`]; one
    /// read of the text with [`Backend::Text`]. Names are asked of the kernel only if `query`
    /// asks for them, build IDs likewise.
    ///
    /// If the address space goes away before the walk reaches its end (the process exits or
    /// calls `execve()`), the walk ends with an error for which [`Error::is_gone`] holds, as
    /// it does at once for a process without one (a zombie, a kernel thread).
    ///
    /// A walk is no snapshot while the process maps, unmaps or changes memory (one system
    /// call per VMA, or per 256 with batches, and the text too is read in parts): each VMA
    /// given was there as given when it was read, and an address mapped during the whole
    /// walk is in one of them, but one may start below the end of the VMA before it, or
    /// below its start (mapped, merged or grown after that one was read; seen on the host
    /// with a process looping over `dlopen()`, `dlclose()`, `mmap()` and `munmap()` in
    /// threads). Each VMA ends above the one before it, so a walk always ends. For a
    /// consistent set, compare [`ProcMaps::generation`] before and after (with the
    /// extension), or use a [`VmaCache`], which walks again until a walk did not change and
    /// its VMAs do not overlap.
    pub fn iter(&self, query: Query) -> Vmas<'_> {
        self.iter_from(0, query)
    }

    /// As [`ProcMaps::iter`], from the VMA that covers `addr`, or else the first one above it
    /// (as [`Query::or_next`] finds it): the VMAs that end above `addr`, e.g. those of a
    /// range of addresses, with `take_while()` on their start.
    ///
    /// ```
    /// # use procmap::{ProcMaps, Query};
    /// fn f() {}
    /// let code = f as usize as u64;
    /// let maps = ProcMaps::open_self()?;
    /// let mut from_code = maps.iter_from(code, Query::new());
    /// let first = from_code.next().expect("a VMA")?;
    /// assert!(first.start <= code && code < first.end);
    /// # Ok::<(), procmap::Error>(())
    /// ```
    pub fn iter_from(&self, addr: u64, query: Query) -> Vmas<'_> {
        Vmas {
            maps: self,
            next: addr,
            query: query.or_next(true),
            done: false,
            mode: Mode::Start,
            cache: WalkCache::default(),
        }
    }

    /// Maps many addresses to their VMA and the offset in the mapped file. With
    /// [`Backend::Batch`], the batch lookup: the distinct addresses, sorted, go to the kernel
    /// 16 384 per call, which answers each with the VMA covering it (each VMA once per call;
    /// a call may stop early and the next one resumes). Otherwise at most one query per VMA
    /// that holds one of them (and one for all the addresses above the last VMA): the
    /// addresses are sorted and walked with `COVERING_OR_NEXT`. With the text backend, the
    /// text is read once.
    ///
    /// The answer holds each VMA once, in address order (by start, then end), and for each
    /// address (in the order of `addrs`) the index of its VMA and its file offset: the shape
    /// of blazesym's normalizer. While the process changes its mappings, two of the VMAs may
    /// overlap: each is what the kernel answered for its addresses when it was asked (see
    /// [`ProcMaps::iter`]). An address is `None` if no VMA that passes `query`'s filters
    /// holds it. If the process has no address space (any more), an error for which
    /// [`Error::is_gone`] holds, however many addresses were answered before it went. No
    /// addresses ask nothing: the answer is empty on every backend, without a system call.
    ///
    /// With batches, while the addresses fall in (nearly) every VMA, as the VMAs a lookup
    /// call reports show (most of them edge to edge), calls walk the VMAs from the next
    /// address instead of searching for each one; while at least half the VMAs a walk
    /// reports hold an address, the next call walks too. For an address in each of 10 000
    /// VMAs that is 22 % fewer instructions; for spread-out addresses, nothing changes.
    ///
    /// ```
    /// # use procmap::{ProcMaps, Query};
    /// fn f() {}
    /// static DATA: u8 = 0;
    /// let (code, data) = (f as usize as u64, &DATA as *const u8 as u64);
    /// let maps = ProcMaps::open_self()?;
    /// let r = maps.resolve(&[code, data, code + 1, 8], Query::new().name(true))?;
    /// let loc = r.addrs[0].expect("code is mapped");
    /// assert!(r.vmas[loc.vma].perms.exec);
    /// assert_eq!(r.addrs[2].map(|l| l.vma), Some(loc.vma));
    /// assert_eq!(r.addrs[3], None); // page zero is not mapped
    /// # Ok::<(), procmap::Error>(())
    /// ```
    pub fn resolve(&self, addrs: &[u64], query: Query) -> Result<Resolution> {
        self.named(self.resolve_unnamed(addrs, query))
    }

    /// [`ProcMaps::resolve`], with errors that do not name the process yet.
    fn resolve_unnamed(&self, addrs: &[u64], query: Query) -> Result<Resolution> {
        if addrs.is_empty() {
            return Ok(Resolution {
                vmas: Vec::new(),
                addrs: Vec::new(),
            });
        }
        if self.backend() == Backend::Batch {
            match self.batch_resolve(addrs, query)? {
                Some(r) => return Ok(r),
                None => self.lost_extension(),
            }
        }
        let mut order: Vec<usize> = (0..addrs.len()).collect();
        order.sort_unstable_by_key(|&i| addrs.get(i).copied().unwrap_or(0));
        let query = query.or_next(true);
        let mut res = Resolution {
            vmas: Vec::new(),
            addrs: vec![None; addrs.len()],
        };
        // The text backend's snapshot, and where in it to search from: as the addresses
        // come in order, each search starts where the last answer was.
        let mut text = match self.backend() {
            Backend::Text => Some((self.read_text()?, 0)),
            Backend::Batch | Backend::Ioctl => None,
        };
        let mut cache = WalkCache::default();
        let mut ids = self.build_ids();
        // The VMA at or above the addresses seen so far, and its index in `res.vmas` once an
        // address was found in it.
        let mut current: Option<(Vma, Option<usize>)> = None;
        for i in order {
            let Some(&addr) = addrs.get(i) else { continue };
            let stale = match &current {
                Some((v, _)) => addr >= v.end,
                None => true,
            };
            if stale {
                let next = match &mut text {
                    Some((snap, pos)) => snap.query(*pos, addr, query).and_then(|j| {
                        *pos = j + 1;
                        snap.get(j).map(|v| text::answer(snap, v, query, &mut ids))
                    }),
                    None => self.single(addr, query, &mut cache)?,
                };
                match next {
                    Some(v) if v.end > addr => current = Some((v, None)),
                    // Nothing at or above this address: none of the rest is mapped.
                    _ => break,
                }
            }
            let Some((vma, index)) = current.as_mut() else {
                break;
            };
            if !vma.contains(addr) {
                continue; // in the gap below `vma`
            }
            let k = match *index {
                Some(k) => k,
                None => {
                    res.vmas.push(vma.clone());
                    let k = res.vmas.len() - 1;
                    *index = Some(k);
                    k
                }
            };
            if let Some(slot) = res.addrs.get_mut(i) {
                *slot = Some(Location {
                    vma: k,
                    file_offset: vma.file_offset(addr),
                });
            }
        }
        // A query's answer can start below the last one's while the process changes its
        // mappings.
        res.sort_by_address();
        Ok(res)
    }

    /// Reads and parses the whole text, from offset 0 (`pread`, so `&self` suffices); an
    /// error for which [`Error::is_gone`] holds if the address space went away before or
    /// during the reads.
    fn read_text(&self) -> Result<text::Snapshot> {
        match self.read_text_prefix()? {
            (snap, false) => Ok(snap),
            (_, true) => Err(Error::gone("read")),
        }
    }

    /// As [`ProcMaps::read_text`], but if the address space went away during the reads,
    /// the VMAs read before it did, and `true`.
    ///
    /// One read at a time per handle: the kernel keeps one position per open file
    /// (`seq_file`), and a read at another offset than where the last one ended makes it
    /// format the text again from the start up to that offset (`traverse()`). Two threads
    /// reading the text chunk by chunk in turn would cost `O(n^2)` for `n` VMAs: 10 s instead
    /// of 0.1 s for 100 000 VMAs.
    ///
    /// The text of a thread's maps (see [`ProcMaps::open`]) ends with that thread: then it is
    /// read from another thread that was there at the open and still runs, if there is one.
    /// It shares the same address space: an `execve()` would have ended it.
    fn read_text_prefix(&self) -> Result<(text::Snapshot, bool)> {
        let (s, cut) = {
            let mut other = self
                .text_read
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            #[cfg(test)]
            let _reading = tests::Reading::start(&self.reads);
            // Each of the other threads is tried once at most: one may be exiting, its maps
            // then as empty as a gone address space's.
            let mut from = 0;
            loop {
                let file = other.as_ref().unwrap_or(&self.file);
                let read = text::read_whole(|buf, off| file.read_at(buf, off));
                if matches!(&read, Err(e) if e.is_gone()) || matches!(read, Ok((_, true))) {
                    if let Some((i, next)) =
                        self.threads.as_ref().and_then(|t| t.open_another(from))
                    {
                        *other = Some(next);
                        from = i + 1;
                        continue;
                    }
                }
                break read?;
            }
        };
        Ok((text::Snapshot::parse(&s)?, cut))
    }

    /// Opens the file `vma` maps, for reading (a symbolizer reads its symbols and debug
    /// information there), as the text backend opens it for a build ID
    /// ([`Query::build_id`]): through `/proc/<pid>/map_files/<start>-<end>` (the file mapped
    /// at `vma`'s exact range, also a deleted one; needs `CAP_SYS_ADMIN` or
    /// `CAP_CHECKPOINT_RESTORE`), else by its name (asked with [`Query::name`]) under
    /// `/proc/<pid>/root`, then as printed, only if the file found is the one the maps text
    /// shows for `vma`, by device and inode, checked as
    /// [`Query::build_id`] says (on btrfs and overlayfs, where the file opened can show
    /// `fstat()` another device and inode than `vma`'s: an overlay's before Linux 6.8). For
    /// maps opened through a thread (the main one exited), through the directory of one of
    /// the process's threads that still runs.
    ///
    /// `None` for anonymous memory, and for a file that cannot be opened so (one replaced
    /// at its path; without the capability, a deleted one, and on btrfs one outside a
    /// chrooted process's root; a handle from
    /// [`ProcMaps::from_fd`] on a descriptor that is not a `/proc` maps file). The file is
    /// opened read-only, `O_CLOEXEC`; reading it may block as reading any file may. A file
    /// whose `fstat()` device is anonymous and not `vma`'s (btrfs, overlayfs before 6.8) has
    /// a page mapped for a moment by the calling process to check it (see
    /// [`Query::build_id`]).
    ///
    /// ```
    /// # use procmap::{ProcMaps, Query};
    /// use std::os::unix::fs::MetadataExt;
    /// fn f() {}
    /// let maps = ProcMaps::open_self()?;
    /// let vma = maps.query(f as usize as u64, Query::new().name(true))?.expect("mapped");
    /// let file = maps.open_mapped_file(&vma).expect("our own executable");
    /// assert_eq!(file.metadata().unwrap().ino(), vma.inode);
    /// # Ok::<(), procmap::Error>(())
    /// ```
    pub fn open_mapped_file(&self, vma: &Vma) -> Option<File> {
        if !vma.file_backed() {
            return None;
        }
        self.build_ids().open(vma)
    }

    /// The build IDs of one walk, lookup or `resolve()` of the text backend.
    fn build_ids(&self) -> buildid::BuildIds {
        // Opened through a thread (the main one exited): one that still runs.
        if let Some(dir) = self.threads.as_ref().and_then(Threads::live_dir) {
            return buildid::BuildIds::new(Some(dir));
        }
        let dir = self.proc_dir.get_or_init(|| {
            // A descriptor given to from_fd(): where it was opened.
            let link = std::fs::read_link(format!("/proc/self/fd/{}", self.file.as_raw_fd()));
            proc_dir_of(&link.ok()?)
        });
        buildid::BuildIds::new(dir.clone())
    }

    /// Whether the address space is still there: one `PROCMAP_QUERY` (`ESRCH` once it is
    /// gone), or on the text backend one read of the start of the text (empty once it is
    /// gone; for maps opened through a thread, the other threads' text as the reads of the
    /// text go to it).
    pub(crate) fn still_there(&self) -> Result<bool> {
        match self.backend() {
            Backend::Text => {
                if !self.text_is_empty()? {
                    return Ok(true);
                }
                if self.threads.is_none() {
                    return Ok(false);
                }
                match self.read_text_prefix() {
                    Ok(_) => Ok(true),
                    Err(e) if e.is_gone() => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Backend::Batch | Backend::Ioctl => match self.probe_query() {
                Ok(()) | Err(libc::ENOENT) => Ok(true),
                Err(libc::ESRCH) => Ok(false),
                Err(e) => Err(Error::os(
                    "ioctl(PROCMAP_QUERY)",
                    io::Error::from_raw_os_error(e),
                )),
            },
        }
    }

    /// Whether the text is empty now (one read of its start).
    fn text_is_empty(&self) -> Result<bool> {
        text::is_empty(|buf, off| self.file.read_at(buf, off))
    }

    /// One query through the ioctl, with the any-of permission filter done in user space
    /// where the kernel lacks the extension: [`ProcMaps::ioctl_vma`] otherwise.
    fn single(&self, addr: u64, query: Query, cache: &mut WalkCache) -> Result<Option<Vma>> {
        if !query.needs_any() {
            return self.ioctl_vma(addr, query, cache);
        }
        if self.has_extension() {
            match self.ioctl_vma(addr, query, cache) {
                // The flag is unknown: the extension is gone (the module was unloaded).
                Err(e) if e.errno() == Some(libc::EINVAL) => self.lost_extension(),
                r => return r,
            }
        }
        // Without `PERM_ANY`: the kernel applies the other filters, the permissions are
        // matched here, one VMA at a time.
        let base = Query {
            flags: query.flags & !(abi::VMA_PERMS | abi::VMA_PERM_ANY),
            ..query
        };
        let or_next = query.flags & abi::COVERING_OR_NEXT_VMA != 0;
        let mut at = addr;
        loop {
            let Some(vma) = self.ioctl_vma(at, base, cache)? else {
                return Ok(None);
            };
            if perms_match(&vma, &query) {
                return Ok(Some(vma));
            }
            if !or_next || vma.end <= at {
                return Ok(None);
            }
            at = vma.end;
        }
    }

    /// One query through the ioctl, `ENOENT` as `None`, and a name longer than
    /// `PATH_MAX` taken from the text (read once per `cache`).
    ///
    /// The kernel parses the file's notes for each query that asks for a build ID (about
    /// 9 000 instructions, seven times a query without), while an ELF file's segments are
    /// mapped side by side. So after a VMA of a file the next is asked for without a build ID
    /// first, and given the last one's if it maps the same file ([`LastFile::maps`]); only a
    /// VMA of another file (or one that cannot be told apart) is asked again, with one.
    fn ioctl_vma(&self, addr: u64, query: Query, cache: &mut WalkCache) -> Result<Option<Vma>> {
        if !query.build_id {
            return self.ioctl_vma_once(addr, query, cache);
        }
        if let Some(last) = cache.last_file.take() {
            let Some(mut vma) = self.ioctl_vma_once(addr, query.build_id(false), cache)? else {
                return Ok(None);
            };
            if !vma.file_backed() {
                return Ok(Some(vma));
            }
            if last.maps(&vma) {
                vma.build_id = last.build_id;
                cache.last_file = LastFile::of(&vma);
                return Ok(Some(vma));
            }
        }
        let vma = self.ioctl_vma_once(addr, query, cache)?;
        cache.last_file = vma.as_ref().and_then(LastFile::of);
        Ok(vma)
    }

    /// [`ProcMaps::ioctl_vma`] with the build ID asked for (or not) as `query` says.
    fn ioctl_vma_once(
        &self,
        addr: u64,
        query: Query,
        cache: &mut WalkCache,
    ) -> Result<Option<Vma>> {
        // Zeroed only when asked for: a query without a name spared 4 KiB of stores.
        let mut name_store;
        let mut bid_store;
        let name: &mut [u8] = if query.name {
            name_store = [0u8; NAME_BUF];
            &mut name_store
        } else {
            &mut []
        };
        let bid: &mut [u8] = if query.build_id {
            bid_store = [0u8; BUILD_ID_BUF];
            &mut bid_store
        } else {
            &mut []
        };
        let (q, long_name) = match self.ioctl(addr, query, &mut *name, &mut *bid) {
            Ok(q) => (q, false),
            Err(libc::ENAMETOOLONG) if query.name => {
                match self.ioctl(addr, query.name(false), &mut [], &mut *bid) {
                    Ok(q) => (q, true),
                    Err(e) => return none_or_error(e),
                }
            }
            Err(e) => return none_or_error(e),
        };
        // Never trust sizes beyond the buffers given.
        let name_len = usize::try_from(q.vma_name_size).unwrap_or(usize::MAX);
        let bid_len = usize::try_from(q.build_id_size).unwrap_or(usize::MAX);
        let mut vma = Vma {
            start: q.vma_start,
            end: q.vma_end,
            perms: Perms::from_flags(q.vma_flags),
            offset: q.vma_offset,
            dev_major: q.dev_major,
            dev_minor: q.dev_minor,
            inode: q.inode,
            page_size: Some(q.vma_page_size),
            // The size includes the NUL; 0 means no name.
            name: name_len
                .checked_sub(1)
                .and_then(|n| name.get(..n))
                .filter(|_| query.name && !long_name)
                .map(<[u8]>::to_vec),
            build_id: bid
                .get(..bid_len)
                .filter(|b| query.build_id && !b.is_empty())
                .map(<[u8]>::to_vec),
        };
        if long_name {
            vma.name = cache.name_of(self, &vma)?;
        }
        Ok(Some(vma))
    }

    /// The ioctl itself; the errno on failure.
    fn ioctl(
        &self,
        addr: u64,
        query: Query,
        name: &mut [u8],
        build_id: &mut [u8],
    ) -> std::result::Result<abi::procmap_query, i32> {
        let mut q = abi::new_query();
        q.query_addr = addr;
        q.query_flags = query.wire_flags();
        if !name.is_empty() {
            q.vma_name_size = u32::try_from(name.len()).unwrap_or(u32::MAX);
            q.vma_name_addr = name.as_mut_ptr() as u64;
        }
        if !build_id.is_empty() {
            q.build_id_size = u32::try_from(build_id.len()).unwrap_or(u32::MAX);
            q.build_id_addr = build_id.as_mut_ptr() as u64;
        }
        #[cfg(test)]
        tests::IOCTLS.with(|c| c.set(c.get() + 1));
        #[cfg(test)]
        if !build_id.is_empty() {
            tests::BUILD_ID_ASKS.with(|c| c.set(c.get() + 1));
        }
        #[cfg(test)]
        // SAFETY: As for the ioctl below.
        let fake = unsafe { fake::query(&mut q) };
        #[cfg(not(test))]
        let fake: Option<std::result::Result<(), i32>> = None;
        match fake {
            Some(r) => r?,
            None => {
                // SAFETY: `q` is a valid `struct procmap_query` of the size it declares, and
                // the name and build-ID buffers it points to (if any) are exclusively borrowed
                // for the call and at least as large as the sizes given.
                let ret = unsafe {
                    libc::ioctl(
                        self.file.as_raw_fd(),
                        abi::PROCMAP_QUERY as _,
                        &mut q as *mut abi::procmap_query,
                    )
                };
                if ret != 0 {
                    return Err(io::Error::last_os_error()
                        .raw_os_error()
                        .unwrap_or(libc::EIO));
                }
            }
        }
        // The kernel writes no more than it was given; clamp anyway.
        q.vma_name_size = q.vma_name_size.min(name.len() as u32);
        q.build_id_size = q.build_id_size.min(build_id.len() as u32);
        Ok(q)
    }
}

/// `ENOENT` (no such VMA) is `None`; `ESRCH` (no address space: a kernel thread, a zombie, or
/// a process that exited or called `execve()` since the open) is [`Error::is_gone`].
fn none_or_error(errno: i32) -> Result<Option<Vma>> {
    match errno {
        libc::ENOENT => Ok(None),
        e => Err(Error::os(
            "ioctl(PROCMAP_QUERY)",
            io::Error::from_raw_os_error(e),
        )),
    }
}

/// What single queries of one walk or resolution keep between them.
#[derive(Default)]
struct WalkCache {
    /// The text, read when the ioctl first cannot give a name.
    text: Option<text::Snapshot>,
    /// The last VMA answered with a build ID asked for, if it maps a file, and the build ID
    /// the kernel gave for its file (none included).
    last_file: Option<LastFile>,
}

/// A VMA of a mapped file and the build ID the kernel gave for the file.
struct LastFile {
    dev: (u32, u32),
    inode: u64,
    name: Option<Vec<u8>>,
    /// Where the VMA ends, and its start less its offset in the file.
    end: u64,
    base: u64,
    build_id: Option<Vec<u8>>,
}

impl LastFile {
    /// The file of `vma`, if it maps one.
    fn of(vma: &Vma) -> Option<LastFile> {
        vma.file_backed().then(|| LastFile {
            dev: (vma.dev_major, vma.dev_minor),
            inode: vma.inode,
            name: vma.name.clone(),
            end: vma.end,
            base: vma.start.wrapping_sub(vma.offset),
            build_id: vma.build_id.clone(),
        })
    }

    /// Whether `vma` maps the same file, with the same contents, as far as can be told: the
    /// same device and inode (whose contents the kernel parses) of a block device, whose file
    /// system numbers its own inodes. An anonymous device (major 0) needs more: btrfs shows
    /// all its subvolumes' files with one device and numbers each subvolume's inodes from
    /// 256, and overlayfs shows a file copied up (written to) as it showed the lower one,
    /// while a VMA mapped before keeps the lower file's contents. There, the same name
    /// (asked for), and `vma` continuing the last one in the same mapping of the file: it
    /// starts where that one ends, at the offset that follows on.
    fn maps(&self, vma: &Vma) -> bool {
        vma.file_backed()
            && (vma.dev_major, vma.dev_minor) == self.dev
            && vma.inode == self.inode
            && (vma.dev_major != 0
                || (vma.name.is_some()
                    && vma.name == self.name
                    && vma.start == self.end
                    && vma.start.wrapping_sub(vma.offset) == self.base))
    }
}

impl WalkCache {
    fn name_of(&mut self, maps: &ProcMaps, vma: &Vma) -> Result<Option<Vec<u8>>> {
        let snap = match &mut self.text {
            Some(v) => v,
            None => self.text.insert(maps.read_text()?),
        };
        // The VMAs are in order without overlaps: the one that starts at `vma.start`, if
        // there is one, is the first that ends above it.
        let i = snap.first_ending_above(0, vma.start);
        Ok(snap
            .get(i)
            .filter(|t| t.start == vma.start && t.end == vma.end)
            .and_then(|t| t.name.clone()))
    }
}

impl AsFd for ProcMaps {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// The answer of [`ProcMaps::resolve`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resolution {
    /// Each VMA that holds one of the addresses, once, in address order.
    pub vmas: Vec<Vma>,
    /// For each address, in the order given: where it is, or `None`.
    pub addrs: Vec<Option<Location>>,
}

impl Resolution {
    /// The VMA and location of the `i`th address, if it was found.
    pub fn get(&self, i: usize) -> Option<(&Vma, Location)> {
        let loc = (*self.addrs.get(i)?)?;
        Some((self.vmas.get(loc.vma)?, loc))
    }

    /// Puts the VMAs in address order (by start, then end), and the addresses' indexes with
    /// them: answers found one after another come in the order of the addresses, which is
    /// that of their VMAs unless the VMAs changed between two of them.
    pub(crate) fn sort_by_address(&mut self) {
        let key = |v: &Vma| (v.start, v.end);
        if self.vmas.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
            return;
        }
        let mut order: Vec<usize> = (0..self.vmas.len()).collect();
        order.sort_by_key(|&k| self.vmas.get(k).map(key));
        let mut remap = vec![0; self.vmas.len()];
        for (new, &old) in order.iter().enumerate() {
            if let Some(r) = remap.get_mut(old) {
                *r = new;
            }
        }
        let mut old: Vec<Option<Vma>> = std::mem::take(&mut self.vmas)
            .into_iter()
            .map(Some)
            .collect();
        self.vmas = order
            .iter()
            .filter_map(|&k| old.get_mut(k)?.take())
            .collect();
        for loc in self.addrs.iter_mut().flatten() {
            if let Some(&k) = remap.get(loc.vma) {
                loc.vma = k;
            }
        }
    }
}

/// Where an address is: see [`Resolution`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Location {
    /// Index of the VMA in [`Resolution::vmas`].
    pub vma: usize,
    /// The offset in the mapped file ([`Vma::file_offset`]): `None` for anonymous memory.
    pub file_offset: Option<u64>,
}

/// Iterator over VMAs, from [`ProcMaps::iter`].
#[derive(Debug)]
pub struct Vmas<'a> {
    maps: &'a ProcMaps,
    /// The end of the last VMA given out.
    next: u64,
    query: Query,
    done: bool,
    mode: Mode,
    cache: WalkCache,
}

/// How a walk goes on, chosen at its first step from the backend.
#[derive(Debug)]
enum Mode {
    Start,
    /// Batches: the buffers, the VMAs received and not given out yet, where to resume.
    Batch(batch::Walk),
    /// One `PROCMAP_QUERY` per VMA.
    Single,
    /// The text backend's snapshot, read at the first step, the position in it, and
    /// whether the address space went away during the reads (then the snapshot holds the
    /// VMAs read before, and the walk ends with an error after them); the build IDs found.
    Text(text::Snapshot, usize, bool, Box<buildid::BuildIds>),
}

impl fmt::Debug for WalkCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalkCache")
            .field("read", &self.text.is_some())
            .field(
                "last_file",
                &self.last_file.as_ref().map(|l| (l.dev, l.inode)),
            )
            .finish()
    }
}

impl Vmas<'_> {
    fn step(&mut self) -> Result<Option<Vma>> {
        if let Mode::Start = self.mode {
            self.mode = match self.maps.backend() {
                Backend::Batch => {
                    let mut walk = batch::Walk::new(self.query);
                    walk.restart(self.next);
                    Mode::Batch(walk)
                }
                Backend::Ioctl => Mode::Single,
                Backend::Text => {
                    let (snap, cut) = self.maps.read_text_prefix()?;
                    Mode::Text(snap, 0, cut, Box::new(self.maps.build_ids()))
                }
            };
        }
        match &mut self.mode {
            Mode::Start | Mode::Single => self.maps.single(self.next, self.query, &mut self.cache),
            Mode::Batch(walk) => match walk.step(self.maps, self.query, &mut self.cache)? {
                batch::Step::Vma(v) => Ok(Some(v)),
                batch::Step::End => Ok(None),
                batch::Step::Lost(at) => {
                    // The kernel stopped answering batches: on with single queries, from
                    // where the batches got to.
                    self.maps.lost_extension();
                    self.mode = Mode::Single;
                    self.next = self.next.max(at);
                    self.maps.single(self.next, self.query, &mut self.cache)
                }
            },
            Mode::Text(snap, pos, cut, ids) => {
                // From where the last answer was: O(1) VMAs read per step.
                let Some(i) = snap.query(*pos, self.next, self.query) else {
                    // A text cut short: as a walk the address space's going cuts short.
                    return if *cut {
                        Err(Error::gone("read"))
                    } else {
                        Ok(None)
                    };
                };
                *pos = i + 1;
                Ok(snap.get(i).map(|v| text::answer(snap, v, self.query, ids)))
            }
        }
    }

    /// For a snapshot: the generation a batch walk saw throughout, if it was one, even and
    /// known, and the walk went on to its end in batches.
    pub(crate) fn batch_generation(&self) -> batch::Seen {
        match &self.mode {
            Mode::Batch(walk) => walk.seen(),
            _ => batch::Seen::NotBatch,
        }
    }
}

impl Iterator for Vmas<'_> {
    type Item = Result<Vma>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            // Each answer must end above the address asked: anything else (crafted text)
            // would loop.
            Ok(Some(vma)) if vma.end > self.next => {
                self.next = vma.end;
                Some(Ok(vma))
            }
            Ok(_) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(self.maps.named(Err(e)))
            }
        }
    }
}

impl std::iter::FusedIterator for Vmas<'_> {}

/// Applies a query's filters the way the kernel does, for the text backend.
fn matches(vma: &Vma, query: &Query) -> bool {
    (query.flags & abi::FILE_BACKED_VMA == 0 || vma.file_backed()) && perms_match(vma, query)
}

/// The permission filter of a query: all of the permissions asked for, or any of them
/// ([`Query::any_perm`], with two or more), as the extension's kernel matches them.
fn perms_match(vma: &Vma, query: &Query) -> bool {
    let flags = query.wire_flags();
    let want = Perms::from_flags(flags);
    if flags & abi::VMA_PERM_ANY != 0 {
        vma.perms.intersects(&want)
    } else {
        vma.perms.contains(&want)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::io::Write;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn paths_and_deleted_files_from_names() {
        let v = |inode: u64, name: Option<&str>| Vma {
            inode,
            name: name.map(|n| n.as_bytes().to_vec()),
            ..Vma::default()
        };
        let cases: [(Vma, Option<&str>, bool); 9] = [
            (
                v(7, Some("/usr/lib/libc.so.6")),
                Some("/usr/lib/libc.so.6"),
                false,
            ),
            (
                v(7, Some("/usr/lib/libc.so.6 (deleted)")),
                Some("/usr/lib/libc.so.6"),
                true,
            ),
            (v(7, Some("/memfd:jit (deleted)")), Some("/memfd:jit"), true),
            (v(7, Some("/dev/zero (deleted)")), Some("/dev/zero"), true),
            (
                v(7, Some("/a (deleted) (deleted)")),
                Some("/a (deleted)"),
                true,
            ),
            (v(7, Some("anon_inode:[perf_event]")), None, false),
            (v(7, None), None, false),
            (v(0, Some("[heap]")), None, false),
            (v(0, Some("[anon:x (deleted)]")), None, false),
        ];
        for (vma, path, deleted) in cases {
            assert_eq!(vma.path(), path.map(str::as_bytes), "{vma:?}");
            assert_eq!(vma.is_deleted(), deleted, "{vma:?}");
        }
    }

    #[test]
    fn perms_parse_what_display_writes() {
        for bits in 0..16u8 {
            let p = Perms {
                read: bits & 1 != 0,
                write: bits & 2 != 0,
                exec: bits & 4 != 0,
                shared: bits & 8 != 0,
            };
            assert_eq!(p.to_string().parse::<Perms>().unwrap(), p);
        }
        for bad in ["", "r-x", "r-xpp", "x--p", "r-x-", "R-xp", "rwx\u{e9}"] {
            assert!(
                matches!(bad.parse::<Perms>(), Err(Error::Parse { .. })),
                "{bad:?}"
            );
        }
    }

    /// A scripted reading of a process's `stat`: an errno for an error.
    pub(crate) type Scripted = std::result::Result<Option<ProcStat>, i32>;

    thread_local! {
        /// The errno `pidfd_open()` fails with on this thread, if set.
        pub(crate) static PIDFD_OPEN_FAILS: Cell<Option<i32>> = const { Cell::new(None) };
        /// What the pidfd's fdinfo says on this thread ([`pidfd_pid`]), if set.
        pub(crate) static PIDFD_FDINFO: Cell<Option<Option<i64>>> = const { Cell::new(None) };
        /// What the next reads of a process's `stat` ([`process_stat`]) give on this thread,
        /// in turn (an errno for an error); the real one once empty.
        pub(crate) static PROCESS_STAT: std::cell::RefCell<std::collections::VecDeque<Scripted>> =
            const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
        /// The ioctls this thread made.
        pub(crate) static IOCTLS: Cell<u64> = const { Cell::new(0) };
        /// The single queries this thread made that asked for a build ID.
        pub(crate) static BUILD_ID_ASKS: Cell<u64> = const { Cell::new(0) };
        /// The batch ioctls this thread made.
        pub(crate) static BATCHES: Cell<u64> = const { Cell::new(0) };
        /// The VMAs this thread's text lookups read ([`text::Snapshot::get`]).
        pub(crate) static PROBES: Cell<u64> = const { Cell::new(0) };
        /// The number of [`PROBES`] at which to panic.
        static PROBE_LIMIT: Cell<u64> = const { Cell::new(u64::MAX) };
    }

    /// Counts a VMA read by a text lookup; panics past the limit.
    pub(crate) fn probe() {
        let n = PROBES.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        let limit = PROBE_LIMIT.with(Cell::get);
        assert!(
            n <= limit,
            "more VMAs read than the {limit} allowed: a scan per lookup?"
        );
    }

    /// A read of the text in progress on a handle: counts the reads in progress and those
    /// that started while another was, and lingers 2 ms.
    pub(crate) struct Reading<'a>(&'a AtomicU32);

    impl<'a> Reading<'a> {
        pub(crate) fn start(reads: &'a (AtomicU32, AtomicU32)) -> Self {
            if reads.0.fetch_add(1, Ordering::SeqCst) != 0 {
                reads.1.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
            Reading(&reads.0)
        }
    }

    impl Drop for Reading<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A text backend over `text` (a memfd: the ioctl is not there, ENOTTY).
    pub(crate) fn text_maps(text: &[u8]) -> ProcMaps {
        // SAFETY: a valid C string; the result is checked.
        let fd = unsafe { libc::memfd_create(c"procmap-test".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: `fd` was just opened and is owned by nobody else.
        let mut f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        f.write_all(text).unwrap();
        let maps = ProcMaps::from_fd(f.into());
        assert_eq!(maps.backend(), Backend::Text);
        maps
    }

    /// Makes the next reads of the process start time give `starts`, in turn (the main
    /// thread sleeping).
    fn script_starts(starts: &[Option<u64>]) {
        script_stats(starts.iter().map(|s| Ok(s.map(sleeping))));
    }

    /// What `stat` says of a process started at `start`, its main thread sleeping.
    fn sleeping(start: u64) -> ProcStat {
        ProcStat { start, state: b'S' }
    }

    /// Makes the next reads of the process's `stat` give `stats`, in turn.
    fn script_stats(stats: impl IntoIterator<Item = std::result::Result<Option<ProcStat>, i32>>) {
        PROCESS_STAT.with(|s| *s.borrow_mut() = stats.into_iter().collect());
    }

    /// The reads of the process start time scripted that were not made.
    fn unread_starts() -> usize {
        PROCESS_STAT.with(|s| std::mem::take(&mut *s.borrow_mut()).len())
    }

    #[test]
    fn without_a_pidfd_reopen_tells_the_process_by_its_start_time() {
        let pid = std::process::id();
        let start = process_stat(pid).unwrap().unwrap().start;
        let no_pidfd = |starts: &[Option<u64>]| {
            script_starts(starts);
            let maps = open_with(pid, Some(libc::ENOSYS), None);
            assert_eq!(unread_starts(), 0);
            maps
        };
        let maps = no_pidfd(&[]).unwrap();
        assert!(maps.pidfd().is_none());
        assert_eq!(maps.pid(), Some(pid));
        assert!(maps.iter(Query::new()).count() > 0);
        // The same process: reopened, and the new handle can be reopened in turn.
        let again = maps.reopen().unwrap();
        assert_eq!(again.pid(), Some(pid));
        assert!(again.iter(Query::new()).count() > 0);
        assert!(again.reopen().is_ok());
        // Another start time after the reopen's open: the PID is another process's now.
        for after in [Some(start + 1), None] {
            script_starts(&[after]);
            let e = again.reopen().unwrap_err();
            assert_eq!(unread_starts(), 0);
            assert!(e.is_gone(), "{after:?}: {e}");
            assert_eq!(e.pid(), Some(pid));
        }
        // The start time changed during the open: reaped meanwhile, the open fails.
        for after in [Some(start + 1), None] {
            let e = no_pidfd(&[Some(start), after]).unwrap_err();
            assert!(e.is_gone(), "{after:?}: {e}");
        }
        // No start time either: the open works, reopen() says why it cannot. Likewise when
        // the read after the open fails for want of a file descriptor: nothing is gone.
        for starts in [
            vec![Ok(None)],
            vec![Err(libc::EMFILE)],
            vec![Ok(Some(start)), Err(libc::EMFILE)],
        ] {
            script_stats(starts.iter().map(|s| s.map(|s| s.map(sleeping))));
            let maps = open_with(pid, Some(libc::ENOSYS), None).unwrap();
            assert_eq!(unread_starts(), 0);
            let e = maps.reopen().unwrap_err();
            assert_eq!(e.errno(), Some(libc::ENOSYS), "{starts:?}: {e}");
            assert!(!e.is_gone());
        }
        // A read at the reopen that fails so is an error, not gone.
        script_stats([Err(libc::EMFILE)]);
        let e = again.reopen().unwrap_err();
        assert_eq!(unread_starts(), 0);
        assert_eq!(e.errno(), Some(libc::EMFILE), "{e}");
        assert!(!e.is_gone(), "{e}");
        // The main thread exited (a zombie) while the process has its address space
        // (`pthread_exit()` in `main()`): reopened.
        script_stats([Ok(Some(ProcStat { start, state: b'Z' }))]);
        assert!(again.reopen().is_ok());
        assert_eq!(unread_starts(), 0);
        // With a pidfd, no start time is read, and reopen() opens the same process again,
        // with the same options.
        script_starts(&[Some(start + 1)]);
        let text = Options::new().backend(Backend::Text).open(pid).unwrap();
        assert!(text.pidfd().is_some());
        let again = text.reopen().unwrap();
        assert_eq!(unread_starts(), 1);
        assert_eq!((again.backend(), again.pid()), (Backend::Text, Some(pid)));
        assert!(again.reopen().is_ok());
        // Handles not opened by PID have nothing to reopen.
        for maps in [
            ProcMaps::open_self().unwrap(),
            text_maps(b"1000-2000 r--p 0 0:0 0\n"),
        ] {
            assert_eq!(maps.pid(), None);
            assert_eq!(maps.reopen().unwrap_err().errno(), Some(libc::EINVAL));
        }
    }

    /// Opens `pid` with `pidfd_open()` failing with `open_errno` (if set) and the pidfd's
    /// fdinfo saying `fdinfo` (if set).
    fn open_with(
        pid: u32,
        open_errno: Option<i32>,
        fdinfo: Option<Option<i64>>,
    ) -> Result<ProcMaps> {
        PIDFD_OPEN_FAILS.with(|f| f.set(open_errno));
        PIDFD_FDINFO.with(|f| f.set(fdinfo));
        let maps = ProcMaps::open(pid);
        PIDFD_OPEN_FAILS.with(|f| f.set(None));
        PIDFD_FDINFO.with(|f| f.set(None));
        maps
    }

    /// A thread of ours: its ID, what stops it, and its handle.
    fn spawn_thread() -> (
        u32,
        std::sync::mpsc::Sender<()>,
        std::thread::JoinHandle<()>,
    ) {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::spawn(move || {
            // SAFETY: a system call without arguments.
            let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
            tx.send(tid).unwrap();
            let _ = stop_rx.recv();
        });
        (rx.recv().unwrap(), stop_tx, h)
    }

    #[test]
    fn a_thread_id_has_no_pidfd_and_no_start_time_to_reopen_by() {
        let (tid, stop_tx, h) = spawn_thread();
        let maps = ProcMaps::open(tid).unwrap();
        assert!(maps.pidfd().is_none());
        assert!(maps.iter(Query::new()).count() > 0);
        let e = maps.reopen().unwrap_err();
        assert!(!e.is_gone(), "{e}");
        assert!(
            matches!(e.errno(), Some(libc::ENOENT | libc::EINVAL)),
            "{e}"
        );
        stop_tx.send(()).unwrap();
        h.join().unwrap();
    }

    #[test]
    fn the_open_never_fails_for_the_pidfd_machinery() {
        let pid = std::process::id();
        // The fdinfo of a real pidfd shows the PID of /proc/<pid>.
        let fd = pidfd_open(pid).unwrap();
        assert_eq!(pidfd_pid(&fd), Some(i64::from(pid)));
        // Each way of having no pidfd: the open works, and so does reopen(), by the start
        // time; without a start time either, reopen() fails with why there is no pidfd, and
        // not as is_gone().
        let check = |open: &dyn Fn() -> Result<ProcMaps>, errno: i32, what: &str| {
            let maps = open().unwrap();
            assert!(maps.pidfd().is_none(), "{what}");
            assert!(maps.iter(Query::new()).count() > 0);
            assert!(maps.reopen().is_ok(), "{what}");
            script_starts(&[None]);
            let maps = open().unwrap();
            assert_eq!(unread_starts(), 0);
            let e = maps.reopen().unwrap_err();
            assert!(!e.is_gone(), "{what}: {e}");
            assert_eq!(e.errno(), Some(errno), "{what}: {e}");
            e
        };
        // The pidfd cannot be tied to /proc/<pid>: fdinfo unreadable (no Pid: line before
        // 5.10), 0 (not visible in the /proc mount's namespace), another PID (another
        // namespace).
        for fdinfo in [None, Some(0), Some(i64::from(pid) + 1)] {
            let open = || open_with(pid, None, Some(fdinfo));
            check(&open, libc::EOPNOTSUPP, &format!("fdinfo {fdinfo:?}"));
        }
        // pidfd_open() failing, whatever the errno (seccomp's EACCES, a thread ID's ENOENT,
        // and ESRCH for a PID of another namespace).
        for errno in [libc::EACCES, libc::ENOENT, libc::EPERM, libc::ESRCH] {
            let want = if errno == libc::ESRCH {
                libc::EOPNOTSUPP
            } else {
                errno
            };
            let open = || open_with(pid, Some(errno), None);
            check(&open, want, &format!("pidfd_open() errno {errno}"));
        }
        // -1: reaped between pidfd_open() and the open of the maps (PID reuse): is_gone().
        let e = open_with(pid, None, Some(Some(-1))).unwrap_err();
        assert!(e.is_gone(), "{e}");
        // Turned off: no pidfd.
        let open = || Options::new().pidfd(false).open(pid);
        let e = check(&open, libc::EOPNOTSUPP, "turned off");
        assert!(e.to_string().contains("Options::pidfd"), "{e}");
    }

    #[test]
    fn build_ids_of_a_handle_opened_through_a_thread_go_through_a_live_one() {
        // Two threads of ours stand for those of a process whose main thread exited: the
        // handle is opened through the first; once it exits, the build IDs are looked up
        // in the second's directory (the first's map_files and root fail).
        let pid = std::process::id();
        let (first, stop_first, h_first) = spawn_thread();
        let (second, stop_second, h_second) = spawn_thread();
        let path = format!("/proc/{pid}/task/{first}/maps");
        let mut maps = Options::new()
            .backend(Backend::Text)
            .open_path(path.as_ref())
            .unwrap();
        maps.threads = Some(Threads {
            pid,
            threads: [first, second]
                .iter()
                .map(|&t| (t, thread_start(pid, t).unwrap()))
                .collect(),
        });
        let dir = |t: u32| PathBuf::from(format!("/proc/{pid}/task/{t}"));
        assert_eq!(maps.build_ids().dir(), Some(&*dir(first)));
        drop(stop_first);
        h_first.join().unwrap();
        // The join returns before the task is released.
        for _ in 0..3000 {
            if !dir(first).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(maps.build_ids().dir(), Some(&*dir(second)));
        drop(stop_second);
        h_second.join().unwrap();
    }

    #[test]
    fn crafted_text_does_not_panic_or_loop() {
        let maps = text_maps(
            b"1000-3000 r--p fffffffffffff000 08:01 5 /overflowing\n\
              a000-b000 r--p 00000000 00:00 0\n",
        );
        // The file offset of 0x2fff does not fit in 64 bits.
        let r = maps
            .resolve(&[0x1000, 0x2fff, u64::MAX], Query::new())
            .unwrap();
        let off = |i: usize| r.addrs[i].map(|l| l.file_offset);
        assert_eq!(off(0), Some(Some(u64::MAX - 0xfff)));
        assert_eq!(off(1), Some(None));
        assert_eq!(off(2), None);
        // A walk over crafted text ends.
        let maps =
            text_maps(b"1000-5000 r--p 0 0:0 0\n2000-3000 r--p 0 0:0 0\n9000-8000 r--p 0 0:0 0\n");
        let n = maps.iter(Query::new()).take(10).count();
        assert!(n < 10, "the walk loops");
    }

    /// Synthetic maps text: `n` one-page VMAs with one-page gaps between them, from 0x10000
    /// on; every third is anonymous and writable, the others map a file, executable.
    fn synthetic(n: u64) -> Vec<u8> {
        let mut t = Vec::new();
        for i in 0..n {
            let (s, e) = (0x10000 + i * 0x2000, 0x11000 + i * 0x2000);
            let line = if i % 3 == 0 {
                format!("{s:x}-{e:x} rw-p 00000000 00:00 0\n")
            } else {
                format!("{s:x}-{e:x} r-xp 00001000 08:01 {i} /lib/x{i}\n")
            };
            t.extend(line.bytes());
        }
        t
    }

    /// Runs `f`, which may make the text lookups of this thread read at most `budget` VMAs
    /// (one more panics, so that a quadratic lookup fails at once instead of running for
    /// minutes), and gives its result and the number read.
    fn reading_at_most<T>(budget: u64, f: impl FnOnce() -> T) -> (T, u64) {
        let before = PROBES.with(Cell::get);
        PROBE_LIMIT.with(|l| l.set(before + budget));
        let t = f();
        PROBE_LIMIT.with(|l| l.set(u64::MAX));
        (t, PROBES.with(Cell::get) - before)
    }

    /// Deterministic, not timed: counts the VMAs the text backend's lookups read. A scan
    /// per lookup, as the text backend once had (the command then took 2.3 s to list 65 503
    /// VMAs), reads about `n^2 / 2` VMAs for a walk or a `resolve()` of `n`, and fails here
    /// within its first few hundred steps.
    #[test]
    fn text_lookups_read_o_log_n_vmas() {
        const N: u64 = 100_000;
        /// VMAs read per step of a walk or per address, at most: a binary search of
        /// 100 000 VMAs reads 17, a walk 3 or 4 per step.
        const PER: u64 = 40;
        let maps = text_maps(&synthetic(N));
        let exec = Query::new().executable(true).file_backed(true);
        // Walks: all VMAs, and only the executable ones (each anonymous VMA rejected once).
        for (q, want) in [(Query::new(), N), (exec, N - N.div_ceil(3))] {
            let (n, read) = reading_at_most(PER * N, || {
                let mut n = 0u64;
                for v in maps.iter(q.name(true)) {
                    v.unwrap();
                    n += 1;
                }
                n
            });
            assert_eq!(n, want, "flags {:#x}", q.flags());
            eprintln!("walk of {n} VMAs, flags {:#x}: {read} VMAs read", q.flags());
            assert!(read <= PER * want, "{read} VMAs read for a walk of {n}");
        }
        // resolve(): an address in each VMA and in each gap (2N addresses), scrambled.
        let addrs: Vec<u64> = (0..2 * N)
            .map(|i| 0x10000 + (i * 7919 % (2 * N)) * 0x1000 + 8)
            .collect();
        for (q, want) in [(Query::new(), N), (exec, N - N.div_ceil(3))] {
            let (r, read) = reading_at_most(PER * N, || maps.resolve(&addrs, q).unwrap());
            let found = r.addrs.iter().flatten().count() as u64;
            assert_eq!((found, r.vmas.len() as u64), (want, want));
            eprintln!(
                "resolve of {} addresses, flags {:#x}: {read} VMAs read",
                2 * N,
                q.flags()
            );
            assert!(
                read <= PER * N,
                "{read} VMAs read to resolve {} addresses",
                2 * N
            );
        }
        // Single queries: a search, not a scan, also for the last VMA.
        let last = 0x10000 + (N - 1) * 0x2000;
        for (addr, q, want) in [
            (last + 8, Query::new(), Some(last)),
            (last - 0x1000, Query::new(), None),
            (last - 0x1000, Query::new().or_next(true), Some(last)),
            (0, exec.or_next(true), Some(0x12000)),
            (u64::MAX, Query::new().or_next(true), None),
        ] {
            let (v, read) = reading_at_most(2 * PER, || maps.query(addr, q).unwrap());
            assert_eq!(v.map(|v| v.start), want, "{addr:#x} flags {:#x}", q.flags());
            assert!(read <= 2 * PER, "{read} VMAs read for one query");
        }
    }

    /// The text of one handle is read by one thread at a time (see `ProcMaps::read_text`).
    /// Each read lingers 2 ms in test builds, so reads that did not take turns would overlap.
    #[test]
    fn text_reads_on_one_handle_take_turns() {
        let maps = text_maps(&synthetic(2000));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..20 {
                        assert_eq!(maps.iter(Query::new()).count(), 2000);
                    }
                });
            }
        });
        let (started, overlapped) = (&maps.reads.0, &maps.reads.1);
        assert_eq!(started.load(Ordering::SeqCst), 0);
        assert_eq!(overlapped.load(Ordering::SeqCst), 0, "reads overlapped");
    }

    #[test]
    fn any_of_flags_are_sent_only_where_they_mean_something() {
        let rw = Perms {
            read: true,
            write: true,
            ..Default::default()
        };
        let any = Query::new().perms_any(rw);
        assert!(any.any_perm_wanted() && any.needs_any());
        assert_eq!(any.flags() & abi::VMA_PERM_ANY, abi::VMA_PERM_ANY);
        assert_eq!(
            any.batch_flags(),
            abi::VMA_PERM_ANY | abi::VMA_READABLE | abi::VMA_WRITABLE
        );
        // perms() goes back to all-of; one permission is all-of; none is no filter.
        assert!(!any.perms(rw).any_perm_wanted());
        let one = Query::new().writable(true).any_perm(true);
        assert_eq!(one.wire_flags(), abi::VMA_WRITABLE);
        assert!(!one.needs_any() && one.filters());
        let none = Query::new().any_perm(true).or_next(true);
        assert_eq!(none.wire_flags(), abi::COVERING_OR_NEXT_VMA);
        assert!(!none.filters());
        // A batch never gets COVERING_OR_NEXT_VMA.
        assert_eq!(any.or_next(true).batch_flags(), any.batch_flags());
    }

    #[test]
    fn any_of_in_the_text_backend() {
        let maps = text_maps(
            b"1000-2000 r--p 0 0:0 0\n\
              2000-3000 rw-p 0 0:0 0\n\
              3000-4000 r-xp 0 08:01 5 /lib/x\n\
              4000-5000 ---p 0 0:0 0\n\
              5000-6000 r--s 0 08:01 6 /dev/shm/y\n\
              6000-7000 -w-p 0 0:0 0\n",
        );
        let mut p = Perms {
            write: true,
            exec: true,
            ..Default::default()
        };
        let starts = |q: Query| -> Vec<u64> { maps.iter(q).map(|v| v.unwrap().start).collect() };
        assert_eq!(starts(Query::new().perms_any(p)), [0x2000, 0x3000, 0x6000]);
        assert_eq!(starts(Query::new().perms(p)), Vec::<u64>::new());
        p.shared = true;
        assert_eq!(
            starts(Query::new().perms_any(p).file_backed(true)),
            [0x3000, 0x5000]
        );
        // Single queries and resolve() agree.
        let q = Query::new().perms_any(p);
        assert_eq!(maps.query(0x1000, q).unwrap(), None);
        assert_eq!(
            maps.query(0x1000, q.or_next(true))
                .unwrap()
                .map(|v| v.start),
            Some(0x2000)
        );
        assert_eq!(
            maps.query(0x4800, q.or_next(true))
                .unwrap()
                .map(|v| v.start),
            Some(0x5000)
        );
        let r = maps.resolve(&[0x1000, 0x2800, 0x4000, 0x6fff], q).unwrap();
        let found: Vec<Option<u64>> = (0..4).map(|i| r.get(i).map(|(v, _)| v.start)).collect();
        assert_eq!(found, [None, Some(0x2000), None, Some(0x6000)]);
    }

    #[test]
    fn open_mapped_file_gives_the_mapped_file_or_none() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("procmap-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mapped");
        std::fs::write(&path, [7u8; 4096]).unwrap();
        let file = File::open(&path).unwrap();
        let ino = file.metadata().unwrap().ino();
        // SAFETY: a new private read-only mapping of a one-page file and one of anonymous
        // memory, both unmapped below and not touched otherwise.
        let (mapped, anon) = unsafe {
            let mapped = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            );
            let anon = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            (mapped, anon)
        };
        assert!(mapped != libc::MAP_FAILED && anon != libc::MAP_FAILED);
        // Another file at its path now: never the one opened.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, [8u8; 4096]).unwrap();
        // SAFETY: a system call without arguments.
        let root = unsafe { libc::geteuid() } == 0;
        for backend in [Backend::Batch, Backend::Ioctl, Backend::Text] {
            let mut maps = ProcMaps::open_self().unwrap();
            if backend == Backend::Batch && maps.backend() != Backend::Batch {
                continue; // no extension here
            }
            maps.set_backend(backend);
            let q = Query::new().name(true);
            let vma = maps.query(mapped as u64, q).unwrap().unwrap();
            assert_eq!(vma.inode, ino);
            match maps.open_mapped_file(&vma) {
                // Through map_files: the deleted file itself.
                Some(f) => assert_eq!(f.metadata().unwrap().ino(), ino, "{backend:?}"),
                None => assert!(!root, "{backend:?}: root may open map_files"),
            }
            let vma = maps.query(anon as u64, q).unwrap().unwrap();
            assert!(maps.open_mapped_file(&vma).is_none(), "{backend:?}");
        }
        // SAFETY: the mappings made above, used no more.
        unsafe {
            libc::munmap(mapped, 4096);
            libc::munmap(anon, 4096);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resolve_above_the_last_vma_is_not_one_query_each() {
        // Kernel addresses in a stack: none is mapped, and one query says so for all.
        let mut addrs: Vec<u64> = (0..100_000).map(|i| u64::MAX - i * 8).collect();
        addrs.push(0);
        for backend in [Backend::Ioctl, Backend::Batch] {
            let mut maps = ProcMaps::open_self().unwrap();
            if backend == Backend::Batch && maps.backend() != Backend::Batch {
                continue; // no extension here
            }
            maps.set_backend(backend);
            let calls = || IOCTLS.with(Cell::get) + BATCHES.with(Cell::get);
            let before = calls();
            let r = maps.resolve(&addrs, Query::new()).unwrap();
            assert!(r.addrs.iter().all(|r| r.is_none()));
            let n = calls() - before;
            // Single queries: one says nothing is above. The batch lookup answers every
            // distinct address, 16384 a call.
            let most = match backend {
                Backend::Batch => addrs.len().div_ceil(batch::ADDRS) as u64,
                _ => 2,
            };
            assert!(n <= most, "{backend:?}: {n} ioctls");
        }
    }

    #[test]
    fn single_queries_ask_for_a_files_build_id_once_per_run_of_its_vmas() {
        let mut maps = ProcMaps::open_self().unwrap();
        if maps.backend() == Backend::Text {
            assert!(
                std::env::var_os("PROCMAP_REQUIRE_IOCTL").is_none(),
                "no PROCMAP_QUERY here"
            );
            eprintln!("skipped: no PROCMAP_QUERY here");
            return;
        }
        maps.set_backend(Backend::Ioctl);
        // 64 VMAs side by side of one file with a build ID (this test program): every
        // other page of a mapping of it readable.
        let exe = File::open("/proc/self/exe").unwrap();
        let pages = 64usize.min(exe.metadata().unwrap().len() as usize / 4096);
        assert!(pages >= 16, "{pages} pages");
        // SAFETY: a new private mapping of our own program, changed below only by
        // `mprotect()`, unmapped at the end and not touched otherwise.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                pages * 4096,
                libc::PROT_NONE,
                libc::MAP_PRIVATE,
                exe.as_raw_fd(),
                0,
            )
        };
        assert!(p != libc::MAP_FAILED);
        for i in (0..pages).step_by(2) {
            // SAFETY: a page of the mapping made above.
            let r = unsafe {
                libc::mprotect(p.cast::<u8>().add(i * 4096).cast(), 4096, libc::PROT_READ)
            };
            assert_eq!(r, 0);
        }
        let start = p as u64;
        let end = start + (pages * 4096) as u64;
        // With names: on a file system without a block device (btrfs) the device and inode
        // alone do not tell files apart.
        let q = Query::new().name(true).build_id(true);
        let asks = || BUILD_ID_ASKS.with(Cell::get);
        let before = asks();
        let walked: Vec<Vma> = maps
            .iter_from(start, q)
            .map(|v| v.unwrap())
            .take_while(|v| v.start < end)
            .collect();
        let walk_asks = asks() - before;
        let before = asks();
        let addrs: Vec<u64> = walked.iter().map(|v| v.start).collect();
        let resolved = maps.resolve(&addrs, q).unwrap();
        let resolve_asks = asks() - before;
        // The kernel's answer for each, asked alone.
        let alone: Vec<Vma> = walked
            .iter()
            .map(|v| maps.query(v.start, q).unwrap().unwrap())
            .collect();
        // SAFETY: the mapping made above, used no more.
        unsafe { libc::munmap(p, pages * 4096) };
        assert_eq!(walked.len(), pages);
        assert!(alone.iter().all(|v| v.build_id.is_some()), "{alone:?}");
        assert_eq!(walked, alone);
        assert_eq!(resolved.vmas, alone);
        // One for the first VMA of the file, the others take its build ID (and the walk one
        // for the VMA after them, which `take_while()` reads).
        assert!(
            walk_asks <= 2 && resolve_asks == 1,
            "{walk_asks} {resolve_asks}"
        );
    }
}

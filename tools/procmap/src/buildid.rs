//! ELF build IDs of mapped files, for the text backend (kernels before 6.11, which have no
//! `PROCMAP_QUERY` to ask for them): the file of a VMA is opened through
//! `/proc/<pid>/map_files/<start>-<end>`, else by the VMA's path under `/proc/<pid>/root`
//! (without following a symlink, the root's own path taken off a chrooted process's
//! paths), else as printed, checked to be the one the maps text shows for the VMA (the
//! device and inode that `fstat()` gives or, except as printed, where `fstat()`'s device is
//! an anonymous one that the maps text does not show, as on btrfs and on overlayfs before
//! Linux 6.8, those the maps text shows for a mapping of the file made here), and its
//! `NT_GNU_BUILD_ID` note parsed the way the kernel's `lib/buildid.c` parses it, so that
//! both backends give the same build IDs. A file that cannot be opened (deleted, without
//! `map_files`) is read in the process's memory, where its pages are present
//! ([`BuildIds::of_in`]).
//!
//! What is matched, from `lib/buildid.c` (Linux 6.12 and later, whose `PROCMAP_QUERY` reads the
//! file with `__kernel_read()`, faulting pages in as needed):
//!
//! - the file must start with `\x7fELF` and be `ET_EXEC` or `ET_DYN`; `ELFCLASS32` and
//!   `ELFCLASS64`; the header fields in the machine's byte order, whatever `EI_DATA` says (the
//!   kernel does the same: a file of the other byte order has no build ID from either);
//! - at most the first 256 program headers; each `PT_NOTE` in turn, its notes stepped with
//!   4-byte alignment of name and descriptor (also in segments aligned to 8, as the kernel
//!   does: for the notes linkers write there, whose sizes are multiples of 8, both give the
//!   same offsets), a note region that does not fit in 32 bits skipped;
//! - the first note of type 3 named `"GNU\0"` (name size 4) with a descriptor of 1 to 20
//!   bytes; a read past the end of the file ends the search in a note segment (the next
//!   segment is tried) or, for the headers, the whole parse.
//!
//! Linux 6.11's `PROCMAP_QUERY` read only the file's first page, and only from the page
//! cache: it gave no build ID where the note lies beyond the first page or the page was not
//! cached; this reads the file.
//!
//! Where this deviates from the kernel, which scans every note of every `PT_NOTE`: a file is
//! attacker-controlled input for a profiler running as root (any process can map any file
//! it can read, a sparse one of 4 GiB included), and 256 note segments each spanning up to
//! 4 GiB of 12-byte notes would take hours to scan. So a `PT_NOTE` with the same (offset,
//! size) as one already scanned is skipped (it can only give the same answer), and at most
//! [`NOTE_BYTES_MAX`] (1 MiB) are spent per file, in all its segments together, and
//! [`WALK_NOTE_BYTES_MAX`] (16 MiB) in all the files of a walk: bytes of notes stepped
//! through and bytes of the file read past its first 4 KiB (read whole at once; past them
//! the file is read in chunks of 64 KiB, each paid for whole), but for notes within the
//! first 4 KiB, up to [`FREE_NOTE_BYTES`] (4 KiB) of them per file. A build ID note after
//! that is not found. Linkers put it first or nearly (`.note.gnu.build-id` comes right after
//! the headers, after at most a `.note.gnu.property` and a `.note.ABI-tag` of a few dozen
//! bytes), so a process that spends the walk's budget with files of its own does not take
//! the build IDs of the others (its executable's, libc's).

use crate::Vma;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, TryLockError};

/// `BUILD_ID_SIZE_MAX`: the longest build ID the kernel gives.
pub(crate) const SIZE_MAX: usize = 20;
/// `MAX_PHDR_CNT`: the program headers looked at.
const MAX_PHDRS: u64 = 256;
const PT_NOTE: u32 = 4;
const NT_GNU_BUILD_ID: u32 = 3;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
/// The part of the file read at once; the rest is read as needed.
const HEAD: usize = 4096;
/// The part of the file read at once past [`HEAD`], as needed.
const CHUNK: usize = 64 << 10;
/// What a parse may spend per file ([`parse_within`]): bytes of notes stepped through and of
/// the file read past its first 4 KiB, over all its note segments (the kernel has no such
/// limit; see the module's documentation).
pub(crate) const NOTE_BYTES_MAX: u64 = 1 << 20;
/// What the parses of one walk may spend, over all its files, as [`NOTE_BYTES_MAX`] per file:
/// a process mapping thousands of files of [`NOTE_BYTES_MAX`] bytes of empty notes each cost
/// a walk seconds (5 000 of them: 3.5 s), and files whose notes are scattered over the file
/// a read of 64 KiB per note (300 files: 7.5 s); files whose build ID comes first, as
/// linkers put it, spend nothing.
pub(crate) const WALK_NOTE_BYTES_MAX: u64 = 16 << 20;
/// The bytes of notes within the first 4 KiB of each file (read at once) stepped through
/// without paying ([`parse_within`]): a file whose build ID comes first or nearly (as linkers
/// put it) is parsed however much other files of the walk spent. At most 256 steps per file,
/// from memory: over 262 144 VMAs (a raised `vm.max_map_count`), about a second.
pub(crate) const FREE_NOTE_BYTES: u64 = 4 << 10;

/// Reads `len` bytes at `off` of an ELF file, whole or not at all.
pub(crate) trait Fetch {
    /// The bytes, or `None` if they cannot all be read (past the end of the file, an error).
    fn fetch(&mut self, off: u64, len: usize) -> Option<&[u8]>;
    /// The bytes read so far past the first [`HEAD`], which every parse reads (as asked of
    /// the file: a read at its end may give fewer). None for bytes in memory.
    fn read_past_head(&self) -> u64 {
        0
    }
}

/// `len` bytes at `off` of `b`, if it has them.
fn slice_at(b: &[u8], off: u64, len: usize) -> Option<&[u8]> {
    let start = usize::try_from(off).ok()?;
    b.get(start..start.checked_add(len)?)
}

impl Fetch for &[u8] {
    fn fetch(&mut self, off: u64, len: usize) -> Option<&[u8]> {
        slice_at(self, off, len)
    }
}

/// A file, its first [`HEAD`] bytes read at once (the headers and, in most files, the notes),
/// the rest in chunks of [`CHUNK`] bytes as needed.
struct FileReader<'a> {
    file: &'a File,
    head: Vec<u8>,
    /// The head is all of the file.
    whole: bool,
    /// The chunk last read (its first `chunk_len` bytes), and its offset in the file.
    chunk: Vec<u8>,
    chunk_len: usize,
    chunk_off: u64,
    /// The reads of the file made.
    reads: u64,
    /// [`Fetch::read_past_head`].
    past_head: u64,
}

impl<'a> FileReader<'a> {
    fn new(file: &'a File) -> Option<Self> {
        let mut head = vec![0u8; HEAD];
        let n = read_file(file, &mut head, 0)?;
        head.truncate(n);
        Some(FileReader {
            file,
            whole: n < HEAD,
            head,
            chunk: Vec::new(),
            chunk_len: 0,
            chunk_off: 0,
            reads: 1,
            past_head: 0,
        })
    }
}

/// Reads into `buf` at `off` of a mapped file until it is full or the file ends: the bytes
/// read. Without waiting on the file's locks: a read may wait on the inode's I/O lock (XFS
/// takes it for every read), which any user who may write the file can hold for as long as
/// they like (a `write()` from a buffer whose page fault a `userfaultfd` or FUSE server of
/// theirs never answers), and such a wait cannot be killed. So it reads with
/// `RWF_NOWAIT` (Linux 4.14), and where that would have to wait (`EAGAIN`: the lock is
/// taken, or the pages are not in the page cache) or the file system has no `RWF_NOWAIT`
/// (`EOPNOTSUPP`: overlayfs, over XFS in many containers), through a mapping of the file
/// ([`read_mapped`]), whose page faults take no such lock; where that fails, the usual
/// read, which can wait so.
fn read_file(file: &File, buf: &mut [u8], off: u64) -> Option<usize> {
    let mut n = 0;
    while n < buf.len() {
        let at = off.checked_add(n as u64)?;
        let rest = buf.get_mut(n..)?;
        let iov = libc::iovec {
            iov_base: rest.as_mut_ptr().cast(),
            iov_len: rest.len(),
        };
        let pos = libc::off_t::try_from(at).ok()?;
        // SAFETY: a valid descriptor, and one iovec of `rest`, exclusively borrowed.
        let k = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, pos, libc::RWF_NOWAIT) };
        #[cfg(test)]
        let k = if tests::NOWAIT_FAILS.with(std::cell::Cell::get) {
            // SAFETY: sets this thread's errno, as a failed call would.
            unsafe { *libc::__errno_location() = libc::EAGAIN };
            -1
        } else {
            k
        };
        match usize::try_from(k) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => {}
                // Would wait, or no RWF_NOWAIT (overlayfs, whose reads take the lock of
                // the file under it, has none): through a mapping, and where that cannot
                // be made or copied from (a seccomp filter refusing process_vm_readv(),
                // an LSM refusing the mapping), the usual read.
                Some(libc::EAGAIN | libc::EOPNOTSUPP | libc::ENOSYS) => {
                    n += match read_mapped(file, rest, at) {
                        Ok(k) => k,
                        Err(_) => read_full(file, rest, at)?,
                    };
                    break;
                }
                _ => return None,
            },
        }
    }
    Some(n)
}

/// Reads into `buf` the bytes at `off` of `file`, up to its end, through a shared read-only
/// mapping of them, copied with `process_vm_readv()` from our own memory: its page faults
/// read the file into the page cache without the inode's I/O lock, and a page that cannot
/// be read (the file truncated meanwhile) ends the copy with `EFAULT` where an access would
/// raise `SIGBUS`. The bytes read; the error of `mmap()`, or of `process_vm_readv()` if it
/// copied nothing.
fn read_mapped(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    let einval = || io::Error::from_raw_os_error(libc::EINVAL);
    let size = file.metadata()?.len();
    let len = usize::try_from(size.saturating_sub(off))
        .unwrap_or(usize::MAX)
        .min(buf.len());
    if len == 0 {
        return Ok(0);
    }
    // SAFETY: sysconf() has no preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).map_err(|_| einval())?;
    let delta = off % page;
    let start = off - delta;
    let map_len = usize::try_from(delta)
        .ok()
        .and_then(|d| d.checked_add(len))
        .ok_or_else(einval)?;
    let start = libc::off_t::try_from(start).map_err(|_| einval())?;
    // SAFETY: a new shared read-only mapping of the file at an address the kernel chooses;
    // nothing else refers to it.
    let at = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            start,
        )
    };
    if at == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let mut n = 0;
    let mut failed = None;
    while n < len {
        let local = libc::iovec {
            iov_base: buf[n..len].as_mut_ptr().cast(),
            iov_len: len - n,
        };
        let remote = libc::iovec {
            // Within the mapping: `delta + n < map_len`.
            iov_base: at.cast::<u8>().wrapping_add(delta as usize + n).cast(),
            iov_len: len - n,
        };
        // SAFETY: copies from our own mapping (checked by the kernel, which answers EFAULT
        // for a page that cannot be read) into `buf`, exclusively borrowed.
        let k = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
        #[cfg(test)]
        let k = if tests::VM_READV_FAILS.with(std::cell::Cell::get) {
            // SAFETY: sets this thread's errno, as a refused call would.
            unsafe { *libc::__errno_location() = libc::EPERM };
            -1
        } else {
            tests::MAPPED_READS.with(|c| c.set(c.get() + 1));
            k
        };
        match usize::try_from(k) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    failed = Some(e);
                    break;
                }
            }
        }
    }
    // SAFETY: the mapping made above, of `map_len` bytes; nothing refers to it any more.
    unsafe { libc::munmap(at, map_len) };
    match failed {
        // A page that cannot be read (past a truncation) ends what can be: the bytes
        // before it.
        Some(e) if n == 0 && e.raw_os_error() != Some(libc::EFAULT) => Err(e),
        _ => Ok(n),
    }
}

/// Reads into `buf` at `off` until it is full or the file ends: the bytes read.
fn read_full(file: &File, buf: &mut [u8], off: u64) -> Option<usize> {
    let mut n = 0;
    while n < buf.len() {
        let at = off.checked_add(n as u64)?;
        match file.read_at(buf.get_mut(n..)?, at) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(n)
}

impl Fetch for FileReader<'_> {
    fn fetch(&mut self, off: u64, len: usize) -> Option<&[u8]> {
        let end = off.checked_add(len as u64)?;
        if end <= self.head.len() as u64 || self.whole {
            return slice_at(&self.head, off, len);
        }
        let chunk_end = self.chunk_off.checked_add(self.chunk_len as u64)?;
        if off < self.chunk_off || end > chunk_end {
            // Paid for whole, read or not (a failed read too).
            let size = CHUNK.max(len);
            self.reads += 1;
            self.past_head = self.past_head.saturating_add(size as u64);
            if self.chunk.len() < size {
                self.chunk.resize(size, 0);
            }
            let n = read_file(self.file, self.chunk.get_mut(..size)?, off);
            self.chunk_len = n.unwrap_or(0);
            self.chunk_off = off;
        }
        slice_at(self.chunk.get(..self.chunk_len)?, off - self.chunk_off, len)
    }

    fn read_past_head(&self) -> u64 {
        self.past_head
    }
}

/// A mapped file read through the memory of the process that maps it (`/proc/<pid>/mem`),
/// at file offsets: the bytes at offset `off` are those its VMAs of that file (`segments`)
/// show at `start + off - offset`, where one of them covers the whole range asked. Only
/// pages of the file present in the process's memory are read, as `/proc/<pid>/pagemap`
/// says, so that a read does not fault a page in (which could wait on a FUSE server or a
/// dead NFS one), unless the process replaced the VMA in between ([`BuildIds::in_memory`]).
struct MemReader<'a> {
    mem: &'a Memory,
    /// (file offset, start, end) of each read-only VMA of the file.
    segments: Vec<(u64, u64, u64)>,
    /// The bytes read first, at offset 0 (up to [`HEAD`] of them, as [`FileReader`] reads its
    /// head), kept; whether that read was made.
    head: Vec<u8>,
    head_read: bool,
    /// The bytes last read after that, and their file offset.
    chunk: Vec<u8>,
    chunk_off: u64,
    /// The reads made after the head's (or tried: a range not mapped, or not present).
    reads: u64,
    /// [`Fetch::read_past_head`].
    past_head: u64,
}

impl Fetch for MemReader<'_> {
    fn fetch(&mut self, off: u64, len: usize) -> Option<&[u8]> {
        let end = off.checked_add(len as u64)?;
        if self.head_read && end <= self.head.len() as u64 {
            return slice_at(&self.head, off, len);
        }
        let chunk_end = self.chunk_off.checked_add(self.chunk.len() as u64)?;
        if off < self.chunk_off || end > chunk_end {
            // The first read, of the head, is every parse's; any other is paid for as a
            // chunk, read or not.
            let first = !self.head_read && off == 0;
            self.head_read = true;
            let size = if first { HEAD } else { CHUNK };
            if !first {
                self.reads += 1;
                self.past_head = self.past_head.saturating_add(size.max(len) as u64);
            }
            let &(offset, start, vma_end) = self
                .segments
                .iter()
                .find(|&&(o, s, e)| o <= off && end.checked_sub(o).is_some_and(|n| n <= e - s))?;
            let addr = start + (off - offset);
            // Within the VMA and its pages present from `addr` on.
            let want = (size.max(len) as u64).min(vma_end - addr);
            let present = self.mem.present(addr, want)?;
            if present < len as u64 {
                return None;
            }
            let buf = if first {
                &mut self.head
            } else {
                &mut self.chunk
            };
            buf.clear();
            buf.resize(usize::try_from(present).ok()?, 0);
            let n = read_full(&self.mem.mem, buf, addr).unwrap_or(0);
            buf.truncate(n);
            if first {
                return slice_at(&self.head, off, len);
            }
            self.chunk_off = off;
        }
        slice_at(&self.chunk, off - self.chunk_off, len)
    }

    fn read_past_head(&self) -> u64 {
        self.past_head
    }
}

/// `/proc/<pid>/mem` and `/proc/<pid>/pagemap` of a process, opened, and its VMAs when they
/// were.
#[derive(Debug)]
struct Memory {
    mem: File,
    pagemap: File,
    page: u64,
    /// The VMAs, read after `mem` and `pagemap` were opened, through a maps file opened
    /// before them and one opened after them. A file opened through `/proc/<pid>` is the
    /// memory of the program the process runs then (an `execve()` between the walk's text
    /// and these opens gives another one): the first maps file's text is empty if its
    /// program ended before it is read, but not if another process shares that memory
    /// (`CLONE_VM`, as a `vfork()` parent), where the second shows the new program's.
    /// Only VMAs that both show as the walk saw them are read.
    now: [Vec<Vma>; 2],
    /// The devices (major, minor) of the file systems whose files may be read in memory:
    /// those that the process's mount table or ours (`mountinfo`) shows with a type of
    /// [`MEMORY_FS`], and the kernel's own tmpfs mount ([`shmem_device`]).
    devices: std::collections::HashSet<(u32, u32)>,
}

/// The file systems whose files' pages are read in a process's memory: local ones, whose
/// reads do not wait on a server of their own. Not FUSE (its server can leave a read
/// unanswered, and drop a page between the check that it is present and its read), network
/// file systems, nor the pseudo file systems of [`UNSAFE_FS`] and devices (`devtmpfs`); nor
/// one that neither mount table shows (a FUSE mount unmounted lazily, or one of another
/// mount namespace: the lookups of its paths fail as for a deleted file), but for the
/// kernel's own tmpfs mount of memfds ([`shmem_device`]). What lies under
/// them is not looked at: an overlay's layers (the maps text shows the overlay's device
/// since Linux 6.8), or the file behind a loop device, may be on FUSE or NFS (a user can
/// mount both an overlay and FUSE in a user namespace of their own, since Linux 5.11).
const MEMORY_FS: [&[u8]; 24] = [
    b"ext2",
    b"ext3",
    b"ext4",
    b"xfs",
    b"btrfs",
    b"bcachefs",
    b"f2fs",
    b"jfs",
    b"reiserfs",
    b"nilfs2",
    b"zfs",
    b"tmpfs",
    b"ramfs",
    b"rootfs",
    b"overlay",
    b"squashfs",
    b"erofs",
    b"iso9660",
    b"udf",
    b"vfat",
    b"msdos",
    b"exfat",
    b"ntfs3",
    b"hfsplus",
];

/// The device of the kernel's own tmpfs mount, which no mount table shows, and whose files
/// are those of `memfd_create()` (a program run from one with `fexecve()`, as container
/// runtimes run themselves), System V shared memory and shared anonymous mappings: found
/// as the device of a memfd of ours. Its pages are memory, as those of a mounted tmpfs.
fn shmem_device() -> Option<(u32, u32)> {
    // SAFETY: memfd_create() with a NUL-terminated name; the descriptor it returns, if
    // any, is owned by nothing else.
    let fd = unsafe {
        let fd = libc::memfd_create(c"procmap".as_ptr(), libc::MFD_CLOEXEC);
        if fd < 0 {
            return None;
        }
        OwnedFd::from_raw_fd(fd)
    };
    let dev = File::from(fd).metadata().ok()?.dev();
    Some((libc::major(dev), libc::minor(dev)))
}

/// The devices of the mounts of a `mountinfo` text whose file system type is one of
/// [`MEMORY_FS`]: each line's third field (`major:minor`, decimal), and the first after
/// its ` - `.
fn memory_devices(mountinfo: &[u8]) -> impl Iterator<Item = (u32, u32)> + '_ {
    mountinfo.split(|&b| b == b'\n').filter_map(|line| {
        let mut fields = line.split(|&b| b == b' ');
        let dev = fields.nth(2)?;
        let fs = fields.skip_while(|&f| f != b"-").nth(1)?;
        if !MEMORY_FS.contains(&fs) {
            return None;
        }
        let colon = dev.iter().position(|&b| b == b':')?;
        let num = |b: &[u8]| std::str::from_utf8(b).ok()?.parse::<u32>().ok();
        Some((num(dev.get(..colon)?)?, num(dev.get(colon + 1..)?)?))
    })
}

impl Memory {
    /// Opens the memory of the process whose `/proc` directory is `dir`, if it runs as us:
    /// the directory's owner (the process's effective user ID) and its real, effective,
    /// saved and file-system user IDs (the `Uid:` line of its `status`) are our file-system
    /// user ID. Reading a process's memory needs the right to `ptrace()` it too
    /// (`PTRACE_MODE_ATTACH`: not under Yama's `ptrace_scope` 1 unless it is a descendant
    /// or named us with `PR_SET_PTRACER`, 2 only with `CAP_SYS_PTRACE`, 3 never); and a
    /// process of another user is not read, so that none can make a profiler that is more
    /// privileged wait (see [`BuildIds::in_memory`]). All through one descriptor of the
    /// directory: a PID reused meanwhile is another directory, whose files cannot be
    /// opened through the first.
    ///
    /// The VMAs are read twice, through a maps file opened before `mem` and `pagemap` and
    /// one opened after them, and only a VMA that both show alike is read (see
    /// [`Memory::now`]).
    fn open(dir: &Path, own_mounts: &Path) -> Option<Self> {
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)
            .ok()?;
        let us = fsuid()?;
        if dir.metadata().ok()?.uid() != us {
            return None;
        }
        let open = |name: &std::ffi::CStr| openat(&dir, name, libc::O_RDONLY).ok();
        let before = open(c"maps")?;
        let mem = open(c"mem")?;
        let pagemap = open(c"pagemap")?;
        let after = open(c"maps")?;
        let mut status = Vec::new();
        std::io::Read::read_to_end(&mut open(c"status")?, &mut status).ok()?;
        if uids(&status)?.iter().any(|&u| u != us) {
            return None;
        }
        let mut devices = std::collections::HashSet::new();
        let ours = std::fs::read(own_mounts).unwrap_or_default();
        let mut theirs = Vec::new();
        if let Some(mut f) = open(c"mountinfo") {
            let _ = std::io::Read::read_to_end(&mut f, &mut theirs);
        }
        devices.extend(memory_devices(&ours).chain(memory_devices(&theirs)));
        devices.extend(shmem_device());
        let vmas = |maps: &File| {
            let (text, _) = crate::text::read_whole(|buf, off| maps.read_at(buf, off)).ok()?;
            crate::text::parse_maps(&text).ok()
        };
        // SAFETY: sysconf() has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Some(Memory {
            mem,
            pagemap,
            page: u64::try_from(page).ok().filter(|p| p.is_power_of_two())?,
            now: [vmas(&before)?, vmas(&after)?],
            devices,
        })
    }

    /// Whether `v` is one of the VMAs now, as it is, in both readings.
    fn maps(&self, v: &Vma) -> bool {
        self.now.iter().all(|now| {
            let at = now.partition_point(|n| n.start < v.start);
            now.get(at).is_some_and(|n| n == v)
        })
    }

    /// How many of the `len` bytes from `addr` on lie in pages of a file present in memory
    /// (bits 63, present, and 61, a page of a file or shared, of each page's `pagemap`
    /// entry; a page the process wrote to in a private mapping is its own copy, not the
    /// file's), counted from `addr` up to the first page that is not.
    fn present(&self, addr: u64, len: u64) -> Option<u64> {
        let first = addr / self.page;
        let last = (addr + len.max(1) - 1) / self.page;
        let mut entries = vec![0u8; usize::try_from(last - first + 1).ok()? * 8];
        let n = read_full(&self.pagemap, &mut entries, first.checked_mul(8)?)?;
        entries.truncate(n);
        let pages = entries
            .chunks_exact(8)
            .take_while(|e| u64_at(e, 0).is_some_and(|e| e >> 61 & 0b101 == 0b101))
            .count() as u64;
        let end = (first + pages) * self.page;
        Some(end.saturating_sub(addr).min(len))
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// [`parse_within`] a walk of its own.
#[cfg(test)]
pub(crate) fn parse(r: &mut impl Fetch) -> Option<Vec<u8>> {
    parse_within(r, &mut { NOTE_BYTES_MAX })
}

/// The build ID of the ELF file `r` reads, as the kernel's `__build_id_parse()` finds it,
/// spending at most [`NOTE_BYTES_MAX`], and no more than `walk_budget` (what it spent taken
/// from it): bytes of notes stepped through and of the file read past its first [`HEAD`]
/// bytes, but for the first [`FREE_NOTE_BYTES`] of notes within them.
pub(crate) fn parse_within(r: &mut impl Fetch, walk_budget: &mut u64) -> Option<Vec<u8>> {
    let given = NOTE_BYTES_MAX.min(*walk_budget);
    let mut spend = Spend {
        given,
        steps: 0,
        free: FREE_NOTE_BYTES,
        base: r.read_past_head(),
    };
    let id = parse_notes(r, &mut spend);
    *walk_budget -= spend.spent(r).min(given);
    id
}

/// What a parse spends ([`parse_within`]): the reads past [`HEAD`] counted from the reader
/// (so that a read that fails is paid for too), the steps here.
struct Spend {
    /// What it may spend.
    given: u64,
    /// Bytes of notes stepped through, but for the free ones.
    steps: u64,
    /// Bytes of notes within [`HEAD`] that may still be stepped through without paying.
    free: u64,
    /// The reader's [`Fetch::read_past_head`] when the parse began.
    base: u64,
}

impl Spend {
    /// What it spent so far: the steps paid for and the bytes read past the head.
    fn spent(&self, r: &impl Fetch) -> u64 {
        self.steps
            .saturating_add(r.read_past_head().saturating_sub(self.base))
    }

    /// Pays for a note of `step` bytes ending at `end`, from the free bytes if it lies
    /// within the head and they suffice.
    fn step(&mut self, step: u64, end: u64) {
        if end <= HEAD as u64 && self.free >= step {
            self.free -= step;
        } else {
            self.steps = self.steps.saturating_add(step);
        }
    }

    /// Whether bytes up to `end` may be looked at: within the head (read already) while
    /// there are free bytes, or with some of the budget left.
    fn may(&self, r: &impl Fetch, end: u64) -> bool {
        self.spent(r) < self.given || (end <= HEAD as u64 && self.free > 0)
    }
}

/// [`parse_within`], spending from `spend`.
fn parse_notes(r: &mut impl Fetch, spend: &mut Spend) -> Option<Vec<u8>> {
    // e_ident and e_type.
    let head = r.fetch(0, 18)?;
    if head.get(..4)? != b"\x7fELF" {
        return None;
    }
    let e_type = u16_at(head, 16)?;
    if e_type != ET_EXEC && e_type != ET_DYN {
        return None;
    }
    // (header size, e_phoff and e_phnum offsets, program header size, p_offset and p_filesz
    // offsets) of ELFCLASS32 and ELFCLASS64.
    let elf64 = match head.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let (phoff, phnum, phsize) = if elf64 {
        let h = r.fetch(0, 64)?;
        (u64_at(h, 32)?, u16_at(h, 56)?, 56u64)
    } else {
        let h = r.fetch(0, 52)?;
        (u64::from(u32_at(h, 28)?), u16_at(h, 44)?, 32u64)
    };
    let phnum = u64::from(phnum).min(MAX_PHDRS);
    // The kernel refuses a table whose end overflows.
    phoff.checked_add(phnum * phsize)?;
    // The note segments scanned.
    let mut scanned: Vec<(u64, u32)> = Vec::new();
    for i in 0..phnum {
        let at = phoff + i * phsize;
        if !spend.may(r, at + phsize) {
            return None;
        }
        // A program header that cannot be read ends the parse.
        let ph = r.fetch(at, phsize as usize)?;
        let is_note = u32_at(ph, 0)? == PT_NOTE;
        let (offset, filesz) = if elf64 {
            // p_filesz is passed to parse_build_id() as an Elf32_Word: truncated.
            (u64_at(ph, 8)?, u64_at(ph, 32)? as u32)
        } else {
            (u64::from(u32_at(ph, 4)?), u32_at(ph, 16)?)
        };
        if !is_note || scanned.contains(&(offset, filesz)) {
            continue;
        }
        scanned.push((offset, filesz));
        if let Some(id) = notes(r, offset, filesz, spend) {
            return Some(id);
        }
    }
    None
}

/// `ALIGN(x, 4)` in 32 bits, as the kernel computes it (wrapping for sizes near 4 GiB).
fn align4(x: u32) -> u32 {
    x.wrapping_add(3) & !3
}

/// The build ID among the notes of `size` bytes at `off`, as `parse_build_id()` finds it,
/// spending from `spend` ([`parse_within`]).
fn notes(r: &mut impl Fetch, off: u64, size: u32, spend: &mut Spend) -> Option<Vec<u8>> {
    // The end must fit in 32 bits.
    let end = u32::try_from(off.checked_add(u64::from(size))?).ok()?;
    let mut off = u32::try_from(off).ok()?;
    // A header (12 bytes) and a 4-byte name, and more.
    while end - off > 16 && spend.may(r, u64::from(off) + 16) {
        let h = r.fetch(u64::from(off), 16)?;
        let (namesz, descsz, ntype) = (u32_at(h, 0)?, u32_at(h, 4)?, u32_at(h, 8)?);
        let named_gnu = h.get(12..16)? == b"GNU\0";
        let next = off
            .checked_add(12)
            .and_then(|o| o.checked_add(align4(namesz)))
            .and_then(|o| o.checked_add(align4(descsz)))
            .filter(|&o| o <= end)?;
        if ntype == NT_GNU_BUILD_ID
            && namesz == 4
            && named_gnu
            && descsz > 0
            && descsz as usize <= SIZE_MAX
        {
            // The ID may lie past the head, where only the budget lets it be read.
            let at = u64::from(off) + 16;
            if !spend.may(r, at + u64::from(descsz)) {
                return None;
            }
            return r.fetch(at, descsz as usize).map(<[u8]>::to_vec);
        }
        spend.step(u64::from(next - off), u64::from(next));
        off = next;
    }
    None
}

/// The build IDs found during one walk, lookup or `resolve()` of the text backend: each
/// file, looked up by (device, inode) as the maps text shows them and name, opened once and
/// parsed once. The name too: on btrfs the maps text shows the device of the file system,
/// not of the subvolume, and each subvolume numbers its inodes from 256, so two files of
/// two subvolumes often show the same (device, inode).
/// A file that could not be opened for one VMA is tried again for the next (`map_files`
/// needs the VMA's exact range, which a VMA split since the text was read no longer has).
#[derive(Debug)]
pub(crate) struct BuildIds {
    /// `/proc/<pid>` (or the task's directory) of the maps, if known.
    dir: Option<PathBuf>,
    /// `map_files` may be opened (not refused with `EPERM` yet).
    map_files: bool,
    /// By (device, inode) as the maps text shows them, then by name: the build ID of each
    /// file parsed.
    found: HashMap<Identity, ByName>,
    /// By the `fstat()` device, inode, size and modification time of the file opened: its
    /// build ID, so that a file is parsed once per walk however many names (hard links) lead
    /// to it. Not by device and inode alone: two files can show the same ones (overlayfs
    /// over two btrfs subvolumes, NFS exports of btrfs).
    parsed: HashMap<Opened, Option<Vec<u8>>>,
    /// The process's root and user IDs, read at the first lookup by path of the walk
    /// (`None` until then).
    target: Option<Target>,
    /// The process's memory, opened at the first file of the walk that could not be
    /// (`None` until then, `Some(None)` if it cannot be read).
    memory: Option<Option<Memory>>,
    /// Our own mount table (`/proc/self/mountinfo`; another file in tests).
    own_mounts: PathBuf,
    /// As `found`, for the files read in memory: the build ID, or `None` if it was not
    /// found there.
    from_memory: HashMap<Identity, ByName>,
    /// As `found`, for the files whose lookups by path failed in this walk: whether the
    /// memory must not be read for them ([`BuildIds::open_with`]). A lookup by path depends
    /// on the name alone, not on the VMA: made once per file per walk (a path of thousands
    /// of components over thousands of VMAs of its file cost a walk 22 s when it was made
    /// for each).
    path_failed: HashMap<Identity, HashMap<Option<Vec<u8>>, bool>>,
    /// The note bytes the walk may still step through ([`WALK_NOTE_BYTES_MAX`]).
    note_budget: u64,
    /// How many lookups by path were made.
    #[cfg(test)]
    path_lookups: u32,
    /// How many files were parsed in memory, and the reads of their memory past the head.
    #[cfg(test)]
    memory_parses: u32,
    #[cfg(test)]
    memory_reads: u64,
    /// How many files were parsed.
    #[cfg(test)]
    parses: u32,
    shown: Shown,
}

/// A file opened, as `fstat()` shows it: device, inode, size, modification time (seconds,
/// nanoseconds).
type Opened = (u64, u64, u64, i64, i64);

/// Files of one (device, inode) as the maps text shows them: the build ID of each, by name.
type ByName = HashMap<Option<Vec<u8>>, Option<Vec<u8>>>;

impl BuildIds {
    /// The `/proc` directory the files are opened through.
    #[cfg(test)]
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        BuildIds {
            dir,
            map_files: true,
            found: HashMap::new(),
            parsed: HashMap::new(),
            target: None,
            memory: None,
            own_mounts: PathBuf::from("/proc/self/mountinfo"),
            from_memory: HashMap::new(),
            path_failed: HashMap::new(),
            note_budget: WALK_NOTE_BYTES_MAX,
            #[cfg(test)]
            path_lookups: 0,
            #[cfg(test)]
            memory_parses: 0,
            #[cfg(test)]
            memory_reads: 0,
            #[cfg(test)]
            parses: 0,
            shown: Shown::default(),
        }
    }

    /// [`BuildIds::of_in`] with no other VMA known.
    #[cfg(test)]
    pub(crate) fn of(&mut self, vma: &Vma) -> Option<Vec<u8>> {
        self.of_in(vma, std::slice::from_ref(vma))
    }

    /// The build ID of the file `vma` maps (`None` for anonymous memory, a file that is not
    /// ELF or has none, or one that cannot be opened and checked, nor read in memory).
    /// `vma` is one of `all`, the process's VMAs in address order: a file that cannot be
    /// opened (deleted, without `map_files`; or not found by path) is read in the
    /// process's memory where its VMAs next to `vma` show its headers and notes
    /// ([`BuildIds::in_memory`]).
    pub(crate) fn of_in(&mut self, vma: &Vma, all: &[Vma]) -> Option<Vec<u8>> {
        if !vma.file_backed() {
            return None;
        }
        let key = (vma.dev_major, vma.dev_minor, vma.inode);
        if let Some(id) = self.found.get(&key).and_then(|names| names.get(&vma.name)) {
            return id.clone();
        }
        // Only a file opened and parsed is remembered (one that could not be opened for one
        // VMA may be for the next, through its own map_files link); and what the memory
        // gave, for each VMA of the file the same.
        let (file, m) = match self.open_with(vma) {
            Ok(f) => f,
            // A file found that is not to be read: nor is the memory for it.
            Err(true) => return None,
            Err(false) => {
                let names = self.from_memory.get(&key);
                if let Some(id) = names.and_then(|names| names.get(&vma.name)) {
                    return id.clone();
                }
                let id = self.in_memory(vma, all);
                let names = self.from_memory.entry(key).or_default();
                names.insert(vma.name.clone(), id.clone());
                return id;
            }
        };
        let opened = (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec());
        let build_id = match self.parsed.get(&opened) {
            Some(id) => id.clone(),
            None => {
                #[cfg(test)]
                {
                    self.parses += 1;
                }
                let budget = &mut self.note_budget;
                let id = FileReader::new(&file).and_then(|mut r| parse_within(&mut r, budget));
                self.parsed.insert(opened, id.clone());
                id
            }
        };
        let names = self.found.entry(key).or_default();
        names.insert(vma.name.clone(), build_id.clone());
        build_id
    }

    /// The build ID of the file `vma` maps, read in the memory of the process
    /// (`/proc/<pid>/mem`) through the VMAs of `all` next to `vma` that map the same file
    /// (device, inode and name) read-only, and mapped it still when the walk first read its
    /// memory ([`Memory::now`]): the dynamic loader and the kernel map an ELF file's
    /// segments side by side, the first, at offset 0, holding the headers and the notes.
    /// Only for a process running as us ([`Memory::open`]), a file of a local file system
    /// ([`MEMORY_FS`]), and only pages of the file that are present in its page tables
    /// ([`Memory::present`]), read right after the check (a page leaves them in between
    /// only if the process unmaps or replaces it, `madvise()`s it away or memory is
    /// reclaimed: then the read faults it in); none the process wrote (a copy of its own)
    /// is read.
    ///
    /// What is read is the file's pages as the page cache holds them, as Linux 6.11's
    /// `PROCMAP_QUERY` read them, but only those the process has mapped now (a page
    /// reclaimed from its page tables gives none, where the page cache may hold it still).
    /// A process that replaces a VMA of a file between the check of its pages and their
    /// read (with a file of a FUSE server of its own that does not answer, say) can make
    /// the read wait: only one running as us.
    fn in_memory(&mut self, vma: &Vma, all: &[Vma]) -> Option<Vec<u8>> {
        let dir = self.dir.as_deref()?;
        let mem = self
            .memory
            .get_or_insert_with(|| Memory::open(dir, &self.own_mounts))
            .as_ref()?;
        if !mem.devices.contains(&(vma.dev_major, vma.dev_minor)) {
            return None;
        }
        let same = |v: &&Vma| {
            (v.dev_major, v.dev_minor, v.inode, &v.name)
                == (vma.dev_major, vma.dev_minor, vma.inode, &vma.name)
        };
        let at = all.partition_point(|v| v.end <= vma.start);
        let before = all.get(..at)?.iter().rev().take_while(same);
        let from = all.get(at..)?.iter().take_while(same);
        let segments: Vec<(u64, u64, u64)> = before
            .chain(from)
            .filter(|v| !v.perms.write && v.end > v.start && mem.maps(v))
            .map(|v| (v.offset, v.start, v.end))
            .collect();
        #[cfg(test)]
        {
            self.memory_parses += 1;
        }
        let mut r = MemReader {
            mem,
            segments,
            head: Vec::new(),
            head_read: false,
            chunk: Vec::new(),
            chunk_off: 0,
            reads: 0,
            past_head: 0,
        };
        let id = parse_within(&mut r, &mut self.note_budget);
        #[cfg(test)]
        {
            self.memory_reads += r.reads;
        }
        id
    }

    /// The file of `vma`, checked to be the one the maps text shows ([`open_checked`]):
    /// through `map_files` (the file mapped at the VMA's range, also if deleted; needs
    /// `CAP_SYS_ADMIN` or `CAP_CHECKPOINT_RESTORE`), else by the VMA's path (whatever file is
    /// at that path now: the check refuses another one): first under the process's root
    /// (`/proc/<pid>/root`), then as printed, from our root.
    ///
    /// Under the process's root, the lookup follows no symlink ([`open_beneath`]), so that
    /// it stays in the process's mount namespace and root; the maps text prints a path as
    /// `d_path()` sees it from our root where it can, and `readlink()` of the root likewise:
    /// for a process in a chroot of our namespace, or one of its own that we see as the
    /// same tree, the root's path starts the path of each file under the root, and is
    /// taken off ([`beneath`]); for one in another mount namespace whose tree we cannot
    /// reach, both read from its top (the root's as `/`). Where they do not agree (a file
    /// mapped before a `chroot()`, which the maps text prints from our root; a root
    /// deleted), nothing is found there.
    ///
    /// As printed, from our root (as up to 0.3.4), symlinks followed: only a file whose
    /// `fstat()` device and inode are the VMA's passes, never one compared through the
    /// maps text, since another btrfs subvolume's file that shows the same device and
    /// inode could be at that path in our namespace. For a process of another mount
    /// namespace the path is only a string to us, which can lead an automount or a dead NFS
    /// server of ours.
    pub(crate) fn open(&mut self, vma: &Vma) -> Option<File> {
        self.open_with(vma).ok().map(|(file, _)| file)
    }

    /// [`BuildIds::open`], and what `fstat()` said of the file opened; if none was, whether
    /// the memory must not be read for it either: a file was found not to be read
    /// ([`Checked::Unsafe`]), or a lookup failed otherwise than for a name not there
    /// ([`unknown`]).
    fn open_with(&mut self, vma: &Vma) -> Result<(File, std::fs::Metadata), bool> {
        let mut doubt = false;
        let mut take = |c| take_checked(c, &mut doubt);
        let Some(dir) = self.dir.as_deref() else {
            return Err(false);
        };
        let shown = &mut self.shown;
        if self.map_files {
            // The file mapped at that range now: the VMA's, or one mapped over it since the
            // text was read, which the check refuses.
            // (Not through the cache of names: the kernel revalidates these links, and
            // follows them to the file itself, with no lookup in its directory.)
            let link = dir.join(format!("map_files/{:x}-{:x}", vma.start, vma.end));
            match open_uncached(&link) {
                // Refused to us (no CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE): not asked again
                // in this walk.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {
                    self.map_files = false;
                }
                // No such range now (split or unmapped since the text was read).
                Err(_) => {}
                Ok(f) => {
                    if let Some(f) = take(open_checked(f, vma, Some(&mut *shown), false)) {
                        return Ok(f);
                    }
                    // The range's file is one not to be read: so is the VMA's, whatever a
                    // path leads to.
                    if doubt {
                        return Err(true);
                    }
                }
            }
        }
        let Some(name) = vma.name.as_deref() else {
            return Err(doubt);
        };
        let key = (vma.dev_major, vma.dev_minor, vma.inode);
        let failed = self.path_failed.get(&key).and_then(|n| n.get(&vma.name));
        if let Some(&failed_doubt) = failed {
            return Err(doubt || failed_doubt);
        }
        #[cfg(test)]
        {
            self.path_lookups += 1;
        }
        match self.by_path(vma, name) {
            Ok(f) => Ok(f),
            Err(path_doubt) => {
                let names = self.path_failed.entry(key).or_default();
                names.insert(vma.name.clone(), path_doubt);
                Err(doubt || path_doubt)
            }
        }
    }

    /// The lookups by path of [`BuildIds::open_with`]: the file, or whether the memory must
    /// not be read for it.
    fn by_path(&mut self, vma: &Vma, name: &[u8]) -> Result<(File, std::fs::Metadata), bool> {
        let Some(dir) = self.dir.as_deref() else {
            return Err(false);
        };
        let mut doubt = false;
        let mut take = |c| take_checked(c, &mut doubt);
        let shown = &mut self.shown;
        let target = self.target.get_or_insert_with(|| Target::read(dir));
        if let Some((root, root_path)) = &target.root {
            if let Some(rel) = beneath(root_path, name) {
                // (A file that passes there only as the maps text shows it must be readable
                // by anyone, or ours: see open_checked().)
                let found = open_beneath(root, rel);
                if let Some(f) = take(found.and_then(|f| open_checked(f, vma, Some(shown), true))) {
                    return Ok(f);
                }
            }
        }
        // A path, not a label such as [heap] or an anonymous name.
        if name.starts_with(b"/") {
            let path = Path::new(std::ffi::OsStr::from_bytes(name));
            if let Some(f) = take(open_path(path).and_then(|f| open_checked(f, vma, None, true))) {
                return Ok(f);
            }
        }
        Err(doubt)
    }
}

/// The file and its metadata if `c` found the VMA's; otherwise sets `doubt` where the memory
/// must not be read for it either ([`Checked::Unsafe`], or a failure that leaves the file
/// [`unknown`]).
fn take_checked(c: io::Result<Checked>, doubt: &mut bool) -> Option<(File, std::fs::Metadata)> {
    match c {
        Ok(Checked::Unsafe) => {
            *doubt = true;
            None
        }
        Ok(c) => c.file(),
        Err(e) => {
            *doubt |= unknown(&e);
            None
        }
    }
}

/// Whether `e`, from a lookup of a mapped file, leaves unknown what the file is: not a name
/// that is not there (`ENOENT`, `ENOTDIR`: deleted, renamed; a last name not in the
/// kernel's cache, [`open_cached`]) or a symlink refused (`ELOOP`, [`open_beneath`]).
/// `EACCES` among them: a FUSE file system refuses `fstat()`, and lookups, to processes
/// other than its user's, and its files must not be read in memory either; so is
/// `EAGAIN`, a lookup that the kernel's cache of names could not take to the last name's
/// directory ([`open_cached`]; a permission refused on the way is such a failure too).
fn unknown(e: &io::Error) -> bool {
    !matches!(
        e.raw_os_error(),
        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
    )
}

/// What a walk's lookups by path need of the process, read once per walk.
#[derive(Debug)]
struct Target {
    /// `/proc/<pid>/root` opened (`O_PATH`), and its path as `readlink()` of that descriptor
    /// gives it (`None`: unknown, where `root` is no symlink, as in tests); `None` where it
    /// cannot be opened (a process that exited, a kernel thread, no permission). Opened
    /// first, the path read of the descriptor: the two agree even if the process calls
    /// `chroot()` meanwhile. (Held until the walk ends, it keeps the root's mount busy:
    /// an unmount of it meanwhile fails with `EBUSY`, or is lazy.)
    root: Option<(File, Option<PathBuf>)>,
}

impl Target {
    fn read(dir: &Path) -> Self {
        let at = dir.join("root");
        let link = std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_symlink());
        let root = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&at)
            .ok()
            .and_then(|root| {
                if !link {
                    return Some((root, None));
                }
                // Unread, no root to look under: the whole path would be taken for one
                // under it.
                let path = std::fs::read_link(format!("/proc/self/fd/{}", root.as_raw_fd()));
                Some((root, Some(path.ok()?)))
            });
        Target { root }
    }
}

/// The part of `name` (a path of the maps text) under a root whose path is `root`, without
/// its leading `/`: `None` if `name` is no path (a label such as `[heap]`, an anonymous
/// name) or is not under the root. Where the root's path is unknown (`None`), the whole
/// path.
fn beneath<'a>(root: &Option<PathBuf>, name: &'a [u8]) -> Option<&'a [u8]> {
    let rel = name.strip_prefix(b"/")?;
    let Some(root) = root else {
        return Some(rel);
    };
    let root = root.as_os_str().as_bytes().strip_prefix(b"/")?;
    let root = root.strip_suffix(b"/").unwrap_or(root);
    if root.is_empty() {
        return Some(rel);
    }
    match rel.strip_prefix(root)? {
        [] => None,
        [b'/', rest @ ..] => Some(rest),
        _ => None,
    }
}

/// `TRACEFS_MAGIC`, `DEBUGFS_MAGIC`, `FUSE_SUPER_MAGIC`, `SYSFS_MAGIC`, `PROC_SUPER_MAGIC`:
/// file systems whose files can be mapped but whose reads may block (a FUSE server that does
/// not answer), consume data (`trace_pipe`) or reach hardware (a PCI device's resource or
/// configuration files), and which hold no ELF file, so they are not read for a build ID.
const UNSAFE_FS: [u64; 5] = [0x7472_6163, 0x6462_6720, 0x6573_5546, 0x6265_6572, 0x9fa0];

/// `HUGETLBFS_MAGIC`: a mapping of one of its files reserves a huge page.
const HUGETLBFS: u64 = 0x9584_58f6;

/// `BTRFS_SUPER_MAGIC`.
const BTRFS: u64 = 0x9123_683e;

/// What `fstatfs()` says of the file system of `f`: its type (`f_type`) and `f_fsid`, if it
/// answers.
fn fs_of(f: &File) -> Option<(u64, u64)> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: a valid descriptor and a buffer for one `struct statfs`.
    if unsafe { libc::fstatfs(f.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstatfs() succeeded and filled it.
    let st = unsafe { st.assume_init() };
    // SAFETY: `fsid_t` is two `int`s (`__val`, private in `libc`), any bits of which are a
    // valid `[i32; 2]`; `transmute` checks the sizes.
    let fsid: [i32; 2] = unsafe { std::mem::transmute(st.f_fsid) };
    let fsid = u64::from(fsid[0] as u32) | u64::from(fsid[1] as u32) << 32;
    // The magic numbers fit in 32 bits, whatever the width and sign of `f_type`.
    #[allow(clippy::unnecessary_cast)]
    Some((st.f_type as u64 & 0xffff_ffff, fsid))
}

/// Whether files of the file system type `t` may be read for a build ID: not one of
/// [`UNSAFE_FS`]. Others can block too (NFS with a server gone, a hard mount; a FUSE server
/// that lets us in can block `fstat()` and `fstatfs()` themselves): the file is opened
/// `O_NONBLOCK`, which regular files ignore.
fn safe_to_read(t: u64) -> bool {
    !UNSAFE_FS.contains(&t)
}

/// `path` opened as `O_PATH` (no side effect, even for a device or a FIFO), following
/// symlinks; only through the kernel's cache of names where it can ([`open_cached`]).
fn open_path(path: &Path) -> io::Result<File> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
    if let Some(found) = open_cached(None, &c, 0) {
        return found;
    }
    open_uncached(path)
}

/// `path` opened as `O_PATH`, following symlinks, by the usual lookup.
fn open_uncached(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
}

/// `RESOLVE_NO_MAGICLINKS`, `RESOLVE_NO_SYMLINKS`, `RESOLVE_IN_ROOT` and `RESOLVE_CACHED`
/// of `openat2()` (`<linux/openat2.h>`).
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_IN_ROOT: u64 = 0x10;
const RESOLVE_CACHED: u64 = 0x20;

/// `struct open_how` of `openat2()`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Whether `openat2()` with `RESOLVE_CACHED` was found missing (Linux before 5.12, or a
/// seccomp filter that refuses it).
static NO_CACHED_LOOKUP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `path` opened as `O_PATH` under `dir` (or from our working directory) with
/// `openat2()`'s `resolve` flags and `RESOLVE_CACHED`: the lookup is done in the kernel's
/// cache of names alone and fails with `EAGAIN` where it would have to look a name up in
/// its directory, revalidate it (NFS, FUSE) or trigger an automount. A lookup outside the
/// cache takes the directory's lock, which any user can make wait forever on a directory
/// of theirs (a `getdents64()` into a buffer whose page fault a `userfaultfd` or FUSE
/// server of theirs never answers holds it shared; a `mkdir()` queued behind it makes
/// every new lookup wait), and the wait cannot be killed. The file of a mapping is always
/// in the cache (its path is held by the open file); a deleted file's `... (deleted)` name
/// never is: where the lookup of the last name alone fails so, its directory found in the
/// cache, the name is taken as not there (`ENOENT`). That is also what a file there that
/// the cache cannot vouch for gets: one whose name must be revalidated (NFS with stale
/// attributes, CIFS, a FUSE entry whose timeout passed; vfat and exfat always), or in a
/// directory whose permission check cannot be made from the cache or refuses us. Such a
/// file has no build ID by path (it has one through `map_files`); the memory route that
/// `ENOENT` lets it take reads only files of local file systems ([`MEMORY_FS`]), from a
/// process of our own user. `None` where the kernel has no such
/// lookup (`ENOSYS`; `EINVAL` for the flag before 5.12; `EPERM` from a seccomp filter): the
/// caller looks up the usual way, which can wait as above.
fn open_cached(
    dir: Option<&File>,
    path: &std::ffi::CStr,
    resolve: u64,
) -> Option<io::Result<File>> {
    match openat2_cached(dir, path, resolve)? {
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
            let bytes = path.to_bytes();
            let parent = match bytes.iter().rposition(|&b| b == b'/') {
                Some(0) => &b"/"[..],
                Some(i) => &bytes[..i],
                None => &b"."[..],
            };
            let parent = std::ffi::CString::new(parent).ok()?;
            match openat2_cached(dir, &parent, resolve)? {
                Ok(_) => Some(Err(io::Error::from_raw_os_error(libc::ENOENT))),
                Err(_) => Some(Err(e)),
            }
        }
        r => Some(r),
    }
}

/// `openat2()` of `path` as [`open_cached`] makes it, without its reading of `EAGAIN`.
fn openat2_cached(
    dir: Option<&File>,
    path: &std::ffi::CStr,
    resolve: u64,
) -> Option<io::Result<File>> {
    use std::sync::atomic::Ordering::Relaxed;
    if NO_CACHED_LOOKUP.load(Relaxed) {
        return None;
    }
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: resolve | RESOLVE_CACHED,
    };
    let at = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: a valid directory descriptor (or `AT_FDCWD`), a C string and a `struct
    // open_how` of the size given; the result is checked.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            at,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        if matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS | libc::EINVAL | libc::EPERM)
        ) {
            NO_CACHED_LOOKUP.store(true, Relaxed);
            return None;
        }
        return Some(Err(e));
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Some(Ok(unsafe { File::from_raw_fd(fd as libc::c_int) }))
}

/// `name` opened relative to the directory `dir` with `flags` and `O_CLOEXEC`.
fn openat(dir: &File, name: &std::ffi::CStr, flags: libc::c_int) -> io::Result<File> {
    // SAFETY: a valid directory descriptor and C string; the result is checked.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// `rel`, a path of the maps text without its leading `/`, opened as `O_PATH` under the
/// directory `root` (a process's `/proc/<pid>/root`, opened) one component at a time, none of them a
/// symlink, `.` or `..`: so that it resolves in that process's mount namespace and under
/// its root. (The kernel follows the magic link to the process's root, but a symlink met
/// after it resolves in ours: an absolute one from our root, `..` above a chroot's root.)
/// The maps text's paths (`d_path()`) have none; a path that has one now changed since.
fn open_beneath(root: &File, rel: &[u8]) -> io::Result<File> {
    let refused = || io::Error::from_raw_os_error(libc::ELOOP);
    let mut names = rel
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .peekable();
    if names.peek().is_none() || names.any(|n| n == b"." || n == b"..") {
        return Err(refused());
    }
    // In one system call, in the kernel's cache of names, where it can.
    let c = std::ffi::CString::new(rel).map_err(|_| refused())?;
    let resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    if let Some(found) = open_cached(Some(root), &c, resolve) {
        return found;
    }
    let mut at: Option<File> = None;
    for name in rel.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if name == b"." || name == b".." {
            return Err(refused());
        }
        let name = std::ffi::CString::new(name).map_err(|_| refused())?;
        let dir = at.as_ref().unwrap_or(root);
        let opened = openat(dir, &name, libc::O_PATH | libc::O_NOFOLLOW)?;
        // With O_NOFOLLOW and O_PATH, a symlink is opened itself.
        if opened.metadata()?.file_type().is_symlink() {
            return Err(refused());
        }
        at = Some(opened);
    }
    // (An empty path names the root: no file.)
    at.ok_or_else(refused)
}

/// Opens the file of `probe` (an `O_PATH` descriptor) for reading if it is a regular file on
/// a file system safe to read ([`safe_to_read`]) that is the one the maps text shows for
/// `vma`: the device and inode that `fstat()` gives or, with `shown`, for a file whose
/// `fstat()` device is anonymous (major 0: a btrfs subvolume's; an overlay's before Linux
/// 6.8, where the maps text shows the device and inode of the file in the layer below) and
/// not the VMA's, those that the maps text shows for it ([`Shown`]). `Ok(None)` if it is
/// another file.
///
/// Found `by_path`, a file that passes only as the maps text shows it must be readable by
/// anyone, or be ours (owned by our file-system user ID, not root's), which the kernel's
/// check of our open then decides: the maps text can show two btrfs subvolumes' files
/// alike, so a target, or whoever controls a path a process maps, could put a file it
/// cannot read there with the same inode number (a bind mount or a rename of another
/// subvolume's), and a profiler running as root would read it (and, through
/// `ProcMaps::open_mapped_file()`, hand it out). Through `map_files` the file was mapped by
/// the target or for it (at `execve()`, also an execute-only one); by path it need not be
/// its own. (A root profiler without `map_files`, then, finds no build ID by path there for
/// a file readable by its owner or group only; [`BuildIds::in_memory`] may.)
///
/// Returned with what `fstat()` says of the file opened; [`Checked::Unsafe`] for one that is
/// not a regular file or not on a file system safe to read, whichever it is.
fn open_checked(
    probe: File,
    vma: &Vma,
    shown: Option<&mut Shown>,
    by_path: bool,
) -> io::Result<Checked> {
    // The file system first: FUSE refuses fstat() to a process other than the mount's
    // user's (unless allow_other), but answers fstatfs() with its type.
    let Some((fs, fsid)) = fs_of(&probe).filter(|&(t, _)| safe_to_read(t)) else {
        return Ok(Checked::Unsafe);
    };
    let m = probe.metadata()?;
    if !m.file_type().is_file() {
        return Ok(Checked::Unsafe);
    }
    let dev = (libc::major(m.dev()), libc::minor(m.dev()));
    let same = m.ino() == vma.inode && dev == (vma.dev_major, vma.dev_minor);
    let anonymous = dev.0 == 0 && dev != (vma.dev_major, vma.dev_minor);
    // Not the overflow ID, which a file whose owner our namespace does not map shows (an
    // idmapped mount, a file system mounted in a user namespace) even where every user ID
    // is mapped and the overflow ID is a user's (`nobody`'s) own.
    let ours = || m.uid() != 0 && m.uid() != overflow_uid() && fsuid() == Some(m.uid());
    let readable = !by_path || m.mode() & 0o004 != 0 || ours();
    let may_pass = same || (anonymous && shown.is_some() && readable);
    if !may_pass {
        return Ok(Checked::Other);
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(format!("/proc/self/fd/{}", probe.as_raw_fd()))?;
    // The same file again (the descriptor cannot change, but be sure).
    let again = file.metadata()?;
    if (again.dev(), again.ino()) != (m.dev(), m.ino()) {
        return Ok(Checked::Other);
    }
    let Some(shown) = shown.filter(|_| !same) else {
        return Ok(Checked::File(file, again));
    };
    let key = (vma.dev_major, vma.dev_minor, vma.inode);
    if shown.of(&file, &m, fs, fsid) != Some(key) {
        return Ok(Checked::Other);
    }
    Ok(Checked::File(file, again))
}

/// What [`open_checked`] found.
#[derive(Debug)]
enum Checked {
    /// The VMA's file, opened for reading, and what `fstat()` says of it.
    File(File, std::fs::Metadata),
    /// Another file.
    Other,
    /// Not a regular file, or one on a file system not to be read ([`safe_to_read`]): the
    /// VMA's or not, it is not read, nor is the process's memory for it.
    Unsafe,
}

impl Checked {
    /// The file and its metadata, if it is the VMA's.
    fn file(self) -> Option<(File, std::fs::Metadata)> {
        match self {
            Checked::File(f, m) => Some((f, m)),
            Checked::Other | Checked::Unsafe => None,
        }
    }
}

/// The file-system user ID of the calling thread, which the kernel checks our opens with:
/// the fourth of the `Uid:` line of `/proc/thread-self/status` (not `setfsuid(-1)`, which
/// sandboxes deny: a filter of systemd's `@privileged`, Android's), if it can be read
/// (`None` before Linux 3.17, or with a `/proc` of another PID namespace). `None` too for
/// the overflow ID (`/proc/sys/kernel/overflowuid`, 65534 by default, `nobody`'s), shown for
/// an ID not mapped into our user namespace, and for any other so, a process's, unless our
/// namespace maps every ID (`/proc/self/uid_map`; the initial one does): then it is that
/// user's own. (A file's owner can still show so there, through an idmapped mount or a file
/// system mounted in a user namespace: a file owned by the overflow ID is never ours.) In a
/// namespace that maps some IDs, as a rootless container's does, a caller running as its
/// `nobody` thus has no user ID here, and no build IDs from memory.
fn fsuid() -> Option<u32> {
    let status = std::fs::read("/proc/thread-self/status").ok()?;
    let id = uids(&status)?.get(3).copied()?;
    if id != overflow_uid() {
        return Some(id);
    }
    let map = std::fs::read("/proc/self/uid_map").ok()?;
    every_id_mapped(&map).then_some(id)
}

/// The overflow user ID (`/proc/sys/kernel/overflowuid`; 65534 if it cannot be read).
fn overflow_uid() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/overflowuid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65534)
}

/// Whether a `uid_map` text maps every user ID (0 to 4294967294): its ranges, which the
/// kernel keeps apart, count that many. (An unreadable or odd line: not known, `false`.)
fn every_id_mapped(map: &[u8]) -> bool {
    let mut ids = 0u64;
    for line in map.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let fields: Option<Vec<u64>> = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .map(|w| std::str::from_utf8(w).ok()?.parse::<u64>().ok())
            .collect();
        match fields.as_deref() {
            Some(&[_, _, count]) => ids += count,
            _ => return false,
        }
    }
    ids == u64::from(u32::MAX)
}

/// The user IDs of the `Uid:` line of a `/proc/<pid>/status` text (real, effective, saved,
/// file-system), if it has four.
fn uids(status: &[u8]) -> Option<[u32; 4]> {
    let ids = status
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"Uid:"))?
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(|w| std::str::from_utf8(w).ok()?.parse::<u32>().ok())
        .collect::<Option<Vec<u32>>>()?;
    ids.try_into().ok()
}

/// A device (major, minor) and inode, as the maps text shows them.
type Identity = (u32, u32, u64);

/// The device and inode that the maps text shows for files whose `fstat()` shows others
/// (btrfs: the subvolume's anonymous device; overlayfs before 6.8: the overlay's device and
/// inode), found for each file once per walk, and on btrfs once per subvolume.
///
/// The kernel shows a mapping of a file the same way in every process, so a page of the
/// file is mapped here for a moment (read-only, private; the profiler sees it in its own
/// `mmap` events), and this process's maps are asked ([`mapped_identity`]). On btrfs the
/// maps text shows the file system's device for every file, and the inode as `fstat()`
/// does: once one file of a subvolume was mapped so, its other files need not be.
///
/// The caches are keyed by the file system's `f_fsid` too: an anonymous device number
/// freed (a subvolume deleted, a file system unmounted) is given to the next one mounted,
/// and btrfs's `f_fsid` is its UUID mixed with the subvolume's ID. As precise as the maps
/// text: on btrfs, two subvolumes' files can show the same device and inode, so a file of
/// another subvolume with the same inode number, put at the path under the process's root
/// since (a snapshot rolled back, a bind mount) or mapped over the VMA's range, passes (by
/// path, only if readable by anyone: see [`open_checked`]).
#[derive(Debug, Default)]
struct Shown {
    /// By `fstat()`'s device and inode and the `f_fsid`: what the maps text shows, if that
    /// could be found.
    found: HashMap<(u64, u64, u64), Option<Identity>>,
    /// By a btrfs subvolume's `fstat()` device and `f_fsid`: the device that the maps text
    /// shows for its files.
    btrfs: HashMap<(u64, u64), (u32, u32)>,
}

impl Shown {
    /// What the maps text shows for `file`, whose `fstat()` gave `m`, on a file system of
    /// type `fs` and `f_fsid` `fsid`.
    fn of(&mut self, file: &File, m: &std::fs::Metadata, fs: u64, fsid: u64) -> Option<Identity> {
        if fs == BTRFS {
            if let Some(&(major, minor)) = self.btrfs.get(&(m.dev(), fsid)) {
                return Some((major, minor, m.ino()));
            }
        }
        let key = (m.dev(), m.ino(), fsid);
        if let Some(&id) = self.found.get(&key) {
            return id;
        }
        // A mapping of a hugetlbfs file reserves a huge page.
        let id = if fs == HUGETLBFS {
            None
        } else {
            mapped_identity(file)
        };
        if let (BTRFS, Some((major, minor, ino))) = (fs, id) {
            if ino == m.ino() {
                self.btrfs.insert((m.dev(), fsid), (major, minor));
            }
        }
        self.found.insert(key, id);
        id
    }
}

/// This process's maps, opened once for all walks (and again in a child after `fork()`,
/// where the parent's handle would show the parent's VMAs, or after a query failed): one
/// file descriptor, `O_CLOEXEC`, kept from the first use on.
static OWN_MAPS: Mutex<Option<(u32, Arc<crate::ProcMaps>)>> = Mutex::new(None);

/// [`OWN_MAPS`], opened if need be; a handle of its own for the call while another thread
/// holds it (or a thread of the parent did at a `fork()`, which would leave it held in the
/// child).
fn own_maps() -> Option<Arc<crate::ProcMaps>> {
    let mut own = match OWN_MAPS.try_lock() {
        Ok(own) => own,
        Err(TryLockError::Poisoned(own)) => own.into_inner(),
        Err(TryLockError::WouldBlock) => return crate::ProcMaps::open_self().ok().map(Arc::new),
    };
    let pid = std::process::id();
    if let Some((p, maps)) = &*own {
        if *p == pid {
            return Some(maps.clone());
        }
    }
    let maps = Arc::new(crate::ProcMaps::open_self().ok()?);
    *own = Some((pid, maps.clone()));
    Some(maps)
}

/// The (device, inode) that this process's maps show for a page of `file` mapped for the
/// moment; `None` where it cannot be mapped or the maps cannot be asked.
fn mapped_identity(file: &File) -> Option<Identity> {
    let maps = own_maps()?;
    // SAFETY: a new private, read-only mapping of one page, at an address the kernel
    // chooses: no memory of this process changes.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            1,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    if page == libc::MAP_FAILED {
        return None;
    }
    let vma = maps.query(page as u64, crate::Query::new());
    // SAFETY: the mapping made above, of one page; nothing refers to it.
    unsafe { libc::munmap(page, 1) };
    if vma.is_err() {
        // Opened again next time (the main thread may have exited since the open).
        if let Ok(mut own) = OWN_MAPS.try_lock() {
            *own = None;
        }
    }
    let vma = vma.ok()??;
    Some((vma.dev_major, vma.dev_minor, vma.inode))
}

#[cfg(test)]
#[path = "../tests/common/caps.rs"]
mod caps;

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Makes [`read_file`]'s reads with `RWF_NOWAIT` fail with `EAGAIN` on this thread.
        pub(super) static NOWAIT_FAILS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        /// Makes [`read_mapped`]'s `process_vm_readv()` fail with `EPERM` on this thread, as
        /// a seccomp filter would.
        pub(super) static VM_READV_FAILS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        /// The copies [`read_mapped`] made on this thread.
        pub(super) static MAPPED_READS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn reads_that_would_wait_go_through_a_mapping() {
        let bytes = with_notes(true, &gnu(&ID));
        let mut big = bytes.clone();
        big.resize(3 * 4096 + 100, 0x5a);
        let f = tempfile(&big);
        NOWAIT_FAILS.with(|c| c.set(true));
        assert_eq!(
            FileReader::new(&f)
                .and_then(|mut r| parse(&mut r))
                .as_deref(),
            Some(&ID[..])
        );
        // The whole file, from an offset within a page, across pages, up to its end.
        let mut buf = vec![0u8; 5 * 4096];
        assert_eq!(read_file(&f, &mut buf, 0), Some(big.len()));
        assert_eq!(buf[..big.len()], big[..]);
        let mut buf = vec![0u8; 4096];
        assert_eq!(read_file(&f, &mut buf, 4000), Some(4096));
        assert_eq!(buf[..], big[4000..4000 + 4096]);
        assert_eq!(read_file(&f, &mut buf, 3 * 4096 + 50), Some(50));
        assert_eq!(buf[..50], big[3 * 4096 + 50..]);
        assert_eq!(read_file(&f, &mut buf, big.len() as u64), Some(0));
        assert_eq!(read_file(&f, &mut buf, 1 << 40), Some(0));
        // Each read went through the mapping.
        assert_eq!(MAPPED_READS.with(std::cell::Cell::get), 4);
        // Where process_vm_readv() is refused: the usual read, the same bytes.
        VM_READV_FAILS.with(|c| c.set(true));
        let before = MAPPED_READS.with(std::cell::Cell::get);
        let mut buf = vec![0u8; 4096];
        assert_eq!(read_file(&f, &mut buf, 4000), Some(4096));
        assert_eq!(buf[..], big[4000..4000 + 4096]);
        assert_eq!(MAPPED_READS.with(std::cell::Cell::get), before);
        VM_READV_FAILS.with(|c| c.set(false));
        // Truncated: nothing past the new end.
        f.set_len(4096).unwrap();
        assert_eq!(read_mapped(&f, &mut buf, 4096).unwrap(), 0);
        NOWAIT_FAILS.with(|c| c.set(false));
        assert_eq!(read_file(&f, &mut buf, 0), Some(4096));
    }

    /// An ELF file: header, program headers at 64 (ELF64) or 52 (ELF32), then the segments'
    /// bytes, each at the offset given.
    struct Elf {
        elf64: bool,
        e_type: u16,
        phdrs: Vec<(u32, u64, u64)>, // (p_type, p_offset, p_filesz)
        phnum: Option<u16>,
        bytes: Vec<u8>,
    }

    impl Elf {
        fn new(elf64: bool) -> Self {
            Elf {
                elf64,
                e_type: ET_DYN,
                phdrs: Vec::new(),
                phnum: None,
                bytes: Vec::new(),
            }
        }
        /// Puts `data` at `off` of the file.
        fn at(&mut self, off: usize, data: &[u8]) -> &mut Self {
            if self.bytes.len() < off + data.len() {
                self.bytes.resize(off + data.len(), 0);
            }
            self.bytes[off..off + data.len()].copy_from_slice(data);
            self
        }
        fn phdr(&mut self, p_type: u32, off: u64, size: u64) -> &mut Self {
            self.phdrs.push((p_type, off, size));
            self
        }
        fn build(&self) -> Vec<u8> {
            let mut b = self.bytes.clone();
            let (ehsize, phsize) = if self.elf64 { (64, 56) } else { (52, 32) };
            let end = ehsize + phsize * self.phdrs.len();
            if b.len() < end {
                b.resize(end, 0);
            }
            b[..4].copy_from_slice(b"\x7fELF");
            b[4] = if self.elf64 { 2 } else { 1 };
            b[5] = if cfg!(target_endian = "little") { 1 } else { 2 };
            b[6] = 1;
            b[16..18].copy_from_slice(&self.e_type.to_ne_bytes());
            let phnum = self.phnum.unwrap_or(self.phdrs.len() as u16);
            if self.elf64 {
                b[32..40].copy_from_slice(&64u64.to_ne_bytes());
                b[56..58].copy_from_slice(&phnum.to_ne_bytes());
            } else {
                b[28..32].copy_from_slice(&52u32.to_ne_bytes());
                b[44..46].copy_from_slice(&phnum.to_ne_bytes());
            }
            for (i, &(t, off, size)) in self.phdrs.iter().enumerate() {
                let p = ehsize + i * phsize;
                b[p..p + 4].copy_from_slice(&t.to_ne_bytes());
                if self.elf64 {
                    b[p + 8..p + 16].copy_from_slice(&off.to_ne_bytes());
                    b[p + 32..p + 40].copy_from_slice(&size.to_ne_bytes());
                } else {
                    b[p + 4..p + 8].copy_from_slice(&(off as u32).to_ne_bytes());
                    b[p + 16..p + 20].copy_from_slice(&(size as u32).to_ne_bytes());
                }
            }
            b
        }
    }

    /// A note: header, name padded to 4, descriptor padded to `align`.
    fn note(namesz: u32, name: &[u8], ntype: u32, desc: &[u8], align: usize) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend(namesz.to_ne_bytes());
        n.extend((desc.len() as u32).to_ne_bytes());
        n.extend(ntype.to_ne_bytes());
        n.extend(name);
        while n.len() % 4 != 0 {
            n.push(0);
        }
        n.extend(desc);
        while n.len() % align != 0 {
            n.push(0);
        }
        n
    }

    fn gnu(desc: &[u8]) -> Vec<u8> {
        note(4, b"GNU\0", NT_GNU_BUILD_ID, desc, 4)
    }

    const ID: [u8; 20] = *b"0123456789abcdefghij";

    fn id_of(bytes: &[u8]) -> Option<Vec<u8>> {
        parse(&mut { bytes })
    }

    /// A plain file: the notes of one PT_NOTE at 0x200.
    fn with_notes(elf64: bool, notes: &[u8]) -> Vec<u8> {
        let mut e = Elf::new(elf64);
        e.phdr(1, 0, 0x200)
            .phdr(PT_NOTE, 0x200, notes.len() as u64)
            .at(0x200, notes);
        e.build()
    }

    #[test]
    fn a_walk_steps_through_at_most_so_many_note_bytes() {
        // Files of 512 KiB of other notes before the build ID: each found, until the
        // walk's budget is spent; what each took is taken from it.
        let mut n = Vec::new();
        while n.len() < 512 << 10 {
            n.extend(note(4, b"XYZ\0", 7, &[0; 16], 4));
        }
        let stepped = n.len() as u64;
        n.extend(gnu(&ID));
        let f = with_notes(true, &n);
        let mut walk = WALK_NOTE_BYTES_MAX;
        // (A file needs more than its notes before the build ID: the search stops when
        // the budget is spent.)
        // The notes within the first 4 KiB (from 0x200: 112 of 32 bytes) are free.
        let free = HEAD as u64 - 0x200;
        assert!(free <= FREE_NOTE_BYTES);
        let charged = stepped - free;
        let fits = (WALK_NOTE_BYTES_MAX - 1) / charged;
        for i in 0..fits {
            let id = parse_within(&mut &f[..], &mut walk);
            assert_eq!(id.as_deref(), Some(&ID[..]), "file {i}");
        }
        assert_eq!(walk, WALK_NOTE_BYTES_MAX - fits * charged);
        assert_eq!(parse_within(&mut &f[..], &mut walk), None);
        assert_eq!(walk, 0);
        // Spent: a file whose build ID comes first is still parsed (a process mapping files
        // of empty notes does not take the others' build IDs), and takes nothing; one with
        // more than the free bytes of other notes before it is not.
        assert_eq!(
            parse_within(&mut &with_notes(true, &gnu(&ID))[..], &mut walk).as_deref(),
            Some(&ID[..])
        );
        // 32-byte notes before the build ID: after 110 (stepped through for free) its
        // note lies within the first 4 KiB; after 111 its ID does not (read past the first
        // 4 KiB, which the spent budget does not allow).
        let other = note(4, b"XYZ\0", 7, &[0; 16], 4);
        assert_eq!(other.len(), 32);
        for (before, found) in [(110, true), (111, false)] {
            let mut n = other.repeat(before);
            n.extend(gnu(&ID));
            let id = parse_within(&mut &with_notes(true, &n)[..], &mut walk);
            assert_eq!(id.is_some(), found, "{before} notes before");
        }
        assert_eq!(walk, 0);
        // A file's own cap still holds within a walk's (beyond its free bytes).
        let mut big = Vec::new();
        while big.len() as u64 <= NOTE_BYTES_MAX + FREE_NOTE_BYTES {
            big.extend(note(4, b"XYZ\0", 7, &[0; 16], 4));
        }
        big.extend(gnu(&ID));
        let mut walk = WALK_NOTE_BYTES_MAX;
        assert_eq!(
            parse_within(&mut &with_notes(true, &big)[..], &mut walk),
            None
        );
        assert_eq!(walk, WALK_NOTE_BYTES_MAX - NOTE_BYTES_MAX);
    }

    #[test]
    fn reads_past_the_head_are_paid_for() {
        // 256 note segments of one 28-byte note each, 128 KiB apart, and the program
        // headers past the first 4 KiB too: 7 KiB of notes, but each read of a note or of
        // the headers after it another 64 KiB of the file. Each read past the first 4 KiB
        // is paid for from the file's 1 MiB and the walk's 16 MiB: a walk over many such
        // files reads a bounded amount (it read 441 chunks per file before).
        let mut e = Elf::new(true);
        for i in 0..256u64 {
            let off = (i + 1) * (128 << 10);
            e.phdr(PT_NOTE, off, 28)
                .at(off as usize, &note(4, b"XYZ\0", 7, &[0; 12], 4));
        }
        // The head, and 1 MiB in chunks of 64 KiB (the last one may overdraw); in all, the
        // heads and 16 MiB in chunks of 64 KiB (each file's last may overdraw).
        walk_reads(&e.build(), 1 + 17, |files| 2 * files + 256);
    }

    #[test]
    fn finds_the_gnu_build_id_note_in_elf32_and_elf64() {
        for elf64 in [false, true] {
            let f = with_notes(elf64, &gnu(&ID));
            assert_eq!(id_of(&f).as_deref(), Some(&ID[..]), "elf64 {elf64}");
            // An 8-byte ID (--build-id=0x...), and the note after another note.
            let mut n = note(4, b"GNU\0", 1, &[1, 2, 3, 4], 4);
            n.extend(gnu(&ID[..8]));
            assert_eq!(id_of(&with_notes(elf64, &n)).as_deref(), Some(&ID[..8]));
            // ET_EXEC too; not ET_REL or ET_CORE.
            let mut e = Elf::new(elf64);
            e.phdr(PT_NOTE, 0x100, 36).at(0x100, &gnu(&ID));
            for (t, found) in [(ET_EXEC, true), (ET_DYN, true), (1, false), (4, false)] {
                e.e_type = t;
                assert_eq!(id_of(&e.build()).is_some(), found, "e_type {t}");
            }
        }
    }

    #[test]
    fn notes_that_are_not_the_build_id_are_skipped_as_the_kernel_skips_them() {
        let mut n = Vec::new();
        n.extend(note(4, b"GNU\0", NT_GNU_BUILD_ID, &[7; 21], 4)); // too long
        n.extend(note(4, b"GNU\0", NT_GNU_BUILD_ID, &[], 4)); // empty
        n.extend(note(3, b"GNU", NT_GNU_BUILD_ID, &[1; 20], 4)); // namesz without the NUL
        n.extend(note(4, b"Go\0\0", 4, &[1; 20], 4)); // Go's build ID
        n.extend(note(8, b"GNU\0GNU\0", NT_GNU_BUILD_ID, &[1; 20], 4));
        n.extend(gnu(&ID));
        assert_eq!(id_of(&with_notes(true, &n)).as_deref(), Some(&ID[..]));
        // A note that overruns its segment ends the search there.
        let mut bad = note(4, b"GNU\0", 1, &[0; 8], 4);
        bad[4..8].copy_from_slice(&1000u32.to_ne_bytes());
        bad.extend(gnu(&ID));
        assert_eq!(id_of(&with_notes(true, &bad)), None);
        // The kernel's ALIGN() wraps in 32 bits: a name size of 0xffffffff steps 12 bytes
        // only, and the next header is read where that note's name was.
        let mut wrap = Vec::new();
        wrap.extend(u32::MAX.to_ne_bytes());
        wrap.extend(0u32.to_ne_bytes());
        wrap.extend(1u32.to_ne_bytes());
        wrap.extend(gnu(&ID));
        assert_eq!(id_of(&with_notes(true, &wrap)).as_deref(), Some(&ID[..]));
        // Nothing but a header and a name left (16 bytes): the kernel stops.
        let short = with_notes(true, &gnu(&ID)[..16]);
        assert_eq!(id_of(&short), None);
    }

    #[test]
    fn segments_aligned_to_8_and_several_note_segments() {
        // .note.gnu.property (aligned to 8, its descriptor a multiple of 8) and the build ID
        // in one segment aligned to 8, as some linkers write them.
        let mut n = note(4, b"GNU\0", 5, &[0xaa; 16], 8);
        n.extend(note(4, b"GNU\0", NT_GNU_BUILD_ID, &ID, 8));
        assert_eq!(id_of(&with_notes(true, &n)).as_deref(), Some(&ID[..]));
        // The build ID in the second of two note segments; the first one points past the
        // end of the file (a failed read there moves on to the next segment).
        let mut e = Elf::new(true);
        e.phdr(PT_NOTE, 1 << 20, 64)
            .phdr(PT_NOTE, 0x300, 36)
            .at(0x300, &gnu(&ID));
        assert_eq!(id_of(&e.build()).as_deref(), Some(&ID[..]));
        // A note segment whose end does not fit in 32 bits is skipped.
        let mut e = Elf::new(true);
        e.phdr(PT_NOTE, u64::from(u32::MAX) - 8, 36)
            .phdr(PT_NOTE, 0x300, 36)
            .at(0x300, &gnu(&ID));
        assert_eq!(id_of(&e.build()).as_deref(), Some(&ID[..]));
    }

    #[test]
    fn at_most_256_program_headers_are_read() {
        let mut e = Elf::new(true);
        for _ in 0..256 {
            e.phdr(1, 0, 0);
        }
        e.phdr(PT_NOTE, 0x8000, 36).at(0x8000, &gnu(&ID));
        assert_eq!(id_of(&e.build()), None);
        e.phdrs.remove(0);
        assert_eq!(id_of(&e.build()).as_deref(), Some(&ID[..]));
        // The headers are read one at a time, as the kernel does: a table that runs past
        // the end of the file gives the note before the end, and nothing after it.
        let mut e = Elf::new(true);
        e.phdr(PT_NOTE, 0x300, 36).at(0x300, &gnu(&ID));
        e.phnum = Some(u16::MAX);
        assert_eq!(id_of(&e.build()).as_deref(), Some(&ID[..]));
        let mut e = Elf::new(true);
        e.phdr(1, 0, 0)
            .phdr(PT_NOTE, 0x300, 36)
            .at(0x300, &gnu(&ID));
        e.phnum = Some(u16::MAX);
        let mut b = e.build();
        b.truncate(64 + 56 + 8); // the second header cut
        assert_eq!(id_of(&b), None);
    }

    #[test]
    fn not_elf_or_the_other_byte_order_has_none() {
        let good = with_notes(true, &gnu(&ID));
        for bad in [
            &b""[..],
            b"\x7fELF",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03",
            b"#!/bin/sh\n",
        ] {
            assert_eq!(id_of(bad), None);
        }
        let mut b = good.clone();
        b[4] = 3; // no such class
        assert_eq!(id_of(&b), None);
        // The other byte order: the kernel reads e_type in the machine's (0x300, not 3).
        let mut b = good.clone();
        b[16..18].copy_from_slice(&ET_DYN.to_be_bytes());
        b[5] = 2;
        assert_eq!(id_of(&b), None);
    }

    #[test]
    fn truncated_and_mangled_files_never_panic() {
        for elf64 in [false, true] {
            let mut n = note(4, b"GNU\0", 5, &[0xaa; 16], 8);
            n.extend(gnu(&ID));
            let good = with_notes(elf64, &n);
            assert!(id_of(&good).is_some());
            // Every prefix: the ID or nothing, never another.
            for len in 0..good.len() {
                let id = id_of(&good[..len]);
                assert!(id.is_none() || id.as_deref() == Some(&ID[..]), "{len}");
            }
            // Random bytes changed, a few at a time (xorshift, fixed seed).
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(elf64);
            for _ in 0..20_000 {
                let mut b = good.clone();
                for _ in 0..1 + x % 4 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let i = (x % b.len() as u64) as usize;
                    b[i] = (x >> 32) as u8;
                    if x % 3 == 0 {
                        // Often the size and offset fields: all ones or large.
                        b[i] = 0xff;
                    }
                }
                let id = id_of(&b);
                assert!(id.as_ref().is_none_or(|id| id.len() <= SIZE_MAX));
            }
        }
    }

    #[test]
    fn a_file_is_read_past_its_first_page_only_as_needed() {
        // The notes beyond the first 4 KiB, read from the file.
        let mut e = Elf::new(true);
        e.phdr(PT_NOTE, 0x5000, 36).at(0x5000, &gnu(&ID));
        let bytes = e.build();
        let mut f = tempfile(&bytes);
        let r = FileReader::new(&f).unwrap();
        assert!(!r.whole);
        assert_eq!(
            parse(&mut FileReader::new(&f).unwrap()).as_deref(),
            Some(&ID[..])
        );
        // Cut inside the note: none.
        f.set_len(0x5000 + 20).unwrap();
        assert_eq!(parse(&mut FileReader::new(&f).unwrap()), None);
        f.set_len(0).unwrap();
        assert_eq!(parse(&mut FileReader::new(&f).unwrap()), None);
        let _ = &mut f;
    }

    /// A [`Fetch`] over bytes that counts the fetches.
    struct Counting<'a> {
        bytes: &'a [u8],
        fetches: u64,
    }

    impl Fetch for Counting<'_> {
        fn fetch(&mut self, off: u64, len: usize) -> Option<&[u8]> {
            self.fetches += 1;
            slice_at(self.bytes, off, len)
        }
    }

    /// The build ID of `bytes` and the fetches it took.
    fn counted(bytes: &[u8]) -> (Option<Vec<u8>>, u64) {
        let mut c = Counting { bytes, fetches: 0 };
        (parse(&mut c), c.fetches)
    }

    #[test]
    fn a_note_segment_is_scanned_once_and_at_most_1_mib_of_notes_per_file() {
        // 64 KiB of empty notes (12 bytes each), no build ID.
        let junk = |n: usize| {
            let mut e = Elf::new(true);
            for _ in 0..n {
                e.phdr(PT_NOTE, 0x8000, 0x10000);
            }
            e.at(0x8000, &[0; 0x10000]);
            e.build()
        };
        let (id, once) = counted(&junk(1));
        assert_eq!(id, None);
        assert!(once > 0x10000 / 12, "{once}");
        // The same segment 256 times: scanned once (255 more header reads only).
        let (id, many) = counted(&junk(256));
        assert_eq!((id, many), (None, once + 255));
        // Segments that differ, over 4 MiB of notes: at most 1 MiB stepped through.
        let mut e = Elf::new(true);
        for i in 0..256u64 {
            e.phdr(PT_NOTE, 0x8000 + 4 * i, (4 << 20) - 4 * i);
        }
        e.at(0x8000, &[0; 4 << 20]);
        let bytes = e.build();
        let (id, n) = counted(&bytes);
        assert_eq!(id, None);
        let max = NOTE_BYTES_MAX / 12 + 2 * 256 + 10;
        assert!(n <= max, "{n} fetches, {max} allowed");
        // The deviation from the kernel: a build ID past the first 1 MiB of notes is not
        // found; one within it is.
        for (at, found) in [(NOTE_BYTES_MAX / 2, true), (NOTE_BYTES_MAX + 0x1000, false)] {
            let mut e = Elf::new(true);
            let at = 0x8000 + at as usize / 12 * 12;
            e.phdr(PT_NOTE, 0x8000, (2 << 20) as u64)
                .at(0x8000, &[0; 2 << 20])
                .at(at, &gnu(&ID));
            assert_eq!(id_of(&e.build()).is_some(), found, "{at:#x}");
        }
    }

    #[test]
    fn a_hostile_sparse_file_is_parsed_fast() {
        // 4 GiB, sparse (zeros: notes of 12 bytes), with 256 note segments spanning nearly
        // all of it: the same segment each time, then each a little different. The kernel
        // would step through 4 GiB per segment; this must finish in well under a second.
        for shifted in [false, true] {
            let mut e = Elf::new(true);
            for i in 0..256u64 {
                let d = if shifted { 4 * i } else { 0 };
                // Past the program headers (64 + 256 * 56 bytes).
                e.phdr(PT_NOTE, 0x8000 + d, 0xffff_7000 - d); // the end fits in 32 bits
            }
            let f = tempfile(&e.build());
            f.set_len(1 << 32).unwrap();
            let t = std::time::Instant::now();
            let mut r = FileReader::new(&f).unwrap();
            assert_eq!(parse(&mut r), None);
            let took = t.elapsed();
            assert!(took < std::time::Duration::from_secs(5), "{took:?}");
            // Read in chunks of 64 KiB: 1 MiB of notes is 16 of them, and a few more.
            assert!(r.reads <= 40, "{} reads", r.reads);
        }
    }

    /// A directory in the place of `/proc/<pid>`: `root` (a symlink to the directory given
    /// to `root()`, or a directory of its own), and
    /// `map_files/<start>-<end>` a symlink to each file given; and an ELF file with [`ID`]
    /// in a directory of its own, its path and its VMA.
    struct FakeProc {
        dir: PathBuf,
        elf: PathBuf,
    }

    impl FakeProc {
        fn new(what: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("procmap-buildid-{}-{what}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("proc/map_files")).unwrap();
            std::fs::create_dir_all(dir.join("chroot/lib")).unwrap();
            let elf = dir.join("chroot/lib/libx.so");
            std::fs::write(&elf, with_notes(true, &gnu(&ID))).unwrap();
            FakeProc { dir, elf }
        }
        fn proc(&self) -> PathBuf {
            self.dir.join("proc")
        }
        /// `root` pointing at `target`.
        fn root(&self, target: &Path) -> &Self {
            self.no_root();
            std::os::unix::fs::symlink(target, self.proc().join("root")).unwrap();
            self
        }
        /// `root` a directory of its own, empty: as the root of another mount namespace,
        /// whose path (not a link here) is the whole printed path. Its path.
        fn root_dir(&self) -> PathBuf {
            self.no_root();
            let root = self.proc().join("root");
            std::fs::create_dir(&root).unwrap();
            root
        }
        fn no_root(&self) {
            let root = self.proc().join("root");
            if root.is_symlink() {
                std::fs::remove_file(&root).unwrap();
            } else if root.exists() {
                std::fs::remove_dir_all(&root).unwrap();
            }
        }
        /// `map_files/<start>-<end>` of `vma` pointing at the ELF file.
        fn map_file(&self, vma: &Vma) -> &Self {
            let link = format!("map_files/{:x}-{:x}", vma.start, vma.end);
            std::os::unix::fs::symlink(&self.elf, self.proc().join(link)).unwrap();
            self
        }
        /// A VMA of the ELF file at `start`, named `name`.
        fn vma(&self, start: u64, name: &Path) -> Vma {
            let m = std::fs::metadata(&self.elf).unwrap();
            Vma {
                start,
                end: start + 0x1000,
                inode: m.ino(),
                dev_major: libc::major(m.dev()),
                dev_minor: libc::minor(m.dev()),
                name: Some(name.as_os_str().as_bytes().to_vec()),
                ..Default::default()
            }
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_file_that_failed_to_open_for_one_vma_is_tried_for_the_next() {
        let p = FakeProc::new("retry");
        p.root(Path::new("/"));
        // Two VMAs of the file. The first cannot be opened (its map_files link is gone:
        // split since the text was read; and its path, renamed, holds nothing); the second
        // can (its map_files link).
        let gone = p.vma(0x10000, &p.elf);
        let good = p.vma(0x20000, &p.elf);
        let elsewhere = p.vma(0x30000, Path::new("/nonexistent/libx.so"));
        let away = p.dir.join("away");
        std::fs::rename(&p.elf, &away).unwrap();
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&gone), None);
        std::os::unix::fs::symlink(&away, p.proc().join("map_files/20000-21000")).unwrap();
        assert_eq!(ids.of(&good).as_deref(), Some(&ID[..]));
        // Once parsed, the file's build ID serves its other VMAs, openable or not.
        assert_eq!(ids.of(&gone).as_deref(), Some(&ID[..]));
        // Not those of another name with the same device and inode (another btrfs
        // subvolume's file): those are opened.
        assert_eq!(ids.of(&elsewhere), None);
    }

    #[test]
    fn paths_are_looked_up_under_the_process_root() {
        // A process in a chroot (of our mount namespace or its own): the maps text prints
        // the path from our root, and readlink() of its root gives the root's path from
        // ours, the start of the printed one; the rest is looked up under the root.
        let p = FakeProc::new("paths");
        p.root(&p.dir.join("chroot"));
        let printed = p.vma(0x10000, &p.elf);
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&printed).as_deref(), Some(&ID[..]), "in a chroot");
        // The root's path is that of the directory opened, not the text of the link (as
        // the kernel gives it, where the link text is the one path d_path() prints).
        let alias = p.dir.join("alias");
        std::os::unix::fs::symlink(p.dir.join("chroot"), &alias).unwrap();
        p.root(&alias);
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&printed).as_deref(), Some(&ID[..]), "through a link");
        let root = ids.target.as_ref().and_then(|t| t.root.as_ref());
        let chroot = std::fs::canonicalize(p.dir.join("chroot")).unwrap();
        assert_eq!(root.and_then(|(_, path)| path.as_deref()), Some(&*chroot));
        p.root(&p.dir.join("chroot"));
        // Private, where fstat() shows the VMA's device and inode: found all the same.
        {
            use std::os::unix::fs::PermissionsExt;
            let private = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(&p.elf, private).unwrap();
        }
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&printed).as_deref(), Some(&ID[..]), "private");
        // A file outside its root (mapped before the chroot()), printed from our root: found
        // as printed, fstat() showing the VMA's device and inode (on that route only those:
        // the btrfs test below has a file there that the maps text would show alike).
        let outside = p.dir.join("outside.so");
        std::fs::hard_link(&p.elf, &outside).unwrap();
        let out = p.vma(0x20000, &outside);
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&out).as_deref(), Some(&ID[..]), "outside the root");
        // A process of another mount namespace: its root, like its paths, seen from the
        // root of that namespace (`/`): the whole path under its root.
        let root = p.root_dir();
        std::fs::create_dir(root.join("lib")).unwrap();
        std::fs::hard_link(&p.elf, root.join("lib/libx.so")).unwrap();
        let rooted = p.vma(0x30000, Path::new("/lib/libx.so"));
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(
            ids.of(&rooted).as_deref(),
            Some(&ID[..]),
            "another namespace"
        );
        // The root is read once per walk: a chroot() after the walk's first lookup by path
        // (here, the root replaced) does not move the rest of the walk's lookups; the next
        // walk's are under the new root. (Another name for the file, so that it is opened
        // again.)
        std::fs::hard_link(&p.elf, root.join("lib/liby.so")).unwrap();
        let again = p.vma(0x38000, Path::new("/lib/liby.so"));
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&rooted).as_deref(), Some(&ID[..]));
        std::fs::rename(&root, p.dir.join("old-root")).unwrap();
        p.root_dir();
        assert_eq!(ids.of(&again).as_deref(), Some(&ID[..]), "the walk's root");
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&again), None, "the next walk's");
        std::fs::remove_dir(p.proc().join("root")).unwrap();
        std::fs::rename(p.dir.join("old-root"), &root).unwrap();
        // Another file at the path: refused.
        let mut other = rooted.clone();
        other.inode += 1;
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&other), None);
    }

    #[test]
    fn what_the_maps_show_is_cached_by_file_system_too() {
        // An anonymous device number, freed with a subvolume or file system, goes to the next
        // one mounted: entries of another f_fsid (or of none) are not this file's, and the
        // per-subvolume device is only taken for btrfs.
        let p = FakeProc::new("shown");
        let file = File::open(&p.elf).unwrap();
        let m = file.metadata().unwrap();
        let (fs, fsid) = fs_of(&file).unwrap();
        let bogus = (999, 999);
        let mut shown = Shown::default();
        for other in [0, fsid ^ 1] {
            shown
                .found
                .insert((m.dev(), m.ino(), other), Some((bogus.0, bogus.1, 1)));
            shown.btrfs.insert((m.dev(), other), bogus);
        }
        if fs != BTRFS {
            shown.btrfs.insert((m.dev(), fsid), bogus);
        }
        let want = (libc::major(m.dev()), libc::minor(m.dev()), m.ino());
        assert_eq!(shown.of(&file, &m, fs, fsid), Some(want));
    }

    #[test]
    fn a_file_is_parsed_once_whatever_its_names() {
        // Hard links: each name is looked up (the maps text shows the same device and
        // inode), the file parsed once.
        let p = FakeProc::new("links");
        p.root(Path::new("/"));
        let mut ids = BuildIds::new(Some(p.proc()));
        for i in 0..20u64 {
            let name = p.dir.join(format!("link{i}.so"));
            std::fs::hard_link(&p.elf, &name).unwrap();
            let v = p.vma(0x10000 + i * 0x1000, &name);
            assert_eq!(ids.of(&v).as_deref(), Some(&ID[..]));
        }
        assert_eq!(ids.parses, 1);
        // Another content at the same device and inode (as two files can show them, on
        // overlayfs over two btrfs subvolumes): parsed again, not taken from the first.
        const NEW: [u8; 20] = *b"NEWNEWNEWNEWNEWNEW!!";
        std::fs::write(&p.elf, with_notes(true, &gnu(&NEW))).unwrap();
        let name = p.dir.join("rewritten.so");
        std::fs::hard_link(&p.elf, &name).unwrap();
        let v = p.vma(0x40000, &name);
        assert_eq!(ids.of(&v).as_deref(), Some(&NEW[..]));
        assert_eq!(ids.parses, 2);
    }

    #[test]
    fn the_overflow_id_is_no_fsuid_unless_every_id_is_mapped() {
        // Each in a thread of its own (setfsuid() is per thread): the overflow ID stands
        // for any ID not mapped into our user namespace, ours or another's; where every ID
        // is mapped (the initial namespace, where the tests run), for nobody's own.
        let overflow = std::fs::read_to_string("/proc/sys/kernel/overflowuid").unwrap();
        let overflow: u32 = overflow.trim().parse().unwrap();
        let all = every_id_mapped(&std::fs::read("/proc/self/uid_map").unwrap());
        for (id, want) in [(1000, Some(1000)), (overflow, all.then_some(overflow))] {
            let got = std::thread::spawn(move || {
                // SAFETY: changes this thread's file-system user ID, which it ends with.
                unsafe { libc::setfsuid(id) };
                fsuid()
            });
            assert_eq!(got.join().unwrap(), want, "{id}");
        }
        assert!(every_id_mapped(b"         0          0 4294967295\n"));
        assert!(every_id_mapped(b"0 0 1000\n1000 1000 4294966295\n"));
        // A container's map; one without the top range; nothing (no map written yet).
        assert!(!every_id_mapped(b"         0     100000      65536\n"));
        assert!(!every_id_mapped(b"0 0 4294967294\n"));
        assert!(!every_id_mapped(b""));
        assert!(!every_id_mapped(b"0 0\n"));
        assert_eq!(uids(b"Uid:\t1\t2\t3\t4\n"), Some([1, 2, 3, 4]));
        assert_eq!(uids(b"Uid:\t1\t2\t3\n"), None);
        assert_eq!(uids(b"Gid:\t1\t2\t3\t4\n"), None);
    }

    #[test]
    fn the_devices_of_local_file_systems_in_a_mount_table() {
        let text = b"22 27 0:21 / /proc rw,relatime - proc proc rw\n\
            27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
            28 27 0:23 / /tmp rw master:2 shared:3 - tmpfs tmpfs rw\n\
            29 27 0:55 / /mnt/f rw,nosuid - fuse.sshfs host:/ rw,user_id=1000\n\
            30 27 0:56 /sub /srv rw - btrfs /dev/sdb rw\n\
            31 27 0:6 / /dev rw - devtmpfs devtmpfs rw\n\
            32 27 x:1 / /bad rw - ext4 /dev/bad rw\n\
            33 27 8:1 / /odd - ext4\n";
        let mut got: Vec<(u32, u32)> = memory_devices(text).collect();
        got.sort();
        assert_eq!(got, [(0, 23), (0, 56), (8, 1), (254, 0)]);
    }

    #[test]
    fn the_part_of_a_path_under_a_root() {
        let root = |r: &str| Some(PathBuf::from(r));
        let b = |s: &'static str| Some(s.as_bytes());
        assert_eq!(beneath(&root("/"), b"/usr/lib/x.so"), b("usr/lib/x.so"));
        assert_eq!(beneath(&root("/srv/c"), b"/srv/c/lib/x.so"), b("lib/x.so"));
        assert_eq!(beneath(&root("/srv/c/"), b"/srv/c/lib/x.so"), b("lib/x.so"));
        assert_eq!(beneath(&root("/srv/c"), b"/srv/cc/lib/x.so"), None);
        assert_eq!(beneath(&root("/srv/c"), b"/srv/c"), None);
        assert_eq!(beneath(&root("/srv/c"), b"/usr/lib/x.so"), None);
        assert_eq!(beneath(&root("/srv/c"), b"[heap]"), None);
        assert_eq!(beneath(&None, b"/usr/lib/x.so"), b("usr/lib/x.so"));
        assert_eq!(beneath(&None, b"[anon:x]"), None);
    }

    #[test]
    fn map_files_and_paths_need_the_device_and_inode_the_maps_show() {
        // A VMA whose device differs from what fstat() and the maps text show for the file
        // (a device of our own, so no btrfs; that test is below): refused through map_files
        // (the link is the file mapped at that range now, which may be another one mapped
        // over it since the text was read) and by path. The file system here is not btrfs:
        // its device is no anonymous one, so the maps text is not asked.
        let p = FakeProc::new("devices");
        p.root(Path::new("/"));
        let good = p.vma(0x10000, &p.elf);
        let mut vma = good.clone();
        vma.dev_major ^= 0x7f;
        p.map_file(&vma);
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&vma), None, "through map_files and by path");
        if libc::major(std::fs::metadata(&p.elf).unwrap().dev()) != 0 {
            assert!(ids.shown.found.is_empty(), "the maps text asked");
        } else {
            eprintln!("the test's files are on a file system with an anonymous device");
        }
        // The device and inode right: through map_files, whatever the path holds.
        let mut moved = good.clone();
        moved.name = Some(b"/nonexistent/libx.so".to_vec());
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(
            ids.of(&moved).as_deref(),
            Some(&ID[..]),
            "through map_files"
        );
        // Another inode: refused.
        let mut other = good;
        other.inode += 1;
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&other), None);
    }

    #[test]
    fn files_of_tracefs_debugfs_sysfs_and_procfs_are_not_read() {
        // A file of our own file system is read; tracefs's README, where tracefs is mounted
        // (it can be mapped; its trace_pipe would be consumed by a read), is not, nor a file
        // of sysfs or procfs (mappable ones there are a device's registers).
        let p = FakeProc::new("fs");
        let readable = |f: &File| fs_of(f).is_some_and(|(t, _)| safe_to_read(t));
        assert!(readable(&File::open(&p.elf).unwrap()));
        let mut tried = Vec::new();
        for path in [
            "/sys/kernel/tracing/README",
            "/sys/kernel/debug/tracing/README",
            "/sys/kernel/mm/transparent_hugepage/enabled",
            "/sys/kernel/profiling",
            "/proc/version",
        ] {
            let Ok(f) = File::open(path) else { continue };
            tried.push(path);
            assert!(!readable(&f), "{path}");
            let m = f.metadata().unwrap();
            let vma = Vma {
                start: 0x1000,
                end: 0x2000,
                inode: m.ino(),
                dev_major: libc::major(m.dev()),
                dev_minor: libc::minor(m.dev()),
                ..Default::default()
            };
            let mut shown = Shown::default();
            let got = open_checked(
                open_uncached(Path::new(path)).unwrap(),
                &vma,
                Some(&mut shown),
                true,
            );
            assert!(matches!(got.unwrap(), Checked::Unsafe), "{path}");
        }
        assert!(tried.contains(&"/proc/version"), "procfs is mounted");
        if !tried.iter().any(|p| p.contains("tracing")) {
            eprintln!("tracefs not mounted: its files not tried");
        }
    }

    /// A btrfs file system in a file, mounted (through a loop device) for a test: needs root,
    /// `mkfs.btrfs` and a kernel with btrfs. Where it cannot be made, `None`, and the test
    /// says it is skipped, unless `PROCMAP_REQUIRE_BTRFS` is set (`tools/test` sets it),
    /// where that fails the test.
    struct Btrfs {
        dir: PathBuf,
    }

    impl Btrfs {
        fn new(what: &str) -> Option<Self> {
            Self::of("btrfs", what)
        }
        /// A file system of type `fs` (`btrfs`, `xfs`) in an image, mounted; `None` (the
        /// test skipped) if it cannot be made, unless `PROCMAP_REQUIRE_BTRFS` (or `_XFS`)
        /// is set.
        fn of(fs: &str, what: &str) -> Option<Self> {
            let dir =
                std::env::temp_dir().join(format!("procmap-{fs}-{}-{what}", std::process::id()));
            let made = Btrfs { dir };
            let require = format!("PROCMAP_REQUIRE_{}", fs.to_uppercase());
            match made.make(fs) {
                Ok(()) => Some(made),
                Err(e) if std::env::var_os(&require).is_some() => {
                    panic!("no {fs} to test with ({require} is set): {e}")
                }
                Err(e) => {
                    eprintln!("skipped: no {fs} to test with: {e}");
                    None
                }
            }
        }
        fn make(&self, fs: &str) -> Result<(), String> {
            let img = self.dir.join("img");
            std::fs::create_dir_all(self.mnt()).map_err(|e| e.to_string())?;
            // (XFS needs 300 MiB at least; the image is sparse.)
            File::create(&img)
                .and_then(|f| f.set_len(320 << 20))
                .map_err(|e| e.to_string())?;
            run(std::process::Command::new(format!("mkfs.{fs}"))
                .arg("-q")
                .arg(&img))?;
            run(std::process::Command::new("mount")
                .args(["-t", fs, "-o", "loop"])
                .arg(&img)
                .arg(self.mnt()))
        }
        fn mnt(&self) -> PathBuf {
            self.dir.join("mnt")
        }
        /// A new subvolume, its path.
        fn subvolume(&self, name: &str) -> PathBuf {
            let path = self.mnt().join(name);
            run(std::process::Command::new("btrfs")
                .args(["subvolume", "create"])
                .arg(&path))
            .unwrap();
            path
        }
    }

    impl Drop for Btrfs {
        fn drop(&mut self) {
            // The loop device goes with the mount (`-o loop` sets it to clear itself).
            let _ = run(std::process::Command::new("umount").arg(self.mnt()));
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A page of ours whose first access from the kernel (a copy to or from it in a system
    /// call) waits until [`StuckPage::release`]: anonymous, registered with a userfaultfd
    /// for missing pages, whose faults nobody answers. What a user does to make a system
    /// call of theirs wait forever while it holds a lock.
    struct StuckPage {
        uffd: std::os::fd::OwnedFd,
        page: *mut u8,
    }

    // SAFETY: the page is only handed to the kernel, and the descriptor is a descriptor.
    unsafe impl Sync for StuckPage {}

    impl StuckPage {
        /// `None` (the test skipped) where userfaultfd is not available, unless
        /// `PROCMAP_REQUIRE_UFFD` is set.
        fn new() -> Option<Self> {
            const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
            const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
            // SAFETY: userfaultfd() with valid flags; the result is checked.
            let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) };
            if fd < 0 {
                let e = io::Error::last_os_error();
                assert!(
                    std::env::var_os("PROCMAP_REQUIRE_UFFD").is_none(),
                    "no userfaultfd (PROCMAP_REQUIRE_UFFD is set): {e}"
                );
                eprintln!("skipped: no userfaultfd: {e}");
                return None;
            }
            // SAFETY: a descriptor just opened and owned by nobody else.
            let uffd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
            // struct uffdio_api: UFFD_API, features, ioctls.
            let mut api = [0xaa_u64, 0, 0];
            // SAFETY: UFFDIO_API with its struct.
            let r = unsafe { libc::ioctl(fd as libc::c_int, UFFDIO_API, api.as_mut_ptr()) };
            assert_eq!(r, 0);
            // SAFETY: a new private anonymous page at an address the kernel chooses.
            let page = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(page, libc::MAP_FAILED);
            // struct uffdio_register: range (start, len), mode (MISSING), ioctls.
            let mut reg = [page as u64, 4096, 1, 0];
            // SAFETY: UFFDIO_REGISTER of our page with its struct.
            let r = unsafe { libc::ioctl(fd as libc::c_int, UFFDIO_REGISTER, reg.as_mut_ptr()) };
            assert_eq!(r, 0, "{}", io::Error::last_os_error());
            Some(StuckPage {
                uffd,
                page: page.cast(),
            })
        }
        /// The page.
        fn ptr(&self) -> *mut libc::c_void {
            self.page.cast()
        }
        /// Answers the page's fault with a zero page: what waited on it goes on.
        fn release(&self) {
            const UFFDIO_ZEROPAGE: libc::c_ulong = 0xc020_aa04;
            // struct uffdio_zeropage: range (start, len), mode, zeropage (out).
            let mut z = [self.page as u64, 4096, 0, 0];
            // SAFETY: UFFDIO_ZEROPAGE of our registered page with its struct (EEXIST if
            // answered already).
            unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_ZEROPAGE, z.as_mut_ptr()) };
        }
    }

    impl Drop for StuckPage {
        fn drop(&mut self) {
            self.release();
            // SAFETY: the page mapped in `new()`; nothing waits on it any more.
            unsafe { libc::munmap(self.page.cast(), 4096) };
        }
    }

    /// `f` on a thread of its own: its result, or `None` if it did not return within 10 s
    /// (then `release` is called, which must let it return, before this does).
    fn returns_in_time<T: Send>(f: impl FnOnce() -> T + Send, release: impl FnOnce()) -> Option<T> {
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel();
            let h = s.spawn(move || {
                let _ = tx.send(f());
            });
            let got = rx.recv_timeout(std::time::Duration::from_secs(10)).ok();
            release();
            h.join().unwrap();
            got
        })
    }

    #[test]
    fn vmas_of_a_file_an_overlay_copied_up_keep_their_own_build_ids() {
        // overlayfs shows a file copied up (written to) with the device, inode and name it
        // showed for the lower one, while a VMA mapped before keeps the lower file. The
        // kernel parses each VMA's own file: single queries of a walk must not give the
        // second VMA the first one's build ID, even side by side.
        const NEW: [u8; 20] = *b"copied-up-and-then-w";
        let Some(fs) = Btrfs::of("xfs", "copyup") else {
            return;
        };
        let d = |name: &str| {
            let dir = fs.mnt().join(name);
            std::fs::create_dir(&dir).unwrap();
            dir
        };
        let (lower, upper, work, merged) = (d("lower"), d("upper"), d("work"), d("merged"));
        let elf = with_notes(true, &gnu(&ID));
        let at = elf.windows(ID.len()).position(|w| w == ID).unwrap();
        std::fs::write(lower.join("lib.so"), &elf).unwrap();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        let overlay = match run(std::process::Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(&merged))
        {
            Ok(()) => BindMount(merged.clone()),
            Err(e) => {
                assert!(
                    std::env::var_os("PROCMAP_REQUIRE_XFS").is_none(),
                    "overlay: {e}"
                );
                eprintln!("skipped: no overlay: {e}");
                return;
            }
        };
        let path = merged.join("lib.so");
        let map_at = |base: *mut libc::c_void| {
            let f = File::open(&path).unwrap();
            // SAFETY: a private read-only mapping of the file's first page over a page of
            // the reservation below (MAP_FIXED), unmapped with it.
            let p = unsafe {
                libc::mmap(
                    base,
                    4096,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    f.as_raw_fd(),
                    0,
                )
            };
            assert_eq!(p, base);
        };
        // SAFETY: a new reservation of three pages, not touched but for the mappings made
        // over it above, unmapped at the end.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                3 * 4096,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(base != libc::MAP_FAILED);
        map_at(base);
        // Copied up by the write.
        let w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        w.write_all_at(&NEW, at as u64).unwrap();
        drop(w);
        // SAFETY: the second page of the reservation.
        map_at(unsafe { base.cast::<u8>().add(4096) }.cast());
        let start = base as u64;
        for names in [true, false] {
            let mut maps = crate::ProcMaps::open_self().unwrap();
            if maps.backend() == crate::Backend::Text {
                break; // no ioctl here: the text backend has its own tests
            }
            maps.set_backend(crate::Backend::Ioctl);
            let q = crate::Query::new().name(names).build_id(true);
            let got: Vec<Vma> = maps
                .iter_from(start, q)
                .take(2)
                .collect::<crate::Result<_>>()
                .unwrap();
            assert_eq!(got[0].start, start);
            assert_eq!(got[1].start, start + 4096);
            assert_eq!(
                (got[0].dev_major, got[0].inode, &got[0].name),
                (got[1].dev_major, got[1].inode, &got[1].name),
                "shown alike"
            );
            let ids: Vec<_> = got.iter().map(|v| v.build_id.clone()).collect();
            assert_eq!(
                ids,
                [Some(ID.to_vec()), Some(NEW.to_vec())],
                "names {names}"
            );
        }
        // SAFETY: the reservation made above, used no more.
        unsafe { libc::munmap(base, 3 * 4096) };
        drop(overlay);
    }

    #[test]
    fn a_file_whose_io_lock_is_held_is_read_without_waiting() {
        // XFS takes the inode's I/O lock for every read; a write() to the file from a page
        // whose fault nobody answers holds it for as long as the writer likes. A profiler
        // reading the file for its build ID must not wait on it (it could not be killed).
        // The same file through an overlay (as a container's root over XFS), whose reads,
        // without RWF_NOWAIT, take the lock of the file under it.
        let Some(fs) = Btrfs::of("xfs", "iolock") else {
            return;
        };
        let d = |name: &str| {
            let dir = fs.mnt().join(name);
            std::fs::create_dir(&dir).unwrap();
            dir
        };
        let (lower, upper, work, merged) = (d("lower"), d("upper"), d("work"), d("merged"));
        let path = lower.join("lib.so");
        std::fs::write(&path, with_notes(true, &gnu(&ID))).unwrap();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        let overlay = run(std::process::Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(&merged))
        .map(|()| BindMount(merged.clone()));
        if let Err(e) = &overlay {
            assert!(
                std::env::var_os("PROCMAP_REQUIRE_XFS").is_none(),
                "overlay: {e}"
            );
            eprintln!("skipped: no overlay over XFS: {e}");
        }
        let Some(stuck) = StuckPage::new() else {
            return;
        };
        let writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let files: Vec<File> = std::iter::once(path.clone())
            .chain(overlay.as_ref().ok().map(|_| merged.join("lib.so")))
            .map(|p| File::open(p).unwrap())
            .collect();
        std::thread::scope(|s| {
            // Released on the way out, a panic's too: the writer must end for the scope to.
            let _release = Released(&stuck);
            let w = s.spawn(|| {
                // SAFETY: a write of our stuck page to the file (past its notes), which
                // waits, with the I/O lock held, until the page is released.
                unsafe { libc::pwrite(writer.as_raw_fd(), stuck.ptr(), 4096, 1 << 20) }
            });
            // The lock is held: a read that may not wait says so.
            let mut byte = [0u8];
            let iov = libc::iovec {
                iov_base: byte.as_mut_ptr().cast(),
                iov_len: 1,
            };
            let nowait = || {
                // SAFETY: a read of one byte of the file into `byte`.
                unsafe { libc::preadv2(files[0].as_raw_fd(), &iov, 1, 0, libc::RWF_NOWAIT) }
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while nowait() == 1 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert_eq!(
                io::Error::last_os_error().raw_os_error(),
                Some(libc::EAGAIN)
            );
            assert!(!w.is_finished());
            let got = returns_in_time(
                || {
                    let id = |f: &File| FileReader::new(f).and_then(|mut r| parse(&mut r));
                    files.iter().map(id).collect::<Vec<_>>()
                },
                || stuck.release(),
            );
            assert_eq!(w.join().unwrap(), 4096);
            let want = vec![Some(ID.to_vec()); files.len()];
            assert_eq!(got, Some(want), "a read waited for the lock");
        });
    }

    /// Releases a [`StuckPage`] when dropped.
    struct Released<'a>(&'a StuckPage);

    impl Drop for Released<'_> {
        fn drop(&mut self) {
            self.0.release();
        }
    }

    #[test]
    fn a_lookup_by_path_never_waits_on_a_directory() {
        // A lookup of a name not in the kernel's cache takes its directory's lock: a
        // getdents64() of the directory into a page whose fault nobody answers holds it
        // shared, and a mkdir() queued behind it makes every new lookup wait. A deleted
        // file's name, "... (deleted)", is never in the cache.
        let p = FakeProc::new("dirlock");
        let at = map_deleted(&p.dir, "gone.so", &ID);
        let all = own_vmas();
        let v = all.iter().find(|v| v.start == at as u64).unwrap().clone();
        assert!(v.name_lossy().ends_with("gone.so (deleted)"), "{v:?}");
        p.root(Path::new("/"));
        let Some(stuck) = StuckPage::new() else {
            return;
        };
        let dir = File::open(&p.dir).unwrap();
        std::thread::scope(|s| {
            // Released on the way out, a panic's too: the threads must end for the scope to.
            let _release = Released(&stuck);
            let reader = s.spawn(|| {
                // SAFETY: getdents64() of the directory into our stuck page, which waits,
                // with the directory's lock held shared, until the page is released.
                unsafe { libc::syscall(libc::SYS_getdents64, dir.as_raw_fd(), stuck.ptr(), 4096) }
            });
            std::thread::sleep(std::time::Duration::from_millis(300));
            let queued = s.spawn(|| std::fs::create_dir(p.dir.join("queued")));
            std::thread::sleep(std::time::Duration::from_millis(300));
            // Both wait: the lock is held, and the mkdir() queued.
            assert!(!reader.is_finished() && !queued.is_finished());
            let got = returns_in_time(
                || {
                    let mut ids = BuildIds::new(Some(p.proc()));
                    ids.of_in(&v, &all);
                    ids.path_lookups
                },
                || stuck.release(),
            );
            assert!(reader.join().unwrap() > 0);
            queued.join().unwrap().unwrap();
            assert_eq!(got, Some(1), "the lookup waited for the directory");
        });
        // SAFETY: the mapping made by map_deleted(); nothing refers to it any more.
        unsafe { libc::munmap(at.cast(), 0x3000) };
    }

    /// A file mounted (`--bind`) over another for as long as this lives.
    struct BindMount(PathBuf);

    impl BindMount {
        fn new(what: &Path, at: &Path) -> Self {
            run(std::process::Command::new("mount")
                .arg("--bind")
                .arg(what)
                .arg(at))
            .unwrap();
            BindMount(at.to_owned())
        }
    }

    impl Drop for BindMount {
        fn drop(&mut self) {
            let _ = run(std::process::Command::new("umount").arg(&self.0));
        }
    }

    /// Runs a command; its standard error if it fails.
    fn run(cmd: &mut std::process::Command) -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }

    /// A page of a file mapped (read-only, private) for as long as this lives.
    struct Mapped(*mut libc::c_void);

    impl Mapped {
        fn new(path: &Path) -> Self {
            let f = File::open(path).unwrap();
            // SAFETY: a new private read-only mapping at an address the kernel chooses.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE,
                    f.as_raw_fd(),
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED);
            Mapped(p)
        }
        fn addr(&self) -> u64 {
            self.0 as u64
        }
    }

    impl Drop for Mapped {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new()`, of one page; nothing refers to it.
            unsafe { libc::munmap(self.0, 4096) };
        }
    }

    /// An ELF file of three pages with [`ID`], in `dir`: its headers on the first, its build
    /// ID note on the second, a note with `wrong` on the third, the first PT_NOTE. Mapped
    /// here read-only and deleted: the second page a VMA of its own (MADV_DONTFORK splits it
    /// off), the third writable. The mapping's address.
    fn map_deleted(dir: &Path, name: &str, wrong: &[u8]) -> *mut u8 {
        let path = dir.join(name);
        std::fs::write(&path, three_pages(&ID, wrong)).unwrap();
        let at = map_three(&File::open(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        at
    }

    /// Maps the three pages of `f` as [`map_deleted`] does.
    fn map_three(f: &File) -> *mut u8 {
        // SAFETY: a new private read-only mapping of three pages at an address the kernel
        // chooses, then advice and protections of its own pages.
        unsafe {
            let at = libc::mmap(
                std::ptr::null_mut(),
                0x3000,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                f.as_raw_fd(),
                0,
            );
            assert_ne!(at, libc::MAP_FAILED);
            let at = at as *mut u8;
            assert_eq!(
                libc::madvise(at.add(0x1000).cast(), 0x1000, libc::MADV_DONTFORK),
                0
            );
            let rw = libc::PROT_READ | libc::PROT_WRITE;
            assert_eq!(libc::mprotect(at.add(0x2000).cast(), 0x1000, rw), 0);
            at
        }
    }

    /// The file [`map_deleted`] maps, with `id` for [`ID`].
    fn three_pages(id: &[u8], wrong: &[u8]) -> Vec<u8> {
        Elf::new(true)
            .phdr(PT_NOTE, 0x2000, gnu(wrong).len() as u64)
            .phdr(PT_NOTE, 0x1000, gnu(id).len() as u64)
            .at(0x1000, &gnu(id))
            .at(0x2000, &gnu(wrong))
            .at(0x2fff, &[0])
            .build()
    }

    /// This process's VMAs, as the maps text shows them, with names.
    fn own_vmas() -> Vec<Vma> {
        let text = crate::Options::new()
            .backend(crate::Backend::Text)
            .open_self()
            .unwrap();
        text.iter(crate::Query::new().name(true))
            .collect::<crate::Result<_>>()
            .unwrap()
    }

    #[test]
    fn reads_that_fail_are_paid_for_too() {
        // 126 note segments, each of another size, 8 bytes before the end of an 8 KiB file:
        // each note's header is read (a read of 64 KiB at that offset), and not all there.
        // A failed read is paid for as one that succeeds: a walk over many such files reads
        // a bounded amount (it read 126 times per file before).
        let mut e = Elf::new(false);
        for j in 0..126 {
            e.phdr(PT_NOTE, 8184, 17 + j);
        }
        e.at(8191, &[0]);
        walk_reads(&e.build(), 1 + 16, |files| files + 256);
    }

    /// Parses `elf` (no build ID) as 40 files of one walk: at most `per_file` reads each,
    /// `in_all(files)` in all, and the walk's budget spent.
    fn walk_reads(elf: &[u8], per_file: u64, in_all: impl Fn(u64) -> u64) {
        let f = tempfile(elf);
        let mut walk = WALK_NOTE_BYTES_MAX;
        let files = 40;
        let mut reads = 0;
        for _ in 0..files {
            let mut r = FileReader::new(&f).unwrap();
            assert_eq!(parse_within(&mut r, &mut walk), None);
            assert!(r.reads <= per_file, "{} reads of one file", r.reads);
            reads += r.reads;
        }
        assert_eq!(walk, 0);
        assert!(reads <= in_all(files), "{reads} reads in all");
    }

    #[test]
    fn reads_in_memory_are_paid_for() {
        // The same through a process's memory (a deleted file, no map_files): 126 note
        // segments, each of another size, whose note header ends at the end of the mapping
        // and names a name too long for it. Each read past the first 4 KiB is paid for as a
        // chunk, whatever it copied; the first 4 KiB are read once.
        let p = FakeProc::new("memreads");
        let mut e = Elf::new(false);
        for j in 0..126 {
            e.phdr(PT_NOTE, 0x2ff0, 17 + j);
        }
        e.at(0x2ff0, &note(0x7fff_0000, b"", 7, &[], 4));
        e.at(0x2fff, &[0]);
        let path = p.dir.join("scattered.so");
        std::fs::write(&path, e.build()).unwrap();
        let f = File::open(&path).unwrap();
        let at = map_three(&f);
        std::fs::remove_file(&path).unwrap();
        for page in 0..3 {
            // SAFETY: a page of the mapping, readable.
            unsafe { std::ptr::read_volatile(at.add(page * 0x1000)) };
        }
        p.root(Path::new("/nonexistent"));
        for name in ["maps", "mem", "pagemap", "status", "mountinfo"] {
            let ours = Path::new("/proc/self").join(name);
            std::os::unix::fs::symlink(ours, p.proc().join(name)).unwrap();
        }
        let all = own_vmas();
        let v = all.iter().find(|v| v.start == at as u64).unwrap();
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of_in(v, &all), None);
        assert_eq!(ids.memory_parses, 1);
        assert!(ids.memory_reads <= 16, "{} reads", ids.memory_reads);
        assert!(ids.memory_reads > 0, "read in memory");
        // SAFETY: the mapping made by map_three(), used no more.
        unsafe { libc::munmap(at.cast(), 0x3000) };
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_read_in_memory() {
        const WRONG: [u8; 20] = *b"written-by-a-process";
        let p = FakeProc::new("memory");
        let at = map_deleted(&p.dir, "gone.so", &WRONG);
        let touch = |page: usize| {
            // SAFETY: a page of the mapping, readable.
            unsafe { std::ptr::read_volatile(at.add(page * 0x1000)) }
        };
        let all = own_vmas();
        let ours: Vec<&Vma> = all
            .iter()
            .filter(|v| v.start >= at as u64 && v.end <= at as u64 + 0x3000)
            .collect();
        assert_eq!(ours.len(), 3, "{ours:?}");
        assert!(ours[0].name_lossy().ends_with("gone.so (deleted)"));
        // No map_files, no path: its memory, where it can be read.
        p.root(Path::new("/nonexistent"));
        let of = |v: &Vma| BuildIds::new(Some(p.proc())).of_in(v, &all);
        assert_eq!(of(ours[1]), None, "no /proc/<pid>/mem");
        for name in ["maps", "mem", "pagemap", "status", "mountinfo"] {
            let ours = Path::new("/proc/self").join(name);
            std::os::unix::fs::symlink(ours, p.proc().join(name)).unwrap();
        }
        // Pages not present are not read (the note's page is a VMA of its own, which the
        // kernel's fault-around does not map with the first).
        assert_eq!(of(ours[1]), None, "not present");
        touch(0);
        assert_eq!(of(ours[1]), None, "the note's page not present");
        touch(1);
        touch(2);
        // Not the writable VMA's note, present but which the process may have written.
        for v in &ours {
            assert_eq!(of(v).as_deref(), Some(&ID[..]), "{v:?}");
        }
        // Once per file per walk, found or not.
        let mut ids = BuildIds::new(Some(p.proc()));
        for v in ours.iter().chain(&ours) {
            assert_eq!(ids.of_in(v, &all).as_deref(), Some(&ID[..]));
        }
        assert_eq!(ids.memory_parses, 1);
        // And looked up by path once: a lookup depends on the name, not on the VMA.
        assert_eq!(ids.path_lookups, 1);
        // Nor a VMA of another file, or of the file under another name.
        let mut other = ours[1].clone();
        other.name = Some(b"/elsewhere.so".to_vec());
        assert_eq!(of(&other), None);
        // Nor where a file was found at the range or path that is not to be read (here
        // procfs's /proc/version through map_files): its memory may be that file's too.
        let link = format!("map_files/{:x}-{:x}", ours[1].start, ours[1].end);
        std::os::unix::fs::symlink("/proc/version", p.proc().join(&link)).unwrap();
        assert_eq!(of(ours[1]), None, "a file of procfs");
        std::fs::remove_file(p.proc().join(&link)).unwrap();
        // Nor a process of another user (the owner of its /proc directory, and all four
        // user IDs of its status).
        std::os::unix::fs::chown(p.proc(), Some(1000), None).unwrap();
        assert_eq!(of(ours[1]), None, "another user's");
        std::os::unix::fs::chown(p.proc(), Some(0), None).unwrap();
        let status = |uids: &str| {
            let _ = std::fs::remove_file(p.proc().join("status"));
            let text = format!("Name:\tx\nUid:\t{uids}\nGid:\t0\t0\t0\t0\n");
            std::fs::write(p.proc().join("status"), text).unwrap();
        };
        for uids in ["1000\t0\t0\t0", "0\t0\t0\t1000", "0\t0\t0", "0\t0\tx\t0"] {
            status(uids);
            assert_eq!(of(ours[1]), None, "{uids:?}");
        }
        status("0\t0\t0\t0");
        assert_eq!(of(ours[1]).as_deref(), Some(&ID[..]));
        // Nor where a lookup of the file failed otherwise than for a name not there: here a
        // directory on the path that we cannot search (as a FUSE file system answers
        // processes other than its user's), for a thread of ours without the capabilities
        // that let root search it anyway.
        let root = p.root_dir();
        let name = ours[1].name.clone().unwrap();
        let first = name.split(|&b| b == b'/').find(|c| !c.is_empty()).unwrap();
        let locked = root.join(std::ffi::OsStr::from_bytes(first));
        // The file's directory there, so that only its name is not there (a lookup of a
        // name that no directory on the way holds is one the kernel's cache of names
        // cannot finish either way: unknown).
        let rel = Path::new(std::ffi::OsStr::from_bytes(&name[1..]));
        std::fs::create_dir_all(root.join(rel.parent().unwrap())).unwrap();
        std::os::unix::fs::chown(&locked, Some(1000), None).unwrap();
        let mode = |m| std::os::unix::fs::PermissionsExt::from_mode(m);
        std::fs::set_permissions(&locked, mode(0o700)).unwrap();
        let without_dac = || {
            std::thread::scope(|s| {
                s.spawn(|| {
                    // CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
                    caps::drop_effective_caps(&[1, 2]).unwrap();
                    BuildIds::new(Some(p.proc())).of_in(ours[1], &all)
                })
                .join()
                .unwrap()
            })
        };
        assert_eq!(without_dac(), None, "EACCES on the path");
        std::fs::set_permissions(&locked, mode(0o755)).unwrap();
        assert_eq!(
            without_dac().as_deref(),
            Some(&ID[..]),
            "ENOENT on the path"
        );
        p.root(Path::new("/nonexistent"));
        // Nor a file of a file system that is not local, or that no mount table shows.
        std::fs::remove_file(p.proc().join("mountinfo")).unwrap();
        let empty = p.dir.join("no-mounts");
        std::fs::write(&empty, b"").unwrap();
        let (major, minor) = (ours[1].dev_major, ours[1].dev_minor);
        for (fs, found) in [
            ("fuse", false),
            ("fuseblk", false),
            ("nfs4", false),
            ("ext4", true),
        ] {
            let line = format!("36 25 {major}:{minor} / /x rw shared:1 - {fs} /dev/x rw\n");
            std::fs::write(p.proc().join("mountinfo"), line).unwrap();
            let mut ids = BuildIds::new(Some(p.proc()));
            ids.own_mounts = empty.clone();
            assert_eq!(ids.of_in(ours[1], &all).is_some(), found, "{fs}");
        }
        std::fs::remove_file(p.proc().join("mountinfo")).unwrap();
        let mut ids = BuildIds::new(Some(p.proc()));
        ids.own_mounts = empty.clone();
        assert_eq!(ids.of_in(ours[1], &all), None, "in no mount table");
        assert_eq!(of(ours[1]).as_deref(), Some(&ID[..]), "in ours");
        // Nor a page the process wrote (its own copy, not the file's), even made read-only
        // again: here the note's page, given the other note.
        // SAFETY: the note's page of the mapping, made writable, written within, made
        // read-only again.
        unsafe {
            let page = at.add(0x1000);
            let rw = libc::PROT_READ | libc::PROT_WRITE;
            assert_eq!(libc::mprotect(page.cast(), 0x1000, rw), 0);
            let note = gnu(&WRONG);
            std::ptr::copy_nonoverlapping(note.as_ptr(), page, note.len());
            assert_eq!(libc::mprotect(page.cast(), 0x1000, libc::PROT_READ), 0);
        }
        let all = own_vmas();
        let v = all.iter().find(|v| v.start == ours[1].start).unwrap();
        assert_eq!(of(v), None, "written");
        // SAFETY: the mapping made above; nothing refers to it any more.
        unsafe { libc::munmap(at.cast(), 0x3000) };
    }

    #[test]
    fn a_memfd_is_read_in_memory() {
        // A program run from a memfd (fexecve(), as container runtimes run themselves):
        // its file is on the kernel's own tmpfs mount, which no mount table shows, and its
        // path cannot be opened.
        let p = FakeProc::new("memfd");
        // SAFETY: memfd_create() with a NUL-terminated name; the descriptor is ours.
        let memfd = unsafe {
            let fd = libc::memfd_create(c"procmap-test".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0);
            File::from(OwnedFd::from_raw_fd(fd))
        };
        std::io::Write::write_all(&mut &memfd, &three_pages(&ID, &ID)).unwrap();
        let at = map_three(&memfd);
        drop(memfd);
        for page in 0..3 {
            // SAFETY: a page of the mapping, readable.
            unsafe { std::ptr::read_volatile(at.add(page * 0x1000)) };
        }
        let all = own_vmas();
        let v = all.iter().find(|v| v.start == at as u64 + 0x1000).unwrap();
        assert!(v.name_lossy().starts_with("/memfd:procmap-test"), "{v:?}");
        p.root(Path::new("/nonexistent"));
        for name in ["maps", "mem", "pagemap", "status", "mountinfo"] {
            let ours = Path::new("/proc/self").join(name);
            std::os::unix::fs::symlink(ours, p.proc().join(name)).unwrap();
        }
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of_in(v, &all).as_deref(), Some(&ID[..]));
        // SAFETY: the mapping made above; nothing refers to it any more.
        unsafe { libc::munmap(at.cast(), 0x3000) };
    }

    #[test]
    fn memory_is_read_only_where_the_vmas_are_as_the_walk_saw_them() {
        // A walk's text shows a deleted file; before its memory is read, another file is
        // mapped over the same range (an execve() or a reused PID would do the same): its
        // notes are not taken for the first file's.
        const OTHER: [u8; 20] = *b"another-file-mapped!";
        let p = FakeProc::new("memory-moved");
        p.root(Path::new("/nonexistent"));
        for name in ["maps", "mem", "pagemap", "status", "mountinfo"] {
            let ours = Path::new("/proc/self").join(name);
            std::os::unix::fs::symlink(ours, p.proc().join(name)).unwrap();
        }
        let at = map_deleted(&p.dir, "first.so", &OTHER);
        let touch = || {
            for i in 0..3 {
                // SAFETY: a page of the mapping, readable.
                let _ = unsafe { std::ptr::read_volatile(at.add(i * 0x1000)) };
            }
        };
        touch();
        let all = own_vmas();
        let first = all.iter().find(|v| v.start == at as u64).unwrap().clone();
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of_in(&first, &all).as_deref(), Some(&ID[..]));
        // Another ELF file, with the build ID OTHER, mapped over the same range.
        let second = p.dir.join("second.so");
        std::fs::write(&second, three_pages(&OTHER, &OTHER)).unwrap();
        let f = File::open(&second).unwrap();
        // SAFETY: a private read-only mapping of the file over our own mapping at `at`.
        let over = unsafe {
            let flags = libc::MAP_PRIVATE | libc::MAP_FIXED;
            libc::mmap(at.cast(), 0x3000, libc::PROT_READ, flags, f.as_raw_fd(), 0)
        };
        assert_eq!(over, at.cast());
        touch();
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of_in(&first, &all), None);
        // With the text as it is now: the second file's.
        let all = own_vmas();
        let now = all.iter().find(|v| v.start == at as u64).unwrap();
        assert!(now.name_lossy().ends_with("second.so"), "{now:?}");
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of_in(now, &all).as_deref(), Some(&OTHER[..]));
        // SAFETY: the mapping made above; nothing refers to it any more.
        unsafe { libc::munmap(at.cast(), 0x3000) };
    }

    #[test]
    fn files_of_two_btrfs_subvolumes_showing_the_same_device_and_inode() {
        // Each btrfs subvolume numbers its inodes from 256, and the maps text shows the
        // file system's device, where fstat() shows the subvolume's: the first file of two
        // subvolumes shows the same (device, inode) in the maps, and another device in
        // fstat(). Each must have its own build ID, by path and through map_files.
        let Some(fs) = Btrfs::new("subvolumes") else {
            return;
        };
        const OTHER: [u8; 20] = *b"jihgfedcba9876543210";
        let mut files: Vec<(PathBuf, [u8; 20])> = [("a", ID), ("b", OTHER)]
            .into_iter()
            .map(|(sub, id)| {
                let path = fs.subvolume(sub).join("libx.so");
                std::fs::write(&path, with_notes(true, &gnu(&id))).unwrap();
                (path, id)
            })
            .collect();
        // And a second file of b (its device known from the first once that was mapped).
        const THIRD: [u8; 20] = *b"ABCDEFGHIJKLMNOPQRST";
        let third = files[1].0.with_file_name("liby.so");
        std::fs::write(&third, with_notes(true, &gnu(&THIRD))).unwrap();
        files.push((third, THIRD));
        let mapped: Vec<Mapped> = files.iter().map(|(p, _)| Mapped::new(p)).collect();
        // The VMAs as the maps text of this process shows them.
        let text = crate::Options::new()
            .backend(crate::Backend::Text)
            .open_self()
            .unwrap();
        let vmas: Vec<Vma> = mapped
            .iter()
            .map(|m| {
                let q = crate::Query::new().name(true);
                text.query(m.addr(), q).unwrap().unwrap()
            })
            .collect();
        let shown = |v: &Vma| (v.dev_major, v.dev_minor, v.inode);
        assert_eq!(shown(&vmas[0]), shown(&vmas[1]), "the maps show one file");
        let st = std::fs::metadata(&files[0].0).unwrap();
        let stat = (libc::major(st.dev()), libc::minor(st.dev()), st.ino());
        assert_ne!(stat, shown(&vmas[0]), "fstat() shows the maps' device");

        // By path (no map_files), in one walk's cache: under the process's root, the maps
        // text of a mapping of the file says (as printed, where fstat() shows another
        // device, it would be refused).
        let p = FakeProc::new("btrfs-paths");
        p.root(Path::new("/"));
        let mut ids = BuildIds::new(Some(p.proc()));
        // (Devices of other subvolumes or file systems with a's number: not taken.)
        let a = std::fs::metadata(&files[0].0).unwrap();
        let (_, fsid) = fs_of(&File::open(&files[0].0).unwrap()).unwrap();
        for other in [0, fsid ^ 1] {
            ids.shown.btrfs.insert((a.dev(), other), (999, 999));
        }
        for (v, (path, id)) in vmas.iter().zip(&files) {
            assert_eq!(ids.of(v).as_deref(), Some(&id[..]), "{}", path.display());
        }
        // A target in another mount namespace, where the path that holds a's file in ours
        // holds b's (here: b's file mounted at that path under the target's root): b's
        // build ID, not that of the file at the printed path in our namespace, which
        // shows the same device and inode.
        let rel = files[0].0.strip_prefix("/").unwrap();
        let other_root = p.root_dir();
        let at = other_root.join(rel);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(&at, b"").unwrap();
        let bound = BindMount::new(&files[1].0, &at);
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(
            ids.of(&vmas[0]).as_deref(),
            Some(&OTHER[..]),
            "b's, at a's path"
        );
        // Unless b's file is not readable by anyone: a target could mount a file it cannot
        // read there, and have us read it.
        let mode = |path: &Path, m: u32| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
        };
        mode(&files[1].0, 0o640);
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&vmas[0]), None, "a private file by path");
        // Unless it is ours (not root's): the kernel's check of our open decides then. A
        // thread of ours with another file-system user ID (setfsuid() is per thread, and
        // takes the file capabilities away) stands for a profiler running as that user.
        let as_user = |uid: u32| {
            std::thread::scope(|s| {
                s.spawn(|| {
                    // SAFETY: changes this thread's file-system user ID, which it ends with.
                    unsafe { libc::setfsuid(uid) };
                    assert_eq!(fsuid(), Some(uid));
                    BuildIds::new(Some(p.proc())).of(&vmas[0])
                })
                .join()
                .unwrap()
            })
        };
        let chown = |uid: u32| std::os::unix::fs::chown(&files[1].0, Some(uid), Some(0)).unwrap();
        assert_eq!(as_user(1000), None, "another owner's, to a user");
        chown(1000);
        assert_eq!(as_user(1000).as_deref(), Some(&OTHER[..]), "the user's own");
        assert_eq!(as_user(1001), None, "another user's");
        // Owned by the overflow ID, which also stands for an owner not mapped (an idmapped
        // mount): not the overflow user's own, even where every ID is mapped.
        let overflow = overflow_uid();
        chown(overflow);
        if every_id_mapped(&std::fs::read("/proc/self/uid_map").unwrap()) {
            assert_eq!(as_user(overflow), None, "owned by the overflow ID");
        }
        chown(1000);
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&vmas[0]), None, "a user's, to root");
        chown(0);
        mode(&files[1].0, 0o644);
        drop(bound);
        // A symlink under the target's root resolves in our mount namespace: refused, at
        // the file (to a's file) and at a directory on the path (to our /tmp).
        std::fs::remove_file(&at).unwrap();
        std::os::unix::fs::symlink(&files[0].0, &at).unwrap();
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&vmas[0]), None, "a symlink at the file");
        let top = other_root.join(rel.components().next().unwrap());
        std::fs::remove_dir_all(&top).unwrap();
        std::os::unix::fs::symlink(Path::new("/").join(top.file_name().unwrap()), &top).unwrap();
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&vmas[0]), None, "a symlink on the path");
        // Our own root as the target's (a process of our namespace): a's.
        p.root(Path::new("/"));
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&vmas[0]).as_deref(), Some(&ID[..]));
        // Through map_files: the file mapped at the VMA's range, but another one mapped
        // over it since the text was read, with the same inode number (the first file of
        // another btrfs file system): refused.
        let other_fs = Btrfs::new("other").unwrap();
        let elsewhere = other_fs.subvolume("c").join("libx.so");
        std::fs::write(&elsewhere, with_notes(true, &gnu(b"zyxwvutsrqponmlkjihg"))).unwrap();
        assert_eq!(std::fs::metadata(&elsewhere).unwrap().ino(), vmas[0].inode);
        let link = format!("map_files/{:x}-{:x}", vmas[0].start, vmas[0].end);
        std::os::unix::fs::symlink(&elsewhere, p.proc().join(&link)).unwrap();
        // (No path: the root is elsewhere.)
        p.root(Path::new("/nonexistent"));
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&vmas[0]), None, "another file at the VMA's range");
        std::fs::remove_file(p.proc().join(&link)).unwrap();
        drop(other_fs);
        // The VMA's own file there: found through map_files, as the maps text shows it,
        // private or not (the target mapped it).
        std::os::unix::fs::symlink(&files[0].0, p.proc().join(&link)).unwrap();
        mode(&files[0].0, 0o600);
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(
            ids.of(&vmas[0]).as_deref(),
            Some(&ID[..]),
            "through map_files"
        );
        mode(&files[0].0, 0o644);
        std::fs::remove_file(p.proc().join(&link)).unwrap();
        // A file replaced at its path (another inode) is refused.
        p.root(Path::new("/"));
        let old = files[1].0.with_file_name("old.so");
        std::fs::rename(&files[1].0, &old).unwrap();
        std::fs::write(&files[1].0, with_notes(true, &gnu(&ID))).unwrap();
        let mut ids = BuildIds::new(Some(p.proc()));
        assert_eq!(ids.of(&vmas[1]), None, "replaced");
        std::fs::rename(&old, &files[1].0).unwrap();
        // A walk of this process's maps: through map_files (the tests run as root, as
        // mounting needs), and from the kernel.
        // Without names too: the files show the same device and inode, so a single query
        // may not take the build ID of the VMA before.
        for (backend, names) in [
            (crate::Backend::Text, true),
            (crate::Backend::Ioctl, true),
            (crate::Backend::Ioctl, false),
        ] {
            let maps = crate::Options::new().backend(backend).open_self().unwrap();
            let q = crate::Query::new().name(names).build_id(true);
            let all: Vec<Vma> = maps.iter(q).collect::<crate::Result<_>>().unwrap();
            for (m, (path, id)) in mapped.iter().zip(&files) {
                let v = all.iter().find(|v| v.contains(m.addr())).unwrap();
                assert_eq!(
                    v.build_id.as_deref(),
                    Some(&id[..]),
                    "{backend:?}, names {names}: {}",
                    path.display()
                );
            }
        }
    }

    fn tempfile(bytes: &[u8]) -> File {
        use std::io::Write;
        // SAFETY: a valid C string; the result is checked.
        let fd = unsafe { libc::memfd_create(c"procmap-elf".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: `fd` was just opened and is owned by nobody else.
        let mut f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        f.write_all(bytes).unwrap();
        f
    }
}

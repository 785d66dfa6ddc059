//! Child processes with prepared mappings, shared by the integration tests.

#![allow(dead_code)]

pub mod caps;

use std::ffi::CString;

pub const PAGE: usize = 4096;

/// A child process that sets up mappings and waits; killed (and its files removed) on drop.
pub struct Child {
    pub pid: libc::pid_t,
    /// Whether the kernel named the anonymous VMA (`CONFIG_ANON_VMA_NAME`).
    pub anon_named: bool,
    /// A directory to remove after the child is gone.
    cleanup: Option<std::path::PathBuf>,
    /// The read end of the pipe on which a child of [`Child::spawn_mapping_on_signal`]
    /// answers.
    answers: Option<libc::c_int>,
}

fn tmp(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "/tmp/procmap-test-{}-{what}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Forks; the child runs `prep` (which must only make async-signal-safe calls: no
/// allocation), writes the byte it returns to the parent and waits to be killed.
fn fork_with(prep: impl FnOnce() -> u8) -> (libc::pid_t, u8) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is valid for two ints.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: plain fork; the child only makes async-signal-safe calls and never returns.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let b = [prep()];
        // SAFETY: only async-signal-safe system calls on valid arguments.
        unsafe {
            libc::write(fds[1], b.as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        }
    }
    let mut b = [0u8; 1];
    // SAFETY: `b` is valid for one byte.
    assert_eq!(unsafe { libc::read(fds[0], b.as_mut_ptr().cast(), 1) }, 1);
    // SAFETY: closing our pipe ends.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    (pid, b[0])
}

/// Maps `len` bytes of the file at `path` (created, then unlinked if `unlink`).
///
/// # Safety
/// Async-signal-safe; `path` is a valid C string.
unsafe fn map_file(path: &CString, len: usize, unlink: bool) {
    // SAFETY: system calls on valid arguments.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CREAT, 0o600);
        libc::ftruncate(fd, len as i64);
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            fd,
            0,
        );
        libc::close(fd);
        if unlink {
            libc::unlink(path.as_ptr());
        }
    }
}

impl Child {
    /// A child with a file mapping, a shared mapping of a deleted file, shared anonymous
    /// memory, and a named anonymous mapping split by `mprotect`.
    pub fn spawn() -> Child {
        let path = CString::new(tmp("file")).unwrap();
        let (pid, b) = fork_with(|| {
            // SAFETY: only async-signal-safe system calls on valid arguments.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CREAT, 0o600);
                libc::ftruncate(fd, 8 * PAGE as i64);
                libc::mmap(
                    std::ptr::null_mut(),
                    2 * PAGE,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE,
                    fd,
                    0,
                );
                libc::mmap(
                    std::ptr::null_mut(),
                    PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd,
                    4 * PAGE as i64,
                );
                libc::unlink(path.as_ptr());
                libc::mmap(
                    std::ptr::null_mut(),
                    2 * PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    3 * PAGE,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                libc::mprotect(p.cast::<u8>().add(PAGE).cast(), PAGE, libc::PROT_NONE);
                let named = libc::prctl(0x53564d41, 0, p, PAGE, c"procmap-test".as_ptr()) == 0;
                if named {
                    b'r'
                } else {
                    b'n'
                }
            }
        });
        Child {
            pid,
            anon_named: b == b'r',
            cleanup: None,
            answers: None,
        }
    }

    /// A child that maps a file under a path longer than `PATH_MAX` (about 4 500 bytes, made
    /// with relative `mkdir`/`chdir`), between two other file mappings.
    pub fn spawn_long_path() -> Child {
        let base = tmp("long");
        std::fs::create_dir(&base).unwrap();
        let cbase = CString::new(base.clone()).unwrap();
        let comp = CString::new("d".repeat(250)).unwrap();
        let before = CString::new(format!("{base}/before")).unwrap();
        let file = CString::new("long-file").unwrap();
        let after = CString::new(format!("{base}/after")).unwrap();
        let (pid, b) = fork_with(|| {
            // SAFETY: only async-signal-safe system calls on valid arguments.
            unsafe {
                map_file(&before, PAGE, false);
                if libc::chdir(cbase.as_ptr()) != 0 {
                    return b'e';
                }
                for _ in 0..18 {
                    if libc::mkdir(comp.as_ptr(), 0o700) != 0 || libc::chdir(comp.as_ptr()) != 0 {
                        return b'e';
                    }
                }
                map_file(&file, 2 * PAGE, false);
                map_file(&after, PAGE, false);
                b'r'
            }
        });
        let child = Child {
            pid,
            anon_named: false,
            cleanup: Some(base.into()),
            answers: None,
        };
        assert_eq!(b, b'r', "could not make the long path");
        child
    }

    /// A child that maps each of `files` (existing files) whole, read-only and private, and
    /// reads its first page.
    pub fn spawn_mapping_files(files: &[CString]) -> Child {
        let (pid, b) = fork_with(|| {
            for f in files {
                // SAFETY: only async-signal-safe system calls on valid arguments.
                unsafe {
                    let fd = libc::open(f.as_ptr(), libc::O_RDONLY);
                    if fd < 0 {
                        return b'e';
                    }
                    let len = libc::lseek(fd, 0, libc::SEEK_END);
                    let p = libc::mmap(
                        std::ptr::null_mut(),
                        len as usize,
                        libc::PROT_READ,
                        libc::MAP_PRIVATE,
                        fd,
                        0,
                    );
                    libc::close(fd);
                    if len <= 0 || p == libc::MAP_FAILED {
                        return b'e';
                    }
                    std::ptr::read_volatile(p as *const u8);
                }
            }
            b'r'
        });
        let child = Child {
            pid,
            anon_named: false,
            cleanup: None,
            answers: None,
        };
        assert_eq!(b, b'r', "could not map the files");
        child
    }

    /// A child that maps files whose names hold a newline, a space, a backslash, a tab and a
    /// byte that is not UTF-8, one of them deleted.
    pub fn spawn_odd_names() -> Child {
        let base = tmp("odd");
        std::fs::create_dir(&base).unwrap();
        let nl = CString::new(format!("{base}/new\nline")).unwrap();
        let deleted = CString::new(format!("{base}/gone\nnl x")).unwrap();
        let odd = CString::new(format!("{base}/sp ace\\tab\t\u{e9}")).unwrap();
        let mut raw = format!("{base}/not-utf8-").into_bytes();
        raw.push(0xff);
        let not_utf8 = CString::new(raw).unwrap();
        let (pid, _) = fork_with(|| {
            // SAFETY: only async-signal-safe system calls on valid arguments.
            unsafe {
                map_file(&nl, PAGE, false);
                map_file(&deleted, PAGE, true);
                map_file(&odd, PAGE, false);
                map_file(&not_utf8, PAGE, false);
            }
            b'r'
        });
        Child {
            pid,
            anon_named: false,
            cleanup: Some(base.into()),
            answers: None,
        }
    }

    /// A child with about `2 * n` VMAs: `n` one-page mappings, each between two pages of a
    /// `PROT_NONE` reservation, in turn a private read-only mapping of a file whose path is
    /// about 250 bytes long, a writable anonymous mapping named `[anon:procmap-many-K]`
    /// (K of 0..7), an executable anonymous mapping, and a shared writable mapping of the
    /// file. With `n = 1200`, the names are about 150 KB: several batches' worth of names as
    /// well as of records.
    pub fn spawn_many(n: usize) -> Child {
        let base = tmp("many");
        std::fs::create_dir(&base).unwrap();
        let path = CString::new(format!("{base}/{}", "m".repeat(200))).unwrap();
        let names: Vec<CString> = (0..8)
            .map(|k| CString::new(format!("procmap-many-{k}")).unwrap())
            .collect();
        let (pid, b) = fork_with(|| {
            // SAFETY: only async-signal-safe system calls on valid arguments; the mappings are
            // inside the reservation made here.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CREAT, 0o600);
                if fd < 0 || libc::ftruncate(fd, 2 * PAGE as i64) != 0 {
                    return b'e';
                }
                let res = libc::mmap(
                    std::ptr::null_mut(),
                    (2 * n + 1) * PAGE,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                );
                if res == libc::MAP_FAILED {
                    return b'e';
                }
                let mut named = true;
                for i in 0..n {
                    let at = res.cast::<u8>().add((2 * i + 1) * PAGE).cast();
                    let fixed = libc::MAP_FIXED;
                    let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | fixed;
                    let rw = libc::PROT_READ | libc::PROT_WRITE;
                    let p = match i % 4 {
                        0 => {
                            libc::mmap(at, PAGE, libc::PROT_READ, libc::MAP_PRIVATE | fixed, fd, 0)
                        }
                        1 => libc::mmap(at, PAGE, rw, anon, -1, 0),
                        2 => libc::mmap(at, PAGE, libc::PROT_READ | libc::PROT_EXEC, anon, -1, 0),
                        _ => libc::mmap(at, PAGE, rw, libc::MAP_SHARED | fixed, fd, PAGE as i64),
                    };
                    if p == libc::MAP_FAILED {
                        return b'e';
                    }
                    if i % 4 == 1 {
                        let name = names[(i / 4) % names.len()].as_ptr();
                        named &= libc::prctl(0x53564d41, 0, at, PAGE, name) == 0;
                    }
                }
                libc::close(fd);
                if named {
                    b'r'
                } else {
                    b'n'
                }
            }
        });
        let child = Child {
            pid,
            anon_named: b == b'r',
            cleanup: Some(base.into()),
            answers: None,
        };
        assert_ne!(b, b'e', "could not make the mappings");
        child
    }

    /// A child that maps one more anonymous page each time [`Child::map_more`] asks (by
    /// `SIGUSR1`), and otherwise leaves its address space alone.
    pub fn spawn_mapping_on_signal() -> Child {
        let mut fds = [0; 2];
        // SAFETY: `fds` is valid for two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (pid, _) = fork_with(|| {
            ANSWER_FD.store(fds[1], std::sync::atomic::Ordering::Relaxed);
            // SAFETY: installing a handler that makes only async-signal-safe calls.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = map_one_page as extern "C" fn(libc::c_int) as usize;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
            }
            b'r'
        });
        // SAFETY: closing our copy of the write end.
        unsafe { libc::close(fds[1]) };
        Child {
            pid,
            anon_named: false,
            cleanup: None,
            answers: Some(fds[0]),
        }
    }

    /// Makes a child of [`Child::spawn_mapping_on_signal`] map one more page; its address,
    /// once mapped.
    pub fn map_more(&self) -> u64 {
        let fd = self.answers.expect("a child that maps on a signal");
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(self.pid, libc::SIGUSR1) }, 0);
        let mut b = [0u8; 8];
        // SAFETY: `b` is valid for 8 bytes.
        assert_eq!(unsafe { libc::read(fd, b.as_mut_ptr().cast(), 8) }, 8);
        u64::from_ne_bytes(b)
    }
}

impl Child {
    /// A child whose main thread has exited while a second thread waits:
    /// a live process whose `/proc/PID/maps` shows no address space. Also the second
    /// thread's id.
    pub fn spawn_leader_exited() -> (Child, libc::pid_t) {
        let (child, tids) = Child::spawn_leader_exited_threads(1);
        (child, tids[0])
    }

    /// As [`Child::spawn_leader_exited`], with `n` threads that wait, in the order of their
    /// ids; a thread sent `SIGUSR2` (`tgkill()`) exits.
    pub fn spawn_leader_exited_threads(n: usize) -> (Child, Vec<libc::pid_t>) {
        extern "C" fn wait(fd: *mut libc::c_void) -> *mut libc::c_void {
            // SAFETY: async-signal-safe system calls on valid arguments.
            unsafe {
                let tid = libc::gettid().to_ne_bytes();
                libc::write(fd as usize as libc::c_int, tid.as_ptr().cast(), tid.len());
                loop {
                    libc::pause();
                }
            }
        }
        extern "C" fn thread_exit(_: libc::c_int) {
            // SAFETY: ends the calling thread alone, without unwinding.
            unsafe { libc::syscall(libc::SYS_exit, 0) };
        }
        let mut fds = [0; 2];
        // Close-on-exec: children that other tests' threads start meanwhile must not keep
        // the write end open.
        // SAFETY: `fds` is valid for two ints.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: plain fork; the child starts threads and its main thread exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // `pthread_create()` after a fork of a multithreaded process is outside what
            // POSIX allows (it allocates), but glibc resets its locks in the child of a fork
            // for this.
            // SAFETY: the handler only exits its thread; `t` is valid to fill; the threads
            // run `wait` on the pipe's write end.
            unsafe {
                libc::signal(
                    libc::SIGUSR2,
                    thread_exit as extern "C" fn(libc::c_int) as libc::sighandler_t,
                );
                for _ in 0..n {
                    let mut t: libc::pthread_t = 0;
                    let arg = fds[1] as usize as *mut libc::c_void;
                    if libc::pthread_create(&mut t, std::ptr::null(), wait, arg) != 0 {
                        libc::_exit(1);
                    }
                }
                // The main thread alone exits, without unwinding (as `pthread_exit()` would,
                // through frames that must not be unwound).
                libc::syscall(libc::SYS_exit, 0);
                libc::_exit(1);
            }
        }
        // Killed and reaped on drop, whatever fails from here on.
        let child = Child {
            pid,
            anon_named: false,
            cleanup: None,
            answers: None,
        };
        // SAFETY: closing our write end, so that a child that died reads as EOF.
        unsafe { libc::close(fds[1]) };
        let mut tids = Vec::new();
        for _ in 0..n {
            let mut b = [0u8; 4];
            // SAFETY: `b` is valid for 4 bytes.
            let got = unsafe { libc::read(fds[0], b.as_mut_ptr().cast(), 4) };
            assert_eq!(got, 4, "a thread of the child did not start");
            tids.push(libc::pid_t::from_ne_bytes(b));
        }
        // SAFETY: closing our read end.
        unsafe { libc::close(fds[0]) };
        tids.sort_unstable();
        // Once the main thread is gone, its maps are empty.
        let maps = format!("/proc/{pid}/maps");
        wait_until(&format!("the main thread of {pid} exits"), || {
            std::fs::read(&maps).unwrap().is_empty()
        });
        (child, tids)
    }

    /// Makes thread `tid` of a child of [`Child::spawn_leader_exited_threads`] exit, and waits
    /// until it is gone.
    pub fn end_thread(&self, tid: libc::pid_t) {
        // SAFETY: signalling a thread of our own child, whose handler ends it.
        let r = unsafe { libc::syscall(libc::SYS_tgkill, self.pid, tid, libc::SIGUSR2) };
        assert_eq!(r, 0, "tgkill: {}", std::io::Error::last_os_error());
        let task = format!("/proc/{}/task/{tid}", self.pid);
        wait_until(&format!("thread {tid} of {} exits", self.pid), || {
            !std::path::Path::new(&task).exists()
        });
    }
}

/// Polls `done` every 10 ms until it holds; panics after 30 s (a slow guest) that `what`
/// did not happen.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if done() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("waited 30 s in vain until {what}");
}

/// Where the child of [`Child::spawn_mapping_on_signal`] writes the address it mapped.
static ANSWER_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// The `SIGUSR1` handler of that child: maps a page and writes its address.
extern "C" fn map_one_page(_: libc::c_int) {
    // SAFETY: async-signal-safe system calls on valid arguments.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        let b = (p as u64).to_ne_bytes();
        libc::write(
            ANSWER_FD.load(std::sync::atomic::Ordering::Relaxed),
            b.as_ptr().cast(),
            8,
        );
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
        if let Some(dir) = &self.cleanup {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(fd) = self.answers {
            // SAFETY: closing our pipe end.
            unsafe { libc::close(fd) };
        }
    }
}

/// A child that has exited but is not reaped yet (a zombie: no address space); reaped on
/// drop.
pub struct Zombie {
    pub pid: libc::pid_t,
}

impl Zombie {
    pub fn spawn() -> Zombie {
        // SAFETY: plain fork; the child exits at once.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: exiting the child without running the parent's handlers.
            unsafe { libc::_exit(0) };
        }
        // Wait until it is a zombie, without reaping it.
        // SAFETY: `info` is a valid siginfo_t to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waiting for our own child, with a valid `info`.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        assert_eq!(r, 0);
        Zombie { pid }
    }
}

impl Drop for Zombie {
    fn drop(&mut self) {
        // SAFETY: reaping our own child.
        unsafe {
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

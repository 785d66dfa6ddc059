//! Child processes with prepared mappings, shared by the integration tests.

#![allow(dead_code)]

use std::ffi::CString;

pub const PAGE: usize = 4096;

/// A child process that sets up mappings and waits; killed (and its files removed) on drop.
pub struct Child {
    pub pid: libc::pid_t,
    /// Whether the kernel named the anonymous VMA (`CONFIG_ANON_VMA_NAME`).
    pub anon_named: bool,
    /// A directory to remove after the child is gone.
    cleanup: Option<std::path::PathBuf>,
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
        };
        assert_eq!(b, b'r', "could not make the long path");
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
        }
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

//! A profiler's normalization step, to copy from: for each sample read from standard input,
//! a line `PID ADDR...` (the process ID, the thread-group ID of a thread's sample, and hex
//! addresses: a stack, as `perf script` or an eBPF profiler gives them), one line per
//! address with the mapping that holds it, tab-separated:
//!
//! ```text
//! PID  ADDR  FILE_OFFSET  BUILD_ID  PATH
//! ```
//!
//! the offset of the address in the mapped file and the file's build ID, which a symbolizer
//! turns into a function and line, possibly on another machine; `-` for what is missing (an
//! address no VMA holds, anonymous memory, a file without a build ID). The path comes last,
//! a newline in it written `\012` as in `/proc/PID/maps`. `ADDR invalid` for a word that is
//! no hex address. Errors go to standard error, prefixed with the PID. The `[vdso]` has no
//! file, so no offset or build ID here: its offset is `ADDR - start`, in the image the
//! process maps, whose build ID is in its ELF notes.
//!
//! ```text
//! cargo run --release --example symbolize < samples
//! echo "$PID 0x401000 0x7f12345678" | cargo run --example symbolize
//! ```
//!
//! One [`VmaCache`] per process, opened at its first sample; a sample's VMAs are borrowed
//! from it ([`VmaCache::get_many`]), not copied with their names and build IDs as
//! [`VmaCache::resolve`] copies them. Where the kernel has the generation (the extension
//! of `<linux/procmap_query.h>`) a sample costs one system call while the process's
//! mappings do not change. Elsewhere (every released kernel), with
//! [`UntrackedPolicy::RereadOnMiss`], none for an address the cache holds, and for one it
//! does not, one walk if a VMA holds it now (a library mapped since), else nothing more
//! than the query that says so (a walk on kernels before 6.11, which have no ioctl); and a
//! mapping replaced over the same addresses (`dlclose()` then `dlopen()` of another
//! library there) is answered stale until a miss that walks or the next tick: every
//! second, each process sampled since the last tick is read again
//! ([`VmaCache::invalidate`]). At each tick the caches of processes that exited, or were
//! not sampled for a minute, are dropped: each holds two file descriptors (the maps and a
//! pidfd). After an `execve()` the maps are opened again for the new program
//! ([`ProcMaps::reopen`]); once the process exited, a sample of its PID opens the maps of
//! the process that has the PID then, if any.

use procmap::{Error, Freshness, ProcMaps, Query, UntrackedPolicy, Vma, VmaCache};
use std::collections::HashMap;
use std::io::{self, BufRead, BufWriter, Write};
use std::time::{Duration, Instant};

/// How often the caches are checked (and, without a generation, read again if sampled).
const TICK: Duration = Duration::from_secs(1);
/// How long the cache of a process that is not sampled is kept.
const IDLE: Duration = Duration::from_secs(60);

struct Process {
    cache: VmaCache,
    /// When it was last sampled.
    sampled: Instant,
    /// Whether it was sampled since the last tick.
    sampled_since_tick: bool,
}

impl Process {
    fn open(pid: u32) -> Result<Self, Error> {
        Self::new(ProcMaps::open(pid)?)
    }

    fn new(maps: ProcMaps) -> Result<Self, Error> {
        // Every VMA, with its name and build ID: an address in anonymous memory (a JIT's
        // code) is answered from the cache too, rather than read again at every sample.
        let query = Query::new().name(true).build_id(true);
        let cache = VmaCache::with_policy(maps, query, UntrackedPolicy::RereadOnMiss)?;
        Ok(Process {
            cache,
            sampled: Instant::now(),
            sampled_since_tick: false,
        })
    }

    /// `answer` called with the VMA of each address of a sample (`None` where none is
    /// mapped), borrowed from the cache; an error for which [`Error::is_gone`] holds once
    /// the process exited, and then `answer` is not called.
    fn vmas<R>(
        &mut self,
        addrs: &[u64],
        answer: impl FnOnce(&[Option<&Vma>]) -> R,
    ) -> Result<R, Error> {
        self.sampled = Instant::now();
        self.sampled_since_tick = true;
        match self.cache.get_many(addrs) {
            Ok(vmas) => return Ok(answer(&vmas)),
            // The address space is gone: the process exited, or called execve() and runs
            // another program, whose maps reopen() opens (is_gone() if it exited).
            Err(e) if e.is_gone() => {}
            Err(e) => return Err(e),
        }
        *self = Process::new(self.cache.maps().reopen()?)?;
        Ok(answer(&self.cache.get_many(addrs)?))
    }

    /// The tick: whether to keep the cache.
    fn tick(&mut self) -> bool {
        if self.sampled.elapsed() >= IDLE {
            return false;
        }
        // Without a generation, a mapping replaced over the same addresses is seen only by
        // reading again.
        if self.sampled_since_tick && self.cache.freshness() == Freshness::Untracked {
            self.cache.invalidate();
        }
        self.sampled_since_tick = false;
        // With a generation, one system call (and a walk if it moved); without one, a walk
        // if invalidated, else one query that says whether the process is still there.
        self.cache.refresh().is_ok() && self.cache.freshness() != Freshness::Gone
    }
}

/// The caches, by PID.
struct Symbolizer {
    processes: HashMap<u32, Process>,
    ticked: Instant,
    /// Below this no address is ever mapped (`/proc/sys/vm/mmap_min_addr`): a stack's
    /// garbage or end marker, answered without a walk.
    min_addr: u64,
}

impl Symbolizer {
    fn sample(&mut self, out: &mut impl Write, line: &[u8]) -> io::Result<()> {
        if self.ticked.elapsed() >= TICK {
            self.processes.retain(|_, p| p.tick());
            self.ticked = Instant::now();
        }
        let line = String::from_utf8_lossy(line);
        let mut words = line.split_whitespace();
        let Some(pid) = words.next().and_then(|p| p.parse::<u32>().ok()) else {
            eprintln!("not a sample: {line:?}");
            return Ok(());
        };
        let words: Vec<&str> = words.collect();
        let addrs: Vec<Option<u64>> = words.iter().map(|w| parse_addr(w)).collect();
        let asked: Vec<u64> = addrs
            .iter()
            .flatten()
            .copied()
            .filter(|&a| a >= self.min_addr)
            .collect();
        let min_addr = self.min_addr;
        // The sample's lines, from the VMAs of the addresses asked, in their order.
        let mut write = |vmas: &[Option<&Vma>]| -> io::Result<()> {
            let mut asked = vmas.iter();
            for (word, addr) in words.iter().zip(&addrs) {
                let Some(addr) = *addr else {
                    writeln!(out, "{pid}\t{word}\tinvalid")?;
                    continue;
                };
                let vma = if addr >= min_addr {
                    asked.next().copied().flatten()
                } else {
                    None
                };
                match vma {
                    Some(vma) => writeln!(
                        out,
                        "{pid}\t{addr:#x}\t{}\t{}\t{}",
                        vma.file_offset(addr)
                            .map_or("-".into(), |o| format!("{o:#x}")),
                        vma.build_id.as_deref().map_or("-".into(), hex),
                        vma.name
                            .as_deref()
                            .map_or("-".into(), |n| String::from_utf8_lossy(n)
                                .replace('\n', "\\012")),
                    )?,
                    None => writeln!(out, "{pid}\t{addr:#x}\t-\t-\t-")?,
                }
            }
            Ok(())
        };
        if asked.is_empty() {
            return write(&[]);
        }
        match self.vmas(pid, &asked, write) {
            Ok(written) => written,
            Err(e) => {
                eprintln!("{pid}: {e}");
                Ok(())
            }
        }
    }

    /// `answer` called with the VMAs of a sample of `pid`, through its cache, opened if
    /// need be.
    fn vmas<R>(
        &mut self,
        pid: u32,
        addrs: &[u64],
        mut answer: impl FnMut(&[Option<&Vma>]) -> R,
    ) -> Result<R, Error> {
        if let Some(p) = self.processes.get_mut(&pid) {
            match p.vmas(addrs, &mut answer) {
                // It exited: the PID may be another process's by now.
                Err(e) if e.is_gone() => {
                    self.processes.remove(&pid);
                }
                r => return r,
            }
        }
        let mut p = Process::open(pid)?;
        let r = p.vmas(addrs, answer)?;
        self.processes.insert(pid, p);
        Ok(r)
    }
}

fn main() -> io::Result<()> {
    let min_addr = std::fs::read_to_string("/proc/sys/vm/mmap_min_addr")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    let mut symbolizer = Symbolizer {
        processes: HashMap::new(),
        ticked: Instant::now(),
        min_addr,
    };
    let mut out = BufWriter::new(io::stdout().lock());
    // Lines as bytes: one that is not UTF-8 is no sample, and the next ones are read.
    for line in io::stdin().lock().split(b'\n') {
        symbolizer.sample(&mut out, &line?)?;
        // Each sample's answers before the next sample is read (a coprocess waits for them).
        out.flush()?;
    }
    Ok(())
}

/// Hex, with or without one `0x`.
fn parse_addr(s: &str) -> Option<u64> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(h, 16).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

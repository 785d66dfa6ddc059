//! A profiler's normalization step, to copy from: for each sample read from standard input,
//! a line `PID ADDR...` (hex addresses: a stack, as `perf script` or an eBPF profiler gives
//! them), one line per address with the mapping that holds it: its path, the offset of the
//! address in the mapped file and the file's build ID, which a symbolizer turns into a
//! function and line, possibly on another machine. `-` for what is missing.
//!
//! ```text
//! cargo run --release --example symbolize < samples
//! echo "$PID 0x401000 0x7f12345678" | cargo run --example symbolize
//! ```
//!
//! One [`VmaCache`] per process, opened at its first sample: where the kernel has the
//! generation (the extension of `<linux/procmap_query.h>`) a sample costs one system call
//! while the process's mappings do not change; elsewhere ([`UntrackedPolicy::RereadOnMiss`])
//! none for an address the cache holds and one walk for one it does not (a library mapped
//! since), and a refresh every second catches an exit or `execve()` that hits from the cache
//! would not see. After an `execve()` the maps are opened again for the new program
//! ([`ProcMaps::reopen`]); once the process exited, its cache is dropped.

use procmap::{Error, ProcMaps, Query, Resolution, UntrackedPolicy, VmaCache};
use std::collections::HashMap;
use std::io::{self, BufRead, BufWriter, Write};
use std::time::{Duration, Instant};

/// How often the cache of a process is refreshed without a sample asking for it.
const REFRESH: Duration = Duration::from_secs(1);

struct Process {
    cache: VmaCache,
    refreshed: Instant,
}

impl Process {
    fn new(maps: ProcMaps) -> Result<Self, Error> {
        // Every VMA, with its name and build ID: an address in anonymous memory (a JIT's
        // code) is answered from the cache too, rather than read again at every sample.
        let query = Query::new().name(true).build_id(true);
        let mut cache = VmaCache::new(maps, query)?;
        cache.set_untracked_policy(UntrackedPolicy::RereadOnMiss);
        Ok(Process {
            cache,
            refreshed: Instant::now(),
        })
    }

    /// The sample's addresses resolved; an error for which [`Error::is_gone`] holds once the
    /// process exited.
    fn resolve(&mut self, addrs: &[u64]) -> Result<Resolution, Error> {
        if self.refreshed.elapsed() >= REFRESH {
            self.cache.refresh()?;
            self.refreshed = Instant::now();
        }
        match self.cache.resolve(addrs) {
            // The address space is gone: the process exited, or called execve() and runs
            // another program, whose maps reopen() opens (is_gone() if it exited).
            Err(e) if e.is_gone() => {
                *self = Process::new(self.cache.maps().reopen()?)?;
                self.cache.resolve(addrs)
            }
            r => r,
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut processes: HashMap<u32, Process> = HashMap::new();
    let mut out = BufWriter::new(io::stdout().lock());
    for line in io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        let Some(pid) = words.next().and_then(|p| p.parse::<u32>().ok()) else {
            writeln!(out, "not a sample: {line:?}")?;
            continue;
        };
        let addrs: Vec<u64> = words
            .filter_map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
            .collect();
        let process = match processes.entry(pid) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                match ProcMaps::open(pid).and_then(Process::new) {
                    Ok(p) => e.insert(p),
                    Err(err) => {
                        writeln!(out, "{pid}: {err}")?;
                        continue;
                    }
                }
            }
        };
        let res = match process.resolve(&addrs) {
            Ok(res) => res,
            Err(e) => {
                if e.is_gone() {
                    processes.remove(&pid);
                }
                writeln!(out, "{pid}: {e}")?;
                continue;
            }
        };
        for (i, addr) in addrs.iter().enumerate() {
            match res.get(i) {
                Some((vma, loc)) => writeln!(
                    out,
                    "{pid} {addr:#x} {} {} {}",
                    vma.name
                        .as_deref()
                        .map_or("-".into(), String::from_utf8_lossy),
                    loc.file_offset.map_or("-".into(), |o| format!("{o:#x}")),
                    vma.build_id.as_deref().map_or("-".into(), hex),
                )?,
                None => writeln!(out, "{pid} {addr:#x} - - -")?,
            }
        }
        out.flush()?;
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

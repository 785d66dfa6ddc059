//! Times the crate's walk and `resolve()` on this process with N extra one-page VMAs, for
//! the batch (where the kernel has it), ioctl and text backends, next to a plain read of the
//! text (what `cat` does) and a text walk on two threads sharing one handle:
//! `cargo run --release --example bench -- 10000 100000`.
//! (More VMAs than `vm.max_map_count`, 65530 by default, need it raised.)

use procmap::{Backend, Options, Query, UntrackedPolicy, VmaCache};
use std::time::{Duration, Instant};

const PAGE: usize = 4096;

/// Best of `runs`.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn ns_per(d: Duration, n: usize) -> String {
    format!("{:.0} ns", d.as_secs_f64() * 1e9 / n.max(1) as f64)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number of VMAs"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        sizes
    };
    println!("| VMAs | what | walk | per VMA | resolve (1 addr/VMA) | per addr |");
    println!("|---:|---|---:|---:|---:|---:|");
    for n in sizes {
        // One mapping of n pages, every other page made writable: n VMAs.
        // SAFETY: a fresh anonymous mapping, only ever touched through mprotect here.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                n * PAGE,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        for i in (1..n).step_by(2) {
            // SAFETY: a page of the mapping above.
            let r = unsafe {
                libc::mprotect(
                    base.cast::<u8>().add(i * PAGE).cast(),
                    PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            assert_eq!(
                r,
                0,
                "mprotect: {} (vm.max_map_count?)",
                std::io::Error::last_os_error()
            );
        }
        // One address in each of our VMAs, in a scrambled order.
        let mut addrs: Vec<u64> = (0..n)
            .map(|i| base as u64 + ((i * 7919) % n * PAGE + 8) as u64)
            .collect();
        addrs.rotate_left(n / 3);
        let total = Options::new()
            .backend(Backend::Text)
            .open_self()
            .unwrap()
            .iter(Query::new())
            .count();
        // The floor for the text backend: reading the text, as `cat /proc/self/maps` does.
        let cat = time(5, || std::fs::read("/proc/self/maps").unwrap().len());
        println!(
            "| {total} | read the text (cat) | {} | {} | | |",
            ms(cat),
            ns_per(cat, total)
        );
        // Batches only where the kernel has the extension.
        let batch = procmap::ProcMaps::open_self().unwrap().backend() == Backend::Batch;
        let backends = [Backend::Batch, Backend::Ioctl, Backend::Text];
        for backend in backends
            .into_iter()
            .filter(|&b| batch || b != Backend::Batch)
        {
            let maps = Options::new().backend(backend).open_self().unwrap();
            let walk = time(5, || maps.iter(Query::new().name(true)).count());
            let resolve = time(5, || maps.resolve(&addrs, Query::new().name(true)).unwrap());
            let r = maps.resolve(&addrs, Query::new()).unwrap();
            assert!(r.addrs.iter().all(Option::is_some) && r.vmas.len() == n);
            println!(
                "| {total} | {backend:?} | {} | {} | {} | {} |",
                ms(walk),
                ns_per(walk, total),
                ms(resolve),
                ns_per(resolve, n),
            );
        }
        // resolve() of one address in every k-th VMA, in order: a profile's addresses spread
        // over more or fewer of the VMAs.
        println!();
        println!("| VMAs | backend | every k-th VMA | addresses | resolve | per addr |");
        println!("|---:|---|---:|---:|---:|---:|");
        for backend in backends
            .into_iter()
            .filter(|&b| batch || b != Backend::Batch)
        {
            let maps = Options::new().backend(backend).open_self().unwrap();
            for k in [1, 2, 4, 16, 64] {
                let some: Vec<u64> = (0..n)
                    .step_by(k)
                    .map(|i| base as u64 + (i * PAGE + 8) as u64)
                    .collect();
                let t = time(5, || maps.resolve(&some, Query::new().name(true)).unwrap());
                println!(
                    "| {total} | {backend:?} | {k} | {} | {} | {} |",
                    some.len(),
                    ms(t),
                    ns_per(t, some.len())
                );
            }
        }
        println!();
        // A VmaCache (names and build IDs) answering a 32-address stack over the process's
        // file-backed VMAs: a lookup() per address, get_many() and resolve(). Without a
        // generation under RereadOnMiss, so that all three answer from the cache.
        let q = Query::new().name(true).build_id(true);
        let mut cache = VmaCache::new(procmap::ProcMaps::open_self().unwrap(), q).unwrap();
        cache.set_untracked_policy(UntrackedPolicy::RereadOnMiss);
        let files: Vec<u64> = cache
            .vmas()
            .iter()
            .filter(|v| v.file_backed())
            .map(|v| v.start + 8)
            .collect();
        let stack: Vec<u64> = (0..32).map(|i| files[i * 7 % files.len()]).collect();
        const STACKS: usize = 1000;
        let lookup = time(5, || {
            (0..STACKS)
                .map(|_| stack.iter().filter(|&&a| cache.lookup(a).is_some()).count())
                .sum::<usize>()
        });
        let many = time(5, || {
            (0..STACKS)
                .map(|_| cache.get_many(&stack).unwrap().len())
                .sum::<usize>()
        });
        let resolve = time(5, || {
            (0..STACKS)
                .map(|_| cache.resolve(&stack).unwrap().vmas.len())
                .sum::<usize>()
        });
        println!("| VMAs | VmaCache ({:?}): 32-address stack over {} file VMAs, per address | lookup() | get_many() | resolve() |", cache.freshness(), files.len());
        println!("|---:|---|---:|---:|---:|");
        println!(
            "| {total} | names and build IDs | {} | {} | {} |",
            ns_per(lookup, STACKS * stack.len()),
            ns_per(many, STACKS * stack.len()),
            ns_per(resolve, STACKS * stack.len()),
        );
        // The same stack and one address that nothing maps (a frame pointer's garbage):
        // a miss at every get_many(), which asks the kernel about it (one query) where the
        // backend can, and reads the VMAs again where it cannot (the text backend).
        let mut garbage = stack.clone();
        garbage.push(0x1000);
        let before = cache.reads();
        const MISSES: usize = 20;
        const ROUNDS: usize = 3;
        let missed = time(ROUNDS, || {
            (0..MISSES)
                .map(|_| cache.get_many(&garbage).unwrap().len())
                .sum::<usize>()
        });
        println!(
            "| {total} | the same 32 addresses and one that nothing maps, per call ({:?}, {:.1} walks per call) | | {} | |",
            cache.maps().backend(),
            (cache.reads() - before) as f64 / (ROUNDS * MISSES) as f64,
            ns_per(missed, MISSES),
        );
        println!();
        // Two threads walking through one text handle at once (the time for both walks).
        let maps = Options::new().backend(Backend::Text).open_self().unwrap();
        let both = time(3, || {
            std::thread::scope(|s| {
                let w: Vec<_> = (0..2)
                    .map(|_| s.spawn(|| maps.iter(Query::new().name(true)).count()))
                    .collect();
                w.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
            })
        });
        println!(
            "| {total} | Text, 2 threads, one handle | {} | {} | | |",
            ms(both),
            ns_per(both, 2 * total)
        );
        // SAFETY: unmapping what was mapped above.
        unsafe { libc::munmap(base, n * PAGE) };
    }
}

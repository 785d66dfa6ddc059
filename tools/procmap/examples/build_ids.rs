//! The cost of build IDs: walks of a process's VMAs (all of them, with names) with and
//! without build IDs, for the text backend (which opens and parses the mapped files) and the
//! ioctl; best of `ROUNDS`.
//!
//! ```text
//! cargo run --release --example build_ids -- PID [ROUNDS]
//! ```

use procmap::{Backend, Options, Query};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pid: u32 = args
        .next()
        .ok_or("usage: build_ids PID [ROUNDS]")?
        .parse()?;
    let rounds: u32 = args.next().map_or(Ok(20), |r| r.parse())?;
    let backends = [Backend::Text, Backend::Ioctl];
    for backend in backends {
        let maps = Options::new().backend(backend).open(pid)?;
        for ids in [false, true] {
            let q = Query::new().name(true).build_id(ids);
            let mut best = Duration::MAX;
            let (mut vmas, mut with_id, mut files) = (0, 0, std::collections::HashSet::new());
            for _ in 0..rounds {
                let t = Instant::now();
                let all = maps.iter(q).collect::<Result<Vec<_>, _>>()?;
                best = best.min(t.elapsed());
                vmas = all.len();
                with_id = all.iter().filter(|v| v.build_id.is_some()).count();
                files = all
                    .iter()
                    .filter(|v| v.file_backed())
                    // The name too: on btrfs, files of two subvolumes can show the
                    // same device and inode.
                    .map(|v| (v.dev_major, v.dev_minor, v.inode, v.name.clone()))
                    .collect();
            }
            println!(
                "{backend:?}, build IDs {ids}: {vmas} VMAs ({} files, {with_id} with a build ID): {:.3} ms",
                files.len(),
                best.as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}

//! A model of the kernel's `PROCMAP_QUERY` and `PROCMAP_QUERY_BATCH` over a list of VMAs, for
//! tests on kernels without the extension (the host's): while one is installed on a thread
//! ([`install`]), that thread's ioctls on a [`ProcMaps`] go to it. It answers as the Rust
//! handler (`rust/procmap_query/batch.rs`) does: a walk resumes from the end of the last VMA it
//! examined (filtered out or reported) and may stop after any VMA; a lookup reports each VMA
//! once per call and may stop after any address; names are packed, never split, and one that
//! does not fit an empty buffer is `ENAMETOOLONG`. It can also change the VMAs before a call,
//! as a writer between two calls would.
//!
//! The tests compare [`ProcMaps::resolve`] and [`ProcMaps::iter`] through batches with the
//! VMAs themselves, for random layouts, queries, addresses and stops.

use crate::{abi, Backend, ProcMaps, Query};
use std::cell::RefCell;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};

/// A VMA of the model.
#[derive(Clone, Debug)]
pub(crate) struct FakeVma {
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// `PROCMAP_QUERY_VMA_*` bits.
    pub(crate) flags: u64,
    pub(crate) file: bool,
    pub(crate) name: Option<Vec<u8>>,
}

/// The model: the VMAs, and how it behaves.
pub(crate) struct Fake {
    pub(crate) vmas: Vec<FakeVma>,
    rng: Rng,
    /// The chance, per thousand, that a call stops after a VMA or address.
    stop_per_mille: u64,
    /// Whether to change the VMAs (a third of the calls).
    mutate: bool,
    /// Batch walks made.
    pub(crate) walks: u64,
    /// Batch calls made, and after how many the extension goes (the module unloaded): then
    /// batches fail with `ENOTTY` and the any-of filter with `EINVAL`, as from the C handler.
    batch_calls: u64,
    lose_after: Option<u64>,
    /// A change made just before the single query of this address: the VMAs become these.
    change_at: Option<(u64, Vec<FakeVma>)>,
}

thread_local! {
    static FAKE: RefCell<Option<Fake>> = const { RefCell::new(None) };
}

/// A xorshift generator: the tests are reproducible from their seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value below `n` (0 if `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// Whether `v` passes the filters of `query_flags`, as the kernel applies them.
pub(crate) fn passes(v: &FakeVma, query_flags: u64) -> bool {
    if query_flags & abi::FILE_BACKED_VMA != 0 && !v.file {
        return false;
    }
    let want = query_flags & abi::VMA_PERMS;
    if query_flags & abi::VMA_PERM_ANY != 0 {
        want & v.flags != 0
    } else {
        v.flags & want == want
    }
}

/// The text of `/proc/<pid>/maps` for `vmas` (what the crate reads for names the ioctl
/// refuses, and for its probe), with the `[vsyscall]` line if there is no VMA.
fn text_of(vmas: &[FakeVma]) -> Vec<u8> {
    let mut t = Vec::new();
    for v in vmas {
        let p = |bit, c| if v.flags & bit != 0 { c } else { '-' };
        let perms: String = [
            p(abi::VMA_READABLE, 'r'),
            p(abi::VMA_WRITABLE, 'w'),
            p(abi::VMA_EXECUTABLE, 'x'),
            if v.flags & abi::VMA_SHARED != 0 {
                's'
            } else {
                'p'
            },
        ]
        .iter()
        .collect();
        let (dev, ino) = if v.file { ("08:01", 1) } else { ("00:00", 0) };
        t.extend(format!("{:x}-{:x} {perms} 00000000 {dev} {ino}", v.start, v.end).bytes());
        if let Some(n) = &v.name {
            t.extend(b"    ");
            t.extend(n);
        }
        t.push(b'\n');
    }
    if t.is_empty() {
        t.extend(b"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0    [vsyscall]\n");
    }
    t
}

/// Installs `fake` on this thread and returns maps whose text is that of its VMAs: their
/// ioctls go to it.
fn install(fake: Fake) -> ProcMaps {
    // SAFETY: a plain system call with a valid NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"procmap-fake".as_ptr(), 0) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just created and is owned by nothing else.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(&text_of(&fake.vmas)).unwrap();
    FAKE.with(|f| *f.borrow_mut() = Some(fake));
    let maps = ProcMaps::from_fd(file.into());
    assert_eq!(maps.backend(), Backend::Batch);
    maps
}

/// `PROCMAP_QUERY_BATCH` on this thread's model, if one is installed.
///
/// # Safety
///
/// The arrays and buffer `b` points to are valid for the counts and sizes it gives, as for
/// the ioctl.
pub(crate) unsafe fn batch(b: &mut abi::procmap_batch) -> Option<Result<(), i32>> {
    FAKE.with(|f| {
        let mut f = f.borrow_mut();
        let f = f.as_mut()?;
        // SAFETY: As required of the caller.
        Some(unsafe { f.batch(b) })
    })
}

/// `PROCMAP_QUERY` on this thread's model, if one is installed.
///
/// # Safety
///
/// The name buffer `q` points to is valid for the size it gives, as for the ioctl.
pub(crate) unsafe fn query(q: &mut abi::procmap_query) -> Option<Result<(), i32>> {
    FAKE.with(|f| {
        let mut f = f.borrow_mut();
        let f = f.as_mut()?;
        // SAFETY: As required of the caller.
        Some(unsafe { f.query(q) })
    })
}

impl Fake {
    fn new(vmas: Vec<FakeVma>, seed: u64, stop_per_mille: u64, mutate: bool) -> Self {
        Fake {
            vmas,
            rng: Rng::new(seed),
            stop_per_mille,
            mutate,
            walks: 0,
            batch_calls: 0,
            lose_after: None,
            change_at: None,
        }
    }

    /// Whether the extension is gone.
    fn lost(&self) -> bool {
        self.lose_after.is_some_and(|k| self.batch_calls > k)
    }

    fn stop(&mut self) -> bool {
        self.rng.below(1000) < self.stop_per_mille
    }

    /// Splits, merges, removes or grows a VMA, in a third of the calls if asked to.
    fn mutate_once(&mut self) {
        if !self.mutate || self.vmas.is_empty() || self.rng.below(3) != 0 {
            return;
        }
        let i = self.rng.below(self.vmas.len() as u64) as usize;
        match self.rng.below(4) {
            0 => {
                let v = self.vmas[i].clone();
                if v.end - v.start >= 0x2000 {
                    let mid = v.start + 0x1000;
                    self.vmas[i].end = mid;
                    let mut w = v;
                    w.start = mid;
                    w.flags ^= abi::VMA_WRITABLE;
                    self.vmas.insert(i + 1, w);
                }
            }
            1 => {
                if i + 1 < self.vmas.len() && self.vmas[i].end == self.vmas[i + 1].start {
                    let end = self.vmas[i + 1].end;
                    self.vmas.remove(i + 1);
                    self.vmas[i].end = end;
                }
            }
            2 => {
                self.vmas.remove(i);
            }
            _ => {
                let limit = self.vmas.get(i + 1).map_or(u64::MAX / 2, |n| n.start);
                if self.vmas[i].end < limit {
                    self.vmas[i].end += 0x1000;
                }
                self.vmas[i].flags ^= abi::VMA_EXECUTABLE;
            }
        }
    }

    /// Packs the name of `v` into `names` after `*used` bytes; `Err` if it does not fit (or
    /// is longer than `PATH_MAX`).
    fn put_name(v: &FakeVma, names: &mut [u8], used: &mut usize) -> Result<Option<(u32, u32)>, ()> {
        let Some(n) = v.name.as_ref().filter(|_| !names.is_empty()) else {
            return Ok(None);
        };
        let size = n.len() + 1;
        let dst = names
            .get_mut(*used..*used + size)
            .filter(|_| size <= 4096)
            .ok_or(())?;
        dst[..n.len()].copy_from_slice(n);
        dst[n.len()] = 0;
        let off = *used;
        *used += size;
        Ok(Some((off as u32, size as u32)))
    }

    /// The record of `v`, its name packed into `names` (see [`Fake::put_name`]).
    fn record(
        v: &FakeVma,
        names: &mut [u8],
        used: &mut usize,
    ) -> Result<abi::procmap_batch_vma, ()> {
        let (name_off, name_size) = Self::put_name(v, names, used)?.unwrap_or((0, 0));
        Ok(abi::procmap_batch_vma {
            vma_start: v.start,
            vma_end: v.end,
            vma_flags: v.flags,
            vma_page_size: 4096,
            inode: u64::from(v.file),
            name_off,
            name_size,
            ..Default::default()
        })
    }

    /// # Safety
    ///
    /// As for [`batch`].
    unsafe fn batch(&mut self, b: &mut abi::procmap_batch) -> Result<(), i32> {
        let query_flags = b.query_flags;
        let cap = b.vma_count as usize;
        let recs: &mut [abi::procmap_batch_vma] = if cap == 0 {
            &mut []
        } else {
            // SAFETY: By the requirements, `vmas` holds `vma_count` records.
            unsafe { std::slice::from_raw_parts_mut(b.vmas as *mut _, cap) }
        };
        let names: &mut [u8] = if b.names_size == 0 {
            &mut []
        } else {
            // SAFETY: By the requirements, `names` is a buffer of `names_size` bytes.
            unsafe { std::slice::from_raw_parts_mut(b.names as *mut u8, b.names_size as usize) }
        };
        self.batch_calls += 1;
        if self.lost() {
            return Err(libc::ENOTTY);
        }
        let mut written = 0;
        let mut used = 0;
        self.mutate_once();
        let vmas = self.vmas.clone();
        if b.flags & abi::BATCH_LOOKUP == 0 {
            self.walks += 1;
            let mut at = b.addr;
            let mut examined = 0;
            let mut done = false;
            while written < cap {
                let Some(v) = vmas.iter().find(|v| v.end > at) else {
                    done = true;
                    break;
                };
                if examined >= 1 && self.stop() {
                    break;
                }
                if passes(v, query_flags) {
                    match Self::record(v, names, &mut used) {
                        Ok(r) => recs[written] = r,
                        Err(()) if written == 0 => return Err(libc::ENAMETOOLONG),
                        Err(()) => break,
                    }
                    written += 1;
                }
                examined += 1;
                at = v.end;
            }
            b.vma_count = written as u32;
            b.names_size = used as u32;
            b.addr = at;
            b.out_flags = if done { abi::BATCH_DONE } else { 0 };
            return Ok(());
        }
        let count = b.addr_count as usize;
        // SAFETY: By the requirements, `addrs` holds `addr_count` addresses and `addr_vmas`
        // room for as many answers; they do not overlap the other buffers.
        let (addrs, answers) = unsafe {
            (
                std::slice::from_raw_parts(b.addrs as *const u64, count),
                std::slice::from_raw_parts_mut(b.addr_vmas as *mut u32, count),
            )
        };
        let mut index: Vec<(u64, u64)> = Vec::new();
        let mut answered = 0;
        for &a in addrs {
            if answered >= 1 && self.stop() {
                break;
            }
            let answer = match index.iter().position(|&(s, e)| s <= a && a < e) {
                Some(k) => k as u32,
                None => match vmas.iter().find(|v| v.start <= a && a < v.end) {
                    Some(v) if passes(v, query_flags) => {
                        if written >= cap {
                            break;
                        }
                        match Self::record(v, names, &mut used) {
                            Ok(r) => recs[written] = r,
                            Err(()) if written == 0 => return Err(libc::ENAMETOOLONG),
                            Err(()) => break,
                        }
                        index.push((v.start, v.end));
                        written += 1;
                        written as u32 - 1
                    }
                    _ => abi::BATCH_NO_VMA,
                },
            };
            answers[answered] = answer;
            answered += 1;
        }
        b.vma_count = written as u32;
        b.names_size = used as u32;
        b.addr_count = answered as u32;
        b.out_flags = if answered == count {
            abi::BATCH_DONE
        } else {
            0
        };
        Ok(())
    }

    /// # Safety
    ///
    /// As for [`query`].
    unsafe fn query(&mut self, q: &mut abi::procmap_query) -> Result<(), i32> {
        if self.lost() && q.query_flags & abi::VMA_PERM_ANY != 0 {
            return Err(libc::EINVAL);
        }
        self.mutate_once();
        if self.change_at.as_ref().is_some_and(|c| c.0 == q.query_addr) {
            if let Some((_, vmas)) = self.change_at.take() {
                self.vmas = vmas;
            }
        }
        let query_flags = q.query_flags;
        let or_next = query_flags & abi::COVERING_OR_NEXT_VMA != 0;
        let mut addr = q.query_addr;
        let v = loop {
            let Some(v) = self.vmas.iter().find(|v| v.end > addr) else {
                return Err(libc::ENOENT);
            };
            if passes(v, query_flags) && (or_next || v.start <= addr) {
                break v.clone();
            }
            if !or_next {
                return Err(libc::ENOENT);
            }
            addr = v.end;
        };
        q.vma_start = v.start;
        q.vma_end = v.end;
        q.vma_flags = v.flags;
        q.vma_page_size = 4096;
        q.inode = u64::from(v.file);
        if q.vma_name_size > 0 {
            match &v.name {
                Some(n) if n.len() + 1 > (q.vma_name_size as usize).min(4096) => {
                    return Err(libc::ENAMETOOLONG)
                }
                Some(n) => {
                    // SAFETY: By the requirements, the name buffer holds `vma_name_size`
                    // bytes, more than the name and its NUL.
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(q.vma_name_addr as *mut u8, n.len() + 1)
                    };
                    dst[..n.len()].copy_from_slice(n);
                    dst[n.len()] = 0;
                    q.vma_name_size = n.len() as u32 + 1;
                }
                None => q.vma_name_size = 0,
            }
        }
        q.build_id_size = 0;
        Ok(())
    }
}

/// VMAs with and without gaps between them, filters and names (some longer than the
/// names buffer of a call, some longer than `PATH_MAX`), maybe a stack at the top.
fn layout(r: &mut Rng) -> Vec<FakeVma> {
    let n = match r.below(4) {
        0 => r.below(5),
        1 => r.below(40),
        2 => r.below(900),
        _ => r.below(3000),
    };
    let gaps = [0, 10, 4, 2][r.below(4) as usize];
    let mut at = 0x10000;
    let mut v = Vec::new();
    for i in 0..n {
        if gaps != 0 && r.below(gaps) == 0 {
            at += (1 + r.below(4)) * 0x1000;
        }
        let len = (1 + r.below(3)) * 0x1000;
        let mut flags = 0;
        for bit in [
            abi::VMA_READABLE,
            abi::VMA_WRITABLE,
            abi::VMA_EXECUTABLE,
            abi::VMA_SHARED,
        ] {
            if r.below(2) == 0 {
                flags |= bit;
            }
        }
        let kinds = if r.below(5) == 0 { 5 } else { 4 };
        let name = match r.below(kinds) {
            0 => None,
            1 => Some(format!("/lib/x{i}").into_bytes()),
            2 => Some(vec![b'a' + (i % 26) as u8; 200 + r.below(800) as usize]),
            3 => Some(vec![b'b'; 2000 + r.below(2094) as usize]),
            _ => Some(vec![b'c'; 4000 + r.below(3000) as usize]),
        };
        v.push(FakeVma {
            start: at,
            end: at + len,
            flags,
            file: r.below(2) == 0,
            name,
        });
        at += len;
    }
    if r.below(3) == 0 {
        v.push(FakeVma {
            start: 0x7fff_ffff_e000,
            end: 0x7fff_ffff_f000,
            flags: abi::VMA_READABLE,
            file: false,
            name: Some(b"[stack]".to_vec()),
        });
    }
    v
}

/// Addresses in every VMA, in some, or in none, and around and far above them, repeated and
/// shuffled.
fn addresses(r: &mut Rng, vmas: &[FakeVma]) -> Vec<u64> {
    let mut a = Vec::new();
    let top = vmas.last().map_or(0x20000, |v| v.end + 0x3000);
    match r.below(3) {
        0 => {
            for v in vmas {
                a.push(v.start + r.below(v.end - v.start));
                if r.below(3) == 0 {
                    a.push(v.end - 1);
                }
            }
        }
        1 => a.extend(vmas.iter().filter(|_| r.below(2) == 0).map(|v| v.start)),
        _ => {}
    }
    for _ in 0..r.below(3000) {
        a.push(match r.below(10) {
            0 => 0,
            1 => u64::MAX - r.below(3),
            2 => 0xffff_8000_0000_0000 + r.below(1 << 20),
            _ => 0xe000 + r.below(top),
        });
    }
    for _ in 0..r.below(a.len() as u64 + 1) {
        let i = r.below(a.len() as u64) as usize;
        a.push(a[i]);
    }
    for i in (1..a.len()).rev() {
        a.swap(i, r.below(i as u64 + 1) as usize);
    }
    a
}

/// Names or not; no filter, permissions (all or any of them), file-backed.
fn random_query(r: &mut Rng) -> Query {
    let mut q = Query::new().name(r.below(2) == 0);
    if r.below(2) == 0 {
        q = q
            .readable(r.below(2) == 0)
            .writable(r.below(2) == 0)
            .executable(r.below(2) == 0)
            .shared(r.below(3) == 0)
            .any_perm(r.below(2) == 0);
        if q.any_perm_wanted() && q.flags() & abi::VMA_PERMS == 0 {
            q = q.any_perm(false);
        }
    }
    q.file_backed(r.below(3) == 0)
}

/// Seeds per test: `PROCMAP_FAKE_SEEDS`, or 300.
fn seeds() -> u64 {
    std::env::var("PROCMAP_FAKE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

#[test]
fn batch_resolve_and_walk_equal_the_vmas() {
    let mut walked = 0;
    for seed in 1..=seeds() {
        let mut r = Rng::new(seed);
        let vmas = layout(&mut r);
        let stop = [0, 0, 5, 50, 300][r.below(5) as usize];
        let maps = install(Fake::new(vmas.clone(), seed, stop, false));
        let q = random_query(&mut r);
        let a = addresses(&mut r, &vmas);
        check_resolve(&maps, q, &vmas, &a, seed);
        walked += FAKE.with(|f| f.borrow().as_ref().map_or(0, |f| f.walks));
        check_walk(&maps, q, &vmas, seed);
    }
    // The dense addresses made resolve() walk, not only look up.
    assert!(walked > 0);
    FAKE.with(|f| *f.borrow_mut() = None);
}

/// Checks that `maps.resolve(a, q)` answers each address with its VMA among `vmas`.
fn check_resolve(maps: &ProcMaps, q: Query, vmas: &[FakeVma], a: &[u64], seed: u64) {
    let flags = q.batch_flags();
    let name = |v: &FakeVma| v.name.clone().filter(|_| q.name_wanted());
    let res = maps
        .resolve(a, q)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert_eq!(res.addrs.len(), a.len());
    for (i, &x) in a.iter().enumerate() {
        let got = res.get(i).map(|(v, _)| (v.start, v.end, v.name.clone()));
        let want = vmas
            .iter()
            .find(|v| v.start <= x && x < v.end)
            .filter(|v| passes(v, flags))
            .map(|v| (v.start, v.end, name(v)));
        assert_eq!(got, want, "seed {seed}: {x:#x}, flags {:#x}", q.flags());
    }
    assert!(
        res.vmas.windows(2).all(|w| w[0].end <= w[1].start),
        "seed {seed}"
    );
}

/// Checks that `maps.iter(q)` gives the VMAs of `vmas` that pass the filters.
fn check_walk(maps: &ProcMaps, q: Query, vmas: &[FakeVma], seed: u64) {
    let flags = q.batch_flags();
    let name = |v: &FakeVma| v.name.clone().filter(|_| q.name_wanted());
    let got: Vec<_> = maps
        .iter(q)
        .map(|v| v.map(|v| (v.start, v.end, v.name)))
        .collect::<crate::Result<_>>()
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let want: Vec<_> = vmas
        .iter()
        .filter(|v| passes(v, flags))
        .map(|v| (v.start, v.end, name(v)))
        .collect();
    assert_eq!(got, want, "seed {seed}: walk");
}

#[test]
fn batch_resolve_and_walk_survive_losing_the_extension() {
    let mut lost = 0;
    for seed in 1..=seeds() {
        let mut r = Rng::new(seed);
        let vmas = layout(&mut r);
        let stop = [0, 5, 50, 300][r.below(4) as usize];
        let mut fake = Fake::new(vmas.clone(), seed, stop, false);
        // The probe is the first batch call: lost after it, or after a few more.
        fake.lose_after = Some(1 + r.below(4));
        let maps = install(fake);
        let q = random_query(&mut r);
        if r.below(2) == 0 {
            let a = addresses(&mut r, &vmas);
            check_resolve(&maps, q, &vmas, &a, seed);
        } else {
            check_walk(&maps, q, &vmas, seed);
        }
        if FAKE.with(|f| f.borrow().as_ref().is_some_and(|f| f.lost())) {
            lost += 1;
            assert_ne!(maps.backend(), Backend::Batch, "seed {seed}");
            // And the next calls, without batches, still answer.
            check_walk(&maps, q, &vmas, seed);
        }
    }
    // The extension went in the middle of a walk or resolve() in most seeds.
    assert!(lost > seeds() / 4, "lost in {lost} seeds");
    FAKE.with(|f| *f.borrow_mut() = None);
}

#[test]
fn batch_resolve_survives_vmas_changing_between_calls() {
    for seed in 1..=seeds() {
        let mut r = Rng::new(seed);
        let vmas = layout(&mut r);
        let stop = [0, 0, 5, 50, 300][r.below(5) as usize];
        let maps = install(Fake::new(vmas.clone(), seed, stop, true));
        let q = random_query(&mut r);
        let a = addresses(&mut r, &vmas);
        let res = maps
            .resolve(&a, q)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(res.addrs.len(), a.len());
        for (i, &x) in a.iter().enumerate() {
            if let Some((v, _)) = res.get(i) {
                assert!(v.contains(x), "seed {seed}: {x:#x}");
            }
        }
        assert!(
            res.vmas
                .windows(2)
                .all(|w| (w[0].start, w[0].end) <= (w[1].start, w[1].end)),
            "seed {seed}: out of order"
        );
        assert!(maps.iter(q).take(100_000).count() < 100_000, "seed {seed}");
    }
    FAKE.with(|f| *f.borrow_mut() = None);
}

#[test]
fn single_query_resolve_is_in_address_order_when_vmas_change_between_queries() {
    // Without batches (lost after the probe), resolve() asks one query per VMA. Between the
    // query of 0x25000, answered by 0x20000-0x30000, and that of 0x30800, the VMA below
    // merges with it and grows over 0x30800: that answer starts below the first one's. The
    // VMAs still come in address order, each address with the VMA that answered it.
    let vma = |start, end| FakeVma {
        start,
        end,
        flags: abi::VMA_READABLE,
        file: false,
        name: None,
    };
    let before = vec![
        vma(0x10000, 0x20000),
        vma(0x20000, 0x30000),
        vma(0x40000, 0x50000),
    ];
    let mut fake = Fake::new(before, 1, 0, false);
    fake.lose_after = Some(1);
    fake.change_at = Some((0x30800, vec![vma(0x10000, 0x31000), vma(0x40000, 0x50000)]));
    let maps = install(fake);
    let res = maps.resolve(&[0x25000, 0x30800], Query::new()).unwrap();
    assert_ne!(maps.backend(), Backend::Batch);
    let ranges: Vec<(u64, u64)> = res.vmas.iter().map(|v| (v.start, v.end)).collect();
    assert_eq!(ranges, [(0x10000, 0x31000), (0x20000, 0x30000)]);
    assert_eq!(res.get(0).map(|(v, _)| v.start), Some(0x20000));
    assert_eq!(res.get(1).map(|(v, _)| v.start), Some(0x10000));
    FAKE.with(|f| *f.borrow_mut() = None);
}

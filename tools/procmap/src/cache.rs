//! [`VmaCache`]: a snapshot of a process's VMAs, read again only when the generation says it
//! changed.

use crate::batch::Seen;
use crate::{Backend, ProcMaps, Query, Resolution, Result, Vma};

/// How many walks a refresh makes to get a snapshot before it gives up (see
/// [`Freshness::Unstable`]).
pub(crate) const ATTEMPTS: u32 = 8;

/// How far a [`VmaCache`]'s VMAs can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Freshness {
    /// A snapshot at this generation (even): the VMAs were read while the generation stayed
    /// at this value, and [`VmaCache::refresh`] reads them again only when
    /// [`ProcMaps::generation`] gives another value. See [`VmaCache`] for what it can miss.
    Generation(u64),
    /// No generation to check: the kernel lacks the extension, or cannot tell
    /// (`PROCMAP_GENERATION_UNKNOWN`). What the cache does then is its
    /// [`UntrackedPolicy`] ([`VmaCache::set_untracked_policy`]): by default
    /// ([`UntrackedPolicy::Ask`]) [`VmaCache::refresh`] reads the VMAs again every time, and
    /// [`VmaCache::get`], [`VmaCache::get_many`] and [`VmaCache::resolve`] ask the maps
    /// instead of the cache.
    Untracked,
    /// The VMAs changed during each of the walks of the last refresh (8 of them; a walk whose
    /// VMAs overlap or go back counts as changed, whatever the generation): they are those of
    /// the last walk, which may mix VMAs from before and after a change, less those that
    /// overlapped one before them. The next refresh reads them again, whatever the
    /// generation.
    Unstable,
    /// The address space is gone (the process exited or called `execve()`; the maps file
    /// stays on the address space it was opened on): no VMAs, and no more reads;
    /// [`VmaCache::get`], [`VmaCache::get_many`] and [`VmaCache::resolve`] fail with an
    /// error for which [`Error::is_gone`](crate::Error::is_gone) holds. Open the maps again
    /// for the new program.
    Gone,
}

/// What a [`VmaCache`] does while it has no generation to check ([`Freshness::Untracked`]:
/// a kernel without the extension, every released kernel, or one that cannot tell). Set it
/// with [`VmaCache::set_untracked_policy`]; it changes nothing while there is a generation.
///
/// | policy | a lookup that the VMAs as last read answer (a hit) | one they do not (a miss) | [`VmaCache::refresh`] |
/// |---|---|---|---|
/// | [`Ask`](UntrackedPolicy::Ask) (default) | asks the maps | asks the maps | reads again |
/// | [`RereadOnMiss`](UntrackedPolicy::RereadOnMiss) | from the cache, no system call (see below) | asks whether a VMA covers it now (one query); if one does, reads again, once, and answers from that. On the text backend reads again, once, and an address that then still misses misses without reading until a read finds it mapped | does not read; checks that the address space is there |
/// | [`Trust`](UntrackedPolicy::Trust) | from the cache | from the cache (`None`) | does not read; checks that the address space is there |
///
/// [`VmaCache::invalidate`] makes the next lookup or refresh read again under each of them.
///
/// A hit makes no system call where the kernel lacks the extension (every released
/// kernel); where it has it but cannot tell ([`crate::GENERATION_UNKNOWN`]) each lookup
/// reads the generation first (one system call), which also says when the address space
/// is gone.
///
/// Under [`RereadOnMiss`](UntrackedPolicy::RereadOnMiss) and
/// [`Trust`](UntrackedPolicy::Trust), hits are not checked against anything: after the
/// process exited or called `execve()`, they go on answering from the old program's VMAs.
/// [`VmaCache::refresh`] checks, with one query (on the text backend, one read of the start
/// of the text), that the address space is still there, and finds it
/// [`Freshness::Gone`] otherwise; call it periodically, and have a profiler
/// [`VmaCache::invalidate`] (or drop the cache and [`ProcMaps::reopen`]) on the exit and
/// exec events it sees (`PERF_RECORD_EXIT`, `PERF_RECORD_COMM` with `misc & PERF_RECORD_MISC_COMM_EXEC`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UntrackedPolicy {
    /// Each [`VmaCache::get`], [`VmaCache::get_many`] and [`VmaCache::resolve`] asks the
    /// maps ([`ProcMaps::query`], [`ProcMaps::resolve`]): always the VMAs of the moment, at
    /// the cost of a system call per lookup (one ioctl; on the text backend, kernels before
    /// 6.11, a read of the whole text), and the cache's VMAs stay as last read. A walk per
    /// lookup would cost far more (100 `get()`s over 4 000 VMAs: 254 ms that way, 71 us
    /// asking).
    #[default]
    Ask,
    /// The VMAs as last read answer every lookup they can; a lookup they cannot answer (an
    /// address that no VMA of the cache covers, or, for [`VmaCache::get_many`] and
    /// [`VmaCache::resolve`], any of the addresses: a miss) reads them again, once, and
    /// answers from that read, if a VMA covers a missed address now. Where a query can tell
    /// (the ioctl backends), each missed address is asked about first, one query each (while
    /// that makes at most the system calls of a walk: with single queries, one per VMA;
    /// with more, it reads without asking), and an address that nothing maps costs that
    /// query, not a walk; on the text backend, where a query reads the whole text, a miss
    /// reads again at once. At most one walk per [`VmaCache::get`],
    /// [`VmaCache::get_many`] or [`VmaCache::resolve`], none for a hit:
    /// [`VmaCache::reads`] counts them. A hit is not checked for the process's exit or
    /// `execve()`: see [`UntrackedPolicy`] for what [`VmaCache::refresh`] does about it.
    ///
    /// This is what a profiler wants where the kernel has no generation: a sample's address
    /// in a library mapped since the last read is a miss, and the read finds it. What it gets
    /// wrong: a VMA that was unmapped and replaced by another over the same addresses (a
    /// library closed and another opened at the same place, a file mapped `MAP_FIXED` over
    /// another) is answered as it was until a miss that reads or [`VmaCache::invalidate`]
    /// makes it read again; so is a VMA whose permissions or offset changed. On the text
    /// backend (kernels before 6.11), where a query would read the whole text, a miss costs a
    /// walk, also for an address that nothing maps or that the query's filters reject; an
    /// address that the walk does not answer either is then remembered (up to 4 096 of
    /// them), and misses without a walk until a read (made for another miss, or after
    /// [`VmaCache::invalidate`]) finds a VMA there: a garbage frame that every sample
    /// repeats (an unwind by frame pointers through code built without them finds the same
    /// wrong return addresses each time) costs one walk, not one per sample, and a VMA
    /// mapped later at exactly that address is not seen until such a read. Misses in one
    /// [`VmaCache::get_many`] or [`VmaCache::resolve`] read at most once for all of them.
    /// With the ioctl an address that nothing maps costs a query each time (a 32-address
    /// stack with one address nothing maps, over 10 028 VMAs with names and build IDs on
    /// the host: 2.0 us per stack, where reading again cost 7.2 ms; `examples/bench.rs`).
    /// (On x86-64, arm64 and riscv64, an address of the kernel's half of the address
    /// space, the top bit set, as a kernel address in a mixed stack, is no miss: no VMA of
    /// a process is ever there.)
    RereadOnMiss,
    /// The VMAs as last read answer every lookup, however old, until
    /// [`VmaCache::invalidate`]: for a process known not to change its mappings, or with
    /// your own invalidation (a timer, an `mmap` event of `perf_event_open()`).
    Trust,
}

/// Whether no VMA of a process can ever cover `addr`: on x86-64, arm64 and riscv64, an
/// address with the top bit set is in the kernel's half of the address space (user space
/// ends at 2^56 at most). Not so everywhere (sparc64 puts user stacks at the top).
fn never_mapped(addr: u64) -> bool {
    cfg!(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )) && addr >> 63 != 0
}

/// Whether `vmas` are in address order without overlaps, as a snapshot's are.
fn in_order(vmas: &[Vma]) -> bool {
    vmas.windows(2).all(|w| w[0].end <= w[1].start)
}

/// Where a cache reads from: a [`ProcMaps`], or a fake in the tests.
pub(crate) trait Source {
    /// The generation now.
    fn generation(&self) -> Result<Gen>;
    /// A walk of the VMAs `query` lets through, and what the generation did meanwhile.
    fn snapshot(&self, query: Query) -> Result<(Vec<Vma>, Seen)>;
    /// Whether the address space is still there, asked cheaply (one query, or one read of
    /// the start of the text).
    fn alive(&self) -> Result<bool>;
    /// Whether a VMA that `query` (a covering query, neither name nor build ID asked) lets
    /// through covers `addr` now: one query. Asked only where [`Source::probe_limit`] is not
    /// 0.
    fn covered(&self, addr: u64, query: Query) -> Result<bool>;
    /// How many queries ([`Source::covered`]) cost less than a walk of about `vmas` VMAs:
    /// the system calls such a walk makes (0 where a query reads as much as a walk: the text
    /// backend).
    fn probe_limit(&self, vmas: usize) -> usize;
}

/// A reading of the generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gen {
    Value(u64),
    /// No extension.
    Absent,
    /// `ESRCH`: no address space.
    Gone,
}

impl Source for ProcMaps {
    fn generation(&self) -> Result<Gen> {
        match ProcMaps::generation(self) {
            Ok(Some(g)) => Ok(Gen::Value(g)),
            Ok(None) => Ok(Gen::Absent),
            Err(e) if e.errno() == Some(libc::ESRCH) => Ok(Gen::Gone),
            Err(e) => Err(e),
        }
    }

    fn snapshot(&self, query: Query) -> Result<(Vec<Vma>, Seen)> {
        match self.walk(query) {
            Err(e) if e.is_gone() => Ok((Vec::new(), Seen::Gone)),
            r => r,
        }
    }

    fn alive(&self) -> Result<bool> {
        self.still_there()
    }

    fn covered(&self, addr: u64, query: Query) -> Result<bool> {
        Ok(self.query(addr, query)?.is_some())
    }

    fn probe_limit(&self, vmas: usize) -> usize {
        match self.backend() {
            Backend::Text => 0,
            // A query per VMA, and the one that finds none after the last.
            Backend::Ioctl => vmas + 1,
            Backend::Batch => vmas / crate::batch::RECORDS + 1,
        }
    }
}

impl ProcMaps {
    /// [`Source::snapshot`], with the address space's going as an error.
    fn walk(&self, query: Query) -> Result<(Vec<Vma>, Seen)> {
        if self.backend() == Backend::Batch {
            // The generation each call saw, before its first VMA and after its last.
            let mut it = self.iter(query);
            let vmas = it.by_ref().collect::<Result<Vec<_>>>()?;
            match it.batch_generation() {
                Seen::NotBatch => {} // the batches stopped: again, below
                seen => return Ok((vmas, seen)),
            }
        }
        // Between two readings of the generation.
        let before = Source::generation(self)?;
        let vmas = self.iter(query).collect::<Result<Vec<_>>>()?;
        let seen = match (before, Source::generation(self)?) {
            (Gen::Value(a), Gen::Value(b)) => Seen::of(a, b),
            (Gen::Gone, _) | (_, Gen::Gone) => Seen::Gone,
            _ => Seen::Untracked,
        };
        Ok((vmas, seen))
    }
}

/// The state of a cache, apart from where it reads from.
#[derive(Debug)]
pub(crate) struct Core {
    query: Query,
    vmas: Vec<Vma>,
    freshness: Freshness,
    untracked: UntrackedPolicy,
    /// A refresh must read (after [`VmaCache::invalidate`]).
    stale: bool,
    reads: u64,
    /// The answers of the last [`VmaCache::get`] or [`VmaCache::get_many`] that asked the
    /// maps.
    asked: Vec<Vma>,
    /// The last reading of the generation found none ([`Gen::Absent`]): nothing says when
    /// the address space goes.
    untracked_absent: bool,
    /// Under [`UntrackedPolicy::RereadOnMiss`] where a miss cannot be asked about (the text
    /// backend): addresses that missed, made a read, and no VMA of the reads since covers
    /// ([`Core::read_for_misses`]); they miss without reading again. At most
    /// [`MISSED_MAX`].
    missed: std::collections::HashSet<u64>,
}

/// The most addresses [`Core::missed`] remembers; past that it starts again.
const MISSED_MAX: usize = 4096;

impl Core {
    pub(crate) fn new(query: Query) -> Self {
        Core {
            query: query.or_next(true),
            vmas: Vec::new(),
            freshness: Freshness::Untracked,
            untracked: UntrackedPolicy::Ask,
            stale: true,
            reads: 0,
            asked: Vec::new(),
            untracked_absent: false,
            missed: std::collections::HashSet::new(),
        }
    }

    /// Whether lookups ask the maps rather than read all the VMAs again: no generation to
    /// tell whether they changed, and [`UntrackedPolicy::Ask`].
    fn asks(&self) -> bool {
        self.freshness == Freshness::Untracked
            && self.untracked == UntrackedPolicy::Ask
            && !self.stale
    }

    /// Whether, without a generation, the VMAs as last read are kept by a refresh.
    fn kept_untracked(&self) -> bool {
        self.untracked != UntrackedPolicy::Ask
    }

    /// Refreshes, then, under [`UntrackedPolicy::RereadOnMiss`] without a generation, reads
    /// again if a VMA covers one of the addresses that the VMAs do not answer
    /// ([`Core::read_for_misses`]), unless the refresh just read them: at most one read
    /// more. Then the error of a gone address space.
    fn refresh_for(&mut self, src: &impl Source, addrs: &[u64]) -> Result<()> {
        let read = self.refresh(src)?;
        if self.rereads_on_miss(read) {
            let misses: Vec<u64> = addrs
                .iter()
                .copied()
                .filter(|&a| !self.answers(a))
                .collect();
            self.read_for_misses(src, &misses)?;
        }
        self.not_gone()
    }

    /// Under [`UntrackedPolicy::RereadOnMiss`]: reads the VMAs again if a VMA now covers one
    /// of `misses`, addresses that they do not answer (none: nothing to do); whether it
    /// read them. Where the
    /// source can tell with one query ([`Source::covered`]), it asks about each such
    /// address in turn, as long as that costs at most the system calls of a walk
    /// ([`Source::probe_limit`]), and reads at the first covered one; an address that
    /// nothing maps then costs a query, not a walk. Elsewhere (the text backend), and with
    /// more misses than that, any miss reads. Where no miss can be asked about, the misses
    /// that the read does not answer either are remembered ([`Core::missed`]): a garbage
    /// frame that every sample repeats (an unwind by frame pointers through code without
    /// them finds the same wrong return addresses each time) costs one walk, not one per
    /// sample.
    fn read_for_misses(&mut self, src: &impl Source, addrs: &[u64]) -> Result<bool> {
        let limit = src.probe_limit(self.vmas.len());
        if limit == 0 {
            if addrs.is_empty() {
                return Ok(false);
            }
            self.read(src)?;
            if self.freshness == Freshness::Untracked {
                // Every miss of the call that the read does not answer either.
                for &a in addrs {
                    if !self.answers(a) {
                        if self.missed.len() >= MISSED_MAX {
                            self.missed.clear();
                        }
                        self.missed.insert(a);
                    }
                }
            }
            return Ok(true);
        }
        let mut misses = std::collections::HashSet::new();
        for &a in addrs {
            if misses.insert(a) && misses.len() > limit {
                self.read(src)?;
                return Ok(true);
            }
        }
        // In address order, so that the same lookup asks the same way each time.
        let mut misses: Vec<u64> = misses.into_iter().collect();
        misses.sort_unstable();
        let query = self.query.or_next(false).name(false).build_id(false);
        for a in misses {
            match src.covered(a, query) {
                Ok(false) => {}
                Ok(true) => {
                    self.read(src)?;
                    return Ok(true);
                }
                Err(e) if e.is_gone() => {
                    self.gone();
                    return Ok(true);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Whether a miss reads the VMAs again after a refresh (`read`: whether it read them):
    /// under [`UntrackedPolicy::RereadOnMiss`] without a generation, unless it just did.
    fn rereads_on_miss(&self, read: bool) -> bool {
        !read
            && self.freshness == Freshness::Untracked
            && self.untracked == UntrackedPolicy::RereadOnMiss
    }

    /// Whether the VMAs as last read answer `addr`: one covers it, none ever can, or it
    /// missed after a read and none of the reads since covers it ([`Core::missed`]).
    fn answers(&self, addr: u64) -> bool {
        self.lookup(addr).is_some() || never_mapped(addr) || self.missed.contains(&addr)
    }

    /// [`VmaCache::get`] from the snapshot (not [`UntrackedPolicy::Ask`]).
    pub(crate) fn get(&mut self, src: &impl Source, addr: u64) -> Result<Option<&Vma>> {
        self.refresh_for(src, &[addr])?;
        Ok(self.lookup(addr))
    }

    /// [`VmaCache::get_many`] from the snapshot (not [`UntrackedPolicy::Ask`]): refreshes
    /// as [`Core::refresh_for`] does, with each address looked up once while the VMAs are
    /// kept.
    pub(crate) fn get_many(
        &mut self,
        src: &impl Source,
        addrs: &[u64],
    ) -> Result<Vec<Option<&Vma>>> {
        let read = self.refresh(src)?;
        let mut found: Vec<Option<usize>> = addrs.iter().map(|&a| self.position(a)).collect();
        let misses = |found: &[Option<usize>]| -> Vec<u64> {
            let miss = |(f, &a): (&Option<usize>, &u64)| {
                f.is_none() && !never_mapped(a) && !self.missed.contains(&a)
            };
            found
                .iter()
                .zip(addrs)
                .filter(|&p| miss(p))
                .map(|(_, &a)| a)
                .collect()
        };
        if self.rereads_on_miss(read) && self.read_for_misses(src, &misses(&found))? {
            for (f, &a) in found.iter_mut().zip(addrs) {
                *f = self.position(a);
            }
        }
        self.not_gone()?;
        Ok(found
            .into_iter()
            .map(|f| f.and_then(|i| self.vmas.get(i)))
            .collect())
    }

    /// [`VmaCache::resolve`] from the snapshot (not [`UntrackedPolicy::Ask`]).
    pub(crate) fn resolve_fresh(&mut self, src: &impl Source, addrs: &[u64]) -> Result<Resolution> {
        self.refresh_for(src, addrs)?;
        Ok(self.resolve(addrs))
    }

    /// [`VmaCache::refresh`]: [`Core::refresh`], and where that kept the VMAs without a
    /// generation to read ([`UntrackedPolicy::RereadOnMiss`], [`UntrackedPolicy::Trust`] on
    /// a kernel without the extension), whether the address space is still there (one
    /// query): the only sign of an exit or `execve()` those policies get. With a generation
    /// (even [`crate::GENERATION_UNKNOWN`]) its reading already said.
    pub(crate) fn refresh_checked(&mut self, src: &impl Source) -> Result<bool> {
        let before = self.reads;
        let read = self.refresh(src)?;
        if !read
            && self.reads == before
            && self.freshness == Freshness::Untracked
            && self.untracked_absent
            && !src.alive()?
        {
            self.gone();
            return Ok(true);
        }
        Ok(read)
    }

    /// Reads again if the generation says so; whether it did.
    pub(crate) fn refresh(&mut self, src: &impl Source) -> Result<bool> {
        if self.freshness == Freshness::Gone {
            return Ok(false);
        }
        let gen = src.generation()?;
        self.untracked_absent = gen == Gen::Absent;
        let fresh = !self.stale
            && match (self.freshness, gen) {
                (Freshness::Generation(had), Gen::Value(now)) => had == now,
                (Freshness::Untracked, Gen::Absent) => self.kept_untracked(),
                (Freshness::Untracked, Gen::Value(crate::abi::GENERATION_UNKNOWN)) => {
                    self.kept_untracked()
                }
                _ => false,
            };
        if fresh {
            return Ok(false);
        }
        if gen == Gen::Gone {
            self.gone();
            return Ok(true);
        }
        self.read(src)?;
        Ok(true)
    }

    /// Walks until a walk is a snapshot, at most [`ATTEMPTS`] times. A walk whose VMAs
    /// overlap or go back (a VMA that starts below the end of the one before it: mapped or
    /// grown after that one was read) is no snapshot, whatever the generation said: without
    /// the extension nothing else tells.
    pub(crate) fn read(&mut self, src: &impl Source) -> Result<()> {
        for _ in 0..ATTEMPTS {
            let (vmas, seen) = src.snapshot(self.query)?;
            self.reads += 1;
            self.vmas = vmas;
            self.stale = false;
            // Remembered misses that a VMA covers now are none.
            let vmas = &self.vmas;
            self.missed.retain(|&a| {
                let i = vmas.partition_point(|v| v.end <= a);
                vmas.get(i).is_none_or(|v| v.start > a)
            });
            let ordered = in_order(&self.vmas);
            self.freshness = match seen {
                Seen::Gone => {
                    self.gone();
                    return Ok(());
                }
                Seen::Changed => continue,
                _ if !ordered => continue,
                Seen::At(g) => Freshness::Generation(g),
                Seen::Untracked | Seen::NotBatch => Freshness::Untracked,
            };
            return Ok(());
        }
        // The last walk, without the VMAs that overlap one before them, so that lookups
        // (a binary search) stay well defined.
        let mut end = 0;
        self.vmas.retain(|v| {
            let keep = v.start >= end;
            if keep {
                end = v.end;
            }
            keep
        });
        self.freshness = Freshness::Unstable;
        self.stale = true;
        Ok(())
    }

    /// The address space's going, as the error [`ProcMaps`] gives for it.
    fn not_gone(&self) -> Result<()> {
        if self.freshness == Freshness::Gone {
            return Err(crate::Error::gone("VmaCache"));
        }
        Ok(())
    }

    /// `r`, the answer of the maps asked instead of the cache ([`UntrackedPolicy::Ask`]):
    /// an error for a gone address space makes the cache [`Freshness::Gone`].
    fn asked<T>(&mut self, r: Result<T>) -> Result<T> {
        if matches!(&r, Err(e) if e.is_gone()) {
            self.gone();
        }
        r
    }

    fn gone(&mut self) {
        self.vmas.clear();
        self.asked.clear();
        self.missed.clear();
        self.freshness = Freshness::Gone;
        self.stale = false;
    }

    /// The VMA covering `addr`: a binary search (the VMAs are in address order, without
    /// overlaps).
    pub(crate) fn lookup(&self, addr: u64) -> Option<&Vma> {
        self.vmas.get(self.position(addr)?)
    }

    /// The index of the VMA covering `addr`, as [`Core::lookup`].
    fn position(&self, addr: u64) -> Option<usize> {
        let i = self.vmas.partition_point(|v| v.end <= addr);
        self.vmas.get(i).filter(|v| v.start <= addr).map(|_| i)
    }

    /// [`ProcMaps::resolve`] over the snapshot.
    fn resolve(&self, addrs: &[u64]) -> Resolution {
        let index: Vec<Option<usize>> = addrs.iter().map(|&a| self.position(a)).collect();
        let mut used: Vec<usize> = index.iter().flatten().copied().collect();
        used.sort_unstable();
        used.dedup();
        let vmas: Vec<Vma> = used.iter().map(|&i| self.vmas[i].clone()).collect();
        let addrs = addrs
            .iter()
            .zip(index)
            .map(|(&a, i)| {
                let k = used.binary_search(&i?).ok()?;
                Some(crate::Location {
                    vma: k,
                    file_offset: vmas[k].file_offset(a),
                })
            })
            .collect();
        Resolution { vmas, addrs }
    }
}

/// The VMAs of a process, kept between lookups and read again only when they may have
/// changed: with the extension of `<linux/procmap_query.h>`, a refresh costs one system call
/// (`PROCMAP_QUERY_GENERATION`) while no VMA changes, and a walk in batches when one did. A
/// symbolizer or profiler can then normalize addresses without a system call per sample and
/// without trusting VMAs that went away.
///
/// ```
/// use procmap::{Freshness, ProcMaps, Query, VmaCache};
/// fn f() {}
/// let mut cache = VmaCache::new(ProcMaps::open_self()?, Query::new().name(true))?;
/// let code = f as usize as u64;
/// let vma = cache.get(code)?.expect("our code is mapped"); // refreshes first if needed
/// assert!(vma.perms.exec);
/// match cache.freshness() {
///     Freshness::Generation(g) => println!("a snapshot at generation {g}"),
///     other => println!("{other:?}: read again at every refresh"),
/// }
/// # Ok::<(), procmap::Error>(())
/// ```
///
/// # When the VMAs can be stale
///
/// A snapshot is taken only from a walk during which the generation stayed at one even value
/// (the batch calls report it before their first VMA and after their last; other backends
/// read it before and after the walk); after 8 walks that each saw a change, the cache keeps
/// the last one and says [`Freshness::Unstable`]. [`VmaCache::refresh`] (and
/// [`VmaCache::get`], [`VmaCache::get_many`], [`VmaCache::resolve`], which call it) then
/// read again when:
///
/// - the generation differs from the snapshot's (or is odd: a change in progress);
/// - the cache is [`Freshness::Unstable`], or was [`VmaCache::invalidate`]d;
/// - there is no generation ([`Freshness::Untracked`]: no extension, a kernel that cannot
///   tell, or the extension lost when the module was unloaded), under the default
///   [`UntrackedPolicy::Ask`]; then [`VmaCache::get`], [`VmaCache::get_many`] and
///   [`VmaCache::resolve`] do not refresh: they ask the maps ([`ProcMaps::query`],
///   [`ProcMaps::resolve`]), as a walk for every lookup would cost far more (100 `get()`s
///   over 4 000 VMAs: 254 ms that way, 71 us asking). [`UntrackedPolicy::RereadOnMiss`]
///   answers from the cache and reads again only for an address it does not hold that a
///   VMA covers now (see there what that gets wrong), and [`UntrackedPolicy::Trust`]
///   keeps the VMAs until [`VmaCache::invalidate`].
///
/// With a generation, what a refresh can still miss:
///
/// - Anything that happens after it: the VMAs are those of the moment of the refresh, and
///   [`VmaCache::lookup`] does not refresh.
/// - A change exactly 2^31 (or a multiple of it) mmap write-lock sections after the snapshot:
///   the generation is the kernel's 32-bit count of those sections (`mm_lock_seq`),
///   zero-extended, which adds 2 per section and so repeats after 2^31 of them. A process that
///   changes its VMAs a million times a second comes back to the same value after about 36
///   minutes; refreshing more often than that rules it out. Not for a process that does it on
///   purpose: each `brk()` call is a section, even one that changes nothing, so a few minutes
///   of its CPU bring the count back to the value a cache holds. The generation tells a
///   cache it is stale; it does not protect a reader from a process that tries to deceive
///   it (read the VMAs again instead of trusting an equal value).
/// - Names that change without a VMA changing: a mapped file renamed, moved, or unlinked
///   (the `" (deleted)"` suffix), which changes its path but no VMA; and the `[heap]` and
///   `[stack]` labels if `prctl(PR_SET_MM)` moves the heap or stack bounds. Likewise a build
///   ID, which is read from the file, if the file is rewritten in place.
///
/// Ranges, permissions, offsets, the file (device, inode) and anonymous names are covered:
/// the kernel changes them only under the mmap write lock, whose sections the generation
/// counts.
#[derive(Debug)]
pub struct VmaCache {
    maps: ProcMaps,
    core: Core,
}

impl VmaCache {
    /// Reads the VMAs that `query`'s filters let through (with the name and build ID if it
    /// asks for them) from `maps`, and keeps `maps` to check and read again.
    ///
    /// Maps without an address space (a zombie, a process that exited or called `execve()`
    /// since they were opened) give a cache that is [`Freshness::Gone`], not an error, so
    /// that the maps can be had back to [`ProcMaps::reopen`] ([`VmaCache::into_maps`]);
    /// its lookups fail with an error for which [`Error::is_gone`](crate::Error::is_gone)
    /// holds.
    ///
    /// **On a kernel without a generation** (every released kernel: the extension is this
    /// project's; [`Freshness::Untracked`]) the cache answers nothing from its VMAs by
    /// default ([`UntrackedPolicy::Ask`]: a system call per lookup, the VMAs of the moment).
    /// A profiler wants [`UntrackedPolicy::RereadOnMiss`] there (hits from the cache, a
    /// miss reads again once; 0.7 us instead of 150 us per 32-address stack of a Python
    /// process with names and build IDs): make it with [`VmaCache::with_policy`], or see
    /// [`VmaCache::set_untracked_policy`].
    pub fn new(maps: ProcMaps, query: Query) -> Result<Self> {
        Self::with_policy(maps, query, UntrackedPolicy::Ask)
    }

    /// [`VmaCache::new`] with `policy` for when there is no generation
    /// ([`VmaCache::set_untracked_policy`]): for a profiler on released kernels,
    /// [`UntrackedPolicy::RereadOnMiss`].
    ///
    /// ```
    /// use procmap::{ProcMaps, Query, UntrackedPolicy, VmaCache};
    /// let q = Query::new().name(true).build_id(true);
    /// let cache = VmaCache::with_policy(ProcMaps::open_self()?, q, UntrackedPolicy::RereadOnMiss)?;
    /// assert_eq!(cache.untracked_policy(), UntrackedPolicy::RereadOnMiss);
    /// # Ok::<(), procmap::Error>(())
    /// ```
    pub fn with_policy(maps: ProcMaps, query: Query, policy: UntrackedPolicy) -> Result<Self> {
        let mut core = Core::new(query);
        core.untracked = policy;
        maps.named(core.read(&maps))?;
        Ok(VmaCache { maps, core })
    }

    /// What the cache does while it has no generation ([`Freshness::Untracked`]): see
    /// [`UntrackedPolicy`]. [`UntrackedPolicy::Ask`] by default.
    ///
    /// ```
    /// use procmap::{ProcMaps, Query, UntrackedPolicy, VmaCache};
    /// fn f() {}
    /// let mut cache = VmaCache::new(ProcMaps::open_self()?, Query::new())?;
    /// cache.set_untracked_policy(UntrackedPolicy::RereadOnMiss);
    /// // Without a generation, a hit is answered from the cache, without a system call; an
    /// // address that the cache does not hold makes it read the VMAs again, once, if a VMA
    /// // covers it now (asked with one query where the kernel has the ioctl).
    /// assert!(cache.get(f as usize as u64)?.is_some());
    /// # Ok::<(), procmap::Error>(())
    /// ```
    pub fn set_untracked_policy(&mut self, policy: UntrackedPolicy) {
        self.core.untracked = policy;
    }

    /// The policy set by [`VmaCache::set_untracked_policy`].
    pub fn untracked_policy(&self) -> UntrackedPolicy {
        self.core.untracked
    }

    /// `true` is [`UntrackedPolicy::Trust`], `false` [`UntrackedPolicy::Ask`] (the default),
    /// whatever the policy was.
    #[deprecated(
        since = "0.3.0",
        note = "use `set_untracked_policy(UntrackedPolicy::Trust)` (or `RereadOnMiss`)"
    )]
    pub fn trust_without_generation(&mut self, on: bool) {
        self.set_untracked_policy(if on {
            UntrackedPolicy::Trust
        } else {
            UntrackedPolicy::Ask
        });
    }

    /// Checks the generation (one system call) and reads the VMAs again if they may have
    /// changed (see [`VmaCache`]); whether it read them (or found the address space gone).
    /// `Ok(true)` from the call that finds the address space gone; once the cache is
    /// [`Freshness::Gone`] (found so by an earlier refresh, or by a [`VmaCache::get`] that
    /// failed with the error that says so), `Ok(false)` without a system call: test
    /// [`VmaCache::freshness`] for it.
    /// Where there is no generation and the [`UntrackedPolicy`] keeps the VMAs
    /// ([`UntrackedPolicy::RereadOnMiss`], [`UntrackedPolicy::Trust`]), it checks instead
    /// that the address space is still there (one query; on the text backend one read of
    /// the start of the text): [`Freshness::Gone`] once the process exited or called
    /// `execve()`, which lookups answered from the cache do not notice.
    pub fn refresh(&mut self) -> Result<bool> {
        self.maps.named(self.core.refresh_checked(&self.maps))
    }

    /// Makes the next refresh read the VMAs again, whatever the generation says.
    pub fn invalidate(&mut self) {
        self.core.stale = true;
    }

    /// Refreshes, then gives the VMA covering `addr` (among those the query lets through).
    /// An error for which [`Error::is_gone`](crate::Error::is_gone) holds once the cache is
    /// [`Freshness::Gone`].
    ///
    /// Without a generation ([`Freshness::Untracked`]), as the [`UntrackedPolicy`] says: by
    /// default it asks the maps instead (one query, as [`ProcMaps::query`]) and leaves the
    /// VMAs as last read: reading all of them again for every call would cost a walk where
    /// the caller wanted one VMA. [`VmaCache::refresh`] still reads them (and finds a
    /// generation if the kernel has gained one). With [`UntrackedPolicy::RereadOnMiss`], from
    /// the cache, and an address it does not hold reads the VMAs again, once, if a VMA
    /// covers it now (see there).
    pub fn get(&mut self, addr: u64) -> Result<Option<&Vma>> {
        if self.core.asks() {
            let q = self.core.query.or_next(false);
            let asked = self.core.asked(self.maps.query(addr, q))?;
            // The room of the last answers, kept.
            self.core.asked.clear();
            self.core.asked.extend(asked);
            return Ok(self.core.asked.first());
        }
        self.maps.named(self.core.get(&self.maps, addr))
    }

    /// [`VmaCache::get`] for many addresses, with one refresh for all: the VMA covering each
    /// address, in the order given, borrowed from the cache rather than copied as
    /// [`VmaCache::resolve`] copies them with their names and build IDs. Answered from the
    /// cache, it costs about what a [`VmaCache::lookup`] per address costs, and
    /// [`VmaCache::resolve`] about 4 times that (`examples/bench.rs`). [`Vma::file_offset`]
    /// gives an address's offset in its file. With the same error as [`VmaCache::get`] once
    /// the cache is [`Freshness::Gone`].
    ///
    /// Without a generation, as [`VmaCache::resolve`]: by default
    /// ([`UntrackedPolicy::Ask`]) not from the cache but one [`ProcMaps::resolve`] on the
    /// maps, which copies as [`VmaCache::resolve`] does and whose VMAs the cache keeps until
    /// the next call that asks the maps (the cache's own VMAs stay as last read); with
    /// [`UntrackedPolicy::RereadOnMiss`], from the cache, read again once if a VMA now covers
    /// any of the addresses that are not in it; with [`UntrackedPolicy::Trust`], from the
    /// cache.
    ///
    /// ```
    /// use procmap::{ProcMaps, Query, VmaCache};
    /// fn f() {}
    /// let mut cache = VmaCache::new(ProcMaps::open_self()?, Query::new().name(true))?;
    /// let stack = [f as usize as u64, 0];
    /// for (&addr, vma) in stack.iter().zip(cache.get_many(&stack)?) {
    ///     match vma {
    ///         Some(v) => println!("{addr:#x}: {} {:?}", v.name_lossy(), v.file_offset(addr)),
    ///         None => println!("{addr:#x}: not mapped"),
    ///     }
    /// }
    /// # Ok::<(), procmap::Error>(())
    /// ```
    pub fn get_many(&mut self, addrs: &[u64]) -> Result<Vec<Option<&Vma>>> {
        self.get_many_with_maps(addrs).map(|(vmas, _)| vmas)
    }

    /// [`VmaCache::get_many`], with the maps beside the VMAs, for what a symbolizer does
    /// next while it holds them: open the files they map ([`ProcMaps::open_mapped_file`]),
    /// which [`VmaCache::maps`] cannot give while the VMAs borrow the cache.
    ///
    /// ```
    /// use procmap::{ProcMaps, Query, VmaCache};
    /// fn f() {}
    /// let mut cache = VmaCache::new(ProcMaps::open_self()?, Query::new().name(true))?;
    /// let (vmas, maps) = cache.get_many_with_maps(&[f as usize as u64])?;
    /// let file = vmas[0].and_then(|v| maps.open_mapped_file(v));
    /// assert!(file.is_some());
    /// # Ok::<(), procmap::Error>(())
    /// ```
    pub fn get_many_with_maps(&mut self, addrs: &[u64]) -> Result<(Vec<Option<&Vma>>, &ProcMaps)> {
        if self.core.asks() {
            let r = self.core.asked(self.maps.resolve(addrs, self.core.query))?;
            self.core.asked = r.vmas;
            let asked = &self.core.asked;
            let vmas = r.addrs.iter().map(|l| l.and_then(|l| asked.get(l.vma)));
            return Ok((vmas.collect(), &self.maps));
        }
        let vmas = self.maps.named(self.core.get_many(&self.maps, addrs))?;
        Ok((vmas, &self.maps))
    }

    /// The VMA covering `addr` in the VMAs as last read, without a refresh: a binary search.
    pub fn lookup(&self, addr: u64) -> Option<&Vma> {
        self.core.lookup(addr)
    }

    /// Refreshes, then maps the addresses as [`ProcMaps::resolve`] does, from the cache
    /// (with the same error once the cache is [`Freshness::Gone`]). Without a generation,
    /// as [`VmaCache::get`]: by default [`ProcMaps::resolve`] on the maps; with
    /// [`UntrackedPolicy::RereadOnMiss`], from the cache, read again once if a VMA now
    /// covers any of the addresses that are not in it.
    pub fn resolve(&mut self, addrs: &[u64]) -> Result<Resolution> {
        if self.core.asks() {
            return self.core.asked(self.maps.resolve(addrs, self.core.query));
        }
        self.maps.named(self.core.resolve_fresh(&self.maps, addrs))
    }

    /// The VMAs as last read, in address order.
    pub fn vmas(&self) -> &[Vma] {
        &self.core.vmas
    }

    /// How far the VMAs can be trusted.
    pub fn freshness(&self) -> Freshness {
        self.core.freshness
    }

    /// How many walks of the VMAs the cache has made (a refresh that found the generation
    /// unchanged makes none, nor does a lookup answered from the cache; a miss under
    /// [`UntrackedPolicy::RereadOnMiss`] makes one, unless a query said that nothing maps
    /// the address).
    pub fn reads(&self) -> u64 {
        self.core.reads
    }

    /// The maps it reads from.
    pub fn maps(&self) -> &ProcMaps {
        &self.maps
    }

    /// Gives the maps back.
    pub fn into_maps(self) -> ProcMaps {
        self.maps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi;
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;

    /// A source that answers from a script: the generations to report, and for each walk
    /// what it saw.
    struct Fake {
        gens: RefCell<VecDeque<Gen>>,
        walks: RefCell<VecDeque<Seen>>,
        vmas: RefCell<Vec<Vma>>,
        /// The VMAs of the next walks, in turn, before [`Fake::vmas`] (which they replace).
        next_vmas: RefCell<VecDeque<Vec<Vma>>>,
        walked: Cell<u32>,
        /// What [`Source::alive`] answers, and how many times it was asked.
        alive: Cell<bool>,
        asked_alive: Cell<u32>,
        /// Whether [`Source::covered`] can tell (an ioctl backend; else it is the text's),
        /// and how many times it was asked. It answers from [`Fake::vmas`], or that the
        /// address space is gone where [`Fake::alive`] is false.
        probes: Cell<bool>,
        probed: Cell<u32>,
        /// What [`Source::probe_limit`] answers where [`Fake::probes`] is set.
        probe_limit: Cell<usize>,
    }

    impl Fake {
        fn new(vmas: Vec<Vma>) -> Self {
            Fake {
                gens: Default::default(),
                walks: Default::default(),
                vmas: RefCell::new(vmas),
                next_vmas: Default::default(),
                walked: Cell::new(0),
                alive: Cell::new(true),
                asked_alive: Cell::new(0),
                probes: Cell::new(false),
                probed: Cell::new(0),
                probe_limit: Cell::new(16),
            }
        }
        fn gen(&self, g: Gen) -> &Self {
            self.gens.borrow_mut().push_back(g);
            self
        }
        fn walk(&self, s: Seen) -> &Self {
            self.walks.borrow_mut().push_back(s);
            self
        }
    }

    impl Source for Fake {
        fn generation(&self) -> Result<Gen> {
            Ok(self
                .gens
                .borrow_mut()
                .pop_front()
                .expect("a generation was read"))
        }
        fn snapshot(&self, query: Query) -> Result<(Vec<Vma>, Seen)> {
            self.walked.set(self.walked.get() + 1);
            if let Some(v) = self.next_vmas.borrow_mut().pop_front() {
                *self.vmas.borrow_mut() = v;
            }
            let seen = self
                .walks
                .borrow_mut()
                .pop_front()
                .expect("a walk was made");
            let vmas = self.vmas.borrow();
            let passing = vmas.iter().filter(|v| passes(v, query)).cloned().collect();
            Ok((passing, seen))
        }
        fn alive(&self) -> Result<bool> {
            self.asked_alive.set(self.asked_alive.get() + 1);
            Ok(self.alive.get())
        }
        fn covered(&self, addr: u64, query: Query) -> Result<bool> {
            assert!(self.probes.get(), "asked though its probe limit is 0");
            assert_eq!(
                query.flags() & abi::COVERING_OR_NEXT_VMA,
                0,
                "a covering query"
            );
            assert!(
                !query.name_wanted() && !query.build_id_wanted(),
                "nothing more"
            );
            self.probed.set(self.probed.get() + 1);
            if !self.alive.get() {
                return Err(crate::Error::gone("Fake"));
            }
            let vmas = self.vmas.borrow();
            Ok(vmas.iter().any(|v| v.contains(addr) && passes(v, query)))
        }
        fn probe_limit(&self, _vmas: usize) -> usize {
            if self.probes.get() {
                self.probe_limit.get()
            } else {
                0
            }
        }
    }

    /// Whether `v` passes the one filter the fake knows, file-backed.
    fn passes(v: &Vma, query: Query) -> bool {
        query.flags() & abi::FILE_BACKED_VMA == 0 || v.file_backed()
    }

    fn vma(start: u64, end: u64) -> Vma {
        Vma {
            start,
            end,
            inode: 1,
            ..Default::default()
        }
    }

    /// `n` VMAs of two pages each, a page apart, from 0x10000.
    fn spaced(n: u64) -> Vec<Vma> {
        (0..n)
            .map(|i| vma(0x10000 + i * 0x3000, 0x12000 + i * 0x3000))
            .collect()
    }

    /// Every generation and walk scripted was used.
    fn used_up(f: &Fake) {
        assert!(f.gens.borrow().is_empty() && f.walks.borrow().is_empty());
    }

    #[test]
    fn reads_again_only_when_the_generation_changes() {
        let f = Fake::new(vec![vma(0x1000, 0x2000)]);
        let mut c = Core::new(Query::new());
        f.walk(Seen::At(4));
        c.read(&f).unwrap();
        assert_eq!((c.freshness, c.reads), (Freshness::Generation(4), 1));
        // Unchanged: no walk.
        f.gen(Gen::Value(4)).gen(Gen::Value(4));
        assert!(!c.refresh(&f).unwrap());
        assert!(!c.refresh(&f).unwrap());
        assert_eq!(f.walked.get(), 1);
        // Changed (even or odd): a walk.
        f.gen(Gen::Value(6)).walk(Seen::At(6));
        assert!(c.refresh(&f).unwrap());
        assert_eq!(c.freshness, Freshness::Generation(6));
        f.gen(Gen::Value(7)).walk(Seen::At(8));
        assert!(c.refresh(&f).unwrap());
        assert_eq!((c.freshness, f.walked.get()), (Freshness::Generation(8), 3));
        // Invalidated: a walk even if unchanged.
        c.stale = true;
        f.gen(Gen::Value(8)).walk(Seen::At(8));
        assert!(c.refresh(&f).unwrap());
        f.gen(Gen::Value(8));
        assert!(!c.refresh(&f).unwrap());
        used_up(&f);
    }

    #[test]
    fn walks_whose_vmas_overlap_are_read_again() {
        // Without a generation (and, though a snapshot cannot overlap, with one), a walk
        // whose VMAs overlap or go back saw a change: a VMA mapped or grown after the one
        // before it was read. Read again, as a change the generation shows would be.
        let torn = vec![
            vma(0x1000, 0x3000),
            vma(0x2000, 0x4000),
            vma(0x5000, 0x6000),
            vma(0x6000, 0x7000),
        ];
        let back = vec![vma(0x1000, 0x3000), vma(0x0800, 0x3800)];
        // Edge to edge is no overlap.
        let good = vec![
            vma(0x1000, 0x3800),
            vma(0x3800, 0x4000),
            vma(0x5000, 0x6000),
        ];
        for seen in [Seen::Untracked, Seen::NotBatch, Seen::At(4)] {
            let f = Fake::new(Vec::new());
            f.next_vmas
                .borrow_mut()
                .extend([torn.clone(), back.clone(), good.clone()]);
            let mut c = Core::new(Query::new());
            for _ in 0..3 {
                f.walk(seen);
            }
            c.read(&f).unwrap();
            assert_eq!((c.reads, &c.vmas), (3, &good), "{seen:?}");
            assert_ne!(c.freshness, Freshness::Unstable);
            used_up(&f);
        }
        // Torn every time: unstable, the last walk kept without the VMAs that overlap one
        // before them, so lookups stay a binary search.
        let f = Fake::new(torn);
        let mut c = Core::new(Query::new());
        for _ in 0..ATTEMPTS {
            f.walk(Seen::Untracked);
        }
        c.read(&f).unwrap();
        assert_eq!(c.freshness, Freshness::Unstable);
        assert_eq!(
            c.vmas,
            [
                vma(0x1000, 0x3000),
                vma(0x5000, 0x6000),
                vma(0x6000, 0x7000)
            ]
        );
        assert_eq!(c.lookup(0x2800).map(|v| v.start), Some(0x1000));
        assert_eq!(c.lookup(0x3800), None);
        assert_eq!(c.lookup(0x5800).map(|v| v.start), Some(0x5000));
        used_up(&f);
    }

    #[test]
    fn walks_that_keep_changing_are_unstable() {
        let f = Fake::new(vec![vma(0x1000, 0x2000)]);
        let mut c = Core::new(Query::new());
        for _ in 0..ATTEMPTS {
            f.walk(Seen::Changed);
        }
        c.read(&f).unwrap();
        assert_eq!(c.freshness, Freshness::Unstable);
        assert_eq!(f.walked.get(), ATTEMPTS);
        // The last walk's VMAs are kept...
        assert_eq!(c.lookup(0x1800).map(|v| v.start), Some(0x1000));
        // ...and the next refresh reads again, whatever the generation; two changes, then a
        // snapshot.
        f.gen(Gen::Value(10))
            .walk(Seen::Changed)
            .walk(Seen::Changed)
            .walk(Seen::At(12));
        assert!(c.refresh(&f).unwrap());
        assert_eq!(c.freshness, Freshness::Generation(12));
        assert_eq!(f.walked.get(), ATTEMPTS + 3);
        used_up(&f);
    }

    #[test]
    fn without_a_generation_it_reads_every_time_unless_trusted() {
        let f = Fake::new(vec![vma(0x1000, 0x2000)]);
        let mut c = Core::new(Query::new());
        f.walk(Seen::Untracked);
        c.read(&f).unwrap();
        assert_eq!(c.freshness, Freshness::Untracked);
        f.gen(Gen::Absent).walk(Seen::Untracked);
        assert!(c.refresh(&f).unwrap());
        // A kernel that cannot tell is the same.
        f.gen(Gen::Value(u64::MAX)).walk(Seen::Untracked);
        assert!(c.refresh(&f).unwrap());
        c.untracked = UntrackedPolicy::Trust;
        f.gen(Gen::Absent).gen(Gen::Value(u64::MAX));
        assert!(!c.refresh(&f).unwrap());
        assert!(!c.refresh(&f).unwrap());
        c.stale = true;
        f.gen(Gen::Absent).walk(Seen::Untracked);
        assert!(c.refresh(&f).unwrap());
        assert_eq!(f.walked.get(), 4);
        // The extension comes (back): a generation is tracked from the next snapshot on.
        f.gen(Gen::Value(2)).walk(Seen::At(2)).gen(Gen::Value(2));
        assert!(c.refresh(&f).unwrap());
        assert!(!c.refresh(&f).unwrap());
        assert_eq!(c.freshness, Freshness::Generation(2));
        used_up(&f);
    }

    #[test]
    fn reread_on_miss_walks_once_per_miss_and_never_for_a_hit() {
        let f = Fake::new(vec![vma(0x1000, 0x2000), vma(0x5000, 0x6000)]);
        let mut c = Core::new(Query::new());
        c.untracked = UntrackedPolicy::RereadOnMiss;
        f.walk(Seen::Untracked);
        c.read(&f).unwrap();
        assert_eq!((c.freshness, c.reads), (Freshness::Untracked, 1));
        // Hits: no walk, and a refresh keeps the VMAs too.
        for a in [0x1000, 0x1fff, 0x5800] {
            f.gen(Gen::Absent);
            assert!(c.get(&f, a).unwrap().is_some_and(|v| v.contains(a)));
        }
        f.gen(Gen::Absent);
        assert!(!c.refresh(&f).unwrap());
        assert_eq!((c.reads, f.walked.get()), (1, 1));
        // A page mapped since: a miss, one walk, answered from it; then a hit.
        f.vmas.borrow_mut().push(vma(0x8000, 0x9000));
        f.gen(Gen::Absent).walk(Seen::Untracked);
        assert_eq!(c.get(&f, 0x8010).unwrap().map(|v| v.start), Some(0x8000));
        assert_eq!((c.reads, f.walked.get()), (2, 2));
        f.gen(Gen::Absent);
        assert!(c.get(&f, 0x8010).unwrap().is_some());
        assert_eq!(c.reads, 2);
        // An address nothing maps: one walk, and the answer is None; asked again, no walk
        // (the read since found nothing there; nothing can ask about it on its own here).
        f.gen(Gen::Absent).walk(Seen::Untracked);
        assert_eq!(c.get(&f, 0x3000).unwrap(), None);
        assert_eq!(c.reads, 3);
        f.gen(Gen::Absent);
        assert_eq!(c.get(&f, 0x3000).unwrap(), None);
        assert_eq!(c.reads, 3);
        // A kernel address (the top bit set) never is a VMA's there: no walk, for get()
        // and resolve() (x86-64, arm64, riscv64).
        if never_mapped(u64::MAX) {
            for a in [0xffff_ffff_8100_0000, 1 << 63] {
                f.gen(Gen::Absent);
                assert_eq!(c.get(&f, a).unwrap(), None);
                assert_eq!(c.reads, 3);
            }
            assert!(!never_mapped((1 << 63) - 1));
        }
        // resolve(): hits only, no walk; with misses (several), one walk for all.
        f.gen(Gen::Absent);
        let mut addrs = vec![0x1000, 0x5000, 0x8000];
        if never_mapped(u64::MAX) {
            addrs.push(u64::MAX);
        }
        let r = c.resolve_fresh(&f, &addrs).unwrap();
        assert_eq!((r.vmas.len(), c.reads), (3, 3));
        f.vmas.borrow_mut().push(vma(0xa000, 0xb000));
        f.gen(Gen::Absent).walk(Seen::Untracked);
        let r = c.resolve_fresh(&f, &[0xa000, 0x1000, 0x3000, 0xa800, 0xf000]);
        let r = r.unwrap();
        assert_eq!(
            r.vmas.iter().map(|v| v.start).collect::<Vec<_>>(),
            [0x1000, 0xa000]
        );
        assert_eq!(r.addrs.iter().flatten().count(), 3);
        assert_eq!(c.reads, 4);
        // The trade-off: a VMA replaced over the same range is answered as it was.
        f.vmas.borrow_mut()[0].inode = 99;
        f.gen(Gen::Absent);
        assert_eq!(c.get(&f, 0x1000).unwrap().map(|v| v.inode), Some(1));
        // ...until a miss or invalidate() reads again.
        c.stale = true;
        f.gen(Gen::Absent).walk(Seen::Untracked);
        assert_eq!(c.get(&f, 0x1000).unwrap().map(|v| v.inode), Some(99));
        assert_eq!(c.reads, 5);
        // A miss read at the refresh already (invalidated): not a second walk.
        c.stale = true;
        f.gen(Gen::Absent).walk(Seen::Untracked);
        assert_eq!(c.get(&f, 0x3000).unwrap(), None);
        assert_eq!(c.reads, 6);
        // With a generation, the policy changes nothing: a miss at an unchanged
        // generation is an answer, not a walk.
        f.gen(Gen::Value(2)).walk(Seen::At(2)).gen(Gen::Value(2));
        assert_eq!(c.get(&f, 0x3000).unwrap(), None);
        assert_eq!(c.get(&f, 0x3000).unwrap(), None);
        assert_eq!((c.freshness, c.reads), (Freshness::Generation(2), 7));
        used_up(&f);
    }

    #[test]
    fn without_a_generation_a_refresh_checks_that_the_process_is_there() {
        for policy in [UntrackedPolicy::RereadOnMiss, UntrackedPolicy::Trust] {
            let f = Fake::new(vec![vma(0x1000, 0x2000)]);
            let mut c = Core::new(Query::new());
            c.untracked = policy;
            f.walk(Seen::Untracked);
            c.read(&f).unwrap();
            // Alive: a refresh keeps the VMAs, after one check.
            f.gen(Gen::Absent);
            assert!(!c.refresh_checked(&f).unwrap());
            assert_eq!(
                (f.asked_alive.get(), c.freshness),
                (1, Freshness::Untracked)
            );
            // Hits are not checked (no system call): still the old VMAs once it is gone...
            f.alive.set(false);
            f.gen(Gen::Absent);
            assert!(c.get(&f, 0x1000).unwrap().is_some());
            assert_eq!(f.asked_alive.get(), 1);
            // ...until a refresh finds it gone.
            f.gen(Gen::Absent);
            assert!(c.refresh_checked(&f).unwrap(), "{policy:?}");
            assert_eq!((c.freshness, c.vmas.len()), (Freshness::Gone, 0));
            assert!(c.get(&f, 0x1000).unwrap_err().is_gone());
            // A generation (even GENERATION_UNKNOWN) needs no check: its reading says.
            let mut c = Core::new(Query::new());
            c.untracked = policy;
            f.walk(Seen::Untracked);
            c.read(&f).unwrap();
            f.gen(Gen::Value(crate::GENERATION_UNKNOWN));
            assert!(!c.refresh_checked(&f).unwrap());
            assert_eq!(f.asked_alive.get(), 2);
            used_up(&f);
        }
    }

    #[test]
    #[allow(deprecated)]
    fn trust_without_generation_still_sets_the_policy() {
        let mut c = VmaCache::new(ProcMaps::open_self().unwrap(), Query::new()).unwrap();
        assert_eq!(c.untracked_policy(), UntrackedPolicy::Ask);
        c.trust_without_generation(true);
        assert_eq!(c.untracked_policy(), UntrackedPolicy::Trust);
        c.set_untracked_policy(UntrackedPolicy::RereadOnMiss);
        c.trust_without_generation(false);
        assert_eq!(c.untracked_policy(), UntrackedPolicy::Ask);
    }

    #[test]
    fn a_gone_address_space_is_empty_for_good() {
        let f = Fake::new(vec![vma(0x1000, 0x2000)]);
        let mut c = Core::new(Query::new());
        f.walk(Seen::At(2));
        c.read(&f).unwrap();
        f.gen(Gen::Gone);
        assert!(c.refresh(&f).unwrap());
        assert_eq!((c.freshness, c.vmas.len()), (Freshness::Gone, 0));
        // No more system calls.
        assert!(!c.refresh(&f).unwrap());
        // A walk that finds it gone.
        let mut c = Core::new(Query::new());
        f.walk(Seen::Gone);
        c.read(&f).unwrap();
        assert_eq!((c.freshness, c.vmas.len()), (Freshness::Gone, 0));
        used_up(&f);
    }

    #[test]
    fn lookups_are_binary_searches() {
        let vmas = spaced(1000);
        let f = Fake::new(vmas.clone());
        let mut c = Core::new(Query::new());
        f.walk(Seen::At(2));
        c.read(&f).unwrap();
        for (i, v) in vmas.iter().enumerate() {
            assert_eq!(c.lookup(v.start), Some(v), "{i}");
            assert_eq!(c.lookup(v.end - 1), Some(v), "{i}");
            assert_eq!(c.lookup(v.end), None, "{i}: in the gap");
        }
        assert_eq!(c.lookup(0), None);
        assert_eq!(c.lookup(u64::MAX), None);
        // resolve() over the snapshot: each VMA once, in address order.
        let addrs = [0x13001, 0x10000, 0x0, 0x13000, 0x10fff, u64::MAX];
        let r = c.resolve(&addrs);
        assert_eq!(r.vmas, vec![vmas[0].clone(), vmas[1].clone()]);
        let at = |i: usize| r.addrs[i].map(|l| (l.vma, l.file_offset));
        assert_eq!(at(0), Some((1, Some(1))));
        assert_eq!(at(1), Some((0, Some(0))));
        assert_eq!(at(2), None);
        assert_eq!(at(3), Some((1, Some(0))));
        assert_eq!(at(4), Some((0, Some(0xfff))));
        assert_eq!(at(5), None);
    }

    #[test]
    fn get_many_borrows_what_resolve_copies() {
        let vmas = spaced(100);
        let f = Fake::new(vmas.clone());
        let mut c = Core::new(Query::new());
        c.untracked = UntrackedPolicy::RereadOnMiss;
        f.walk(Seen::At(2));
        c.read(&f).unwrap();
        // The same VMA for each address as resolve(), in the order given, with a refresh for
        // all of them (one generation read), no walk while it is unchanged.
        let addrs = [0x13001, 0x10000, 0x0, 0x13000, 0x10fff, 0x12000, 0x13afff];
        f.gen(Gen::Value(2)).gen(Gen::Value(2));
        let r = c.resolve_fresh(&f, &addrs).unwrap();
        let got = c.get_many(&f, &addrs).unwrap();
        assert_eq!(got.len(), addrs.len());
        for (i, g) in got.iter().enumerate() {
            assert_eq!(*g, r.get(i).map(|(v, _)| v), "{i}");
        }
        assert_eq!(got[0], Some(&vmas[1]));
        assert_eq!(got[2], None);
        assert_eq!(got[5], None, "in a gap");
        assert_eq!(got[6], Some(&vmas[99]));
        assert_eq!(c.reads, 1);
        // Changed: read again, once, for all the addresses.
        f.vmas.borrow_mut().push(vma(0x400000, 0x401000));
        f.gen(Gen::Value(4)).walk(Seen::At(4));
        let got = c.get_many(&f, &[0x400800, 0x10000, 0x400000]).unwrap();
        let starts: Vec<_> = got.iter().map(|v| v.map(|v| v.start)).collect();
        assert_eq!(starts, [Some(0x400000), Some(0x10000), Some(0x400000)]);
        assert_eq!(c.reads, 2);
        // Without a generation, under RereadOnMiss: hits without a walk, and misses (two)
        // read again once.
        f.gen(Gen::Absent).walk(Seen::Untracked);
        assert_eq!(c.get_many(&f, &[0x10000, 0x400000]).unwrap().len(), 2);
        assert_eq!(c.reads, 3, "the generation went: read once to learn it");
        f.gen(Gen::Absent);
        assert!(c.get_many(&f, &[0x10000]).unwrap()[0].is_some());
        assert_eq!(c.reads, 3);
        // A kernel address is no miss (x86-64, arm64, riscv64): no walk.
        if never_mapped(u64::MAX) {
            f.gen(Gen::Absent);
            let got = c.get_many(&f, &[0x10000, 1 << 63]).unwrap();
            assert!(got[0].is_some() && got[1].is_none());
            assert_eq!(c.reads, 3);
        }
        f.vmas.borrow_mut().push(vma(0x500000, 0x501000));
        f.vmas.borrow_mut().push(vma(0x600000, 0x601000));
        f.gen(Gen::Absent).walk(Seen::Untracked);
        let got = c.get_many(&f, &[0x600000, 0x10000, 0x500000]).unwrap();
        assert!(got.iter().all(Option::is_some));
        assert_eq!(c.reads, 4);
        // An empty list: a refresh, nothing else.
        f.gen(Gen::Absent);
        assert!(c.get_many(&f, &[]).unwrap().is_empty());
        assert_eq!(c.reads, 4);
        // Trust: a miss is an answer, not a walk.
        c.untracked = UntrackedPolicy::Trust;
        f.gen(Gen::Absent);
        let got = c.get_many(&f, &[0x700000, 0x10000]).unwrap();
        assert!(got[0].is_none() && got[1].is_some());
        assert_eq!(c.reads, 4);
        // Gone: the error, then no more system calls.
        f.gen(Gen::Gone);
        assert!(c.get_many(&f, &[0x10000]).unwrap_err().is_gone());
        assert!(c.get_many(&f, &[0x10000]).unwrap_err().is_gone());
        used_up(&f);
    }

    #[test]
    fn reread_on_miss_without_queries_reads_once_for_a_repeated_miss() {
        // The text backend (no query to ask about a miss): a garbage frame in every
        // sample makes one walk, not one per sample, until a read finds it mapped.
        let f = Fake::new(spaced(10));
        let mut c = Core::new(Query::new().name(true));
        c.untracked = UntrackedPolicy::RereadOnMiss;
        f.walk(Seen::Untracked);
        c.read(&f).unwrap();
        f.gen(Gen::Absent).walk(Seen::Untracked);
        assert_eq!(c.get(&f, 0x12000).unwrap(), None, "in a gap");
        assert_eq!(c.reads, 2);
        for _ in 0..3 {
            f.gen(Gen::Absent);
            assert_eq!(c.get(&f, 0x12000).unwrap(), None);
            f.gen(Gen::Absent);
            let got = c.get_many(&f, &[0x10000, 0x12000]).unwrap();
            assert!(got[0].is_some() && got[1].is_none());
            f.gen(Gen::Absent);
            let r = c.resolve_fresh(&f, &[0x12000, 0x10000]).unwrap();
            assert_eq!(r.vmas.len(), 1);
        }
        assert_eq!(c.reads, 2);
        // Three garbage frames in one stack: one walk, then none.
        f.walk(Seen::Untracked);
        for _ in 0..3 {
            f.gen(Gen::Absent);
            let got = c
                .get_many(&f, &[0x15000, 0x10000, 0x18800, 0x1b000])
                .unwrap();
            assert!(got[1].is_some() && got.iter().filter(|v| v.is_none()).count() == 3);
            assert_eq!(c.reads, 3);
        }
        // Another miss reads; the address remembered still misses, and is kept.
        f.vmas.borrow_mut().push(vma(0x100000, 0x101000));
        f.gen(Gen::Absent).walk(Seen::Untracked);
        let got = c.get_many(&f, &[0x12000, 0x100000]).unwrap();
        assert!(got[0].is_none() && got[1].is_some());
        assert_eq!(c.reads, 4);
        f.gen(Gen::Absent);
        assert_eq!(c.get(&f, 0x12000).unwrap(), None);
        assert_eq!(c.reads, 4);
        // Mapped since: a miss until a read (here after invalidate()) finds it; then a hit,
        // and forgotten (unmapped again, a miss reads).
        f.vmas.borrow_mut().push(vma(0x12000, 0x13000));
        f.vmas.borrow_mut().sort_by_key(|v| v.start);
        f.gen(Gen::Absent);
        assert_eq!(c.get(&f, 0x12000).unwrap(), None, "not read since");
        c.stale = true;
        f.gen(Gen::Absent).walk(Seen::Untracked);
        assert!(c.get(&f, 0x12000).unwrap().is_some());
        assert_eq!(c.reads, 5);
        f.vmas.borrow_mut().retain(|v| v.start != 0x12000);
        c.stale = true;
        f.gen(Gen::Absent).walk(Seen::Untracked);
        c.refresh(&f).unwrap();
        f.gen(Gen::Absent).walk(Seen::Untracked);
        assert_eq!(c.get(&f, 0x12000).unwrap(), None);
        assert_eq!(c.reads, 7, "forgotten once mapped: the miss read again");
        used_up(&f);
    }

    #[test]
    fn reread_on_miss_asks_about_a_miss_before_it_walks() {
        // Where one query can tell (the ioctl), a miss under RereadOnMiss is asked about
        // first: an address that nothing maps costs that query, not a walk; one mapped
        // since, the query and one walk.
        let f = Fake::new(spaced(10));
        f.probes.set(true);
        let mut c = Core::new(Query::new().name(true).build_id(true));
        c.untracked = UntrackedPolicy::RereadOnMiss;
        f.walk(Seen::Untracked);
        c.read(&f).unwrap();
        for n in 1..=3 {
            f.gen(Gen::Absent);
            assert_eq!(c.get(&f, 0x12000).unwrap(), None, "in a gap");
            assert_eq!((c.reads, f.probed.get()), (1, n));
        }
        // A hit asks nothing.
        f.gen(Gen::Absent);
        assert!(c.get(&f, 0x10000).unwrap().is_some());
        assert_eq!((c.reads, f.probed.get()), (1, 3));
        // Mapped since: asked, then read, and answered from the read.
        f.vmas.borrow_mut().push(vma(0x100000, 0x101000));
        f.gen(Gen::Absent).walk(Seen::Untracked);
        assert_eq!(
            c.get(&f, 0x100800).unwrap().map(|v| v.start),
            Some(0x100000)
        );
        assert_eq!((c.reads, f.probed.get()), (2, 4));
        // get_many() and resolve(): the misses asked about in turn (each once), up to the
        // first that is mapped, then one read for all.
        f.vmas.borrow_mut().push(vma(0x200000, 0x201000));
        f.gen(Gen::Absent).walk(Seen::Untracked);
        let addrs = [0x12000, 0x10000, 0x12000, 0x15000, 0x200000, 0x300000];
        let got = c.get_many(&f, &addrs).unwrap();
        let starts: Vec<_> = got.iter().map(|v| v.map(|v| v.start)).collect();
        assert_eq!(
            starts,
            [None, Some(0x10000), None, None, Some(0x200000), None]
        );
        assert_eq!((c.reads, f.probed.get()), (3, 7));
        f.gen(Gen::Absent);
        let r = c.resolve_fresh(&f, &[0x12000, 0x200000, 0x300000]).unwrap();
        assert_eq!(r.addrs.iter().flatten().count(), 1);
        assert_eq!((c.reads, f.probed.get()), (3, 9));
        // More misses than queries cost less than a walk (the source says how many): read
        // without asking.
        let limit = f.probe_limit.get();
        let many: Vec<u64> = (0..=limit as u64).map(|i| 0x400000 + i * 0x1000).collect();
        f.gen(Gen::Absent).walk(Seen::Untracked);
        assert!(c.get_many(&f, &many).unwrap().iter().all(Option::is_none));
        assert_eq!((c.reads, f.probed.get()), (4, 9));
        // As many as that, and the same address again: asked about, no read.
        f.gen(Gen::Absent);
        let r = c
            .resolve_fresh(&f, &[&many[1..], &many[1..2]].concat())
            .unwrap();
        assert!(r.vmas.is_empty());
        assert_eq!((c.reads, f.probed.get()), (4, 9 + limit as u32));
        // A miss that the query's filters reject (anonymous memory, for a cache of
        // file-backed VMAs) is asked about with them: no read.
        let f2 = Fake::new(vec![
            vma(0x1000, 0x2000),
            Vma {
                inode: 0,
                ..vma(0x3000, 0x4000)
            },
        ]);
        f2.probes.set(true);
        let mut c2 = Core::new(Query::new().file_backed(true));
        c2.untracked = UntrackedPolicy::RereadOnMiss;
        f2.walk(Seen::Untracked);
        c2.read(&f2).unwrap();
        assert_eq!(c2.vmas.len(), 1);
        f2.gen(Gen::Absent);
        assert_eq!(c2.get(&f2, 0x3000).unwrap(), None);
        assert_eq!((c2.reads, f2.probed.get()), (1, 1));
        used_up(&f2);
        // The address space gone: the query's error makes the cache gone.
        f.alive.set(false);
        f.gen(Gen::Absent);
        assert!(c.get(&f, 0x12000).unwrap_err().is_gone());
        assert_eq!(c.freshness, Freshness::Gone);
        assert!(c.vmas.is_empty());
        used_up(&f);
    }
}

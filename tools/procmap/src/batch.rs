//! The extension's batches (`PROCMAP_QUERY_BATCH` of `<linux/procmap_query.h>`): walks for
//! [`ProcMaps::iter`](crate::ProcMaps::iter), lookups for
//! [`ProcMaps::resolve`](crate::ProcMaps::resolve), and the generation.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::AsRawFd;

use crate::{abi, Error, Location, Perms, ProcMaps, Query, Resolution, Result, Vma, WalkCache};

/// Records per call.
pub(crate) const RECORDS: usize = 256;
/// Bytes of names per call: room for 16 names of `PATH_MAX` (the kernel always has room for
/// the next name in a buffer of `PATH_MAX`).
pub(crate) const NAMES: usize = 64 << 10;
/// Addresses per lookup call.
pub(crate) const ADDRS: usize = 16 << 10;
/// The fewest VMAs a lookup call must report for [`dense`] to judge them.
const DENSE_MIN: usize = 8;

/// The VMA a record describes, as a single query would give it: its name from `names` (the
/// part of the buffer the kernel says it used) if `query` asks for names, its build ID if
/// `query` asks for it. A name outside `names` is no name; a build-ID size beyond the record's
/// 20 bytes is cut to them: no record can make this panic.
pub(crate) fn record_vma(rec: &abi::procmap_batch_vma, names: &[u8], query: Query) -> Vma {
    let name = if query.name_wanted() && rec.name_size != 0 {
        // The size counts the NUL.
        let off = rec.name_off as usize;
        let len = rec.name_size as usize - 1;
        off.checked_add(len)
            .and_then(|end| names.get(off..end))
            .map(<[u8]>::to_vec)
    } else {
        None
    };
    let bid_len = (rec.build_id_size as usize).min(rec.build_id.len());
    let build_id = (query.build_id_wanted() && bid_len != 0)
        .then(|| rec.build_id.get(..bid_len).map(<[u8]>::to_vec))
        .flatten();
    Vma {
        start: rec.vma_start,
        end: rec.vma_end,
        perms: Perms::from_flags(rec.vma_flags),
        offset: rec.vma_offset,
        dev_major: rec.dev_major,
        dev_minor: rec.dev_minor,
        inode: rec.inode,
        page_size: Some(rec.vma_page_size),
        name,
        build_id,
    }
}

/// The error for a failed `PROCMAP_QUERY_BATCH`: [`Error::is_gone`] for `ESRCH` (no address
/// space, any more).
fn batch_error(errno: i32) -> Error {
    const OP: &str = "ioctl(PROCMAP_QUERY_BATCH)";
    match errno {
        libc::ESRCH => Error::gone(OP),
        e => Error::os(OP, io::Error::from_raw_os_error(e)),
    }
}

/// What the generation was through a walk, for a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// The same even value before the first VMA and after the last: no VMA changed.
    At(u64),
    /// It changed, or was odd (a writer held the lock): not a snapshot.
    Changed,
    /// The kernel cannot tell (`PROCMAP_GENERATION_UNKNOWN`), or has no generation.
    Untracked,
    /// The address space is gone ([`Error::is_gone`]).
    Gone,
    /// The walk did not go to its end in batches.
    NotBatch,
}

impl Seen {
    /// A generation read before and after a walk.
    pub(crate) fn of(before: u64, after: u64) -> Seen {
        if before != after {
            Seen::Changed
        } else if before == abi::GENERATION_UNKNOWN {
            Seen::Untracked
        } else if before % 2 != 0 {
            Seen::Changed
        } else {
            Seen::At(before)
        }
    }
}

/// The generations the calls of a walk reported.
#[derive(Clone, Copy, Debug)]
struct Gens {
    first: Option<u64>,
    last: u64,
    /// Every value equal to the first.
    steady: bool,
}

impl Gens {
    fn saw(&mut self, start: u64, end: u64) {
        match self.first {
            None => self.first = Some(start),
            Some(_) => self.steady &= start == self.last,
        }
        self.steady &= start == end;
        self.last = end;
    }
}

/// What a walk gives next.
pub(crate) enum Step {
    Vma(Vma),
    End,
    /// The kernel does not know the batch command (any more): go on with single queries from
    /// this address.
    Lost(u64),
}

/// A walk in batches: the buffers, the VMAs received and not given out yet, where the next
/// call starts.
#[derive(Debug)]
pub(crate) struct Walk {
    recs: Vec<abi::procmap_batch_vma>,
    names: Vec<u8>,
    pending: VecDeque<Vma>,
    at: u64,
    done: bool,
    /// It ended because a record did not end above the last one (never from a 64-bit
    /// kernel; a 32-bit one truncates addresses), not because the VMAs did.
    went_back: bool,
    gens: Gens,
}

impl Walk {
    pub(crate) fn new(query: Query) -> Self {
        Walk {
            recs: vec![abi::procmap_batch_vma::default(); RECORDS],
            names: if query.name_wanted() {
                vec![0; NAMES]
            } else {
                Vec::new()
            },
            pending: VecDeque::new(),
            at: 0,
            done: false,
            went_back: false,
            gens: Gens {
                first: None,
                last: 0,
                steady: true,
            },
        }
    }

    /// The next VMA of the walk (`query` has `COVERING_OR_NEXT_VMA`, for the single queries).
    pub(crate) fn step(
        &mut self,
        maps: &ProcMaps,
        query: Query,
        cache: &mut WalkCache,
    ) -> Result<Step> {
        loop {
            if let Some(v) = self.pending.pop_front() {
                return Ok(Step::Vma(v));
            }
            if self.done {
                return Ok(Step::End);
            }
            match self.fill(maps, query) {
                Ok(true) => {}
                // The next VMA's name does not fit an empty buffer (longer than `PATH_MAX`),
                // or (never seen) the call made no progress: that VMA by a single query,
                // which takes such a name from the text; then batches again.
                Ok(false) | Err(libc::ENAMETOOLONG) => match maps.single(self.at, query, cache)? {
                    Some(v) if v.end > self.at => {
                        self.at = v.end;
                        return Ok(Step::Vma(v));
                    }
                    _ => {
                        self.done = true;
                        self.gens.steady = false;
                    }
                },
                Err(libc::ENOTTY) => return Ok(Step::Lost(self.at)),
                // No address space (any more) ends the walk with that, as any error does.
                Err(e) => {
                    self.done = true;
                    return Err(batch_error(e));
                }
            }
        }
    }

    /// Makes the walk start again from `at`, with nothing pending.
    pub(crate) fn restart(&mut self, at: u64) {
        self.pending.clear();
        self.at = at;
        self.done = false;
        self.went_back = false;
    }

    /// One call, from `at`: its records into `pending`. Whether it made progress.
    fn fill(&mut self, maps: &ProcMaps, query: Query) -> std::result::Result<bool, i32> {
        self.fill_up_to(maps, query, self.recs.len())
    }

    /// [`Walk::fill`], for at most `limit` records (and at least one).
    fn fill_up_to(
        &mut self,
        maps: &ProcMaps,
        query: Query,
        limit: usize,
    ) -> std::result::Result<bool, i32> {
        let mut b = abi::new_batch();
        if query.build_id_wanted() {
            b.flags |= abi::BATCH_BUILD_ID;
        }
        b.query_flags = query.batch_flags();
        b.addr = self.at;
        b.vma_count = limit.clamp(1, self.recs.len()) as u32;
        b.vmas = self.recs.as_mut_ptr() as u64;
        if !self.names.is_empty() {
            b.names_size = self.names.len() as u32;
            b.names = self.names.as_mut_ptr() as u64;
        }
        maps.batch_ioctl(&mut b)?;
        self.gens.saw(b.gen_start, b.gen_end);
        let n = (b.vma_count as usize).min(self.recs.len());
        let used = (b.names_size as usize).min(self.names.len());
        let names = self.names.get(..used).unwrap_or_default();
        let before = self.at;
        for rec in self.recs.get(..n).unwrap_or_default() {
            let v = record_vma(rec, names, query);
            // In address order, each ending above the last: anything else would make the
            // walk go back, so it ends.
            if v.end <= self.at {
                self.done = true;
                self.went_back = true;
                self.gens.steady = false;
                return Ok(true);
            }
            self.at = v.end;
            self.pending.push_back(v);
        }
        if b.out_flags & abi::BATCH_DONE != 0 {
            self.done = true;
        }
        // Past the VMAs examined and filtered out after the last record.
        self.at = self.at.max(b.addr);
        Ok(self.done || self.at > before)
    }

    /// What the generation was through the walk (complete or not).
    pub(crate) fn seen(&self) -> Seen {
        let g = self.gens;
        match g.first {
            None => Seen::NotBatch,
            Some(first) if g.steady => Seen::of(first, g.last),
            Some(_) => Seen::Changed,
        }
    }
}

impl ProcMaps {
    /// `PROCMAP_QUERY_BATCH`; the errno on failure.
    pub(crate) fn batch_ioctl(&self, b: &mut abi::procmap_batch) -> std::result::Result<(), i32> {
        #[cfg(test)]
        crate::tests::BATCHES.with(|c| c.set(c.get() + 1));
        #[cfg(test)]
        // SAFETY: As for the ioctl below.
        if let Some(r) = unsafe { crate::fake::batch(b) } {
            return r;
        }
        // SAFETY: `b` is a valid `struct procmap_batch` of the size it declares; the arrays it
        // points to (records, names, answers, each exclusively borrowed, and the addresses)
        // are valid for the call and hold at least the counts and sizes it gives.
        let ret = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                abi::PROCMAP_QUERY_BATCH as _,
                b as *mut abi::procmap_batch,
            )
        };
        if ret != 0 {
            return Err(io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO));
        }
        Ok(())
    }

    /// `PROCMAP_QUERY_GENERATION`; the errno on failure.
    pub(crate) fn generation_ioctl(&self) -> std::result::Result<u64, i32> {
        let mut g = 0u64;
        // SAFETY: the command writes one `u64`, to `g`.
        let ret = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                abi::PROCMAP_QUERY_GENERATION as _,
                &mut g as *mut u64,
            )
        };
        if ret != 0 {
            return Err(io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO));
        }
        Ok(g)
    }

    /// [`ProcMaps::resolve`] through the batch lookup; `None` if the kernel does not know the
    /// command (any more).
    pub(crate) fn batch_resolve(&self, addrs: &[u64], query: Query) -> Result<Option<Resolution>> {
        // The distinct addresses, in order: the kernel finds ascending addresses in the VMA it
        // reported last, and a VMA is reported once per call.
        let (uniq, of) = distinct(addrs);
        let mut lookup = Lookup::new(uniq.len());
        let mut recs = vec![abi::procmap_batch_vma::default(); RECORDS];
        let mut names = if query.name_wanted() {
            vec![0u8; NAMES]
        } else {
            Vec::new()
        };
        let mut slots = vec![0u32; ADDRS.min(uniq.len())];
        let mut cache = WalkCache::default();
        let covering = query.or_next(false);
        // Whether the next call is a walk rather than a lookup, and the walk's buffers.
        let mut dense = false;
        let mut walk: Option<Walk> = None;
        let mut pos = 0;
        while let Some(chunk) = uniq.get(pos..(pos + ADDRS).min(uniq.len())) {
            if chunk.is_empty() {
                break;
            }
            if dense {
                // Addresses in (nearly) every VMA: a walk from the first one reports the VMAs
                // after it for less than looking each one up.
                let w = walk.get_or_insert_with(|| Walk::new(query));
                w.restart(chunk[0]);
                match w.fill_up_to(self, query, chunk.len()) {
                    // A walk that did not reach the end of the VMAs answers up to where it
                    // stopped; one that went back, only below its last good record, and
                    // the next call looks up.
                    Ok(true) => {
                        let stop = (!w.done || w.went_back).then_some(w.at);
                        let vmas = w.pending.len();
                        let (next, used) = lookup.walked(&uniq, pos, w.pending.drain(..), stop);
                        pos = next;
                        // Stay with walks while at least half their VMAs hold an address.
                        dense = 2 * used >= vmas && !w.went_back;
                        continue;
                    }
                    // No room for a name, or no progress: as a lookup call would be.
                    Ok(false) | Err(libc::ENAMETOOLONG) => dense = false,
                    Err(libc::ENOTTY) => return Ok(None),
                    Err(e) => return Err(batch_error(e)),
                }
            }
            let mut b = abi::new_batch();
            b.flags = abi::BATCH_LOOKUP;
            if query.build_id_wanted() {
                b.flags |= abi::BATCH_BUILD_ID;
            }
            b.query_flags = query.batch_flags();
            b.addrs = chunk.as_ptr() as u64;
            b.addr_vmas = slots.as_mut_ptr() as u64;
            b.addr_count = chunk.len() as u32;
            b.vma_count = recs.len() as u32;
            b.vmas = recs.as_mut_ptr() as u64;
            if !names.is_empty() {
                b.names_size = names.len() as u32;
                b.names = names.as_mut_ptr() as u64;
            }
            let answered = match self.batch_ioctl(&mut b) {
                Ok(()) => (b.addr_count as usize).min(chunk.len()),
                // Not even one name fits (longer than `PATH_MAX`): answered as below.
                Err(libc::ENAMETOOLONG) => 0,
                Err(libc::ENOTTY) => return Ok(None),
                Err(e) => return Err(batch_error(e)),
            };
            if answered == 0 {
                // The first address by a single query (which takes a name longer than
                // `PATH_MAX` from the text), then batches again.
                let addr = chunk[0];
                if let Some(v) = self.single(addr, covering, &mut cache)? {
                    let k = lookup.intern(v);
                    lookup.answer[pos] = Some(k);
                }
                pos += 1;
                continue;
            }
            let n = (b.vma_count as usize).min(recs.len());
            dense = self::dense(recs.get(..n).unwrap_or_default());
            let used = (b.names_size as usize).min(names.len());
            let names = names.get(..used).unwrap_or_default();
            // This call's records, as indexes of `lookup.found` once an address uses them.
            let mut here: Vec<Option<usize>> = vec![None; n];
            for (i, &slot) in slots.iter().take(answered).enumerate() {
                let s = slot as usize;
                let k = match (slot != abi::BATCH_NO_VMA).then_some(s) {
                    Some(s) if s < n => match here[s] {
                        Some(k) => Some(k),
                        None => {
                            let k = lookup.intern(record_vma(&recs[s], names, query));
                            here[s] = Some(k);
                            Some(k)
                        }
                    },
                    _ => None,
                };
                lookup.answer[pos + i] = k;
            }
            pos += answered;
        }
        Ok(Some(lookup.resolution(addrs, &of)))
    }
}

/// Whether the VMAs a lookup call reported for ascending addresses lie mostly edge to edge, so
/// that few VMAs between them hold no address: then a walk reports the next ones for less than
/// a lookup, whose every new VMA is a search of the tree (about 2.3 times the cost of a walk's
/// step, measured with names under QEMU). Each VMA next to the one before counts; a gap may
/// hold no VMA at all (a walk steps over it for nothing), so this errs towards lookups.
fn dense(recs: &[abi::procmap_batch_vma]) -> bool {
    let touching = recs
        .windows(2)
        .filter(|w| w[0].vma_end == w[1].vma_start)
        .count();
    recs.len() >= DENSE_MIN && 4 * touching >= 3 * (recs.len() - 1)
}

/// The distinct values of `addrs`, sorted, and for each address the index of its value
/// among them.
fn distinct(addrs: &[u64]) -> (Vec<u64>, Vec<usize>) {
    let mut order: Vec<(u64, usize)> = addrs.iter().copied().zip(0..).collect();
    order.sort_unstable();
    let mut uniq: Vec<u64> = Vec::with_capacity(order.len());
    let mut of = vec![0; addrs.len()];
    for (a, i) in order {
        if uniq.last() != Some(&a) {
            uniq.push(a);
        }
        if let Some(slot) = of.get_mut(i) {
            *slot = uniq.len() - 1;
        }
    }
    (uniq, of)
}

/// The VMAs a lookup found, each once, and the index of each distinct address's VMA.
struct Lookup {
    answer: Vec<Option<usize>>,
    found: Vec<Vma>,
    /// The index in `found` of each VMA, by `(start, end)`: made only once a VMA comes that
    /// is not above the last one (which takes a change of the VMAs between two calls), as
    /// ascending addresses otherwise find them in ascending order.
    index: Option<HashMap<(u64, u64), usize>>,
}

impl Lookup {
    fn new(addrs: usize) -> Self {
        Lookup {
            answer: vec![None; addrs],
            found: Vec::new(),
            index: None,
        }
    }

    /// The index of `v` in `found`, added if it is not there: calls report a VMA again that
    /// an earlier call reported.
    fn intern(&mut self, v: Vma) -> usize {
        let n = self.found.len();
        if self.index.is_none() {
            match self.found.last() {
                Some(last) if (last.start, last.end) == (v.start, v.end) => return n - 1,
                Some(last) if last.end > v.start => {}
                _ => {
                    self.found.push(v);
                    return n;
                }
            }
        }
        let found = &self.found;
        let index = self.index.get_or_insert_with(|| {
            found
                .iter()
                .enumerate()
                .map(|(k, v)| ((v.start, v.end), k))
                .collect()
        });
        let k = *index.entry((v.start, v.end)).or_insert(n);
        if k == n {
            self.found.push(v);
        }
        k
    }

    /// Answers the addresses of `uniq` (sorted) from `pos` up to `stop` (all of them if the
    /// walk reached the end) with the VMAs a walk from `uniq[pos]` reported (in address order,
    /// and every VMA that passes the filters below `stop`): an address in none of them is in
    /// none that passes. Returns the position of the first address not answered and how many
    /// of the VMAs held an address.
    fn walked(
        &mut self,
        uniq: &[u64],
        mut pos: usize,
        vmas: impl Iterator<Item = Vma>,
        stop: Option<u64>,
    ) -> (usize, usize) {
        let mut vmas = vmas.peekable();
        // The last VMA an address was found in: its range and index in `found`.
        let mut here: Option<(u64, u64, usize)> = None;
        let mut used = 0;
        while let Some(&addr) = uniq.get(pos) {
            if stop.is_some_and(|stop| addr >= stop) {
                break;
            }
            let k = match here {
                Some((start, end, k)) if start <= addr && addr < end => Some(k),
                _ => {
                    while vmas.next_if(|v| v.end <= addr).is_some() {}
                    vmas.next_if(|v| v.start <= addr).map(|v| {
                        let (start, end) = (v.start, v.end);
                        let k = self.intern(v);
                        here = Some((start, end, k));
                        used += 1;
                        k
                    })
                }
            };
            if let Some(slot) = self.answer.get_mut(pos) {
                *slot = k;
            }
            pos += 1;
        }
        (pos, used)
    }

    /// The answer for `addrs`, where `of[i]` is the index of `addrs[i]` among the distinct
    /// addresses: the VMAs in address order.
    fn resolution(self, addrs: &[u64], of: &[usize]) -> Resolution {
        let answer = self.answer;
        let vmas = self.found;
        let addrs = addrs
            .iter()
            .zip(of)
            .map(|(&a, &u)| {
                let k = (*answer.get(u)?)?;
                let vma = vmas.get(k).filter(|v| v.contains(a))?;
                Some(Location {
                    vma: k,
                    file_offset: vma.file_offset(a),
                })
            })
            .collect();
        let mut r = Resolution { vmas, addrs };
        r.sort_by_address();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(start: u64, end: u64, name: Option<(u32, u32)>) -> abi::procmap_batch_vma {
        let (name_off, name_size) = name.unwrap_or((0, 0));
        abi::procmap_batch_vma {
            vma_start: start,
            vma_end: end,
            vma_flags: abi::VMA_READABLE | abi::VMA_EXECUTABLE,
            vma_page_size: 4096,
            vma_offset: 0x1000,
            inode: 7,
            dev_major: 8,
            dev_minor: 1,
            name_off,
            name_size,
            ..Default::default()
        }
    }

    #[test]
    fn records_become_vmas() {
        let names = b"/lib/a.so\0[anon:x]\0";
        let q = Query::new().name(true);
        let a = record_vma(&rec(0x1000, 0x3000, Some((0, 10))), names, q);
        assert_eq!(a.name.as_deref(), Some(&b"/lib/a.so"[..]));
        assert_eq!(
            (a.start, a.end, a.offset, a.inode),
            (0x1000, 0x3000, 0x1000, 7)
        );
        assert_eq!((a.dev_major, a.dev_minor, a.page_size), (8, 1, Some(4096)));
        assert_eq!(a.perms.to_string(), "r-xp");
        assert_eq!(a.build_id, None);
        let b = record_vma(&rec(0x3000, 0x4000, Some((10, 9))), names, q);
        assert_eq!(b.name.as_deref(), Some(&b"[anon:x]"[..]));
        // No name, or names not asked for.
        assert_eq!(record_vma(&rec(1, 2, None), names, q).name, None);
        let not_asked = record_vma(&rec(1, 2, Some((0, 10))), names, Query::new());
        assert_eq!(not_asked.name, None);
        // Offsets and sizes beyond the part of the buffer used, or overflowing: no name, no
        // panic.
        for bad in [
            (10, 10),
            (19, 1),
            (u32::MAX, 2),
            (0, u32::MAX),
            (u32::MAX, u32::MAX),
        ] {
            let v = record_vma(&rec(1, 2, Some(bad)), names, q);
            let within = (bad.0 as usize + bad.1 as usize) <= names.len() + 1;
            assert_eq!(v.name.is_some(), within, "{bad:?}");
        }
        // Build IDs: only if asked, at most the 20 bytes of the record.
        let mut r = rec(1, 2, None);
        r.build_id = [0xab; 20];
        r.build_id_size = 20;
        let q = Query::new().build_id(true);
        assert_eq!(record_vma(&r, names, q).build_id, Some(vec![0xab; 20]));
        assert_eq!(record_vma(&r, names, Query::new()).build_id, None);
        r.build_id_size = 1000;
        assert_eq!(record_vma(&r, names, q).build_id, Some(vec![0xab; 20]));
        r.build_id_size = 0;
        assert_eq!(record_vma(&r, names, q).build_id, None);
    }

    #[test]
    fn generations_of_a_walk() {
        let walk = |calls: &[(u64, u64)]| {
            let mut w = Walk::new(Query::new());
            for &(s, e) in calls {
                w.gens.saw(s, e);
            }
            w.seen()
        };
        assert_eq!(walk(&[]), Seen::NotBatch);
        assert_eq!(walk(&[(4, 4)]), Seen::At(4));
        assert_eq!(walk(&[(4, 4), (4, 4), (4, 4)]), Seen::At(4));
        assert_eq!(walk(&[(4, 6)]), Seen::Changed);
        assert_eq!(walk(&[(4, 4), (6, 6)]), Seen::Changed);
        assert_eq!(walk(&[(5, 5)]), Seen::Changed);
        assert_eq!(walk(&[(u64::MAX, u64::MAX)]), Seen::Untracked);
        assert_eq!(Seen::of(8, 8), Seen::At(8));
        assert_eq!(Seen::of(8, 10), Seen::Changed);
        assert_eq!(Seen::of(9, 9), Seen::Changed);
    }

    #[test]
    fn lookups_map_records_back_to_addresses() {
        let mut l = Lookup::new(5);
        let v = |s, e| record_vma(&rec(s, e, None), b"", Query::new());
        // Two calls report the same VMA; found out of order.
        let hi = l.intern(v(0x5000, 0x6000));
        let lo = l.intern(v(0x1000, 0x2000));
        assert_eq!(l.intern(v(0x5000, 0x6000)), hi);
        assert_eq!(l.intern(v(0x1000, 0x2000)), lo);
        let addrs = [0x5fff, 0x1000, 0x3000, 0x1800, 0x1000, 0x4242];
        let (uniq, of) = distinct(&addrs);
        assert_eq!(uniq, [0x1000, 0x1800, 0x3000, 0x4242, 0x5fff]);
        assert_eq!(of, [4, 0, 2, 1, 0, 3]);
        l.answer = vec![Some(lo), Some(lo), None, None, Some(hi)];
        let r = l.resolution(&addrs, &of);
        assert_eq!(r.vmas.len(), 2);
        assert!(r.vmas[0].start < r.vmas[1].start);
        let at = |i: usize| r.addrs[i].map(|l| (l.vma, l.file_offset));
        assert_eq!(at(0), Some((1, Some(0x1fff))));
        assert_eq!(at(1), Some((0, Some(0x1000))));
        assert_eq!(at(2), None);
        assert_eq!(at(3), Some((0, Some(0x1800))));
        assert_eq!(at(4), Some((0, Some(0x1000))));
        assert_eq!(at(5), None);
    }

    #[test]
    fn walks_answer_the_addresses_below_where_they_stopped() {
        let v = |s, e| record_vma(&rec(s, e, None), b"", Query::new());
        let uniq = [
            0x500, 0x1000, 0x1fff, 0x2800, 0x4000, 0x4001, 0x9000, 0xa000,
        ];
        let mut l = Lookup::new(uniq.len());
        // Already found by a lookup: the walk's VMA is the same one.
        let first = l.intern(v(0x1000, 0x2000));
        // A walk from 0x1000 (the second address) that stopped at 0x9000: 0x2000-0x3000 holds
        // an address, 0x3000-0x4000 none, 0x4000-0x5000 two; the gap to 0x9000 holds no VMA
        // that passes.
        let walk = [
            v(0x1000, 0x2000),
            v(0x2000, 0x3000),
            v(0x3000, 0x4000),
            v(0x4000, 0x5000),
        ];
        l.answer[0] = None;
        let (next, used) = l.walked(&uniq, 1, walk.into_iter(), Some(0x9000));
        assert_eq!((next, used), (6, 3));
        assert_eq!(l.found.len(), 3);
        assert_eq!(l.answer[1], Some(first));
        assert_eq!(l.answer[2], Some(first));
        assert_eq!(l.answer[3], Some(1));
        assert_eq!(l.answer[4], Some(2));
        assert_eq!(l.answer[5], Some(2));
        // A walk that reached the end: all the rest are answered, in no VMA.
        let (next, used) = l.walked(&uniq, 6, [v(0x9000, 0x9800)].into_iter(), None);
        assert_eq!((next, used), (8, 1));
        assert_eq!(l.answer[6], Some(3));
        assert_eq!(l.answer[7], None);
        // Nothing below where it stopped: nothing answered.
        assert_eq!(l.walked(&uniq, 7, std::iter::empty(), Some(0x9000)), (7, 0));
        // The last possible address, where a walk finds nothing and ends: answered.
        let top = [u64::MAX];
        l.answer = vec![Some(0)];
        assert_eq!(l.walked(&top, 0, std::iter::empty(), None), (1, 0));
        assert_eq!(l.answer[0], None);
    }

    #[test]
    fn dense_lookups_are_vmas_edge_to_edge() {
        let run = |edges: &[(u64, u64)]| {
            let recs: Vec<_> = edges.iter().map(|&(s, e)| rec(s, e, None)).collect();
            dense(&recs)
        };
        let touching: Vec<(u64, u64)> = (0..8).map(|i| (i << 12, (i + 1) << 12)).collect();
        assert!(run(&touching));
        // Too few to judge.
        assert!(!run(&touching[..7]));
        // Every other VMA (a gap between each): a lookup each is cheaper.
        let apart: Vec<(u64, u64)> = (0..16).map(|i| (i << 13, (i << 13) + 4096)).collect();
        assert!(!run(&apart));
        // Of 9 VMAs, the first `gaps` after a gap, the rest touching the one before: dense
        // while at least three quarters of the 8 touch.
        let with_gaps = |gaps: u64| -> Vec<(u64, u64)> {
            (0..9)
                .map(|i| {
                    let s = (i + i.min(gaps)) << 12;
                    (s, s + 4096)
                })
                .collect()
        };
        assert!(run(&with_gaps(0)));
        assert!(run(&with_gaps(2)));
        assert!(!run(&with_gaps(3)));
    }
}

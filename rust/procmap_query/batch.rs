// SPDX-License-Identifier: GPL-2.0

//! `PROCMAP_QUERY_BATCH` and `PROCMAP_QUERY_GENERATION`, the extensions of
//! `include/uapi/linux/procmap_query.h`.
//!
//! A batch runs in passes. A pass takes a reference to the address space, reads the generation,
//! and examines up to [`CHUNK`] VMAs, staging their records (and names) in kernel memory: each
//! VMA under its own per-VMA read lock, taken and dropped in turn as `/proc/<pid>/maps` does,
//! or under the mmap read lock where per-VMA locks cannot be used. Then it drops the reference
//! and, with no lock held, parses the build IDs and copies the records, names and address
//! answers out. So a writer never waits for more than one VMA, no lock is held across a user
//! copy, an RCU read-side section or an mmap read lock lasts at most one pass, and a call
//! examines at most [`batch::MAX_VMAS`] VMAs and answers at most as many addresses, with a
//! scheduling point between passes.

use core::mem::MaybeUninit;
use kernel::{
    alloc::KVVec,
    fs::file::{File, BUILD_ID_SIZE_MAX},
    mm::{virt::VmaRef, Mm, MmWithUser},
    page::PAGE_SHIFT,
    prelude::*,
    proc_maps::{self, batch, NameArena, ProcmapBatch, ProcmapBatchVma, GENERATION_UNKNOWN},
    sync::aref::ARef,
    transmute::AsBytes,
    uaccess::{UserPtr, UserSlice},
};

use crate::{args, file_fields, lock_covering_or_next, matching, user_ptr};

/// The VMAs one pass examines, and the records it stages (22 KiB), before it unlocks and copies
/// them out; the addresses of a lookup it reads at once.
const CHUNK: usize = 256;

/// The most records a lookup's pass stages: as many as fill a 4 KiB slab object. A trace's
/// addresses fall in far fewer VMAs than there are addresses, and where allocations are zeroed
/// (`init_on_alloc`, on by default in distributions' kernels) each byte of room costs; more
/// VMAs take another pass.
const LOOKUP_STAGE: usize = 4096 / size_of::<ProcmapBatchVma>();

/// The records of a short lookup's stage, [`lookup_stage()`]: as many as fill a 2 KiB slab
/// object.
const SHORT_STAGE: usize = 2048 / size_of::<ProcmapBatchVma>();

/// The most records a lookup's pass stages when it answers `addrs` addresses: room for a
/// quarter as many (a stack trace's return addresses repeat, in the few VMAs of the code it
/// runs), filling a 2 KiB slab object ([`SHORT_STAGE`]: up to 92 addresses, such as a 64-frame
/// trace) or a 4 KiB one ([`LOOKUP_STAGE`]).
#[inline]
fn lookup_stage(addrs: usize) -> usize {
    if addrs.div_ceil(4) <= SHORT_STAGE {
        SHORT_STAGE
    } else {
        LOOKUP_STAGE
    }
}

// The records of a pass are merged into a lookup's order at once.
kernel::static_assert!(LOOKUP_STAGE <= matching::MERGE_MAX);

/// How a batch allocates: what a call makes the kernel hold, also while it blocks copying out
/// or reading a build ID, is charged to the caller's memory cgroup, as other system calls
/// charge buffers sized by their caller.
const GFP: kernel::alloc::Flags = GFP_KERNEL_ACCOUNT;

/// The most records a lookup call holds once they are out of address order: the call ends
/// there, to bound the merges. A pass begins by merging the records not in `Batch::order` yet
/// (sorted by address, searched by bisection) into it when the pass could bring them over
/// [`matching::MERGE_MAX`], each merge a copy of up to this many; until then (at most
/// `MERGE_MAX`, of one pass or more) they are searched one by one. Ascending addresses, whose
/// records are searched by bisection where they are, are not limited.
const UNSORTED_RECORDS: usize = 4096;

/// The largest names staging buffer: room for two names of `PATH_MAX`.
const NAMES_STAGE: usize = 2 * matching::PATH_MAX;

/// The most slots of a lookup's page cache (a power of two): 4 KiB.
const PAGE_SLOTS: usize = 1024;

/// The fewest addresses a lookup's page cache is made for.
const PAGE_CACHE_MIN: usize = 16;

/// The fewest records in order before the first that was not that a lookup searches by
/// bisection before it merges them (see [`Batch::reported`]).
const PREFIX_BISECTED: usize = 16;

/// A lookup's page cache, for the `addrs` addresses the call has still to answer: a slot per
/// address, up to [`PAGE_SLOTS`], each empty ([`batch::NO_VMA`]) to begin with. Empty (no
/// slot, no allocation) if they are too few to repeat much, or if there is no memory for it:
/// it only saves searching the records.
fn page_cache(addrs: usize) -> KVec<u32> {
    if addrs < PAGE_CACHE_MIN {
        return KVec::new();
    }
    let slots = addrs.min(PAGE_SLOTS).next_power_of_two();
    let Ok(mut pages) = KVec::with_capacity(slots, GFP | __GFP_NOWARN) else {
        return KVec::new();
    };
    // Filled by hand: `KVec::from_elem()` goes through `extend_with()` and `reserve()`, which
    // a short lookup's trace measurably paid for.
    while pages.push_within_capacity(batch::NO_VMA).is_ok() {}
    pages
}

/// The slot of a page cache of `slots` slots (a power of two) where `page` goes.
#[inline]
fn page_slot(page: usize, slots: usize) -> usize {
    // With no slot, any index: there is nothing to find.
    (page ^ page.wrapping_shr(slots.trailing_zeros())) & slots.wrapping_sub(1)
}

/// Empties `order` and makes room in it for `n` records of a lookup's order, doubling what it
/// had, up to what a call holds ([`UNSORTED_RECORDS`], and a merge more); `false` without the
/// memory.
fn reserve_order(order: &mut KVVec<matching::Ordered>, n: usize) -> bool {
    order.clear();
    let had = order.capacity();
    if had >= n {
        return true;
    }
    // A new allocation, not a reallocation that would copy what the order held.
    *order = KVVec::new();
    let room = had
        .saturating_mul(2)
        .min(UNSORTED_RECORDS + matching::MERGE_MAX)
        .max(n);
    order.reserve(room, GFP).is_ok()
}

/// The generation of `mm`'s VMA set: its count of mmap write-lock sections.
fn generation(seq: Option<u32>) -> u64 {
    seq.map_or(GENERATION_UNKNOWN, u64::from)
}

/// `PROCMAP_QUERY_GENERATION`: writes the generation of the VMA set to `uarg`.
pub(crate) fn procmap_generation(mm: Option<&Mm>, uarg: UserPtr) -> Result {
    // An address space with no users left has no VMAs to tell about. The count is read with
    // the file's `mmgrab` reference only: it needs no `mmget`.
    let mm = mm.filter(|mm| mm.has_users()).ok_or(ESRCH)?;
    let gen = generation(mm.mmap_lock_seq());
    UserSlice::new(uarg, size_of::<u64>()).writer().write(&gen)
}

/// `PROCMAP_QUERY_BATCH`.
pub(crate) fn procmap_batch(mm: Option<&Mm>, uarg: UserPtr) -> Result {
    let mut slot = MaybeUninit::uninit();
    let size = UserSlice::new(uarg, size_of::<u64>())
        .reader()
        .read::<u64>()?;
    let size = args::check_batch_size(size)?;
    let req = UserSlice::new(uarg, size).read_extensible(&mut slot)?;
    args::check_batch(req)?;
    let mm = mm.ok_or(ESRCH)?;

    let mut batch = Batch::new(req)?;
    batch.run(mm, req)?;

    req.vma_count = batch.written as u32;
    req.names_size = batch.names_used as u32;
    if batch.lookup {
        req.addr_count = batch.answered as u32;
    } else {
        req.addr = batch.at as u64;
    }
    req.out_flags = if batch.done { batch::DONE } else { 0 };
    let len = size.min(size_of::<ProcmapBatch>());
    UserSlice::new(uarg, len)
        .writer()
        .write_slice(&req.as_bytes()[..len])
}

/// What a pass ended on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// The stage is full: copy out, then go on.
    Full,
    /// Nothing is left to do.
    Done,
    /// The call ends here (out of room, or of work); the caller resumes.
    Stop,
}

/// What became of a VMA offered to the stage.
enum Take {
    /// It was staged.
    Taken,
    /// It does not pass the filters.
    Filtered,
    /// Its name does not fit: stage it in the next pass, or the next call.
    NoRoom,
}

/// What a lookup found for an address.
enum Found {
    /// The VMA covering it, staged as the record of this index (in this call).
    Record(u32),
    /// No VMA that passes the filters covers it.
    Nothing,
    /// The name of the VMA covering it does not fit: look again in the next pass, or call.
    NoRoom,
}

/// One call's state.
struct Batch {
    lookup: bool,
    build_id: bool,
    filter: matching::Filter,
    /// Room for records, and their user address and size.
    vma_count: usize,
    vmas: u64,
    vma_size: usize,
    /// The user's names buffer, and its size.
    names: u64,
    names_size: usize,
    /// The addresses and the answer array of a lookup.
    addrs: u64,
    addr_vmas: u64,
    addr_count: usize,

    /// Walk: the end of the last VMA examined (where the next call resumes).
    at: usize,
    /// VMAs examined so far (the work bound).
    examined: usize,
    /// What this pass may still do, set when it begins (see [`Batch::room`]): stage records
    /// while there are fewer than `stage_limit`, examine VMAs while `examined` is below
    /// `examine_limit`.
    stage_limit: usize,
    examine_limit: usize,
    /// Records, name bytes and addresses already copied out.
    written: usize,
    names_used: usize,
    answered: usize,
    /// Whether the walk or lookup is complete.
    done: bool,

    /// The stage of a pass: records, the files whose build IDs they need, their names.
    recs: KVVec<ProcmapBatchVma>,
    files: KVec<Option<ARef<File>>>,
    arena: Option<NameArena>,
    /// Lookup: the addresses of this pass (as the user's `u64`s, in native byte order), and
    /// the index of each one's record.
    pass_addrs: KVec<u8>,
    answers: KVec<u32>,
    /// Lookup: `(start, end)` of the records of this call, in the order they were reported
    /// (each one's position is its record's index), and whether they are sorted by start.
    index: KVVec<(usize, usize)>,
    sorted: bool,
    /// Lookup, once its records are out of order: how many of the first ones are in address
    /// order (those before the first record that was not).
    prefix: usize,
    /// Lookup, once its records are out of order: those merged so far, sorted by start, for a
    /// binary search ([`matching::find_in_order`]). Merged when a pass begins and the records
    /// not merged could pass [`matching::MERGE_MAX`] in it ([`Batch::order_records`]: it may
    /// allocate); the others are searched one by one. Empty until the first merge (the
    /// `prefix` is searched by bisection where it is). `merged` is the room the next merge
    /// writes to.
    order: KVVec<matching::Ordered>,
    merged: KVVec<matching::Ordered>,
    /// Lookup: for each slot, the record that answered the page answered last in it (or
    /// [`batch::NO_VMA`]: none). VMAs start and end on page boundaries, so every address of a
    /// page has the same answer; a slot is a hit when its record covers the address, which
    /// `index` tells, so a slot holds no page (4 bytes, not 16: where allocations are zeroed,
    /// each byte costs). Made once addresses come back to an earlier record: a stack trace
    /// repeats the same few return addresses, out of order, and most are then answered here.
    /// Addresses no record answers are not cached.
    pages: KVec<u32>,
}

impl Batch {
    fn new(req: &ProcmapBatch) -> Result<Self> {
        let lookup = req.flags & batch::LOOKUP != 0;
        let build_id = req.flags & batch::BUILD_ID != 0;
        let vma_count = req.vma_count as usize;
        let addr_count = req.addr_count as usize;
        // The stage holds what a pass may report: a lookup reports at most one record per
        // address. A short call allocates little (and from the slab, not the page allocator).
        let addr_chunk = if lookup { CHUNK.min(addr_count) } else { 0 };
        let chunk = CHUNK.min(vma_count);
        let chunk = if lookup {
            chunk.min(addr_chunk).min(lookup_stage(addr_chunk))
        } else {
            chunk
        };
        let names_size = req.names_size as usize;
        let arena = if names_size != 0 && vma_count != 0 {
            Some(NameArena::new(names_size.min(NAMES_STAGE), GFP)?)
        } else {
            None
        };
        Ok(Self {
            lookup,
            build_id,
            filter: matching::Filter::new(req.query_flags),
            vma_count,
            vmas: req.vmas,
            vma_size: req.vma_size as usize,
            names: req.names,
            names_size,
            addrs: req.addrs,
            addr_vmas: req.addr_vmas,
            addr_count,
            at: req.addr as usize,
            examined: 0,
            stage_limit: 0,
            examine_limit: 0,
            written: 0,
            names_used: 0,
            answered: 0,
            done: false,
            recs: KVVec::with_capacity(chunk, GFP)?,
            files: KVec::with_capacity(if build_id { chunk } else { 0 }, GFP)?,
            arena,
            pass_addrs: KVec::with_capacity(addr_chunk * size_of::<u64>(), GFP)?,
            answers: KVec::with_capacity(addr_chunk, GFP)?,
            index: KVVec::new(),
            sorted: true,
            prefix: 0,
            order: KVVec::new(),
            merged: KVVec::new(),
            pages: KVec::new(),
        })
    }

    /// Runs passes until the batch is done, out of room or out of work, or a signal is pending.
    fn run(&mut self, mm: &Mm, req: &mut ProcmapBatch) -> Result {
        let mut first = true;
        loop {
            if self.lookup {
                if !self.sorted && !self.order_records() {
                    // Two records overlap (the VMAs changed between the passes that reported
                    // them), or there is no memory to sort them: the call ends with what it
                    // answered, and the next starts with no records.
                    return Ok(());
                }
                // A gone address space is `ESRCH` whatever the pointers, as for a walk.
                self.read_addrs()
                    .map_err(|e| if first && !mm.has_users() { ESRCH } else { e })?;
                // Room for the records the pass may stage: one per address at most.
                let records = self.recs.capacity();
                self.index
                    .reserve(records.min(self.pass_addrs.len() / size_of::<u64>()), GFP)?;
            }
            // The address space is used only while a pass stages; it is given back before
            // anything may fault.
            let Some(user) = mm.mmget_not_zero() else {
                if first {
                    return Err(ESRCH);
                }
                // The process is gone: what was answered stands.
                return Ok(());
            };
            if first {
                req.gen_start = generation(user.mmap_lock_seq());
                first = false;
            }
            // The stage is empty: what it holds, and what the call may still report and
            // examine. `room()` compares with these, for each VMA.
            self.stage_limit = self
                .recs
                .capacity()
                .min(self.vma_count.saturating_sub(self.written));
            self.examine_limit = self.examined.saturating_add(CHUNK).min(batch::MAX_VMAS);
            let pass = if self.lookup {
                self.lookup_pass(&user)
            } else {
                self.walk_pass(&user)
            };
            req.gen_end = generation(user.mmap_lock_seq_reread());
            drop(user);
            let pass = pass?;
            self.copy_out()?;
            match pass {
                Pass::Done => {
                    self.done = true;
                    return Ok(());
                }
                Pass::Stop => return Ok(()),
                Pass::Full => {}
            }
            // A call may examine many VMAs: let others run in between.
            kernel::task::cond_resched();
            if kernel::current!().signal_pending() {
                return Ok(());
            }
        }
    }

    /// Whether the call may report one more record and examine one more VMA.
    fn call_room(&self) -> bool {
        self.recs.len() < self.vma_count.saturating_sub(self.written)
            && self.examined < batch::MAX_VMAS
    }

    /// Whether this pass may stage one more record and examine one more VMA, and the call too:
    /// its stage is not full, it examined fewer than [`CHUNK`] VMAs, and the call may report
    /// another record and examine another VMA ([`Batch::call_room`]). `written` changes only
    /// between passes, so this is decided against limits set when the pass began.
    #[inline]
    fn room(&self) -> bool {
        self.recs.len() < self.stage_limit && self.examined < self.examine_limit
    }

    /// What to do when [`Batch::room`] says no: a full stage is copied out and the call goes
    /// on; a call out of room or work ends.
    fn no_room(&self) -> Pass {
        if self.call_room() {
            Pass::Full
        } else {
            Pass::Stop
        }
    }

    /// What to do with a VMA whose name does not fit; `answers`: the addresses a lookup's pass
    /// answered before it.
    fn name_too_long(&self, answers: usize) -> Result<Pass> {
        if !self.recs.is_empty() {
            // Copy out, then try again with an empty stage.
            Ok(Pass::Full)
        } else if self.written != 0 || self.answered != 0 || answers != 0 {
            // The user's buffer is full, or a lookup answered addresses before this one (with
            // no VMA, or one filtered out): the call returns what it has, and the next one
            // starts with this VMA (lookup: this address, so its caller knows which failed).
            Ok(Pass::Stop)
        } else {
            // It does not fit an empty buffer: as `PROCMAP_QUERY` would.
            Err(ENAMETOOLONG)
        }
    }

    /// Stages the record of `vma`, which is locked, if it passes the filters.
    ///
    /// Inlined into the loops of walks and lookups, whose registers it shares (called, it
    /// saved and restored six of them per VMA); a record with a name or a build ID is finished
    /// out of line, by [`Batch::take_named`].
    #[inline(always)]
    fn take(&mut self, vma: &VmaRef) -> Result<Take> {
        if !self.filter.passes(vma.file().is_some(), vma.flags()) {
            return Ok(Take::Filtered);
        }
        self.recs
            .push_within_capacity(record(vma))
            .map_err(|_| ENOMEM)?;
        if self.arena.is_some() || self.build_id {
            return self.take_named(vma);
        }
        Ok(Take::Taken)
    }

    /// Completes the record just staged for `vma` (locked) with its name and the file of its
    /// build ID, as the call asks; unless it is [`Take::Taken`] then, the record is taken back.
    #[inline(never)]
    fn take_named(&mut self, vma: &VmaRef) -> Result<Take> {
        let taken = self.name_and_file(vma);
        if !matches!(taken, Ok(Take::Taken)) {
            self.recs.pop();
        }
        taken
    }

    /// The name and build ID file of the last record, `vma`'s: see [`Batch::take_named`].
    #[inline(always)]
    fn name_and_file(&mut self, vma: &VmaRef) -> Result<Take> {
        if let Some(arena) = self.arena.as_mut() {
            if let Some(name) = proc_maps::vma_name(vma)? {
                // What is left of the user's buffer (the names written and staged are in it),
                // and no more than `PROCMAP_QUERY` would build.
                let limit = self
                    .names_size
                    .saturating_sub(self.names_used)
                    .saturating_sub(arena.len())
                    .min(matching::PATH_MAX);
                match arena.push(&name, limit) {
                    Ok((off, size)) => {
                        // Both within `names_size`, a `u32`.
                        let off = self.names_used.checked_add(off).ok_or(EOVERFLOW)?;
                        // `take()` staged it: there is a last record.
                        let rec = self.recs.last_mut().ok_or(EINVAL)?;
                        rec.name_off = u32::try_from(off).map_err(|_| EOVERFLOW)?;
                        rec.name_size = u32::try_from(size).map_err(|_| EOVERFLOW)?;
                    }
                    Err(e) if e == ENAMETOOLONG => return Ok(Take::NoRoom),
                    Err(e) => return Err(e),
                }
            }
        }
        if self.build_id {
            // The build ID is parsed after unlocking, from this reference.
            let file = vma.file().map(ARef::from);
            self.files.push_within_capacity(file).map_err(|_| ENOMEM)?;
        }
        Ok(Take::Taken)
    }

    /// A pass of a walk: stages the VMAs that pass the filters from `at` on.
    fn walk_pass(&mut self, mm: &MmWithUser) -> Result<Pass> {
        if cfg!(CONFIG_PER_VMA_LOCK) {
            let mut walk = mm.vma_walk(self.at);
            loop {
                if !self.room() {
                    return Ok(self.no_room());
                }
                let vma = match walk.lock_next() {
                    Ok(Some(vma)) => vma,
                    Ok(None) => return Ok(Pass::Done),
                    // The VMA cannot be read-locked: go on under the mmap read lock.
                    Err(e) if e == EAGAIN => break,
                    Err(e) => return Err(e),
                };
                if let Some(pass) = self.walk_step(&vma)? {
                    return Ok(pass);
                }
            }
        }
        let guard = mm.mmap_read_lock_killable()?;
        loop {
            if !self.room() {
                return Ok(self.no_room());
            }
            let Some(vma) = guard.find_vma(self.at) else {
                return Ok(Pass::Done);
            };
            if let Some(pass) = self.walk_step(vma)? {
                return Ok(pass);
            }
        }
    }

    /// One VMA of a walk; returns how the pass ends, if it does. Inlined into the loop.
    #[inline(always)]
    fn walk_step(&mut self, vma: &VmaRef) -> Result<Option<Pass>> {
        match self.take(vma)? {
            Take::NoRoom => Ok(Some(self.name_too_long(0)?)),
            Take::Taken | Take::Filtered => {
                // Below `MAX_VMAS`: `room()` said so.
                self.examined = self.examined.saturating_add(1);
                self.at = vma.end();
                Ok(None)
            }
        }
    }

    /// Reads the next addresses of a lookup, as many as a pass answers at most, in one copy. A
    /// call answers at most [`batch::MAX_VMAS`] addresses.
    fn read_addrs(&mut self) -> Result {
        let n = self
            .addr_count
            .min(batch::MAX_VMAS)
            .saturating_sub(self.answered)
            .min(CHUNK);
        self.answers.clear();
        self.pass_addrs.clear();
        let src = offset(self.addrs, self.answered, size_of::<u64>())?;
        // Into the reserved room, with no zeroing first.
        UserSlice::new(src, n * size_of::<u64>()).read_all(&mut self.pass_addrs, GFP)
    }

    /// The record already staged or written in this call that covers `addr`, if any.
    fn reported(&self, addr: usize) -> Option<u32> {
        if self.sorted {
            // Above the last record, as a sorted trace's new VMAs are: none covers it.
            if self.index.last().is_none_or(|&(_, end)| end <= addr) {
                return None;
            }
            return matching::find_sorted(&self.index, addr);
        }
        // Out of order: the records merged into `order` (or, before the first merge, those in
        // order before the first that was not, unless so few that a bisection costs more) by
        // bisection, the others (a few dozen at most) one by one.
        let (found, searched) = if !self.order.is_empty() {
            (matching::find_in_order(&self.order, addr), self.order.len())
        } else if self.prefix >= PREFIX_BISECTED {
            let prefix = self.index.get(..self.prefix).unwrap_or(&[]);
            (matching::find_sorted(prefix, addr), self.prefix)
        } else {
            (None, 0)
        };
        found.or_else(|| {
            let i = matching::find_unsorted(self.index.get(searched..)?, addr)?;
            // Record indices are `u32`s, below `index.len()`.
            Some(searched.wrapping_add(i) as u32)
        })
    }

    /// Merges the records of a lookup out of order that are not in `order` yet into it, before a
    /// pass, if the pass could leave more than [`matching::MERGE_MAX`] of them: `false` if two
    /// records overlap, or there is no memory for it.
    fn order_records(&mut self) -> bool {
        let n = self.index.len();
        // The first time, the records in order before the first that was not.
        let sorted = if self.order.is_empty() {
            self.prefix
        } else {
            self.order.len()
        };
        // A pass adds at most as many records as its stage holds, `LOOKUP_STAGE` at most.
        let stage = self.recs.capacity().min(LOOKUP_STAGE);
        if n.saturating_sub(sorted) <= matching::MERGE_MAX - stage {
            return true;
        }
        if self.order.is_empty() {
            // The first time: `order` begins as the prefix.
            if !reserve_order(&mut self.order, n) {
                return false;
            }
            let prefix = self.index.get(..sorted).unwrap_or(&[]);
            for (r, &(start, end)) in prefix.iter().enumerate() {
                // Record indices are `u32`s.
                let ordered = (start, end, r as u32);
                if self.order.push_within_capacity(ordered).is_err() {
                    return false;
                }
            }
        }
        if !reserve_order(&mut self.merged, n) {
            return false;
        }
        let ok = matching::merge_in_order(&self.order, &self.index, sorted, &mut self.merged);
        core::mem::swap(&mut self.order, &mut self.merged);
        ok
    }

    /// The record the page cache holds for `addr`'s page, if it covers `addr`.
    #[inline]
    fn cached(&self, addr: usize) -> Option<u32> {
        let answer = *self
            .pages
            .get(page_slot(addr >> PAGE_SHIFT, self.pages.len()))?;
        // `NO_VMA` (an empty slot) is no record's index.
        match self.index.get(answer as usize) {
            Some(&(start, end)) if start <= addr && addr < end => Some(answer),
            _ => None,
        }
    }

    /// Puts `answer`, a record covering `addr`, in the page cache, if there is one.
    #[inline]
    fn cache(&mut self, addr: usize, answer: u32) {
        let slot = page_slot(addr >> PAGE_SHIFT, self.pages.len());
        if let Some(entry) = self.pages.get_mut(slot) {
            *entry = answer;
        }
    }

    /// A pass of a lookup: answers the addresses read by [`Batch::read_addrs`].
    fn lookup_pass(&mut self, mm: &MmWithUser) -> Result<Pass> {
        // Out of `self` while they are answered (the answers in registers, not reloaded
        // through `self` for every address), and back for the copy and the next pass.
        let addrs = core::mem::take(&mut self.pass_addrs);
        let mut answers = core::mem::take(&mut self.answers);
        let pass = self.answer(mm, &addrs, &mut answers);
        self.pass_addrs = addrs;
        self.answers = answers;
        pass
    }

    /// Answers the addresses of `addrs` (native `u64`s) from the first not answered yet, into
    /// `answers`.
    fn answer(&mut self, mm: &MmWithUser, addrs: &[u8], answers: &mut KVec<u32>) -> Result<Pass> {
        // `(start, end, answer)` of the record that answered the address before: neighbouring
        // addresses in one VMA (a sorted trace's, mostly) are answered here. Empty at first.
        let mut last = (usize::MAX, 0, 0);
        for bytes in addrs.chunks_exact(size_of::<u64>()).skip(answers.len()) {
            // `chunks_exact()` gives whole `u64`s.
            let Some(&addr) = bytes.first_chunk() else {
                return Err(EINVAL);
            };
            // As `PROCMAP_QUERY`: on a 32-bit kernel the upper half is dropped.
            let addr = u64::from_ne_bytes(addr) as usize;
            let (start, end, answer) = last;
            if start <= addr && addr < end {
                answers.push_within_capacity(answer).map_err(|_| ENOMEM)?;
                continue;
            }
            let answer = if let Some(answer) = self.cached(addr) {
                answer
            } else {
                let answer = match self.reported(addr) {
                    Some(index) => {
                        // Back to an earlier record than the last: the addresses are out of
                        // order, and repeat. From now on, remember pages. (The last record
                        // is where the first address of a pass of ascending ones may be.)
                        if self.pages.is_empty() && index as usize + 1 != self.index.len() {
                            self.pages = page_cache(
                                self.addr_count
                                    .min(batch::MAX_VMAS)
                                    .saturating_sub(self.answered)
                                    .saturating_sub(answers.len()),
                            );
                        }
                        index
                    }
                    None => {
                        if !self.room() || self.index.len() == self.index.capacity() {
                            return Ok(self.no_room());
                        }
                        // Below `MAX_VMAS`: `room()` said so.
                        self.examined = self.examined.saturating_add(1);
                        let answer = match self.lookup_one(mm, addr)? {
                            Found::Record(index) => index,
                            Found::Nothing => batch::NO_VMA,
                            Found::NoRoom => {
                                // Examined again, and counted then (as a walk does).
                                self.examined = self.examined.saturating_sub(1);
                                return self.name_too_long(answers.len());
                            }
                        };
                        if !self.sorted && self.index.len() >= UNSORTED_RECORDS {
                            // Out of order, each merge copies the records: the call ends with
                            // this address, and the next starts with none.
                            answers.push_within_capacity(answer).map_err(|_| ENOMEM)?;
                            return Ok(self.answered_all_or(answers.len(), Pass::Stop));
                        }
                        answer
                    }
                };
                if answer != batch::NO_VMA {
                    self.cache(addr, answer);
                }
                // A record's range, or empty for no VMA (`NO_VMA` is no record's index). Not
                // on a page cache hit: the addresses are out of order then.
                last = self
                    .index
                    .get(answer as usize)
                    .map_or((usize::MAX, 0, 0), |&(start, end)| (start, end, answer));
                answer
            };
            answers.push_within_capacity(answer).map_err(|_| ENOMEM)?;
        }
        Ok(self.answered_all_or(answers.len(), Pass::Full))
    }

    /// How a lookup pass that answered `answers` addresses ends: done if every address is
    /// answered, else `pass`, or a stop once the call answered its most.
    fn answered_all_or(&self, answers: usize, pass: Pass) -> Pass {
        let answered = self.answered.saturating_add(answers);
        if answered == self.addr_count {
            Pass::Done
        } else if answered >= batch::MAX_VMAS {
            // The call's work is done: the caller resumes at the next address.
            Pass::Stop
        } else {
            pass
        }
    }

    /// Looks up the VMA covering `addr`, as `PROCMAP_QUERY` without `COVERING_OR_NEXT_VMA`
    /// does, and stages it.
    fn lookup_one(&mut self, mm: &MmWithUser, addr: usize) -> Result<Found> {
        // Most addresses of a trace are mapped: the VMA covering one is found and locked in
        // one descent of the tree.
        let found = if cfg!(CONFIG_PER_VMA_LOCK) {
            match lock_covering_or_next(mm, addr) {
                Err(e) if e == EAGAIN => None,
                vma => Some(self.take_covering(vma?.as_deref(), addr)?),
            }
        } else {
            None
        };
        let found = match found {
            Some(found) => found,
            None => {
                let guard = mm.mmap_read_lock_killable()?;
                self.take_covering(guard.find_vma(addr), addr)?
            }
        };
        Ok(found)
    }

    /// Stages `vma`, the first VMA ending above `addr` (locked), if it covers `addr`.
    fn take_covering(&mut self, vma: Option<&VmaRef>, addr: usize) -> Result<Found> {
        let Some(vma) = vma.filter(|vma| vma.start() <= addr) else {
            return Ok(Found::Nothing);
        };
        match self.take(vma)? {
            Take::Filtered => Ok(Found::Nothing),
            Take::NoRoom => Ok(Found::NoRoom),
            Take::Taken => {
                // A lookup reports records only here, so this one's index is its position
                // (below `vma_count`, a `u32`).
                let index = u32::try_from(self.index.len()).map_err(|_| EOVERFLOW)?;
                let (start, end) = (vma.start(), vma.end());
                if self.sorted
                    && self
                        .index
                        .last()
                        .is_some_and(|&(_, last_end)| last_end > start)
                {
                    self.sorted = false;
                    self.prefix = self.index.len();
                }
                self.index
                    .push_within_capacity((start, end))
                    .map_err(|_| ENOMEM)?;
                Ok(Found::Record(index))
            }
        }
    }

    /// Copies a pass's stage out, with no lock held: names, build IDs, records, answers.
    fn copy_out(&mut self) -> Result {
        if let Some(arena) = self.arena.as_mut() {
            if !arena.is_empty() {
                let dst = offset(self.names, self.names_used, 1)?;
                UserSlice::new(dst, arena.len())
                    .writer()
                    .write_slice(arena.as_bytes())?;
                // Within `names_size`: `take()` staged no more than was left.
                self.names_used = self.names_used.saturating_add(arena.len());
                arena.clear();
            }
        }
        if self.build_id {
            // An ELF file's segments are mapped side by side from one open file: a record of
            // the previous record's file takes the build ID parsed for that one.
            let mut last: Option<ARef<File>> = None;
            let mut last_id = ([0u8; BUILD_ID_SIZE_MAX], 0);
            for (rec, file) in self.recs.iter_mut().zip(self.files.drain_all()) {
                let Some(file) = file else {
                    continue;
                };
                if last.as_deref().is_some_and(|l| core::ptr::eq(l, &*file)) {
                    (rec.build_id, rec.build_id_size) = last_id;
                    continue;
                }
                read_build_id(rec, &file);
                last_id = (rec.build_id, rec.build_id_size);
                last = Some(file);
            }
        }
        if !self.recs.is_empty() {
            let dst = offset(self.vmas, self.written, self.vma_size)?;
            let len = self.recs.len().checked_mul(self.vma_size).ok_or(EFAULT)?;
            let mut writer = UserSlice::new(dst, len).writer();
            if self.vma_size == size_of::<ProcmapBatchVma>() {
                writer.write_slice(AsBytes::as_bytes(&self.recs[..]))?;
            } else {
                // A larger record than this kernel knows: the rest of each is zeroed.
                let zeros = [0u8; 64];
                for rec in self.recs.iter() {
                    writer.write(rec)?;
                    // `args::check_batch()` made it at least the known size.
                    let mut tail = self.vma_size.saturating_sub(size_of::<ProcmapBatchVma>());
                    while tail != 0 {
                        let n = tail.min(zeros.len());
                        writer.write_slice(&zeros[..n])?;
                        tail -= n;
                    }
                }
            }
            // Within `vma_count`: `room()` said so.
            self.written = self.written.saturating_add(self.recs.len());
            self.recs.clear();
        }
        if !self.answers.is_empty() {
            let dst = offset(self.addr_vmas, self.answered, size_of::<u32>())?;
            let len = self
                .answers
                .len()
                .checked_mul(size_of::<u32>())
                .ok_or(EFAULT)?;
            UserSlice::new(dst, len)
                .writer()
                .write_slice(AsBytes::as_bytes(&self.answers[..]))?;
            // Within `addr_count`: `read_addrs()` read no more.
            self.answered = self.answered.saturating_add(self.answers.len());
            self.answers.clear();
        }
        Ok(())
    }
}

/// The user address of element `index` of an array of `size`-byte elements at `base`;
/// [`EFAULT`] if it is beyond the address space.
fn offset(base: u64, index: usize, size: usize) -> Result<UserPtr> {
    let off = index.checked_mul(size).ok_or(EFAULT)?;
    let addr = base.checked_add(off as u64).ok_or(EFAULT)?;
    Ok(user_ptr(addr))
}

/// The record of `vma`, as `PROCMAP_QUERY` describes it; no name, no build ID yet.
#[inline]
fn record(vma: &VmaRef) -> ProcmapBatchVma {
    let file = file_fields(vma);
    ProcmapBatchVma {
        vma_start: vma.start() as u64,
        vma_end: vma.end() as u64,
        vma_flags: matching::vma_flags(vma.flags()),
        vma_page_size: vma.kernel_pagesize() as u64,
        vma_offset: file.offset,
        inode: file.inode,
        dev_major: file.dev_major,
        dev_minor: file.dev_minor,
        name_off: 0,
        name_size: 0,
        build_id_size: 0,
        build_id: [0; BUILD_ID_SIZE_MAX],
    }
}

/// Fills the build ID of `rec` from `file`, after unlocking, as `PROCMAP_QUERY` does: none (size
/// 0) if the file has no build ID.
fn read_build_id(rec: &mut ProcmapBatchVma, file: &File) {
    let mut buf = [0u8; BUILD_ID_SIZE_MAX];
    if let Ok(size) = file.build_id(&mut buf) {
        rec.build_id = buf;
        rec.build_id_size = size as u32;
    }
}

//! Tests against the running kernel: the ioctl answers must equal the text of
//! /proc/<pid>/maps, for this process and for a child with prepared mappings, and the forced
//! text fallback must give the same `Vma`s. On the host they test the kernel's C ioctl; in the
//! test VM (statically linked) the Rust module. Where the kernel lacks the ioctl, the tests
//! that need it say they are skipped (set PROCMAP_REQUIRE_IOCTL to make that a failure).
//!
//! The batch extension (<linux/procmap_query.h>: batches, any-of, the generation) is used
//! where the kernel has it: the default backend is then `Batch`, and the tests compare it
//! with single queries and the text. Where it lacks it (the host, upstream) the same tests
//! check the fallback (single queries, any-of and the cache emulated in user space) and say
//! which part they skipped; PROCMAP_REQUIRE_BATCH makes the absence a failure.

use procmap::{
    parse_maps, Backend, Freshness, Options, Perms, ProcMaps, Query, Resolution, UntrackedPolicy,
    Vma, VmaCache,
};
use std::io::Read;

mod common;
use common::{Child, Zombie, PAGE};

fn text_of(pid: &str) -> Vec<Vma> {
    let mut s = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/maps"))
        .unwrap()
        .read_to_end(&mut s)
        .unwrap();
    parse_maps(&s).unwrap()
}

/// What the text can say: no page size or build ID, and no gate VMA for the ioctl.
fn comparable(mut v: Vec<Vma>) -> Vec<Vma> {
    v.retain(|v| v.name.as_deref() != Some(b"[vsyscall]"));
    for v in &mut v {
        v.page_size = None;
        v.build_id = None;
    }
    v
}

fn walk(maps: &ProcMaps, q: Query) -> Vec<Vma> {
    maps.iter(q).collect::<Result<_, _>>().unwrap()
}

/// Whether the kernel has PROCMAP_QUERY (6.11 and later). If not, the calling test says it
/// is skipped, and passes, unless `PROCMAP_REQUIRE_IOCTL` is set.
fn have_ioctl(test: &str) -> bool {
    // The ioctl, or the extension, which has it too.
    if ProcMaps::open_self().unwrap().backend() != Backend::Text {
        return true;
    }
    assert!(
        std::env::var_os("PROCMAP_REQUIRE_IOCTL").is_none(),
        "{test}: the kernel lacks PROCMAP_QUERY"
    );
    eprintln!("SKIPPED {test}: the kernel lacks PROCMAP_QUERY (Linux 6.11 and later have it)");
    false
}

/// Whether the kernel has the batch extension. If not, the calling test says which part it
/// skipped (it still checks the fallback), unless `PROCMAP_REQUIRE_BATCH` is set: then it
/// fails.
fn have_batch(test: &str) -> bool {
    if ProcMaps::open_self().unwrap().backend() == Backend::Batch {
        return true;
    }
    assert!(
        std::env::var_os("PROCMAP_REQUIRE_BATCH").is_none(),
        "{test}: the kernel lacks PROCMAP_QUERY_BATCH (PROCMAP_REQUIRE_BATCH is set)"
    );
    eprintln!(
        "SKIPPED {test} (batch part): the kernel lacks PROCMAP_QUERY_BATCH; the fallback was tested"
    );
    false
}

/// Whether the kernel reports `PROCMAP_GENERATION_UNKNOWN` (one without per-VMA locks). The
/// runner says which kind of kernel it boots in `PROCMAP_EXPECT_GENERATION` (`counted` or
/// `unknown`), so that a kernel that lost count cannot pass for one that never had it.
fn generation_unknown(maps: &ProcMaps) -> bool {
    let unknown = maps.generation().unwrap() == Some(procmap::GENERATION_UNKNOWN);
    if let Some(want) = std::env::var_os("PROCMAP_EXPECT_GENERATION") {
        let got = if unknown { "unknown" } else { "counted" };
        assert_eq!(want.to_str(), Some(got), "the kernel's generation");
    }
    unknown
}

fn open_with(pid: libc::pid_t, backend: Backend) -> ProcMaps {
    Options::new().backend(backend).open(pid as u32).unwrap()
}

fn perms(s: &str) -> Perms {
    let mut p = Perms::default();
    p.read = s.contains('r');
    p.write = s.contains('w');
    p.exec = s.contains('x');
    p.shared = s.contains('s');
    p
}

#[test]
fn ioctl_is_available_and_chosen() {
    have_ioctl("ioctl_is_available_and_chosen");
}

#[test]
fn batch_extension_is_detected_and_chosen() {
    let maps = ProcMaps::open_self().unwrap();
    if have_batch("batch_extension_is_detected_and_chosen") {
        assert_eq!(maps.backend(), Backend::Batch);
        let g = maps
            .generation()
            .unwrap()
            .expect("a generation with the extension");
        // A count, or the value of a kernel without per-VMA locks: as the runner says.
        if let Ok(want) = std::env::var("PROCMAP_EXPECT_GENERATION") {
            assert_eq!(g == procmap::GENERATION_UNKNOWN, want == "unknown", "{g}");
        }
        // Forcing single queries or the text still works, and the generation is the
        // kernel's, whatever the backend.
        let single = Options::new().backend(Backend::Ioctl).open_self().unwrap();
        assert_eq!(single.backend(), Backend::Ioctl);
        assert!(single.generation().unwrap().is_some());
    } else {
        assert_ne!(maps.backend(), Backend::Batch);
        assert_eq!(maps.generation().unwrap(), None);
        // Asked for anyway: the first batch fails with ENOTTY and the handle goes on with
        // single queries, saying so.
        let forced = Options::new().backend(Backend::Batch).open_self().unwrap();
        assert_eq!(forced.backend(), Backend::Batch);
        assert!(forced.iter(Query::new()).count() > 0);
        if maps.backend() == Backend::Ioctl {
            assert_eq!(forced.backend(), Backend::Ioctl);
        }
    }
}

/// The queries the comparisons run: names and build IDs or not, the filters, any-of.
fn queries() -> Vec<Query> {
    vec![
        Query::new().name(true).build_id(true),
        Query::new(),
        Query::new().name(true).file_backed(true),
        Query::new().build_id(true).executable(true),
        Query::new().name(true).perms(perms("rw")),
        Query::new().name(true).perms_any(perms("wx")),
        Query::new().perms_any(perms("xs")).file_backed(true),
        Query::new().name(true).perms_any(perms("w")),
    ]
}

#[test]
fn many_vmas_batch_walk_equals_single_walk_equals_text() {
    have_ioctl("many_vmas_batch_walk_equals_single_walk_equals_text");
    let batch = have_batch("many_vmas_batch_walk_equals_single_walk_equals_text");
    let child = Child::spawn_many(1200);
    let auto = ProcMaps::open(child.pid as u32).unwrap();
    let single = open_with(child.pid, Backend::Ioctl);
    let text = open_with(child.pid, Backend::Text);
    let all_text = comparable(text_of(&child.pid.to_string()));
    assert!(all_text.len() > 2400, "{} VMAs", all_text.len());
    let names: Vec<String> = all_text.iter().map(|v| v.name_lossy()).collect();
    assert_eq!(
        child.anon_named,
        names.iter().any(|n| n == "[anon:procmap-many-7]")
    );
    let name_bytes: usize = names.iter().map(|n| n.len() + 1).sum();
    assert!(name_bytes > 128 << 10, "{name_bytes} bytes of names");
    for q in queries() {
        let a = walk(&auto, q);
        // Exactly what single queries give: page sizes, build IDs, names.
        assert_eq!(a, walk(&single, q), "flags {:#x}", q.flags());
        // What the text gives, and the text filtered here.
        let t = comparable(walk(&text, q));
        assert_eq!(comparable(a.clone()), t, "flags {:#x}", q.flags());
        let by_hand: Vec<Vma> = all_text
            .iter()
            .filter(|v| filter_by_hand(v, q))
            .map(|v| {
                let mut v = v.clone();
                if !q.name_wanted() {
                    v.name = None;
                }
                v
            })
            .collect();
        assert_eq!(t, by_hand, "flags {:#x}", q.flags());
        if q.build_id_wanted() && !q.filters() {
            assert!(a.iter().any(|v| v.build_id.is_some()));
        }
    }
    // Nothing made the handle fall back.
    assert_eq!(
        auto.backend(),
        if batch {
            Backend::Batch
        } else {
            Backend::Ioctl
        }
    );
}

#[test]
fn iter_from_is_the_rest_of_the_walk() {
    // From an address: the VMAs of the whole walk that end above it, on every backend, with
    // and without filters and names (a batch walk that starts mid-way resumes its calls
    // from there: 2 400 VMAs take several).
    let child = Child::spawn_many(1200);
    for maps in every_backend(child.pid) {
        let b = maps.backend();
        for q in [
            Query::new(),
            Query::new().name(true),
            Query::new().writable(true).executable(true).any_perm(true),
        ] {
            let all = walk(&maps, q);
            assert!(all.len() > 100, "{b:?}: {} VMAs", all.len());
            let picks = [
                0,
                1,
                all.len() / 3,
                all.len() / 2,
                all.len() - 2,
                all.len() - 1,
            ];
            let mut addrs = vec![0, u64::MAX];
            for &i in &picks {
                let v = &all[i];
                addrs.extend([v.start, v.start.wrapping_sub(1), v.end - 1, v.end]);
            }
            for a in addrs {
                let from: Vec<Vma> = maps
                    .iter_from(a, q)
                    .collect::<Result<_, _>>()
                    .unwrap_or_else(|e| panic!("{b:?} from {a:#x}: {e}"));
                let want: Vec<&Vma> = all.iter().filter(|v| v.end > a).collect();
                assert_eq!(from.iter().collect::<Vec<_>>(), want, "{b:?} from {a:#x}");
            }
        }
    }
}

/// The filters of `q`, applied to a VMA of the text: file-backed (a non-zero inode), and the
/// permissions (all of them, or any with two or more in any-of).
fn filter_by_hand(v: &Vma, q: Query) -> bool {
    let f = q.flags();
    let want = [
        (f & 1 != 0, v.perms.read),
        (f & 2 != 0, v.perms.write),
        (f & 4 != 0, v.perms.exec),
        (f & 8 != 0, v.perms.shared),
    ];
    let asked = want.iter().filter(|(w, _)| *w).count();
    let perms_ok = if q.any_perm_wanted() && asked >= 2 {
        want.iter().any(|&(w, has)| w && has)
    } else {
        want.iter().all(|&(w, has)| !w || has)
    };
    (f & 0x20 == 0 || v.inode != 0) && perms_ok
}

/// Addresses around each VMA (first, last, middle, below, at the end), some not mapped, some
/// twice, out of order.
fn addresses_around(vmas: &[Vma]) -> Vec<u64> {
    let mut addrs = vec![0u64, 1, u64::MAX, 1 << 47, u64::MAX - 4095];
    for (i, v) in vmas.iter().enumerate() {
        addrs.extend([
            v.end - 1,
            v.start,
            v.start + (v.end - v.start) / 2,
            v.start.wrapping_sub(1),
            v.end,
        ]);
        if i % 7 == 0 {
            addrs.push(v.start);
        }
    }
    let n = addrs.len();
    addrs.rotate_left(n / 3);
    addrs
}

#[test]
fn resolve_through_batches_equals_single_queries_and_text() {
    have_ioctl("resolve_through_batches_equals_single_queries_and_text");
    let batch = have_batch("resolve_through_batches_equals_single_queries_and_text");
    let child = Child::spawn_many(1200);
    let auto = ProcMaps::open(child.pid as u32).unwrap();
    let single = open_with(child.pid, Backend::Ioctl);
    let text = open_with(child.pid, Backend::Text);
    let addrs = addresses_around(&walk(&single, Query::new()));
    for q in queries() {
        let a = auto.resolve(&addrs, q).unwrap();
        let s = single.resolve(&addrs, q).unwrap();
        assert_eq!(a, s, "flags {:#x}", q.flags());
        let t = text.resolve(&addrs, q).unwrap();
        assert_eq!(a.addrs, t.addrs, "flags {:#x}", q.flags());
        assert_eq!(
            comparable(a.vmas.clone()),
            comparable(t.vmas),
            "flags {:#x}",
            q.flags()
        );
        // Each answer is what a single query says; each VMA once, in address order.
        for (i, &addr) in addrs.iter().enumerate().step_by(3) {
            let one = single.query(addr, q).unwrap();
            assert_eq!(
                a.get(i).map(|r| r.0),
                one.as_ref(),
                "{addr:#x} flags {:#x}",
                q.flags()
            );
        }
        assert!(a.vmas.windows(2).all(|w| w[0].end <= w[1].start));
        if !q.filters() {
            assert!(a.addrs.iter().flatten().count() > 3 * 2400);
        }
    }
    assert_eq!(
        auto.backend(),
        if batch {
            Backend::Batch
        } else {
            Backend::Ioctl
        }
    );
}

/// `resolve()` looks addresses up while they are spread out and walks while they are in
/// nearly every VMA: with both in one call, each part still answers what single queries do.
#[test]
fn resolve_dense_and_sparse_addresses_equals_single_queries() {
    have_ioctl("resolve_dense_and_sparse_addresses_equals_single_queries");
    let batch = have_batch("resolve_dense_and_sparse_addresses_equals_single_queries");
    let child = Child::spawn_many(1200);
    let auto = ProcMaps::open(child.pid as u32).unwrap();
    let single = open_with(child.pid, Backend::Ioctl);
    let vmas = walk(&single, Query::new());
    let third = vmas.len() / 3;
    // An address in every VMA of the first third, in every ninth of the second, in every one
    // of the last; and some not mapped.
    let mut addrs: Vec<u64> = vmas
        .iter()
        .enumerate()
        .filter(|&(i, _)| i < third || i >= 2 * third || i % 9 == 0)
        .map(|(i, v)| v.start + (i as u64 % 3) * (v.end - v.start - 1) / 2)
        .collect();
    addrs.extend([0, 1, u64::MAX]);
    addrs.reverse();
    for q in queries() {
        let a = auto.resolve(&addrs, q).unwrap();
        assert_eq!(
            a,
            single.resolve(&addrs, q).unwrap(),
            "flags {:#x}",
            q.flags()
        );
        if !q.filters() {
            assert_eq!(
                a.addrs.iter().flatten().count(),
                addrs.len() - 3,
                "flags {:#x}",
                q.flags()
            );
        }
    }
    let want = if batch {
        Backend::Batch
    } else {
        Backend::Ioctl
    };
    assert_eq!(auto.backend(), want);
}

#[test]
fn any_of_equals_filtering_in_user_space() {
    have_ioctl("any_of_equals_filtering_in_user_space");
    have_batch("any_of_equals_filtering_in_user_space");
    let child = Child::spawn_many(200);
    let pid = child.pid;
    let all = walk(&open_with(pid, Backend::Ioctl), Query::new().name(true));
    let backends = [
        ProcMaps::open(pid as u32).unwrap(),
        open_with(pid, Backend::Ioctl),
        open_with(pid, Backend::Text),
    ];
    let addrs = addresses_around(&all);
    // Every set of two permissions or more.
    for bits in 0..16u32 {
        if bits.count_ones() < 2 {
            continue;
        }
        let p = perms(
            &["r", "w", "x", "s"]
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, c)| *c)
                .collect::<String>(),
        );
        let q = Query::new().name(true).perms_any(p);
        let want: Vec<Vma> = all
            .iter()
            .filter(|v| {
                (p.read && v.perms.read)
                    || (p.write && v.perms.write)
                    || (p.exec && v.perms.exec)
                    || (p.shared && v.perms.shared)
            })
            .cloned()
            .collect();
        assert!(!want.is_empty() && want.len() < all.len(), "{p}");
        for maps in &backends {
            let b = maps.backend();
            assert_eq!(
                comparable(walk(maps, q)),
                comparable(want.clone()),
                "{p} {b:?}"
            );
            // Single queries: covering, and covering or next.
            for &addr in addrs.iter().step_by(29) {
                let cover = want.iter().find(|v| v.contains(addr));
                let got = maps.query(addr, q).unwrap();
                assert_eq!(
                    comparable(got.into_iter().collect()),
                    comparable(cover.into_iter().cloned().collect()),
                    "{addr:#x} {p} {b:?}"
                );
                let next = want.iter().find(|v| v.end > addr);
                let got = maps.query(addr, q.or_next(true)).unwrap();
                assert_eq!(
                    comparable(got.into_iter().collect()),
                    comparable(next.into_iter().cloned().collect()),
                    "{addr:#x} {p} {b:?} or next"
                );
            }
        }
    }
    // The any-of queries never made a handle give up the extension (no EINVAL from a kernel
    // without it: the flag was never sent there).
    assert_eq!(
        backends[0].backend(),
        ProcMaps::open(pid as u32).unwrap().backend()
    );
}

#[test]
fn generation_is_steady_while_nothing_changes() {
    let child = Child::spawn_mapping_on_signal();
    let maps = ProcMaps::open(child.pid as u32).unwrap();
    if !have_batch("generation_is_steady_while_nothing_changes") {
        assert_eq!(maps.generation().unwrap(), None);
        return;
    }
    let gen = || maps.generation().unwrap().unwrap();
    if generation_unknown(&maps) {
        // The kernel cannot tell: the same odd value, whatever changes.
        child.map_more();
        assert_eq!(gen(), procmap::GENERATION_UNKNOWN);
    } else {
        generation_counts(&maps, &child);
    }
    // A zombie has no address space: ESRCH.
    let z = Zombie::spawn();
    let zm = ProcMaps::open(z.pid as u32).unwrap();
    assert_eq!(zm.generation().unwrap_err().errno(), Some(libc::ESRCH));
}

/// The generation of `maps`, the child's, holds still while the child does nothing and
/// changes when it maps more.
fn generation_counts(maps: &ProcMaps, child: &Child) {
    let gen = || maps.generation().unwrap().unwrap();
    // The child does nothing, but the kernel may take its mmap write lock now and then
    // (khugepaged, say), which counts: wait for two equal readings around a walk.
    let g = (0..50)
        .find_map(|_| {
            let g = gen();
            walk(maps, Query::new().name(true));
            (gen() == g).then_some(g)
        })
        .expect("the generation never held still around a walk");
    assert_eq!(g % 2, 0, "{g}: no writer");
    child.map_more();
    let h = gen();
    assert_ne!(h, g);
    assert_eq!(h % 2, 0, "{h}");
}

/// The backends of a kernel without the extension, every released one: the text, and the
/// ioctl where the kernel has it.
fn backends_without_batch() -> Vec<Backend> {
    let mut backends = vec![Backend::Text];
    if ProcMaps::open_self().unwrap().backend() != Backend::Text {
        backends.push(Backend::Ioctl);
    }
    backends
}

/// `cache.get_many(addrs)` gives, address for address, the VMA that `want` gives.
fn assert_get_many_is(cache: &mut VmaCache, addrs: &[u64], want: &Resolution) {
    let got = cache.get_many(addrs).unwrap();
    assert_eq!(got.len(), addrs.len());
    for (i, v) in got.into_iter().enumerate() {
        assert_eq!(v, want.get(i).map(|(v, _)| v), "{:#x}", addrs[i]);
    }
}

#[test]
fn cache_reads_again_only_after_a_change() {
    let batch = have_batch("cache_reads_again_only_after_a_change");
    let child = Child::spawn_mapping_on_signal();
    let q = Query::new().name(true);
    let mut cache = VmaCache::new(ProcMaps::open(child.pid as u32).unwrap(), q).unwrap();
    assert_eq!(cache.reads(), 1);
    let fresh = |cache: &VmaCache| walk(cache.maps(), q);
    assert_eq!(cache.vmas(), fresh(&cache));
    // A kernel that cannot tell the generation leaves the cache untracked, as one without
    // the extension does.
    if batch && !generation_unknown(cache.maps()) {
        let Freshness::Generation(g) = cache.freshness() else {
            panic!("{:?}", cache.freshness())
        };
        assert_eq!(g % 2, 0);
        // Unchanged: no walk. A refresh may read again only if the generation moved (the
        // kernel may take the child's mmap write lock now and then, e.g. khugepaged): when
        // it is still the snapshot's after the refresh, it was at the refresh too.
        let mut checked = 0;
        for _ in 0..20 {
            let Freshness::Generation(had) = cache.freshness() else {
                continue;
            };
            let read = cache.refresh().unwrap();
            if cache.maps().generation().unwrap() == Some(had) {
                assert!(!read, "read again at an unchanged generation {had}");
                checked += 1;
            }
        }
        assert!(checked >= 10, "the generation kept changing");
        // A new mapping: not seen without a refresh, seen with one, in one walk.
        let reads = cache.reads();
        let new = child.map_more();
        assert_eq!(cache.lookup(new), None);
        let got = cache.get(new).unwrap().cloned();
        assert!(got.is_some_and(|v| v.contains(new)));
        assert!(cache.reads() > reads);
        assert!(matches!(cache.freshness(), Freshness::Generation(h) if h != g));
        assert_eq!(cache.vmas(), fresh(&cache));
    } else {
        assert_eq!(cache.freshness(), Freshness::Untracked);
        // Without a generation: a walk at every refresh...
        assert!(cache.refresh().unwrap());
        assert!(cache.refresh().unwrap());
        assert_eq!(cache.reads(), 3);
        // A lookup asks the kernel instead of walking every VMA again, and leaves the
        // snapshot as it was.
        let asked = child.map_more();
        assert!(cache.get(asked).unwrap().is_some_and(|v| v.contains(asked)));
        assert_eq!(cache.lookup(asked), None);
        assert_eq!(cache.reads(), 3);
        // ...unless trusted: then stale until invalidated.
        cache.set_untracked_policy(UntrackedPolicy::Trust);
        assert!(!cache.refresh().unwrap());
        let new = child.map_more();
        assert_eq!(cache.get(new).unwrap(), None, "trusted, so stale");
        cache.invalidate();
        assert!(cache.get(new).unwrap().is_some_and(|v| v.contains(new)));
        assert_eq!(cache.reads(), 4);
    }
    // resolve() from the cache equals resolve() on the maps.
    let addrs = addresses_around(cache.vmas());
    let from_cache = cache.resolve(&addrs).unwrap();
    assert_eq!(from_cache, cache.maps().resolve(&addrs, q).unwrap());
    // So does get_many(), VMA for VMA, without copying them (from the VMAs as last read,
    // or as the maps answered, which then stay in the cache until the next call).
    assert_get_many_is(&mut cache, &addrs, &from_cache);
    // The process exits: with a generation (ESRCH now), the cache is empty for good.
    drop(child);
    if batch {
        assert!(cache.refresh().unwrap());
        assert_eq!(cache.freshness(), Freshness::Gone);
        assert!(cache.vmas().is_empty());
        assert!(!cache.refresh().unwrap());
    }
}

#[test]
fn cache_without_a_generation_reads_again_on_a_miss_only() {
    // RereadOnMiss: a hit is answered from the cache, without a walk; an address mapped
    // since the last read is a miss, which reads once and finds it. On the ioctl and on the
    // text backend (each a kernel without the extension, as every released one is). With
    // the extension the policy is moot (the generation decides); the answers are checked.
    let child = Child::spawn_mapping_on_signal();
    for backend in backends_without_batch() {
        let q = Query::new().name(true);
        let mut cache = VmaCache::new(open_with(child.pid, backend), q).unwrap();
        cache.set_untracked_policy(UntrackedPolicy::RereadOnMiss);
        assert_eq!(cache.untracked_policy(), UntrackedPolicy::RereadOnMiss);
        let untracked = cache.freshness() == Freshness::Untracked;
        if !untracked {
            eprintln!("{backend:?}: the kernel has a generation; walk counts not checked");
        }
        let reads = |cache: &VmaCache, want: u64| {
            if untracked {
                assert_eq!(cache.reads(), want, "{backend:?}");
            }
        };
        let old: Vec<u64> = cache.vmas().iter().map(|v| v.start).collect();
        assert!(!old.is_empty());
        // Hits: no walk, and a refresh keeps the VMAs.
        for &a in &old {
            assert!(cache.get(a).unwrap().is_some_and(|v| v.contains(a)));
        }
        let r = cache.resolve(&old).unwrap();
        assert_eq!(r.addrs.iter().flatten().count(), old.len());
        let _ = cache.refresh().unwrap();
        reads(&cache, 1);
        // A page mapped since: a miss, exactly one walk, and the answer is there.
        let new = child.map_more();
        let got = cache.get(new).unwrap().cloned();
        assert!(got.is_some_and(|v| v.contains(new)), "{backend:?}");
        reads(&cache, 2);
        assert_eq!(cache.vmas(), walk(cache.maps(), q), "{backend:?}");
        // Now a hit.
        assert!(cache.get(new).unwrap().is_some());
        reads(&cache, 2);
        // resolve() with two new pages and an unmapped address: one walk for all.
        let (a, b) = (child.map_more(), child.map_more());
        let r = cache.resolve(&[a, old[0], 0, b]).unwrap();
        assert!(r.addrs[0].is_some() && r.addrs[3].is_some() && r.addrs[2].is_none());
        reads(&cache, 3);
        // get_many() likewise.
        let (a, b) = (child.map_more(), child.map_more());
        let got = cache.get_many(&[b, old[0], 0, a]).unwrap();
        assert!(got[0].is_some_and(|v| v.contains(b)) && got[3].is_some_and(|v| v.contains(a)));
        assert!(got[1].is_some() && got[2].is_none());
        reads(&cache, 4);
        // An address nothing maps: on the ioctl, one query says so each time, and no walk;
        // on the text, where a query reads as much as a walk, one walk, then none while no
        // read finds it mapped (a garbage frame repeated in every sample). Address 0 missed
        // in the two calls above, after their walks: already remembered.
        let per_miss = u64::from(backend == Backend::Text);
        for _ in 1..=3 {
            assert_eq!(cache.get(0).unwrap(), None);
            let unmapped = cache.vmas().last().unwrap().end;
            assert_eq!(cache.get(unmapped).unwrap(), None);
            assert!(cache
                .get_many(&[unmapped, 0])
                .unwrap()
                .iter()
                .all(Option::is_none));
            reads(&cache, 4 + per_miss);
        }
        // Many misses in one call (more than 16, fewer than the VMAs): on the ioctl each
        // asked about, still no walk; on the text, one walk.
        let last = cache.vmas().last().unwrap().end;
        let n = cache.vmas().len().min(40) as u64;
        assert!(n > 16, "{n} VMAs");
        let misses: Vec<u64> = (0..n).map(|i| last + i * 4096).collect();
        assert!(cache.get_many(&misses).unwrap().iter().all(Option::is_none));
        reads(&cache, 4 + 2 * per_miss);
        // And one mapped since is still found, with one walk.
        let c = child.map_more();
        assert!(cache.get(c).unwrap().is_some_and(|v| v.contains(c)));
        reads(&cache, 5 + 2 * per_miss);
    }
}

#[test]
fn cache_get_many_without_a_generation_asks_the_maps() {
    // Under the default Ask, without a generation, get_many() asks the maps (one resolve())
    // rather than the cache: what it answers is what resolve() on the maps answers, a VMA
    // mapped since the cache was read included, and the cache's VMAs stay as they were. On
    // the text backend and on the ioctl, where they are untracked.
    let child = Child::spawn_mapping_on_signal();
    for backend in backends_without_batch() {
        let q = Query::new().name(true);
        let mut cache = VmaCache::new(open_with(child.pid, backend), q).unwrap();
        if cache.freshness() != Freshness::Untracked {
            eprintln!("{backend:?}: the kernel has a generation; Ask is not used");
            continue;
        }
        assert_eq!(cache.untracked_policy(), UntrackedPolicy::Ask);
        let (vmas, reads) = (cache.vmas().to_vec(), cache.reads());
        let new = child.map_more();
        let mut addrs = addresses_around(&vmas);
        addrs.push(new);
        let want = cache.maps().resolve(&addrs, q).unwrap();
        assert_get_many_is(&mut cache, &addrs, &want);
        assert!(want
            .get(addrs.len() - 1)
            .is_some_and(|(v, _)| v.contains(new)));
        assert_eq!(
            cache.lookup(new),
            None,
            "{backend:?}: not read into the cache"
        );
        assert_eq!(
            (cache.vmas(), cache.reads()),
            (&vmas[..], reads),
            "{backend:?}"
        );
        // get() after it answers as the maps do too (the answers kept are replaced).
        let at = vmas[0].start;
        assert_eq!(cache.get(at).unwrap().map(|v| v.start), Some(at));
    }
}

#[test]
fn cache_without_a_generation_finds_the_exit_at_a_refresh() {
    // RereadOnMiss and Trust answer hits from the cache without asking the kernel; a
    // refresh() checks (one query, or one read of the text) that the process is there, so
    // that a periodic refresh finds it gone. On the text backend and on the ioctl.
    for backend in backends_without_batch() {
        for policy in [UntrackedPolicy::RereadOnMiss, UntrackedPolicy::Trust] {
            let child = Child::spawn();
            let mut cache = VmaCache::new(open_with(child.pid, backend), Query::new()).unwrap();
            cache.set_untracked_policy(policy);
            let at = cache.vmas()[0].start;
            assert!(!cache.refresh().unwrap());
            assert!(cache.get(at).unwrap().is_some());
            drop(child); // killed and reaped
            let r = cache.refresh();
            assert!(r.is_ok_and(|read| read), "{backend:?} {policy:?}");
            assert_eq!(cache.freshness(), Freshness::Gone, "{backend:?} {policy:?}");
            assert!(cache.get(at).unwrap_err().is_gone());
        }
    }
}

#[test]
fn child_ioctl_equals_text() {
    if !have_ioctl("child_ioctl_equals_text") {
        return;
    }
    let child = Child::spawn();
    let maps = ProcMaps::open(child.pid as u32).unwrap();
    assert_ne!(maps.backend(), Backend::Text);
    let ioctl = walk(&maps, Query::new().name(true).build_id(true));
    let text = text_of(&child.pid.to_string());
    assert_eq!(comparable(ioctl.clone()), comparable(text));
    // The prepared mappings are there.
    let names: Vec<String> = ioctl.iter().map(|v| v.name_lossy()).collect();
    assert_eq!(
        child.anon_named,
        names.iter().any(|n| n == "[anon:procmap-test]"),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with(" (deleted)")), "{names:?}");
    assert!(ioctl
        .iter()
        .all(|v| v.page_size.unwrap_or(0) >= PAGE as u64));
    // The executable has a build ID (the toolchain's default).
    assert!(ioctl
        .iter()
        .any(|v| v.build_id.as_ref().is_some_and(|b| b.len() == 20)));
}

#[test]
fn self_ioctl_equals_text() {
    // This process changes while tests run on other threads: retry until the text is the
    // same before and after the walk.
    for _ in 0..20 {
        let before = text_of("self");
        let maps = ProcMaps::open_self().unwrap();
        let ioctl = walk(&maps, Query::new().name(true));
        let after = text_of("self");
        if before == after {
            assert_eq!(comparable(ioctl), comparable(before));
            return;
        }
    }
    panic!("the address space never held still");
}

#[test]
fn forced_text_fallback_equals_ioctl() {
    let child = Child::spawn();
    let ioctl = ProcMaps::open(child.pid as u32).unwrap();
    let mut text = ProcMaps::open(child.pid as u32).unwrap();
    text.set_backend(Backend::Text);
    let vmas = walk(&ioctl, Query::new());
    // A whole walk (one snapshot of the text) gives the same VMAs.
    assert_eq!(
        comparable(walk(&text, Query::new().name(true))),
        comparable(walk(&ioctl, Query::new().name(true)))
    );
    let mut addrs = vec![0u64, 1, u64::MAX, 1 << 47];
    for v in &vmas {
        addrs.extend([v.start.wrapping_sub(1), v.start, v.end - 1, v.end]);
    }
    let mut perms = Perms::default();
    perms.read = true;
    perms.write = true;
    let filters = [
        Query::new(),
        Query::new().or_next(true),
        Query::new().or_next(true).file_backed(true),
        Query::new().or_next(true).writable(true),
        Query::new().readable(true).executable(true),
        Query::new().or_next(true).shared(true),
        Query::new().or_next(true).perms(perms),
    ];
    for q in filters {
        for &a in &addrs {
            let want = ioctl.query(a, q.name(true)).unwrap();
            let got = text.query(a, q.name(true)).unwrap();
            let strip = |v: Option<Vma>| v.and_then(|v| comparable(vec![v]).pop());
            assert_eq!(
                strip(want),
                strip(got),
                "addr {a:#x} flags {:#x}",
                q.flags()
            );
        }
    }
    // So does the batch resolver.
    let strip_all = |r: procmap::Resolution| -> Vec<_> {
        (0..addrs.len())
            .map(|i| {
                r.get(i)
                    .map(|(v, l)| (comparable(vec![v.clone()]).pop(), l))
            })
            .collect()
    };
    assert_eq!(
        strip_all(text.resolve(&addrs, Query::new()).unwrap()),
        strip_all(ioctl.resolve(&addrs, Query::new()).unwrap())
    );
}

#[test]
fn resolve_equals_single_queries() {
    let child = Child::spawn();
    let maps = ProcMaps::open(child.pid as u32).unwrap();
    let vmas = walk(&maps, Query::new());
    let mut addrs = Vec::new();
    for (i, v) in vmas.iter().enumerate() {
        addrs.extend([
            v.end - 1,
            v.start,
            v.start + (v.end - v.start) / 2,
            v.start.wrapping_sub(1),
        ]);
        addrs.push(v.start ^ (i as u64) << 12);
    }
    let resolved = maps.resolve(&addrs, Query::new().name(true)).unwrap();
    assert_eq!(resolved.addrs.len(), addrs.len());
    for (i, a) in addrs.iter().enumerate() {
        let single = maps.query(*a, Query::new().name(true)).unwrap();
        let r = resolved.get(i);
        assert_eq!(r.map(|r| r.0), single.as_ref(), "{a:#x}");
        if let Some((v, loc)) = r {
            let off = a - v.start + v.offset;
            assert_eq!(loc.file_offset, v.file_backed().then_some(off));
        }
    }
    // Each VMA once, in address order.
    assert!(resolved.vmas.windows(2).all(|w| w[0].end <= w[1].start));
}

#[test]
fn bad_pid_is_a_typed_error() {
    match ProcMaps::open(u32::MAX) {
        Err(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
            assert_eq!(e.errno(), Some(libc::ENOENT));
            // Opened by PID: no such process is one gone, and names its PID.
            assert!(e.is_gone());
            assert_eq!(e.pid(), Some(u32::MAX));
            assert_eq!(
                e.to_string(),
                "cannot open /proc/4294967295/maps: No such file or directory (os error 2)"
            );
            let io: std::io::Error = e.into();
            assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        }
        Ok(_) => panic!("opened a process that cannot exist"),
    }
    // By path, ENOENT is a wrong path, not a process gone.
    let e = Options::new()
        .open_path("/proc/4294967295/maps".as_ref())
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::ENOENT));
    assert!(!e.is_gone());
    assert_eq!(e.pid(), None);
}

#[test]
fn opening_a_process_being_reaped_is_gone() {
    // Between the lookup of /proc/PID and the open of its maps, the exited process may be
    // reaped: the open fails with ESRCH instead of ENOENT. Either way it is not there: the
    // kind must say so, and ESRCH must count as gone, not as a failure. Children exit at
    // once, a thread reaps each after a delay that varies, and the opens go on until one
    // fails; over 600 children some opens land in the window (one or two in a hundred on the
    // host; without ESRCH counted as gone this failed at once).
    use std::sync::atomic::{AtomicI32, Ordering::SeqCst};
    use std::sync::Arc;
    let pid = Arc::new(AtomicI32::new(0));
    let reaper = {
        let pid = Arc::clone(&pid);
        std::thread::spawn(move || {
            for i in 0..600u64 {
                let p = loop {
                    match pid.swap(0, SeqCst) {
                        0 => std::thread::yield_now(),
                        p => break p,
                    }
                };
                std::thread::sleep(std::time::Duration::from_micros(i * 7 % 50));
                // SAFETY: waits for our own child, with no status wanted.
                assert_eq!(unsafe { libc::waitpid(p, std::ptr::null_mut(), 0) }, p);
            }
        })
    };
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..600 {
        // SAFETY: the child only calls _exit(), which is async-signal-safe.
        let child = unsafe { libc::fork() };
        if child == 0 {
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(0) };
        }
        assert!(child > 0, "fork: {}", std::io::Error::last_os_error());
        pid.store(child, SeqCst);
        let e = loop {
            if let Err(e) = ProcMaps::open(child as u32) {
                break e;
            }
        };
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
        // ENOENT or ESRCH, opened by PID: gone either way.
        assert!(e.is_gone(), "{e}");
        assert_eq!(e.pid(), Some(child as u32), "{e}");
        // An open fails only once the reaper took the child: the next one may come.
        *seen.entry(e.errno()).or_insert(0) += 1;
    }
    reaper.join().unwrap();
    eprintln!("errors of the opens that failed: {seen:?}");
}

/// The backends this kernel has, each on its own handle of `pid`'s maps.
fn every_backend(pid: libc::pid_t) -> Vec<ProcMaps> {
    let mut all = vec![open_with(pid, Backend::Text)];
    if ProcMaps::open_self().unwrap().backend() != Backend::Text {
        all.push(open_with(pid, Backend::Ioctl));
    }
    if ProcMaps::open_self().unwrap().backend() == Backend::Batch {
        all.push(open_with(pid, Backend::Batch));
    }
    all
}

/// [`every_backend`], and each again opened without a pidfd ([`Options::pidfd`]), whose
/// `reopen()` tells the process by its start time.
fn every_backend_with_and_without_pidfd(pid: libc::pid_t) -> Vec<ProcMaps> {
    let mut all = every_backend(pid);
    let without: Vec<ProcMaps> = all
        .iter()
        .map(|m| {
            Options::new()
                .backend(m.backend())
                .pidfd(false)
                .open(pid as u32)
                .unwrap()
        })
        .collect();
    all.extend(without);
    all
}

/// Every way of asking fails with the error that says the address space is gone (naming the
/// process of a handle opened by PID), not with an answer that nothing is mapped; and a cache
/// says so.
fn assert_gone(maps: ProcMaps) {
    let b = maps.backend();
    let pid = maps.pid();
    let gone = |r: Result<(), procmap::Error>, what: &str| {
        let e = r.expect_err(&format!("{b:?} {what}"));
        assert!(e.is_gone(), "{b:?} {what}: {e}");
        // The process is named, if the handle was opened by PID.
        assert_eq!(e.pid(), pid, "{b:?} {what}: {e}");
        if let Some(pid) = pid {
            assert!(e.to_string().contains(&format!("on process {pid}:")), "{e}");
        }
        assert_eq!(e.errno(), Some(libc::ESRCH), "{b:?} {what}");
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{b:?} {what}");
    };
    gone(
        maps.query(0, Query::new().or_next(true))
            .map(|v| eprintln!("{b:?}: the first VMA after the exec: {v:?}")),
        "query",
    );
    gone(
        maps.query(0x400000, Query::new().name(true)).map(drop),
        "query",
    );
    let first = maps.iter(Query::new().name(true)).next();
    gone(
        first.expect("the walk ends with an error").map(drop),
        "walk",
    );
    let addrs = [0, 0x400000, u64::MAX];
    gone(
        maps.resolve(&addrs, Query::new().name(true)).map(drop),
        "resolve",
    );
    // No addresses: nothing to answer wrongly, and the same on every backend.
    let none = maps.resolve(&[], Query::new()).expect("no addresses");
    assert!(none.vmas.is_empty() && none.addrs.is_empty(), "{b:?}");
    let mut cache = VmaCache::new(maps, Query::new()).unwrap();
    assert_eq!(cache.freshness(), Freshness::Gone, "{b:?}");
    assert!(cache.vmas().is_empty());
    gone(cache.get(0x400000).map(drop), "cache get");
    gone(cache.resolve(&addrs).map(drop), "cache resolve");
}

#[test]
fn gone_process_is_an_error() {
    let child = Child::spawn();
    let all = every_backend(child.pid);
    // Killed and reaped: the text's read fails with ESRCH, the ioctls too.
    drop(child);
    for maps in all {
        assert_gone(maps);
    }
}

#[test]
fn zombie_is_an_error() {
    // A zombie (like a kernel thread) has no mm: the text is empty and the ioctl says ESRCH.
    let z = Zombie::spawn();
    assert_eq!(text_of(&z.pid.to_string()), vec![]);
    for maps in every_backend(z.pid) {
        assert_gone(maps);
    }
}

#[test]
fn main_thread_exited_is_read_through_another_thread() {
    // A live process whose main thread exited: its /proc/PID/maps is empty, the other
    // thread's shows the process's VMAs. Opened by PID, every backend reads those.
    let (child, tid) = Child::spawn_leader_exited();
    let text = comparable(text_of(&format!("{}/task/{tid}", child.pid)));
    assert!(!text.is_empty());
    for maps in every_backend(child.pid) {
        let b = maps.backend();
        let vmas = comparable(walk(&maps, Query::new().name(true)));
        assert_eq!(vmas, text, "{b:?}");
        let code = text.iter().find(|v| v.perms.exec).expect("code").start;
        assert!(maps.query(code, Query::new()).unwrap().is_some(), "{b:?}");
    }
    // The main thread's file itself has no address space.
    let path = format!("/proc/{}/maps", child.pid);
    assert_gone(Options::new().open_path(path.as_ref()).unwrap());
}

#[test]
fn text_of_a_thread_that_exits_is_read_through_another() {
    // Opened by PID with the main thread gone, the maps are those of one of the other
    // threads (the first, by ID). When it exits, its text ends with it: the text is then read
    // through another thread that was there at the open, while one is left; once none is,
    // the process is gone and so is the text.
    let (child, tids) = Child::spawn_leader_exited_threads(3);
    let (last, before) = tids.split_last().unwrap();
    let want = comparable(text_of(&format!("{}/task/{last}", child.pid)));
    assert!(!want.is_empty());
    let text = open_with(child.pid, Backend::Text);
    // A single query through the ioctl reads the text for a name longer than PATH_MAX, not
    // here; the text backend reads it for everything.
    assert_eq!(comparable(walk(&text, Query::new().name(true))), want);
    // The build IDs, read through a thread's map_files or root: through a live one.
    let ids = |maps: &ProcMaps| -> Vec<Option<Vec<u8>>> {
        let q = Query::new().build_id(true);
        walk(maps, q).into_iter().map(|v| v.build_id).collect()
    };
    let want_ids = ids(&text);
    if want_ids.iter().all(Option::is_none) {
        eprintln!("no build IDs in the child (none in this binary?): not compared");
    }
    for &tid in before {
        child.end_thread(tid);
        assert_eq!(ids(&text), want_ids, "build IDs after thread {tid} exited");
        let vmas = text
            .iter(Query::new().name(true))
            .collect::<Result<Vec<_>, _>>();
        let vmas = vmas.unwrap_or_else(|e| panic!("after thread {tid} exited: {e}"));
        assert_eq!(comparable(vmas), want, "after thread {tid} exited");
        let code = want.iter().find(|v| v.perms.exec).expect("code").start;
        assert!(text.query(code, Query::new()).unwrap().is_some());
    }
    child.end_thread(*last);
    let e = text
        .iter(Query::new())
        .next()
        .expect("an error")
        .unwrap_err();
    assert!(e.is_gone(), "{e}");
}

/// A child process, killed and reaped on drop (also when a test fails).
struct Shell(std::process::Child);

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A shell that will `exec /bin/sleep` when [`exec_sleep`] tells it to; it has printed its
/// first line, so it runs (its own exec is done).
fn spawn_shell_to_exec() -> Shell {
    let mut sh = Shell(
        std::process::Command::new("/bin/sh")
            .args(["-c", "echo ready; read x; exec /bin/sleep 1000"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // spawn() may return before the child is done with its exec of the shell: its
    // CLONE_VFORK parent is woken when the exec lets go of the address space it shared,
    // before the task is switched to the new one, and a maps file opened in between is on
    // this process's (a failure on the one-CPU guest: the text handle answered with this
    // process's VMAs after the second exec). The shell's first line says it runs.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(sh.0.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "ready\n");
    sh
}

/// Makes a shell of [`spawn_shell_to_exec`] exec `sleep`, and waits until it runs.
fn exec_sleep(sh: &mut Shell) {
    let pid = sh.0.id();
    let comm = format!("/proc/{pid}/comm");
    std::io::Write::write_all(sh.0.stdin.as_mut().unwrap(), b"go\n").unwrap();
    // The task is named "sleep" (after the path execve() was given; busybox's shell execs
    // /proc/self/exe, and busybox names itself once it runs) when the new address space holds
    // only the stack, before the program is mapped, and the program maps more as it starts.
    // Its maps are settled once it sleeps: in nanosleep() or clock_nanosleep().
    let syscall = format!("/proc/{pid}/syscall");
    let t = std::time::Instant::now();
    while std::fs::read_to_string(&comm).unwrap().trim() != "sleep"
        || !std::fs::read_to_string(&syscall)
            .unwrap()
            .split(' ')
            .next()
            .is_some_and(|nr| {
                nr.parse().is_ok_and(|nr: libc::c_long| {
                    nr == libc::SYS_nanosleep || nr == libc::SYS_clock_nanosleep
                })
            })
    {
        assert!(t.elapsed().as_secs() < 60, "no exec");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn exec_after_the_open_is_an_error() {
    // The maps file stays on the address space it was opened on; after execve() that one
    // has no users. A fresh open sees the new program's.
    let mut sh = spawn_shell_to_exec();
    let pid = sh.0.id() as libc::pid_t;
    let before = every_backend(pid);
    assert!(!walk(&before[0], Query::new()).is_empty());
    exec_sleep(&mut sh);
    for maps in before {
        assert_gone(maps);
    }
    let after = ProcMaps::open(pid as u32).unwrap();
    assert!(!walk(&after, Query::new()).is_empty());
}

#[test]
fn reopen_after_exec_gives_the_new_program() {
    // A handle opened by PID keeps a pidfd: after the process's execve(), reopen() opens the
    // maps of the same process, the new program's, with the backend of the original.
    // Without a pidfd, by the process's start time.
    let mut sh = spawn_shell_to_exec();
    let pid = sh.0.id();
    let before = every_backend_with_and_without_pidfd(pid as libc::pid_t);
    let shell = comparable(text_of(&pid.to_string()));
    for (i, maps) in before.iter().enumerate() {
        assert_eq!(maps.pid(), Some(pid));
        let with = i < before.len() / 2;
        assert_eq!(
            maps.pidfd().is_some(),
            with,
            "pidfd at {i}: pidfd_open() missing?"
        );
        // Not gone yet: the same process's maps.
        let again = maps.reopen().unwrap();
        assert_eq!(comparable(walk(&again, Query::new().name(true))), shell);
    }
    exec_sleep(&mut sh);
    let want = comparable(text_of(&pid.to_string()));
    assert_ne!(want, shell);
    // The new program's text: `sleep`, or busybox as `sleep`.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        want.iter()
            .any(|v| v.perms.exec && v.name_lossy() == exe.to_str().unwrap()),
        "{want:?}"
    );
    for maps in &before {
        let b = maps.backend();
        let e = maps.query(0, Query::new().or_next(true)).unwrap_err();
        assert!(e.is_gone(), "{b:?}: {e}");
        let new = maps.reopen().unwrap();
        assert_eq!(new.backend(), b);
        assert_eq!(new.pid(), Some(pid));
        assert_eq!(
            comparable(walk(&new, Query::new().name(true))),
            want,
            "{b:?}"
        );
        // And again, from the new handle.
        assert!(new.reopen().is_ok());
    }
    drop(sh);
    // Killed and reaped: no handle, whatever the backend.
    for maps in &before {
        let e = maps.reopen().unwrap_err();
        assert!(e.is_gone(), "{:?}: {e}", maps.backend());
    }
}

#[test]
fn reopen_without_a_pidfd_tells_an_exited_process_from_one_without_an_address_space() {
    // Told by the start time, the same process is gone only if its main thread exited and
    // no address space is left: a zombie. Not a process whose main thread exited while
    // others run, nor a kernel thread (no address space, never had one): reopened, as
    // they are with a pidfd.
    let no_pidfd = |pid: libc::pid_t| Options::new().pidfd(false).open(pid as u32).unwrap();
    let z = Zombie::spawn();
    let e = no_pidfd(z.pid).reopen().unwrap_err();
    assert!(e.is_gone(), "{e}");
    let (child, _) = Child::spawn_leader_exited();
    let again = no_pidfd(child.pid).reopen().unwrap();
    assert!(!walk(&again, Query::new()).is_empty());
    let kthreadd = std::fs::read_to_string("/proc/2/comm").unwrap_or_default();
    if kthreadd.trim_end() == "kthreadd" {
        for maps in [no_pidfd(2), ProcMaps::open(2).unwrap()] {
            let again = maps.reopen().unwrap();
            assert_eq!(again.pid(), Some(2));
        }
    } else {
        eprintln!("SKIPPED the kernel-thread part: PID 2 is not kthreadd ({kthreadd:?})");
    }
}

/// Starts a process with PID `pid` (clone3() with `set_tid`, Linux 5.5, which needs
/// CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE) that waits to be killed; the errno if it could
/// not.
fn spawn_with_pid(pid: libc::pid_t) -> Result<libc::pid_t, i32> {
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
    }
    let tid = [pid];
    let args = CloneArgs {
        flags: 0,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: tid.as_ptr() as u64,
        set_tid_size: 1,
    };
    // SAFETY: a fork-like clone3() (no CLONE_VM, no new stack): the child is a copy of this
    // thread, which only makes async-signal-safe system calls until it is killed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r == 0 {
        loop {
            // SAFETY: waits for a signal.
            unsafe { libc::pause() };
        }
    }
    if r < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    Ok(r as libc::pid_t)
}

#[test]
fn reopen_of_a_reaped_process_is_gone_even_if_its_pid_is_reused() {
    let child = Child::spawn();
    let pid = child.pid;
    let all = every_backend_with_and_without_pidfd(pid);
    drop(child); // killed and reaped
    for maps in &all {
        let e = maps.reopen().unwrap_err();
        assert!(e.is_gone(), "{:?}: {e}", maps.backend());
    }
    // Another process with the same PID (best effort: it takes the privilege to choose a
    // PID, and the PID must still be free): a reopen by PID alone would open its maps. Not
    // within the clock tick (10 ms) the first one started in, which the handles without a
    // pidfd could not tell from it (see `ProcMaps::reopen`).
    std::thread::sleep(std::time::Duration::from_millis(30));
    match spawn_with_pid(pid) {
        Ok(other) => {
            // Killed and reaped on drop, whatever fails.
            struct Reaped(libc::pid_t);
            impl Drop for Reaped {
                fn drop(&mut self) {
                    // SAFETY: killing and reaping our own child.
                    unsafe {
                        libc::kill(self.0, libc::SIGKILL);
                        libc::waitpid(self.0, std::ptr::null_mut(), 0);
                    }
                }
            }
            let _other = Reaped(other);
            assert_eq!(other, pid);
            let reused = walk(&ProcMaps::open(pid as u32).unwrap(), Query::new());
            assert!(
                !reused.is_empty(),
                "the new process with PID {pid} has maps"
            );
            for maps in &all {
                let e = maps.reopen().unwrap_err();
                assert!(e.is_gone(), "{:?}, PID reused: {e}", maps.backend());
            }
            eprintln!("PID {pid} reused: reopen() refused it");
        }
        Err(e) => eprintln!(
            "SKIPPED the PID-reuse part: clone3(set_tid={pid}): {}",
            std::io::Error::from_raw_os_error(e)
        ),
    }
}

#[test]
fn walk_cut_short_by_exit_ends_with_an_error() {
    // Ioctl and batch walks ask the kernel as they go; the text backend reads the text at
    // the first step, whole (and checks it was not cut).
    let child = Child::spawn_many(600);
    let asking: Vec<ProcMaps> = every_backend(child.pid)
        .into_iter()
        .filter(|m| m.backend() != Backend::Text)
        .collect();
    let mut iters: Vec<_> = asking
        .iter()
        .map(|m| m.iter(Query::new().name(true)))
        .collect();
    // Beyond a batch call's 256 records.
    for it in &mut iters {
        for _ in 0..300 {
            it.next().unwrap().unwrap();
        }
    }
    drop(child);
    for mut it in iters {
        let rest: Vec<_> = it.by_ref().collect();
        let (last, before) = rest.split_last().expect("an error at the end");
        assert!(before.iter().all(Result::is_ok));
        let e = last.as_ref().expect_err("the walk ends with an error");
        assert!(e.is_gone(), "{e}");
        assert!(it.next().is_none());
    }
}

#[test]
fn long_path_does_not_end_the_walk() {
    // A name longer than PATH_MAX: the ioctl answers ENAMETOOLONG for that VMA.
    let child = Child::spawn_long_path();
    let maps = ProcMaps::open(child.pid as u32).unwrap();
    let ioctl = walk(&maps, Query::new().name(true));
    let text = text_of(&child.pid.to_string());
    assert_eq!(comparable(ioctl.clone()), comparable(text));
    let long = ioctl
        .iter()
        .find(|v| v.name_lossy().ends_with("/long-file"))
        .expect("the long-named VMA is there");
    assert!(long.name.as_ref().unwrap().len() > 4096);
    assert!(ioctl.iter().any(|v| v.name_lossy().ends_with("/after")));
    // A single query for it, too.
    let one = maps.query(long.start, Query::new().name(true)).unwrap();
    assert_eq!(one.as_ref(), Some(long));
    // And resolve() (the batch lookup where there is one), with the VMAs around it.
    let addrs: Vec<u64> = ioctl.iter().flat_map(|v| [v.start, v.end - 1]).collect();
    let r = maps.resolve(&addrs, Query::new().name(true)).unwrap();
    for (i, a) in addrs.iter().enumerate() {
        let want = ioctl.iter().find(|v| v.contains(*a));
        assert_eq!(r.get(i).map(|r| r.0), want, "{a:#x}");
    }
    // Both ways, single queries give the same.
    let single = open_with(child.pid, Backend::Ioctl);
    assert_eq!(walk(&single, Query::new().name(true)), ioctl);
}

#[test]
fn odd_names_are_the_same_from_both_backends() {
    // The ioctl gives names raw; the text escapes a newline as \012.
    let child = Child::spawn_odd_names();
    let maps = ProcMaps::open(child.pid as u32).unwrap();
    let ioctl = walk(&maps, Query::new().name(true));
    let text = text_of(&child.pid.to_string());
    assert_eq!(comparable(ioctl.clone()), comparable(text));
    let names: Vec<_> = ioctl.iter().filter_map(|v| v.name.clone()).collect();
    assert!(
        names.iter().any(|n| n.ends_with(b"/new\nline")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with(b"/gone\nnl x (deleted)")),
        "{names:?}"
    );
}

#[test]
fn one_handle_serves_many_threads() {
    let child = Child::spawn();
    let maps = ProcMaps::open(child.pid as u32).unwrap();
    let want = walk(&maps, Query::new().name(true));
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| walk(&maps, Query::new().name(true))))
            .collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), want);
        }
    });
}

/// Runs `f` on a thread without `CAP_SYS_ADMIN` and `CAP_CHECKPOINT_RESTORE` in its effective
/// set (capabilities are per thread), where `/proc/PID/map_files` cannot be opened: the text
/// backend then opens mapped files by their path under `/proc/PID/root`. `None` if this
/// thread could not be made so.
fn without_map_files<T: Send>(pid: libc::pid_t, f: impl FnOnce() -> T + Send) -> Option<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            // CAP_SYS_ADMIN, CAP_CHECKPOINT_RESTORE
            common::caps::drop_effective_caps(&[21, 40]).ok()?;
            // Check that map_files is closed to this thread now.
            let first = text_of(&pid.to_string())
                .into_iter()
                .find(|v| v.file_backed())?;
            let link = format!("/proc/{pid}/map_files/{:x}-{:x}", first.start, first.end);
            let e = std::fs::File::open(link).expect_err("map_files opened without the caps");
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
            Some(f())
        })
        .join()
        .unwrap()
    })
}

/// The file-backed VMAs of `pid` with their build IDs, from the text backend and from the
/// ioctl (the kernel's parser), compared; the text's.
fn text_build_ids_equal_ioctl(pid: libc::pid_t, how: &str) -> Vec<Vma> {
    let q = Query::new().name(true).build_id(true).file_backed(true);
    let text = walk(&open_with(pid, Backend::Text), q);
    let ioctl = comparable_but_build_id(walk(&open_with(pid, Backend::Ioctl), q));
    assert_eq!(text, ioctl, "{how}");
    text
}

/// As [`comparable`], keeping the build IDs.
fn comparable_but_build_id(mut v: Vec<Vma>) -> Vec<Vma> {
    for v in &mut v {
        v.page_size = None;
    }
    v
}

#[test]
fn text_build_ids_equal_the_kernels() {
    if !have_ioctl("text_build_ids_equal_the_kernels") {
        return;
    }
    // This process and a child (a fork: the test binary, libc, ld.so, a deleted file, shared
    // memory): through map_files (we are root here, or not: then the path), and through the
    // path alone.
    let child = Child::spawn();
    for pid in [std::process::id() as libc::pid_t, child.pid] {
        let vmas = text_build_ids_equal_ioctl(pid, "as we are");
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        let with_id: Vec<String> = vmas
            .iter()
            .filter(|v| v.build_id.is_some())
            .map(|v| v.name_lossy())
            .collect();
        assert!(
            with_id.iter().any(|n| n == exe.to_str().unwrap()),
            "{with_id:?}"
        );
        // And its libc's, where it has one (the guest's test binary is static).
        if vmas.iter().any(|v| v.name_lossy().contains("/libc.so")) {
            assert!(
                with_id.iter().any(|n| n.contains("/libc.so")),
                "{with_id:?}"
            );
        }
        match without_map_files(pid, || text_build_ids_equal_ioctl(pid, "by path")) {
            Some(by_path) => assert_eq!(by_path, vmas),
            None => eprintln!("SKIPPED the path part: could not drop the capabilities"),
        }
    }
}

#[test]
fn text_build_ids_of_a_replaced_or_deleted_file_come_from_map_files_or_memory() {
    if !have_ioctl("text_build_ids_of_a_replaced_or_deleted_file_come_from_map_files_or_memory") {
        return;
    }
    // Two copies of one ELF file mapped; then one is replaced at its path by another ELF
    // file, and the other deleted. The kernel reads the mapped files; map_files opens them
    // too. Both now show as "PATH (deleted)", and a file of that very name, another ELF file,
    // is there for one of them: the (device, inode) check must refuse it rather than give
    // its build ID.
    let dir = std::env::temp_dir().join(format!("procmap-buildid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (replaced, deleted) = (dir.join("replaced"), dir.join("deleted"));
    let (a, b) = ("/bin/sleep", "/bin/sh");
    std::fs::copy(a, &replaced).unwrap();
    std::fs::copy(a, &deleted).unwrap();
    let cpath = |p: &std::path::Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    let child = Child::spawn_mapping_files(&[cpath(&replaced), cpath(&deleted)]);
    let other = dir.join("other");
    std::fs::copy(b, &other).unwrap();
    std::fs::rename(&other, &replaced).unwrap();
    std::fs::remove_file(&deleted).unwrap();
    std::fs::copy(b, dir.join("replaced (deleted)")).unwrap();
    let q = Query::new().name(true).build_id(true).file_backed(true);
    let ioctl = comparable_but_build_id(walk(&open_with(child.pid, Backend::Ioctl), q));
    let id_of = |vmas: &[Vma], name: &std::path::Path| -> Vec<Option<Vec<u8>>> {
        let name = name.to_str().unwrap();
        let ids: Vec<_> = vmas
            .iter()
            .filter(|v| v.name_lossy().starts_with(name))
            .map(|v| v.build_id.clone())
            .collect();
        assert!(!ids.is_empty(), "{name} is mapped");
        ids
    };
    // What the files' ids are, as the kernel reads them from our own mappings of the two.
    let a_id = id_of(&ioctl, &replaced)[0]
        .clone()
        .expect("an ID for the copy");
    assert_eq!(id_of(&ioctl, &deleted)[0].as_ref(), Some(&a_id));
    // Through map_files (which needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE): the kernel's.
    let first = ioctl
        .iter()
        .find(|v| v.name_lossy().starts_with(dir.to_str().unwrap()));
    let first = first.unwrap();
    let link = format!(
        "/proc/{}/map_files/{:x}-{:x}",
        child.pid, first.start, first.end
    );
    if std::fs::File::open(link).is_ok() {
        text_build_ids_equal_ioctl(child.pid, "replaced and deleted, map_files");
    } else {
        eprintln!("SKIPPED the map_files part: map_files cannot be opened here");
    }
    let by_path = without_map_files(child.pid, || walk(&open_with(child.pid, Backend::Text), q));
    let Some(by_path) = by_path else {
        eprintln!("SKIPPED the path part: could not drop the capabilities");
        return;
    };
    // By path, those two cannot be opened (the file at the path is another one, or none):
    // read in the child's memory (its first page, which the child read), as the kernel's.
    for name in [&replaced, &deleted] {
        assert_eq!(id_of(&by_path, name), [Some(a_id.clone())], "{name:?}");
    }
    let rest = |v: &[Vma]| -> Vec<Vma> {
        v.iter()
            .filter(|v| !v.name_lossy().starts_with(dir.to_str().unwrap()))
            .cloned()
            .collect()
    };
    assert_eq!(rest(&by_path), rest(&ioctl));
    drop(child);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_deleted_files_path_without_the_suffix() {
    use std::os::unix::ffi::OsStrExt;
    // A file mapped, then unlinked: each backend shows it deleted, with its path.
    let dir = std::env::temp_dir().join(format!("procmap-deleted-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lib.so");
    std::fs::write(&path, [1u8; 4096]).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    // SAFETY: a new private read-only mapping of a one-page file, unmapped below and not
    // touched otherwise.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
        )
    };
    assert!(p != libc::MAP_FAILED);
    let at = p as u64;
    let mut backends = backends_without_batch();
    backends.push(ProcMaps::open_self().unwrap().backend());
    let q = Query::new().name(true);
    for backend in &backends {
        let maps = open_with(std::process::id() as libc::pid_t, *backend);
        let v = maps.query(at, q).unwrap().unwrap();
        assert_eq!(v.path(), Some(path.as_os_str().as_bytes()), "{backend:?}");
        assert!(!v.is_deleted(), "{backend:?}");
    }
    std::fs::remove_file(&path).unwrap();
    for backend in &backends {
        let maps = open_with(std::process::id() as libc::pid_t, *backend);
        let v = maps.query(at, q).unwrap().unwrap();
        assert!(v.is_deleted(), "{backend:?}: {:?}", v.name_lossy());
        assert_eq!(v.path(), Some(path.as_os_str().as_bytes()), "{backend:?}");
    }
    // SAFETY: the mapping made above, used no more.
    unsafe { libc::munmap(p, 4096) };
    std::fs::remove_dir_all(&dir).unwrap();
}

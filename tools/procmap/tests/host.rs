//! Tests against the running kernel: the ioctl answers must equal the text of
//! /proc/<pid>/maps, for this process and for a child with prepared mappings, and the forced
//! text fallback must give the same `Vma`s. On the host they test the kernel's C ioctl; in the
//! test VM (statically linked) the Rust module. Where the kernel lacks the ioctl, the tests
//! that need it say they are skipped (set PROCMAP_REQUIRE_IOCTL to make that a failure).

use procmap::{parse_maps, Backend, Perms, ProcMaps, Query, Vma};
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
    if ProcMaps::open_self().unwrap().backend() == Backend::Ioctl {
        return true;
    }
    assert!(
        std::env::var_os("PROCMAP_REQUIRE_IOCTL").is_none(),
        "{test}: the kernel lacks PROCMAP_QUERY"
    );
    eprintln!("SKIPPED {test}: the kernel lacks PROCMAP_QUERY (Linux 6.11 and later have it)");
    false
}

#[test]
fn ioctl_is_available_and_chosen() {
    have_ioctl("ioctl_is_available_and_chosen");
}

#[test]
fn child_ioctl_equals_text() {
    if !have_ioctl("child_ioctl_equals_text") {
        return;
    }
    let child = Child::spawn();
    let maps = ProcMaps::open(child.pid as u32).unwrap();
    assert_eq!(maps.backend(), Backend::Ioctl);
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
            assert_eq!(
                e.to_string(),
                "cannot open /proc/4294967295/maps: No such file or directory (os error 2)"
            );
            let io: std::io::Error = e.into();
            assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        }
        Ok(_) => panic!("opened a process that cannot exist"),
    }
}

#[test]
fn gone_process_is_empty() {
    // Like the text of /proc/PID/maps (empty once the process has exited), not an error.
    let child = Child::spawn();
    let maps = ProcMaps::open(child.pid as u32).unwrap();
    drop(child);
    assert_eq!(maps.query(0, Query::new().or_next(true)).unwrap(), None);
    assert_eq!(walk(&maps, Query::new()), vec![]);
}

#[test]
fn zombie_is_an_empty_address_space() {
    // A zombie (like a kernel thread) has no mm: the text is empty and the ioctl says ESRCH.
    if !have_ioctl("zombie_is_an_empty_address_space") {
        return;
    }
    let z = Zombie::spawn();
    assert_eq!(text_of(&z.pid.to_string()), vec![]);
    let maps = ProcMaps::open(z.pid as u32).unwrap();
    assert_eq!(maps.backend(), Backend::Ioctl);
    assert_eq!(walk(&maps, Query::new().name(true)), vec![]);
    assert_eq!(maps.query(0, Query::new().or_next(true)).unwrap(), None);
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

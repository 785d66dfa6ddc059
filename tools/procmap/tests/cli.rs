//! The `procmap` command against prepared processes: the binary cargo built, or the one
//! `PROCMAP_BIN` names (the test VM runs these against the Rust module that way, with
//! `PROCMAP_REQUIRE_BATCH` set: then the default backend must be batches).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

mod common;
use common::{Child, Zombie};

/// The `procmap` binary under test.
fn bin() -> std::ffi::OsString {
    std::env::var_os("PROCMAP_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_procmap").into())
}

fn procmap(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

/// The maps text, without the gate area (not a VMA: the ioctl never answers it).
fn maps_text(pid: i32) -> Vec<u8> {
    text_without_gate(&format!("/proc/{pid}/maps"))
}

/// The maps text at `path`, without the gate area.
fn text_without_gate(path: &str) -> Vec<u8> {
    let t = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    for line in t.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b" [vsyscall]\n") {
            out.extend_from_slice(line);
        }
    }
    out
}

fn assert_drop_in(child: &Child) {
    let pid = child.pid.to_string();
    for backend in [
        &[][..],
        &["--text"][..],
        &["--backend", "ioctl"][..],
        &["--backend=text"][..],
    ] {
        let mut args = backend.to_vec();
        args.push(&pid);
        let out = procmap(&args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let want = maps_text(child.pid);
        assert!(
            out.stdout == want,
            "{args:?}:\n{}\n--- /proc/{pid}/maps:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&want)
        );
    }
}

#[test]
fn default_output_is_the_maps_text() {
    // Anonymous (trailing space), named anonymous, shared, deleted.
    assert_drop_in(&Child::spawn());
}

#[test]
fn default_output_is_the_maps_text_with_odd_names() {
    // A newline (escaped as \012 by the kernel), a space, a tab, a byte not UTF-8.
    let child = Child::spawn_odd_names();
    assert_drop_in(&child);
    let out = procmap(&[&child.pid.to_string()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("/new\\012line\n"));
}

#[test]
fn default_output_is_the_maps_text_with_a_long_path() {
    assert_drop_in(&Child::spawn_long_path());
}

#[test]
fn show_backend_names_the_backend_that_answered() {
    let child = Child::spawn();
    let pid = child.pid.to_string();
    let out = procmap(&["--show-backend", &pid]);
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    if std::env::var_os("PROCMAP_REQUIRE_BATCH").is_some() {
        assert_eq!(err, "procmap: backend: batch\n");
    } else {
        assert!(
            err == "procmap: backend: batch\n" || err == "procmap: backend: ioctl\n",
            "{err:?}"
        );
    }
    for (args, want) in [
        (&["--text"][..], "text"),
        (&["--backend", "ioctl"][..], "ioctl"),
        (&["--backend", "text", "-a", "0"][..], "text"),
    ] {
        let mut a = args.to_vec();
        a.extend(["--show-backend", &pid]);
        let out = procmap(&a);
        assert!(out.status.success(), "{a:?}");
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            format!("procmap: backend: {want}\n"),
            "{a:?}"
        );
    }
}

#[test]
fn any_of_the_permissions() {
    let child = Child::spawn();
    let pid = child.pid.to_string();
    let text = maps_text(child.pid);
    // The lines whose permissions have w or s (as the text shows them).
    let want: Vec<u8> = text
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| {
            let perms = l.split(|&b| b == b' ').nth(1).unwrap();
            perms[1] == b'w' || perms[3] == b's'
        })
        .flatten()
        .copied()
        .collect();
    assert!(!want.is_empty());
    let batches = procmap::ProcMaps::open_self().unwrap().has_extension();
    for backend in ["batch", "ioctl", "text"] {
        let out = procmap(&["-ws", "--any", &pid, "--backend", backend]);
        if backend == "batch" && !batches {
            // Asked for by name, batches must be there.
            assert_eq!(out.status.code(), Some(1), "{out:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stderr),
                "procmap: --backend batch: the kernel lacks PROCMAP_QUERY_BATCH\n"
            );
            continue;
        }
        assert!(out.status.success(), "{backend}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&want),
            "{backend}"
        );
    }
    // All of them: only the shared writable ones.
    let out = procmap(&["-ws", &pid]);
    let all = String::from_utf8(out.stdout).unwrap();
    assert!(
        all.lines().all(|l| l.split(' ').nth(1) == Some("rw-s")),
        "{all}"
    );
}

#[test]
fn main_thread_exited_lists_the_process() {
    // Its /proc/PID/maps is empty; the process's VMAs are in its other thread's.
    let (child, tid) = Child::spawn_leader_exited();
    let want = text_without_gate(&format!("/proc/{}/task/{tid}/maps", child.pid));
    assert!(!want.is_empty());
    let pid = child.pid.to_string();
    // The default backend (batches in the test VM), and the others by name.
    for backend in [&[][..], &["--backend", "ioctl"], &["--text"]] {
        let mut args = vec![pid.as_str()];
        args.extend_from_slice(backend);
        let out = procmap(&args);
        assert!(out.status.success(), "{backend:?}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&want),
            "{backend:?}"
        );
    }
}

#[test]
fn zombie_lists_nothing() {
    let z = Zombie::spawn();
    let out = procmap(&[&z.pid.to_string()]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty());
    // But its addresses are not "unmapped": there is no address space to ask.
    for args in [&["-a", "400000"][..], &["-a", "400000", "-a", "0"]] {
        let mut all = vec![z.pid.to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = procmap(&all);
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("process {} has no address space", z.pid)),
            "{err}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["x"],
        &["1", "2"],
        &["--nope", "1"],
        &["1", "--addr", "zz"],
        &["1", "--any"],
        &["1", "--backend", "nope"],
        &["1", "--backend"],
        &["+1"],
    ] {
        let out = procmap(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
    }
    let out = procmap(&["4294967295"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err,
        "procmap: no process 4294967295: cannot open /proc/4294967295/maps: No such file or \
         directory (os error 2)\n"
    );
    let out = procmap(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("procmap "));
}

fn first_vma(pid: i32, pred: impl Fn(&str) -> bool) -> (u64, String) {
    let t = String::from_utf8_lossy(&maps_text(pid)).into_owned();
    let line = t.lines().find(|l| pred(l)).unwrap().to_string();
    let start = u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap();
    (start, line)
}

#[test]
fn addresses() {
    let child = Child::spawn();
    let pid = child.pid.to_string();
    let (file, file_line) = first_vma(child.pid, |l| l.contains(" (deleted)"));
    let (anon, _) = first_vma(child.pid, |l| {
        l.contains("[anon:procmap-test]") || l.ends_with(" 0 ")
    });
    // --addr before the PID, bare hex, as the output prints it; spaces around it are
    // ignored, as on standard input.
    let a = format!("{:x}", file + 0x10);
    let out = procmap(&["--addr", &a, &pid, "-a", " 0\t"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("{:#x} {:#x} {file_line}", file + 0x10, 0x10)
    );
    assert_eq!(lines.next().unwrap(), "0x0 unmapped");
    // Filtered out is not unmapped; JSON has file_offset only for file-backed VMAs.
    let out = procmap(&[&pid, "-x", "-a", &format!("{file:#x}")]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{file:#x} not in a VMA that matches the filters\n")
    );
    let out = procmap(&[
        &pid,
        "--json",
        "-a",
        &format!("{anon:x}"),
        "-a",
        &format!("{file:x}"),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let l = lines.next().unwrap();
    let head = format!("{{\"addr\":\"{anon:#x}\",\"file_offset\":null,\"vma\":{{\"start\":");
    assert!(l.starts_with(&head), "{l}");
    let l = lines.next().unwrap();
    assert!(l.contains("\"file_offset\":\"0x0\",\"vma\":{"), "{l}");
    assert!(l.contains(" (deleted)\""), "{l}");
    // An address in no VMA has the same keys, and says why.
    let out = procmap(&[&pid, "--json", "-a", "0"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"addr\":\"0x0\",\"file_offset\":null,\"vma\":null,\"reason\":\"unmapped\"}\n"
    );
    // Short options with -a last: its value attached or next.
    let want = procmap(&[&pid, "-x", "-a", &format!("{file:x}")]).stdout;
    for args in [
        vec![pid.clone(), format!("-xa{file:x}")],
        vec![pid.clone(), "-xa".into(), format!("{file:x}")],
        vec![format!("-a{file:x}"), "-x".into(), pid.clone()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = procmap(&args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert_eq!(out.stdout, want, "{args:?}");
    }
}

#[test]
fn json_without_build_ids() {
    // The same objects, with "build_id": null, and none looked for.
    let child = Child::spawn();
    let pid = child.pid.to_string();
    let with = String::from_utf8(procmap(&["--json", &pid]).stdout).unwrap();
    let out = procmap(&["--json", "--no-build-id", &pid]);
    assert!(out.status.success(), "{out:?}");
    let without = String::from_utf8(out.stdout).unwrap();
    assert!(!without.is_empty());
    let nulled: Vec<String> = with
        .lines()
        .map(|l| match l.split_once(",\"build_id\":\"") {
            Some((head, _)) => format!("{head},\"build_id\":null}}"),
            None => l.to_string(),
        })
        .collect();
    assert_eq!(without.lines().collect::<Vec<_>>(), nulled);
    assert!(without.lines().all(|l| l.ends_with(",\"build_id\":null}")));
    // Only with --json, and not with --build-id: a usage error (2).
    for args in [
        vec!["--no-build-id", &pid],
        vec!["--json", "--build-id", "--no-build-id", &pid],
    ] {
        assert_eq!(procmap(&args).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn json_keeps_names_that_are_not_utf8() {
    let child = Child::spawn_odd_names();
    let out = procmap(&["--json", &child.pid.to_string()]);
    let text = String::from_utf8(out.stdout).unwrap();
    let l = text.lines().find(|l| l.contains("not-utf8-")).unwrap();
    assert!(l.contains("\"name_hex\":\""), "{l}");
    assert!(l.contains("6e6f742d757466382dff\""), "{l}");
    assert!(text.lines().any(|l| l.contains("/new\\nline\"")), "{text}");
}

#[test]
fn addresses_from_stdin_are_answered_line_by_line() {
    let child = Child::spawn();
    let (file, _) = first_vma(child.pid, |l| l.contains(" (deleted)"));
    let mut p = Command::new(bin())
        .args([&child.pid.to_string(), "--addr", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = p.stdin.take().unwrap();
    let mut output = BufReader::new(p.stdout.take().unwrap());
    // Each answer comes before the next question is asked (stdin still open). A line that
    // is not UTF-8 is not an address either, and the lines after it are answered.
    for (q, want) in [
        (b"0".to_vec(), b"0x0 unmapped".to_vec()),
        (format!("{file:x}").into(), format!("{file:#x} 0x0 ").into()),
        (b"nonsense".to_vec(), b"nonsense invalid".to_vec()),
        (b"\xff10".to_vec(), b"\xff10 invalid".to_vec()),
        // A blank line gets its answer too, or a coprocess would wait for it forever.
        (b"".to_vec(), b" invalid".to_vec()),
        (b" \t".to_vec(), b" invalid".to_vec()),
        (b" 0 ".to_vec(), b"0x0 unmapped".to_vec()),
    ] {
        input.write_all(&q).unwrap();
        input.write_all(b"\n").unwrap();
        input.flush().unwrap();
        let mut line = Vec::new();
        output.read_until(b'\n', &mut line).unwrap();
        assert!(
            line.starts_with(&want),
            "{:?}: {:?}",
            q.escape_ascii().to_string(),
            line.escape_ascii().to_string()
        );
    }
    drop(input);
    assert_eq!(p.wait().unwrap().code(), Some(1)); // four lines were not addresses
}

#[test]
fn a_listing_cut_short_by_exit_says_so_with_status_3() {
    // The listing blocks on a full pipe after at most a few hundred of the 2 000 long
    // lines; the process is then killed and reaped, and the rest cannot be asked for.
    // (The text backend reads the whole text first, so it is not cut here.)
    for backend in ["batch", "ioctl"] {
        if backend == "batch" && !procmap::ProcMaps::open_self().unwrap().has_extension() {
            continue;
        }
        let child = Child::spawn_many(2000);
        let mut p = Command::new(bin())
            .args([&child.pid.to_string(), "--backend", backend])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut output = BufReader::new(p.stdout.take().unwrap());
        let mut first = String::new();
        output.read_line(&mut first).unwrap();
        assert!(!first.is_empty());
        drop(child);
        let rest = output.lines().count();
        let out = p.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{backend}: {rest} lines more; {err}"
        );
        assert!(rest < 2000, "{backend}: {rest}");
        assert!(
            err.contains("has no address space any more"),
            "{backend}: {err}"
        );
    }
}

//! `procmap PID`: the VMAs of a process through PROCMAP_QUERY (in batches where the kernel
//! has the extension), in the format of `/proc/PID/maps` (or JSON), or the VMA and file
//! offset of given addresses.

use procmap::{Backend, Options, ProcMaps, Query, Vma};
use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;

const USAGE: &str = "\
Usage: procmap [OPTIONS] PID
       procmap [OPTIONS] PID --addr ADDR [--addr ADDR]...

The VMAs of process PID (or \"self\") through the PROCMAP_QUERY ioctl, in the format
of /proc/PID/maps; or, with --addr, the VMA and file offset of each address. Where the
kernel has PROCMAP_QUERY_BATCH, the listing and --addr (all addresses given) use it.

Options:
  -a, --addr ADDR    Resolve ADDR (hex, with or without 0x; also -aADDR).
                     Repeatable. \"-\" reads addresses from standard input, one per
                     line, and answers each line as soon as it is read, with one
                     line: one that is no address (a blank one too) with
                     \"LINE invalid\", and the exit status is then 1.
  -r, --readable     Only readable VMAs.
  -w, --writable     Only writable VMAs.
  -x, --executable   Only executable VMAs.
  -s, --shared       Only shared VMAs.
  -f, --file-backed  Only file-backed VMAs.
      --any          With two or more of -r, -w, -x, -s: VMAs with at least one of
                     those permissions, instead of all of them.
      --page-size    Add a page-size column before the name.
      --build-id     Add a build-ID column before the name.
      --json         One JSON object per line, with every field; with --addr,
                     {\"addr\", \"file_offset\", \"vma\"}, and \"vma\": null with a
                     \"reason\" (unmapped, filtered) for an address in no VMA.
      --no-build-id  With --json, look for no build IDs (\"build_id\": null): the
                     kernel parses none, the text backend reads no mapped file.
      --backend NAME Use NAME: batch (PROCMAP_QUERY_BATCH), ioctl (one PROCMAP_QUERY
                     per VMA) or text (parse /proc/PID/maps). Default: the first of
                     them the kernel has.
      --text         Same as --backend text.
      --show-backend At the end, print the backend that answered to standard error.
  -h, --help         Print this help.
  -V, --version      Print the version.

With --addr, one line per address: ADDR, its offset in the mapped file (\"-\" for memory
that maps no file) and the line of its VMA as listed; or \"ADDR unmapped\"; or \"ADDR not
in a VMA that matches the filters\". Their words differ in number: scripts may prefer
--json, whose keys are the same for every answer.

Reading another process's maps takes the same user and a dumpable process, or
CAP_SYS_PTRACE (checked when the file is opened); a security module (Yama, SELinux,
AppArmor) may refuse it still. A process without an address space (a zombie, a kernel
thread) lists nothing, as /proc/PID/maps; so does one that exits or calls execve()
before the first VMA is listed. Going away later in a listing, or while addresses are
resolved, is an error. A process whose main thread exited while others run is read
through one of the others (/proc/PID/task/TID/maps), as /proc/PID/maps is empty.
--backend batch fails where the kernel lacks PROCMAP_QUERY_BATCH.

Exit status: 0 on success; 3 if there is no process PID, or its address space went
away (it exited or called execve()) while it was read or asked about; 2 on a usage
error; 1 on any other error (e.g. not allowed to read the maps).
";

#[derive(Default)]
struct Args {
    pid: Option<String>,
    addrs: Vec<String>,
    query: Query,
    page_size: bool,
    build_id: bool,
    no_build_id: bool,
    json: bool,
    backend: Option<Backend>,
    show_backend: bool,
}

enum Parsed {
    Run(Args),
    Help,
    Version,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut a = Args::default();
    let mut positional = Vec::new();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let q = a.query;
        match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "-a" | "--addr" => match inline.or_else(|| it.next()) {
                Some(v) => a.addrs.push(v),
                None => return Err("--addr needs a value".into()),
            },
            "--backend" => {
                a.backend = Some(match inline.or_else(|| it.next()).as_deref() {
                    Some("batch") => Backend::Batch,
                    Some("ioctl") => Backend::Ioctl,
                    Some("text") => Backend::Text,
                    Some(v) => return Err(format!("unknown backend {v:?} (batch, ioctl, text)")),
                    None => return Err("--backend needs a value".into()),
                })
            }
            "--" => positional.extend(it.by_ref()),
            _ if inline.is_some() => return Err(format!("{flag} takes no value")),
            "--readable" => a.query = q.readable(true),
            "--writable" => a.query = q.writable(true),
            "--executable" => a.query = q.executable(true),
            "--shared" => a.query = q.shared(true),
            "--file-backed" => a.query = q.file_backed(true),
            "--page-size" => a.page_size = true,
            "--build-id" => a.build_id = true,
            "--no-build-id" => a.no_build_id = true,
            "--json" => a.json = true,
            "--text" => a.backend = Some(Backend::Text),
            "--show-backend" => a.show_backend = true,
            "--any" => a.query = q.any_perm(true),
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s if s.starts_with('-') && s.len() > 1 => {
                // Short flags, possibly together (-rx), the last one possibly -a with its
                // value attached (-rxa7f00) or next.
                for (i, c) in s.char_indices().skip(1) {
                    if c == 'a' {
                        let rest = &s[i + 1..];
                        match (!rest.is_empty())
                            .then(|| rest.to_string())
                            .or_else(|| it.next())
                        {
                            Some(v) => a.addrs.push(v),
                            None => return Err("--addr needs a value".into()),
                        }
                        break;
                    }
                    a.query = match c {
                        'r' => a.query.readable(true),
                        'w' => a.query.writable(true),
                        'x' => a.query.executable(true),
                        's' => a.query.shared(true),
                        'f' => a.query.file_backed(true),
                        _ => return Err(format!("unknown option -{c} in {s}")),
                    };
                }
            }
            _ => positional.push(arg),
        }
    }
    if a.query.any_perm_wanted() && a.query.flags() & 0xf == 0 {
        return Err("--any needs permissions (-r, -w, -x, -s)".into());
    }
    if a.no_build_id && (a.build_id || !a.json) {
        return Err("--no-build-id goes with --json, without --build-id".into());
    }
    match positional.len() {
        0 => return Err("no PID given".into()),
        1 => a.pid = positional.pop(),
        _ => return Err(format!("one PID expected, got {positional:?}")),
    }
    Ok(Parsed::Run(a))
}

fn main() -> ExitCode {
    // Like other command-line tools, die quietly when the reader of our output goes away
    // (e.g. `procmap 1 | head`), instead of reporting EPIPE.
    // SAFETY: Restoring the default disposition of SIGPIPE before any thread is started.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("procmap {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage_error(&e),
    };
    let pid = match args.pid.as_deref() {
        Some("self") => None,
        // Digits only: `u32::from_str` would take "+5" for 5.
        Some(p) => match p.parse::<u32>() {
            Ok(n) if p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return usage_error(&format!("not a PID: {p:?}")),
        },
        None => return usage_error("no PID given"),
    };
    let mut addrs = Vec::new();
    for a in &args.addrs {
        match a.trim_ascii() {
            "-" => addrs.push(None),
            s => match parse_addr(s) {
                Some(v) => addrs.push(Some(v)),
                None => return usage_error(&format!("not a hex address: {s:?}")),
            },
        }
    }
    match run(&args, pid, &addrs) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            let gone = e
                .downcast_ref::<procmap::Error>()
                .is_some_and(procmap::Error::is_gone)
                || e.downcast_ref::<io::Error>()
                    .and_then(|e| e.get_ref())
                    .and_then(|e| e.downcast_ref::<procmap::Error>())
                    .is_some_and(procmap::Error::is_gone);
            let who = args.pid.as_deref().unwrap_or("self");
            let open = e
                .downcast_ref::<procmap::Error>()
                .filter(|e| matches!(e, procmap::Error::Open { .. }))
                .and_then(procmap::Error::errno);
            // A process that is not there, or goes away, is what a profiler's scripts meet
            // all the time and skip; they can tell it from a real failure by the status.
            if open == Some(libc::ENOENT) {
                eprintln!("procmap: no process {who}: {e}");
                return ExitCode::from(3);
            } else if gone {
                eprintln!(
                    "procmap: process {who} has no address space any more (it exited or \
                     called execve()), or never had one (a kernel thread): {e}"
                );
                return ExitCode::from(3);
            } else if open == Some(libc::EACCES) {
                eprintln!(
                    "procmap: not allowed to read the maps of process {who} (that takes \
                     the same user and a dumpable process, or CAP_SYS_PTRACE, and a \
                     security module may refuse it still): {e}"
                );
            } else {
                eprintln!("procmap: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("procmap: {msg}\nTry 'procmap --help'.");
    ExitCode::from(2)
}

/// Runs; `Ok(false)` if some input line was not an address.
fn run(
    args: &Args,
    pid: Option<u32>,
    addrs: &[Option<u64>],
) -> Result<bool, Box<dyn std::error::Error>> {
    let mut opts = Options::new();
    if let Some(b) = args.backend {
        opts = opts.backend(b);
    }
    let maps = match pid {
        Some(p) => opts.open(p)?,
        None => opts.open_self()?,
    };
    // A backend asked for by name must be there: the library would go on with single
    // queries where the kernel lacks batches, and say so only in `backend()`.
    if args.backend == Some(Backend::Batch) && !maps.has_extension() {
        return Err("--backend batch: the kernel lacks PROCMAP_QUERY_BATCH".into());
    }
    let query = args
        .query
        .name(true)
        .build_id((args.build_id || args.json) && !args.no_build_id);
    let p = Printer {
        args,
        maps: &maps,
        query,
    };
    if maps.backend() == Backend::Text && args.page_size && !args.json {
        eprintln!("procmap: the text backend has no page sizes: printed as -");
    }
    let mut out = BufWriter::new(io::stdout().lock());
    let ok = answer(&p, &mut out, addrs)?;
    if args.show_backend {
        // At the end: a handle that lost the batch extension on the way says so.
        let name = match maps.backend() {
            Backend::Batch => "batch",
            Backend::Ioctl => "ioctl",
            Backend::Text => "text",
            _ => "other",
        };
        eprintln!("procmap: backend: {name}");
    }
    Ok(ok)
}

/// Lists the VMAs, or answers the addresses; `Ok(false)` if some input line was not an
/// address.
fn answer(
    p: &Printer<'_>,
    out: &mut impl Write,
    addrs: &[Option<u64>],
) -> Result<bool, Box<dyn std::error::Error>> {
    let (args, maps, query) = (p.args, p.maps, p.query);
    if addrs.is_empty() {
        let mut listed = false;
        for vma in maps.iter(query) {
            match vma {
                Ok(v) => {
                    p.vma(out, &v, None)?;
                    listed = true;
                }
                // As `cat`: nothing, for a process without an address space. One that goes
                // away during the listing is an error: the listing is cut short.
                Err(e) if e.is_gone() && !listed => break,
                Err(e) => {
                    out.flush()?;
                    return Err(e.into());
                }
            }
        }
        out.flush()?;
        return Ok(true);
    }
    if addrs.iter().all(Option::is_some) {
        // All at once: batches, or one query per VMA.
        let addrs: Vec<u64> = addrs.iter().flatten().copied().collect();
        let r = maps.resolve(&addrs, query)?;
        // For the addresses not found, whether they are mapped at all.
        let missed: Vec<u64> = (0..addrs.len())
            .filter(|&i| r.addrs[i].is_none())
            .map(|i| addrs[i])
            .collect();
        let mapped = if query.filters() && !missed.is_empty() {
            maps.resolve(&missed, Query::new())?
                .addrs
                .iter()
                .map(Option::is_some)
                .collect()
        } else {
            vec![false; missed.len()]
        };
        let mut mapped = mapped.into_iter();
        for (i, &a) in addrs.iter().enumerate() {
            match r.get(i) {
                Some((v, _)) => p.vma(out, v, Some(a))?,
                None => p.missing(out, a, mapped.next().unwrap_or(false))?,
            }
        }
        out.flush()?;
        return Ok(true);
    }
    // In order, answering each line of standard input as it comes (a coprocess).
    let mut ok = true;
    for a in addrs {
        match a {
            Some(a) => p.one(out, *a)?,
            None => {
                // Lines as bytes: one that is not UTF-8 is answered as invalid, as any
                // other line that is not an address, and the rest are still answered.
                for line in io::stdin().lock().split(b'\n') {
                    let line = line?;
                    // A blank line too is answered (as invalid): a coprocess waits for a line
                    // per line it writes.
                    let s = line.trim_ascii();
                    match std::str::from_utf8(s).ok().and_then(parse_addr) {
                        Some(a) => p.one(out, a)?,
                        None => {
                            ok = false;
                            if args.json {
                                writeln!(
                                    out,
                                    "{{\"input\":{},\"error\":\"not a hex address\"}}",
                                    json_str(s)
                                )?;
                            } else {
                                out.write_all(s)?;
                                writeln!(out, " invalid")?;
                            }
                        }
                    }
                    out.flush()?;
                }
            }
        }
    }
    out.flush()?;
    Ok(ok)
}

/// Hex, with or without `0x`, as the output prints addresses.
fn parse_addr(s: &str) -> Option<u64> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(h, 16).ok()
}

struct Printer<'a> {
    args: &'a Args,
    maps: &'a ProcMaps,
    query: Query,
}

impl Printer<'_> {
    /// One address, on its own: one query (and one more if filtered out, to say whether it
    /// is mapped at all).
    fn one(&self, out: &mut impl Write, addr: u64) -> io::Result<()> {
        let found = self.maps.query(addr, self.query).map_err(io::Error::from)?;
        match found {
            Some(v) => self.vma(out, &v, Some(addr)),
            None => {
                let mapped = self.query.filters()
                    && self
                        .maps
                        .query(addr, Query::new())
                        .map_err(io::Error::from)?
                        .is_some();
                self.missing(out, addr, mapped)
            }
        }
    }

    fn missing(&self, out: &mut impl Write, addr: u64, mapped: bool) -> io::Result<()> {
        let why = if mapped { "filtered" } else { "unmapped" };
        if self.args.json {
            writeln!(
                out,
                "{{\"addr\":\"{addr:#x}\",\"file_offset\":null,\"vma\":null,\"reason\":\"{why}\"}}"
            )
        } else if mapped {
            writeln!(out, "{addr:#x} not in a VMA that matches the filters")
        } else {
            writeln!(out, "{addr:#x} unmapped")
        }
    }

    fn vma(&self, out: &mut impl Write, v: &Vma, addr: Option<u64>) -> io::Result<()> {
        if self.args.json {
            return self.json(out, v, addr);
        }
        let mut line = Vec::with_capacity(160);
        if let Some(a) = addr {
            write!(line, "{a:#x} ")?;
            match v.file_offset(a) {
                Some(o) => write!(line, "{o:#x} ")?,
                None => line.extend_from_slice(b"- "),
            }
        }
        let start = line.len();
        // As the kernel's show_vma_header_prefix() and show_map_vma() print it.
        write!(
            line,
            "{:08x}-{:08x} {} {:08x} {:02x}:{:02x} {} ",
            v.start, v.end, v.perms, v.offset, v.dev_major, v.dev_minor, v.inode
        )?;
        if self.args.page_size {
            match v.page_size {
                Some(p) => write!(line, "{p} ")?,
                None => line.extend_from_slice(b"- "),
            }
        }
        if self.args.build_id {
            match &v.build_id {
                Some(b) => write!(line, "{} ", hex(b))?,
                None => line.extend_from_slice(b"- "),
            }
        }
        if let Some(name) = &v.name {
            // seq_setwidth(m, 25 + sizeof(void *) * 6 - 1), then seq_pad(m, ' ').
            let width = start + 72;
            if line.len() < width {
                line.resize(width, b' ');
            }
            line.push(b' ');
            // seq_path(m, path, "\n"): a newline is the one byte escaped.
            for &b in name {
                if b == b'\n' {
                    line.extend_from_slice(b"\\012");
                } else {
                    line.push(b);
                }
            }
        }
        line.push(b'\n');
        out.write_all(&line)
    }

    /// A VMA as a JSON object; for an address, the address, its file offset and the VMA, in
    /// the shape of an address that is in no VMA.
    fn json(&self, out: &mut impl Write, v: &Vma, addr: Option<u64>) -> io::Result<()> {
        let vma = json_vma(v);
        match addr {
            None => writeln!(out, "{vma}"),
            Some(a) => {
                let off = v
                    .file_offset(a)
                    .map_or("null".into(), |o| format!("\"{o:#x}\""));
                writeln!(
                    out,
                    "{{\"addr\":\"{a:#x}\",\"file_offset\":{off},\"vma\":{vma}}}"
                )
            }
        }
    }
}

/// A VMA as a JSON object, every field.
fn json_vma(v: &Vma) -> String {
    let mut s = String::with_capacity(256);
    s.push('{');
    s += &format!(
        "\"start\":\"{:#x}\",\"end\":\"{:#x}\",\"perms\":\"{}\",\"offset\":\"{:#x}\",\
             \"dev\":\"{:02x}:{:02x}\",\"inode\":{},\"page_size\":{},\"name\":",
        v.start,
        v.end,
        v.perms,
        v.offset,
        v.dev_major,
        v.dev_minor,
        v.inode,
        v.page_size.map_or("null".into(), |p| p.to_string()),
    );
    match &v.name {
        None => s += "null",
        Some(n) => {
            s += &json_str(n);
            // Lossless for names that are not UTF-8: the bytes, in hex.
            if std::str::from_utf8(n).is_err() {
                s += &format!(",\"name_hex\":\"{}\"", hex(n));
            }
        }
    }
    s += ",\"build_id\":";
    match &v.build_id {
        Some(b) => s += &format!("\"{}\"", hex(b)),
        None => s += "null",
    }
    s.push('}');
    s
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A JSON string of the bytes, lossily as UTF-8 (see `name_hex`).
fn json_str(b: &[u8]) -> String {
    let mut o = String::from("\"");
    for c in String::from_utf8_lossy(b).chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Result<Parsed, String> {
        parse_args(s.iter().map(|s| s.to_string()))
    }

    #[test]
    fn addr_does_not_swallow_the_pid() {
        let Ok(Parsed::Run(a)) = args(&["--addr", "7f00", "1234", "-a", "0x10", "-rx"]) else {
            panic!()
        };
        assert_eq!(a.pid.as_deref(), Some("1234"));
        assert_eq!(a.addrs, ["7f00", "0x10"]);
        assert!(a.query.filters());
        assert!(args(&["1", "2"]).is_err());
        assert!(args(&["--addr"]).is_err());
        assert!(args(&["--bogus", "1"]).is_err());
    }

    #[test]
    fn addresses_are_hex() {
        assert_eq!(parse_addr("10"), Some(0x10));
        assert_eq!(parse_addr("0x7fff0000"), Some(0x7fff_0000));
        assert_eq!(parse_addr("ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_addr("1ffffffffffffffff"), None);
        assert_eq!(parse_addr("+1"), None);
        assert_eq!(parse_addr("0x"), None);
    }

    #[test]
    fn json_strings() {
        assert_eq!(json_str(b"a\"\\\n\x01"), r#""a\"\\\n\u0001""#);
    }
}

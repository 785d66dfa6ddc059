//! `procmap PID`: the VMAs of a process through PROCMAP_QUERY, one per line, or the VMA and
//! file offset of given addresses.

use clap::Parser;
use procmap::{Backend, ProcMaps, Query, Vma};
use std::io::{BufRead, Write};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "procmap", about = "VMAs of a process through PROCMAP_QUERY")]
struct Args {
    /// Process ID, or "self".
    pid: String,
    /// Resolve these addresses (hex with 0x, or decimal) to VMA and file offset; "-" reads
    /// them from standard input, one per line.
    #[arg(long, num_args = 1..)]
    addr: Vec<String>,
    /// Only readable VMAs.
    #[arg(short = 'r', long)]
    readable: bool,
    /// Only writable VMAs.
    #[arg(short = 'w', long)]
    writable: bool,
    /// Only executable VMAs.
    #[arg(short = 'x', long)]
    executable: bool,
    /// Only shared VMAs.
    #[arg(short = 's', long)]
    shared: bool,
    /// Only file-backed VMAs.
    #[arg(long)]
    file_backed: bool,
    /// Print JSON (one object per line).
    #[arg(long)]
    json: bool,
    /// Parse the text of /proc/PID/maps instead of using the ioctl.
    #[arg(long)]
    text: bool,
}

fn main() -> ExitCode {
    // Like other command-line tools, die quietly when the reader of our output goes away
    // (e.g. `procmap 1 | head`), instead of reporting EPIPE.
    // SAFETY: Restoring the default disposition of SIGPIPE before any thread is started.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("procmap: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let mut maps = if args.pid == "self" {
        ProcMaps::open_self()
    } else {
        let pid: u32 = args
            .pid
            .parse()
            .map_err(|_| format!("not a pid: {:?}", args.pid))?;
        ProcMaps::open(pid)
    }
    .map_err(|e| e.to_string())?;
    if args.text {
        maps.set_backend(Backend::Text);
    }
    let query = Query::new()
        .readable(args.readable)
        .writable(args.writable)
        .executable(args.executable)
        .shared(args.shared)
        .file_backed(args.file_backed)
        .name(true)
        .build_id(true);
    let out = std::io::stdout();
    let mut out = out.lock();

    if args.addr.is_empty() {
        for vma in maps.iter(query) {
            let vma = vma.map_err(|e| e.to_string())?;
            print_vma(&mut out, args.json, &vma, None).map_err(|e| e.to_string())?;
        }
        return Ok(());
    }

    let mut addrs = Vec::new();
    for a in &args.addr {
        if a == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line.map_err(|e| e.to_string())?;
                if !line.trim().is_empty() {
                    addrs.push(parse_addr(line.trim())?);
                }
            }
        } else {
            addrs.push(parse_addr(a)?);
        }
    }
    let resolved = maps.resolve(&addrs, query).map_err(|e| e.to_string())?;
    for (i, addr) in addrs.iter().enumerate() {
        match resolved.get(i) {
            Some((v, loc)) => print_vma(
                &mut out,
                args.json,
                v,
                Some((*addr, loc.file_offset.unwrap_or(0))),
            ),
            None if args.json => writeln!(out, "{{\"addr\":\"{addr:#x}\",\"vma\":null}}"),
            None => writeln!(out, "{addr:#x} unmapped"),
        }
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn parse_addr(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("not an address: {s:?}"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn print_vma(
    out: &mut impl Write,
    json: bool,
    v: &Vma,
    addr: Option<(u64, u64)>,
) -> std::io::Result<()> {
    let name = v.name_lossy();
    let build_id = v.build_id.as_deref().map(hex).unwrap_or_default();
    let page = v
        .page_size
        .map(|p| p.to_string())
        .unwrap_or_else(|| "-".into());
    if json {
        let a = addr
            .map(|(a, r)| format!("\"addr\":\"{a:#x}\",\"file_offset\":\"{:#x}\",", r))
            .unwrap_or_default();
        writeln!(
            out,
            "{{{a}\"start\":\"{:#x}\",\"end\":\"{:#x}\",\"perms\":\"{}\",\"offset\":\"{:#x}\",\
             \"dev\":\"{:02x}:{:02x}\",\"inode\":{},\"page_size\":{},\"name\":{},\"build_id\":{}}}",
            v.start,
            v.end,
            v.perms,
            v.offset,
            v.dev_major,
            v.dev_minor,
            v.inode,
            v.page_size
                .map(|p| p.to_string())
                .unwrap_or_else(|| "null".into()),
            json_str(&name),
            if build_id.is_empty() {
                "null".into()
            } else {
                json_str(&build_id)
            },
        )
    } else {
        if let Some((a, r)) = addr {
            write!(out, "{a:#x} +{:#x} ", r)?;
        }
        writeln!(
            out,
            "{:08x}-{:08x} {} {:08x} {:02x}:{:02x} {} {} {} {}",
            v.start,
            v.end,
            v.perms,
            v.offset,
            v.dev_major,
            v.dev_minor,
            v.inode,
            page,
            name,
            build_id
        )
    }
}

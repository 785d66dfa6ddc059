//! The text of `/proc/<pid>/maps`, parsed into the same [`Vma`] type.

use crate::buildid::BuildIds;
use crate::{matches, Error, Perms, Query, Result, Vma};
use std::io;

/// Parses the whole text of a maps file, in its order. Names are unescaped (a newline is
/// shown as `\\012` in the text).
///
/// ```
/// let v = procmap::parse_maps(b"00400000-00401000 r-xp 00001000 08:01 42   /bin/a\\012b\n")?;
/// assert_eq!((v[0].start, v[0].end, v[0].offset, v[0].inode), (0x400000, 0x401000, 0x1000, 42));
/// assert_eq!(v[0].perms.to_string(), "r-xp");
/// assert_eq!(v[0].name.as_deref(), Some(&b"/bin/a\nb"[..]));
/// # Ok::<(), procmap::Error>(())
/// ```
pub fn parse_maps(text: &[u8]) -> Result<Vec<Vma>> {
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(parse_line)
        .collect()
}

fn field<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let s = rest.iter().position(|&b| b != b' ')?;
    let t = &rest[s..];
    let e = t.iter().position(|&b| b == b' ').unwrap_or(t.len());
    *rest = &t[e..];
    Some(&t[..e])
}

fn hex(b: &[u8]) -> Option<u64> {
    u64::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok()
}

/// `start-end perms offset major:minor inode [name]`
fn parse_line(line: &[u8]) -> Result<Vma> {
    let bad = || Error::Parse {
        line: String::from_utf8_lossy(line).into_owned(),
    };
    let mut rest = line;
    let range = field(&mut rest).ok_or_else(bad)?;
    let dash = range.iter().position(|&b| b == b'-').ok_or_else(bad)?;
    let start = hex(&range[..dash]).ok_or_else(bad)?;
    let end = hex(&range[dash + 1..]).ok_or_else(bad)?;
    if end < start {
        return Err(bad());
    }
    let perms = field(&mut rest).ok_or_else(bad)?;
    if perms.len() != 4 {
        return Err(bad());
    }
    let offset = hex(field(&mut rest).ok_or_else(bad)?).ok_or_else(bad)?;
    let dev = field(&mut rest).ok_or_else(bad)?;
    let colon = dev.iter().position(|&b| b == b':').ok_or_else(bad)?;
    let dev_major = u32::try_from(hex(&dev[..colon]).ok_or_else(bad)?).map_err(|_| bad())?;
    let dev_minor = u32::try_from(hex(&dev[colon + 1..]).ok_or_else(bad)?).map_err(|_| bad())?;
    let inode = std::str::from_utf8(field(&mut rest).ok_or_else(bad)?)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    // The name is the rest after the padding; it may contain spaces.
    let name_start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    let name = &rest[name_start..];
    Ok(Vma {
        start,
        end,
        perms: Perms {
            read: perms[0] == b'r',
            write: perms[1] == b'w',
            exec: perms[2] == b'x',
            shared: perms[3] == b's',
        },
        offset,
        dev_major,
        dev_minor,
        inode,
        page_size: None,
        name: (!name.is_empty()).then(|| unescape(name)),
        build_id: None,
    })
}

/// Undoes the one escape of the maps text: a newline in a path is shown as `\012`
/// (`seq_path(m, path, "\n")`); the ioctl gives it raw. The kernel does not escape a
/// backslash, so a name that holds `\012` literally reads as a newline: the text is ambiguous.
fn unescape(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut rest = name;
    while let Some(&b) = rest.first() {
        if rest.starts_with(b"\\012") {
            out.push(b'\n');
            rest = &rest[4..];
        } else {
            out.push(b);
            rest = &rest[1..];
        }
    }
    out
}

/// Reads a whole maps text with `read_at` (a `pread`): its bytes, and whether the address
/// space went away during the reads, in which case they are only the complete lines read
/// before. An error for which [`Error::is_gone`] holds if it had gone before the first read.
///
/// The text of an address space without users is empty, so an end of the text cannot tell
/// whether the process went away during the reads: the text from its start, once more. A
/// live address space has VMAs (at least its stack), and one without users never gets them
/// back, so if this finds some, no read was cut. A read may also fail with `ESRCH` once the
/// task is gone (reaped, or the thread of a `task/<tid>/maps` exited).
pub(crate) fn read_whole(
    mut read_at: impl FnMut(&mut [u8], u64) -> io::Result<usize>,
) -> Result<(Vec<u8>, bool)> {
    let mut s = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut cut = loop {
        match read_at(&mut buf, s.len() as u64) {
            Ok(0) => break false,
            Ok(n) => s.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) && !s.is_empty() => break true,
            Err(e) => return Err(Error::os("read", e)),
        }
    };
    if s.is_empty() {
        return Err(Error::gone("read"));
    }
    cut = cut || is_empty(&mut read_at)?;
    if cut {
        // Only whole lines: what follows the last newline may be the start of one.
        let whole = s.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        s.truncate(whole);
    }
    Ok((s, cut))
}

/// Whether a maps text is empty now, as `read_at` reads it (one byte of its start); a read
/// that fails with `ESRCH` says yes.
pub(crate) fn is_empty(
    mut read_at: impl FnMut(&mut [u8], u64) -> io::Result<usize>,
) -> Result<bool> {
    let mut first = [0u8];
    loop {
        match read_at(&mut first, 0) {
            Ok(n) => return Ok(n == 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(true),
            Err(e) => return Err(Error::os("read", e)),
        }
    }
}

/// The parsed text of a maps file, in the kernel's order (by address, without overlaps),
/// for lookups. They read the VMAs only through [`Snapshot::get`], which the tests count: a
/// linear scan per lookup, which makes a walk quadratic, shows as a count that grows with
/// the square of the number of VMAs.
#[derive(Debug)]
pub(crate) struct Snapshot {
    vmas: Vec<Vma>,
}

impl Snapshot {
    /// Parses the text (see [`parse_maps`]).
    pub(crate) fn parse(text: &[u8]) -> Result<Self> {
        Ok(Snapshot {
            vmas: parse_maps(text)?,
        })
    }

    /// The `i`th VMA.
    pub(crate) fn get(&self, i: usize) -> Option<&Vma> {
        #[cfg(test)]
        crate::tests::probe();
        self.vmas.get(i)
    }

    /// The index of the first VMA from `from` on that ends above `addr` (the number of VMAs
    /// if none does): an exponential search from `from`, then a binary search, so
    /// `O(log d)` reads for an answer `d` VMAs on. A walk, which asks from where its last
    /// answer was, reads `O(1)` VMAs per step.
    pub(crate) fn first_ending_above(&self, from: usize, addr: u64) -> usize {
        let below = |i: usize| self.get(i).is_some_and(|v| v.end <= addr);
        let len = self.vmas.len();
        // The answer is in lo..=hi.
        let mut lo = from.min(len);
        let mut step = 1usize;
        let mut hi = loop {
            let i = lo.saturating_add(step - 1);
            if i >= len {
                break len;
            }
            if !below(i) {
                break i;
            }
            lo = i + 1;
            step = step.saturating_mul(2);
        };
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if below(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The kernel's query, over the VMAs from `from` on: the index of the first VMA ending
    /// above `addr` that passes the filters, covering `addr` or, with `COVERING_OR_NEXT_VMA`,
    /// above it. The search above, then a scan only over VMAs the filters reject. The gate
    /// VMA (`[vsyscall]`) is not in the kernel's VMA tree and is never answered.
    pub(crate) fn query(&self, from: usize, addr: u64, q: Query) -> Option<usize> {
        let or_next = q.flags() & crate::abi::COVERING_OR_NEXT_VMA != 0;
        let mut i = self.first_ending_above(from, addr);
        while let Some(vma) = self.get(i) {
            if vma.name.as_deref() == Some(b"[vsyscall]") {
                return None;
            }
            if matches(vma, &q) && (or_next || vma.start <= addr) {
                return Some(i);
            }
            if !or_next {
                return None;
            }
            i += 1;
        }
        None
    }
}

/// A parsed VMA of `snap` as a query answers it: the name and build ID only if asked for.
pub(crate) fn answer(snap: &Snapshot, v: &Vma, q: Query, ids: &mut BuildIds) -> Vma {
    Vma {
        start: v.start,
        end: v.end,
        perms: v.perms,
        offset: v.offset,
        dev_major: v.dev_major,
        dev_minor: v.dev_minor,
        inode: v.inode,
        page_size: None,
        name: if q.name_wanted() {
            v.name.clone()
        } else {
            None
        },
        build_id: if q.build_id_wanted() {
            ids.of_in(v, &snap.vmas)
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A maps file as `read_whole()` reads it: `text` while `alive` says so, then nothing
    /// (the address space gone), or `ESRCH` once `reaped`; reads of at most `chunk` bytes.
    struct Fake<'a> {
        text: &'a [u8],
        chunk: usize,
        /// Reads that see the text; every later one sees it empty.
        alive: usize,
        /// Reads after which a read fails with `ESRCH`.
        reaped: usize,
        reads: usize,
    }

    impl Fake<'_> {
        fn read_at(&mut self, buf: &mut [u8], off: u64) -> io::Result<usize> {
            self.reads += 1;
            if self.reads == 2 {
                return Err(io::Error::from_raw_os_error(libc::EINTR));
            }
            if self.reads > self.reaped {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            if self.reads > self.alive {
                return Ok(0);
            }
            let rest = self.text.get(off as usize..).unwrap_or_default();
            let n = rest.len().min(buf.len()).min(self.chunk);
            buf[..n].copy_from_slice(&rest[..n]);
            Ok(n)
        }
    }

    #[test]
    fn a_text_cut_short_keeps_its_whole_lines_and_says_so() {
        let text = b"1000-2000 r--p 0 0:0 0\n3000-4000 r--p 0 0:0 0 [heap]\n5000-6000 r-";
        let read = |chunk, alive, reaped| {
            let mut f = Fake {
                text,
                chunk,
                alive,
                reaped,
                reads: 0,
            };
            read_whole(|b, o| f.read_at(b, o))
        };
        // Whole: read in chunks to the end (one read interrupted), the start still there.
        let (s, cut) = read(16, usize::MAX, usize::MAX).unwrap();
        assert_eq!((&s[..], cut), (&text[..], false));
        // Gone after some reads: the whole lines read before, and cut.
        let lines = &text[..text.iter().rposition(|&b| b == b'\n').unwrap() + 1];
        for (alive, reaped) in [(4, usize::MAX), (4, 4), (usize::MAX, 4)] {
            let (s, cut) = read(24, alive, reaped).unwrap();
            assert!(cut, "{alive} {reaped}");
            assert!(lines.starts_with(&s), "{:?}", String::from_utf8_lossy(&s));
            assert_eq!(s.last().copied().unwrap_or(b'\n'), b'\n');
        }
        // Everything read, then gone: the text is whole but cannot be trusted to be.
        let (s, cut) = read(4096, 3, usize::MAX).unwrap();
        assert_eq!((&s[..], cut), (lines, true));
        // Gone before the first read: an error, whether empty or ESRCH.
        for (alive, reaped) in [(0, usize::MAX), (0, 0)] {
            let e = read(16, alive, reaped).unwrap_err();
            assert!(e.is_gone(), "{e}");
        }
    }

    #[test]
    fn parses_lines() {
        let t =
            b"00400000-00401000 r--p 00000000 00:03 12                                 /work/a b\n\
7ffd02c8d000-7ffd02cae000 rw-p 00000000 00:00 0                          [stack]\n\
7f0000000000-7f0000001000 rw-s 00001000 fd:01 1234\n";
        let v = parse_maps(t).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].start, 0x400000);
        assert_eq!(v[0].name.as_deref(), Some(&b"/work/a b"[..]));
        assert_eq!(v[0].inode, 12);
        assert_eq!(v[1].name.as_deref(), Some(&b"[stack]"[..]));
        assert!(v[2].perms.shared && v[2].perms.write && !v[2].perms.exec);
        assert_eq!(
            (v[2].dev_major, v[2].dev_minor, v[2].offset),
            (0xfd, 1, 0x1000)
        );
        assert_eq!(v[2].name, None);
    }

    #[test]
    fn unescapes_newlines() {
        let v = parse_maps(b"1000-2000 r--p 0 0:0 1 /a\\012b\\01 \\\\012 (deleted)\n").unwrap();
        assert_eq!(v[0].name.as_deref(), Some(&b"/a\nb\\01 \\\n (deleted)"[..]));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_maps(b"hello world\n").is_err());
        assert!(parse_maps(b"1000-2000 rw 0 0:0 0\n").is_err());
        assert!(parse_maps(b"2000-1000 rw-p 0 0:0 0\n").is_err());
        assert!(parse_maps(b"1000-2000 rw-p 0 100000000:0 0\n").is_err());
    }
}

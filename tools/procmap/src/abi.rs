//! The kernel ABI: `struct procmap_query` and its flags come from `linux-raw-sys` (generated
//! from the kernel headers); the ioctl number is not there and is computed here. A test
//! checks all of it against `<linux/fs.h>` by compiling a C program. None of it is public:
//! `linux-raw-sys` can be updated without a breaking change here.

pub(crate) use linux_raw_sys::general::procmap_query;
use linux_raw_sys::general::procmap_query_flags as f;

/// `PROCMAP_QUERY_VMA_READABLE`.
pub const VMA_READABLE: u64 = f::PROCMAP_QUERY_VMA_READABLE as u64;
/// `PROCMAP_QUERY_VMA_WRITABLE`.
pub const VMA_WRITABLE: u64 = f::PROCMAP_QUERY_VMA_WRITABLE as u64;
/// `PROCMAP_QUERY_VMA_EXECUTABLE`.
pub const VMA_EXECUTABLE: u64 = f::PROCMAP_QUERY_VMA_EXECUTABLE as u64;
/// `PROCMAP_QUERY_VMA_SHARED`.
pub const VMA_SHARED: u64 = f::PROCMAP_QUERY_VMA_SHARED as u64;
/// `PROCMAP_QUERY_COVERING_OR_NEXT_VMA`.
pub const COVERING_OR_NEXT_VMA: u64 = f::PROCMAP_QUERY_COVERING_OR_NEXT_VMA as u64;
/// `PROCMAP_QUERY_FILE_BACKED_VMA`.
pub const FILE_BACKED_VMA: u64 = f::PROCMAP_QUERY_FILE_BACKED_VMA as u64;

/// `sizeof(struct procmap_query)` in the ABI this crate was built for. It is passed as `size`:
/// a newer kernel accepts it (zero-extends), an older one with a shorter struct answers only
/// its fields and leaves the rest as we set it (zero).
pub const QUERY_SIZE: usize = core::mem::size_of::<procmap_query>();

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `PROCMAP_QUERY`: `_IOWR('f', 17, struct procmap_query)` (x86 and most architectures'
/// generic ioctl encoding).
pub const PROCMAP_QUERY: u32 = ((IOC_READ | IOC_WRITE) << IOC_DIRSHIFT)
    | ((QUERY_SIZE as u32) << IOC_SIZESHIFT)
    | ((b'f' as u32) << IOC_TYPESHIFT)
    | (17 << IOC_NRSHIFT);

/// A zeroed query of this crate's size.
pub fn new_query() -> procmap_query {
    procmap_query {
        size: QUERY_SIZE as u64,
        query_flags: 0,
        query_addr: 0,
        vma_start: 0,
        vma_end: 0,
        vma_flags: 0,
        vma_page_size: 0,
        vma_offset: 0,
        inode: 0,
        dev_major: 0,
        dev_minor: 0,
        vma_name_size: 0,
        build_id_size: 0,
        vma_name_addr: 0,
        build_id_addr: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// The UAPI headers to check against: `$PROCMAP_UAPI_INCLUDE`; the project's kernel build
    /// (`$KBUILD/usr/include`, or `$PROCMAP_CACHE/build/usr/include` with the cache in
    /// `~/.cache/procmap-query` by default), made by `tools/kernel/build`; else the system's
    /// `/usr/include` if its `<linux/fs.h>` has `struct procmap_query` (Linux 6.11 headers).
    fn uapi_include() -> Result<String, String> {
        let has_query = |inc: &str| {
            std::fs::read_to_string(format!("{inc}/linux/fs.h"))
                .is_ok_and(|h| h.contains("struct procmap_query {"))
        };
        if let Ok(p) = std::env::var("PROCMAP_UAPI_INCLUDE") {
            return Ok(p); // asked for: fail loudly if it is not usable
        }
        let mut tried = Vec::new();
        if let Ok(k) = std::env::var("KBUILD") {
            tried.push(format!("{k}/usr/include"));
        }
        let cache = std::env::var("PROCMAP_CACHE").ok().or_else(|| {
            std::env::var("HOME")
                .ok()
                .map(|h| format!("{h}/.cache/procmap-query"))
        });
        if let Some(c) = cache {
            tried.push(format!("{c}/build/usr/include"));
        }
        tried.push("/usr/include".into());
        for inc in &tried {
            if has_query(inc) {
                return Ok(inc.clone());
            }
        }
        Err(format!(
            "no <linux/fs.h> with struct procmap_query in {}",
            tried.join(", ")
        ))
    }

    #[test]
    fn abi_matches_the_kernel_headers() {
        let inc = match uapi_include() {
            Ok(inc) => inc,
            Err(why) => {
                eprintln!("SKIPPED abi_matches_the_kernel_headers: {why}");
                return;
            }
        };
        if Command::new("cc").arg("--version").output().is_err() {
            eprintln!("SKIPPED abi_matches_the_kernel_headers: no C compiler (cc)");
            return;
        }
        assert!(
            Path::new(&format!("{inc}/linux/fs.h")).exists(),
            "no linux/fs.h in PROCMAP_UAPI_INCLUDE={inc}"
        );
        eprintln!("checking against {inc}/linux/fs.h");
        let dir = std::env::temp_dir().join(format!("procmap-abi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("abi.c");
        std::fs::write(
        &src,
        r#"#include <stdio.h>
#include <stddef.h>
#include <linux/fs.h>
#define F(f) printf(#f " %zu %zu\n", offsetof(struct procmap_query, f), sizeof(((struct procmap_query *)0)->f))
int main(void) {
	printf("PROCMAP_QUERY %lu\n", (unsigned long)PROCMAP_QUERY);
	printf("size %zu\n", sizeof(struct procmap_query));
	printf("flags %d %d %d %d %d %d\n", PROCMAP_QUERY_VMA_READABLE, PROCMAP_QUERY_VMA_WRITABLE,
	       PROCMAP_QUERY_VMA_EXECUTABLE, PROCMAP_QUERY_VMA_SHARED,
	       PROCMAP_QUERY_COVERING_OR_NEXT_VMA, PROCMAP_QUERY_FILE_BACKED_VMA);
	F(size); F(query_flags); F(query_addr); F(vma_start); F(vma_end); F(vma_flags);
	F(vma_page_size); F(vma_offset); F(inode); F(dev_major); F(dev_minor);
	F(vma_name_size); F(build_id_size); F(vma_name_addr); F(build_id_addr);
	return 0;
}
"#,
    )
    .unwrap();
        let exe = dir.join("abi");
        let st = Command::new("cc")
            .args(["-isystem", &inc, "-o"])
            .arg(&exe)
            .arg(&src)
            .status()
            .unwrap();
        assert!(st.success(), "cc failed on the headers in {inc}");
        let out = String::from_utf8(Command::new(&exe).output().unwrap().stdout).unwrap();

        let q = new_query();
        let base = &q as *const _ as usize;
        let f = |p: *const u8, s: usize| format!("{} {}", p as usize - base, s);
        let mut want = vec![
            format!("PROCMAP_QUERY {}", PROCMAP_QUERY),
            format!("size {}", QUERY_SIZE),
            format!(
                "flags {} {} {} {} {} {}",
                VMA_READABLE,
                VMA_WRITABLE,
                VMA_EXECUTABLE,
                VMA_SHARED,
                COVERING_OR_NEXT_VMA,
                FILE_BACKED_VMA
            ),
        ];
        macro_rules! field {
        ($($n:ident),*) => {$(
            want.push(format!("{} {}", stringify!($n),
                f(std::ptr::addr_of!(q.$n).cast(), std::mem::size_of_val(&q.$n))));
        )*};
    }
        field!(
            size,
            query_flags,
            query_addr,
            vma_start,
            vma_end,
            vma_flags,
            vma_page_size,
            vma_offset,
            inode,
            dev_major,
            dev_minor,
            vma_name_size,
            build_id_size,
            vma_name_addr,
            build_id_addr
        );
        assert_eq!(out.lines().collect::<Vec<_>>(), want);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ioctl_number_matches_the_documented_value() {
        // include/uapi/linux/fs.h and every user (blazesym, libbpf) agree on this value.
        assert_eq!(PROCMAP_QUERY, 0xC068_6611);
        assert_eq!(QUERY_SIZE, 104);
    }
}

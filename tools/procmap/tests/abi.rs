//! The hand-made parts of the ABI (the ioctl number) and the struct from linux-raw-sys,
//! checked against the pinned kernel's include/uapi/linux/fs.h by compiling a C program.
//!
//! The headers are taken from $PROCMAP_UAPI_INCLUDE, or the kernel build in the project's
//! cache ($PROCMAP_CACHE/build/usr/include); `tools/kernel/build` makes them.

use std::process::Command;

fn uapi_include() -> String {
    if let Ok(p) = std::env::var("PROCMAP_UAPI_INCLUDE") {
        return p;
    }
    let cache = std::env::var("PROCMAP_CACHE")
        .unwrap_or_else(|_| format!("{}/.cache/procmap-query", std::env::var("HOME").unwrap()));
    format!("{cache}/build/usr/include")
}

#[test]
fn abi_matches_pinned_kernel_headers() {
    let inc = uapi_include();
    assert!(
        std::path::Path::new(&format!("{inc}/linux/fs.h")).exists(),
        "no kernel UAPI headers at {inc}: run tools/kernel/build or set PROCMAP_UAPI_INCLUDE"
    );
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
    assert!(st.success());
    let out = String::from_utf8(Command::new(&exe).output().unwrap().stdout).unwrap();

    use procmap::abi::*;
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

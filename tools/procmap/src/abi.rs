//! The kernel ABI: `struct procmap_query` and its flags come from `linux-raw-sys` (generated
//! from the kernel headers); the ioctl number is not there and is computed here, and checked
//! against the pinned kernel's `include/uapi/linux/fs.h` by a test.

pub use linux_raw_sys::general::procmap_query;
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

    #[test]
    fn ioctl_number_matches_the_documented_value() {
        // include/uapi/linux/fs.h and every user (blazesym, libbpf) agree on this value.
        assert_eq!(PROCMAP_QUERY, 0xC068_6611);
        assert_eq!(QUERY_SIZE, 104);
    }
}

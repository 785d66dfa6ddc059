//! Capabilities of the calling thread, for tests that need a profiler without some of
//! them. Shared by the unit tests (`src/buildid.rs`, through `#[path]`) and the
//! integration tests (`tests/common/mod.rs`).

/// Takes the capabilities numbered `caps` out of the calling thread's effective set
/// (capabilities are per thread, so run this on a thread of its own). Fails as
/// `capget()`/`capset()` do.
pub fn drop_effective_caps(caps: &[u32]) -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget() of the calling thread, with a version-3 header and two data structs.
    if unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    for &c in caps {
        let word = d
            .get_mut((c / 32) as usize)
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        word.effective &= !(1 << (c % 32));
    }
    // SAFETY: capset() of the calling thread, with a version-3 header and two data structs.
    if unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

//! The process's open-file limit: connections are file descriptors.

/// Raises the soft limit on open files to the hard limit and returns the limit now in
/// force. A server that stays at the usual 1,024 soft limit runs out of descriptors
/// long before its connection limits (and then cannot open its own database).
pub fn raise_open_files() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_limit_is_raised_to_the_hard_limit() {
        let got = super::raise_open_files().unwrap();
        assert!(got >= 1024, "{got}");
        // A second call finds it raised already and reports the same.
        assert_eq!(super::raise_open_files().unwrap(), got);
    }
}

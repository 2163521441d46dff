//! Keeping the allocator from holding memory the daemon no longer uses.

/// Keeps glibc's allocator from holding on to memory a cycle has freed.
///
/// glibc gives threads that allocate at the same time arenas of their own,
/// up to eight per core, and keeps what is freed in each; it also raises its
/// mmap threshold each time a large block is freed, so that later large
/// blocks (the growing arrays of the story index) come from those arenas and
/// leave copies behind when they grow. A cycle runs its polls on dozens of
/// blocking threads: on the 10,000-feed bench that was about 55 MB of peak
/// RSS holding nothing (148 MB; 93 MB with two arenas and a fixed 128 KiB
/// threshold, the values set here). The process's own `MALLOC_ARENA_MAX`
/// and `MALLOC_MMAP_THRESHOLD_` still win: glibc reads them at start-up,
/// and this leaves the allocator alone when either is set.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some()
            || std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
        {
            return;
        }
        // SAFETY: mallopt only changes allocator parameters; glibc takes its
        // own lock, so it is safe to call while other threads allocate.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
        }
    }
}

/// Hands the pages of freed memory back to the system (glibc's
/// `malloc_trim`): after a burst of polls, the heap is mostly holes that a
/// long-running daemon would otherwise keep for good.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages; glibc locks each arena.
    unsafe {
        libc::malloc_trim(0);
    }
}

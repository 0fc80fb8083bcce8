//! Keeping a long-running daemon small: glibc's allocator keeps freed memory in per-thread
//! arenas, so after a deployment (1 MiB blocks allocated on the runtime threads and freed on
//! the slot writer's) an idle daemon would keep megabytes it no longer uses. Elsewhere
//! (musl, other targets) these are no-ops.

/// Before any thread starts: at most two malloc arenas (one per runtime worker is enough for
/// a daemon that moves one stream at a time).
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// After a deployment: give the freed memory of every arena back to the kernel.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim walks the allocator's own free lists; it takes the arena locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

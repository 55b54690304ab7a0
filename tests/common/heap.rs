//! A counting global allocator and a bounded wait for the process to return
//! to a baseline of threads and live heap. A test binary that uses it
//! declares `#[global_allocator] static A: Counting = Counting;` and runs a
//! single test: both figures are process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use super::thread_count;

/// Counts the bytes currently allocated.
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

/// The bytes allocated now.
pub fn live_heap() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// How far above its baseline the live heap may end: lazily built statics
/// (the runtime's, the logger's) and allocator noise. One leaked supervisor
/// of the test trees is megabytes.
pub const SLACK: isize = 256 * 1024;

/// Waits (bounded by 20 s) until the thread count is at most `threads` and
/// the live heap within `slack` bytes of `heap`: threads end and free their
/// memory after the handles are dropped, on their own schedule. Fails the
/// test otherwise, naming `what`.
pub async fn back_to(threads: usize, heap: isize, slack: isize, what: &str) {
    if let (_, _, Err(e)) = settle_to(threads, heap, slack, what).await {
        panic!("{e}");
    }
}

/// [`back_to`], returning the thread count and live heap it ended with,
/// and whether they are within bounds.
pub async fn settle_to(
    threads: usize,
    heap: isize,
    slack: isize,
    what: &str,
) -> (usize, isize, Result<(), String>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (t, h) = (thread_count(), live_heap());
        if t <= threads && h - heap <= slack {
            return (t, h, Ok(()));
        }
        if tokio::time::Instant::now() >= deadline {
            let e = format!(
                "{what}: {t} threads (baseline {threads}), live heap {h} B (baseline {heap} B, slack {slack} B)"
            );
            return (t, h, Err(e));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

//! Peak heap memory: a counting global allocator a program installs to have its training
//! runs report peak bytes.
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: train::memory::PeakAlloc = train::memory::PeakAlloc;
//! fn main() {}
//! ```
//!
//! Without it installed, [`installed`] is false and the trainer reports no peak.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The counting allocator (the system allocator plus two atomic counters).
pub struct PeakAlloc;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

// The one `unsafe` outside the kernels: `GlobalAlloc` is an unsafe trait; the calls are
// forwarded unchanged to the system allocator.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        INSTALLED.store(true, Ordering::Relaxed);
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Whether [`PeakAlloc`] is the program's allocator.
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// Starts a measurement: returns the live bytes now and resets the peak to them.
pub fn start() -> usize {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    base
}

/// Peak bytes above `base` since [`start`] (`None` when the allocator is not installed).
pub fn since(base: usize) -> Option<usize> {
    installed().then(|| PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

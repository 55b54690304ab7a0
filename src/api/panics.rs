//! An opt-in panic hook for supervised code: a panic inside a node's
//! runnable is reported once, in the supervisor's death report (with its
//! backtrace when `RUST_BACKTRACE` asks for one), instead of also being
//! printed by the default hook. Panics elsewhere go to the previous hook.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::{Cell, RefCell};
use std::sync::Once;

thread_local! {
    /// How deep this thread is inside a node's `run` or a poll of its future.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The backtrace of the last supervised panic on this thread, for the host.
    static BACKTRACE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Marks the current thread as running supervised code while it lives.
pub(crate) struct Inside;

impl Inside {
    pub fn enter() -> Inside {
        DEPTH.with(|d| d.set(d.get() + 1));
        Inside
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// The backtrace the hook kept for the panic just caught on this thread.
pub(crate) fn take_backtrace() -> Option<String> {
    BACKTRACE.with(|b| b.borrow_mut().take())
}

/// Installs the hook (once per process; later calls do nothing). Panics of
/// supervised runnables are then silent at the point of panic and reported
/// by the supervisor as deaths, with the message and, when `RUST_BACKTRACE`
/// (or `RUST_LIB_BACKTRACE`) is set, the backtrace. Other panics go to the
/// hook that was installed before.
///
/// ```
/// actix_supervisor::install_panic_hook();
/// ```
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) == 0 {
                return previous(info);
            }
            let bt = Backtrace::capture();
            if bt.status() == BacktraceStatus::Captured {
                BACKTRACE.with(|b| *b.borrow_mut() = Some(bt.to_string()));
            }
        }));
    });
}

/// Where a propagated panic waits for a [`Supervisor`](crate::Supervisor)
/// handle to re-raise it (see `SupervisorBuilder::propagate_panics`).
pub(crate) type PanicSlot = std::sync::Arc<std::sync::Mutex<Option<String>>>;

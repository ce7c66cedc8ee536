//! Turns SIGINT and SIGTERM into a flag that loops poll, so that a normal stop unwinds through every destructor
//! (which detaches the XDP program and closes the sockets). The handler only stores to an atomic. It resets
//! itself (SA_RESETHAND): a second signal stops the process at once, and the kernel still cleans up.

use std::sync::atomic::{AtomicBool, Ordering};

use super::error::IoError;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handler for SIGINT and SIGTERM and returns the flag it sets.
pub fn install_stop_handler() -> Result<&'static AtomicBool, IoError> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is plain old data; all-zero is a valid starting value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESETHAND;
        // SAFETY: `action.sa_mask` is a valid sigset to initialise; the handler is async-signal-safe (one atomic
        // store) and lives for the whole program.
        let rc = unsafe {
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc < 0 {
            return Err(IoError::last_os("sigaction"));
        }
    }
    Ok(&STOP)
}

/// True once SIGINT or SIGTERM has arrived (after [`install_stop_handler`]).
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

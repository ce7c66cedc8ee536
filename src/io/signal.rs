//! Turns SIGINT and SIGTERM into a flag that loops poll, so that a normal stop unwinds through every destructor
//! (which detaches the XDP program and closes the sockets). A second stop signal, of either kind, stops the
//! process at once (the kernel still cleans up): a user who pressed Ctrl-C after a SIGTERM must not wait out a
//! drain. The handler does only what is async-signal-safe: an atomic swap, and for a second signal signal() and
//! raise(). SA_RESETHAND alone was not enough: it resets only the signal that fired.

use std::sync::atomic::{AtomicBool, Ordering};

use super::error::IoError;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signal: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // SAFETY: signal() and raise() are async-signal-safe. With the default action restored, the raised signal
        // ends the process as if no handler had been installed (at once, or as soon as this handler returns
        // while the signal is blocked during it).
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
}

/// Installs the handler for SIGINT and SIGTERM and returns the flag it sets, cleared: each run that installs it
/// (a process may serve more than once) starts unstopped.
pub fn install_stop_handler() -> Result<&'static AtomicBool, IoError> {
    STOP.store(false, Ordering::SeqCst);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is plain old data; all-zero is a valid starting value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESETHAND;
        // SAFETY: `action.sa_mask` is a valid sigset to initialise; the handler is async-signal-safe (see
        // `on_signal`) and lives for the whole program.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` in a forked child, which then exits 0 unless `f` exited first. Returns how the child ended: its
    /// exit code, or the signal that killed it.
    fn in_child(f: fn()) -> Result<i32, i32> {
        // SAFETY: the child is a copy of this thread alone; it runs only `f`, which keeps to async-signal-safe
        // calls (sigaction, raise, atomics, _exit) and so cannot wait on a lock another test thread held.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            f();
            // SAFETY: _exit ends the child without running the test harness's atexit code or destructors.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked; `status` is a valid place for its status.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(rc, pid, "waitpid: {}", std::io::Error::last_os_error());
        if libc::WIFSIGNALED(status) {
            Err(libc::WTERMSIG(status))
        } else {
            Ok(libc::WEXITSTATUS(status))
        }
    }

    /// In a child: exits with `code` unless `ok`.
    fn require(ok: bool, code: i32) {
        if !ok {
            // SAFETY: as in `in_child`.
            unsafe { libc::_exit(code) };
        }
    }

    fn raise(signal: libc::c_int) {
        // SAFETY: raise() only sends a signal to this thread; the handlers are what is tested.
        unsafe { libc::raise(signal) };
    }

    fn stop_twice(first: libc::c_int, second: libc::c_int) -> Result<i32, i32> {
        // A fn pointer cannot capture: pass the pair through statics set before the fork.
        use std::sync::atomic::AtomicI32;
        static FIRST: AtomicI32 = AtomicI32::new(0);
        static SECOND: AtomicI32 = AtomicI32::new(0);
        FIRST.store(first, Ordering::SeqCst);
        SECOND.store(second, Ordering::SeqCst);
        in_child(|| {
            require(install_stop_handler().is_ok(), 2);
            raise(FIRST.load(Ordering::SeqCst));
            require(stop_requested(), 3); // the first only asks to stop
            raise(SECOND.load(Ordering::SeqCst));
            // Still here: the second signal did not stop the process.
        })
    }

    #[test]
    fn a_second_stop_signal_of_either_kind_ends_the_process_at_once() {
        let (int, term) = (libc::SIGINT, libc::SIGTERM);
        for (first, second) in [(term, int), (int, term), (term, term), (int, int)] {
            assert_eq!(stop_twice(first, second), Err(second), "signal {first}, then {second}");
        }
    }

    #[test]
    fn a_new_run_starts_unstopped_and_its_first_signal_only_asks_to_stop() {
        let ended = in_child(|| {
            require(install_stop_handler().is_ok(), 2);
            raise(libc::SIGTERM);
            require(install_stop_handler().is_ok(), 2);
            require(!stop_requested(), 4);
            raise(libc::SIGTERM);
            require(stop_requested(), 5);
        });
        assert_eq!(ended, Ok(0));
    }
}

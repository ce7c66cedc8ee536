//! The one error type of the I/O layer.
//!
//! Every failure a user can cause or meet (wrong interface, missing privileges, a program the verifier refuses,
//! an interface that is already taken) has its own variant with a message that says what to do. Nothing in this
//! layer panics on a bad environment.

use std::io;

/// What went wrong below the TCP core.
///
/// The underlying OS or libbpf error is part of the message (field `cause`), not a separate `source()`, so that
/// printing the error once says everything and printing its chain does not say it twice.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The interface name is unknown in the calling thread's network namespace.
    #[error("no network interface named {name:?} in this network namespace (see `ip link`)")]
    NoSuchInterface { name: String },

    /// The queue does not exist on the interface.
    #[error("queue {queue} is out of range: {ifname} has {}", count_text(*.count))]
    QueueOutOfRange { ifname: String, queue: u32, count: Option<u32> },

    /// Another AF_XDP socket is bound to the queue (possibly one of a process that has just exited: the kernel
    /// releases it a moment later).
    #[error("{ifname} queue {queue} is busy: another AF_XDP socket (or a zero-copy user) is bound to it")]
    QueueBusy { ifname: String, queue: u32 },

    /// The kernel refused for lack of privileges.
    #[error(
        "{op}: operation not permitted: run as root, or grant CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF \
         (CAP_SYS_ADMIN on kernels older than 5.8)"
    )]
    NotPermitted { op: &'static str },

    /// The BPF object could not be opened or loaded; `log` holds what libbpf and the verifier said.
    #[error("the XDP program failed to load: {cause}\n--- libbpf / verifier log ---\n{log}")]
    ProgramLoad { cause: libbpf_rs::Error, log: String },

    /// Another XDP program is attached to the interface; xdptcp never replaces one.
    #[error(
        "{ifname} already has an XDP program (id {prog_id}, {mode} mode); xdptcp will not replace it. \
         Stop its owner, or remove it with `ip link set dev {ifname} xdp off`"
    )]
    AlreadyAttached { ifname: String, prog_id: u32, mode: &'static str },

    /// The driver cannot run XDP in the requested mode.
    #[error("{ifname}: the driver does not support {mode} XDP ({cause}); try skb (generic) mode")]
    ModeUnsupported { ifname: String, mode: &'static str, cause: io::Error },

    /// A request that cannot be met with the current setup (a bad argument, a feature switched off at load).
    #[error("{0}")]
    Invalid(String),

    /// A BPF map or program operation failed.
    #[error("{op}: {cause}")]
    Bpf { op: &'static str, cause: libbpf_rs::Error },

    /// A system call or external command failed.
    #[error("{op}: {cause}")]
    Os { op: &'static str, cause: io::Error },
}

fn count_text(count: Option<u32>) -> String {
    match count {
        Some(1) => "1 queue (queue 0 only)".to_string(),
        Some(n) => format!("{n} queues (0..={})", n.saturating_sub(1)),
        None => "fewer queues (the kernel refused the bind)".to_string(),
    }
}

impl IoError {
    /// Wraps an OS error, turning EPERM/EACCES into [`IoError::NotPermitted`].
    pub fn os(op: &'static str, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => IoError::NotPermitted { op },
            _ => IoError::Os { op, cause: source },
        }
    }

    /// The current `errno`, wrapped as by [`IoError::os`].
    pub fn last_os(op: &'static str) -> Self {
        Self::os(op, io::Error::last_os_error())
    }

    /// Wraps a libbpf-rs error, turning a permission error into [`IoError::NotPermitted`].
    pub fn bpf(op: &'static str, source: libbpf_rs::Error) -> Self {
        if source.kind() == libbpf_rs::ErrorKind::PermissionDenied {
            IoError::NotPermitted { op }
        } else {
            IoError::Bpf { op, cause: source }
        }
    }

    /// Wraps an error from xsk-rs, whose errors carry the OS error as their source.
    pub(crate) fn xsk(op: &'static str, err: &(dyn std::error::Error + 'static)) -> Self {
        let os = err.source().and_then(|s| s.downcast_ref::<io::Error>()).and_then(io::Error::raw_os_error);
        match os {
            Some(code) => Self::os(op, io::Error::from_raw_os_error(code)),
            None => IoError::Os { op, cause: io::Error::other(err.to_string()) },
        }
    }

    /// True when the error means "not root / missing capabilities": tests use it to skip loudly.
    pub fn is_not_permitted(&self) -> bool {
        matches!(self, IoError::NotPermitted { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_and_eacces_become_not_permitted() {
        for code in [libc::EPERM, libc::EACCES] {
            let e = IoError::os("bind", io::Error::from_raw_os_error(code));
            assert!(e.is_not_permitted(), "{e}");
            assert!(e.to_string().contains("CAP_NET_ADMIN"));
        }
        assert!(!IoError::os("bind", io::Error::from_raw_os_error(libc::EINVAL)).is_not_permitted());
    }

    #[test]
    fn queue_out_of_range_names_the_valid_range() {
        let e = IoError::QueueOutOfRange { ifname: "xt0".into(), queue: 4, count: Some(2) };
        assert_eq!(e.to_string(), "queue 4 is out of range: xt0 has 2 queues (0..=1)");
        let e = IoError::QueueOutOfRange { ifname: "xt0".into(), queue: 1, count: Some(1) };
        assert_eq!(e.to_string(), "queue 1 is out of range: xt0 has 1 queue (queue 0 only)");
    }
}

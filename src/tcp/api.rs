//! The face of a connection that apps see.

/// Names a live connection of one endpoint. Valid until [`crate::app::App::on_closed`] has been called for it;
/// may be reused afterwards.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ConnId(pub(crate) u32);

/// How a connection ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CloseReason {
    /// Both FINs exchanged and acknowledged (this side may still hold the tuple in TIME-WAIT).
    Normal,
    /// The peer reset the connection.
    Reset,
    /// The peer refused the connection (RST in answer to our SYN).
    Refused,
    /// Retransmissions ran out (or the FIN-WAIT-2 timeout fired).
    TimedOut,
    /// This side aborted it (an app's `abort`, a drain deadline, or endpoint shutdown).
    Aborted,
}

/// A connection as an app sees it during one callback.
#[derive(Debug)]
pub struct Conn<'a> {
    _todo: core::marker::PhantomData<&'a ()>,
}

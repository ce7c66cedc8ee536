//! The face of a connection that apps see.

use crate::tcp::conn::{flags, State, Tcb};
use crate::tcp::sendbuf::SendBufs;
use crate::time::Instant;
use std::net::SocketAddr;

/// Names a live connection of one endpoint. Valid until [`crate::app::App::on_closed`] has been called for it;
/// may be reused afterwards.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ConnId(pub(crate) u32);

impl ConnId {
    const V6_BIT: u32 = 1 << 31;

    #[inline]
    pub(crate) fn new(v6: bool, handle: u32) -> ConnId {
        ConnId(handle | if v6 { Self::V6_BIT } else { 0 })
    }
    #[inline]
    pub(crate) fn is_v6(self) -> bool {
        self.0 & Self::V6_BIT != 0
    }
    #[inline]
    pub(crate) fn handle(self) -> u32 {
        self.0 & !Self::V6_BIT
    }
    /// A number unique among live connections, for logs and app-side maps.
    pub fn as_u32(self) -> u32 {
        self.0
    }
}

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
    id: ConnId,
    now: Instant,
    local: SocketAddr,
    remote: SocketAddr,
    tcb: &'a mut Tcb,
    bufs: &'a mut SendBufs,
    send_cap: usize,
}

impl<'a> Conn<'a> {
    pub(crate) fn new(
        id: ConnId,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        tcb: &'a mut Tcb,
        bufs: &'a mut SendBufs,
        send_cap: usize,
    ) -> Self {
        Conn { id, now, local, remote, tcb, bufs, send_cap }
    }

    pub fn id(&self) -> ConnId {
        self.id
    }
    pub fn now(&self) -> Instant {
        self.now
    }
    pub fn local(&self) -> SocketAddr {
        self.local
    }
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }
    pub fn state(&self) -> State {
        self.tcb.state
    }
    /// The app's word for this connection.
    pub fn user(&self) -> u32 {
        self.tcb.user
    }
    pub fn set_user(&mut self, v: u32) {
        self.tcb.user = v;
    }

    /// Sending is still allowed: neither closed nor aborted by the app.
    pub fn can_send(&self) -> bool {
        !self.tcb.has(flags::FIN_QUEUED | flags::ABORT)
            && matches!(self.tcb.state, State::Established | State::CloseWait)
    }

    /// Bytes that [`Conn::send`] would take now.
    pub fn send_capacity(&self) -> usize {
        if self.can_send() {
            self.bufs.room(self.tcb.tx, self.send_cap)
        } else {
            0
        }
    }

    /// Queues bytes for sending; returns how many were taken (fewer when the send queue is full, 0 once closed).
    pub fn send(&mut self, data: &[u8]) -> usize {
        if !self.can_send() {
            return 0;
        }
        self.bufs.push(&mut self.tcb.tx, data, self.send_cap)
    }

    /// Like [`Conn::send`], but a static blob queued on an empty queue is sent without being copied.
    pub fn send_static(&mut self, data: &'static [u8]) -> usize {
        if !self.can_send() {
            return 0;
        }
        self.bufs.push_static(&mut self.tcb.tx, data, self.send_cap)
    }

    /// Closes our direction: FIN follows the queued bytes. The peer may go on sending (half-close).
    pub fn close(&mut self) {
        if matches!(self.tcb.state, State::Established | State::CloseWait | State::SynSent | State::SynReceived) {
            self.tcb.set(flags::FIN_QUEUED);
        }
    }

    /// Resets the connection: RST now, queued bytes dropped.
    pub fn abort(&mut self) {
        self.tcb.set(flags::ABORT);
    }
}

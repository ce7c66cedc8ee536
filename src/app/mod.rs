//! What runs on a connection: the [`App`] trait and the built-in apps.
//!
//! An app sees a connection only through [`Conn`]: it is told when the connection opens, when in-order data
//! arrives, when the peer closes and when the connection is gone, and it answers by queueing bytes and closing.
//! Apps never see segments, sequence numbers or time beyond [`Conn::now`].

mod close;
mod echo;
mod http;
pub mod http1;
pub mod http1_response;

pub use crate::tcp::api::{CloseReason, Conn, ConnId};
pub use close::CloseApp;
pub use echo::EchoApp;
pub use http::HttpApp;

/// The behaviour of every connection of one endpoint.
pub trait App {
    /// The handshake completed (either role).
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// In-order bytes arrived. Returns how many were consumed; the rest are not acknowledged and the peer sends
    /// them again (so an app that cannot take everything applies back-pressure instead of buffering).
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) -> usize;

    /// The peer sent FIN: no more data will arrive. Sending is still allowed (half-close).
    fn on_peer_close(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// How many more bytes the app could take on this connection now: the stack never advertises a larger
    /// receive window, and announces the window again when it opens. `user` is the connection's app word and
    /// `send_capacity` what [`Conn::send`] would take now. The default sets no limit of its own (the configured
    /// window applies).
    fn receive_window(&self, user: u32, send_capacity: usize) -> usize {
        let _ = (user, send_capacity);
        usize::MAX
    }

    /// The connection is gone. `id` may be reused after this returns.
    fn on_closed(&mut self, id: ConnId, user: u32, reason: CloseReason) {
        let _ = (id, user, reason);
    }
}

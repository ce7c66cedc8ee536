//! `echo`: sends every byte back; closes after the peer's FIN, once the echo has been queued.

use super::{App, Conn};

/// Echoes data. Back-pressure goes through the receive window: it is what the send queue has room for, so a
/// peer that does not read its echo is soon told to stop sending.
#[derive(Debug, Default, Clone)]
pub struct EchoApp;

impl App for EchoApp {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) -> usize {
        conn.send(data)
    }

    /// Every byte taken is queued for sending back, so the window is what the send queue has room for.
    fn receive_window(&self, _user: u32, send_capacity: usize) -> usize {
        send_capacity
    }

    fn on_peer_close(&mut self, conn: &mut Conn<'_>) {
        conn.close();
    }
}

//! `echo`: sends every byte back; closes after the peer's FIN, once the echo has been queued.

use super::{App, Conn};

/// Echoes data. Back-pressure is natural: bytes that do not fit in the send queue are not taken, so they are
/// not acknowledged and the peer sends them again later.
#[derive(Debug, Default, Clone)]
pub struct EchoApp;

impl App for EchoApp {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) -> usize {
        conn.send(data)
    }

    fn on_peer_close(&mut self, conn: &mut Conn<'_>) {
        conn.close();
    }
}

//! `close`: closes every connection right after the handshake (the server sends the first FIN).

use super::{App, Conn};

/// Closes each connection as soon as it opens; any data that still arrives is taken and ignored.
#[derive(Debug, Default, Clone)]
pub struct CloseApp;

impl App for CloseApp {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        conn.close();
    }

    fn on_data(&mut self, _conn: &mut Conn<'_>, data: &[u8]) -> usize {
        data.len()
    }
}

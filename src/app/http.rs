//! `http`: one static response to every GET (or HEAD), as an HTTP/1.1 server would send it (RFC 9112).
//!
//! Keep-alive is the default for HTTP/1.1; `Connection: close` closes after the response; HTTP/1.0 closes after
//! the response unless it asked for keep-alive. Requests may be pipelined and may arrive split anywhere: a
//! partial line waits in a small per-connection buffer (the only allocation, and only for split requests).
//! Anything else earns a `400` or `405` and a close. Responses are built once and sent without copying. The
//! request rules themselves live in [`super::http1`], shared with the Linux reference server.

use super::http1::{self, on_line, Responses, Step, DONE, IN_BODY, MAX_LINE};
use super::{App, CloseReason, Conn, ConnId};
use crate::tcp::Config;
use std::collections::HashMap;

/// Bytes of partial lines all connections of one worker may hold together: a slow client that trickles a long
/// request line (slowloris) costs its line, and a million of them cannot take more than this; beyond it a split
/// line is answered with `400` and a close.
const PARTIAL_BUDGET: usize = 64 << 20;

/// Serves one static body. Its responses are built once (and live as long as the process).
#[derive(Debug)]
pub struct HttpApp {
    responses: Responses,
    /// The send queue of every connection, full (for [`http1::request_window`]).
    send_buffer: usize,
    partial: HashMap<ConnId, Vec<u8>>,
    /// Bytes held in `partial`.
    partial_bytes: usize,
    /// Responses queued (200s and errors).
    pub responses_sent: u64,
}

impl Default for HttpApp {
    fn default() -> Self {
        HttpApp::new(b"Hello from xdptcp\n")
    }
}

impl HttpApp {
    /// Serves `body`, on connections with the send queue `serve` gives them for it.
    pub fn new(body: &[u8]) -> Self {
        HttpApp::with(Responses::new(body), http1::send_buffer_for(body.len(), Config::default().send_buffer))
    }

    /// Serves responses built once (by the caller, for all its workers: they live as long as the process), on
    /// connections whose send queue holds `send_buffer` bytes (`Config::send_buffer`).
    pub fn with(responses: Responses, send_buffer: u32) -> Self {
        let send_buffer = send_buffer as usize;
        HttpApp { responses, send_buffer, partial: HashMap::new(), partial_bytes: 0, responses_sent: 0 }
    }

    /// Length of the response to a keep-alive GET (what a client reads before its next request).
    pub fn response_len(&self) -> usize {
        self.responses.keep_alive_get().len()
    }

    /// Bytes of partial request lines held right now.
    pub fn partial_bytes(&self) -> usize {
        self.partial_bytes
    }

    fn take_partial(&mut self, id: ConnId) -> Option<Vec<u8>> {
        let buf = self.partial.remove(&id)?;
        self.partial_bytes -= buf.len();
        Some(buf)
    }

    /// Keeps a partial line for the connection's next data, or answers `400` and closes when the worker's budget
    /// for partial lines is spent.
    fn keep_partial(&mut self, conn: &mut Conn<'_>, buf: Vec<u8>) {
        if self.partial_bytes + buf.len() > PARTIAL_BUDGET {
            self.fail(conn, self.responses.bad_request);
            return;
        }
        self.partial_bytes += buf.len();
        self.partial.insert(conn.id(), buf);
    }

    /// Connections holding a partial request line right now.
    pub fn partial_lines(&self) -> usize {
        self.partial.len()
    }

    /// Handles one complete line (with its line ending). Returns false when the response did not fit in the
    /// send queue: the line must then be offered again later.
    fn line(&mut self, conn: &mut Conn<'_>, raw: &[u8]) -> bool {
        match on_line(&self.responses, conn.user(), raw) {
            Step::Next(st) => {
                conn.set_user(st);
                true
            }
            Step::Respond { response, next, close } => {
                if conn.send_capacity() < response.len() {
                    return false;
                }
                conn.send_static(response);
                self.responses_sent += 1;
                if close {
                    conn.close();
                }
                conn.set_user(next);
                true
            }
            Step::Fail(response) => self.fail(conn, response),
        }
    }

    /// Answers with an error and closes.
    fn fail(&mut self, conn: &mut Conn<'_>, response: &'static [u8]) -> bool {
        if conn.send_capacity() >= response.len() {
            conn.send_static(response);
            self.responses_sent += 1;
        }
        conn.close();
        conn.set_user(DONE);
        true
    }
}

impl App for HttpApp {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) -> usize {
        let mut at = 0;
        if let Some(mut buf) = self.take_partial(conn.id()) {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    buf.extend_from_slice(&data[..=i]);
                    if !self.line(conn, &buf) {
                        // Keep the line for later; take nothing new.
                        buf.truncate(buf.len() - (i + 1));
                        self.partial_bytes += buf.len();
                        self.partial.insert(conn.id(), buf);
                        return 0;
                    }
                    at = i + 1;
                }
                None => {
                    if buf.len() + data.len() > MAX_LINE {
                        self.fail(conn, self.responses.bad_request);
                    } else {
                        buf.extend_from_slice(data);
                        self.keep_partial(conn, buf);
                    }
                    return data.len();
                }
            }
        }
        while at < data.len() {
            let st = conn.user();
            if st & DONE != 0 {
                return data.len();
            }
            if st & IN_BODY != 0 {
                let (skip, st) = http1::skip_body(st, data.len() - at);
                at += skip;
                conn.set_user(st);
                continue;
            }
            let rest = &data[at..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if !self.line(conn, &rest[..=i]) {
                        return at; // The response does not fit yet: back-pressure.
                    }
                    at += i + 1;
                }
                None => {
                    if rest.len() > MAX_LINE {
                        self.fail(conn, self.responses.bad_request);
                    } else {
                        self.keep_partial(conn, rest.to_vec());
                    }
                    return data.len();
                }
            }
        }
        data.len()
    }

    /// Back-pressure through the window, not by refusing bytes the window offered (see
    /// [`http1::request_window`]); a body being skipped needs no room, and a finished connection discards.
    fn receive_window(&self, user: u32, send_capacity: usize) -> usize {
        if user & DONE != 0 {
            return usize::MAX;
        }
        let body = if user & IN_BODY != 0 { (user >> http1::BODY_SHIFT) as usize } else { 0 };
        body.saturating_add(http1::request_window(&self.responses, send_capacity, self.send_buffer))
    }

    fn on_peer_close(&mut self, conn: &mut Conn<'_>) {
        conn.close();
    }

    fn on_closed(&mut self, id: ConnId, _user: u32, _reason: CloseReason) {
        self.take_partial(id);
    }
}

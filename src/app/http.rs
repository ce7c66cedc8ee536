//! `http`: one static response to every GET (or HEAD), as an HTTP/1.1 server would send it (RFC 9112).
//!
//! Keep-alive is the default for HTTP/1.1; `Connection: close` closes after the response; HTTP/1.0 closes after
//! the response unless it asked for keep-alive. Requests may be pipelined and may arrive split anywhere: a
//! partial line waits in a small per-connection buffer (the only allocation, and only for split requests).
//! Anything else earns a `400` or `405` and a close. Responses are built once and sent without copying.

use super::{App, CloseReason, Conn, ConnId};
use std::collections::HashMap;

/// Longest request or header line we accept.
const MAX_LINE: usize = 8 * 1024;
/// Bytes of partial lines all connections of one worker may hold together: a slow client that trickles a long
/// request line (slowloris) costs its line, and a million of them cannot take more than this; beyond it a split
/// line is answered with `400` and a close.
const PARTIAL_BUDGET: usize = 64 << 20;
/// Longest request body we skip (bodies are not expected on GET, but are allowed).
const MAX_BODY: u32 = (1 << 23) - 1;

// Per-connection state, kept in the connection's app word.
const IN_HEADERS: u32 = 1 << 0;
const HTTP10: u32 = 1 << 1;
const CONN_CLOSE: u32 = 1 << 2;
const CONN_KEEP_ALIVE: u32 = 1 << 3;
const HEAD: u32 = 1 << 4;
const BAD_METHOD: u32 = 1 << 5;
const DONE: u32 = 1 << 6;
const IN_BODY: u32 = 1 << 7;
const BODY_SHIFT: u32 = 8;
const REQUEST_BITS: u32 = (1 << BODY_SHIFT) - 1;

/// The static responses of one app instance.
#[derive(Debug, Clone, Copy)]
struct Responses {
    /// By [HEAD?][keep-alive header?][close?]
    ok: [[[&'static [u8]; 2]; 2]; 2],
    bad_request: &'static [u8],
    not_allowed: &'static [u8],
}

impl Responses {
    fn new(body: &[u8]) -> Self {
        let leak = |s: Vec<u8>| -> &'static [u8] { Box::leak(s.into_boxed_slice()) };
        let mut ok = [[[&[][..]; 2]; 2]; 2];
        for (head, by_ka) in ok.iter_mut().enumerate() {
            for (ka, by_close) in by_ka.iter_mut().enumerate() {
                for (close, slot) in by_close.iter_mut().enumerate() {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nServer: xdptcp\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
                        body.len()
                    )
                    .into_bytes();
                    if close == 1 {
                        r.extend_from_slice(b"Connection: close\r\n");
                    } else if ka == 1 {
                        r.extend_from_slice(b"Connection: keep-alive\r\n");
                    }
                    r.extend_from_slice(b"\r\n");
                    if head == 0 {
                        r.extend_from_slice(body);
                    }
                    *slot = leak(r);
                }
            }
        }
        let bad_request = leak(
            b"HTTP/1.1 400 Bad Request\r\nServer: xdptcp\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        );
        let not_allowed = leak(
            b"HTTP/1.1 405 Method Not Allowed\r\nServer: xdptcp\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec(),
        );
        Responses { ok, bad_request, not_allowed }
    }
}

/// Serves one static body. Its responses are built once (and live as long as the process).
#[derive(Debug)]
pub struct HttpApp {
    responses: Responses,
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
    pub fn new(body: &[u8]) -> Self {
        HttpApp { responses: Responses::new(body), partial: HashMap::new(), partial_bytes: 0, responses_sent: 0 }
    }

    /// Length of the response to a keep-alive GET (what a client reads before its next request).
    pub fn response_len(&self) -> usize {
        self.responses.ok[0][0][0].len()
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
        let mut st = conn.user();
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if st & IN_HEADERS == 0 {
            if line.is_empty() {
                return true; // RFC 9112 §2.2: ignore empty lines before a request line.
            }
            match parse_request_line(line) {
                Some((method, http10)) => {
                    st |= IN_HEADERS;
                    match method {
                        Method::Get => {}
                        Method::Head => st |= HEAD,
                        Method::Other => st |= BAD_METHOD,
                    }
                    if http10 {
                        st |= HTTP10;
                    }
                    conn.set_user(st);
                    true
                }
                None => self.fail(conn, self.responses.bad_request),
            }
        } else if line.is_empty() {
            self.respond(conn, st)
        } else {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return self.fail(conn, self.responses.bad_request);
            };
            let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
            if name.eq_ignore_ascii_case(b"connection") {
                for token in value.split(|&b| b == b',').map(trim) {
                    if token.eq_ignore_ascii_case(b"close") {
                        st |= CONN_CLOSE;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        st |= CONN_KEEP_ALIVE;
                    }
                }
            } else if name.eq_ignore_ascii_case(b"content-length") {
                match parse_u32(value) {
                    Some(n) if n <= MAX_BODY => st = (st & REQUEST_BITS) | (n << BODY_SHIFT),
                    _ => return self.fail(conn, self.responses.bad_request),
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                // Chunked request bodies are not supported; refusing is safer than guessing where they end.
                return self.fail(conn, self.responses.bad_request);
            }
            conn.set_user(st);
            true
        }
    }

    /// The blank line ended a request: queue its response.
    fn respond(&mut self, conn: &mut Conn<'_>, st: u32) -> bool {
        if st & BAD_METHOD != 0 {
            return self.fail(conn, self.responses.not_allowed);
        }
        let close = st & CONN_CLOSE != 0 || (st & HTTP10 != 0 && st & CONN_KEEP_ALIVE == 0);
        let keep_alive_header = st & HTTP10 != 0 && !close;
        let r = self.responses.ok[usize::from(st & HEAD != 0)][usize::from(keep_alive_header)][usize::from(close)];
        if conn.send_capacity() < r.len() {
            return false;
        }
        conn.send_static(r);
        self.responses_sent += 1;
        let body = st >> BODY_SHIFT;
        if close {
            conn.close();
            conn.set_user(DONE);
        } else if body > 0 {
            conn.set_user(IN_BODY | (body << BODY_SHIFT));
        } else {
            conn.set_user(0);
        }
        true
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
                let left = st >> BODY_SHIFT;
                let skip = (left as usize).min(data.len() - at);
                at += skip;
                let left = left - skip as u32;
                conn.set_user(if left == 0 { 0 } else { IN_BODY | (left << BODY_SHIFT) });
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

    fn on_peer_close(&mut self, conn: &mut Conn<'_>) {
        conn.close();
    }

    fn on_closed(&mut self, id: ConnId, _user: u32, _reason: CloseReason) {
        self.take_partial(id);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Method {
    Get,
    Head,
    Other,
}

/// `METHOD SP request-target SP HTTP/1.x` (RFC 9112 §3). Returns the method and whether it is HTTP/1.0.
fn parse_request_line(line: &[u8]) -> Option<(Method, bool)> {
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next().filter(|m| !m.is_empty() && m.iter().all(|b| b.is_ascii_alphabetic()))?;
    let target = parts.next().filter(|t| !t.is_empty())?;
    let version = parts.next()?;
    if parts.next().is_some() || target.iter().any(|b| b.is_ascii_control()) {
        return None;
    }
    let http10 = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        _ => return None,
    };
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => Method::Other,
    };
    Some((method, http10))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9112_3_request_line_is_method_target_version() {
        assert_eq!(parse_request_line(b"GET / HTTP/1.1"), Some((Method::Get, false)));
        assert_eq!(parse_request_line(b"HEAD /x HTTP/1.0"), Some((Method::Head, true)));
        assert_eq!(parse_request_line(b"POST / HTTP/1.1"), Some((Method::Other, false)));
        assert_eq!(parse_request_line(b"GET / HTTP/2.0"), None);
        assert_eq!(parse_request_line(b"GET  HTTP/1.1"), None);
        assert_eq!(parse_request_line(b"GET / HTTP/1.1 x"), None);
        assert_eq!(parse_request_line(b""), None);
    }

    #[test]
    fn header_values_are_trimmed_and_lengths_bounded() {
        assert_eq!(trim(b"  close \t"), b"close");
        assert_eq!(trim(b"   "), b"");
        assert_eq!(parse_u32(b"42"), Some(42));
        assert_eq!(parse_u32(b"4x"), None);
        assert_eq!(parse_u32(b"9999999999"), None);
    }

    #[test]
    fn responses_carry_the_right_connection_header() {
        let r = Responses::new(b"hi");
        let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        assert!(s(r.ok[0][0][0]).ends_with("Content-Length: 2\r\n\r\nhi"));
        assert!(s(r.ok[0][0][1]).contains("Connection: close\r\n"));
        assert!(s(r.ok[0][1][0]).contains("Connection: keep-alive\r\n"));
        assert!(s(r.ok[1][0][0]).ends_with("\r\n\r\n"));
    }
}

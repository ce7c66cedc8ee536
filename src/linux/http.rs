//! The `http` app of the Linux reference server: the same requests, the same responses and the same connection
//! rules as `app::http` (RFC 9112: keep-alive by default in HTTP/1.1, `Connection: close`, HTTP/1.0 closing
//! unless it asked for keep-alive, pipelining, bodies skipped by Content-Length, 400 and 405 with a close), over
//! byte streams from kernel sockets instead of `Conn` callbacks.
//!
//! Responses are built once per server and appended to the connection's output; a partial line waits in a
//! per-connection buffer, the only allocation, and only for requests split across reads.

use std::sync::Arc;

const MAX_LINE: usize = 8 * 1024;
const MAX_BODY: u32 = (1 << 23) - 1;

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

/// The fixed responses of one server, byte for byte those of `app::HttpApp` for the same body.
#[derive(Debug)]
pub struct Responses {
    /// By [HEAD?][keep-alive header?][close?]
    ok: [[[Box<[u8]>; 2]; 2]; 2],
    bad_request: Box<[u8]>,
    not_allowed: Box<[u8]>,
}

impl Responses {
    pub fn new(body: &[u8]) -> Arc<Self> {
        let build = |head: bool, ka: bool, close: bool| -> Box<[u8]> {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nServer: xdptcp\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
                body.len()
            )
            .into_bytes();
            if close {
                r.extend_from_slice(b"Connection: close\r\n");
            } else if ka {
                r.extend_from_slice(b"Connection: keep-alive\r\n");
            }
            r.extend_from_slice(b"\r\n");
            if !head {
                r.extend_from_slice(body);
            }
            r.into_boxed_slice()
        };
        let by_close = |head, ka| [build(head, ka, false), build(head, ka, true)];
        let by_ka = |head| [by_close(head, false), by_close(head, true)];
        Arc::new(Responses {
            ok: [by_ka(false), by_ka(true)],
            bad_request: b"HTTP/1.1 400 Bad Request\r\nServer: xdptcp\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec()
                .into_boxed_slice(),
            not_allowed: b"HTTP/1.1 405 Method Not Allowed\r\nServer: xdptcp\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec()
                .into_boxed_slice(),
        })
    }

    /// The response to a plain keep-alive GET.
    pub fn keep_alive_get(&self) -> &[u8] {
        &self.ok[0][0][0]
    }
}

/// The request state of one connection.
#[derive(Debug, Default)]
pub struct HttpConn {
    st: u32,
    partial: Vec<u8>,
    /// Responses queued so far.
    pub responses: u64,
}

impl HttpConn {
    /// Handles received bytes: responses are appended to `out`. Returns true once the connection must close after
    /// `out` is written (a `Connection: close`, an HTTP/1.0 request, or an error); bytes after that are ignored.
    pub fn feed(&mut self, r: &Responses, data: &[u8], out: &mut Vec<u8>) -> bool {
        let mut at = 0;
        if !self.partial.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(&data[..=i]);
                    self.line(r, &line, out);
                    at = i + 1;
                }
                None => {
                    if self.partial.len() + data.len() > MAX_LINE {
                        self.fail(&r.bad_request, out);
                    } else {
                        self.partial.extend_from_slice(data);
                    }
                    return self.st & DONE != 0;
                }
            }
        }
        while at < data.len() && self.st & DONE == 0 {
            if self.st & IN_BODY != 0 {
                let left = self.st >> BODY_SHIFT;
                let skip = (left as usize).min(data.len() - at);
                at += skip;
                let left = left - skip as u32;
                self.st = if left == 0 { 0 } else { IN_BODY | (left << BODY_SHIFT) };
                continue;
            }
            let rest = &data[at..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.line(r, &rest[..=i], out);
                    at += i + 1;
                }
                None => {
                    if rest.len() > MAX_LINE {
                        self.fail(&r.bad_request, out);
                    } else {
                        self.partial.extend_from_slice(rest);
                    }
                    break;
                }
            }
        }
        self.st & DONE != 0
    }

    fn line(&mut self, r: &Responses, raw: &[u8], out: &mut Vec<u8>) {
        let mut st = self.st;
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if st & IN_HEADERS == 0 {
            if line.is_empty() {
                return; // RFC 9112 §2.2: empty lines before a request line are ignored.
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
                    self.st = st;
                }
                None => self.fail(&r.bad_request, out),
            }
        } else if line.is_empty() {
            self.respond(r, st, out);
        } else {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return self.fail(&r.bad_request, out);
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
                    _ => return self.fail(&r.bad_request, out),
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                return self.fail(&r.bad_request, out);
            }
            self.st = st;
        }
    }

    fn respond(&mut self, r: &Responses, st: u32, out: &mut Vec<u8>) {
        if st & BAD_METHOD != 0 {
            return self.fail(&r.not_allowed, out);
        }
        let close = st & CONN_CLOSE != 0 || (st & HTTP10 != 0 && st & CONN_KEEP_ALIVE == 0);
        let keep_alive_header = st & HTTP10 != 0 && !close;
        out.extend_from_slice(&r.ok[usize::from(st & HEAD != 0)][usize::from(keep_alive_header)][usize::from(close)]);
        self.responses += 1;
        let body = st >> BODY_SHIFT;
        self.st = if close {
            DONE
        } else if body > 0 {
            IN_BODY | (body << BODY_SHIFT)
        } else {
            0
        };
    }

    fn fail(&mut self, response: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(response);
        self.responses += 1;
        self.st = DONE;
        self.partial = Vec::new();
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Method {
    Get,
    Head,
    Other,
}

/// `METHOD SP request-target SP HTTP/1.x` (RFC 9112 §3).
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
    use crate::app::HttpApp;

    fn run(data: &[&[u8]]) -> (String, bool) {
        let r = Responses::new(b"Hello from xdptcp\n");
        let mut c = HttpConn::default();
        let mut out = Vec::new();
        let mut close = false;
        for d in data {
            close = c.feed(&r, d, &mut out);
        }
        (String::from_utf8(out).unwrap(), close)
    }

    #[test]
    fn the_keep_alive_response_is_byte_for_byte_the_xdptcp_apps() {
        let r = Responses::new(b"Hello from xdptcp\n");
        assert_eq!(r.keep_alive_get().len(), HttpApp::default().response_len());
        let (out, close) = run(&[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]);
        assert_eq!(out.as_bytes(), r.keep_alive_get());
        assert!(out.ends_with("\r\n\r\nHello from xdptcp\n") && !close);
    }

    #[test]
    fn rfc9112_9_3_connection_close_and_http10_close_after_the_response() {
        let (out, close) = run(&[b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"]);
        assert!(out.contains("Connection: close\r\n") && close);
        let (out, close) = run(&[b"GET / HTTP/1.0\r\n\r\n"]);
        assert!(out.contains("Connection: close\r\n") && close);
        let (out, close) = run(&[b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"]);
        assert!(out.contains("Connection: keep-alive\r\n") && !close);
    }

    #[test]
    fn pipelined_split_and_bodies() {
        let (out, close) =
            run(&[b"GET / HTTP/1.1\r\n\r\nGET / HT", b"TP/1.1\r\nContent-Length: 3\r\n\r\nabcHEAD / HTTP/1.1\r\n\r\n"]);
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
        assert_eq!(out.matches("Hello from xdptcp").count(), 2, "HEAD has no body: {out}");
        assert!(!close);
    }

    #[test]
    fn errors_answer_400_or_405_and_close() {
        for (req, code) in [
            (&b"POST / HTTP/1.1\r\n\r\n"[..], "405"),
            (b"GET / HTTP/2.0\r\n\r\n", "400"),
            (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
            (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", "400"),
            (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "400"),
        ] {
            let (out, close) = run(&[req]);
            assert!(out.starts_with(&format!("HTTP/1.1 {code}")), "{out}");
            assert!(close);
        }
        let long = vec![b'a'; MAX_LINE + 10];
        let (out, close) = run(&[&long]);
        assert!(out.starts_with("HTTP/1.1 400") && close);
    }
}

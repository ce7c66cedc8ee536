//! The `http` app of the Linux reference server: the same requests, the same responses and the same connection
//! rules as `app::http` (RFC 9112: keep-alive by default in HTTP/1.1, `Connection: close`, HTTP/1.0 closing
//! unless it asked for keep-alive, pipelining, bodies skipped by Content-Length, 400 and 405 with a close), over
//! byte streams from kernel sockets instead of `Conn` callbacks; the rules are the shared [`crate::app::http1`].
//!
//! Responses are built once per server and appended to the connection's output; a partial line waits in a
//! per-connection buffer, the only allocation, and only for requests split across reads.

pub use crate::app::http1::Responses;
use crate::app::http1::{self, on_line, Step, DONE, IN_BODY, MAX_LINE};

/// The request state of one connection.
#[derive(Debug, Default)]
pub struct HttpConn {
    st: u32,
    partial: Vec<u8>,
    /// Responses queued so far.
    pub responses: u64,
}

/// What one [`HttpConn::feed`] did with its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Bytes taken; the rest must be offered again once `out` has gone out.
    pub used: usize,
    /// The connection must close after `out` is written (a `Connection: close`, an HTTP/1.0 request, or an
    /// error); bytes after that are ignored (counted as used).
    pub close: bool,
}

impl HttpConn {
    /// Handles received bytes: responses are appended to `out` until the next one would take it past `limit`
    /// bytes (one always fits into an empty `out`). Where it stops, the rest of `data` is left unused: as
    /// `app::http` does with its send capacity, the caller holds it until the output drains, so a peer that
    /// pipelines requests without reading costs at most `limit` bytes of responses, whatever the body's size.
    pub fn feed(&mut self, r: &Responses, data: &[u8], out: &mut Vec<u8>, limit: usize) -> Fed {
        let mut at = 0;
        if !self.partial.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(&data[..=i]);
                    if !self.line(r, &line, out, limit) {
                        line.truncate(line.len() - (i + 1));
                        self.partial = line;
                        return self.fed(0, data.len());
                    }
                    at = i + 1;
                }
                None => {
                    if self.partial.len() + data.len() > MAX_LINE {
                        self.fail(r.bad_request, out);
                    } else {
                        self.partial.extend_from_slice(data);
                    }
                    return self.fed(data.len(), data.len());
                }
            }
        }
        while at < data.len() && self.st & DONE == 0 {
            if self.st & IN_BODY != 0 {
                let (skip, st) = http1::skip_body(self.st, data.len() - at);
                at += skip;
                self.st = st;
                continue;
            }
            let rest = &data[at..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if !self.line(r, &rest[..=i], out, limit) {
                        break;
                    }
                    at += i + 1;
                }
                None => {
                    if rest.len() > MAX_LINE {
                        self.fail(r.bad_request, out);
                    } else {
                        self.partial.extend_from_slice(rest);
                    }
                    at = data.len();
                }
            }
        }
        self.fed(at, data.len())
    }

    fn fed(&self, used: usize, len: usize) -> Fed {
        let close = self.st & DONE != 0;
        Fed { used: if close { len } else { used }, close }
    }

    /// Handles one complete line; false if its response does not fit under `limit` yet (nothing changed).
    fn line(&mut self, r: &Responses, raw: &[u8], out: &mut Vec<u8>, limit: usize) -> bool {
        match on_line(r, self.st, raw) {
            Step::Next(st) => self.st = st,
            Step::Respond { response, next, .. } => {
                if !out.is_empty() && out.len() + response.len() > limit {
                    return false;
                }
                out.extend_from_slice(response);
                self.responses += 1;
                self.st = next;
            }
            // Errors are short and end the connection: they may go a little past `limit`.
            Step::Fail(response) => self.fail(response, out),
        }
        true
    }

    fn fail(&mut self, response: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(response);
        self.responses += 1;
        self.st = DONE;
        self.partial = Vec::new();
    }
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
            let fed = c.feed(&r, d, &mut out, usize::MAX);
            assert_eq!(fed.used, d.len(), "without a limit every byte is taken");
            close = fed.close;
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
        let (out, close) = run(&[b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]);
        assert!(out.contains("Connection: close\r\n") && close);
        let (out, close) = run(&[b"GET / HTTP/1.0\r\n\r\n"]);
        assert!(out.contains("Connection: close\r\n") && close);
        let (out, close) = run(&[b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"]);
        assert!(out.contains("Connection: keep-alive\r\n") && !close);
    }

    #[test]
    fn pipelined_split_and_bodies() {
        let (out, close) = run(&[
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HT",
            b"TP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcHEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
        ]);
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
        assert_eq!(out.matches("Hello from xdptcp").count(), 2, "HEAD has no body: {out}");
        assert!(!close);
    }

    #[test]
    fn responses_stop_before_passing_the_limit_and_the_requests_left_are_taken_later() {
        let r = Responses::new(b"Hello from xdptcp\n");
        let limit = r.keep_alive_get().len() * 3 / 2;
        let data = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(3);
        let mut c = HttpConn::default();
        let (mut at, mut rounds, mut out) = (0, 0, Vec::new());
        while at < data.len() {
            out.clear();
            let fed = c.feed(&r, &data[at..], &mut out, limit);
            assert!(out.len() <= limit && !fed.close, "{} bytes of responses", out.len());
            at += fed.used;
            rounds += 1;
            assert!(rounds <= 3, "no progress at byte {at}");
        }
        assert_eq!((c.responses, rounds), (3, 3), "one response per round, none lost");
    }

    #[test]
    fn errors_answer_400_or_405_and_close() {
        for (req, code) in [
            (&b"POST / HTTP/1.1\r\nHost: x\r\n\r\n"[..], "405"),
            (b"GET / HTTP/2.0\r\n\r\n", "400"),
            (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
            (b"GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", "400"),
            (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", "400"),
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

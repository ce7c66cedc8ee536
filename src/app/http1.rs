//! HTTP/1.x requests as the `http` app and the Linux reference server both read them (RFC 9112): keep-alive by
//! default in HTTP/1.1, `Connection: close`, HTTP/1.0 closing unless it asked for keep-alive, bodies skipped by
//! Content-Length, chunked bodies and malformed lines refused with 400, methods other than GET and HEAD with 405.
//! A field name must be a token (so `Content-Length : 5` and folded lines are refused, RFC 9112 §5.1–5.2), and an
//! HTTP/1.1 request needs exactly one Host field (§3.2): where two readers could disagree on where a request ends
//! or what it is for, the request is refused rather than guessed at.
//!
//! The request state of a connection fits in a `u32` (the TCB's user word for the app): flag bits below
//! [`BODY_SHIFT`], the body length still to skip above it. [`on_line`] takes one complete line and says what
//! to do; the callers own the buffering and the sending, so both serve byte for byte the same responses.

/// Longest line kept while waiting for its end.
pub const MAX_LINE: usize = 8 * 1024;
/// Longest request body skipped (it must fit above [`BODY_SHIFT`]).
pub const MAX_BODY: u32 = (1 << (32 - BODY_SHIFT)) - 1;

/// A request line was read; headers follow.
pub const IN_HEADERS: u32 = 1 << 0;
const HTTP10: u32 = 1 << 1;
const CONN_CLOSE: u32 = 1 << 2;
const CONN_KEEP_ALIVE: u32 = 1 << 3;
const HEAD: u32 = 1 << 4;
const BAD_METHOD: u32 = 1 << 5;
/// The connection is finished: nothing more is read.
pub const DONE: u32 = 1 << 6;
/// A body is being skipped; its remaining length is above [`BODY_SHIFT`].
pub const IN_BODY: u32 = 1 << 7;
/// The request carried a Content-Length (so a second one must agree with it).
const HAS_LENGTH: u32 = 1 << 8;
/// The request carried a Host field (a second one is an error).
const HAS_HOST: u32 = 1 << 9;
pub const BODY_SHIFT: u32 = 10;
const REQUEST_BITS: u32 = (1 << BODY_SHIFT) - 1;

/// The fixed responses for one body, built once (they live as long as the process).
#[derive(Debug, Clone, Copy)]
pub struct Responses {
    /// By [HEAD?][keep-alive header?][close?]
    ok: [[[&'static [u8]; 2]; 2]; 2],
    pub bad_request: &'static [u8],
    pub not_allowed: &'static [u8],
    /// The longest of them (read for every receive window the http app offers).
    longest: usize,
}

impl Responses {
    pub fn new(body: &[u8]) -> Self {
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
        let mut r = Responses {
            ok,
            longest: 0,
            bad_request: leak(
                b"HTTP/1.1 400 Bad Request\r\nServer: xdptcp\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
            ),
            not_allowed: leak(
                b"HTTP/1.1 405 Method Not Allowed\r\nServer: xdptcp\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            ),
        };
        let ok = r.ok.iter().flatten().flatten().map(|r| r.len());
        r.longest = ok.chain([r.bad_request.len(), r.not_allowed.len()]).max().unwrap_or(0);
        r
    }

    /// The response to a plain HTTP/1.1 keep-alive GET.
    pub fn keep_alive_get(&self) -> &'static [u8] {
        self.ok[0][0][0]
    }

    /// The longest response there is (a GET with `Connection: close`).
    pub fn longest(&self) -> usize {
        self.longest
    }
}

/// Bytes of headers a `200` response adds to its body at most (what [`Responses::new`] writes, with a
/// Content-Length of 20 digits).
const HEADERS_AT_MOST: usize = 160;

/// The send queue a connection needs so that the longest response to a body of `body_len` bytes fits in it at
/// once (a response waits until it does): `default`, or more for a larger body.
pub fn send_buffer_for(body_len: usize, default: u32) -> u32 {
    u32::try_from(body_len.saturating_add(HEADERS_AT_MOST)).unwrap_or(u32::MAX).max(default)
}

/// The shortest request that earns a response: `GET / HTTP/1.0\n\n`. (An error response ends the connection and
/// is dropped when it does not fit, so it needs no room kept for it.)
const SHORTEST_REQUEST: usize = 16;
/// The least window worth offering: an ordinary request with its headers, and more than an MSS, so that the
/// update that reopens a closed window is announced (RFC 9293 §3.8.6.2.2's receiver-side silly window rule).
const ONE_REQUEST: usize = 4096;

/// The receive window for a connection whose send queue (of `send_buffer` bytes) has `send_capacity` free.
///
/// Refusing bytes already inside the window makes the client send them again as if they were lost; a window
/// closed in time tells it to wait, as a kernel server's full receive buffer does. So the window is one
/// [`SHORTEST_REQUEST`] per response that still fits: however a client pipelines, nothing it may send is
/// refused. That only works while an empty queue holds the responses to [`ONE_REQUEST`] bytes of requests (256
/// responses: bodies up to about 100 bytes in the default 64 KiB). With larger responses a sound window would be
/// too small to carry one request (or to be announced when it opens), so while one response fits the window is
/// [`ONE_REQUEST`]: a client that pipelines more than fits is refused the excess, and sends it again.
pub fn request_window(r: &Responses, send_capacity: usize, send_buffer: usize) -> usize {
    let longest = r.longest().max(1);
    let fit = send_capacity / longest;
    if fit == 0 {
        return 0;
    }
    let sound = fit.saturating_mul(SHORTEST_REQUEST);
    if (send_buffer / longest).saturating_mul(SHORTEST_REQUEST) >= ONE_REQUEST {
        sound
    } else {
        sound.max(ONE_REQUEST)
    }
}

/// What one line of a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing to send; the request state becomes this.
    Next(u32),
    /// The request is complete: send `response`, then the state becomes `next` (with [`DONE`] when the
    /// connection must close after it).
    Respond { response: &'static [u8], next: u32, close: bool },
    /// Send this error response and close.
    Fail(&'static [u8]),
}

/// Reads one complete line (with its line ending) in request state `st`.
pub fn on_line(r: &Responses, st: u32, raw: &[u8]) -> Step {
    let line = raw.strip_suffix(b"\n").unwrap_or(raw);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut st = st;
    if st & IN_HEADERS == 0 {
        if line.is_empty() {
            return Step::Next(st); // RFC 9112 §2.2: empty lines before a request line are ignored.
        }
        return match parse_request_line(line) {
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
                Step::Next(st)
            }
            None => Step::Fail(r.bad_request),
        };
    }
    if line.is_empty() {
        return respond(r, st);
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Step::Fail(r.bad_request);
    };
    let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
    // RFC 9112 §5.1: no whitespace between name and colon (a reader that trimmed it would see a Content-Length
    // this one ignores); §5.2: a line that starts with whitespace is an obsolete fold. Both fail the token rule.
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Step::Fail(r.bad_request);
    }
    if name.eq_ignore_ascii_case(b"host") {
        // RFC 9112 §3.2: more than one Host is refused, as is a value with whitespace or controls inside.
        if st & HAS_HOST != 0 || value.iter().any(|&b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Step::Fail(r.bad_request);
        }
        st |= HAS_HOST;
    } else if name.eq_ignore_ascii_case(b"connection") {
        for token in value.split(|&b| b == b',').map(trim) {
            if token.eq_ignore_ascii_case(b"close") {
                st |= CONN_CLOSE;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                st |= CONN_KEEP_ALIVE;
            }
        }
    } else if name.eq_ignore_ascii_case(b"content-length") {
        // RFC 9112 §6.3: Content-Length fields that disagree make the framing unknowable (a request smuggled in
        // a body one reader skips and another parses), so they are an error, not "the last one wins".
        match parse_u32(value) {
            Some(n) if n <= MAX_BODY && (st & HAS_LENGTH == 0 || st >> BODY_SHIFT == n) => {
                st = (st & REQUEST_BITS) | HAS_LENGTH | (n << BODY_SHIFT)
            }
            _ => return Step::Fail(r.bad_request),
        }
    } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
        // Chunked request bodies are not supported; refusing is safer than guessing where they end.
        return Step::Fail(r.bad_request);
    }
    Step::Next(st)
}

/// The blank line ended a request.
fn respond(r: &Responses, st: u32) -> Step {
    if st & HTTP10 == 0 && st & HAS_HOST == 0 {
        return Step::Fail(r.bad_request); // RFC 9112 §3.2: an HTTP/1.1 request without Host.
    }
    if st & BAD_METHOD != 0 {
        return Step::Fail(r.not_allowed);
    }
    let close = st & CONN_CLOSE != 0 || (st & HTTP10 != 0 && st & CONN_KEEP_ALIVE == 0);
    let keep_alive_header = st & HTTP10 != 0 && !close;
    let response = r.ok[usize::from(st & HEAD != 0)][usize::from(keep_alive_header)][usize::from(close)];
    let body = st >> BODY_SHIFT;
    let next = if close {
        DONE
    } else if body > 0 {
        IN_BODY | (body << BODY_SHIFT)
    } else {
        0
    };
    Step::Respond { response, next, close }
}

/// In state `st` (with [`IN_BODY`]), skips up to `available` bytes of the body: how many, and the state after.
pub fn skip_body(st: u32, available: usize) -> (usize, u32) {
    let left = st >> BODY_SHIFT;
    let skip = (left as usize).min(available);
    let left = left - skip as u32;
    (skip, if left == 0 { 0 } else { IN_BODY | (left << BODY_SHIFT) })
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

/// RFC 9110 §5.6.2: the characters of a token.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
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
    fn every_response_fits_the_send_buffer_made_for_its_body() {
        for len in [0, 18, 1000, 65_536, 1 << 20] {
            let r = Responses::new(&vec![b'x'; len]);
            assert!(r.longest() <= send_buffer_for(len, 0) as usize, "body {len}: {}", r.longest());
            assert!(r.longest() > len);
        }
        assert_eq!(send_buffer_for(18, 65_536), 65_536, "small bodies keep the default");
        assert_eq!(send_buffer_for(usize::MAX, 65_536), u32::MAX);
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

    #[test]
    fn rfc9112_6_3_content_lengths_that_disagree_are_refused_and_repeats_that_agree_are_not() {
        let r = Responses::new(b"x");
        let Step::Next(st) = after(&r, &[b"GET / HTTP/1.1\r\n", b"Host: x\r\n"]) else { panic!() };
        let Step::Next(cl) = on_line(&r, st, b"Content-Length: 5\r\n") else { panic!() };
        assert_eq!(on_line(&r, cl, b"Content-Length: 7\r\n"), Step::Fail(r.bad_request));
        let Step::Next(zero) = on_line(&r, st, b"Content-Length: 0\r\n") else { panic!() };
        assert_eq!(on_line(&r, zero, b"Content-Length: 5\r\n"), Step::Fail(r.bad_request), "0, then 5");
        let Step::Next(again) = on_line(&r, cl, b"content-length:5\r\n") else { panic!() };
        let Step::Respond { next, .. } = on_line(&r, again, b"\r\n") else { panic!() };
        assert_eq!(skip_body(next, 100), (5, 0));
        // The largest body still fits above the flags.
        let max = format!("Content-Length: {MAX_BODY}\r\n");
        let Step::Next(big) = on_line(&r, st, max.as_bytes()) else { panic!() };
        let Step::Respond { next, .. } = on_line(&r, big, b"\r\n") else { panic!() };
        assert_eq!(skip_body(next, usize::MAX), (MAX_BODY as usize, 0));
    }

    #[test]
    fn rfc9112_6_3_a_body_is_skipped_by_its_length_across_reads() {
        let r = Responses::new(b"x");
        let Step::Next(st) = after(&r, &[b"GET / HTTP/1.1\r\n", b"Host: x\r\n"]) else { panic!() };
        let Step::Next(st) = on_line(&r, st, b"Content-Length: 5\r\n") else { panic!() };
        let Step::Respond { next, close: false, .. } = on_line(&r, st, b"\r\n") else { panic!() };
        assert_eq!(skip_body(next, 3), (3, IN_BODY | (2 << BODY_SHIFT)));
        assert_eq!(skip_body(IN_BODY | (2 << BODY_SHIFT), 10), (2, 0));
    }

    /// The state after the request line `line` and the fields `fields`, or the step that ended it early.
    fn after(r: &Responses, lines: &[&[u8]]) -> Step {
        let mut st = 0;
        for l in lines {
            match on_line(r, st, l) {
                Step::Next(n) => st = n,
                other => return other,
            }
        }
        Step::Next(st)
    }

    #[test]
    fn rfc9112_5_1_whitespace_between_a_field_name_and_its_colon_is_refused() {
        let r = Responses::new(b"x");
        // Read as a new request by a reader that ignored the malformed Content-Length: refused, not guessed.
        let req: [&[u8]; 3] = [b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"Content-Length : 18\r\n"];
        assert_eq!(after(&r, &req), Step::Fail(r.bad_request));
        assert_eq!(after(&r, &[b"GET / HTTP/1.1\r\n", b"Host\t: x\r\n"]), Step::Fail(r.bad_request));
        assert_eq!(after(&r, &[b"GET / HTTP/1.1\r\n", b": x\r\n"]), Step::Fail(r.bad_request), "empty name");
        assert_eq!(after(&r, &[b"GET / HTTP/1.1\r\n", b"X(y): x\r\n"]), Step::Fail(r.bad_request));
        assert!(matches!(after(&r, &[b"GET / HTTP/1.1\r\n", b"X-Odd_Name~!: v\r\n"]), Step::Next(_)));
    }

    #[test]
    fn rfc9112_5_2_an_obsolete_line_fold_is_refused() {
        let r = Responses::new(b"x");
        let folded: [&[u8]; 4] =
            [b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"X-A: 1\r\n", b" Transfer-Encoding: chunked\r\n"];
        assert_eq!(after(&r, &folded), Step::Fail(r.bad_request));
        assert_eq!(after(&r, &[b"GET / HTTP/1.1\r\n", b"\tX: 1\r\n"]), Step::Fail(r.bad_request));
    }

    #[test]
    fn rfc9112_3_2_an_http11_request_needs_exactly_one_valid_host() {
        let r = Responses::new(b"x");
        let end = |lines: &[&[u8]]| {
            let Step::Next(st) = after(&r, lines) else { panic!("refused before its end: {lines:?}") };
            on_line(&r, st, b"\r\n")
        };
        assert_eq!(end(&[b"GET / HTTP/1.1\r\n"]), Step::Fail(r.bad_request), "no Host");
        assert!(matches!(end(&[b"GET / HTTP/1.1\r\n", b"host: a.example:80\r\n"]), Step::Respond { .. }));
        assert!(matches!(end(&[b"GET / HTTP/1.1\r\n", b"Host:\r\n"]), Step::Respond { .. }), "empty is valid");
        assert!(matches!(end(&[b"GET / HTTP/1.0\r\n"]), Step::Respond { .. }), "HTTP/1.0 needs none");
        let two: [&[u8]; 3] = [b"GET / HTTP/1.1\r\n", b"Host: a\r\n", b"Host: a\r\n"];
        assert_eq!(after(&r, &two), Step::Fail(r.bad_request), "two Hosts, even equal");
        assert_eq!(after(&r, &[b"GET / HTTP/1.1\r\n", b"Host: a b\r\n"]), Step::Fail(r.bad_request));
        // The Host check comes before the method's: a POST without Host is a bad request, with one a 405.
        assert_eq!(end(&[b"POST / HTTP/1.1\r\n"]), Step::Fail(r.bad_request));
        assert_eq!(end(&[b"POST / HTTP/1.1\r\n", b"Host: a\r\n"]), Step::Fail(r.not_allowed));
    }

    #[test]
    fn the_request_window_is_sound_while_an_empty_queue_answers_one_request_and_one_request_wide_after() {
        let small = Responses::new(b"Hello from xdptcp\n");
        let buf = 64 * 1024;
        let fit = |cap: usize| cap / small.longest();
        // Sound: one shortest request per response that fits, whatever is queued, down to a closed window.
        for cap in [buf, buf / 2, 5_000, small.longest(), small.longest() - 1, 0] {
            assert_eq!(request_window(&small, cap, buf), fit(cap) * SHORTEST_REQUEST, "{cap} free");
        }
        // A body too large for a sound window of one request: one request's worth while a response fits.
        let big = Responses::new(&[b'x'; 20_000]);
        let buf = send_buffer_for(20_000, 64 * 1024) as usize;
        assert_eq!(request_window(&big, buf, buf), ONE_REQUEST);
        assert_eq!(request_window(&big, big.longest(), buf), ONE_REQUEST);
        assert_eq!(request_window(&big, big.longest() - 1, buf), 0, "closed until a response fits");
    }
}

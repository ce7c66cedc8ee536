//! An incremental reader of one HTTP/1.x response (RFC 9112): status line, headers, then a body delimited by
//! `Content-Length` or, without one, by the server's close. Bytes may arrive split anywhere. The load generator's
//! client side reads responses with it; it lives with the apps, in the sans-IO core, so that it is fuzzed
//! (`fuzz/fuzz_targets/http_response.rs`) like every other parser.
//!
//! It keeps a dozen bytes of state per connection and never buffers or allocates: a load generator reads
//! hundreds of thousands of responses a second and only needs the status code and where the body ends. It never
//! interprets anything beyond that (no chunked bodies, no trailers): what it does not understand is `Bad`.

/// Longest status or header line accepted.
const MAX_LINE: u16 = 8 * 1024;
const CONTENT_LENGTH: &[u8] = b"content-length:";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Status,
    Headers,
    Body,
    /// No Content-Length: the body ends when the server closes.
    UntilClose,
    Done,
    Bad,
}

/// Where a response stands after some bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// More bytes are needed.
    More,
    /// The whole response has arrived; `used` bytes of the last input belonged to it.
    Done { status: u16, used: usize },
    /// Not a response this reader understands (or too long a line).
    Bad,
}

/// The state of one response being read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResponseReader {
    phase: Phase,
    status: u16,
    /// Bytes of the current line so far (carriage returns not counted).
    line: u16,
    /// The current header line still spells `content-length:` so far, or is in its value.
    in_length: bool,
    has_length: bool,
    /// Where the Content-Length value stands: whitespace before its digits, the digits, whitespace after them.
    length_at: LengthAt,
    /// Content-Length while reading it, then the body bytes still expected.
    left: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum LengthAt {
    #[default]
    Before,
    Digits,
    After,
}

impl ResponseReader {
    pub const fn new() -> Self {
        ResponseReader {
            phase: Phase::Status,
            status: 0,
            line: 0,
            in_length: false,
            has_length: false,
            length_at: LengthAt::Before,
            left: 0,
        }
    }

    /// The status code, once the status line has been read (0 before).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Feeds the next bytes of the stream.
    pub fn feed(&mut self, data: &[u8]) -> Progress {
        let mut i = 0;
        while i < data.len() {
            match self.phase {
                Phase::Done => return Progress::Done { status: self.status, used: 0 },
                Phase::Bad => return Progress::Bad,
                Phase::UntilClose => return Progress::More,
                Phase::Body => {
                    let take = (self.left as usize).min(data.len() - i);
                    i += take;
                    self.left -= take as u32;
                    if self.left == 0 {
                        self.phase = Phase::Done;
                        return Progress::Done { status: self.status, used: i };
                    }
                }
                Phase::Status | Phase::Headers => {
                    let b = data[i];
                    i += 1;
                    if let Some(done) = self.header_byte(b) {
                        if done {
                            return Progress::Done { status: self.status, used: i };
                        }
                        if self.phase == Phase::Bad {
                            return Progress::Bad;
                        }
                    }
                }
            }
        }
        match self.phase {
            Phase::Bad => Progress::Bad,
            Phase::Done => Progress::Done { status: self.status, used: i },
            _ => Progress::More,
        }
    }

    /// The server closed: a body delimited by the close is complete; anything else is cut short.
    pub fn on_close(&mut self) -> Progress {
        match self.phase {
            Phase::UntilClose | Phase::Done => {
                self.phase = Phase::Done;
                Progress::Done { status: self.status, used: 0 }
            }
            Phase::Bad => Progress::Bad,
            _ => Progress::More,
        }
    }

    /// One byte of the status line or headers. `Some(true)` when the response is complete with it, `Some(false)`
    /// when it changed the phase, `None` otherwise.
    #[inline]
    fn header_byte(&mut self, b: u8) -> Option<bool> {
        match b {
            b'\r' => None,
            b'\n' => Some(self.end_of_line()),
            _ => {
                let at = usize::from(self.line);
                self.line += 1;
                if self.line > MAX_LINE {
                    self.phase = Phase::Bad;
                    return Some(false);
                }
                if self.phase == Phase::Status {
                    self.status_byte(at, b)
                } else {
                    self.header_line_byte(at, b)
                }
            }
        }
    }

    /// `HTTP/1.x SP DDD ...`: checks the version and collects the code.
    fn status_byte(&mut self, at: usize, b: u8) -> Option<bool> {
        const PREFIX: &[u8] = b"HTTP/1.";
        let ok = match at {
            0..=6 => PREFIX.get(at) == Some(&b),
            7 => b == b'0' || b == b'1',
            8 => b == b' ',
            9..=11 => {
                if b.is_ascii_digit() {
                    self.status = self.status * 10 + u16::from(b - b'0');
                    true
                } else {
                    false
                }
            }
            12 => b == b' ',
            _ => true,
        };
        if ok {
            None
        } else {
            self.phase = Phase::Bad;
            Some(false)
        }
    }

    fn header_line_byte(&mut self, at: usize, b: u8) -> Option<bool> {
        if at == 0 {
            self.in_length = true;
        }
        if !self.in_length {
            return None;
        }
        if at < CONTENT_LENGTH.len() {
            self.in_length = b.to_ascii_lowercase() == CONTENT_LENGTH[at];
            if self.in_length && at + 1 == CONTENT_LENGTH.len() {
                if self.has_length {
                    self.phase = Phase::Bad; // two lengths: refuse rather than guess (RFC 9112 §6.3)
                    return Some(false);
                }
                self.has_length = true;
                self.length_at = LengthAt::Before;
                self.left = 0;
            }
            return None;
        }
        match b {
            b' ' | b'\t' => {
                if self.length_at == LengthAt::Digits {
                    self.length_at = LengthAt::After;
                }
                None
            }
            // Digits after the value's trailing whitespace (`1 2`) are not one number (RFC 9110 §8.6).
            b'0'..=b'9' if self.length_at == LengthAt::After => {
                self.phase = Phase::Bad;
                Some(false)
            }
            b'0'..=b'9' => match self.left.checked_mul(10).and_then(|v| v.checked_add(u32::from(b - b'0'))) {
                Some(v) => {
                    self.left = v;
                    self.length_at = LengthAt::Digits;
                    None
                }
                None => {
                    self.phase = Phase::Bad;
                    Some(false)
                }
            },
            _ => {
                self.phase = Phase::Bad;
                Some(false)
            }
        }
    }

    /// A line ended: the status line, a header, or the blank line before the body.
    fn end_of_line(&mut self) -> bool {
        let empty = self.line == 0;
        let length_line = self.in_length && usize::from(self.line) >= CONTENT_LENGTH.len();
        self.line = 0;
        self.in_length = false;
        if length_line && self.length_at == LengthAt::Before {
            self.phase = Phase::Bad; // `Content-Length:` with no digits
            return false;
        }
        match self.phase {
            Phase::Status => {
                if empty {
                    return false; // stray empty lines before a status line are tolerated
                }
                if self.status < 100 {
                    self.phase = Phase::Bad;
                } else {
                    self.phase = Phase::Headers;
                }
                false
            }
            Phase::Headers if empty => {
                // RFC 9110 §15.2: a client reads past any interim (1xx) response to the final one; 101 is final
                // for HTTP (the connection then speaks another protocol), so it ends the response as others do.
                if (100..200).contains(&self.status) && self.status != 101 {
                    *self = ResponseReader::new();
                    return false;
                }
                // 101, 204 and 304 have no body (RFC 9112 §6.3).
                if self.status < 200 || self.status == 204 || self.status == 304 {
                    self.phase = Phase::Done;
                    return true;
                }
                if !self.has_length {
                    self.phase = Phase::UntilClose;
                    return false;
                }
                if self.left == 0 {
                    self.phase = Phase::Done;
                    return true;
                }
                self.phase = Phase::Body;
                false
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nServer: xdptcp\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n\r\nHello from xdptcp\n";

    #[test]
    fn rfc9112_6_3_content_length_delimits_the_body() {
        let mut r = ResponseReader::new();
        assert_eq!(r.feed(OK), Progress::Done { status: 200, used: OK.len() });
        assert_eq!(r.status(), 200);
    }

    #[test]
    fn responses_split_at_every_byte_read_the_same() {
        for cut in 0..=OK.len() {
            let mut r = ResponseReader::new();
            let first = r.feed(&OK[..cut]);
            if cut < OK.len() {
                assert_eq!(first, Progress::More, "cut at {cut}");
                assert_eq!(r.feed(&OK[cut..]), Progress::Done { status: 200, used: OK.len() - cut }, "cut at {cut}");
            } else {
                assert_eq!(first, Progress::Done { status: 200, used: OK.len() });
            }
        }
        let mut r = ResponseReader::new();
        for (i, b) in OK.iter().enumerate() {
            let p = r.feed(std::slice::from_ref(b));
            assert_eq!(p == Progress::More, i + 1 < OK.len(), "byte {i}");
        }
    }

    #[test]
    fn bytes_after_the_response_are_not_used() {
        let mut both = OK.to_vec();
        both.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        let mut r = ResponseReader::new();
        assert_eq!(r.feed(&both), Progress::Done { status: 200, used: OK.len() });
    }

    #[test]
    fn header_names_are_case_insensitive_and_values_trimmed() {
        let a: &[u8] = b"HTTP/1.0 404 Not Found\r\nCONTENT-length:   2 \r\nX: y\r\n\r\nab";
        assert_eq!(ResponseReader::new().feed(a), Progress::Done { status: 404, used: a.len() });
        let b: &[u8] = b"HTTP/1.1 200 OK\nContent-Lengthy: 5\nContent-Length: 0\n\n";
        assert_eq!(ResponseReader::new().feed(b), Progress::Done { status: 200, used: b.len() });
    }

    #[test]
    fn without_a_length_the_body_runs_to_the_close() {
        let mut r = ResponseReader::new();
        assert_eq!(r.feed(b"HTTP/1.1 200 OK\r\n\r\nsome body"), Progress::More);
        assert_eq!(r.feed(b"more"), Progress::More);
        assert_eq!(r.on_close(), Progress::Done { status: 200, used: 0 });
        let mut r = ResponseReader::new();
        assert_eq!(r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"), Progress::More);
        assert_eq!(r.on_close(), Progress::More, "cut short: still incomplete");
        let mut r = ResponseReader::new();
        assert_eq!(r.feed(b"HTTP/1.1 204 No Content\r\n\r\n"), Progress::Done { status: 204, used: 27 });
    }

    #[test]
    fn what_is_not_a_response_is_bad() {
        for bad in [
            &b"HTTP/2.0 200 OK\r\n"[..],
            b"SSH-2.0-OpenSSH\r\n",
            b"HTTP/1.1 2x0 OK\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n",
            b"HTTP/1.1 099 Odd\r\n",
        ] {
            assert_eq!(ResponseReader::new().feed(bad), Progress::Bad, "{:?}", String::from_utf8_lossy(bad));
        }
        let long = [b'x'; 9000];
        let mut r = ResponseReader::new();
        assert_eq!(r.feed(b"HTTP/1.1 200 OK\r\nX: "), Progress::More);
        assert_eq!(r.feed(&long), Progress::Bad);
    }

    #[test]
    fn rfc9110_15_2_interim_responses_are_read_past_to_the_final_one() {
        let both: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab";
        assert_eq!(ResponseReader::new().feed(both), Progress::Done { status: 200, used: both.len() });
        for cut in 0..=both.len() {
            let mut r = ResponseReader::new();
            let first = r.feed(&both[..cut]);
            if cut < both.len() {
                assert_eq!(first, Progress::More, "cut at {cut}");
                assert_eq!(
                    r.feed(&both[cut..]),
                    Progress::Done { status: 200, used: both.len() - cut },
                    "cut at {cut}"
                );
            } else {
                assert_eq!(first, Progress::Done { status: 200, used: both.len() });
            }
        }
        // 101 ends HTTP on the connection: it is the final response.
        let up: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n";
        assert_eq!(ResponseReader::new().feed(up), Progress::Done { status: 101, used: up.len() });
    }

    #[test]
    fn rfc9110_8_6_a_content_length_must_be_one_number() {
        for bad in [&b"Content-Length: 1 2"[..], b"Content-Length:", b"Content-Length:  \t", b"Content-Length: 1\t2"] {
            let mut resp = b"HTTP/1.1 200 OK\r\n".to_vec();
            resp.extend_from_slice(bad);
            resp.extend_from_slice(b"\r\n\r\n0123456789ab");
            assert_eq!(ResponseReader::new().feed(&resp), Progress::Bad, "{:?}", String::from_utf8_lossy(bad));
        }
        let spaced: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: \t12 \t\r\n\r\n0123456789ab";
        assert_eq!(ResponseReader::new().feed(spaced), Progress::Done { status: 200, used: spaced.len() });
    }
}

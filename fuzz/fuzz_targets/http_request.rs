//! Any request bytes, delivered in chunks of any size (the first input byte picks it), read the way the `http`
//! app and the Linux reference server read them: line by line through `http1::on_line`, bodies skipped by
//! `http1::skip_body`. Nothing panics, every answer is one of the fixed responses, a line longer than
//! `MAX_LINE` is refused, a closed request reads nothing more, and a body is never skipped past its length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use xdptcp::app::http1::{on_line, skip_body, Responses, Step, BODY_SHIFT, DONE, IN_BODY, MAX_BODY, MAX_LINE};

fn responses() -> &'static Responses {
    static R: OnceLock<Responses> = OnceLock::new();
    R.get_or_init(|| Responses::new(b"fuzz"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else { return };
    let r = responses();
    let chunk = usize::from(split % 64) + 1;
    let (mut st, mut partial, mut answered) = (0u32, Vec::new(), 0usize);
    'chunks: for piece in stream.chunks(chunk) {
        let mut at = 0;
        while at < piece.len() {
            if st & DONE != 0 {
                break 'chunks;
            }
            if st & IN_BODY != 0 {
                let left = st >> BODY_SHIFT;
                assert!(left > 0 && left <= MAX_BODY);
                let (skip, next) = skip_body(st, piece.len() - at);
                assert!(skip <= piece.len() - at && skip as u32 <= left, "skipped past the body");
                assert_eq!(next >> BODY_SHIFT, left - skip as u32);
                at += skip;
                st = next;
                continue;
            }
            let rest = &piece[at..];
            let Some(i) = rest.iter().position(|&b| b == b'\n') else {
                partial.extend_from_slice(rest);
                if partial.len() > MAX_LINE {
                    break 'chunks; // the app answers 400 and closes
                }
                continue 'chunks;
            };
            partial.extend_from_slice(&rest[..=i]);
            at += i + 1;
            let line = std::mem::take(&mut partial);
            if line.len() > MAX_LINE + 1 {
                break 'chunks;
            }
            match on_line(r, st, &line) {
                Step::Next(next) => {
                    assert_eq!(next & DONE, 0, "a request ends only with a response");
                    st = next;
                }
                Step::Respond { response, next, close } => {
                    assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"), "not a fixed response");
                    assert_eq!(close, next & DONE != 0);
                    answered += 1;
                    st = next;
                }
                Step::Fail(response) => {
                    assert!(response == r.bad_request || response == r.not_allowed);
                    break 'chunks;
                }
            }
        }
    }
    // Every answer took at least a request line and a blank line.
    assert!(answered * 3 <= stream.len());
});

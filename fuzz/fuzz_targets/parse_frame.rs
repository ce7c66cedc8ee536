//! Any bytes: `parse_frame` must not panic or read past the input. Whatever parses must emit, and the emitted
//! frame must parse back to the canonical form of the first Repr. What is not TCP goes to the ICMP "too big"
//! parser, as `Endpoint::handle_frame` sends it, which must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdptcp::wire::{icmp, parse_frame, EmitError, ParseError};

fuzz_target!(|data: &[u8]| {
    let first = match parse_frame(data) {
        Ok(f) => f,
        Err(ParseError::NotTcp) => {
            let _ = icmp::parse_too_big(data);
            return;
        }
        Err(_) => return,
    };
    assert_eq!(first.tcp, first.tcp.canonical(), "a parsed TCP Repr is canonical");
    let need = first.frame_len();
    let mut buf = vec![0u8; need];
    match first.emit(&mut buf) {
        Ok(n) => assert_eq!(n, need, "frame_len matches what emit writes"),
        // Our option layout may be a few bytes longer than a packed original at the 64 KiB limit.
        Err(EmitError::PayloadTooLong(_)) => return,
        Err(e) => panic!("emit failed: {e}"),
    }
    let second = parse_frame(&buf).unwrap_or_else(|e| panic!("re-parse failed with {e}"));
    assert_eq!(second, first.canonical());
    // Too small by one byte is refused, never a panic.
    assert_eq!(first.emit(&mut buf[..need - 1]), Err(EmitError::BufferTooSmall { need, have: need - 1 }));
});

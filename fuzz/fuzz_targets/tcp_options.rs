//! Any option bytes (the first input byte picks SYN or not): parsing never panics, and emitting what was parsed
//! parses back to its canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdptcp::wire::TcpOptions;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let syn = selector & 1 != 0;
    let first = TcpOptions::parse(bytes, syn);
    if bytes.len() <= 40 {
        // From a real option space, nothing needs cutting to fit.
        assert_eq!(first, first.canonical(syn));
    }
    let mut buf = [0u8; 40];
    let n = first.emit(&mut buf, syn);
    assert_eq!(n, first.emitted_len(syn));
    assert_eq!(n % 4, 0);
    assert_eq!(TcpOptions::parse(&buf[..n], syn), first.canonical(syn));
});

//! Any response bytes (the first input byte picks a chunk size): the load generator's HTTP/1.x response reader
//! never panics, never says it used more bytes than it was given, and reads the same response, to the same byte,
//! whether the bytes arrive at once or split into chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdptcp::app::http1_response::{Progress, ResponseReader};

/// Where one reading ended: the status and how many bytes of the stream the response took, or a refusal, or
/// still waiting (then what the server's close makes of it).
#[derive(Debug, PartialEq, Eq)]
enum End {
    Done(u16, usize),
    Bad,
    More(Progress),
}

fn read(stream: &[u8], chunk: usize) -> End {
    let mut r = ResponseReader::new();
    let mut offset = 0;
    for piece in stream.chunks(chunk) {
        match r.feed(piece) {
            Progress::Done { status, used } => {
                assert!(used <= piece.len(), "used {used} of a {}-byte piece", piece.len());
                assert!((100..=999).contains(&status), "status {status}");
                assert_eq!(r.status(), status);
                return End::Done(status, offset + used);
            }
            Progress::Bad => return End::Bad,
            Progress::More => offset += piece.len(),
        }
    }
    End::More(r.on_close())
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else { return };
    let whole = read(stream, stream.len().max(1));
    let chunked = read(stream, usize::from(split % 32) + 1);
    assert_eq!(whole, chunked, "the split changed the reading");
});

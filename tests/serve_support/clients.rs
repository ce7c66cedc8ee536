//! Linux kernel TCP clients (std `TcpStream`) run on threads inside the client namespace: one exchange per
//! connection, shaped after each built-in app and close order, sequential or many in flight.
//!
//! Each exchange checks what it reads, so a wrong echo or a truncated response counts as a failure; a reset or
//! refusal the client sees is counted on its own.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// One connection's conversation, named after who closes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exchange {
    /// `--app close`: the server closes right after the handshake; the client reads EOF, then closes.
    Close,
    /// `--app echo`: the client sends, shuts its write side (it closes first), reads the echo to EOF.
    Echo,
    /// `--app http`, HTTP/1.1 keep-alive: two requests on one connection, then the client closes first and
    /// reads the server's FIN.
    HttpKeepAlive,
    /// `--app http`, `Connection: close`: the server closes first after its response.
    HttpClose,
    /// `--app http`, HTTP/1.0 without keep-alive: the server closes first after its response.
    Http10,
}

impl Exchange {
    /// True when the server sends the first FIN (and holds the TIME-WAIT).
    pub fn server_closes_first(self) -> bool {
        matches!(self, Exchange::Close | Exchange::HttpClose | Exchange::Http10)
    }

    /// The `--app` the server runs for this exchange.
    pub fn app(self) -> &'static str {
        match self {
            Exchange::Close => "close",
            Exchange::Echo => "echo",
            _ => "http",
        }
    }
}

/// What a batch of connections saw.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub ok: u64,
    pub failed: u64,
    /// Failures that were a reset, a refusal or an abort seen by the client.
    pub resets: u64,
    /// The first few failures, for the assertion message.
    pub examples: Vec<String>,
}

impl Tally {
    fn add(&mut self, r: Result<(), String>, reset: bool) {
        match r {
            Ok(()) => self.ok += 1,
            Err(e) => {
                self.failed += 1;
                if reset {
                    self.resets += 1;
                }
                if self.examples.len() < 5 {
                    self.examples.push(e);
                }
            }
        }
    }

    pub fn merge(&mut self, o: Tally) {
        self.ok += o.ok;
        self.failed += o.failed;
        self.resets += o.resets;
        for e in o.examples {
            if self.examples.len() < 5 {
                self.examples.push(e);
            }
        }
    }
}

const BODY: &[u8] = b"Hello from xdptcp\n";
/// Generous: a lost SYN costs the client 1 s, and the tests run in parallel on few cores.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn is_reset(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted)
        || e.kind() == ErrorKind::BrokenPipe
}

/// One connection to `dst` running `ex`. `n` makes each echo payload distinct.
pub fn exchange(dst: SocketAddr, ex: Exchange, n: u64) -> Result<(), (String, bool)> {
    exchange_with_timeout(dst, ex, n, IO_TIMEOUT)
}

/// [`exchange`] with another bound on the connect and on each read and write (loss tests, where a segment lost
/// several times in a row is retransmitted after seconds).
pub fn exchange_with_timeout(dst: SocketAddr, ex: Exchange, n: u64, timeout: Duration) -> Result<(), (String, bool)> {
    let io = |what: &str, e: std::io::Error| (format!("{what} {dst}: {e}"), is_reset(&e));
    let mut s = TcpStream::connect_timeout(&dst, timeout).map_err(|e| io("connect", e))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| io("timeout", e))?;
    s.set_write_timeout(Some(timeout)).map_err(|e| io("timeout", e))?;
    let bad = |what: String| (what, false);
    match ex {
        Exchange::Close => {
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).map_err(|e| io("read to EOF", e))?;
            if !rest.is_empty() {
                return Err(bad(format!("close app sent {} bytes", rest.len())));
            }
        }
        Exchange::Echo => {
            let msg = format!("echo {n} from a kernel client\n").into_bytes();
            s.write_all(&msg).map_err(|e| io("write", e))?;
            s.shutdown(Shutdown::Write).map_err(|e| io("shutdown", e))?;
            let mut back = Vec::new();
            s.read_to_end(&mut back).map_err(|e| io("read echo", e))?;
            if back != msg {
                return Err(bad(format!("echo mismatch: sent {msg:?}, got {back:?}")));
            }
        }
        Exchange::HttpKeepAlive => {
            for _ in 0..2 {
                s.write_all(b"GET / HTTP/1.1\r\nHost: xdptcp\r\n\r\n").map_err(|e| io("write", e))?;
                let r = read_response(&mut s).map_err(|e| io("read response", e))?;
                check_response(&r, false).map_err(bad)?;
            }
            s.shutdown(Shutdown::Write).map_err(|e| io("shutdown", e))?;
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).map_err(|e| io("read to EOF", e))?;
            if !rest.is_empty() {
                return Err(bad(format!("{} unexpected bytes after the responses", rest.len())));
            }
        }
        Exchange::HttpClose | Exchange::Http10 => {
            let req: &[u8] = if ex == Exchange::HttpClose {
                b"GET / HTTP/1.1\r\nHost: xdptcp\r\nConnection: close\r\n\r\n"
            } else {
                b"GET / HTTP/1.0\r\n\r\n"
            };
            s.write_all(req).map_err(|e| io("write", e))?;
            let mut r = Vec::new();
            s.read_to_end(&mut r).map_err(|e| io("read to EOF", e))?;
            check_response(&r, true).map_err(bad)?;
        }
    }
    Ok(())
}

/// Reads one response with a Content-Length body (the keep-alive case, where EOF does not end it).
fn read_response(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Ok(buf);
            }
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "EOF inside a response"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A whole 200 response with our body; `close` says whether it must announce `Connection: close`.
pub fn check_response(r: &[u8], close: bool) -> Result<(), String> {
    let text = String::from_utf8_lossy(r);
    if !text.starts_with("HTTP/1.1 200 OK\r\n") || !r.ends_with(BODY) {
        return Err(format!("bad response: {text:?}"));
    }
    if text.contains("Connection: close") != close {
        return Err(format!("Connection header wrong (close expected: {close}): {text:?}"));
    }
    Ok(())
}

/// The CPU the client threads run on: the last one, away from the server's worker (`--cpus 0` in the tests).
///
/// Without this, 200 runnable client threads share the worker's core, the worker waits several milliseconds for
/// its turn, and the clients' tail-loss probes (2·SRTT + 2 ticks: a few ms at veth round trips of tens of µs)
/// fire as retransmissions of segments that were never lost. A kernel server answers from softirq and never
/// waits for a turn; a user-space server on a real host has its own cores. `None` on a single-CPU machine.
pub fn client_cpu() -> Option<usize> {
    let ids = core_affinity::get_core_ids()?;
    (ids.len() > 1).then(|| ids.last().map(|c| c.id)).flatten()
}

/// `count` connections one after another from a thread in namespace `ns`.
pub fn sequential(ns: &str, dst: SocketAddr, ex: Exchange, count: u64) -> Tally {
    crate::common::in_netns(ns, || {
        if let Some(cpu) = client_cpu() {
            core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
        }
        let mut t = Tally::default();
        for n in 0..count {
            let r = exchange(dst, ex, n);
            let reset = r.as_ref().err().is_some_and(|e| e.1);
            t.add(r.map_err(|e| e.0), reset);
        }
        t
    })
}

/// `count` connections from `threads` threads in namespace `ns`, all started together so that about `threads`
/// connections are in flight at any time. Thread i talks to `dsts[i % dsts.len()]` (e.g. IPv4 and IPv6).
pub fn concurrent(ns: &str, dsts: &[SocketAddr], ex: Exchange, count: u64, threads: u64) -> Tally {
    let start = Arc::new(Barrier::new(threads as usize));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let dst = dsts[i as usize % dsts.len()];
            let share = count / threads + u64::from(i < count % threads);
            let start = start.clone();
            crate::common::spawn_in_netns(ns, move || {
                if let Some(cpu) = client_cpu() {
                    core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
                }
                start.wait();
                let mut t = Tally::default();
                for k in 0..share {
                    let r = exchange(dst, ex, i * 1_000_000 + k);
                    let reset = r.as_ref().err().is_some_and(|e| e.1);
                    t.add(r.map_err(|e| e.0), reset);
                }
                t
            })
        })
        .collect();
    let mut total = Tally::default();
    for h in handles {
        total.merge(h.join().expect("client thread"));
    }
    total
}

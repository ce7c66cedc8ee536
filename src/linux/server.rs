//! The Linux reference server: plain kernel TCP with epoll (through mio), one SO_REUSEPORT listener and one
//! pinned thread per worker, the same three apps as `xdptcp serve`. It is the baseline the project compares
//! itself with, so it is built to be fast, not to be beaten: edge-triggered epoll, accept until EAGAIN, an
//! optimistic read right after accept (often the request, or the FIN, is already there and no epoll_ctl is
//! needed), one write per read, TCP_NODELAY inherited from the listener, and no allocation per connection unless
//! a write comes up short.
//!
//! It closes as `xdptcp serve` does, with a FIN even when the peer's bytes are still unread (see [`super::linger`]:
//! close() alone would answer them with a reset). It never touches AF_XDP or BPF; it owns its sockets and threads, and stops on SIGINT/SIGTERM or after
//! `run_for`, then reports its counters.

use super::http::{HttpConn, Responses};
use super::linger::Lingering;
use crate::app::http1::send_buffer_for;
use crate::runtime::pin::pin_current_thread;
use crate::tcp::Config;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What every connection runs (as in `xdptcp serve`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerApp {
    /// Close right after accepting (the server sends the first FIN; bytes that still come are discarded).
    Close,
    /// Echo every byte; close after the client's FIN.
    Echo,
    /// One static HTTP response per request (keep-alive, `Connection: close`, HTTP/1.0 as in `app::http`).
    Http,
}

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub listen: SocketAddr,
    pub threads: usize,
    /// CPUs to pin threads to, in order (thread i on `cpus[i % len]`); empty: unpinned.
    pub cpus: Vec<usize>,
    pub app: ServerApp,
    pub backlog: i32,
    pub run_for: Option<Duration>,
    pub http_body: Vec<u8>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            threads: 1,
            cpus: Vec::new(),
            app: ServerApp::Http,
            backlog: 4096,
            run_for: None,
            http_body: b"Hello from xdptcp\n".to_vec(),
        }
    }
}

/// Counters of one thread, or of all summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerStats {
    pub accepted: u64,
    /// Connections closed by us (after the app finished, or at once for `close`).
    pub closed: u64,
    /// Connections that ended with a reset or another socket error.
    pub errors: u64,
    pub accept_errors: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub http_responses: u64,
    /// Connections still open when the server stopped.
    pub open_at_exit: u64,
    /// The most output one connection held unsent (its peer not reading), in bytes.
    pub largest_pending: u64,
}

impl ServerStats {
    fn add(&mut self, o: &ServerStats) {
        self.accepted += o.accepted;
        self.closed += o.closed;
        self.errors += o.errors;
        self.accept_errors += o.accept_errors;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.http_responses += o.http_responses;
        self.open_at_exit += o.open_at_exit;
        self.largest_pending = self.largest_pending.max(o.largest_pending);
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{what} {addr}: {source}")]
    Socket { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    #[error("thread {0} failed: {1}")]
    Thread(usize, String),
}

const LISTENER: Token = Token(usize::MAX);
/// Bytes of requests the `http` app reads at once. What bounds the responses a connection holds is
/// [`Worker::out_limit`]; this bounds the requests it holds back meanwhile (the kernel holds the rest, and flow
/// control stops a peer that sends without reading).
const HTTP_READ: usize = 4096;

/// One SO_REUSEPORT listener, nonblocking, TCP_NODELAY (inherited by accepted sockets).
fn listener(addr: SocketAddr, backlog: i32) -> Result<std::net::TcpListener, ServerError> {
    let err = |what| move |source| ServerError::Socket { what, addr, source };
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(err("socket for"))?;
    s.set_reuse_address(true).map_err(err("SO_REUSEADDR on"))?;
    s.set_reuse_port(true).map_err(err("SO_REUSEPORT on"))?;
    s.set_nodelay(true).map_err(err("TCP_NODELAY on"))?;
    s.set_nonblocking(true).map_err(err("O_NONBLOCK on"))?;
    s.bind(&addr.into()).map_err(err("bind"))?;
    s.listen(backlog).map_err(err("listen on"))?;
    Ok(s.into())
}

/// Binds every listener, starts the threads, calls `ready` once all listen, and serves until `stop` (or
/// `run_for`). Returns the summed counters.
pub fn serve(
    opts: &ServerOptions,
    stop: &'static AtomicBool,
    ready: impl FnOnce(),
) -> Result<ServerStats, ServerError> {
    if opts.threads == 0 || opts.threads > 1024 {
        return Err(ServerError::Invalid(format!("--threads {}: use 1 to 1024", opts.threads)));
    }
    if opts.listen.port() == 0 {
        return Err(ServerError::Invalid("--listen needs a port from 1 to 65535".into()));
    }
    let listeners = (0..opts.threads).map(|_| listener(opts.listen, opts.backlog)).collect::<Result<Vec<_>, _>>()?;
    let responses = Responses::new(&opts.http_body);
    let deadline = opts.run_for.map(|d| Instant::now() + d);
    let out_limit = send_buffer_for(opts.http_body.len(), Config::default().send_buffer) as usize;
    let mut handles = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let cpu = (!opts.cpus.is_empty()).then(|| opts.cpus[i % opts.cpus.len()]);
        let (app, responses) = (opts.app, responses);
        let h = std::thread::Builder::new()
            .name(format!("linux-srv{i}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    pin_current_thread(cpu, &format!("Linux server thread {i}"));
                }
                Worker::new(l, app, responses, out_limit)?.run(stop, deadline)
            })
            .map_err(|e| ServerError::Thread(i, e.to_string()))?;
        handles.push(h);
    }
    ready();
    let mut total = ServerStats::default();
    let mut failure = None;
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(s)) => total.add(&s),
            Ok(Err(e)) => failure = Some(ServerError::Thread(i, e.to_string())),
            Err(_) => failure = Some(ServerError::Thread(i, "panicked".into())),
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// One accepted connection.
struct Conn {
    stream: TcpStream,
    http: HttpConn,
    /// Requests read but not answered yet: their responses did not fit under [`Worker::out_limit`]. They are
    /// answered, before anything more is read, once the output has drained.
    input: Vec<u8>,
    /// Output a write could not take yet.
    pending: Vec<u8>,
    sent: usize,
    /// Close once `pending` is written (the peer's FIN, or the app said so).
    close_after: bool,
    /// The peer's FIN has been read: nothing more can arrive, so close() sends a FIN, not a reset.
    peer_fin: bool,
    /// Our FIN has gone (shutdown): only reading and discarding until the peer's (see [`super::linger`]).
    lingering: bool,
    /// Its ticket in [`Worker::lingering`], once it waits there (0: not yet).
    ticket: u64,
    /// Registered with WRITABLE interest too.
    want_write: bool,
}

enum Verdict {
    Keep,
    Close,
    Error,
    /// Closed after lingering: already counted when our FIN went.
    Done,
}

struct Worker {
    poll: Poll,
    listener: TcpListener,
    app: ServerApp,
    responses: Responses,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    buf: Box<[u8]>,
    out: Vec<u8>,
    /// Most response bytes one connection produces before its output drains: what `xdptcp serve` gives a
    /// connection's send queue for this body (`app::http` sends a response only when it fits there), so both
    /// push back on a peer that pipelines without reading at the same point, whatever the body's size.
    out_limit: usize,
    stats: ServerStats,
    lingering: Lingering,
    /// The last accept failed for want of a resource (descriptors, memory): retry it every [`ACCEPT_RETRY`].
    accept_stalled: bool,
}

/// How soon a held-up accept is retried.
const ACCEPT_RETRY: Duration = Duration::from_millis(1);

impl Worker {
    fn new(l: std::net::TcpListener, app: ServerApp, responses: Responses, out_limit: usize) -> std::io::Result<Self> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::from_std(l);
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Worker {
            poll,
            listener,
            app,
            responses,
            conns: Vec::with_capacity(4096),
            free: Vec::with_capacity(4096),
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
            out: Vec::with_capacity(64 * 1024),
            out_limit,
            stats: ServerStats::default(),
            lingering: Lingering::default(),
            accept_stalled: false,
        })
    }

    fn run(mut self, stop: &AtomicBool, deadline: Option<Instant>) -> std::io::Result<ServerStats> {
        let mut events = Events::with_capacity(1024);
        loop {
            // While accept is held up, come back soon: the listener may never signal again (see `accept_all`).
            let wait = if self.accept_stalled { ACCEPT_RETRY } else { Duration::from_millis(100) };
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept_all(),
                    Token(i) => self.ready(i),
                }
            }
            if self.accept_stalled {
                self.accept_all();
            }
            if !self.lingering.is_empty() {
                let now = Instant::now();
                while let Some((slot, ticket)) = self.lingering.expired(now) {
                    self.stop_lingering(slot, ticket);
                }
            }
            if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        self.stats.open_at_exit = self.conns.iter().filter(|c| c.is_some()).count() as u64;
        Ok(self.stats)
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.stats.accepted += 1;
                    self.start(stream);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.accept_stalled = false;
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // ECONNABORTED: that one connection is gone, go on. EMFILE, ENFILE, ENOBUFS, ENOMEM: the queued
                // connections stay queued, and waiting for the listener's next edge is not enough: with the
                // accept queue full, new SYNs are dropped and that edge never comes. Retry shortly instead
                // (`run`), once connections have closed and given their descriptors back.
                // Lingering connections hold descriptors only as a courtesy: they give them back first.
                Err(e) => {
                    self.stats.accept_errors += 1;
                    if e.raw_os_error() != Some(libc::ECONNABORTED) {
                        if self.shed_lingering() {
                            continue;
                        }
                        self.accept_stalled = true;
                        return;
                    }
                }
            }
        }
    }

    /// Serves a new connection at once; registers it only if it has to wait.
    fn start(&mut self, stream: TcpStream) {
        let mut c = Conn {
            stream,
            http: HttpConn::default(),
            input: Vec::new(),
            pending: Vec::new(),
            sent: 0,
            close_after: self.app == ServerApp::Close,
            peer_fin: false,
            lingering: false,
            ticket: 0,
            want_write: false,
        };
        match self.drive(&mut c) {
            Verdict::Close => self.stats.closed += 1,
            Verdict::Error => self.stats.errors += 1,
            Verdict::Keep => {
                let slot = self.free.pop().unwrap_or_else(|| {
                    self.conns.push(None);
                    self.conns.len() - 1
                });
                let interest = if c.want_write { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
                if self.poll.registry().register(&mut c.stream, Token(slot), interest).is_err() {
                    self.stats.errors += 1;
                    self.free.push(slot);
                    return;
                }
                self.keep(slot, c);
            }
            Verdict::Done => {}
        }
    }

    /// Puts a connection (back) in its slot, starting its linger clock if it has just begun to linger.
    fn keep(&mut self, slot: usize, mut c: Conn) {
        if c.lingering && c.ticket == 0 {
            c.ticket = self.lingering.start(Instant::now(), slot);
        }
        self.conns[slot] = Some(c);
    }

    /// Closes the connection that lingers in `slot` under `ticket`, if it still does. Returns true if it did.
    fn stop_lingering(&mut self, slot: usize, ticket: u64) -> bool {
        if self.conns.get(slot).and_then(Option::as_ref).is_none_or(|c| c.ticket != ticket) {
            return false; // it closed by itself (the peer's FIN), and the slot may serve another by now
        }
        self.conns[slot] = None;
        self.free.push(slot);
        true
    }

    /// Closes every lingering connection at once. Returns true if that gave any descriptor back.
    fn shed_lingering(&mut self) -> bool {
        let mut any = false;
        for (slot, ticket) in self.lingering.all() {
            any |= self.stop_lingering(slot, ticket);
        }
        any
    }

    fn ready(&mut self, slot: usize) {
        let Some(mut c) = self.conns.get_mut(slot).and_then(Option::take) else { return };
        let was_writing = c.want_write;
        let verdict = self.drive(&mut c);
        match verdict {
            Verdict::Keep => {
                if c.want_write != was_writing {
                    let interest =
                        if c.want_write { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
                    if self.poll.registry().reregister(&mut c.stream, Token(slot), interest).is_err() {
                        self.stats.errors += 1;
                        self.free.push(slot);
                        return;
                    }
                }
                self.keep(slot, c);
            }
            // Dropping the stream closes it, which also takes it out of the epoll set.
            Verdict::Close => {
                self.stats.closed += 1;
                self.free.push(slot);
            }
            Verdict::Error => {
                self.stats.errors += 1;
                self.free.push(slot);
            }
            Verdict::Done => self.free.push(slot),
        }
    }

    /// Writes what is pending, then reads and answers until the socket would block, the peer closes, or the app
    /// is done.
    fn drive(&mut self, c: &mut Conn) -> Verdict {
        loop {
            if c.lingering {
                return self.discard(c);
            }
            while c.sent < c.pending.len() {
                match c.stream.write(&c.pending[c.sent..]) {
                    Ok(n) => {
                        c.sent += n;
                        self.stats.bytes_out += n as u64;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        c.want_write = true;
                        return Verdict::Keep;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Verdict::Error,
                }
            }
            c.pending.clear();
            c.sent = 0;
            c.want_write = false;
            if c.close_after {
                if c.peer_fin {
                    return Verdict::Close;
                }
                // close() now would reset the connection if the peer's bytes are (or come) unread: send our FIN
                // alone, and close once the peer has sent its own.
                if c.stream.shutdown(Shutdown::Write).is_err() {
                    return Verdict::Error;
                }
                self.stats.closed += 1;
                c.lingering = true;
                continue;
            }
            // Requests held back come before new ones.
            let held = !c.input.is_empty();
            let room = if self.app == ServerApp::Http { HTTP_READ } else { self.buf.len() };
            let n = if held {
                0
            } else {
                match c.stream.read(&mut self.buf[..room]) {
                    Ok(0) => {
                        // The peer's FIN: for echo and http, our FIN follows once everything is written.
                        c.close_after = true;
                        c.peer_fin = true;
                        continue;
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Verdict::Keep,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return Verdict::Error,
                }
            };
            self.stats.bytes_in += n as u64;
            let data: &[u8] = match self.app {
                ServerApp::Echo => &self.buf[..n],
                ServerApp::Http => {
                    self.out.clear();
                    let before = c.http.responses;
                    let mut input = std::mem::take(&mut c.input);
                    let requests = if held { &input[..] } else { &self.buf[..n] };
                    let fed = c.http.feed(&self.responses, requests, &mut self.out, self.out_limit);
                    if fed.close {
                        c.close_after = true;
                    } else if held {
                        input.drain(..fed.used);
                        c.input = input;
                    } else {
                        c.input.extend_from_slice(&requests[fed.used..]);
                    }
                    self.stats.http_responses += c.http.responses - before;
                    &self.out
                }
                // Never reached: `close` lingers from the start.
                ServerApp::Close => continue,
            };
            // One write straight from the read buffer (or the response scratch); only a short write keeps bytes.
            let mut at = 0;
            while at < data.len() {
                match c.stream.write(&data[at..]) {
                    Ok(w) => {
                        at += w;
                        self.stats.bytes_out += w as u64;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Verdict::Error,
                }
            }
            if at < data.len() {
                c.pending.extend_from_slice(&data[at..]);
                self.stats.largest_pending = self.stats.largest_pending.max(c.pending.len() as u64);
                c.want_write = true;
                return Verdict::Keep;
            }
        }
    }

    /// Reads and drops what a lingering connection receives, until the peer's FIN (or a reset) ends it.
    fn discard(&mut self, c: &mut Conn) -> Verdict {
        loop {
            match c.stream.read(&mut self.buf) {
                Ok(0) => return Verdict::Done,
                Ok(n) => self.stats.bytes_in += n as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Verdict::Keep,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A reset after our FIN: the connection was finished anyway.
                Err(_) => return Verdict::Done,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::http1::send_buffer_for;
    use crate::tcp::Config;
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpStream as StdStream};

    static STOP: AtomicBool = AtomicBool::new(false);

    /// A server on loopback for the length of `f`, on a port the kernel picks (bound once to learn it).
    fn with_server(app: ServerApp, f: impl FnOnce(SocketAddr)) -> ServerStats {
        with_options(ServerOptions { app, ..Default::default() }, f)
    }

    /// As [`with_server`], with these options (their address and threads replaced).
    fn with_options(opts: ServerOptions, f: impl FnOnce(SocketAddr)) -> ServerStats {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let opts = ServerOptions { listen: addr, threads: 2, ..opts };
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || serve(&opts, stop, move || tx.send(()).unwrap()));
        rx.recv().unwrap();
        f(addr);
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap().unwrap()
    }

    #[test]
    fn close_app_closes_right_after_accept() {
        let s = with_server(ServerApp::Close, |addr| {
            for _ in 0..20 {
                let mut c = StdStream::connect(addr).unwrap();
                let mut buf = [0u8; 8];
                assert_eq!(c.read(&mut buf).unwrap(), 0, "the server's FIN comes first");
            }
        });
        assert_eq!((s.accepted, s.closed, s.errors), (20, 20, 0));
    }

    #[test]
    fn echo_app_echoes_and_closes_after_the_clients_fin() {
        let s = with_server(ServerApp::Echo, |addr| {
            for size in [1usize, 1000, 300_000] {
                let mut c = StdStream::connect(addr).unwrap();
                let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
                let reader = {
                    let mut c = c.try_clone().unwrap();
                    std::thread::spawn(move || {
                        let mut got = Vec::new();
                        c.read_to_end(&mut got).unwrap();
                        got
                    })
                };
                c.write_all(&data).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                assert_eq!(reader.join().unwrap(), data, "{size} bytes echoed, then the server's FIN");
            }
        });
        assert_eq!((s.accepted, s.closed, s.errors), (3, 3, 0));
        assert_eq!(s.bytes_in, 301_001);
        assert_eq!(s.bytes_out, 301_001);
    }

    #[test]
    fn http_app_keeps_alive_and_closes_on_request() {
        let s = with_server(ServerApp::Http, |addr| {
            let mut c = StdStream::connect(addr).unwrap();
            let expect = Responses::new(b"Hello from xdptcp\n").keep_alive_get().to_vec();
            for _ in 0..3 {
                c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let mut got = vec![0u8; expect.len()];
                c.read_exact(&mut got).unwrap();
                assert_eq!(got, expect);
            }
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut rest = Vec::new();
            c.read_to_end(&mut rest).unwrap();
            assert!(String::from_utf8(rest).unwrap().contains("Connection: close"));
        });
        assert_eq!((s.accepted, s.closed, s.http_responses), (1, 1, 4));
    }

    #[test]
    fn pipelined_requests_from_a_peer_that_does_not_read_hold_a_bounded_backlog_of_responses() {
        // Found by an audit: one 64 KiB read of 16-byte GETs made about 450 KiB of responses to hold.
        const N: usize = 200_000;
        let s = with_server(ServerApp::Http, |addr| {
            let mut c = StdStream::connect(addr).unwrap();
            let reader = {
                let mut c = c.try_clone().unwrap();
                std::thread::spawn(move || {
                    // Read nothing for a while: the server's output backs up, then everything is read.
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    let mut got = Vec::new();
                    c.read_to_end(&mut got).unwrap();
                    got
                })
            };
            let requests = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(N);
            c.write_all(&requests).unwrap();
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let got = reader.join().unwrap();
            let ok = got.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count();
            assert_eq!(ok, N + 1, "every pipelined request answered, in order");
        });
        assert_eq!(s.http_responses, N as u64 + 1);
        assert!(s.largest_pending <= 40 << 10, "held {} bytes for one connection", s.largest_pending);
    }

    #[test]
    fn a_large_body_to_a_peer_that_does_not_read_holds_about_one_send_buffer_of_responses() {
        // Found by a review: each 4 KiB read of 18-byte GETs made 227 responses to hold, 15 MB with this body.
        const N: usize = 10_000;
        let body = vec![b'b'; 65_536];
        let buffer = send_buffer_for(body.len(), Config::default().send_buffer) as u64;
        let responses = Responses::new(&body);
        let one = responses.keep_alive_get().len();
        let expect = ((N + 1) * one + b"Connection: close\r\n".len()) as u64;
        let opts = ServerOptions { app: ServerApp::Http, http_body: body, ..Default::default() };
        let s = with_options(opts, |addr| {
            let mut c = StdStream::connect(addr).unwrap();
            let reader = {
                let mut c = c.try_clone().unwrap();
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    let (mut buf, mut got) = (vec![0u8; 1 << 16], 0u64);
                    loop {
                        match c.read(&mut buf).unwrap() {
                            0 => return got,
                            n => got += n as u64,
                        }
                    }
                })
            };
            c.write_all(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(N)).unwrap();
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            assert_eq!(reader.join().unwrap(), expect, "every response, whole");
        });
        assert_eq!(s.http_responses, N as u64 + 1);
        assert!(s.largest_pending <= 2 * buffer, "held {} bytes, send buffer {buffer}", s.largest_pending);
    }

    /// Reads to the end within a few seconds: the bytes, or the error (a reset) that ended them.
    fn read_to_eof(c: &mut StdStream) -> std::io::Result<Vec<u8>> {
        c.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).map(|_| got)
    }

    #[test]
    fn close_app_answers_data_that_came_with_the_handshake_with_a_fin_not_a_reset() {
        // Linux's close() resets a connection whose receive queue holds unread bytes; xdptcp discards them.
        let s = with_server(ServerApp::Close, |addr| {
            for i in 0..20 {
                let mut c = StdStream::connect(addr).unwrap();
                c.write_all(b"x").unwrap();
                std::thread::sleep(std::time::Duration::from_millis(10));
                assert_eq!(read_to_eof(&mut c).unwrap_or_else(|e| panic!("connection {i}: {e}")), b"");
            }
        });
        assert_eq!((s.accepted, s.closed, s.errors), (20, 20, 0));
    }

    #[test]
    fn http_connection_close_with_more_bytes_unread_ends_with_a_fin_not_a_reset() {
        let s = with_server(ServerApp::Http, |addr| {
            let mut c = StdStream::connect(addr).unwrap();
            let mut request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec();
            request.extend_from_slice(&[b'x'; 3 * HTTP_READ]); // beyond the read that holds the request
            c.write_all(&request).unwrap();
            let got = read_to_eof(&mut c).expect("the response, then EOF");
            assert!(got.starts_with(b"HTTP/1.1 200 OK") && got.ends_with(b"Hello from xdptcp\n"));
        });
        assert_eq!((s.accepted, s.closed, s.errors, s.http_responses), (1, 1, 0, 1));
    }

    #[test]
    fn bad_options_are_refused() {
        let o = ServerOptions { threads: 0, ..Default::default() };
        assert!(matches!(serve(&o, &STOP, || {}), Err(ServerError::Invalid(_))));
        let o = ServerOptions { listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
        assert!(matches!(serve(&o, &STOP, || {}), Err(ServerError::Invalid(_))));
        let o = ServerOptions { listen: "203.0.113.77:8080".parse().unwrap(), ..Default::default() };
        assert!(matches!(serve(&o, &STOP, || {}), Err(ServerError::Socket { what: "bind", .. })));
    }
}

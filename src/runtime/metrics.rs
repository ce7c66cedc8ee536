//! A minimal Prometheus endpoint on a kernel socket: `GET /metrics` answers the latest snapshot's text.
//!
//! Runs on its own thread on the control plane; it shares one string with the control thread under a
//! parking_lot mutex (never touched by workers).
//!
//! One thread serves every client at once (mio, non-blocking), so a client that connects and says nothing, or
//! reads its answer slowly, holds only its own connection: each has [`DEADLINE`] to send its request and take
//! the answer, at most [`MAX_CLIENTS`] are kept (the oldest gives way to a new one), and a request is read up
//! to its blank line, [`MAX_REQUEST`] bytes, or the client's FIN after its request line, whichever comes first.
//! (The first version answered one client at a time with blocking reads, and five idle connections renewed
//! every 2 s kept a scrape waiting for ever.)

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The page the server answers with; the control thread replaces it.
pub type Page = Arc<Mutex<String>>;

/// How long a client has from its connection to the end of its answer.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// Clients held at once; a new one beyond this closes the oldest.
pub const MAX_CLIENTS: usize = 256;
/// Longest request read (a scrape's is a few hundred bytes).
pub const MAX_REQUEST: usize = 2048;

const LISTENER: Token = Token(usize::MAX);

/// Binds `addr` and serves `page` until `stop` is set. Returns the bound address (port 0 picks one).
pub fn serve(addr: SocketAddr, page: Page, stop: Arc<AtomicBool>) -> std::io::Result<SocketAddr> {
    let mut listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    let poll = Poll::new()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    std::thread::Builder::new().name("xdptcp-metrics".into()).spawn(move || {
        let mut server = Server { poll, listener, clients: HashMap::new(), next: 0, page, accept_stalled: false };
        let mut events = Events::with_capacity(256);
        while !stop.load(Ordering::Relaxed) {
            // Woken by traffic, and at least every 50 ms to see `stop` and the deadlines.
            if server.poll.poll(&mut events, Some(Duration::from_millis(50))).is_err() {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            for e in events.iter() {
                match e.token() {
                    LISTENER => server.accept_all(),
                    Token(id) => server.progress(id),
                }
            }
            if server.accept_stalled {
                server.accept_all();
            }
            server.expire(Instant::now());
        }
    })?;
    Ok(local)
}

/// One client: its request so far, then its answer and how much of it went out.
struct Client {
    stream: TcpStream,
    since: Instant,
    request: Vec<u8>,
    answer: Option<(Vec<u8>, usize)>,
}

struct Server {
    poll: Poll,
    listener: TcpListener,
    clients: HashMap<usize, Client>,
    next: usize,
    page: Page,
    /// The last accept failed for want of descriptors or memory: retried at every wake-up (at least every
    /// 50 ms), since with the accept queue full no new connection, so no listener event, may come.
    accept_stalled: bool,
}

impl Server {
    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    if self.clients.len() >= MAX_CLIENTS {
                        if let Some(oldest) = self.clients.iter().min_by_key(|(_, c)| c.since).map(|(id, _)| *id) {
                            self.drop_client(oldest);
                        }
                    }
                    let id = self.next;
                    self.next = self.next.wrapping_add(1) % (usize::MAX - 1);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if self.poll.registry().register(&mut stream, Token(id), interest).is_ok() {
                        let client = Client { stream, since: Instant::now(), request: Vec::new(), answer: None };
                        self.clients.insert(id, client);
                        self.progress(id);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.accept_stalled = false;
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted || e.kind() == ErrorKind::ConnectionAborted => {}
                // Out of descriptors and the like: try again at the next wake-up rather than spin.
                Err(_) => {
                    self.accept_stalled = true;
                    return;
                }
            }
        }
    }

    /// Reads what the client sent, answers once its request is whole, writes what the socket takes.
    fn progress(&mut self, id: usize) {
        let page = &self.page;
        let Some(c) = self.clients.get_mut(&id) else { return };
        let done = loop {
            if let Some((answer, sent)) = &mut c.answer {
                match c.stream.write(&answer[*sent..]) {
                    Ok(0) => break true,
                    Ok(n) => {
                        *sent += n;
                        if *sent == answer.len() {
                            break true;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break true,
                }
                continue;
            }
            let mut buf = [0u8; 512];
            match c.stream.read(&mut buf) {
                // The client said all it will: a request line without its blank line is still answered.
                Ok(0) if c.request.contains(&b'\n') => c.answer = Some((answer(&c.request, page), 0)),
                Ok(0) => break true,
                Ok(n) => {
                    let room = MAX_REQUEST - c.request.len();
                    c.request.extend_from_slice(&buf[..n.min(room)]);
                    if complete(&c.request) || c.request.len() >= MAX_REQUEST {
                        c.answer = Some((answer(&c.request, page), 0));
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if done {
            self.drop_client(id);
        }
    }

    fn expire(&mut self, now: Instant) {
        let late: Vec<usize> =
            self.clients.iter().filter(|(_, c)| now.duration_since(c.since) >= DEADLINE).map(|(id, _)| *id).collect();
        for id in late {
            self.drop_client(id);
        }
    }

    fn drop_client(&mut self, id: usize) {
        if let Some(mut c) = self.clients.remove(&id) {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
    }
}

/// The request has its blank line (headers end).
fn complete(req: &[u8]) -> bool {
    req.windows(4).any(|w| w == b"\r\n\r\n") || req.windows(2).any(|w| w == b"\n\n")
}

/// The whole answer to `req`.
fn answer(req: &[u8], page: &Page) -> Vec<u8> {
    let line = req.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let (status, body) = if line.starts_with(b"GET /metrics") || line.starts_with(b"GET / ") {
        ("200 OK", page.lock().clone())
    } else {
        ("404 Not Found", "not found\n".to_string())
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream as StdStream;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut c = StdStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_the_current_page() {
        let page: Page = Arc::new(Mutex::new("xdptcp_up 1\n".into()));
        let stop = Arc::new(AtomicBool::new(false));
        let addr = serve("127.0.0.1:0".parse().unwrap(), page.clone(), stop.clone()).unwrap();
        assert!(get(addr, "/metrics").ends_with("xdptcp_up 1\n"));
        *page.lock() = "xdptcp_up 2\n".into();
        assert!(get(addr, "/metrics").ends_with("xdptcp_up 2\n"));
        assert!(get(addr, "/nope").starts_with("HTTP/1.1 404"));
        stop.store(true, Ordering::Relaxed);
    }

    #[test]
    fn a_request_line_followed_by_the_clients_fin_is_answered() {
        let page: Page = Arc::new(Mutex::new("xdptcp_up 1\n".into()));
        let stop = Arc::new(AtomicBool::new(false));
        let addr = serve("127.0.0.1:0".parse().unwrap(), page, stop.clone()).unwrap();
        let mut c = StdStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"GET /metrics HTTP/1.0\r\n").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200") && out.ends_with("xdptcp_up 1\n"), "{out:?}");
        stop.store(true, Ordering::Relaxed);
    }

    #[test]
    fn idle_and_slow_clients_do_not_hold_up_a_scrape() {
        let page: Page = Arc::new(Mutex::new("xdptcp_up 1\n".into()));
        let stop = Arc::new(AtomicBool::new(false));
        let addr = serve("127.0.0.1:0".parse().unwrap(), page, stop.clone()).unwrap();
        // Twenty clients that connect and say nothing, and one that sends half a request line.
        let idle: Vec<StdStream> = (0..20).map(|_| StdStream::connect(addr).unwrap()).collect();
        let mut half = StdStream::connect(addr).unwrap();
        half.write_all(b"GET /met").unwrap();
        let t = Instant::now();
        assert!(get(addr, "/metrics").ends_with("xdptcp_up 1\n"));
        assert!(t.elapsed() < Duration::from_millis(500), "the scrape waited {:?}", t.elapsed());
        // A request split across writes is read whole.
        half.write_all(b"rics HTTP/1.1\r\n\r\n").unwrap();
        half.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = String::new();
        half.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200") && out.ends_with("xdptcp_up 1\n"), "{out}");
        // The idle ones are closed at their deadline.
        std::thread::sleep(DEADLINE + Duration::from_millis(300));
        let mut c = &idle[0];
        c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(c.read(&mut buf).unwrap_or(0), 0, "an idle client is closed after its deadline");
        stop.store(true, Ordering::Relaxed);
    }
}

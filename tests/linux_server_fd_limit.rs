//! The Linux reference server out of file descriptors: once connections close, it must go back to accepting
//! the ones still queued, although with the accept queue full no new SYN (so no new listener event) arrives.
//! The bench's kernel baseline depends on it: an overload step past the descriptor limit used to leave the
//! server deaf for every later step of the sweep.
//!
//! The server runs as a child (`ulimit -n` applies to it alone) on loopback; no privileges needed.
#![cfg(feature = "af-xdp")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xdptcp::linux::linger::LINGER_FOR;

/// The child's descriptor limit: its stdio, epoll and listener leave a handful for connections.
const FD_LIMIT: usize = 12;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Sends one keep-alive request.
fn request(c: &mut TcpStream) {
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
}

/// True if a response began to arrive within `patience`.
fn answered(c: &mut TcpStream, patience: Duration) -> bool {
    c.set_read_timeout(Some(patience)).unwrap();
    let mut buf = [0u8; 512];
    matches!(c.read(&mut buf), Ok(n) if n > 0 && buf[..n].starts_with(b"HTTP/1.1 200"))
}

/// The server under [`FD_LIMIT`] descriptors, once it says it is ready.
fn start(port: u16, app: &str, backlog: u32) -> Server {
    let cmd = format!(
        "ulimit -n {FD_LIMIT} && exec {} linux-server --listen 127.0.0.1:{port} --threads 1 --app {app} --backlog \
         {backlog}",
        env!("CARGO_BIN_EXE_xdptcp")
    );
    let mut child = Command::new("sh").args(["-c", &cmd]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l == "ready")), "the server never said ready");
    server
}

#[test]
fn accepting_resumes_after_descriptors_run_out_with_the_accept_queue_full() {
    let port = free_port();
    let _server = start(port, "http", 1);

    // One connection at a time until one goes unanswered: the server is out of descriptors and that one waits
    // in the accept queue. One more joins it (backlog 1: the queue is then full).
    let mut served = Vec::new();
    let mut queued = loop {
        assert!(served.len() < FD_LIMIT, "{} connections served under a limit of {FD_LIMIT} descriptors", served.len());
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        request(&mut c);
        if !answered(&mut c, Duration::from_millis(300)) {
            break vec![c];
        }
        served.push(c);
    };
    assert!(!served.is_empty(), "not even one connection was served");
    let mut second = TcpStream::connect(("127.0.0.1", port)).unwrap();
    request(&mut second);
    queued.push(second);

    // Descriptors come back as these close; nothing new arrives at the listener.
    drop(served);
    for (i, c) in queued.iter_mut().enumerate() {
        assert!(answered(c, Duration::from_secs(3)), "queued connection {i} never accepted after descriptors freed");
    }
}

#[test]
fn connections_waiting_for_a_peers_fin_give_their_descriptors_back_when_accept_runs_out() {
    // The server closes each `close` connection with its FIN, then holds it (and its descriptor) until the peer's
    // FIN or LINGER_FOR. These peers never send theirs, so the descriptors run out within a few connections; the
    // next ones must not wait out LINGER_FOR.
    let port = free_port();
    let _server = start(port, "close", 64);
    let patience = LINGER_FOR / 4;
    let mut held = Vec::new();
    for i in 0..3 * FD_LIMIT {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(patience)).unwrap();
        let t = Instant::now();
        let got = c.read(&mut [0u8; 8]);
        assert!(matches!(got, Ok(0)), "connection {i}: {got:?} after {:?}, not the server's FIN", t.elapsed());
        held.push(c);
    }
}

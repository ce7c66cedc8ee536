//! A minimal Prometheus endpoint on a kernel socket: `GET /metrics` answers the latest snapshot's text.
//!
//! Runs on its own thread on the control plane; it shares one string with the control thread under a
//! parking_lot mutex (never touched by workers).

use parking_lot::Mutex;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The page the server answers with; the control thread replaces it.
pub type Page = Arc<Mutex<String>>;

/// Binds `addr` and serves `page` until `stop` is set. Returns the bound address (port 0 picks one).
pub fn serve(addr: SocketAddr, page: Page, stop: Arc<AtomicBool>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new().name("xdptcp-metrics".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((s, _)) => answer(s, &page),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    })?;
    Ok(local)
}

fn answer(mut s: TcpStream, page: &Page) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let mut req = [0u8; 2048];
    let n = s.read(&mut req).unwrap_or(0);
    let line = req[..n].split(|&b| b == b'\n').next().unwrap_or(&[]);
    let (status, body) = if line.starts_with(b"GET /metrics") || line.starts_with(b"GET / ") {
        ("200 OK", page.lock().clone())
    } else {
        ("404 Not Found", "not found\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_current_page() {
        let page: Page = Arc::new(Mutex::new("xdptcp_up 1\n".into()));
        let stop = Arc::new(AtomicBool::new(false));
        let addr = serve("127.0.0.1:0".parse().unwrap(), page.clone(), stop.clone()).unwrap();
        let get = |path: &str| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            out
        };
        assert!(get("/metrics").ends_with("xdptcp_up 1\n"));
        *page.lock() = "xdptcp_up 2\n".into();
        assert!(get("/metrics").ends_with("xdptcp_up 2\n"));
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
        stop.store(true, Ordering::Relaxed);
    }
}

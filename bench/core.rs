//! The in-memory core bench: connection lifecycles through the public API on one core, both sides emitting and
//! parsing real frames, plus memory per connection and per TIME-WAIT entry, and the cost of cookies.
//!
//! `cargo bench --bench core [-- --quick]` (or `scripts/bench.sh core`). The last line is one JSON object.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant as Wall};
use xdptcp::app::{App, Conn, EchoApp, HttpApp};
use xdptcp::sink::BatchSink;
use xdptcp::tcp::cookie::{self, KeyRing};
use xdptcp::tcp::flow::{FlowKey, V4Flow};
use xdptcp::tcp::{Config, Endpoint};
use xdptcp::time::Instant;
use xdptcp::wire::MacAddr;

const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc1]);
const SERVER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x51]);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const PORT: u16 = 8080;

/// The load generator's side of a lifecycle: optionally one request, then close.
#[derive(Default)]
struct Client {
    request: Option<&'static [u8]>,
    /// Bytes of response still expected before closing.
    expect: usize,
    hold_open: bool,
    completed: u64,
}

impl App for Client {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        if self.hold_open {
            return;
        }
        match self.request {
            Some(r) => {
                conn.send_static(r);
                conn.set_user(self.expect as u32);
            }
            None => conn.close(),
        }
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) -> usize {
        let left = (conn.user() as usize).saturating_sub(data.len());
        conn.set_user(left as u32);
        if left == 0 {
            conn.close();
        }
        data.len()
    }
    fn on_peer_close(&mut self, conn: &mut Conn<'_>) {
        conn.close();
    }
    fn on_closed(&mut self, _: xdptcp::app::ConnId, _: u32, _: xdptcp::app::CloseReason) {
        self.completed += 1;
    }
}

fn config(mac: MacAddr) -> Config {
    Config { local_mac: mac, max_conns: 1 << 21, time_wait: Duration::from_secs(1), ..Config::default() }
}

fn keys(cfg: &Config, now: Instant) -> KeyRing {
    let slot = cookie::slot_at(now.as_nanos() + cfg.wall_clock_offset);
    KeyRing::from_seed(1, slot.saturating_sub(1)..=slot + 1)
}

/// Runs `total` lifecycles in batches; returns (server-only seconds, wall seconds, server frames handled).
fn lifecycles<S: App>(server_app: S, client: Client, total: usize, batch: usize) -> (f64, f64, u64, u64) {
    let mut now = Instant::from_secs(1_000);
    let scfg = config(SERVER_MAC);
    let skeys = keys(&scfg, now);
    let mut server = Endpoint::new(scfg, server_app, now);
    server.set_cookie_keys(skeys);
    server.listen(PORT);
    let mut client = Endpoint::new(config(CLIENT_MAC), client, now);
    let mut to_server = BatchSink::with_capacity(batch * 2);
    let mut to_client = BatchSink::with_capacity(batch * 2);
    let mut server_ns = 0u128;
    let wall = Wall::now();
    let mut n = 0usize;
    let mut tuple = 0u32;
    while n < total {
        to_server.clear();
        for _ in 0..batch {
            // Walk source tuples over a /16 × 60k ports; TIME-WAIT (1 s here) is long gone when one recurs.
            tuple = tuple.wrapping_add(1);
            let src = Ipv4Addr::from(0x0a4d_0000 | (tuple % 65_000 + 2));
            let port = 1024 + (tuple / 65_000 % 60_000) as u16;
            let local = SocketAddr::from((src, port));
            client.connect(now, local, SocketAddr::from((SERVER, PORT)), SERVER_MAC, 0, &mut to_server).ok();
        }
        // Ping-pong until the batch is done; only the server's work is timed.
        while !to_server.is_empty() {
            to_client.clear();
            let t = Wall::now();
            for f in to_server.frames() {
                server.handle_frame(now, f, &mut to_client);
            }
            server_ns += t.elapsed().as_nanos();
            to_server.clear();
            for f in to_client.frames() {
                client.handle_frame(now, f, &mut to_server);
            }
        }
        n += batch;
        now += Duration::from_millis(2);
        client.handle_timeout(now, &mut to_server);
        to_server.clear();
    }
    let wall_s = wall.elapsed().as_secs_f64();
    let st = server.stats();
    assert_eq!(st.live_conns, 0, "every lifecycle completed on the server");
    assert_eq!(client.app().completed as usize, n, "every lifecycle completed on the client");
    (server_ns as f64 / 1e9, wall_s, st.frames_in + st.frames_out, st.conns_closed)
}

/// Opens `n` connections from distinct tuples of `net` (a /16 prefix) and runs both endpoints until quiet.
fn open_many<A: App, B: App>(server: &mut Endpoint<A>, client: &mut Endpoint<B>, n: usize, net: u32, now: Instant) {
    let mut a = BatchSink::with_capacity(4096);
    let mut b = BatchSink::with_capacity(4096);
    let mut i = 0u32;
    while (i as usize) < n {
        a.clear();
        for _ in 0..1024.min(n - i as usize) {
            i += 1;
            let local = SocketAddr::from((Ipv4Addr::from(net | (i % 60_000 + 2)), 1024 + (i / 60_000) as u16));
            client.connect(now, local, SocketAddr::from((SERVER, PORT)), SERVER_MAC, 0, &mut a).ok();
        }
        while !a.is_empty() {
            b.clear();
            for f in a.frames() {
                server.handle_frame(now, f, &mut b);
            }
            a.clear();
            for f in b.frames() {
                client.handle_frame(now, f, &mut a);
            }
        }
    }
}

/// Memory per established connection and per TIME-WAIT entry, measured through the endpoint: bytes held by its
/// tables, timers and send queues, divided by the entries they hold.
fn memory(n: usize) -> (f64, f64) {
    let now = Instant::from_secs(1_000);
    let scfg = Config { time_wait: Duration::from_secs(60), ..config(SERVER_MAC) };
    let hold = || Client { hold_open: true, ..Client::default() };

    let mut server = Endpoint::new(scfg.clone(), Holder, now);
    server.set_cookie_keys(keys(&scfg, now));
    server.listen(PORT);
    let mut client = Endpoint::new(config(CLIENT_MAC), hold(), now);
    let m0 = server.memory();
    open_many(&mut server, &mut client, n, 0x0a4d_0000, now);
    assert_eq!(server.live_connections(), n);
    let m1 = server.memory();
    let live = |m: xdptcp::tcp::Memory| m.conn_tables + m.timers + m.send_queues + m.next_hops;
    let per_conn = (live(m1) - live(m0)) as f64 / n as f64;

    // TIME-WAIT entries: the server closes first (app `close`), the client answers with its own FIN.
    let mut server = Endpoint::new(scfg.clone(), xdptcp::app::CloseApp, now);
    server.set_cookie_keys(keys(&scfg, now));
    server.listen(PORT);
    let mut client = Endpoint::new(config(CLIENT_MAC), hold(), now);
    let t0 = server.memory().time_wait;
    open_many(&mut server, &mut client, n, 0x0a4e_0000, now);
    assert_eq!(server.time_wait_len(), n);
    let per_tw = (server.memory().time_wait - t0) as f64 / n as f64;
    (per_conn, per_tw)
}

/// A server app that never closes (for holding connections open).
struct Holder;
impl App for Holder {
    fn on_data(&mut self, _c: &mut Conn<'_>, d: &[u8]) -> usize {
        d.len()
    }
}

fn cookie_costs(iters: u32) -> (f64, f64) {
    let keys = KeyRing::from_seed(3, 10..=12);
    let flow = V4Flow::new(Ipv4Addr::new(10, 0, 0, 1), 80, Ipv4Addr::new(10, 0, 0, 2), 40000);
    let t = Wall::now();
    let mut acc = 0u32;
    for i in 0..iters {
        acc ^= cookie::mint(&keys, 11, black_box(&flow), i, 1460, Some(7)).map_or(0, |c| c.isn);
    }
    let mint_ns = t.elapsed().as_nanos() as f64 / f64::from(iters);
    let c = cookie::mint(&keys, 11, &flow, 1, 1460, Some(7)).unwrap().isn;
    let t = Wall::now();
    let mut ok = 0u32;
    for i in 0..iters {
        ok += u32::from(cookie::check(&keys, 11, black_box(&flow), 1, c ^ (i & 1), Some(7)).is_ok());
    }
    let check_ns = t.elapsed().as_nanos() as f64 / f64::from(iters);
    black_box((acc, ok));
    (mint_ns, check_ns)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let total = if quick { 200_000 } else { 2_000_000 };
    let batch = 512;
    println!("xdptcp core bench (in memory, one core, both endpoints emitting and parsing real frames)");
    println!("{} lifecycles per mode, batches of {}", total, batch);
    // Warm up once.
    lifecycles(EchoApp, Client::default(), batch * 20, batch);
    let (srv_s, wall_s, frames, closed) = lifecycles(EchoApp, Client::default(), total, batch);
    let ns = srv_s * 1e9 / closed as f64;
    let lps = closed as f64 / srv_s;
    let pair_lps = closed as f64 / wall_s;
    println!();
    println!("{:<44} {:>14} {:>14} {:>12}", "mode", "server conn/s", "pair conn/s", "server ns");
    println!("{:<44} {:>14.0} {:>14.0} {:>12.1}", "handshake + client close (echo app)", lps, pair_lps, ns);
    println!("  server frames per lifecycle: {:.1}", frames as f64 / closed as f64);
    let req: &'static [u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let http = HttpApp::default();
    let client = Client { request: Some(req), expect: http.response_len(), ..Client::default() };
    let (h_srv_s, h_wall_s, h_frames, h_closed) = lifecycles(http, client, total / 2, batch);
    println!(
        "{:<44} {:>14.0} {:>14.0} {:>12.1}",
        "handshake + GET/200 + client close (http)",
        h_closed as f64 / h_srv_s,
        h_closed as f64 / h_wall_s,
        h_srv_s * 1e9 / h_closed as f64
    );
    println!("  server frames per lifecycle: {:.1}", h_frames as f64 / h_closed as f64);
    let n_mem = if quick { 1 << 16 } else { 1 << 18 };
    let (per_conn, per_tw) = memory(n_mem);
    println!(
        "memory at {n_mem} entries: {per_conn:.1} B per established IPv4 connection, {per_tw:.1} B per TIME-WAIT entry"
    );
    let (mint, check) = cookie_costs(if quick { 1_000_000 } else { 10_000_000 });
    println!("cookie: mint {mint:.1} ns, check {check:.1} ns");
    println!(
        "{{\"bench\":\"core\",\"lifecycles_per_sec\":{:.0},\"ns_per_lifecycle\":{:.1},\"pair_lifecycles_per_sec\":{:.0},\"http_lifecycles_per_sec\":{:.0},\"bytes_per_conn\":{:.1},\"bytes_per_time_wait\":{:.1},\"cookie_mint_ns\":{:.1},\"cookie_check_ns\":{:.1}}}",
        lps,
        ns,
        pair_lps,
        h_closed as f64 / h_srv_s,
        per_conn,
        per_tw,
        mint,
        check
    );
}

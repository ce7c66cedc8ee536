//! An app that records every callback and delegates behaviour to a script, so tests can assert lifecycles.

use xdptcp::app::{App, CloseReason, Conn, ConnId};

/// What the app saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Open(ConnId),
    Data(ConnId, Vec<u8>),
    PeerClose(ConnId),
    Closed(ConnId, CloseReason),
}

/// What the app does on each callback.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// Bytes to send when the connection opens.
    pub on_open_send: Vec<u8>,
    /// Close right after opening (after sending `on_open_send`).
    pub close_on_open: bool,
    /// Echo received bytes.
    pub echo: bool,
    /// Close when the peer closes.
    pub close_on_peer_close: bool,
    /// Abort when the connection opens.
    pub abort_on_open: bool,
    /// Take at most this many bytes per `on_data` (None: all).
    pub take_at_most: Option<usize>,
    /// A client's requests: the first goes out on open, each next one once `reply_len` more bytes arrived;
    /// after the last reply the connection closes.
    pub exchanges: Vec<Vec<u8>>,
    pub reply_len: usize,
    /// The receive window the app declares (`App::receive_window`); with `echo`, the send queue's room.
    pub window: Option<usize>,
    /// A reader with a bounded buffer: takes at most this many bytes in all (per connection), and declares
    /// what is left as its receive window. Raise it to read on.
    pub budget: Option<usize>,
}

#[derive(Debug, Default)]
pub struct Recorder {
    pub script: Script,
    pub events: Vec<Event>,
}

impl Recorder {
    pub fn new(script: Script) -> Self {
        Recorder { script, events: Vec::new() }
    }

    pub fn received(&self, id: ConnId) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Data(i, d) if *i == id => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    pub fn closed(&self, id: ConnId) -> Option<CloseReason> {
        self.events.iter().find_map(|e| match e {
            Event::Closed(i, r) if *i == id => Some(*r),
            _ => None,
        })
    }

    pub fn opened(&self) -> Vec<ConnId> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Open(i) => Some(*i),
                _ => None,
            })
            .collect()
    }

    pub fn count_closed(&self, reason: CloseReason) -> usize {
        self.events.iter().filter(|e| matches!(e, Event::Closed(_, r) if *r == reason)).count()
    }
}

impl App for Recorder {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.events.push(Event::Open(conn.id()));
        if self.script.abort_on_open {
            conn.abort();
            return;
        }
        if !self.script.on_open_send.is_empty() {
            let sent = conn.send(&self.script.on_open_send);
            assert_eq!(sent, self.script.on_open_send.len(), "send queue took everything");
        }
        if let Some(first) = self.script.exchanges.first() {
            assert_eq!(conn.send(first), first.len());
            conn.set_user(1);
        }
        if self.script.close_on_open {
            conn.close();
        }
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) -> usize {
        let mut take = self.script.take_at_most.map_or(data.len(), |m| m.min(data.len()));
        if let Some(b) = self.script.budget {
            take = take.min(b.saturating_sub(self.received(conn.id()).len()));
        }
        let taken = if self.script.echo { conn.send(&data[..take]) } else { take };
        self.events.push(Event::Data(conn.id(), data[..taken].to_vec()));
        if !self.script.exchanges.is_empty() {
            let answered = self.received(conn.id()).len() / self.script.reply_len.max(1);
            let sent = conn.user() as usize;
            if answered >= sent && sent < self.script.exchanges.len() {
                let next = &self.script.exchanges[sent];
                assert_eq!(conn.send(next), next.len());
                conn.set_user(sent as u32 + 1);
            } else if answered >= self.script.exchanges.len() {
                conn.close();
            }
        }
        taken
    }

    fn receive_window(&self, _user: u32, send_capacity: usize) -> usize {
        if let Some(b) = self.script.budget {
            let taken: usize = self.events.iter().map(|e| if let Event::Data(_, d) = e { d.len() } else { 0 }).sum();
            return b.saturating_sub(taken);
        }
        match (self.script.window, self.script.echo) {
            (Some(w), _) => w,
            (None, true) => send_capacity,
            (None, false) => usize::MAX,
        }
    }

    fn on_peer_close(&mut self, conn: &mut Conn<'_>) {
        self.events.push(Event::PeerClose(conn.id()));
        if self.script.close_on_peer_close {
            conn.close();
        }
    }

    fn on_closed(&mut self, id: ConnId, _user: u32, reason: CloseReason) {
        self.events.push(Event::Closed(id, reason));
    }
}

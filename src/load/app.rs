//! The load generator's app: what each client connection does (nothing, an echo request, or an HTTP GET; then
//! close first or wait for the server's close) and what it records (latencies, outcome by reason).
//!
//! Per-connection records live in a slab indexed by the connection's app word, reused through a free list, so a
//! steady run allocates nothing per connection. The app also keeps the FIFO of per-connection deadlines: records
//! are created in order of intended start, so deadlines come out in order too. It never touches the OS; its only
//! notion of time is what the runner hands it (`now`, set before every call into the endpoint).

use super::histograms::{record_us, Histograms};
use super::schedule::Due;
use crate::app::http1_response::{Progress, ResponseReader};
use crate::app::{App, CloseReason, Conn, ConnId};
use crate::time::Instant;
use std::collections::VecDeque;
use std::time::Duration;

/// What a connection sends once open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Nothing: a bare handshake and teardown.
    None,
    /// These bytes, expected back byte for byte (an echo server).
    Echo(&'static [u8]),
    /// This HTTP request, expected to draw one `200` response.
    Http(&'static [u8]),
}

/// Who closes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseBy {
    /// The client, after the response (or right after the handshake without a request); it keeps TIME-WAIT.
    Client,
    /// The server: the client waits for its FIN, then closes.
    Server,
}

/// What every connection of a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub request: Request,
    pub close: CloseBy,
    /// Connections still unfinished this long after their intended start are aborted and count as timeouts.
    pub timeout: Duration,
}

/// Why a measured connection did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Failure {
    /// Not finished within the per-connection timeout (or the stack's own retransmissions ran out).
    Timeout,
    /// The server reset an open connection.
    Reset,
    /// The server answered the SYN with RST.
    Refused,
    /// The server closed before the whole response arrived.
    ShortResponse,
    /// The response was not the echo of the request, not HTTP, or not `200`.
    BadResponse,
    /// No free source tuple (all live or in TIME-WAIT): widen `--src` or shorten `--time-wait`.
    TupleExhausted,
    /// The endpoint refused to open (its connection table was full).
    ConnectError,
    /// Aborted by the generator itself (stopped before it finished).
    Aborted,
    /// Never sent: the generator's own core had fallen more than half the timeout behind its schedule when this
    /// connection's turn came (the generator's limit, not the target's; see `Driver::start`).
    GeneratorBehind,
}

impl Failure {
    pub const ALL: [Failure; 9] = [
        Failure::Timeout,
        Failure::Reset,
        Failure::Refused,
        Failure::ShortResponse,
        Failure::BadResponse,
        Failure::TupleExhausted,
        Failure::ConnectError,
        Failure::Aborted,
        Failure::GeneratorBehind,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Reset => "reset",
            Failure::Refused => "refused",
            Failure::ShortResponse => "short_response",
            Failure::BadResponse => "bad_response",
            Failure::TupleExhausted => "tuple_exhausted",
            Failure::ConnectError => "connect_error",
            Failure::Aborted => "aborted",
            Failure::GeneratorBehind => "generator_behind",
        }
    }
}

/// Outcomes of measured connections (warm-up connections are run but counted only in `warmup`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Measured connections started (SYN sent or attempted).
    pub started: u64,
    /// Measured connections whose handshake completed.
    pub opened: u64,
    /// Measured connections that did everything asked and closed normally.
    pub completed: u64,
    /// Measured connections that failed, by [`Failure`] as index.
    pub failed: [u64; Failure::ALL.len()],
    /// Warm-up connections that ended, whatever the outcome.
    pub warmup: u64,
}

impl Counts {
    pub fn failed_total(&self) -> u64 {
        self.failed.iter().sum()
    }

    pub fn failed(&self, why: Failure) -> u64 {
        self.failed[why as usize]
    }

    pub fn merge(&mut self, o: &Counts) {
        self.started += o.started;
        self.opened += o.opened;
        self.completed += o.completed;
        for (a, b) in self.failed.iter_mut().zip(o.failed.iter()) {
            *a += b;
        }
        self.warmup += o.warmup;
    }
}

const LIVE: u8 = 1;
const OPENED: u8 = 1 << 1;
const RESPONDED: u8 = 1 << 2;
const MEASURED: u8 = 1 << 3;
const HAS_ID: u8 = 1 << 4;
const NO_FAILURE: u8 = u8::MAX;

/// The live record of a connection, borrowing only the slab (so other fields stay usable).
macro_rules! rec {
    ($self:ident, $conn:expr) => {
        $self.recs.get_mut($conn.user() as usize).filter(|r| r.has(LIVE))
    };
}

/// One connection's record.
#[derive(Clone, Copy, Debug)]
struct Rec {
    intended: Instant,
    request_sent: Instant,
    id: ConnId,
    generation: u32,
    /// Echo: bytes still expected back.
    left: u32,
    reader: ResponseReader,
    flags: u8,
    failure: u8,
}

impl Rec {
    const EMPTY: Rec = Rec {
        intended: Instant::ZERO,
        request_sent: Instant::ZERO,
        id: ConnId(0),
        generation: 0,
        left: 0,
        reader: ResponseReader::new(),
        flags: 0,
        failure: NO_FAILURE,
    };

    #[inline]
    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// The client app of a load run.
#[derive(Debug)]
pub struct LoadApp {
    plan: Plan,
    /// The runner's clock, set before each call into the endpoint (`on_closed` has no `Conn` to ask).
    pub now: Instant,
    recs: Vec<Rec>,
    free: Vec<u32>,
    live: u64,
    deadlines: VecDeque<(u32, u32)>,
    pub hist: Histograms,
    pub counts: Counts,
    /// When the latest measured connection completed: the end of a closed loop's measured span. Failures do not
    /// move it (one SYN lost at the end would otherwise stretch the span by a whole timeout).
    pub last_completion: Option<Instant>,
}

impl LoadApp {
    /// An app whose slab and deadline queue start with room for `capacity` connections in flight.
    pub fn new(plan: Plan, capacity: usize) -> Self {
        LoadApp {
            plan,
            now: Instant::ZERO,
            recs: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            live: 0,
            deadlines: VecDeque::with_capacity(capacity),
            hist: Histograms::new(),
            counts: Counts::default(),
            last_completion: None,
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Connections started and not yet ended.
    pub fn in_flight(&self) -> u64 {
        self.live
    }

    /// Takes a record for a connection about to start; returns its slot, the endpoint's app word for it. The
    /// start is counted once it is made ([`launched`](Self::launched)) or fails
    /// ([`launch_failed`](Self::launch_failed)); [`withdraw`](Self::withdraw) gives the record back uncounted.
    #[inline]
    pub fn begin(&mut self, due: Due) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.recs.push(Rec::EMPTY);
                (self.recs.len() - 1) as u32
            }
        };
        let generation = {
            let r = &mut self.recs[slot as usize];
            let generation = r.generation.wrapping_add(1);
            *r = Rec {
                intended: due.intended,
                generation,
                flags: LIVE | if due.measured { MEASURED } else { 0 },
                ..Rec::EMPTY
            };
            generation
        };
        self.live += 1;
        self.deadlines.push_back((slot, generation));
        slot
    }

    /// Counts the start of `slot` (measured ones only), with its lag behind its intended time.
    #[inline]
    fn count_start(&mut self, slot: u32) {
        let now = self.now;
        if let Some(r) = self.recs.get(slot as usize).filter(|r| r.has(MEASURED)) {
            self.counts.started += 1;
            record_us(&mut self.hist.start_lag, now - r.intended);
        }
    }

    /// The SYN of `slot` went out as connection `id`.
    #[inline]
    pub fn launched(&mut self, slot: u32, id: ConnId) {
        self.count_start(slot);
        if let Some(r) = self.recs.get_mut(slot as usize) {
            r.id = id;
            r.flags |= HAS_ID;
        }
    }

    /// The connection of `slot` could not even start: count the start and its failure, free the record.
    pub fn launch_failed(&mut self, slot: u32, why: Failure) {
        if self.recs.get(slot as usize).is_some_and(|r| r.has(LIVE)) {
            self.count_start(slot);
            if let Some(r) = self.recs.get_mut(slot as usize) {
                r.failure = why as u8;
            }
            self.end(slot, None);
        }
    }

    /// Gives back the record of a start that was not made and will be made later (a closed loop waiting for a
    /// free tuple): nothing is counted, the slot is free again.
    pub fn withdraw(&mut self, slot: u32) {
        if let Some(r) = self.recs.get_mut(slot as usize).filter(|r| r.has(LIVE)) {
            r.flags = 0;
            self.live -= 1;
            self.free.push(slot);
        }
    }

    /// Pops the next connection whose deadline has passed at `now` and which is still live: it is marked as
    /// timed out, and the caller must abort it (its `on_closed` then counts the timeout). Records already ended
    /// are dropped from the queue on the way.
    #[inline]
    pub fn next_expired(&mut self, now: Instant) -> Option<(u32, Option<ConnId>)> {
        while let Some(&(slot, generation)) = self.deadlines.front() {
            let r = &mut self.recs[slot as usize];
            if r.generation != generation || !r.has(LIVE) {
                self.deadlines.pop_front();
                continue;
            }
            if now < r.intended + self.plan.timeout {
                return None;
            }
            self.deadlines.pop_front();
            r.failure = Failure::Timeout as u8;
            return Some((slot, r.has(HAS_ID).then_some(r.id)));
        }
        None
    }

    /// When the oldest live connection reaches its deadline ([`next_expired`](Self::next_expired) then aborts it);
    /// never later than that, possibly earlier (the front of the queue may be a record ended since).
    pub fn next_deadline(&self) -> Option<Instant> {
        let &(slot, _) = self.deadlines.front()?;
        Some(self.recs[slot as usize].intended + self.plan.timeout)
    }

    /// Ends the record of a connection the endpoint no longer knows (it never called `on_closed` for it).
    pub fn forget(&mut self, slot: u32) {
        if self.recs.get(slot as usize).is_some_and(|r| r.has(LIVE)) {
            self.end(slot, None);
        }
    }

    /// Live records, oldest first by deadline (for a final abort).
    pub fn live_slots(&self) -> impl Iterator<Item = (u32, Option<ConnId>)> + '_ {
        self.recs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.has(LIVE))
            .map(|(i, r)| (i as u32, r.has(HAS_ID).then_some(r.id)))
    }

    /// Finishes a record: outcome, lifetime, free list.
    fn end(&mut self, slot: u32, reason: Option<CloseReason>) {
        let now = self.now;
        let Some(r) = self.recs.get_mut(slot as usize) else { return };
        let measured = r.has(MEASURED);
        let expects_response = !matches!(self.plan.request, Request::None);
        let outcome = if r.failure != NO_FAILURE {
            Err(Failure::ALL.get(usize::from(r.failure)).copied().unwrap_or(Failure::Aborted))
        } else {
            match reason {
                Some(CloseReason::Normal) if expects_response && !r.has(RESPONDED) => Err(Failure::ShortResponse),
                Some(CloseReason::Normal) => Ok(()),
                Some(CloseReason::Reset) => Err(Failure::Reset),
                Some(CloseReason::Refused) => Err(Failure::Refused),
                Some(CloseReason::TimedOut) => Err(Failure::Timeout),
                Some(CloseReason::Aborted) | None => Err(Failure::Aborted),
            }
        };
        if measured {
            match outcome {
                Ok(()) => {
                    self.counts.completed += 1;
                    record_us(&mut self.hist.lifetime, now - r.intended);
                    self.last_completion = self.last_completion.max(Some(now));
                }
                Err(why) => self.counts.failed[why as usize] += 1,
            }
        } else {
            self.counts.warmup += 1;
        }
        r.flags = 0;
        self.live -= 1;
        self.free.push(slot);
    }

    /// The response is complete: record it and close if the client closes first.
    fn responded(&mut self, conn: &mut Conn<'_>) {
        let close = self.plan.close;
        let Some(r) = rec!(self, conn) else { return };
        r.flags |= RESPONDED;
        if r.has(MEASURED) {
            let d = conn.now() - r.request_sent;
            record_us(&mut self.hist.response, d);
        }
        if close == CloseBy::Client {
            conn.close();
        }
    }

    /// A broken response: count it, reset the connection.
    fn bad(&mut self, conn: &mut Conn<'_>, why: Failure) {
        if let Some(r) = rec!(self, conn) {
            r.failure = why as u8;
        }
        conn.abort();
    }
}

impl App for LoadApp {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let plan = self.plan;
        let now = conn.now();
        let Some(r) = rec!(self, conn) else {
            conn.abort(); // not ours (cannot happen: every connection comes from `begin`)
            return;
        };
        r.flags |= OPENED;
        if r.has(MEASURED) {
            self.counts.opened += 1;
            record_us(&mut self.hist.connect, now - r.intended);
        }
        match plan.request {
            Request::None => {
                if plan.close == CloseBy::Client {
                    conn.close();
                }
            }
            Request::Echo(bytes) | Request::Http(bytes) => {
                r.request_sent = now;
                r.left = bytes.len() as u32;
                if conn.send_static(bytes) < bytes.len() {
                    // The send buffer is sized for the request; a short write means a misconfiguration.
                    self.bad(conn, Failure::BadResponse);
                }
            }
        }
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) -> usize {
        let plan = self.plan;
        let Some(r) = rec!(self, conn) else { return data.len() };
        if r.has(RESPONDED) || r.failure != NO_FAILURE {
            return data.len(); // after the response: ignored
        }
        match plan.request {
            Request::None => {}
            Request::Echo(bytes) => {
                let at = bytes.len() - r.left as usize;
                let expected = bytes.get(at..at + data.len());
                if expected != Some(data) {
                    self.bad(conn, Failure::BadResponse);
                    return data.len();
                }
                r.left -= data.len() as u32;
                if r.left == 0 {
                    self.responded(conn);
                }
            }
            Request::Http(_) => match r.reader.feed(data) {
                Progress::More => {}
                Progress::Done { status: 200, .. } => self.responded(conn),
                Progress::Done { .. } | Progress::Bad => self.bad(conn, Failure::BadResponse),
            },
        }
        data.len()
    }

    fn on_peer_close(&mut self, conn: &mut Conn<'_>) {
        let plan = self.plan;
        if let Some(r) = rec!(self, conn) {
            if let Request::Http(_) = plan.request {
                if !r.has(RESPONDED) && r.failure == NO_FAILURE {
                    match r.reader.on_close() {
                        Progress::Done { status: 200, .. } => self.responded(conn),
                        Progress::Done { .. } | Progress::Bad => {
                            self.bad(conn, Failure::BadResponse);
                            return;
                        }
                        Progress::More => {}
                    }
                }
            }
        }
        // Whoever was to close first, the server has: answer with our FIN.
        conn.close();
    }

    fn on_closed(&mut self, _id: ConnId, user: u32, reason: CloseReason) {
        if self.recs.get(user as usize).is_some_and(|r| r.has(LIVE)) {
            self.end(user, Some(reason));
        }
    }
}

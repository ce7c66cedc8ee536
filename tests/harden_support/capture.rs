//! tcpdump in a test namespace, written to a pcap file and read back as TCP segments with their capture times.
//!
//! It owns the capture process (stopped with SIGINT so it flushes and reports its own drops, killed if it hangs)
//! and a small reader of the classic pcap format. A capture whose kernel buffer overflowed says so
//! ([`Captured::dropped_by_kernel`]): a test that counts replies per request must refuse to count then.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// One captured TCP segment (IPv4 or IPv6, optionally inside one VLAN tag).
#[derive(Debug, Clone)]
pub struct Seg {
    /// Capture time, seconds since the UNIX epoch.
    pub ts: f64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// The TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
    pub flags: u8,
    pub payload_len: usize,
    /// The frame's length on the wire (bytes).
    pub wire_len: u32,
}

impl Seg {
    pub fn syn_only(&self) -> bool {
        self.flags & 0x12 == 0x02
    }
    pub fn syn_ack(&self) -> bool {
        self.flags & 0x12 == 0x12
    }
    pub fn rst(&self) -> bool {
        self.flags & 0x04 != 0
    }
}

/// What a capture saw.
#[derive(Debug, Default)]
pub struct Captured {
    pub segs: Vec<Seg>,
    /// tcpdump's own figures at exit ("packets captured", "packets dropped by kernel").
    pub captured: u64,
    pub dropped_by_kernel: u64,
}

/// A running tcpdump; stop it with [`Capture::stop`] (dropping it kills it).
pub struct Capture {
    child: Option<Child>,
    path: PathBuf,
    stderr: mpsc::Receiver<String>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Capture {
    /// Starts `tcpdump -i IFACE [-Q DIR] FILTER` in namespace `ns` and waits until it listens. Headers only (128
    /// bytes a frame), a 64 MiB kernel buffer, and `-Z root` so that it may write into the target directory.
    pub fn start(ns: &str, iface: &str, direction: Option<&str>, filter: &str) -> Capture {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{ns}-{n}.pcap"));
        let _ = std::fs::remove_file(&path);
        let mut args =
            vec!["netns", "exec", ns, "tcpdump", "-n", "-i", iface, "-s", "128", "-B", "65536", "-Z", "root"];
        if let Some(d) = direction {
            args.extend(["-Q", d]);
        }
        let file = path.to_str().expect("utf-8 path").to_string();
        args.extend(["-w", &file, filter]);
        let mut child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump starts (scripts/install-deps.sh installs it)");
        let rx = crate::common::lines_of(vec![Box::new(child.stderr.take().expect("stderr"))]);
        if let Err(seen) = crate::common::wait_for_line(&rx, "listening on", Duration::from_secs(10)) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tcpdump in {ns} on {iface} did not start: {seen:?}");
        }
        Capture { child: Some(child), path, stderr: rx }
    }

    /// SIGINT, wait for tcpdump's exit figures, read the file back (and delete it).
    pub fn stop(mut self) -> Captured {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let mut captured = None;
        let mut dropped = None;
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_secs(10)) {
            let num = || l.split_whitespace().next().and_then(|n| n.parse::<u64>().ok());
            if l.contains("packets captured") {
                captured = num();
            } else if l.contains("dropped by kernel") {
                dropped = num();
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let bytes = std::fs::read(&self.path).unwrap_or_default();
        let _ = std::fs::remove_file(&self.path);
        let segs = read_pcap(&bytes);
        Captured {
            captured: captured.unwrap_or(segs.len() as u64),
            dropped_by_kernel: dropped.expect("tcpdump reports its kernel drops at exit"),
            segs,
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The TCP segments of a classic pcap file (Ethernet link type, either byte order, µs or ns timestamps).
pub fn read_pcap(bytes: &[u8]) -> Vec<Seg> {
    let Some(magic) = bytes.get(..4) else { return Vec::new() };
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => return Vec::new(),
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    };
    let mut out = Vec::new();
    let mut at = 24;
    while let (Some(sec), Some(frac), Some(incl), Some(orig)) =
        (u32_at(at), u32_at(at + 4), u32_at(at + 8), u32_at(at + 12))
    {
        let start = at + 16;
        let Some(frame) = bytes.get(start..start + incl as usize) else { break };
        let ts = f64::from(sec) + f64::from(frac) / if nanos { 1e9 } else { 1e6 };
        if let Some(s) = parse_segment(ts, frame) {
            out.push(Seg { wire_len: orig, ..s });
        }
        at = start + incl as usize;
    }
    out
}

/// Reads the headers of one frame by hand (the capture keeps only the first bytes, so the payload length comes
/// from the IP header, not from what was captured). IPv6 extension headers are not followed.
fn parse_segment(ts: f64, frame: &[u8]) -> Option<Seg> {
    let be16 = |b: &[u8], at: usize| -> Option<u16> { Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?)) };
    let be32 = |b: &[u8], at: usize| -> Option<u32> { Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?)) };
    let mut ethertype = be16(frame, 12)?;
    let mut l3 = 14;
    if ethertype == 0x8100 {
        ethertype = be16(frame, 16)?;
        l3 = 18;
    }
    let ip = frame.get(l3..)?;
    let (src, dst, l4, l4_len) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if *ip.get(9)? != 6 || ihl < 20 {
                return None;
            }
            let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (IpAddr::from(src), IpAddr::from(dst), ip.get(ihl..)?, usize::from(be16(ip, 2)?).saturating_sub(ihl))
        }
        0x86dd => {
            if *ip.get(6)? != 6 {
                return None;
            }
            let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            (IpAddr::from(src), IpAddr::from(dst), ip.get(40..)?, usize::from(be16(ip, 4)?))
        }
        _ => return None,
    };
    let doff = usize::from(l4.get(12)? >> 4) * 4;
    Some(Seg {
        ts,
        src,
        dst,
        sport: be16(l4, 0)?,
        dport: be16(l4, 2)?,
        seq: be32(l4, 4)?,
        ack: be32(l4, 8)?,
        flags: *l4.get(13)?,
        payload_len: l4_len.saturating_sub(doff),
        wire_len: frame.len() as u32,
    })
}

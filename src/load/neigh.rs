//! The next hop of the load generator: which interface and gateway the kernel routes the target through, the MAC
//! address of that hop from the kernel's neighbour table (probed with one UDP datagram to the target when the
//! entry is missing), and the interface's own address as the default source.
//!
//! It asks the kernel through `ip -j` (iproute2's JSON output) in the calling thread's network namespace; the
//! parsing is separate and pure, so it is tested on recorded output. It never changes the neighbour table or
//! routes, and the only packet it ever sends is the probe to the target itself.

use crate::wire::MacAddr;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

/// Why the next hop could not be found.
#[derive(Debug, thiserror::Error)]
pub enum NeighError {
    #[error("`ip {args}` failed: {reason} (is iproute2 installed?)")]
    Command { args: String, reason: String },
    #[error("no route to {0} in this network namespace")]
    NoRoute(IpAddr),
    #[error(
        "the route to {target} goes out of {dev}, not {iface}: pick the interface the kernel uses, or pass --dst-mac"
    )]
    OtherInterface { target: IpAddr, dev: String, iface: String },
    #[error("{target} is a local address of this namespace: the target must be on another host or namespace")]
    Local { target: IpAddr },
    #[error(
        "no neighbour entry for {hop} on {iface} after probing for {waited:?}: is the target up and on this \
         link? (or pass --dst-mac)"
    )]
    Unresolved { hop: IpAddr, iface: String, waited: Duration },
    #[error(
        "{iface} has no {family} address to use as the source (host- and link-scope ones do not count): pass --src"
    )]
    NoAddress { iface: String, family: &'static str },
    #[error("{iface} is down: bring it up first (`ip link set {iface} up`)")]
    Down { iface: String },
    #[error("{iface} has no carrier: its link (on a veth pair, its peer) is down, so nothing sent would arrive")]
    NoCarrier { iface: String },
}

/// Where frames to the target go: the interface's route, and the neighbour (the gateway, or the target itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    pub addr: IpAddr,
    pub via_gateway: bool,
}

/// Parses `ip -j route get TARGET`: the hop for `target`, checked to leave through `iface`.
pub fn parse_route(json: &str, target: IpAddr, iface: &str) -> Result<Hop, NeighError> {
    let v: Value = serde_json::from_str(json).map_err(|e| NeighError::Command {
        args: format!("-j route get {target}"),
        reason: format!("unreadable output: {e}"),
    })?;
    let route = v.as_array().and_then(|a| a.first()).ok_or(NeighError::NoRoute(target))?;
    if route.get("type").and_then(Value::as_str) == Some("local") {
        return Err(NeighError::Local { target });
    }
    let dev = route.get("dev").and_then(Value::as_str).unwrap_or_default();
    if dev != iface {
        return Err(NeighError::OtherInterface { target, dev: dev.to_string(), iface: iface.to_string() });
    }
    match route.get("gateway").and_then(Value::as_str).and_then(|g| g.parse::<IpAddr>().ok()) {
        Some(gw) => Ok(Hop { addr: gw, via_gateway: true }),
        None => Ok(Hop { addr: target, via_gateway: false }),
    }
}

/// Parses `ip -j neigh show to HOP dev IFACE`: the MAC of a usable entry (not FAILED or INCOMPLETE).
pub fn parse_neigh(json: &str, hop: IpAddr) -> Option<MacAddr> {
    let v: Value = serde_json::from_str(json).ok()?;
    v.as_array()?.iter().find_map(|e| {
        let dst: IpAddr = e.get("dst")?.as_str()?.parse().ok()?;
        if dst != hop {
            return None;
        }
        let states: Vec<&str> = e
            .get("state")
            .and_then(Value::as_array)
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if states.iter().any(|s| matches!(*s, "FAILED" | "INCOMPLETE")) {
            return None;
        }
        e.get("lladdr")?.as_str()?.parse::<MacAddr>().ok()
    })
}

/// Parses `ip -j addr show dev IFACE`: its first global (or, failing that, any non-link-local) address of the
/// family of `want_v4`.
pub fn parse_addr(json: &str, want_v4: bool) -> Option<IpAddr> {
    let v: Value = serde_json::from_str(json).ok()?;
    let infos = v.as_array()?.first()?.get("addr_info")?.as_array()?;
    let mut candidates = infos.iter().filter_map(|i| {
        let addr: IpAddr = i.get("local")?.as_str()?.parse().ok()?;
        let scope = i.get("scope").and_then(Value::as_str).unwrap_or("global");
        (addr.is_ipv4() == want_v4 && scope != "link" && scope != "host").then_some((scope == "global", addr))
    });
    let first = candidates.next()?;
    Some(if first.0 { first.1 } else { candidates.find(|c| c.0).unwrap_or(first).1 })
}

/// Parses `ip -j link show dev IFACE`: whether the interface is up and has a carrier. Output it cannot read
/// refuses nothing (the run then finds out for itself).
pub fn parse_link(json: &str, iface: &str) -> Result<(), NeighError> {
    let Some(flags) = serde_json::from_str::<Value>(json).ok().and_then(|v| {
        let flags = v.as_array()?.first()?.get("flags")?.as_array()?.clone();
        Some(flags.iter().filter_map(|f| f.as_str().map(str::to_string)).collect::<Vec<_>>())
    }) else {
        return Ok(());
    };
    let has = |f: &str| flags.iter().any(|g| g == f);
    if !has("UP") {
        Err(NeighError::Down { iface: iface.to_string() })
    } else if has("NO-CARRIER") || !has("LOWER_UP") {
        Err(NeighError::NoCarrier { iface: iface.to_string() })
    } else {
        Ok(())
    }
}

/// Checks that `iface` is up and has a carrier: a load on a link that cannot carry it would only time out, and
/// with `--dst-mac` nothing else would notice before the run. Advisory: when `ip` cannot be run or answer (a run
/// with `--dst-mac` and `--src` needs no iproute2 otherwise), nothing is refused.
pub fn link_up(iface: &str) -> Result<(), NeighError> {
    match ip_json(&["link", "show", "dev", iface]) {
        Ok(json) => parse_link(&json, iface),
        Err(_) => Ok(()),
    }
}

fn ip_json(args: &[&str]) -> Result<String, NeighError> {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    let out = Command::new("ip")
        .args(&all)
        .output()
        .map_err(|e| NeighError::Command { args: all.join(" "), reason: e.to_string() })?;
    if !out.status.success() {
        return Err(NeighError::Command {
            args: all.join(" "),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The route to `target` through `iface`.
pub fn route(target: IpAddr, iface: &str) -> Result<Hop, NeighError> {
    let t = target.to_string();
    match ip_json(&["route", "get", &t]) {
        Ok(json) => parse_route(&json, target, iface),
        Err(NeighError::Command { reason, .. }) if reason.contains("unreachable") => Err(NeighError::NoRoute(target)),
        Err(e) => Err(e),
    }
}

/// The MAC of the next hop to `target` on `iface`, probing once (a UDP datagram to the target's discard port,
/// which makes the kernel resolve the hop) when the table has no usable entry, then waiting up to `wait`.
pub fn next_hop_mac(target: SocketAddr, iface: &str, wait: Duration) -> Result<MacAddr, NeighError> {
    let hop = route(target.ip(), iface)?;
    let h = hop.addr.to_string();
    let lookup = || -> Result<Option<MacAddr>, NeighError> {
        Ok(parse_neigh(&ip_json(&["neigh", "show", "to", &h, "dev", iface])?, hop.addr))
    };
    if let Some(mac) = lookup()? {
        return Ok(mac);
    }
    probe(target);
    let started = Instant::now();
    while started.elapsed() < wait {
        std::thread::sleep(Duration::from_millis(10));
        if let Some(mac) = lookup()? {
            return Ok(mac);
        }
    }
    Err(NeighError::Unresolved { hop: hop.addr, iface: iface.to_string(), waited: wait })
}

/// One empty UDP datagram to the target's discard port: enough for the kernel to resolve the next hop. Errors are
/// ignored (the table is read again either way).
fn probe(target: SocketAddr) {
    let bind: SocketAddr = if target.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    if let Ok(sock) = UdpSocket::bind(bind) {
        let _ = sock.send_to(&[], SocketAddr::new(target.ip(), 9));
    }
}

/// The address of `iface` to use as the default source, of the target's family.
pub fn interface_addr(iface: &str, v4: bool) -> Result<IpAddr, NeighError> {
    let json = ip_json(&["addr", "show", "dev", iface])?;
    parse_addr(&json, v4)
        .ok_or_else(|| NeighError::NoAddress { iface: iface.to_string(), family: if v4 { "IPv4" } else { "IPv6" } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn routes_on_link_via_a_gateway_local_and_elsewhere() {
        let on_link = r#"[{"dst":"10.77.0.1","dev":"xt0","prefsrc":"10.77.0.2","flags":[],"uid":0,"cache":[]}]"#;
        assert_eq!(
            parse_route(on_link, ip("10.77.0.1"), "xt0").unwrap(),
            Hop { addr: ip("10.77.0.1"), via_gateway: false }
        );
        let gw = r#"[{"dst":"10.9.0.1","gateway":"10.77.0.254","dev":"xt0","flags":[],"uid":0,"cache":[]}]"#;
        assert_eq!(parse_route(gw, ip("10.9.0.1"), "xt0").unwrap(), Hop { addr: ip("10.77.0.254"), via_gateway: true });
        assert!(matches!(parse_route(gw, ip("10.9.0.1"), "other"), Err(NeighError::OtherInterface { .. })));
        let local = r#"[{"type":"local","dst":"10.77.0.2","dev":"lo","flags":[],"cache":["local"]}]"#;
        assert!(matches!(parse_route(local, ip("10.77.0.2"), "xt0"), Err(NeighError::Local { .. })));
        assert!(matches!(parse_route("[]", ip("10.77.0.2"), "xt0"), Err(NeighError::NoRoute(_))));
        assert!(matches!(parse_route("garbage", ip("10.77.0.2"), "xt0"), Err(NeighError::Command { .. })));
    }

    #[test]
    fn neighbour_entries_that_failed_or_are_incomplete_do_not_count() {
        let json = r#"[{"dst":"10.77.0.1","dev":"xt0","lladdr":"02:77:00:00:00:01","state":["REACHABLE"]},
                       {"dst":"10.77.0.3","dev":"xt0","state":["FAILED"]},
                       {"dst":"10.77.0.4","dev":"xt0","lladdr":"02:77:00:00:00:04","state":["INCOMPLETE"]},
                       {"dst":"fd77::1","dev":"xt0","lladdr":"02:77:00:00:00:01","state":["STALE"]}]"#;
        assert_eq!(parse_neigh(json, ip("10.77.0.1")), Some(MacAddr([2, 0x77, 0, 0, 0, 1])));
        assert_eq!(parse_neigh(json, ip("fd77::1")), Some(MacAddr([2, 0x77, 0, 0, 0, 1])), "STALE still works");
        assert_eq!(parse_neigh(json, ip("10.77.0.3")), None);
        assert_eq!(parse_neigh(json, ip("10.77.0.4")), None);
        assert_eq!(parse_neigh(json, ip("10.77.0.9")), None);
        assert_eq!(parse_neigh("[]", ip("10.77.0.1")), None);
        assert_eq!(parse_neigh("{", ip("10.77.0.1")), None);
    }

    #[test]
    fn an_interface_that_is_down_or_has_no_carrier_is_refused() {
        // Recorded on a veth pair: up, peer down, itself down; then loopback (no carrier flag, but LOWER_UP).
        let up = r#"[{"ifindex":2,"ifname":"xt1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"operstate":"UP"}]"#;
        let peer_down =
            r#"[{"ifindex":2,"ifname":"xt1","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP"],"operstate":"DOWN"}]"#;
        let down = r#"[{"ifindex":2,"ifname":"xt1","flags":["BROADCAST","MULTICAST"],"operstate":"DOWN"}]"#;
        let lo = r#"[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"operstate":"UNKNOWN"}]"#;
        assert!(parse_link(up, "xt1").is_ok());
        assert!(parse_link(lo, "lo").is_ok());
        assert!(matches!(parse_link(peer_down, "xt1"), Err(NeighError::NoCarrier { .. })));
        match parse_link(down, "xt1") {
            Err(e @ NeighError::Down { .. }) => assert!(e.to_string().contains("ip link set xt1 up"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(parse_link("garbage", "xt1").is_ok(), "unreadable output refuses nothing");
    }

    #[test]
    fn the_default_source_is_a_global_address_of_the_targets_family() {
        let json = r#"[{"ifindex":5,"ifname":"xt0","addr_info":[
            {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"},
            {"family":"inet","local":"10.77.0.2","prefixlen":24,"scope":"global"},
            {"family":"inet6","local":"fd77::2","prefixlen":64,"scope":"global"}]}]"#;
        assert_eq!(parse_addr(json, true), Some(ip("10.77.0.2")));
        assert_eq!(parse_addr(json, false), Some(ip("fd77::2")));
        let none =
            r#"[{"ifindex":5,"ifname":"xt0","addr_info":[{"family":"inet6","local":"fe80::1","scope":"link"}]}]"#;
        assert_eq!(parse_addr(none, true), None);
        assert_eq!(parse_addr(none, false), None);
    }
}

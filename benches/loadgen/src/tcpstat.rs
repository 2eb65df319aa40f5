//! The kernel's TCP counters (`/proc/net/netstat` TcpExt, `/proc/net/snmp` Tcp), read before
//! and after a phase: SYNs retransmitted or dropped, listen queues overflowing, TIME_WAIT
//! sockets met by a new SYN. They are machine-wide (every process on the box, the other builds
//! and tests included), so a delta says what happened on the machine during the phase, not
//! what happened to the load generator's connections.

use std::collections::BTreeMap;

/// The counters reported, as `Group:Name`.
pub const REPORTED: &[&str] = &[
    "TcpExt:ListenOverflows",
    "TcpExt:ListenDrops",
    "TcpExt:TCPSynRetrans",
    "TcpExt:TCPTimeouts",
    "TcpExt:TCPTimeWaitOverflow",
    "TcpExt:TWRecycled",
    "TcpExt:PAWSTimewait",
    "TcpExt:TCPSYNChallenge",
    "TcpExt:TCPChallengeACK",
    "TcpExt:TCPReqQFullDrop",
    "TcpExt:TCPBacklogDrop",
    "TcpExt:TCPAbortOnData",
    "Tcp:RetransSegs",
    "Tcp:AttemptFails",
    "Tcp:EstabResets",
    "Tcp:OutRsts",
];

/// A snapshot of the counters, `Group:Name` → value.
#[derive(Clone, Debug, Default)]
pub struct TcpCounters(pub BTreeMap<String, i64>);

/// Parses the `Group: Name Name…` / `Group: value value…` line pairs of `/proc/net/netstat`
/// and `/proc/net/snmp`.
pub fn parse(text: &str, into: &mut BTreeMap<String, i64>) {
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        let (Some((group, names)), Some((group2, values))) =
            (names.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        if group != group2 {
            continue;
        }
        for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(v) = value.parse::<i64>() {
                into.insert(format!("{group}:{name}"), v);
            }
        }
    }
}

impl TcpCounters {
    /// Reads them now (empty where /proc is not readable).
    pub fn read() -> TcpCounters {
        let mut map = BTreeMap::new();
        for path in ["/proc/net/netstat", "/proc/net/snmp"] {
            if let Ok(text) = std::fs::read_to_string(path) {
                parse(&text, &mut map);
            }
        }
        TcpCounters(map)
    }

    /// The reported counters that changed since `before`, as `Name +delta` (group dropped).
    pub fn delta_since(&self, before: &TcpCounters) -> Vec<(String, i64)> {
        REPORTED
            .iter()
            .filter_map(|key| {
                let (now, then) = (self.0.get(*key)?, before.0.get(*key)?);
                let name = key.split_once(':').map_or(*key, |(_, n)| n);
                (now != then).then(|| (name.to_owned(), now - then))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_and_value_pairs() {
        let mut map = BTreeMap::new();
        parse(
            "TcpExt: SyncookiesSent ListenOverflows TCPSynRetrans\nTcpExt: 0 3 7\nIpExt: InNoRoutes\nIpExt: 1\n",
            &mut map,
        );
        parse("Tcp: RtoAlgorithm RetransSegs\nTcp: 1 42\n", &mut map);
        assert_eq!(map.get("TcpExt:ListenOverflows"), Some(&3));
        assert_eq!(map.get("Tcp:RetransSegs"), Some(&42));
        let before = TcpCounters(map.clone());
        map.insert("TcpExt:TCPSynRetrans".into(), 9);
        let delta = TcpCounters(map).delta_since(&before);
        assert_eq!(delta, vec![("TCPSynRetrans".to_owned(), 2)]);
    }
}

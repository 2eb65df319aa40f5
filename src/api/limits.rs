//! Per-route limiters (fleet-protocol.md §10.1): a token bucket refilling one token per
//! `interval` up to `burst` (no token → 429 `RateLimit`), and at most `max` requests of the route
//! in flight (→ 429 `MaxLimit`; a parked checkin counts for its whole duration). Sans-IO: the
//! caller passes `now` and releases what it acquired.

use std::time::{Duration, Instant};

/// One route's limits; zero means "no limit" for that dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitSpec {
    /// Refill period of the token bucket (zero: no rate limit).
    pub interval: Duration,
    /// Bucket capacity.
    pub burst: u32,
    /// Most requests in flight (zero: unlimited).
    pub max: u32,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No token in the bucket.
    Rate,
    /// Too many in flight.
    Concurrency,
}

/// The limiter state of one route.
#[derive(Debug)]
pub struct Limiter {
    spec: LimitSpec,
    tokens: f64,
    refilled_at: Option<Instant>,
    in_flight: u32,
}

impl Limiter {
    /// A limiter with a full bucket.
    pub fn new(spec: LimitSpec) -> Self {
        Self {
            spec,
            tokens: f64::from(spec.burst),
            refilled_at: None,
            in_flight: 0,
        }
    }

    /// Admits one request at `now` or says why not. An admitted request must be released.
    pub fn acquire(&mut self, now: Instant) -> Result<(), Refusal> {
        if self.spec.max > 0 && self.in_flight >= self.spec.max {
            return Err(Refusal::Concurrency);
        }
        if !self.spec.interval.is_zero() {
            let since = self
                .refilled_at
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            let refill = since.as_secs_f64() / self.spec.interval.as_secs_f64();
            self.tokens = (self.tokens + refill).min(f64::from(self.spec.burst.max(1)));
            self.refilled_at = Some(now);
            if self.tokens < 1.0 {
                return Err(Refusal::Rate);
            }
            self.tokens -= 1.0;
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Requests the bucket would admit at `now` (refills, takes nothing); `u32::MAX` without a
    /// rate limit.
    pub fn available(&mut self, now: Instant) -> u32 {
        if self.spec.interval.is_zero() {
            return u32::MAX;
        }
        let since = self
            .refilled_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        let refill = since.as_secs_f64() / self.spec.interval.as_secs_f64();
        self.tokens = (self.tokens + refill).min(f64::from(self.spec.burst.max(1)));
        self.refilled_at = Some(now);
        // At most the burst, so the cast cannot overflow.
        self.tokens.floor() as u32
    }

    /// Releases an admitted request.
    pub fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }
}

/// The routes with limiters, and their code defaults (§10.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitedRoute {
    /// `checkin_limit`: 1ms / 1000 / unlimited.
    Checkin,
    /// `enroll_limit`: 10ms / 50 / 100.
    Enroll,
    /// `ack_limit`: 10ms / 50 / 100.
    Ack,
    /// `status_limit`: 5ms / 25 / 50.
    Status,
    /// `audit_unenroll_limit`: 10ms / 50 / 100.
    AuditUnenroll,
    /// `opamp_limit`: 1ms / 1000 / unlimited, from the code defaults only (the sizing tables
    /// never set it, §10.2).
    OpAmp,
    /// `upload_start_limit`: 2s / 5 / 10.
    UploadStart,
    /// `upload_chunk_limit`: 3ms / 5 / 10.
    UploadChunk,
    /// `upload_end_limit`: 2s / 5 / 10.
    UploadEnd,
    /// `file_delivery_limit`: 100ms / 5 / 10.
    FileDelivery,
}

impl LimitedRoute {
    /// The code default of the route.
    pub fn default_spec(self) -> LimitSpec {
        let ms = Duration::from_millis;
        match self {
            LimitedRoute::Checkin => LimitSpec {
                interval: ms(1),
                burst: 1000,
                max: 0,
            },
            LimitedRoute::Enroll => LimitSpec {
                interval: ms(10),
                burst: 50,
                max: 100,
            },
            LimitedRoute::Ack => LimitSpec {
                interval: ms(10),
                burst: 50,
                max: 100,
            },
            LimitedRoute::Status => LimitSpec {
                interval: ms(5),
                burst: 25,
                max: 50,
            },
            LimitedRoute::AuditUnenroll => LimitSpec {
                interval: ms(10),
                burst: 50,
                max: 100,
            },
            LimitedRoute::OpAmp => LimitSpec {
                interval: ms(1),
                burst: 1000,
                max: 0,
            },
            LimitedRoute::UploadStart | LimitedRoute::UploadEnd => LimitSpec {
                interval: ms(2000),
                burst: 5,
                max: 10,
            },
            LimitedRoute::UploadChunk => LimitSpec {
                interval: ms(3),
                burst: 5,
                max: 10,
            },
            LimitedRoute::FileDelivery => LimitSpec {
                interval: ms(100),
                burst: 5,
                max: 10,
            },
        }
    }
}

/// One of Fleet Server's published sizing tables (`config-defaults/*.yml`, fleet-protocol.md
/// §10.3): the route limits for a fleet of up to `max_agents`, on a box with at least
/// `min_ram_mib`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizingTable {
    /// The file's name (`lte10000`, ...).
    pub name: &'static str,
    /// Largest fleet it is for (`u64::MAX` for `max`).
    pub max_agents: u64,
    /// Recommended minimum memory, MiB.
    pub min_ram_mib: u64,
    /// `checkin_limit`, `enroll_limit`, `ack_limit`, `status_limit`, `audit_unenroll_limit`.
    pub specs: [LimitSpec; 5],
}

const fn spec(interval_us: u64, burst: u32, max: u32) -> LimitSpec {
    LimitSpec {
        interval: Duration::from_micros(interval_us),
        burst,
        max,
    }
}

/// The eight tables, smallest first. Columns: checkin, enroll, ack, status, audit_unenroll.
pub const SIZING_TABLES: [SizingTable; 8] = [
    SizingTable {
        name: "lte0500",
        max_agents: 500,
        min_ram_mib: 256,
        specs: [
            spec(5000, 100, 500),
            spec(10000, 10, 20),
            spec(4000, 100, 200),
            spec(5000, 10, 20),
            spec(4000, 100, 200),
        ],
    },
    SizingTable {
        name: "lte1000",
        max_agents: 1000,
        min_ram_mib: 512,
        specs: [
            spec(5000, 200, 1000),
            spec(10000, 20, 40),
            spec(4000, 200, 400),
            spec(5000, 20, 40),
            spec(4000, 200, 400),
        ],
    },
    SizingTable {
        name: "lte2500",
        max_agents: 2500,
        min_ram_mib: 1024,
        specs: [
            spec(5000, 500, 2500),
            spec(10000, 50, 100),
            spec(4000, 500, 1000),
            spec(5000, 50, 100),
            spec(4000, 500, 1000),
        ],
    },
    SizingTable {
        name: "lte5000",
        max_agents: 5000,
        min_ram_mib: 2048,
        specs: [
            spec(2000, 1000, 5000),
            spec(10000, 100, 200),
            spec(2000, 1000, 2000),
            spec(5000, 100, 200),
            spec(2000, 1000, 2000),
        ],
    },
    SizingTable {
        name: "lte10000",
        max_agents: 10000,
        min_ram_mib: 4048,
        specs: [
            spec(1000, 2000, 10000),
            spec(10000, 100, 200),
            spec(1000, 2000, 4000),
            spec(5000, 200, 400),
            spec(1000, 2000, 4000),
        ],
    },
    SizingTable {
        name: "lte20000",
        max_agents: 20000,
        min_ram_mib: 8096,
        specs: [
            spec(500, 4000, 20000),
            spec(10000, 100, 200),
            spec(500, 4000, 8000),
            spec(5000, 200, 400),
            spec(500, 4000, 8000),
        ],
    },
    SizingTable {
        name: "lte40000",
        max_agents: 40000,
        min_ram_mib: 16192,
        specs: [
            spec(500, 4000, 40000),
            spec(10000, 100, 200),
            spec(500, 4000, 8000),
            spec(5000, 200, 400),
            spec(500, 4000, 8000),
        ],
    },
    SizingTable {
        name: "max",
        max_agents: u64::MAX,
        min_ram_mib: 32384,
        specs: [
            spec(250, 8000, 80000),
            spec(10000, 200, 400),
            spec(250, 8000, 16000),
            spec(5000, 200, 400),
            spec(250, 8000, 16000),
        ],
    },
];

/// §10.1 table selection (`server.limits.max_agents`): a positive fleet size picks the table whose
/// range holds it; zero picks by memory (the largest table whose recommended RAM fits, none below
/// 256 MiB); negative (or nothing fitting) means the code defaults.
pub fn select_table(max_agents: i64, available_mib: Option<u64>) -> Option<&'static SizingTable> {
    if max_agents > 0 {
        let n = max_agents.unsigned_abs();
        return SIZING_TABLES.iter().find(|t| n <= t.max_agents);
    }
    if max_agents < 0 {
        return None;
    }
    let mib = available_mib?;
    SIZING_TABLES.iter().rev().find(|t| t.min_ram_mib <= mib)
}

/// What the embedded store sustains on the reference machine (2 shared cores, ext4 on a virtio
/// disk at about 7 ms per fsync), measured with `cargo bench -p loadgen --bench store`
/// (2026-12-03, release, every commit two-phase and fsynced; see the README's Performance
/// section): policy acks from one backend thread in runs of up to 512 whose commits are shared
/// (`backend::deferred`), and checkin-state writes in the bulk writer's batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreCapacity {
    /// Policy acks made durable per second.
    pub acks_per_sec: u32,
    /// Checkin-state writes made durable per second.
    pub checkin_writes_per_sec: u32,
}

/// The measured capacity of the embedded store (the lowest of repeated runs).
/// Three runs on 2026-12-03: policy acks 25,004 / 30,375 / 34,539 per second (one commit per
/// 303–333 acks; waiting for each ack instead: 108–131 per second), checkin writes 38,010 /
/// 46,666 / 68,453 per second.
pub const EMBEDDED_CAPACITY: StoreCapacity = StoreCapacity {
    acks_per_sec: 25_000,
    checkin_writes_per_sec: 38_000,
};

/// Embedded mode's tables: each of Fleet Server's ([`SIZING_TABLES`]) with its ack and checkin
/// limits sized to the embedded store ([`embedded_table`]); selected like Fleet Server's.
pub const EMBEDDED_TABLES: [SizingTable; 8] = {
    let mut out = SIZING_TABLES;
    let mut i = 0;
    while i < out.len() {
        out[i] = embedded_table(EMBEDDED_CAPACITY, &SIZING_TABLES[i]);
        i += 1;
    }
    out
};

/// Embedded mode's limits where Fleet Server would use its code defaults (memory unknown or
/// below 256 MiB): the code defaults with ack and checkin sized to the store.
pub const EMBEDDED_DEFAULTS: SizingTable = embedded_table(
    EMBEDDED_CAPACITY,
    &SizingTable {
        name: "code defaults",
        max_agents: u64::MAX,
        min_ram_mib: 0,
        specs: [
            spec(1000, 1000, 0),
            spec(10_000, 50, 100),
            spec(10_000, 50, 100),
            spec(5_000, 25, 50),
            spec(10_000, 50, 100),
        ],
    },
);

/// Embedded mode's table: [`select_table`]'s choice with ack and checkin sized to the store.
pub fn select_embedded_table(available_mib: Option<u64>) -> &'static SizingTable {
    match select_table(0, available_mib).and_then(|t| {
        SIZING_TABLES
            .iter()
            .position(|s| s.name == t.name)
            .and_then(|i| EMBEDDED_TABLES.get(i))
    }) {
        Some(table) => table,
        None => &EMBEDDED_DEFAULTS,
    }
}

/// `base` with its ack and checkin limits sized to a store of capacity `c`. Fleet Server's
/// tables size acks and checkins for Elasticsearch; with the embedded store the constraint is
/// its commit rate, so:
/// * acks refill at half the measured rate (headroom for a slower disk or a busy CPU), with a
///   burst and an in-flight cap of one second at that rate (a rollout's acks arrive together
///   and are batched into shared commits);
/// * checkins refill at half the measured checkin-write rate with the same burst; their store
///   writes are batched by the bulk writer and a checkin's own store part is reads; the number
///   in flight is not capped here: Fleet Server's cap (a parked checkin counts for its whole
///   duration) is sized to its own memory per agent, roughly a hundred times fleet-edge's, and
///   would hold a 512 MiB box to 1,000 agents; `max_connections` bounds parked checkins;
/// * enroll, status and audit/unenroll keep `base`'s limits.
///
/// Rollout pacing follows from the ack and checkin specs ([`crate::core::pacing::Pacer`]).
pub const fn embedded_table(c: StoreCapacity, base: &SizingTable) -> SizingTable {
    let acks = nonzero(c.acks_per_sec / 2);
    let checkins = nonzero(c.checkin_writes_per_sec / 2);
    SizingTable {
        name: base.name,
        max_agents: base.max_agents,
        min_ram_mib: base.min_ram_mib,
        specs: [
            spec(1_000_000 / checkins as u64, checkins, 0),
            base.specs[1],
            spec(1_000_000 / acks as u64, acks, acks),
            base.specs[3],
            base.specs[4],
        ],
    }
}

const fn nonzero(n: u32) -> u32 {
    if n == 0 {
        1
    } else {
        n
    }
}

impl SizingTable {
    /// The spec of a route in this table.
    pub fn spec(&self, route: LimitedRoute) -> LimitSpec {
        let i = match route {
            LimitedRoute::Checkin => 0,
            LimitedRoute::Enroll => 1,
            LimitedRoute::Ack => 2,
            LimitedRoute::Status => 3,
            LimitedRoute::AuditUnenroll => 4,
            LimitedRoute::OpAmp => return route.default_spec(),
            LimitedRoute::UploadStart
            | LimitedRoute::UploadEnd
            | LimitedRoute::UploadChunk
            | LimitedRoute::FileDelivery => return self.upload_spec(route),
        };
        self.specs
            .get(i)
            .copied()
            .unwrap_or_else(|| route.default_spec())
    }
}

/// Burst and max of the upload limiters (start, end and chunk alike) and of `file_delivery_limit`
/// (the same numbers) per sizing table, fleet-protocol.md §10.3; intervals are 2 s (start, end),
/// 3 ms (chunk) and 100 ms (file delivery) in every table.
const UPLOAD_BURST_MAX: [(&str, u32, u32); 8] = [
    ("lte0500", 5, 5),
    ("lte1000", 5, 10),
    ("lte2500", 10, 20),
    ("lte5000", 20, 40),
    ("lte10000", 40, 80),
    ("lte20000", 40, 80),
    ("lte40000", 40, 80),
    ("max", 40, 80),
];

impl SizingTable {
    /// The upload limiters of this table.
    fn upload_spec(&self, route: LimitedRoute) -> LimitSpec {
        let default = route.default_spec();
        match UPLOAD_BURST_MAX
            .iter()
            .find(|(name, ..)| *name == self.name)
        {
            Some(&(_, burst, max)) => LimitSpec {
                burst,
                max,
                ..default
            },
            None => default,
        }
    }
}

/// Limiters of every limited route.
#[derive(Debug)]
pub struct RouteLimits {
    checkin: Limiter,
    enroll: Limiter,
    ack: Limiter,
    status: Limiter,
    audit: Limiter,
    opamp: Limiter,
    upload_start: Limiter,
    upload_chunk: Limiter,
    upload_end: Limiter,
    file_delivery: Limiter,
}

impl Default for RouteLimits {
    fn default() -> Self {
        Self::with(|r| r.default_spec())
    }
}

impl RouteLimits {
    /// Limiters with the specs `spec` gives.
    pub fn with(spec: impl Fn(LimitedRoute) -> LimitSpec) -> Self {
        Self {
            checkin: Limiter::new(spec(LimitedRoute::Checkin)),
            enroll: Limiter::new(spec(LimitedRoute::Enroll)),
            ack: Limiter::new(spec(LimitedRoute::Ack)),
            status: Limiter::new(spec(LimitedRoute::Status)),
            audit: Limiter::new(spec(LimitedRoute::AuditUnenroll)),
            opamp: Limiter::new(spec(LimitedRoute::OpAmp)),
            upload_start: Limiter::new(spec(LimitedRoute::UploadStart)),
            upload_chunk: Limiter::new(spec(LimitedRoute::UploadChunk)),
            upload_end: Limiter::new(spec(LimitedRoute::UploadEnd)),
            file_delivery: Limiter::new(spec(LimitedRoute::FileDelivery)),
        }
    }

    /// The limiter of a route.
    pub fn get(&mut self, route: LimitedRoute) -> &mut Limiter {
        match route {
            LimitedRoute::Checkin => &mut self.checkin,
            LimitedRoute::Enroll => &mut self.enroll,
            LimitedRoute::Ack => &mut self.ack,
            LimitedRoute::Status => &mut self.status,
            LimitedRoute::AuditUnenroll => &mut self.audit,
            LimitedRoute::OpAmp => &mut self.opamp,
            LimitedRoute::UploadStart => &mut self.upload_start,
            LimitedRoute::UploadChunk => &mut self.upload_chunk,
            LimitedRoute::UploadEnd => &mut self.upload_end,
            LimitedRoute::FileDelivery => &mut self.file_delivery,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_limits_follow_the_code_defaults_and_the_tables() {
        let ms = Duration::from_millis;
        let start = LimitedRoute::UploadStart.default_spec();
        assert_eq!((start.interval, start.burst, start.max), (ms(2000), 5, 10));
        let chunk = LimitedRoute::UploadChunk.default_spec();
        assert_eq!((chunk.interval, chunk.burst, chunk.max), (ms(3), 5, 10));
        let lte0500 = &SIZING_TABLES[0];
        assert_eq!(lte0500.spec(LimitedRoute::UploadEnd).max, 5);
        let lte10000 = &SIZING_TABLES[4];
        let chunk = lte10000.spec(LimitedRoute::UploadChunk);
        assert_eq!((chunk.interval, chunk.burst, chunk.max), (ms(3), 40, 80));
        assert_eq!(
            SIZING_TABLES[2].spec(LimitedRoute::UploadStart),
            LimitSpec {
                interval: ms(2000),
                burst: 10,
                max: 20
            }
        );
    }

    #[test]
    fn available_refills_without_taking() {
        let t0 = Instant::now();
        let mut l = Limiter::new(LimitSpec {
            interval: Duration::from_millis(10),
            burst: 3,
            max: 0,
        });
        assert_eq!(l.available(t0), 3);
        assert_eq!(l.available(t0), 3);
        l.acquire(t0).unwrap();
        l.acquire(t0).unwrap();
        assert_eq!(l.available(t0), 1);
        assert_eq!(l.available(t0 + Duration::from_millis(10)), 2);
        let mut unlimited = Limiter::new(LimitSpec {
            interval: Duration::ZERO,
            burst: 0,
            max: 0,
        });
        assert_eq!(unlimited.available(t0), u32::MAX);
    }

    #[test]
    fn bucket_empties_then_refills_at_the_interval() {
        let t0 = Instant::now();
        let mut l = Limiter::new(LimitSpec {
            interval: Duration::from_millis(10),
            burst: 2,
            max: 0,
        });
        assert_eq!(l.acquire(t0), Ok(()));
        assert_eq!(l.acquire(t0), Ok(()));
        assert_eq!(l.acquire(t0), Err(Refusal::Rate));
        assert_eq!(l.acquire(t0 + Duration::from_millis(5)), Err(Refusal::Rate));
        assert_eq!(
            l.acquire(t0 + Duration::from_millis(11)),
            Ok(()),
            "one token after one interval"
        );
        assert_eq!(
            l.acquire(t0 + Duration::from_secs(100)),
            Ok(()),
            "refill is capped at burst"
        );
        assert_eq!(l.acquire(t0 + Duration::from_secs(100)), Ok(()));
        assert_eq!(l.acquire(t0 + Duration::from_secs(100)), Err(Refusal::Rate));
    }

    #[test]
    fn concurrency_is_counted_until_release() {
        let t0 = Instant::now();
        let mut l = Limiter::new(LimitSpec {
            interval: Duration::ZERO,
            burst: 0,
            max: 2,
        });
        assert!(l.acquire(t0).is_ok() && l.acquire(t0).is_ok());
        assert_eq!(l.acquire(t0), Err(Refusal::Concurrency));
        l.release();
        assert_eq!(l.acquire(t0), Ok(()));
        assert_eq!(l.in_flight(), 2);
    }

    #[test]
    fn tables_are_selected_like_fleet_server() {
        assert_eq!(
            select_table(0, Some(100)),
            None,
            "below 256 MiB: code defaults"
        );
        assert_eq!(select_table(0, Some(300)).map(|t| t.name), Some("lte0500"));
        assert_eq!(
            select_table(0, Some(24 * 1024)).map(|t| t.name),
            Some("lte40000")
        );
        assert_eq!(
            select_table(0, Some(64 * 1024)).map(|t| t.name),
            Some("max")
        );
        assert_eq!(select_table(0, None), None);
        assert_eq!(
            select_table(7000, Some(100)).map(|t| t.name),
            Some("lte10000"),
            "fleet size wins"
        );
        assert_eq!(select_table(50_000, None).map(|t| t.name), Some("max"));
        assert_eq!(select_table(-1, Some(64 * 1024)), None);
        let t = select_table(10_000, None).unwrap();
        assert_eq!(
            t.spec(LimitedRoute::Ack),
            LimitSpec {
                interval: Duration::from_millis(1),
                burst: 2000,
                max: 4000
            }
        );
    }

    #[test]
    fn tables_match_the_published_files_when_present() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/fleet-server/config-defaults"
        );
        let Ok(_) = std::fs::metadata(dir) else {
            return;
        };
        for table in SIZING_TABLES {
            let text = std::fs::read_to_string(format!("{dir}/{}_limits.yml", table.name)).unwrap();
            let field = |section: &str, key: &str| -> String {
                let start = text
                    .find(&format!("  {section}:\n"))
                    .unwrap_or_else(|| panic!("{} {section}", table.name));
                let rest = &text[start..];
                let line = rest
                    .lines()
                    .find(|l| l.trim_start().starts_with(&format!("{key}:")))
                    .unwrap();
                line.split(':').nth(1).unwrap().trim().to_owned()
            };
            for (section, route) in [
                ("checkin_limit", LimitedRoute::Checkin),
                ("enroll_limit", LimitedRoute::Enroll),
                ("ack_limit", LimitedRoute::Ack),
                ("status_limit", LimitedRoute::Status),
                ("audit_unenroll_limit", LimitedRoute::AuditUnenroll),
            ] {
                let spec = table.spec(route);
                assert_eq!(
                    field(section, "burst"),
                    spec.burst.to_string(),
                    "{} {section}",
                    table.name
                );
                assert_eq!(
                    field(section, "max"),
                    spec.max.to_string(),
                    "{} {section}",
                    table.name
                );
                let interval = field(section, "interval");
                let us = if let Some(ms) = interval.strip_suffix("ms") {
                    (ms.parse::<f64>().unwrap() * 1000.0) as u128
                } else {
                    interval.trim_end_matches('s').parse::<u128>().unwrap() * 1_000_000
                };
                assert_eq!(
                    us,
                    spec.interval.as_micros(),
                    "{} {section} interval",
                    table.name
                );
            }
        }
    }

    #[test]
    fn the_embedded_tables_follow_the_store_capacity() {
        let base = &SIZING_TABLES[4];
        let t = embedded_table(
            StoreCapacity {
                acks_per_sec: 8_000,
                checkin_writes_per_sec: 20_000,
            },
            base,
        );
        let ack = t.spec(LimitedRoute::Ack);
        assert_eq!(ack.interval, Duration::from_micros(250), "half of 8,000/s");
        assert_eq!((ack.burst, ack.max), (4_000, 4_000));
        let checkin = t.spec(LimitedRoute::Checkin);
        assert_eq!(checkin.interval, Duration::from_micros(100));
        assert_eq!((checkin.burst, checkin.max), (10_000, 0));
        for route in [
            LimitedRoute::Enroll,
            LimitedRoute::Status,
            LimitedRoute::AuditUnenroll,
        ] {
            assert_eq!(t.spec(route), base.spec(route), "{route:?}");
        }
        let none = embedded_table(
            StoreCapacity {
                acks_per_sec: 0,
                checkin_writes_per_sec: 1,
            },
            base,
        );
        assert_eq!(none.spec(LimitedRoute::Ack).burst, 1, "never a zero bucket");
        // Selected as Fleet Server selects, code defaults when memory is unknown.
        assert_eq!(select_embedded_table(Some(24 * 1024)).name, "lte40000");
        assert_eq!(select_embedded_table(None).name, "code defaults");
        assert_eq!(
            EMBEDDED_DEFAULTS.spec(LimitedRoute::Status),
            LimitedRoute::Status.default_spec()
        );
        // Every shipped table lets a rollout to 10,000 parked agents go out within a second.
        for table in EMBEDDED_TABLES.iter().chain([&EMBEDDED_DEFAULTS]) {
            let mut pace = crate::core::pacing::Pacer::for_routes(
                table.spec(LimitedRoute::Ack),
                table.spec(LimitedRoute::Checkin),
            );
            let t0 = Instant::now();
            let first = pace.allowance(t0);
            pace.spend(first);
            let after = pace.allowance(t0 + Duration::from_secs(1));
            assert!(
                first + after >= 10_000,
                "{}: {first} at once, {after} in the next second",
                table.name
            );
        }
    }

    #[test]
    fn defaults_follow_the_code_table() {
        assert_eq!(
            LimitedRoute::Enroll.default_spec(),
            LimitSpec {
                interval: Duration::from_millis(10),
                burst: 50,
                max: 100
            }
        );
        assert_eq!(
            LimitedRoute::Checkin.default_spec().max,
            0,
            "long polls unlimited by default"
        );
    }
}

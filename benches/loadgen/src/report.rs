//! The run's report: the machine (cores, CPU model from `/proc/cpuinfo`, memory, kernel), N,
//! backend, transport, and one row per metric with its goal and whether it was met; written as
//! a Markdown table and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Map, Value};

/// The machine the run happened on.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// `model name` from /proc/cpuinfo.
    pub model: String,
    /// MemTotal, MiB.
    pub mem_mib: u64,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// Reads the machine's description.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(|| "unknown".to_owned(), |m| m.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: u64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            model,
            mem_mib: mem_kib / 1024,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        }
    }
}

/// A goal and whether the measurement met it.
#[derive(Debug, Clone)]
pub struct Goal {
    /// e.g. "≤ 5 MB".
    pub text: String,
    /// Met?
    pub met: bool,
}

/// One row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// Metric name.
    pub metric: String,
    /// The value as shown.
    pub shown: String,
    /// The goal, if the issue sets one.
    pub goal: Option<Goal>,
}

/// The report being built.
pub struct Report {
    /// Machine.
    pub machine: Machine,
    /// Agents simulated.
    pub agents: usize,
    /// "embedded".
    pub backend: String,
    /// "TLS" or "plain HTTP".
    pub transport: String,
    /// The loadgen command line.
    pub command: String,
    /// Idle's RSS per parked agent, bytes (for `--max-rss-per-agent`).
    pub rss_per_agent_bytes: Option<f64>,
    /// Idle's RSS per further parked agent, N/2 to N, bytes (for `--max-rss-per-further-agent`).
    pub rss_per_further_agent_bytes: Option<f64>,
    /// Rows in order.
    pub rows: Vec<Row>,
    /// Machine-readable values: scenario → metric → value.
    pub values: BTreeMap<String, Map<String, Value>>,
    /// Errors per scenario: "kind: cause" → count.
    pub errors: BTreeMap<String, BTreeMap<String, u64>>,
    /// Free-form observations (limits hit, counters).
    pub notes: Vec<String>,
    /// Further Markdown tables (the outage scenario's per-phase table), printed before the notes.
    pub sections: Vec<String>,
}

impl Report {
    /// An empty report.
    pub fn new(agents: usize, transport: &str, command: String) -> Report {
        Report {
            machine: Machine::detect(),
            agents,
            backend: "embedded".into(),
            transport: transport.into(),
            command,
            rss_per_agent_bytes: None,
            rss_per_further_agent_bytes: None,
            rows: Vec::new(),
            values: BTreeMap::new(),
            errors: BTreeMap::new(),
            notes: Vec::new(),
            sections: Vec::new(),
        }
    }

    /// Adds a numeric metric shown with `decimals` and `unit`.
    pub fn metric(
        &mut self,
        scenario: &str,
        metric: &str,
        value: f64,
        decimals: usize,
        unit: &str,
        goal: Option<Goal>,
    ) {
        let shown = if value.is_finite() {
            format!(
                "{value:.decimals$}{}{unit}",
                if unit.is_empty() { "" } else { " " }
            )
        } else {
            "n/a".to_owned()
        };
        self.rows.push(Row {
            scenario: scenario.into(),
            metric: metric.into(),
            shown,
            goal,
        });
        let key = if unit.is_empty() {
            metric.to_owned()
        } else {
            format!("{metric} ({unit})")
        };
        let v = if value.is_finite() {
            json!(value)
        } else {
            Value::Null
        };
        self.values
            .entry(scenario.into())
            .or_default()
            .insert(key, v);
    }

    /// Adds a text metric.
    pub fn text(&mut self, scenario: &str, metric: &str, text: &str, goal: Option<Goal>) {
        self.rows.push(Row {
            scenario: scenario.into(),
            metric: metric.into(),
            shown: text.into(),
            goal,
        });
        self.values
            .entry(scenario.into())
            .or_default()
            .insert(metric.into(), json!(text));
    }

    /// Records a scenario's errors (and the total as a row with the zero-errors goal).
    pub fn errors(&mut self, scenario: &str, errors: &BTreeMap<String, u64>) {
        let total: u64 = errors.values().sum();
        let detail = if errors.is_empty() {
            "0".to_owned()
        } else {
            let parts: Vec<String> = errors.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            format!("{total} ({})", parts.join("; "))
        };
        self.text(
            scenario,
            "errors",
            &detail,
            Some(Goal {
                text: "0".into(),
                met: total == 0,
            }),
        );
        self.errors.insert(scenario.into(), errors.clone());
    }

    /// The Markdown form.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Machine: {} cores, {}, {} MiB RAM, Linux {}. N = {} agents, backend {}, {}.",
            m.cores, m.model, m.mem_mib, m.kernel, self.agents, self.backend, self.transport
        );
        let _ = writeln!(out, "Command: `{}`\n", self.command);
        let _ = writeln!(out, "| scenario | metric | value | goal | |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for r in &self.rows {
            let (goal, verdict) = match &r.goal {
                Some(g) => (g.text.as_str(), if g.met { "met" } else { "**missed**" }),
                None => ("", ""),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                r.scenario,
                r.metric,
                r.shown.replace('|', "/"),
                goal,
                verdict
            );
        }
        for section in &self.sections {
            let _ = writeln!(out, "\n{section}");
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out);
            for n in &self.notes {
                let _ = writeln!(out, "* {n}");
            }
        }
        out
    }

    /// The JSON form.
    pub fn json(&self) -> Value {
        let m = &self.machine;
        json!({
            "machine": {"cores": m.cores, "model": m.model, "mem_mib": m.mem_mib, "kernel": m.kernel},
            "agents": self.agents,
            "backend": self.backend,
            "transport": self.transport,
            "command": self.command,
            "scenarios": self.values,
            "errors": self.errors,
            "goals": self.rows.iter().filter_map(|r| r.goal.as_ref().map(|g| json!({
                "scenario": r.scenario, "metric": r.metric, "value": r.shown, "goal": g.text, "met": g.met
            }))).collect::<Vec<_>>(),
            "notes": self.notes,
        })
    }
}

//! CPU time from /proc: the machine's busy time (`/proc/stat`), the bench's own
//! (`/proc/self/stat`), and that of the processes a run goes through, grouped: the stack's
//! services (by pid), NATS, Redis, dockerd, containerd and the containerd shims (by command
//! name, scanned every quarter second so shims born during a window count too). Processes
//! shorter than a scan (runc, the sandboxes) only show in the machine's figure.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

/// Clock ticks per second of the CPU times in /proc (USER_HZ, 100 on Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;
/// Time between two scans of /proc during a window.
const SCAN_EVERY: Duration = Duration::from_millis(250);
/// Shared processes counted by command name (as /proc truncates it, 15 bytes): the group is
/// the name, or the prefix for the shims (`containerd-shim-runc-v2`).
const SHARED: &[&str] = &["nats-server", "redis-server", "dockerd", "containerd"];
const SHIM_PREFIX: &str = "containerd-shim";

/// Busy ticks of the whole machine from `/proc/stat`'s first line: user, nice, system, irq
/// and softirq (idle and iowait left out; steal is time the hypervisor gave to others, not
/// work of this machine; guest time is already inside user).
pub fn machine_busy_ticks(proc_stat: &str) -> Option<u64> {
    let line = proc_stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let field = |index: usize| fields.get(index).copied().unwrap_or(0);
    Some(field(0) + field(1) + field(2) + field(5) + field(6))
}

/// One process's `/proc/<pid>/stat`: its command name, user + system ticks, and its start
/// time (ticks after boot), which tells a reused pid apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessTimes {
    pub command: String,
    pub ticks: u64,
    pub started: u64,
}

pub fn process_times(stat: &str) -> Option<ProcessTimes> {
    // The command is in parentheses and may itself hold spaces and parentheses.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let command = stat.get(open + 1..close)?.to_owned();
    // After the command: state is field 3, utime 14, stime 15, starttime 22.
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let field = |number: usize| rest.get(number - 3)?.parse::<u64>().ok();
    Some(ProcessTimes {
        command,
        ticks: field(14)? + field(15)?,
        started: field(22)?,
    })
}

fn read_process(pid: &str) -> Option<ProcessTimes> {
    process_times(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The group a process is counted in: a service of the stack by pid, else a shared process
/// by name.
pub fn group_of(pid: u32, command: &str, services: &[(String, u32)]) -> Option<String> {
    if let Some((service, _)) = services.iter().find(|(_, service_pid)| *service_pid == pid) {
        return Some(service.clone());
    }
    if command.starts_with(SHIM_PREFIX) {
        return Some(SHIM_PREFIX.to_owned());
    }
    SHARED
        .iter()
        .find(|name| **name == command)
        .map(|name| (*name).to_owned())
}

/// What one window of time cost, in CPU milliseconds.
#[derive(Debug, Clone, Default)]
pub struct CpuWindow {
    pub elapsed: Duration,
    /// The whole machine's busy time.
    pub machine_ms: f64,
    /// The bench's own process.
    pub own_ms: f64,
    /// Per group (service name, `nats-server`, `dockerd`, …).
    pub groups: BTreeMap<String, f64>,
}

impl CpuWindow {
    /// The machine's busy time less the bench's own.
    pub fn machine_less_own_ms(&self) -> f64 {
        self.machine_ms - self.own_ms
    }
}

/// Per-process ticks seen so far: the first reading of each process and its latest one.
struct ProcessScan<'a> {
    services: &'a [(String, u32)],
    readings: HashMap<(u32, u64), (String, u64, u64)>,
    first_scan: bool,
}

impl ProcessScan<'_> {
    fn scan(&mut self) {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|name| name.parse::<u32>().ok()) else {
                continue;
            };
            let Some(times) = read_process(&pid.to_string()) else {
                continue;
            };
            let Some(group) = group_of(pid, &times.command, self.services) else {
                continue;
            };
            // A process first seen after the first scan started during the window: all of
            // its time counts.
            let first_scan = self.first_scan;
            let reading = self
                .readings
                .entry((pid, times.started))
                .or_insert_with(|| (group, if first_scan { times.ticks } else { 0 }, 0));
            reading.2 = times.ticks;
        }
        self.first_scan = false;
    }

    fn totals(&self) -> BTreeMap<String, f64> {
        let mut totals = BTreeMap::new();
        for (group, first, latest) in self.readings.values() {
            *totals.entry(group.clone()).or_insert(0.0) +=
                latest.saturating_sub(*first) as f64 * 1000.0 / TICKS_PER_SECOND;
        }
        totals
    }
}

fn machine_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| machine_busy_ticks(&stat))
        .unwrap_or(0)
}

fn own_ticks() -> u64 {
    read_process("self").map(|times| times.ticks).unwrap_or(0)
}

/// Runs `work` while measuring the CPU the machine, the bench and each group spend.
pub async fn measure<F: Future>(services: &[(String, u32)], work: F) -> (F::Output, CpuWindow) {
    let mut scan = ProcessScan {
        services,
        readings: HashMap::new(),
        first_scan: true,
    };
    scan.scan();
    let (machine, own, started) = (machine_ticks(), own_ticks(), Instant::now());
    let mut ticker = tokio::time::interval(SCAN_EVERY);
    let mut work = std::pin::pin!(work);
    let output = loop {
        tokio::select! {
            output = &mut work => break output,
            _ = ticker.tick() => scan.scan(),
        }
    };
    let elapsed = started.elapsed();
    let (machine_end, own_end) = (machine_ticks(), own_ticks());
    scan.scan();
    let to_ms = |ticks: u64| ticks as f64 * 1000.0 / TICKS_PER_SECOND;
    let window = CpuWindow {
        elapsed,
        machine_ms: to_ms(machine_end.saturating_sub(machine)),
        own_ms: to_ms(own_end.saturating_sub(own)),
        groups: scan.totals(),
    };
    (output, window)
}

/// A process's resident memory (`VmRSS`) in MiB.
pub fn resident_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_leaves_idle_iowait_and_steal_out() {
        let stat = "cpu  100 5 50 9000 40 3 2 1 0 0\ncpu0 50 2 25 4500 20 1 1 0 0 0\nintr 1\n";
        assert_eq!(machine_busy_ticks(stat), Some(100 + 5 + 50 + 3 + 2));
        assert_eq!(machine_busy_ticks("intr 1\n"), None);
    }

    #[test]
    fn a_command_with_spaces_and_parentheses_is_read_whole() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    70 30 0 0 20 0 3 0 123456 1000 200 18446744073709551615";
        let times = process_times(stat).expect("parsed");
        assert_eq!(times.command, "a (b) c");
        assert_eq!(times.ticks, 100);
        assert_eq!(times.started, 123456);
    }

    #[test]
    fn services_go_by_pid_and_shared_processes_by_name() {
        let services = vec![("executor".to_owned(), 7)];
        assert_eq!(
            group_of(7, "coderun-executo", &services).as_deref(),
            Some("executor")
        );
        assert_eq!(
            group_of(9, "containerd-shim", &services).as_deref(),
            Some(SHIM_PREFIX)
        );
        assert_eq!(
            group_of(9, "dockerd", &services).as_deref(),
            Some("dockerd")
        );
        assert_eq!(group_of(9, "bash", &services), None);
    }
}

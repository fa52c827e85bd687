//! The process's own resource use, read from /proc at every scrape, under the names
//! Prometheus's client libraries give them (`process_resident_memory_bytes`,
//! `process_cpu_seconds_total`, `process_open_fds`), so a dashboard or a soak test reads every
//! service's memory the same way.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::metrics::encode_collected;

/// What one reading of /proc/self gave; a figure that could not be read is `None` (not Linux,
/// or a /proc without it) and is left out of the scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessFigures {
    pub resident_bytes: Option<i64>,
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<i64>,
}

impl ProcessFigures {
    /// This process now.
    pub fn read() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        Self {
            resident_bytes: status.as_deref().and_then(resident_bytes),
            cpu_seconds: stat.as_deref().and_then(|stat| cpu_seconds(stat, USER_HZ)),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| entries.count() as i64),
        }
    }
}

/// `VmRSS` of a /proc/<pid>/status, in bytes.
fn resident_bytes(status: &str) -> Option<i64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User plus system CPU of a /proc/<pid>/stat, in seconds. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its closing parenthesis.
fn cpu_seconds(stat: &str, ticks_per_second: f64) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3; utime and stime are fields 14 and 15.
    let mut fields = after_name.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / ticks_per_second)
}

/// The unit of /proc's CPU times: USER_HZ, which Linux fixes at 100 on every architecture
/// coderun runs on (x86_64, arm64) whatever the kernel's own tick rate.
const USER_HZ: f64 = 100.0;

/// Registered in every service's registry by `metrics::registry_for`.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let figures = ProcessFigures::read();
        if let Some(bytes) = figures.resident_bytes {
            let help = "Resident memory of this process";
            encode_collected(
                &mut encoder,
                "process_resident_memory_bytes",
                help,
                ConstGauge::new(bytes),
            )?;
        }
        if let Some(seconds) = figures.cpu_seconds {
            let help = "User and system CPU this process has used, in seconds";
            encode_collected(
                &mut encoder,
                "process_cpu_seconds",
                help,
                ConstCounter::new(seconds),
            )?;
        }
        if let Some(count) = figures.open_fds {
            let help = "File descriptors this process holds open";
            encode_collected(
                &mut encoder,
                "process_open_fds",
                help,
                ConstGauge::new(count),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_vmrss_in_bytes() {
        let status = "Name:\tgateway\nVmPeak:\t  20000 kB\nVmRSS:\t   16384 kB\nThreads:\t4\n";
        assert_eq!(resident_bytes(status), Some(16 * 1024 * 1024));
        assert_eq!(resident_bytes("Name:\tkthread\n"), None);
    }

    #[test]
    fn cpu_is_user_plus_system_after_a_name_with_spaces_and_parentheses() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime ...
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0";
        assert_eq!(cpu_seconds(stat, 100.0), Some(3.0));
    }

    #[test]
    fn this_process_has_memory_cpu_and_open_files() {
        let figures = ProcessFigures::read();
        assert!(figures
            .resident_bytes
            .is_some_and(|bytes| bytes > 1024 * 1024));
        assert!(figures.cpu_seconds.is_some_and(|seconds| seconds >= 0.0));
        assert!(figures.open_fds.is_some_and(|count| count >= 3));
    }
}

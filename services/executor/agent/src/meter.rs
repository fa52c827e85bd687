//! Measuring a command's whole process tree through the container's cgroup (v1 or v2): CPU
//! time of every process the command started, daemons and orphans included, and the peak of
//! their anonymous memory, sampled by the watchdog. The agent's own share (its threads read
//! the pipes) is taken out. Where the cgroup files cannot be read, the caller falls back to
//! what `wait4` reports for the command's direct descendants.

/// CPU and memory of the tree since [`TreeMeter::start`].
pub struct TreeMeter {
    cpu_base_ns: Option<u64>,
    agent_cpu_base_ns: u64,
    anon_base: Option<u64>,
    peak_anon: u64,
}

impl TreeMeter {
    pub fn start() -> Self {
        Self {
            cpu_base_ns: cgroup_cpu_ns(),
            agent_cpu_base_ns: agent_cpu_ns(),
            anon_base: cgroup_anon_bytes().map(|anon| anon.saturating_sub(agent_anon_bytes())),
            peak_anon: 0,
        }
    }

    /// Takes a memory sample; call it often (the watchdog does, every few milliseconds).
    pub fn sample(&mut self) {
        if let (Some(base), Some(anon)) = (self.anon_base, cgroup_anon_bytes()) {
            let programs = anon.saturating_sub(agent_anon_bytes()).saturating_sub(base);
            self.peak_anon = self.peak_anon.max(programs);
        }
    }

    /// CPU time of the command's processes so far, in milliseconds.
    pub fn cpu_ms(&self) -> Option<u64> {
        let used = cgroup_cpu_ns()?.saturating_sub(self.cpu_base_ns?);
        let agent = agent_cpu_ns().saturating_sub(self.agent_cpu_base_ns);
        Some(used.saturating_sub(agent) / 1_000_000)
    }

    /// The highest anonymous memory of the command's processes seen, in KiB.
    pub fn peak_kb(&self) -> Option<u64> {
        self.anon_base.map(|_| self.peak_anon / 1024)
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The value of `key` in a flat-keyed cgroup file (`key value` per line).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok())?
    })
}

/// CPU time of every process in the container, in nanoseconds.
fn cgroup_cpu_ns() -> Option<u64> {
    if let Some(text) = read("/sys/fs/cgroup/cpuacct/cpuacct.usage") {
        return text.trim().parse().ok();
    }
    keyed(&read("/sys/fs/cgroup/cpu.stat")?, "usage_usec").map(|usec| usec * 1000)
}

/// Anonymous memory of every process in the container, in bytes.
fn cgroup_anon_bytes() -> Option<u64> {
    if let Some(text) = read("/sys/fs/cgroup/memory/memory.stat") {
        let rss = keyed(&text, "total_rss")?;
        return Some(rss + keyed(&text, "total_rss_huge").unwrap_or(0));
    }
    keyed(&read("/sys/fs/cgroup/memory.stat")?, "anon")
}

/// The kernel's count of OOM kills in this container's memory cgroup, if readable.
pub fn oom_kills() -> Option<u64> {
    [
        "/sys/fs/cgroup/memory.events",
        "/sys/fs/cgroup/memory/memory.oom_control",
    ]
    .iter()
    .find_map(|path| keyed(&read(path)?, "oom_kill"))
}

/// The agent's own CPU time (all its threads), in nanoseconds.
fn agent_cpu_ns() -> u64 {
    // SAFETY: rusage is plain old data that getrusage fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for the duration of the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0;
    }
    (timeval_us(usage.ru_utime) + timeval_us(usage.ru_stime)) * 1000
}

/// A timeval in microseconds.
pub fn timeval_us(time: libc::timeval) -> u64 {
    u64::try_from(time.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(time.tv_usec).unwrap_or(0)
}

/// The agent's own anonymous memory (resident minus shared pages), in bytes.
fn agent_anon_bytes() -> u64 {
    let Some(statm) = read("/proc/self/statm") else {
        return 0;
    };
    let mut fields = statm
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse::<u64>().unwrap_or(0));
    let (resident, shared) = (fields.next().unwrap_or(0), fields.next().unwrap_or(0));
    resident.saturating_sub(shared) * 4096
}

#[cfg(test)]
mod tests {
    use super::keyed;

    #[test]
    fn keyed_files_are_read_by_exact_key() {
        let stat = "rss 10\ntotal_rss 4096\ntotal_rss_huge 0\noom_kill 2\n";
        assert_eq!(keyed(stat, "total_rss"), Some(4096));
        assert_eq!(keyed(stat, "rss"), Some(10));
        assert_eq!(keyed(stat, "oom_kill"), Some(2));
        assert_eq!(keyed(stat, "anon"), None);
    }
}

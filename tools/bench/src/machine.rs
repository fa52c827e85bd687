//! The machine the figures were measured on, for the report.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs this process may use (`std::thread::available_parallelism`): what "per core"
    /// divides by.
    pub cores: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub docker: String,
    /// When the bench ran, UTC, to the minute.
    pub date: String,
}

impl Machine {
    pub async fn describe(docker: &bollard::Docker) -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|line| line.strip_prefix("model name"))
                    .and_then(|rest| rest.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|release| release.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let docker = docker
            .version()
            .await
            .ok()
            .and_then(|version| version.version)
            .unwrap_or_else(|| "unknown".to_owned());
        let minute = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
        let date = time::OffsetDateTime::now_utc()
            .format(&minute)
            .unwrap_or_default();
        Self {
            cores: cores(),
            cpu_model,
            kernel,
            docker,
            date,
        }
    }
}

/// CPUs this process may use, at least 1.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

//! The seccomp profile of every sandbox (see `seccomp/README.md`), and how it is adjusted for
//! gVisor, whose kernel applies a profile itself and differs from runc's kernel in two ways.

use crate::container::is_gvisor;

/// The profile as committed: an allowlist, so a system call no language needs (io_uring,
/// userfaultfd, keyctl, bpf, perf_event_open, namespaces, mounts, ptrace, …) fails with EPERM.
pub const SECCOMP_PROFILE: &str = include_str!("../seccomp/profile.json");

/// Names gVisor's kernel gives to system calls the profile allows under their Linux names. It
/// reads a profile's names from its own table and drops the names it does not know, so without
/// these the calls would be refused: `pselect6` is `pselect` there, and glibc's `select()`
/// makes it (a program waiting on a pipe — GHC's runtime reading stdin — failed with EPERM).
const GVISOR_NAMES: &[&str] = &["pselect"];

/// The profile as applied under `runtime`. Under runsc:
///
/// - gVisor answers every refusal with EPERM, ignoring `errnoRet`: glibc would then take a
///   refused `clone3` for a real failure and start no thread, where ENOSYS makes it fall back
///   to `clone` (whose flags the profile does check). So `clone3` passes the filter and
///   gVisor's kernel, which does not implement it, answers ENOSYS itself;
/// - the allowlist also names the calls by gVisor's names ([`GVISOR_NAMES`]).
pub fn seccomp_profile(runtime: &str) -> &'static str {
    static UNDER_RUNSC: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let mut profile: serde_json::Value =
            serde_json::from_str(SECCOMP_PROFILE).unwrap_or_default();
        if let Some(rules) = profile["syscalls"].as_array_mut() {
            for rule in rules
                .iter_mut()
                .filter(|rule| rule["names"] == serde_json::json!(["clone3"]))
            {
                rule["action"] = "SCMP_ACT_ALLOW".into();
                if let Some(rule) = rule.as_object_mut() {
                    rule.remove("errnoRet");
                }
            }
            // The rule that allows pselect6 unconditionally, on every architecture.
            let allowlist = rules.iter_mut().find(|rule| {
                rule["action"] == "SCMP_ACT_ALLOW"
                    && rule.get("args").is_none_or(serde_json::Value::is_null)
                    && rule.get("includes").is_none_or(serde_json::Value::is_null)
                    && rule["names"]
                        .as_array()
                        .is_some_and(|names| names.contains(&serde_json::json!("pselect6")))
            });
            match allowlist.and_then(|rule| rule["names"].as_array_mut()) {
                Some(names) => {
                    names.extend(GVISOR_NAMES.iter().map(|name| serde_json::json!(name)))
                }
                None => tracing::error!(
                    "the seccomp profile allows no pselect6: nothing added for gVisor"
                ),
            }
        }
        profile.to_string()
    });
    if is_gvisor(runtime) {
        &UNDER_RUNSC
    } else {
        SECCOMP_PROFILE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(runtime: &str) -> Vec<String> {
        let profile: serde_json::Value =
            serde_json::from_str(seccomp_profile(runtime)).expect("JSON");
        serde_json::from_value(profile["syscalls"][0]["names"].clone()).expect("names")
    }

    #[test]
    fn under_runsc_pselect6_is_also_allowed_by_gvisors_name_for_it() {
        let runc = allowed("runc");
        assert!(runc.contains(&"pselect6".to_owned()));
        assert!(!runc.contains(&"pselect".to_owned()));
        let runsc = allowed("runsc");
        assert!(runsc.contains(&"pselect6".to_owned()));
        assert!(runsc.contains(&"pselect".to_owned()));
        assert_eq!(runsc.len(), runc.len() + GVISOR_NAMES.len());
    }
}

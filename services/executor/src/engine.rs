//! Whether the Docker engine answers: which errors mean it does not answer at all (not
//! running, restarting, its socket gone) rather than refusing what was asked, and the flag that
//! stops the pull loops from taking jobs while it is known to be away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::sandbox::Sandbox;

/// How often a pull loop asks an engine that is away whether it is back.
const PING_EVERY: Duration = Duration::from_secs(1);

/// Whether `error` means the engine did not answer at all: asking again once it is back may
/// succeed.
pub fn unreachable(error: &bollard::errors::Error) -> bool {
    use bollard::errors::Error;
    matches!(
        error,
        Error::HyperLegacyError { .. }
            | Error::HyperResponseError { .. }
            | Error::IOError { .. }
            | Error::RequestTimeoutError
            | Error::SocketNotFoundError(_)
    )
}

/// Set when a container could not be created because the engine did not answer; cleared when
/// one is created again or the engine answers a ping.
#[derive(Debug, Default)]
pub struct EngineState {
    away: AtomicBool,
}

impl EngineState {
    pub fn mark_away(&self) {
        if !self.away.swap(true, Ordering::SeqCst) {
            tracing::warn!("the Docker engine does not answer; no job is taken until it does");
        }
    }

    pub fn mark_back(&self) {
        if self.away.swap(false, Ordering::SeqCst) {
            tracing::info!("the Docker engine answers again");
        }
    }

    pub fn is_away(&self) -> bool {
        self.away.load(Ordering::SeqCst)
    }
}

impl Sandbox {
    /// Whether the engine is known not to answer.
    pub fn engine_away(&self) -> bool {
        self.engine.is_away()
    }

    /// Waits until the engine answers a ping; `false` if `shutdown` came first.
    pub async fn wait_for_engine(&self, shutdown: &CancellationToken) -> bool {
        loop {
            if self.engine_answers().await {
                self.engine.mark_back();
                return true;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(PING_EVERY) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_that_does_not_answer_is_told_from_one_that_refuses() {
        let gone = bollard::errors::Error::IOError {
            err: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert!(unreachable(&gone));
        assert!(unreachable(&bollard::errors::Error::RequestTimeoutError));
        let refused = bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message: "Conflict. The container name is already in use".to_owned(),
        };
        assert!(!unreachable(&refused));
    }

    #[test]
    fn the_flag_is_set_and_cleared() {
        let state = EngineState::default();
        assert!(!state.is_away());
        state.mark_away();
        state.mark_away();
        assert!(state.is_away());
        state.mark_back();
        assert!(!state.is_away());
    }
}

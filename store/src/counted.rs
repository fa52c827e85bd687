//! The Redis connection every store call goes through, counting the calls Redis failed
//! (`coderun_redis_errors_total{kind}`): `connection` for Redis unreachable, timing out or
//! restarting, `command` for an answer that is an error.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

/// Label pairs of a metric family (here: the error's `kind`).
pub type Labels = Vec<(&'static str, String)>;

/// A [`ConnectionManager`] that counts failed calls.
#[derive(Clone)]
pub struct CountedConnection {
    inner: ConnectionManager,
    errors: Family<Labels, Counter>,
}

impl CountedConnection {
    pub fn new(inner: ConnectionManager) -> Self {
        let errors = Family::<Labels, Counter>::default();
        // Both series exist from the start at 0: a first error is an increase, not a new series.
        for kind in ["connection", "command"] {
            let _ = errors.get_or_create(&vec![("kind", kind.to_owned())]);
        }
        Self { inner, errors }
    }

    /// The failed calls by kind, for the service to register as `coderun_redis_errors`.
    pub fn error_counter(&self) -> Family<Labels, Counter> {
        self.errors.clone()
    }

    fn count<T>(errors: &Family<Labels, Counter>, result: &Result<T, RedisError>) {
        let Err(error) = result else { return };
        // A script not cached yet is loaded and run again by the library: not a failure.
        if error.kind() == redis::ErrorKind::NoScriptError {
            return;
        }
        let kind = if error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
        {
            "connection"
        } else {
            "command"
        };
        errors.get_or_create(&vec![("kind", kind.to_owned())]).inc();
    }
}

impl ConnectionLike for CountedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.inner.req_packed_command(cmd).await;
            Self::count(&self.errors, &result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self.inner.req_packed_commands(cmd, offset, count).await;
            Self::count(&self.errors, &result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

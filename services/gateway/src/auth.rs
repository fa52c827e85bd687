//! API keys → tenants. Keys are never stored: the configuration holds their SHA-256, and a
//! request's key is hashed and looked up.
//!
//! [`require_key`] guards every `/v1` route: it runs before any extractor, so a request without
//! a known key is a 401 before a byte of its body is read or parsed. Handlers take the tenant it
//! found with [`tenant_of`].

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{HttpMessage, HttpRequest};
use coderun_schema::catalog::Limits;
use sha2::{Digest, Sha256};

use crate::config::TenantConfig;
use crate::error::ApiError;
use crate::State;

/// A tenant as the gateway knows it: its configuration.
pub type Tenant = TenantConfig;

impl TenantConfig {
    /// The most this tenant may ask for, given what the catalog allows.
    pub fn max_limits(&self, catalog_max: Limits) -> Limits {
        catalog_max.min(catalog_max.overlaid(&self.max_limits))
    }
}

/// The key → tenant table.
#[derive(Debug, Clone, Default)]
pub struct Tenants {
    /// One shared tenant per configuration, under each of its keys' hashes.
    by_key_hash: HashMap<String, Arc<Tenant>>,
}

/// Hex SHA-256 of a key, as stored in the configuration.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Tenants {
    pub fn new(configs: &[TenantConfig]) -> Self {
        let mut by_key_hash = HashMap::new();
        for config in configs {
            let tenant = Arc::new(config.clone());
            for hash in &config.key_sha256 {
                by_key_hash.insert(hash.to_ascii_lowercase(), tenant.clone());
            }
        }
        Self { by_key_hash }
    }

    /// The tenant of the request's key (`Authorization: Bearer` or `X-Api-Key`).
    pub fn authenticate(&self, request: &HttpRequest) -> Result<&Arc<Tenant>, ApiError> {
        let headers = request.headers();
        let bearer = headers
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, key) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
            });
        let key = bearer.or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
        });
        match key {
            Some(key) if !key.is_empty() => self.find(key).ok_or(ApiError::Unauthorized),
            _ => Err(ApiError::Unauthorized),
        }
    }

    /// The tenant of a raw key.
    pub fn find(&self, key: &str) -> Option<&Arc<Tenant>> {
        self.by_key_hash.get(&hash_key(key))
    }
}

/// The tenant [`require_key`] authenticated a request as.
#[derive(Debug, Clone)]
struct Authenticated(Arc<Tenant>);

/// Middleware: answers 401 at once unless the request carries a known key, and records the
/// key's tenant for the handler.
pub async fn require_key(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let tenant = match request.app_data::<Data<State>>() {
        Some(state) => state.tenants.authenticate(request.request()).cloned(),
        None => Err(ApiError::Unexpected(anyhow::anyhow!(
            "the gateway has no state"
        ))),
    };
    let admitted = match tenant {
        Ok(tenant) => admit(&request, &tenant).await.map(|()| tenant),
        Err(error) => Err(error),
    };
    match admitted {
        Ok(tenant) => {
            request.extensions_mut().insert(Authenticated(tenant));
            Ok(next.call(request).await?.map_into_boxed_body())
        }
        Err(error) => Ok(request.error_response(error)),
    }
}

/// Counts the request against its tenant's rate, shared by every gateway; over it, a 429. If
/// Redis cannot be asked, the request goes through: a rate limit is no reason to refuse what
/// might otherwise be served.
async fn admit(request: &ServiceRequest, tenant: &Tenant) -> Result<(), ApiError> {
    match request.app_data::<Data<State>>() {
        Some(state) => admit_tenant(state, tenant).await,
        None => Ok(()),
    }
}

/// Counts one request of `tenant` against its rate (what [`require_key`] does for `/v1`; the
/// legacy API, whose key comes in a parameter, calls it itself).
pub async fn admit_tenant(state: &State, tenant: &Tenant) -> Result<(), ApiError> {
    let Some(rate) = tenant.rate() else {
        return Ok(());
    };
    match state.store.admit(&tenant.id, rate).await {
        Ok(None) => Ok(()),
        Ok(Some(wait)) => Err(ApiError::OverQuota {
            quota: "requests_per_second",
            detail: format!(
                "over {} requests per second (bursts of {}); retry in {} ms",
                rate.per_second,
                rate.burst,
                wait.as_millis()
            ),
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        }),
        Err(error) => {
            tracing::warn!(%error, tenant = %tenant.id, "the request rate could not be checked");
            Ok(())
        }
    }
}

/// The tenant the request was authenticated as (by [`require_key`]).
pub fn tenant_of(request: &HttpRequest) -> Result<Arc<Tenant>, ApiError> {
    request
        .extensions()
        .get::<Authenticated>()
        .map(|authenticated| authenticated.0.clone())
        .ok_or(ApiError::Unauthorized)
}

//! The interactive API page at `/docs` (Swagger UI), served entirely by the gateway: its
//! script and stylesheet are embedded at build time (`assets/swagger-ui/`, a pinned release),
//! so the page works where there is no internet.

use actix_web::http::header;
use actix_web::HttpResponse;
use apistos::api_operation;

/// The page; `$specUrl` becomes the spec's path.
pub const INDEX_HTML: &str = include_str!("../assets/swagger-ui/index.html");
/// Swagger UI's script.
pub const BUNDLE_JS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
/// Swagger UI's stylesheet.
pub const STYLESHEET: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");

/// Where the page finds its assets.
pub const ASSETS: &str = "/docs/assets";

fn asset(content_type: &'static str, bytes: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        // The files change only with the gateway's build.
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(bytes)
}

#[api_operation(skip)]
pub async fn bundle_js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", BUNDLE_JS)
}

#[api_operation(skip)]
pub async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLESHEET)
}

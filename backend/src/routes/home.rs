//! The landing page and the dashboard's static assets.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use dashboard::HomePage;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route(dashboard::STYLESHEET_PATH, web::get().to(stylesheet))
        .route(dashboard::SCRIPT_PATH, web::get().to(script));
}

async fn home(request: HttpRequest) -> HomePage {
    let info = request.connection_info();
    HomePage {
        base_url: format!("{}://{}", info.scheme(), info.host()),
        version: env!("CARGO_PKG_VERSION"),
    }
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(dashboard::STYLESHEET)
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(dashboard::SCRIPT)
}

//! The dashboard's cookies: the session (the same JWT the API takes as a bearer token) and
//! the CSRF token its forms echo back.
//!
//! Both carry the `__Host-` prefix, so a browser keeps them only when they are `Secure`,
//! host-only and for path `/`: no other host (a sibling subdomain) can plant or read one. A
//! browser sends `Secure` cookies over HTTPS, and to `localhost` and `127.0.0.1` over plain
//! HTTP, which is how the dashboard is meant to be reached (behind TLS in production).

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use std::time::Duration;

pub const SESSION: &str = "__Host-sightline_session";
pub const CSRF: &str = "__Host-sightline_csrf";

/// The session cookie for a freshly issued token. `Lax`, so that following a link to the
/// dashboard from elsewhere arrives logged in, while cross-site form posts do not carry it.
pub fn session(token: &str, lifetime: Duration) -> Cookie<'static> {
    host_cookie(SESSION, token.to_owned(), SameSite::Lax, Some(lifetime))
}

/// Ends the session in the browser.
pub fn clear_session() -> Cookie<'static> {
    let mut cookie = host_cookie(SESSION, String::new(), SameSite::Lax, None);
    cookie.make_removal();
    cookie
}

/// The CSRF cookie: `Strict`, never needed on a cross-site request.
pub fn csrf(token: &str) -> Cookie<'static> {
    host_cookie(CSRF, token.to_owned(), SameSite::Strict, None)
}

pub fn session_token(request: &HttpRequest) -> Option<String> {
    request
        .cookie(SESSION)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

fn host_cookie(
    name: &'static str,
    value: String,
    same_site: SameSite,
    lifetime: Option<Duration>,
) -> Cookie<'static> {
    let mut cookie = Cookie::build(name, value)
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(same_site)
        .finish();
    if let Some(lifetime) = lifetime {
        cookie.set_max_age(CookieDuration::seconds(
            i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX),
        ));
    }
    cookie
}

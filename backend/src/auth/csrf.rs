//! CSRF protection for the dashboard's forms: a random token in a `__Host-`, `SameSite=Strict`
//! cookie, echoed in a hidden field of every form, and compared on every POST (the
//! double-submit pattern). Another site can make a browser post a form, but it can neither
//! read the cookie nor plant one (the `__Host-` prefix), so it cannot know the field's value.

use super::cookies;
use actix_web::HttpRequest;
use actix_web::cookie::Cookie;

/// The hidden form field that carries the token.
pub const FIELD: &str = "csrf";

/// The token a page's forms carry, and the cookie to set when the browser has none yet.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub cookie: Option<Cookie<'static>>,
}

/// The browser's token, or a new one.
pub fn issue(request: &HttpRequest) -> Result<Issued, getrandom::Error> {
    if let Some(existing) = request.cookie(cookies::CSRF)
        && is_well_formed(existing.value())
    {
        return Ok(Issued {
            token: existing.value().to_owned(),
            cookie: None,
        });
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let token = hex::encode(bytes);
    Ok(Issued {
        cookie: Some(cookies::csrf(&token)),
        token,
    })
}

/// Whether a form's `submitted` token matches the browser's cookie.
pub fn verify(request: &HttpRequest, submitted: Option<&str>) -> bool {
    let Some(cookie) = request.cookie(cookies::CSRF) else {
        return false;
    };
    let expected = cookie.value();
    match submitted {
        Some(submitted) if is_well_formed(expected) => {
            constant_time_eq(submitted.as_bytes(), expected.as_bytes())
        }
        _ => false,
    }
}

fn is_well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn a_form_token_must_match_the_cookie() {
        let token = "ab".repeat(32);
        let request = TestRequest::default()
            .cookie(cookies::csrf(&token))
            .to_http_request();
        assert!(verify(&request, Some(&token)));
        assert!(!verify(&request, Some(&"cd".repeat(32))));
        assert!(!verify(&request, None));
        let without_cookie = TestRequest::default().to_http_request();
        assert!(!verify(&without_cookie, Some(&token)));
    }

    #[test]
    fn a_browser_keeps_its_token_and_gets_one_when_it_has_none() {
        let fresh = issue(&TestRequest::default().to_http_request()).expect("random bytes");
        assert!(is_well_formed(&fresh.token));
        let cookie = fresh.cookie.expect("a new token comes with its cookie");
        assert_eq!(cookie.name(), cookies::CSRF);
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.http_only(), Some(true));
        let again = issue(
            &TestRequest::default()
                .cookie(cookies::csrf(&fresh.token))
                .to_http_request(),
        )
        .expect("random bytes");
        assert_eq!(again.token, fresh.token);
        assert!(again.cookie.is_none());
    }
}

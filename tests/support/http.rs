//! Sending requests to a [`TestApp`] and checking answers.

use crate::TestApp;
use actix_web::http::Method;
use serde_json::{Value, json};

/// A finished response: its status, headers and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Response {
    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// The error code of an error body (`{"error": {"code"}}`).
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A tenant's owner, as signup created it.
#[derive(Debug, Clone)]
pub struct Account {
    pub tenant_id: String,
    pub user_id: String,
    pub email: String,
    pub password: String,
    pub token: String,
}

impl TestApp {
    /// Sends a request; `token` goes in `Authorization: Bearer`, `body` as JSON.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        self.send_raw(
            method,
            path,
            token,
            body.map(|b| ("application/json", b.to_string())),
        )
        .await
    }

    /// Sends a request with a body of any content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, String)>,
    ) -> Response {
        self.send_bytes(method, path, token, body.map(|(t, b)| (t, b.into_bytes())))
            .await
    }

    /// Sends a request whose body is any bytes (not necessarily UTF-8).
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let sent = match body {
            Some((content_type, body)) => {
                request
                    .insert_header(("Content-Type", content_type))
                    .send_body(body)
                    .await
            }
            None => request.send().await,
        };
        read_response(path, sent).await
    }

    /// A GET with one extra request header (such as `Accept`).
    pub async fn get_with_header(
        &self,
        path: &str,
        token: Option<&str>,
        header: (&str, &str),
    ) -> Response {
        let mut request = self
            .client
            .get(format!("{}{path}", self.base_url))
            .insert_header(header);
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        read_response(path, request.send().await).await
    }

    /// Waits until `key` reads `count` attributions.
    pub async fn await_attributions(&self, key: &str, count: usize) {
        crate::eventually(&format!("{count} attributions"), || async {
            let body = self
                .get("/v1/attributions", Some(key))
                .await
                .expect(200)
                .body;
            (body["attributions"].as_array().map_or(0, Vec::len) == count).then_some(())
        })
        .await;
    }

    /// The (detection, kind) pairs credited for `conversion`, sorted.
    pub async fn credits(&self, key: &str, conversion: &str) -> Vec<(String, String)> {
        let body = self
            .get(
                &format!("/v1/attributions?conversion_event_id={conversion}"),
                Some(key),
            )
            .await
            .expect(200)
            .body;
        let mut pairs: Vec<(String, String)> = body["attributions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let text = |field: &str| a[field].as_str().unwrap_or_default().to_owned();
                (text("detection_event_id"), text("kind"))
            })
            .collect();
        pairs.sort();
        pairs
    }

    /// Waits until `conversion`'s credits are exactly `expected` (detection, kind) pairs.
    pub async fn await_credits(&self, key: &str, conversion: &str, expected: &[(&str, &str)]) {
        let expected = &crate::pairs(expected);
        crate::eventually(
            &format!("credits of {conversion} to be {expected:?}"),
            move || async move { (self.credits(key, conversion).await == *expected).then_some(()) },
        )
        .await;
    }

    /// A JSON POST with one extra request header (such as `X-Forwarded-For`).
    pub async fn post_with_header(
        &self,
        path: &str,
        body: &Value,
        header: (&str, &str),
    ) -> Response {
        let request = self
            .client
            .post(format!("{}{path}", self.base_url))
            .insert_header(header)
            .insert_header(("Content-Type", "application/json"));
        read_response(path, request.send_body(body.to_string()).await).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.send(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send(Method::PUT, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.send(Method::DELETE, path, token, None).await
    }

    /// Signs up a new tenant with a unique owner email.
    pub async fn signup(&self) -> Account {
        let email = format!("owner-{}@acme.test", uuid::Uuid::new_v4().simple());
        let password = "correct horse battery staple".to_owned();
        let body = self
            .post(
                "/v1/auth/signup",
                None,
                &json!({"organization": "Acme Vision", "email": email, "password": password}),
            )
            .await
            .expect(201)
            .body;
        Account {
            tenant_id: body["tenant_id"].as_str().unwrap().to_owned(),
            user_id: body["user_id"].as_str().unwrap().to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
            email,
            password,
        }
    }

    /// Logs in and returns the token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        self.post(
            "/v1/auth/login",
            None,
            &json!({"email": email, "password": password}),
        )
        .await
        .expect(200)
        .body["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates an API key with `scopes` as `token`'s tenant; returns (id, secret).
    pub async fn create_api_key(&self, token: &str, scopes: &[&str]) -> (String, String) {
        let body = self
            .post(
                "/v1/api-keys",
                Some(token),
                &json!({"name": "test key", "scopes": scopes}),
            )
            .await
            .expect(201)
            .body;
        (
            body["id"].as_str().unwrap().to_owned(),
            body["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a goal as `token`'s tenant; returns its id.
    pub async fn create_goal(&self, token: &str, goal: &Value) -> String {
        self.post("/v1/goals", Some(token), goal)
            .await
            .expect(201)
            .body["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Adds a member with `role` to `token`'s tenant and logs them in; returns (user id, token).
    pub async fn add_member(&self, token: &str, role: &str) -> (String, String) {
        let email = format!("{role}-{}@acme.test", uuid::Uuid::new_v4().simple());
        let password = "member password 123";
        let body = self
            .post(
                "/v1/members",
                Some(token),
                &json!({"email": email, "password": password, "role": role}),
            )
            .await
            .expect(201)
            .body;
        let member_token = self.login(&email, password).await;
        (body["user_id"].as_str().unwrap().to_owned(), member_token)
    }
}

/// The finished response of a request to `path`, its body read whole.
async fn read_response(
    path: &str,
    sent: Result<awc::ClientResponse, awc::error::SendRequestError>,
) -> Response {
    let mut response = sent.unwrap_or_else(|err| panic!("request to {path} failed: {err}"));
    let bytes = response
        .body()
        .limit(16 * 1024 * 1024)
        .await
        .expect("read the response body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Response {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

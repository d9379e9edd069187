//! SIGTERM with requests in flight: a request the server has begun to read when the signal
//! comes is read to its end, stored and answered 202, its events are matched (after the
//! restart if not before), the process exits with status 0 within its shutdown timeout, and
//! a request that comes around the signal is either refused or answered in full, never
//! half-processed.

use serde_json::Value;
use std::time::Duration;
use support::TestApp;
use support::fixtures::{batch, detection};
use support::reference::judge::{reference, useful_scenario};
use support::reference::rng::{Rng, seed};
use support::reference::server::{await_reference, tenant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SERVER: &str = env!("CARGO_BIN_EXE_sightline-server");
/// Beyond the configured shutdown timeout: the process must be gone by then.
const EXIT_MARGIN: Duration = Duration::from_secs(5);

#[actix_web::test]
async fn requests_in_flight_at_sigterm_are_answered_stored_and_matched() {
    let mut app = TestApp::spawn_process(SERVER).await;
    let seed = seed();
    let mut rng = Rng::new(seed);
    let scenario = useful_scenario(&mut rng, seed, 2400);
    let expected = reference(&scenario);
    let tenant = tenant(&app, "the tenant", &scenario.goals).await;
    let events = scenario.events();
    let address = address(&app);

    // Several requests on connections the server has taken (each has answered a first
    // request), each with half of its body sent when the signal comes.
    let mut in_flight = Vec::new();
    for chunk in events.chunks(events.len().div_ceil(4)) {
        let body = serde_json::to_vec(&batch(chunk.to_vec())).unwrap();
        let mut stream = TcpStream::connect(&address).await.unwrap();
        prove_served(&mut stream).await;
        let (first, rest) = body.split_at(body.len() / 2);
        stream
            .write_all(&request_head(&tenant.key, body.len()))
            .await
            .unwrap();
        stream.write_all(first).await.unwrap();
        stream.flush().await.unwrap();
        in_flight.push((stream, rest.to_vec(), chunk.len()));
    }
    // Long enough for the server to have read the heads and begun on the bodies.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    app.terminate_process();
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;

    let answers = futures_util::future::join_all(in_flight.into_iter().map(
        |(mut stream, rest, count)| async move {
            stream.write_all(&rest).await.unwrap();
            stream.flush().await.unwrap();
            (read_answer(&mut stream).await, count)
        },
    ))
    .await;
    for (answer, count) in answers {
        let (status, body) = answer.unwrap_or_else(|| panic!("seed {seed}: no answer at all"));
        assert_eq!(status, 202, "seed {seed}: {body}");
        assert_eq!(body["accepted"], count, "seed {seed}: {body}");
    }

    let bound = app.settings.shutdown_timeout + EXIT_MARGIN;
    let status = app
        .process_exit_within(bound)
        .await
        .unwrap_or_else(|| panic!("seed {seed}: still running {bound:?} after SIGTERM"));
    assert!(status.success(), "seed {seed}: exited with {status}");
    assert!(
        TcpStream::connect(&address).await.is_err(),
        "seed {seed}: a new connection was accepted after the exit"
    );

    let stored = app
        .count(&format!(
            "SELECT (SELECT count(*) FROM detections WHERE tenant_id = '{0}') + \
             (SELECT count(*) FROM conversions WHERE tenant_id = '{0}')",
            tenant.tenant_id
        ))
        .await;
    assert_eq!(stored, i64::try_from(events.len()).unwrap(), "seed {seed}");
    // Whatever the shards had not matched before the exit, start-up recovery matches.
    app.restart_process(SERVER);
    await_reference(&app, &tenant, &scenario, &expected).await;
}

#[actix_web::test]
async fn requests_around_sigterm_are_refused_or_answered_in_full() {
    let mut app = TestApp::spawn_process(SERVER).await;
    let owner = app.signup().await;
    let (_, key) = app.create_api_key(&owner.token, &["ingest"]).await;
    let address = address(&app);

    // Requests one after another, from before the signal until the server no longer takes
    // connections; each is either answered in full, or cut off with nothing of it stored.
    let sending = actix_web::rt::spawn(send_until_refused(address.clone(), key));
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    app.terminate_process();
    let outcomes = sending.await.expect("the requests finish");
    let status = app
        .process_exit_within(app.settings.shutdown_timeout + EXIT_MARGIN)
        .await
        .expect("the server exits after SIGTERM");
    assert!(status.success(), "exited with {status}");
    assert!(TcpStream::connect(&address).await.is_err());

    for (id, answer) in &outcomes {
        let stored = app
            .count(&format!(
                "SELECT count(*) FROM detections WHERE tenant_id = '{}' AND event_id = '{id}'",
                owner.tenant_id
            ))
            .await;
        match answer {
            Some(202) => assert_eq!(stored, 1, "{id} answered 202 but not stored"),
            Some(503) | None => assert_eq!(stored, 0, "{id} stored without a 202"),
            Some(other) => panic!("{id} answered {other}"),
        }
    }
    let answered = outcomes.iter().filter(|(_, a)| a.is_some()).count();
    eprintln!(
        "{} requests around SIGTERM: {answered} answered, {} cut off before connections were \
         refused",
        outcomes.len(),
        outcomes.len() - answered
    );
    assert!(answered > 0, "no request was answered before the signal");
}

/// Sends one-event requests one after another until a connection is refused (at most for
/// 20 s); returns each event's id and the status it was answered, if any.
async fn send_until_refused(address: String, key: String) -> Vec<(String, Option<u16>)> {
    let mut outcomes = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for attempt in 0.. {
        assert!(
            std::time::Instant::now() < deadline,
            "connections still taken"
        );
        let id = format!("around-term-{attempt}");
        let Ok(mut stream) = TcpStream::connect(&address).await else {
            break;
        };
        let body = serde_json::to_vec(&batch(vec![detection(&id, "s-1")])).unwrap();
        let mut request = request_head(&key, body.len());
        request.extend(body);
        let answer = match stream.write_all(&request).await {
            Ok(()) => read_answer(&mut stream).await,
            Err(_) => None,
        };
        outcomes.push((id, answer.map(|(status, _)| status)));
    }
    outcomes
}

/// Sends `GET /healthz` on `stream` and reads its whole answer, keeping the connection open.
/// Once answered, the server has taken the connection and serves it; a connection still in
/// the listen queue when the signal comes is closed unanswered, which is right (it was never
/// taken) but would prove nothing here.
async fn prove_served(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut bytes = Vec::new();
    let mut buffer = [0_u8; 1024];
    loop {
        let read = actix_web::rt::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("/healthz answers within 10 s")
            .expect("read /healthz's answer");
        assert!(read > 0, "the connection closed before /healthz answered");
        bytes.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&bytes);
        if let Some((head, body)) = text.split_once("\r\n\r\n")
            && content_length(head).is_some_and(|length| body.len() >= length)
        {
            return;
        }
    }
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

fn address(app: &TestApp) -> String {
    app.base_url
        .strip_prefix("http://")
        .expect("an http URL")
        .to_owned()
}

fn request_head(key: &str, length: usize) -> Vec<u8> {
    format!(
        "POST /v1/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// Reads a whole answer (the connection is `close`): its status and JSON body; `None` when
/// the connection ended without any answer. A partial answer fails the test.
async fn read_answer(stream: &mut TcpStream) -> Option<(u16, Value)> {
    let mut bytes = Vec::new();
    let read =
        actix_web::rt::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut bytes))
            .await
            .expect("the server answers or closes within 20 s");
    if bytes.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(read.is_ok(), "the answer was cut off: {text}");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("an answer without its end of headers: {text}"));
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    if let Some(length) = content_length(head) {
        assert_eq!(body.len(), length, "the body was cut off: {text}");
    }
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    Some((status, body))
}

//! SIGKILL during a sustained stream: after each restart, every event that got a 202 is
//! stored exactly once and matched as the reference implementation matches it.

use crate::run::FaultRun;
use support::TestApp;

const SERVER: &str = env!("CARGO_BIN_EXE_sightline-server");

#[actix_web::test]
async fn events_accepted_around_two_kills_are_stored_once_and_matched() {
    let mut app = TestApp::spawn_process(SERVER).await;
    let mut run = FaultRun::new(&app, 3000).await;
    let total = run.scenario.detections.len() + run.scenario.conversions.len();
    let delivery = run.deliver_in_background();

    // Killed twice mid-stream, with requests in flight; the client resends what got no
    // answer, as a client must.
    for share in [4, 2] {
        run.await_accepted(total / share).await;
        app.kill_process();
        app.restart_process(SERVER);
    }
    delivery.await.expect("the delivery finishes");

    assert!(
        run.sender.history().connection_failures > 0,
        "seed {}: no request was cut off by the kills, so the run proved nothing",
        run.seed
    );
    run.check(&app).await;
}

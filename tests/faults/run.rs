//! One fault run: a tenant with a random scenario's goals, a client delivering the scenario's
//! events in the background, and the check at the end.

use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, Instant};
use support::TestApp;
use support::history::Sender;
use support::reference::judge::{Credit, reference, useful_scenario};
use support::reference::rng::{Rng, seed};
use support::reference::scenario::Scenario;
use support::reference::server::{DUPLICATE_DIRECTS, Tenant, await_reference, tenant};

pub struct FaultRun {
    pub seed: u64,
    pub scenario: Scenario,
    pub expected: BTreeSet<Credit>,
    pub tenant: Tenant,
    pub sender: Rc<Sender>,
    rng: Rng,
}

impl FaultRun {
    /// A new tenant on `app` with the goals of a random scenario of about `events` events.
    pub async fn new(app: &TestApp, events: usize) -> Self {
        Self::across(app, std::slice::from_ref(&app.base_url), events).await
    }

    /// [`FaultRun::new`], with the events sent to each of `base_urls` in turn (processes
    /// sharing `app`'s database).
    pub async fn across(app: &TestApp, base_urls: &[String], events: usize) -> Self {
        let seed = seed();
        let mut rng = Rng::new(seed);
        let scenario = useful_scenario(&mut rng, seed, events);
        let expected = reference(&scenario);
        let tenant = tenant(app, "the tenant", &scenario.goals).await;
        let sender = Rc::new(Sender::across(base_urls, &tenant.key));
        eprintln!(
            "seed {seed} (replay with SIGHTLINE_DIFFERENTIAL_SEED={seed}): {} events, {} \
             expected attributions",
            scenario.detections.len() + scenario.conversions.len(),
            expected.len()
        );
        Self {
            seed,
            scenario,
            expected,
            tenant,
            sender,
            rng,
        }
    }

    /// Starts delivering every event of the scenario in the background (random order and
    /// batching, two requests in flight); the returned handle finishes when each event has
    /// been answered `accepted` or `duplicate`.
    pub fn deliver_in_background(&mut self) -> actix_web::rt::task::JoinHandle<()> {
        let sender = Rc::clone(&self.sender);
        let events = self.scenario.events();
        let mut rng = Rng::new(self.rng.next_u64());
        actix_web::rt::spawn(async move { sender.deliver_all(&events, &mut rng, 40, 2).await })
    }

    /// Waits until at least `count` events have been answered `accepted`.
    pub async fn await_accepted(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.sender.history().accepted_count() < count {
            assert!(
                Instant::now() < deadline,
                "seed {}: fewer than {count} events accepted after a minute: {:?}",
                self.seed,
                self.sender.history().statuses
            );
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The whole check: every event answered, none lost or stored twice, nothing stored
    /// that was not sent, no valid event rejected, and the attributions of the reference.
    pub async fn check(&self, app: &TestApp) {
        let seed = self.seed;
        let (rejections, statuses, unanswered) = {
            let history = self.sender.history();
            (
                history.rejections.clone(),
                history.statuses.clone(),
                history.connection_failures,
            )
        };
        assert!(
            rejections.is_empty(),
            "seed {seed}: valid events rejected: {:?}",
            &rejections[..rejections.len().min(5)]
        );
        let stored = self.sender.check_stored(app, &self.tenant.tenant_id).await;
        assert!(stored.is_clean(), "seed {seed}: {stored:?}");
        let sent = self.scenario.detections.len() + self.scenario.conversions.len();
        eprintln!(
            "seed {seed}: {sent} events sent; answers by status {statuses:?}, {unanswered} \
             without an answer"
        );
        await_reference(app, &self.tenant, &self.scenario, &self.expected).await;
        assert_eq!(app.count(DUPLICATE_DIRECTS).await, 0, "seed {seed}");
        assert_eq!(
            app.count("SELECT count(*) FROM attributions").await,
            i64::try_from(self.expected.len()).unwrap(),
            "seed {seed}: attributions beyond the reference's"
        );
    }
}

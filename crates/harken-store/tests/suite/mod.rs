//! One test suite written against the `Store` trait, so every backend runs the same checks.
//! A backend's test file provides `async fn fixture() -> Fixture` and calls `store_suite!`.

#![allow(dead_code)]

pub mod callbacks;
pub mod claims;
pub mod credits;
pub mod files;

use std::sync::Arc;
use std::time::Duration;

use harken_store::{Credits, ManualClock, NewKey, NewTask, Store, TaskRecord};

pub struct Fixture {
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub _dir: Box<dyn std::any::Any + Send>,
}

pub const LEASE: Duration = Duration::from_secs(30);

impl Fixture {
    pub async fn key(&self, credits: f64) -> String {
        let new = NewKey { credits: Credits::from_f64(credits), ..Default::default() };
        self.store.create_key(new).await.unwrap().key.id
    }

    pub async fn task(&self, key_id: &str, callback: Option<&str>) -> TaskRecord {
        let new = NewTask {
            id: harken_store::new_id("task"),
            key_id: key_id.to_owned(),
            model: "elevenlabs/speech-to-text".to_owned(),
            param: r#"{"model":"elevenlabs/speech-to-text"}"#.to_owned(),
            callback_url: callback.map(str::to_owned),
        };
        self.store.create_task(new).await.unwrap()
    }

    pub async fn available(&self, key_id: &str) -> Credits {
        self.store.available_credits(key_id).await.unwrap()
    }
}

/// Expands to one `#[tokio::test]` per suite case, each with a fresh fixture.
macro_rules! store_suite {
    ($fixture:path) => {
        suite::store_suite!(@cases $fixture;
            claims::keys_are_found_by_secret_only,
            claims::another_keys_task_is_invisible,
            claims::two_claimers_never_get_the_same_task,
            claims::expired_lease_returns_task_to_queue,
            claims::heartbeat_keeps_the_lease,
            claims::too_many_interruptions_fail_the_task,
            claims::release_does_not_count_an_attempt,
            claims::backlog_counts_the_queue_and_dates_its_oldest_task,
            credits::create_task_needs_credits,
            credits::parallel_finishes_charge_once,
            credits::reservations_prevent_overdraw,
            credits::failure_charges_nothing,
            callbacks::outbox_row_comes_with_the_final_state,
            callbacks::retries_follow_the_schedule_then_give_up,
            callbacks::claimed_delivery_is_leased,
            files::file_round_trip,
            files::expired_files_are_invisible_and_listed_for_the_sweeper,
        );
    };
    (@cases $fixture:path; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                suite::$module::$case($fixture().await).await;
            }
        )*
    };
}
pub(crate) use store_suite;

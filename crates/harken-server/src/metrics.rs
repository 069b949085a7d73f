//! `GET /metrics`: this node's counters in Prometheus' text exposition format (0.0.4).
//!
//! Counters live in process memory, as Prometheus expects of a scraped target: every node of a
//! cluster is scraped on its own and the sums are taken in queries. The queue (`harken_queue_*`,
//! `harken_callbacks_pending`) is read from the database at each scrape: every node sharing it
//! reports the same numbers, so dashboards take their max, not their sum. No key is asked for,
//! as for `/healthz`: the numbers say how busy the service is, nothing about whose work it did.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use harken_store::Backlog;

use crate::AppState;

/// Upper bounds (s) of the processing-time histogram's buckets: a few seconds for a short clip
/// up to an hour-long recording on a small CPU.
const SECONDS_BUCKETS: [f64; 9] = [1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// How a task's processing on this node ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Finished {
    Success,
    Fail,
    /// Handed back to the queue on shutdown.
    Released,
    /// Another node took the task over (its lease was lost).
    Abandoned,
}

/// What became of one callback delivery attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Delivery {
    Delivered,
    /// Failed; another attempt is scheduled.
    Retrying,
    /// Failed for the last time.
    GaveUp,
}

/// The node's counters; cheap to bump from any thread.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    tasks_created: AtomicU64,
    finished: [AtomicU64; 4],
    in_progress: AtomicU64,
    /// Processing time (claim to outcome) of tasks that ended here: bucket counts, then the
    /// sum in milliseconds.
    seconds_buckets: [AtomicU64; SECONDS_BUCKETS.len()],
    seconds_count: AtomicU64,
    seconds_sum_ms: AtomicU64,
    deliveries: [AtomicU64; 3],
}

impl Metrics {
    pub(crate) fn task_created(&self) {
        self.tasks_created.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker starts on a task; the guard marks it done when dropped.
    pub(crate) fn task_started(&self) -> InProgress<'_> {
        self.in_progress.fetch_add(1, Ordering::Relaxed);
        InProgress(self)
    }

    pub(crate) fn task_finished(&self, how: Finished, elapsed: std::time::Duration) {
        self.finished[how as usize].fetch_add(1, Ordering::Relaxed);
        if matches!(how, Finished::Success | Finished::Fail) {
            let s = elapsed.as_secs_f64();
            for (bucket, &le) in self.seconds_buckets.iter().zip(&SECONDS_BUCKETS) {
                if s <= le {
                    bucket.fetch_add(1, Ordering::Relaxed);
                }
            }
            self.seconds_count.fetch_add(1, Ordering::Relaxed);
            self.seconds_sum_ms.fetch_add(elapsed.as_millis() as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn callback_attempt(&self, what: Delivery) {
        self.deliveries[what as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text, with `draining` and the free synchronous-request places sampled now.
    fn render(&self, draining: bool, sync_slots_free: usize) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string();
        let mut out = String::new();
        family(
            &mut out,
            "harken_tasks_created_total",
            "counter",
            "Tasks accepted by this node's API, all dialects.",
            [(String::new(), get(&self.tasks_created))],
        );
        let outcomes = ["success", "fail", "released", "abandoned"];
        family(
            &mut out,
            "harken_tasks_finished_total",
            "counter",
            "Tasks whose processing on this node ended, by outcome.",
            outcomes.iter().zip(&self.finished).map(|(o, n)| (format!("{{outcome=\"{o}\"}}"), get(n))),
        );
        family(
            &mut out,
            "harken_tasks_in_progress",
            "gauge",
            "Tasks this node's workers are processing now.",
            [(String::new(), get(&self.in_progress))],
        );
        let count = get(&self.seconds_count);
        let buckets = SECONDS_BUCKETS
            .iter()
            .zip(&self.seconds_buckets)
            .map(|(le, n)| (format!("_bucket{{le=\"{le}\"}}"), get(n)));
        let sum = self.seconds_sum_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        family(
            &mut out,
            "harken_task_processing_seconds",
            "histogram",
            "Claim to recorded outcome, of tasks that succeeded or failed on this node.",
            buckets.chain([
                ("_bucket{le=\"+Inf\"}".to_owned(), count.clone()),
                ("_sum".to_owned(), sum.to_string()),
                ("_count".to_owned(), count),
            ]),
        );
        let results = ["delivered", "retrying", "gave_up"];
        family(
            &mut out,
            "harken_callback_attempts_total",
            "counter",
            "Callback delivery attempts made by this node, by result.",
            results.iter().zip(&self.deliveries).map(|(r, n)| (format!("{{result=\"{r}\"}}"), get(n))),
        );
        family(
            &mut out,
            "harken_draining",
            "gauge",
            "1 while the node refuses new tasks (shutting down).",
            [(String::new(), u8::from(draining).to_string())],
        );
        family(
            &mut out,
            "harken_sync_requests_free",
            "gauge",
            "Free places for synchronous (ElevenLabs, OpenAI) requests.",
            [(String::new(), sync_slots_free.to_string())],
        );
        out
    }
}

/// One metric family: its `# HELP` and `# TYPE` lines, then its samples, each a suffix with
/// labels (`_bucket{le="1"}`, `{outcome="fail"}` or nothing) and a value.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: impl IntoIterator<Item = (String, String)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (suffix, value) in samples {
        let _ = writeln!(out, "{name}{suffix} {value}");
    }
}

/// Counts one task as in progress while alive.
pub(crate) struct InProgress<'a>(&'a Metrics);

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(get_metrics))
}

async fn get_metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.metrics.render(state.is_draining(), state.sync_slots.available_permits());
    let backlog = state.store.backlog().await;
    if let Err(e) = &backlog {
        tracing::warn!("metrics: the queue could not be read: {e}");
    }
    render_backlog(&mut text, backlog.ok());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

/// The shared queue's families, or only `harken_store_up 0` when the database did not answer
/// (the node's own counters are still worth scraping then).
fn render_backlog(out: &mut String, backlog: Option<Backlog>) {
    let up = u8::from(backlog.is_some()).to_string();
    family(out, "harken_store_up", "gauge", "1 when this scrape could read the database.", [(String::new(), up)]);
    let Some(b) = backlog else { return };
    let states = [("waiting", b.waiting), ("queuing", b.queuing), ("generating", b.generating)];
    family(
        out,
        "harken_queue_tasks",
        "gauge",
        "Unfinished tasks in the database every node shares, by state.",
        states.iter().map(|(state, n)| (format!("{{state=\"{state}\"}}"), n.to_string())),
    );
    let oldest = b.oldest_waiting.unwrap_or_default().as_secs_f64();
    family(
        out,
        "harken_queue_oldest_waiting_seconds",
        "gauge",
        "How long the oldest waiting task has waited (0 when none waits).",
        [(String::new(), oldest.to_string())],
    );
    family(
        out,
        "harken_callbacks_pending",
        "gauge",
        "Callbacks neither delivered nor given up, every node's.",
        [(String::new(), b.callbacks_pending.to_string())],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_its_metadata_before_its_samples() {
        let m = Metrics::default();
        m.task_created();
        {
            let _busy = m.task_started();
            m.task_finished(Finished::Success, std::time::Duration::from_millis(3_200));
        }
        m.task_finished(Finished::Fail, std::time::Duration::from_millis(400));
        m.callback_attempt(Delivery::Retrying);
        let mut text = m.render(false, 4);
        let backlog = Backlog {
            waiting: 3,
            generating: 1,
            oldest_waiting: Some(std::time::Duration::from_millis(1_500)),
            ..Backlog::default()
        };
        render_backlog(&mut text, Some(backlog));
        let expected_tail = "\
# HELP harken_task_processing_seconds Claim to recorded outcome, of tasks that succeeded or failed on this node.
# TYPE harken_task_processing_seconds histogram
harken_task_processing_seconds_bucket{le=\"1\"} 1
harken_task_processing_seconds_bucket{le=\"2.5\"} 1
harken_task_processing_seconds_bucket{le=\"5\"} 2
";
        assert!(text.contains(expected_tail), "{text}");
        for line in [
            "harken_tasks_created_total 1",
            "harken_tasks_finished_total{outcome=\"success\"} 1",
            "harken_tasks_finished_total{outcome=\"fail\"} 1",
            "harken_tasks_in_progress 0",
            "harken_task_processing_seconds_bucket{le=\"+Inf\"} 2",
            "harken_task_processing_seconds_sum 3.6",
            "harken_task_processing_seconds_count 2",
            "harken_callback_attempts_total{result=\"retrying\"} 1",
            "harken_draining 0",
            "harken_sync_requests_free 4",
            "harken_store_up 1",
            "harken_queue_tasks{state=\"waiting\"} 3",
            "harken_queue_tasks{state=\"queuing\"} 0",
            "harken_queue_tasks{state=\"generating\"} 1",
            "harken_queue_oldest_waiting_seconds 1.5",
            "harken_callbacks_pending 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        let mut down = String::new();
        render_backlog(&mut down, None);
        assert_eq!(down.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>(), ["harken_store_up 0"]);
        // Each family's samples follow its own TYPE line.
        let mut current = "";
        for line in text.lines() {
            match line.strip_prefix("# TYPE ") {
                Some(rest) => current = rest.split(' ').next().unwrap(),
                None if !line.starts_with('#') => assert!(line.starts_with(current), "{line} after {current}"),
                None => {}
            }
        }
    }
}

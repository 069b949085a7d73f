//! Queue throughput of a store, with no work between claim and finish: how many tasks per second
//! the database can hand out and close when several worker processes compete.
//!
//! ```text
//! queue_bench seed <db> <tasks>        # a key and <tasks> waiting tasks; prints nothing
//! queue_bench work <db> <lease-secs>   # claim_next + finish_success until the queue is empty;
//!                                      # prints "<claims> <seconds>"
//! ```
//! `<db>` is a `postgres://` URL or a directory for SQLite. `bench/queue.sh` runs 1, 2 and 4
//! `work` processes at once on both backends and prints claims per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use harken_store::{open_store, Credits, NewKey, NewTask, Store, StoreLocation};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow_free::Result {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: queue_bench seed|work <postgres-url|sqlite-dir> <tasks|lease-secs>";
    let (mode, db, n) = match args.as_slice() {
        [_, mode, db, n] => (mode.as_str(), db.as_str(), n.parse::<u64>().map_err(|_| usage.to_owned())?),
        _ => return Err(usage.into()),
    };
    let url = db.starts_with("postgres").then_some(db);
    let location = StoreLocation::new(url, std::path::Path::new(db)).map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> = open_store(&location, true).await.map_err(|e| e.to_string())?;
    match mode {
        "seed" => {
            // Tasks of 16 keys in turn: charges of one key serialise on its row, as they must.
            let mut keys = Vec::new();
            for _ in 0..16 {
                let key = NewKey { credits: Credits::from_f64(1e9), ..Default::default() };
                keys.push(store.create_key(key).await.map_err(|e| e.to_string())?.key.id);
            }
            for i in 0..n {
                let new = NewTask {
                    id: harken_store::new_id("task"),
                    key_id: keys[i as usize % keys.len()].clone(),
                    model: "bench".into(),
                    param: "{}".into(),
                    callback_url: None,
                };
                store.create_task(new).await.map_err(|e| e.to_string())?;
            }
        }
        "work" => {
            let owner = harken_store::new_id("bench");
            let lease = Duration::from_secs(n);
            let started = Instant::now();
            let mut claims = 0u64;
            while let Some(task) = store.claim_next(&owner, lease).await.map_err(|e| e.to_string())? {
                store.finish_success(&task.id, &owner, "{}").await.map_err(|e| e.to_string())?;
                claims += 1;
            }
            println!("{claims} {:.3}", started.elapsed().as_secs_f64());
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}

/// Errors as one printed line, without pulling anyhow into the store's dev-dependencies.
mod anyhow_free {
    pub type Result = std::result::Result<(), String>;
}

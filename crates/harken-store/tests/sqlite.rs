//! The store suite run against [`SqliteStore`] on real database files in temporary directories.

mod suite;

use std::sync::Arc;

use harken_store::{ManualClock, SqliteStore};

async fn fixture() -> suite::Fixture {
    let dir = tempfile::tempdir().expect("a temp dir");
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = SqliteStore::open(&dir.path().join("harken.db"), clock.clone()).await.expect("the store opens");
    suite::Fixture { store: Arc::new(store), clock, _dir: Box::new(dir) }
}

suite::store_suite!(fixture);

#[tokio::test]
async fn reopening_keeps_data_and_reapplies_no_migration() {
    let dir = tempfile::tempdir().unwrap();
    let created = {
        let store = SqliteStore::open_dir(dir.path()).await.unwrap();
        let k = harken_store::Store::create_key(&store, Default::default()).await.unwrap();
        store.close().await;
        k
    };
    let store = SqliteStore::open_dir(dir.path()).await.unwrap();
    let found = harken_store::Store::authenticate(&store, &created.secret).await.unwrap();
    assert_eq!(found.map(|k| k.id), Some(created.key.id));
}

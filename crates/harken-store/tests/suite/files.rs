//! Uploaded files: metadata round trip, expiry by the store's clock, the sweeper's listing.

use std::time::Duration;

use harken_store::NewFile;

use super::Fixture;

const TTL: Duration = Duration::from_secs(3 * 24 * 3600);

fn new_file(key_id: &str, ttl: Duration) -> NewFile {
    NewFile {
        id: harken_store::new_id("file"),
        key_id: key_id.to_owned(),
        file_name: "meeting.wav".to_owned(),
        original_name: "Meeting 2024.wav".to_owned(),
        upload_path: "audio/meetings".to_owned(),
        mime_type: "audio/wav".to_owned(),
        size_bytes: 123_456,
        ttl,
    }
}

pub async fn file_round_trip(f: Fixture) {
    let key = f.key(1.0).await;
    let new = new_file(&key, TTL);
    let created = f.store.create_file(new.clone()).await.unwrap();
    assert_eq!((created.id.as_str(), created.key_id.as_str()), (new.id.as_str(), key.as_str()));
    assert_eq!((created.file_name.as_str(), created.original_name.as_str()), ("meeting.wav", "Meeting 2024.wav"));
    assert_eq!((created.upload_path.as_str(), created.mime_type.as_str()), ("audio/meetings", "audio/wav"));
    assert_eq!(created.size_bytes, 123_456);
    assert_eq!(created.expires_at_ms - created.created_at_ms, TTL.as_millis() as i64);
    assert_eq!(f.store.file(&new.id).await.unwrap(), Some(created));
    assert_eq!(f.store.file("file_NOPE").await.unwrap(), None);
}

pub async fn expired_files_are_invisible_and_listed_for_the_sweeper(f: Fixture) {
    let key = f.key(1.0).await;
    let short = f.store.create_file(new_file(&key, Duration::from_secs(10))).await.unwrap();
    let shorter = f.store.create_file(new_file(&key, Duration::from_secs(5))).await.unwrap();
    let long = f.store.create_file(new_file(&key, TTL)).await.unwrap();
    assert!(f.store.expired_files(10).await.unwrap().is_empty());
    f.clock.advance(Duration::from_secs(5));
    assert_eq!(f.store.file(&shorter.id).await.unwrap(), None, "gone at its expiry instant");
    assert!(f.store.file(&short.id).await.unwrap().is_some());
    f.clock.advance(Duration::from_secs(5));
    let expired: Vec<String> = f.store.expired_files(10).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(expired, vec![shorter.id.clone(), short.id.clone()], "earliest expiry first");
    assert_eq!(f.store.expired_files(1).await.unwrap().len(), 1, "limit honoured");
    assert!(f.store.delete_file(&shorter.id).await.unwrap());
    assert!(!f.store.delete_file(&shorter.id).await.unwrap(), "second delete finds nothing");
    let expired: Vec<String> = f.store.expired_files(10).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(expired, vec![short.id]);
    assert!(f.store.file(&long.id).await.unwrap().is_some(), "unexpired files untouched");
}

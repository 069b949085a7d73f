//! `Blobs` on a real S3-compatible server: moto's, started on a loopback port for this test from
//! the venv `scripts/install-deps` makes (`~/.cache/harken-moto-venv`, or `HARKEN_MOTO_SERVER`).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use harken_store::blobs::Blobs;
use harken_testkit::S3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_put_get_list_delete_on_a_real_s3_compatible_server() {
    let moto = S3::start("harken-test");
    // The standard AWS variables, as a deployment would set them.
    for (name, value) in S3::ENV {
        std::env::set_var(name, value);
    }
    let blobs = Blobs::from_url("s3://harken-test/node-files", Some(&moto.endpoint)).unwrap();
    assert!(blobs.describe().starts_with("s3://harken-test/node-files"), "{}", blobs.describe());

    blobs.put("uploads/f1/a.wav", Bytes::from_static(b"RIFF....WAVE")).await.unwrap();
    // Bigger than one multipart part, so the streamed upload sends several.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    let big: Vec<u8> = (0..(9 * 1024 * 1024 + 17)).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &big).unwrap();
    assert_eq!(blobs.put_file("uploads/f2/big.bin", &src).await.unwrap(), big.len() as u64);

    assert_eq!(blobs.get("uploads/f1/a.wav").await.unwrap().unwrap().as_ref(), b"RIFF....WAVE");
    let out = dir.path().join("back.bin");
    assert_eq!(blobs.get_to_file("uploads/f2/big.bin", &out).await.unwrap(), Some(big.len() as u64));
    assert!(std::fs::read(&out).unwrap() == big, "the streamed object reads back byte for byte");
    assert!(blobs.get("uploads/none").await.unwrap().is_none());

    let mut listed: Vec<(String, u64)> =
        blobs.list("uploads").await.unwrap().into_iter().map(|m| (m.key, m.size)).collect();
    listed.sort();
    assert_eq!(listed, [("uploads/f1/a.wav".to_owned(), 12), ("uploads/f2/big.bin".to_owned(), big.len() as u64)]);

    // Another node (another handle, same bucket and prefix) sees the same files.
    let other = Blobs::from_url("s3://harken-test/node-files", Some(&moto.endpoint)).unwrap();
    assert!(other.get("uploads/f2/big.bin").await.unwrap().is_some());
    other.delete("uploads/f1/a.wav").await.unwrap();
    other.delete("uploads/f1/a.wav").await.unwrap();
    assert!(blobs.get("uploads/f1/a.wav").await.unwrap().is_none());
    assert_eq!(blobs.list("").await.unwrap().len(), 1);
}

/// `GET /<bucket>?uploads`: multipart uploads started and neither completed nor aborted.
fn open_multipart_uploads(endpoint: &str, bucket: &str) -> usize {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET /{bucket}?uploads HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "listing multipart uploads: {answer}");
    answer.matches("<UploadId>").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_streamed_writes_publish_on_finish_abort_when_dropped_and_read_by_range() {
    let moto = S3::start("harken-writes");
    for (name, value) in S3::ENV {
        std::env::set_var(name, value);
    }
    let blobs = Blobs::from_url("s3://harken-writes", Some(&moto.endpoint)).unwrap();
    let chunk = Bytes::from((0..1024 * 1024).map(|i| (i % 253) as u8).collect::<Vec<u8>>());
    let parts = harken_store::blobs::PART_BYTES / chunk.len() + 3;

    // Several parts: a multipart upload, invisible until finished.
    let mut w = blobs.writer("requests/t1.audio").unwrap();
    for _ in 0..parts {
        w.write(chunk.clone()).await.unwrap();
    }
    assert!(blobs.get("requests/t1.audio").await.unwrap().is_none(), "nothing visible before finish");
    assert_eq!(w.finish().await.unwrap(), (parts * chunk.len()) as u64);
    let read = blobs.read("requests/t1.audio", Some(5..9)).await.unwrap().unwrap();
    assert_eq!((read.size, read.range.clone()), ((parts * chunk.len()) as u64, 5..9));
    let got: Vec<Bytes> =
        futures_util::StreamExt::collect::<Vec<_>>(read.stream).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(got.concat(), &chunk[5..9]);

    // Dropped after parts went out: the upload is aborted, nothing appears, no parts linger.
    let mut w = blobs.writer("requests/t2.audio").unwrap();
    for _ in 0..parts {
        w.write(chunk.clone()).await.unwrap();
    }
    drop(w);
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_multipart_uploads(&moto.endpoint, "harken-writes") > 0 {
        assert!(Instant::now() < deadline, "the dropped writer's multipart upload was not aborted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(blobs.get("requests/t2.audio").await.unwrap().is_none());
    let keys: Vec<String> = blobs.list("").await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(keys, ["requests/t1.audio"]);
}

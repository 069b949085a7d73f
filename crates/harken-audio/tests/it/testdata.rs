//! The shared test data: every file in manifest.tsv decodes to its listed duration (±2 %).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use harken_audio::decode_file;

/// `$HARKEN_TESTDATA`, else `shared/testdata` beside the repository (or any ancestor of it).
fn testdata_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("HARKEN_TESTDATA") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("manifest.tsv").is_file(),
            "HARKEN_TESTDATA={} has no manifest.tsv",
            dir.display()
        );
        return dir;
    }
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .map(|a| a.join("shared/testdata"))
        .find(|d| d.join("manifest.tsv").is_file())
        .unwrap_or_else(|| {
            panic!(
                "test data not found: set HARKEN_TESTDATA or put it at <repo parent>/shared/testdata \
                 (searched the ancestors of {})",
                manifest_dir.display()
            )
        })
}

#[test]
fn every_manifest_file_decodes_with_its_duration() {
    let dir = testdata_dir();
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).unwrap();
    let mut lines = manifest.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("manifest has no {name} column"))
    };
    let (file_col, dur_col) = (col("file"), col("duration_s"));
    let rows: Vec<(String, f64)> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[file_col].to_owned(),
                f[dur_col]
                    .parse()
                    .unwrap_or_else(|_| panic!("bad duration in {l}")),
            )
        })
        .collect();
    assert!(rows.len() > 100, "manifest lists only {} files", rows.len());

    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((file, expected)) = rows.get(i) else {
                    break;
                };
                let outcome = match decode_file(&dir.join(file)) {
                    Ok(a) if (a.duration_s - expected).abs() <= expected * 0.02 + 0.001 => continue,
                    Ok(a) => format!(
                        "{file}: decoded {:.3} s, manifest says {expected:.3} s",
                        a.duration_s
                    ),
                    Err(e) => format!("{file}: {e}"),
                };
                failures.lock().unwrap().push(outcome);
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} files failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

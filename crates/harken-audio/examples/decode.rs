//! Decodes audio files and prints what came out: a quick way to check a file, the timing and
//! (with `/usr/bin/time -v`) the peak memory.
//!
//! `cargo run --release -p harken-audio --example decode -- FILE...`

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: decode FILE...");
        std::process::exit(2);
    }
    let mut failed = false;
    for file in files {
        let started = std::time::Instant::now();
        match harken_audio::decode_file(std::path::Path::new(&file)) {
            Ok(a) => println!(
                "{file}: {} {} Hz x{} -> {} samples at 16 kHz, {:.3} s, decoded in {:.2} s",
                a.format,
                a.source_sample_rate,
                a.channels,
                a.samples.len(),
                a.duration_s,
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                failed = true;
                println!("{file}: error: {e}");
            }
        }
    }
    std::process::exit(i32::from(failed));
}

//! The document exports opened by the programs people read them with: poppler (`pdftotext`, the
//! engine of most Linux PDF viewers) for the PDF, LibreOffice (headless, converting to text and
//! to PDF) for the docx. Transcripts in five scripts check that no text is lost or replaced.
//! Needs poppler-utils and libreoffice-writer-nogui (`scripts/install-deps`); a missing program
//! fails the test rather than skipping it.

use std::path::Path;
use std::process::Command;

use harken_export::{ExportOptions, Format};
use harken_types::{Transcript, Word, WordKind};

/// Sentences as a Whisper transcript of each language would hold them.
const SAMPLES: &[(&str, &str)] = &[
    ("eng", "Good morning, this is a test."),
    ("rus", "Доброе утро, это проверка связи."),
    ("ell", "Καλημέρα, αυτή είναι μια δοκιμή."),
    ("zho", "早上好，这是一个测试。"),
    ("jpn", "おはようございます、これはテストです。"),
    ("kor", "좋은 아침입니다, 이것은 시험입니다."),
];

/// One speaker per sentence, a word per whitespace-separated piece, a second per word.
fn transcript() -> Transcript {
    let mut words = Vec::new();
    let mut t = 0.0;
    for (i, (_, sentence)) in SAMPLES.iter().enumerate() {
        for piece in sentence.split(' ') {
            if !words.is_empty() {
                words.push(item(" ", t, t + 0.1, WordKind::Spacing, i));
                t += 0.1;
            }
            words.push(item(piece, t, t + 1.0, WordKind::Word, i));
            t += 1.0;
        }
    }
    let text = words.iter().map(|w| w.text.as_str()).collect();
    let t = Transcript { language_code: "mul".into(), language_probability: 1.0, text, words };
    t.check().expect("a valid transcript");
    t
}

fn item(text: &str, start: f64, end: f64, kind: WordKind, speaker: usize) -> Word {
    Word { text: text.into(), start, end, kind, speaker_id: Some(format!("speaker_{speaker}")), logprob: -0.1 }
}

fn run(program: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        // LibreOffice keeps its profile in $HOME: a fresh one per test, so runs never share a lock.
        .env("HOME", dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} could not run ({e}): install it with scripts/install-deps"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Every sample sentence's words appear, in order, in `text` (line breaks may fall anywhere
/// between words, and between ideographs).
fn assert_has_every_sentence(text: &str, reader: &str) {
    let flat: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for (lang, sentence) in SAMPLES {
        let want: String = sentence.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(flat.contains(&want), "{reader} lost the {lang} sentence {sentence:?}; it read:\n{text}");
    }
    assert!(!text.contains('\u{fffd}') && !text.contains('?'), "{reader} read replacement characters:\n{text}");
}

#[test]
fn pdf_text_in_every_script_reads_back_with_poppler() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = Format::Pdf.render(&transcript(), &ExportOptions::default());
    std::fs::write(dir.path().join("t.pdf"), &pdf).unwrap();
    let text = run("pdftotext", &["-enc", "UTF-8", "t.pdf", "-"], dir.path());
    assert_has_every_sentence(&text, "pdftotext");
    assert!(text.contains("speaker_3") && text.contains("00:00:00.000"), "{text}");
    // Fonts are embedded as subsets: pdffonts lists them as embedded (emb) subsets (sub).
    let fonts = run("pdffonts", &["t.pdf"], dir.path());
    let embedded: Vec<&str> = fonts.lines().skip(2).collect();
    assert_eq!(embedded.len(), 2, "DejaVu Sans and Droid Sans Fallback:\n{fonts}");
    assert!(embedded.iter().all(|l| l.contains("CID TrueType") && l.contains(" yes yes yes ")), "{fonts}");
}

#[test]
fn docx_opens_in_libreoffice_with_every_script() {
    let dir = tempfile::tempdir().unwrap();
    let docx = Format::Docx.render(&transcript(), &ExportOptions::default());
    std::fs::write(dir.path().join("t.docx"), &docx).unwrap();
    // Writer's own text export, then a PDF printed by Writer and read back by poppler.
    run("soffice", &["--headless", "--convert-to", "txt:Text (encoded):UTF8", "t.docx"], dir.path());
    let text = std::fs::read_to_string(dir.path().join("t.txt")).expect("LibreOffice wrote t.txt");
    assert_has_every_sentence(&text, "LibreOffice");
    assert!(text.contains("speaker_1") && text.contains("[00:00:"), "{text}");
    run("soffice", &["--headless", "--convert-to", "pdf", "t.docx"], dir.path());
    let printed = run("pdftotext", &["-enc", "UTF-8", "t.pdf", "-"], dir.path());
    assert!(printed.contains("Transcript") && printed.contains("Good morning"), "{printed}");
}


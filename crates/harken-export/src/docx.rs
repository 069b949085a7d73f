//! A minimal WordprocessingML document (Office Open XML), written directly with `zip`: the three
//! parts every reader needs (`[Content_Types].xml`, `_rels/.rels`, `word/document.xml`) plus
//! core properties. Word, LibreOffice and python-docx open it.

use std::io::Write;

use harken_types::Transcript;

use crate::html::escape;
use crate::{has_speakers, segments_with, timestamp, ExportOptions};

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/></Types>"#;

const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/></Relationships>"#;

const CORE: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Transcript</dc:title><dc:creator>harken</dc:creator></cp:coreProperties>"#;

pub(crate) fn render(t: &Transcript, o: &ExportOptions) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let parts = [
        ("[Content_Types].xml", CONTENT_TYPES.to_owned()),
        ("_rels/.rels", RELS.to_owned()),
        ("docProps/core.xml", CORE.to_owned()),
        ("word/document.xml", document(t, o)),
    ];
    for (name, body) in parts {
        zip.start_file(name, options).expect("writing to memory cannot fail");
        zip.write_all(body.as_bytes()).expect("writing to memory cannot fail");
    }
    zip.finish().expect("writing to memory cannot fail").into_inner()
}

fn document(t: &Transcript, o: &ExportOptions) -> String {
    let speakers = o.include_speakers && has_speakers(t);
    let mut body = String::new();
    body.push_str(&paragraph(&[run("Transcript", Style::Title)]));
    for seg in segments_with(t, o) {
        let mut runs = Vec::new();
        if let (true, Some(s)) = (speakers, &seg.speaker_id) {
            runs.push(run(&format!("{s}  "), Style::Bold));
        }
        if o.include_timestamps {
            let range = format!("[{} - {}]  ", timestamp(seg.start, '.'), timestamp(seg.end, '.'));
            runs.push(run(&range, Style::Grey));
        }
        runs.push(run(&seg.text, Style::Plain));
        body.push_str(&paragraph(&runs));
    }
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
            "\n",
            r#"<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{}"#,
            r#"<w:sectPr><w:pgSz w:w="11906" w:h="16838"/><w:pgMar w:top="1440" w:right="1440" w:bottom="1440" w:left="1440" w:header="708" w:footer="708" w:gutter="0"/></w:sectPr>"#,
            "</w:body></w:document>"
        ),
        body
    )
}

enum Style {
    Title,
    Bold,
    Grey,
    Plain,
}

fn run(text: &str, style: Style) -> String {
    let props = match style {
        Style::Title => r#"<w:rPr><w:b/><w:sz w:val="32"/></w:rPr>"#,
        Style::Bold => "<w:rPr><w:b/></w:rPr>",
        Style::Grey => r#"<w:rPr><w:color w:val="666666"/></w:rPr>"#,
        Style::Plain => "",
    };
    // Strip characters XML 1.0 cannot carry at all.
    let clean: String = text.chars().filter(|c| !c.is_control() || *c == '\t').collect();
    format!(r#"<w:r>{props}<w:t xml:space="preserve">{}</w:t></w:r>"#, escape(&clean))
}

fn paragraph(runs: &[String]) -> String {
    format!("<w:p>{}</w:p>", runs.concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn is_a_zip_with_the_document_text() {
        let bytes = render(&crate::tests::with_speakers(), &ExportOptions::default());
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut doc = String::new();
        zip.by_name("word/document.xml").unwrap().read_to_string(&mut doc).unwrap();
        assert!(doc.contains(">Why?</w:t>") && doc.contains(">speaker_1  </w:t>"));
        zip.by_name("[Content_Types].xml").unwrap();
        zip.by_name("_rels/.rels").unwrap();
    }
}

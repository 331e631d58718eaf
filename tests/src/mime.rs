//! Emails as a customer's mail client writes them, for the support mailbox tests: a
//! text part and attachments (base64), with the headers a test chooses.

use base64::Engine;

/// An email to put in the support mailbox.
#[derive(Debug, Clone, Default)]
pub struct Email {
    pub from: String,
    pub subject: String,
    pub message_id: String,
    /// Extra header lines, each `Name: value`.
    pub headers: Vec<String>,
    pub text: String,
    /// (file name, content type, bytes).
    pub files: Vec<(String, String, Vec<u8>)>,
}

impl Email {
    pub fn new(from: &str, subject: &str, id: &str, text: &str) -> Self {
        Self {
            from: from.into(),
            subject: subject.into(),
            message_id: id.into(),
            text: text.into(),
            ..Default::default()
        }
    }

    pub fn header(mut self, line: &str) -> Self {
        self.headers.push(line.into());
        self
    }

    pub fn file(mut self, name: &str, content_type: &str, bytes: Vec<u8>) -> Self {
        self.files.push((name.into(), content_type.into(), bytes));
        self
    }

    /// The bytes, CRLF line ends.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "From: {}\r\nTo: support@provider.test\r\nSubject: {}\r\nMessage-ID: <{}>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n",
            self.from, self.subject, self.message_id
        );
        for h in &self.headers {
            out.push_str(h);
            out.push_str("\r\n");
        }
        let text = self.text.replace('\n', "\r\n");
        if self.files.is_empty() {
            out.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
            out.push_str(&text);
            out.push_str("\r\n");
            return out.into_bytes();
        }
        let boundary = "=_ferry_test_boundary";
        out.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
        ));
        for (name, content_type, bytes) in &self.files {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            out.push_str(&format!(
                "--{boundary}\r\nContent-Type: {content_type}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            ));
            for chunk in encoded.as_bytes().chunks(76) {
                out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
                out.push_str("\r\n");
            }
        }
        out.push_str(&format!("--{boundary}--\r\n"));
        out.into_bytes()
    }
}

/// An OpenDocument spreadsheet with these rows as strings (the parts calamine reads:
/// the mimetype first and stored, the manifest, the content).
pub fn ods(rows: &[Vec<String>]) -> Vec<u8> {
    use std::io::Write;
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut table = String::new();
    for row in rows {
        table.push_str("<table:table-row>");
        for cell in row {
            table.push_str(&format!(
                "<table:table-cell office:value-type=\"string\"><text:p>{}</text:p></table:table-cell>",
                esc(cell)
            ));
        }
        table.push_str("</table:table-row>");
    }
    let content = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><office:document-content xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" office:version=\"1.2\"><office:body><office:spreadsheet><table:table table:name=\"Sheet1\">{table}</table:table></office:spreadsheet></office:body></office:document-content>"
    );
    let manifest = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" manifest:version=\"1.2\"><manifest:file-entry manifest:full-path=\"/\" manifest:media-type=\"application/vnd.oasis.opendocument.spreadsheet\"/><manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\"/></manifest:manifest>";
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = zip::write::SimpleFileOptions::default();
    zip.start_file("mimetype", stored).expect("a zip entry");
    zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
        .expect("written");
    zip.start_file("META-INF/manifest.xml", deflated)
        .expect("a zip entry");
    zip.write_all(manifest.as_bytes()).expect("written");
    zip.start_file("content.xml", deflated)
        .expect("a zip entry");
    zip.write_all(content.as_bytes()).expect("written");
    zip.finish().expect("a zip").into_inner()
}

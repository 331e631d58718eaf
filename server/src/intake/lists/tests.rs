//! The list reader on what customers really send, and on what they should not.

use std::io::Write;

use secrecy::ExposeSecret;

use super::*;

const OVH_HEADER: &str = "\"Source Type(IMAP/Exchange/POP)\";Source Server url;Source Login/Mail;Source Password;Destination Type;\"Destination Url(can be leaved empty if hosted by OVH)\";Destination Mail;Destination Password;Source admin mail (delegation);Destination Admin Mail (delegation)";

fn defaults() -> RowDefaults {
    RowDefaults {
        requester_email: Some("it@customer.example".into()),
        time_zone: Some("Europe/Paris".into()),
    }
}

#[test]
fn the_providers_template_with_semicolons_a_bom_and_windows_1252_reads_by_header() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    // UTF-8 with a BOM first; then the same list as Windows-1252 (which has no BOM).
    bytes.extend(format!("{OVH_HEADER}\r\nIMAP;imap.old.example:143;jos\u{e9}@old.example;p\u{e4}ss;IMAP;;jose@new.example;n3w;;\r\n").as_bytes());
    let list = read("list.csv", &bytes).unwrap();
    assert_eq!(list.rows.len(), 1);
    let row = &list.rows[0];
    assert_eq!(row.number, 2);
    assert_eq!(row.cell(Column::SourceEmail), "jos\u{e9}@old.example");
    let (req, problems) = row.request(&defaults());
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(req.source.host, "imap.old.example");
    assert_eq!(req.source.port, Some(143));
    assert_eq!(req.source.security, Some(Ok(Security::Starttls)));
    assert_eq!(req.source.password.unwrap().expose_secret(), "p\u{e4}ss");
    assert_eq!(req.destination.host, "");

    let ansi: Vec<u8> = format!(
        "{OVH_HEADER}\nIMAP;imap.old.example;jos\u{e9}@old.example;pw;;;jose@new.example;pw;;\n"
    )
    .chars()
    .map(|c| u8::try_from(u32::from(c)).unwrap())
    .collect();
    assert!(std::str::from_utf8(&ansi).is_err());
    let list = read("list.csv", &ansi).unwrap();
    assert_eq!(
        list.rows[0].cell(Column::SourceEmail),
        "jos\u{e9}@old.example"
    );
}

#[test]
fn the_short_template_with_commas_or_tabs_and_its_window_in_a_zone() {
    for sep in [",", "\t"] {
        let text = [
            "source email,source password,source IMAP server,destination mailbox,window",
            "",
            "a@old.example,pw,imap.old.example,a@new.example,2026-12-01T21:00 America/New_York",
            ",,,,",
            "b@old.example,pw,imap.old.example:993,b@new.example,2026-12-02 22:30",
        ]
        .join("\n")
        .replace(',', sep);
        let list = read("rows.txt", text.as_bytes()).unwrap();
        let numbers: Vec<usize> = list.rows.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [3, 5], "empty rows are skipped, numbers kept");
        let (a, _) = list.rows[0].request(&defaults());
        assert_eq!(a.time_zone, Some(Ok(chrono_tz::America::New_York)));
        assert!(a.window_start.unwrap().is_ok());
        let (b, _) = list.rows[1].request(&defaults());
        assert_eq!(b.time_zone, Some(Ok(chrono_tz::Europe::Paris)));
        assert_eq!(
            b.window_start.unwrap().unwrap().to_string(),
            "2026-12-02 22:30:00"
        );
        assert_eq!(b.source.port, Some(993));
    }
}

#[test]
fn a_file_without_a_header_is_read_by_its_width() {
    let text = "IMAP;imap.old.example;a@old.example;pw;IMAP;;a@new.example;pw;;\n";
    let list = read("x.csv", text.as_bytes()).unwrap();
    assert_eq!(list.rows.len(), 1);
    assert_eq!(list.rows[0].number, 1);
    assert_eq!(list.rows[0].cell(Column::DestinationEmail), "a@new.example");
}

#[test]
fn whole_file_problems_say_what_to_do() {
    assert_eq!(read("x.csv", b"").unwrap_err(), ListError::Empty);
    assert_eq!(read("x.csv", b" ; ;\n\n").unwrap_err(), ListError::Empty);
    let err = read("x.csv", b"name;age;city\nJo;3;Lyon\n").unwrap_err();
    assert!(matches!(err, ListError::NoHeader(_)), "{err}");
    assert!(err.to_string().contains("/templates/migration-request.csv"));
    let err = read("x.csv", b"source email;destination mailbox\na;b\n").unwrap_err();
    assert_eq!(err, ListError::MissingColumn("source.password"));
    let err = read("x.xlsx", b"PK\x03\x04 not really a zip").unwrap_err();
    assert!(matches!(err, ListError::Spreadsheet(_)), "{err}");
    // A password-protected workbook is an OLE container around an encrypted package.
    let err = read(
        "x.xlsx",
        &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0],
    )
    .unwrap_err();
    assert!(err.to_string().contains("without one"), "{err}");
}

#[test]
fn ten_thousand_rows_are_read_and_one_more_is_refused() {
    let mut text =
        String::from("source email,source password,source IMAP server,destination mailbox\n");
    for i in 0..MAX_ROWS {
        text.push_str(&format!(
            "u{i}@old.example,pw,imap.old.example,u{i}@new.example\n"
        ));
    }
    assert_eq!(read("x.csv", text.as_bytes()).unwrap().rows.len(), MAX_ROWS);
    text.push_str("last@old.example,pw,imap.old.example,last@new.example\n");
    assert_eq!(
        read("x.csv", text.as_bytes()).unwrap_err(),
        ListError::TooManyRows {
            rows: MAX_ROWS + 1,
            max: MAX_ROWS
        }
    );
}

#[test]
fn row_problems_name_their_cell() {
    let mut row = "a@old.example,pw,https://ex3.mail.ovh.net:x/ews,a@new.example".to_owned();
    row.push_str(&",junk".repeat(36));
    let text = format!(
        "source email,source password,source IMAP server,destination mailbox,source type\n{row}\n"
    );
    let list = read("x.csv", text.as_bytes()).unwrap();
    let (_, problems) = list.rows[0].request(&defaults());
    let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
    assert_eq!(
        fields,
        ["row", "source.type", "source.host"],
        "{problems:?}"
    );
    assert!(problems[0].message.starts_with("35 cells"), "{problems:?}");
    assert!(problems[1].message.contains("write IMAP"), "{problems:?}");
}

#[test]
fn the_passwords_are_masked_in_what_the_preview_shows() {
    let list = read(
        "x.csv",
        b"source email,source password,source IMAP server,destination mailbox\na@o.example,s3cret,imap.o.example,a@n.example\n",
    )
    .unwrap();
    let shown = list.rows[0].shown();
    assert!(
        shown.iter().all(|(_, v)| !v.contains("s3cret")),
        "{shown:?}"
    );
    assert!(shown.contains(&(Column::SourcePassword, "••••••".into())));
}

#[test]
fn an_xlsx_reads_dates_numbers_and_formulas_as_their_values() {
    use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let headers = [
        "Source Email",
        "Source Password",
        "Source IMAP Server",
        "Destination Mailbox",
        "Window",
    ];
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    sheet.write_string(1, 0, "a@old.example").unwrap();
    sheet.write_number(1, 1, 123_456).unwrap();
    sheet
        .write_formula(
            1,
            2,
            Formula::new("=\"imap.old.example\"").set_result("imap.old.example"),
        )
        .unwrap();
    sheet.write_string(1, 3, "a@new.example").unwrap();
    let when = ExcelDateTime::parse_from_str("2026-12-01T21:00:00").unwrap();
    sheet
        .write_datetime_with_format(
            1,
            4,
            &when,
            &Format::new().set_num_format("yyyy-mm-dd hh:mm"),
        )
        .unwrap();
    let bytes = book.save_to_buffer().unwrap();
    let list = read("list.xlsx", &bytes).unwrap();
    let row = &list.rows[0];
    assert_eq!(row.number, 2);
    assert_eq!(row.cell(Column::SourcePassword), "123456");
    assert_eq!(row.cell(Column::SourceHost), "imap.old.example");
    assert_eq!(row.cell(Column::Window), "2026-12-01T21:00");
}

/// A minimal OpenDocument spreadsheet, as LibreOffice writes one.
fn ods(rows: &[&[&str]]) -> Vec<u8> {
    let mut table = String::new();
    for row in rows {
        table.push_str("<table:table-row>");
        for cell in *row {
            table.push_str(&format!(
                "<table:table-cell office:value-type=\"string\"><text:p>{cell}</text:p></table:table-cell>"
            ));
        }
        table.push_str("</table:table-row>");
    }
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Sheet1">{table}</table:table></office:spreadsheet></office:body></office:document-content>"#
    );
    let manifest = r#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("mimetype", stored).unwrap();
    zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
        .unwrap();
    zip.start_file("META-INF/manifest.xml", stored).unwrap();
    zip.write_all(manifest.as_bytes()).unwrap();
    zip.start_file("content.xml", stored).unwrap();
    zip.write_all(content.as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

#[test]
fn an_ods_reads_like_the_others() {
    let bytes = ods(&[
        &[
            "source email",
            "source password",
            "source imap server",
            "destination mailbox",
        ],
        &["a@old.example", "pw", "imap.old.example", "a@new.example"],
    ]);
    let list = read("list.ods", &bytes).unwrap();
    assert_eq!(list.rows.len(), 1, "{:?}", list.rows);
    assert_eq!(list.rows[0].cell(Column::DestinationEmail), "a@new.example");
}

#[test]
fn the_xlsx_template_reads_back_as_the_csv_template() {
    let bytes = template_xlsx().unwrap();
    let from_xlsx = read("t.xlsx", &bytes).unwrap();
    let from_csv = read("t.csv", TEMPLATE_CSV.as_bytes()).unwrap();
    assert_eq!(from_xlsx.rows.len(), 1);
    assert_eq!(from_xlsx.rows[0].cells, from_csv.rows[0].cells);
    assert_eq!(
        read("s.csv", SHORT_TEMPLATE_CSV.as_bytes())
            .unwrap()
            .rows
            .len(),
        1
    );
}

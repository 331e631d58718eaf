//! `scripts/bench-lists`: how fast a list of mailboxes is read and previewed. A
//! 10,000-row list in the provider's template (semicolons) is read as CSV and as XLSX,
//! then previewed by a Ferry on SQLite with every rule of a request (hosts are IP
//! addresses, so no DNS is asked); Python's csv module reads the same CSV as the peer.

use std::process::Command;
use std::time::Instant;

use ferry::intake::lists::{self, RowDefaults};
use ferry_tests::app::TestApp;

const ROWS: usize = 10_000;

fn csv_text(window: &str) -> String {
    let mut text = lists::TEMPLATE_CSV.lines().next().unwrap().to_owned();
    text.push_str(";window\n");
    for i in 0..ROWS {
        text.push_str(&format!(
            "IMAP;192.0.2.10:993;user{i}@old.example;pw-{i};IMAP;192.0.2.20:993;user{i}@new.example;npw-{i};;;{window} Europe/Paris\n"
        ));
    }
    text
}

fn xlsx(text: &str) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, line) in text.lines().enumerate() {
        for (c, cell) in line.split(';').enumerate() {
            sheet
                .write_string(r as u32, c as u16, cell)
                .expect("a cell");
        }
    }
    book.save_to_buffer().expect("a workbook")
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() {
    let app = TestApp::spawn().await;
    let window = app
        .services
        .window_rules()
        .unwrap()
        .earliest(app.services.now(), chrono_tz::Europe::Paris)
        .unwrap()
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let text = csv_text(&window);
    let book = xlsx(&text);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("list.csv");
    std::fs::write(&path, &text).unwrap();

    let (list, csv_s) = timed(|| lists::read("list.csv", text.as_bytes()).unwrap());
    let (from_xlsx, xlsx_s) = timed(|| lists::read("list.xlsx", &book).unwrap());
    assert_eq!(list.rows.len(), ROWS);
    assert_eq!(from_xlsx.rows.len(), ROWS);
    let defaults = RowDefaults {
        requester_email: Some("it@customer.example".into()),
        time_zone: None,
    };
    let rows = list.requests(&defaults);
    let start = Instant::now();
    let reports = app
        .services
        .preview_list(&ferry::domain::Actor::Cli, rows)
        .await
        .unwrap();
    let preview_s = start.elapsed().as_secs_f64();
    let ready = reports.iter().filter(|r| r.ready()).count();
    assert_eq!(ready, ROWS, "{:?}", reports.iter().find(|r| !r.ready()));

    let python = Command::new("python3")
        .arg("-c")
        .arg("import csv,sys,time\nt=time.perf_counter()\nrows=list(csv.reader(open(sys.argv[1],newline='',encoding='utf-8'),delimiter=';'))\nassert len(rows)==10001\nprint(time.perf_counter()-t)")
        .arg(&path)
        .output()
        .expect("python3");
    let python_s: f64 = String::from_utf8_lossy(&python.stdout)
        .trim()
        .parse()
        .expect("python's time");

    println!(
        "{ROWS} rows, {} bytes of CSV, {} bytes of XLSX",
        text.len(),
        book.len()
    );
    println!(
        "read CSV   {csv_s:.3} s  {:>9.0} rows/s  (Python csv: {python_s:.3} s, ratio {:.2})",
        ROWS as f64 / csv_s,
        csv_s / python_s
    );
    println!(
        "read XLSX  {xlsx_s:.3} s  {:>9.0} rows/s",
        ROWS as f64 / xlsx_s
    );
    println!(
        "preview    {preview_s:.3} s  {:>9.0} rows/s  (every rule, no DNS; {ready} ready)",
        ROWS as f64 / preview_s
    );
    app.stop().await;
}

//! Lists of mailboxes as customers send them: the provider's 10-column template, the
//! short 5-column one, or the API's snake_case names, as CSV (comma, semicolon or tab;
//! UTF-8 with or without a BOM, else Windows-1252) or as a spreadsheet (XLSX, XLS,
//! ODS, read with calamine). Columns are found by their header's name, not by their
//! place; a file without a header is read by the template its width matches. Each row
//! becomes a `MigrationRequest`, its values parsed into their types or kept as the
//! field error of the cell they came from; the service checks the rest.

use std::io::Cursor;

use calamine::{Data, Reader};
use secrecy::SecretString;

use crate::domain::{
    self, EmailAddress, FieldError, ListedRequest, MigrationRequest, Security, ServerInput,
};

/// The most rows one list may hold.
pub const MAX_ROWS: usize = 10_000;

/// What a list's cell says, by what it means (not where it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    SourceType,
    SourceHost,
    SourceEmail,
    SourcePassword,
    DestinationType,
    DestinationHost,
    DestinationEmail,
    DestinationPassword,
    SourceAdmin,
    DestinationAdmin,
    Window,
    /// `ssl`, `starttls` or `none`; when left out, the port decides.
    SourceSecurity,
    DestinationSecurity,
}

const COLUMNS: usize = 13;

impl Column {
    /// The provider's template, in its order.
    const PROVIDER: [Column; 10] = [
        Column::SourceType,
        Column::SourceHost,
        Column::SourceEmail,
        Column::SourcePassword,
        Column::DestinationType,
        Column::DestinationHost,
        Column::DestinationEmail,
        Column::DestinationPassword,
        Column::SourceAdmin,
        Column::DestinationAdmin,
    ];
    /// The short template, in its order.
    const SHORT: [Column; 5] = [
        Column::SourceEmail,
        Column::SourcePassword,
        Column::SourceHost,
        Column::DestinationEmail,
        Column::Window,
    ];
    /// Every column a list must have (without a destination mailbox, the mailbox
    /// keeps its address).
    const REQUIRED: [Column; 3] = [
        Column::SourceEmail,
        Column::SourcePassword,
        Column::SourceHost,
    ];

    /// The column a header names: case, punctuation and the templates' parenthesised
    /// hints ("(can be leaved empty if hosted by OVH)") do not count.
    pub fn from_header(header: &str) -> Option<Column> {
        let mut plain = String::new();
        let mut depth = 0usize;
        for c in header.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                c if depth == 0 && c.is_alphanumeric() => plain.extend(c.to_lowercase()),
                _ if depth == 0 => plain.push(' '),
                _ => {}
            }
        }
        let words: Vec<&str> = plain.split_whitespace().collect();
        Some(match words.join(" ").as_str() {
            "source type" => Column::SourceType,
            "source server url" | "source server" | "source imap server" | "source host"
            | "source imap host" | "source url" => Column::SourceHost,
            "source login mail" | "source login" | "source mail" | "source email"
            | "source address" | "source username" => Column::SourceEmail,
            "source password" => Column::SourcePassword,
            "destination type" => Column::DestinationType,
            "destination url"
            | "destination server"
            | "destination imap server"
            | "destination host" => Column::DestinationHost,
            "destination mail"
            | "destination email"
            | "destination mailbox"
            | "destination login"
            | "destination address"
            | "destination username" => Column::DestinationEmail,
            "destination password" => Column::DestinationPassword,
            "source admin mail" | "source admin" | "source admin email" => Column::SourceAdmin,
            "destination admin mail" | "destination admin" | "destination admin email" => {
                Column::DestinationAdmin
            }
            "window" | "window start" | "start" => Column::Window,
            "source security" => Column::SourceSecurity,
            "destination security" => Column::DestinationSecurity,
            _ => return None,
        })
    }

    /// The request field a cell of this column fills.
    pub fn field(self) -> &'static str {
        match self {
            Column::SourceType => "source.type",
            Column::SourceHost => "source.host",
            Column::SourceEmail => "source.username",
            Column::SourcePassword => "source.password",
            Column::DestinationType => "destination.type",
            Column::DestinationHost => "destination.host",
            Column::DestinationEmail => "destination.username",
            Column::DestinationPassword => "destination.password",
            Column::SourceAdmin => "source.authuser",
            Column::DestinationAdmin => "destination.authuser",
            Column::Window => "window.start",
            Column::SourceSecurity => "source.security",
            Column::DestinationSecurity => "destination.security",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a whole file could not be read as a list; every message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("the file holds no rows; fill in the template at /templates/migration-request.csv")]
    Empty,
    #[error(
        "the spreadsheet could not be opened ({0}); if it has a password, save it without one, or save it as CSV"
    )]
    Spreadsheet(String),
    #[error(
        "the first row names no column Ferry knows ({0}); use the headers of the template at /templates/migration-request.csv"
    )]
    NoHeader(String),
    #[error(
        "the list has no column for {0}; add it, as in the template at /templates/migration-request.csv"
    )]
    MissingColumn(&'static str),
    #[error(
        "{0} is not a field of a row; use source_email, source_password, source_host, destination_email, destination_password and window (or the long template's columns)"
    )]
    UnknownField(String),
    #[error(
        "the list has {rows} rows, more than the {max} one list may hold; split it into several files"
    )]
    TooManyRows { rows: usize, max: usize },
}

/// A list as read: its rows with their numbers in the file.
#[derive(Debug)]
pub struct MailboxList {
    /// The header of each column found, as the file wrote it (for the preview).
    pub headers: Vec<(Column, String)>,
    pub rows: Vec<ListRow>,
}

impl MailboxList {
    /// Each row's request with its number and the problems of its shape.
    pub fn requests(&self, defaults: &RowDefaults) -> Vec<ListedRequest> {
        self.rows
            .iter()
            .map(|row| {
                let (request, problems) = row.request(defaults);
                ListedRequest {
                    row: row.number,
                    request,
                    problems,
                    also: Vec::new(),
                }
            })
            .collect()
    }
}

/// One row: its cells by column, and what was wrong with its shape.
#[derive(Debug, Clone)]
pub struct ListRow {
    /// The row's number in the file (the header is row 1 when there is one).
    pub number: usize,
    cells: [String; COLUMNS],
    /// Non-empty cells beyond the header's columns.
    extra_cells: usize,
}

/// What a row leaves out and the list's sender or project decides.
#[derive(Debug, Clone, Default)]
pub struct RowDefaults {
    pub requester_email: Option<String>,
    /// The zone of a window written without one; UTC when none.
    pub time_zone: Option<String>,
}

impl ListRow {
    pub fn cell(&self, column: Column) -> &str {
        &self.cells[column.index()]
    }

    /// The row as the preview shows it: each filled column with its value, passwords
    /// masked.
    pub fn shown(&self) -> Vec<(Column, String)> {
        let mut shown = Vec::new();
        let more = [
            Column::Window,
            Column::SourceSecurity,
            Column::DestinationSecurity,
        ];
        for column in Column::PROVIDER.iter().chain(more.iter()) {
            let value = self.cell(*column);
            if value.is_empty() {
                continue;
            }
            let value = match column {
                Column::SourcePassword | Column::DestinationPassword => "••••••".to_owned(),
                _ => value.to_owned(),
            };
            shown.push((*column, value));
        }
        shown
    }

    /// The request the row makes, and the problems of its shape and of the cells the
    /// request has no field for (the servers' types).
    pub fn request(&self, defaults: &RowDefaults) -> (MigrationRequest, Vec<FieldError>) {
        let mut problems = Vec::new();
        if self.extra_cells > 0 {
            problems.push(FieldError::new(
                "row",
                format!(
                    "{} cells are filled beyond the header's columns; remove them or give them a header",
                    self.extra_cells
                ),
            ));
        }
        for column in [Column::SourceType, Column::DestinationType] {
            let kind = self.cell(column);
            if !(kind.is_empty() || kind.eq_ignore_ascii_case("imap")) {
                problems.push(FieldError::new(
                    column.field(),
                    format!(
                        "{} is not a server type Ferry moves mail from or to; write IMAP (Exchange and POP are not supported)",
                        domain::quoted(kind)
                    ),
                ));
            }
        }
        let source = self.side(SOURCE, &mut problems);
        let destination = self.side(DESTINATION, &mut problems);
        let (window_start, zone) = window(self.cell(Column::Window));
        let time_zone = zone
            .or(defaults.time_zone.clone())
            .map(|tz| domain::time_zone("window.time_zone", &tz));
        let request = MigrationRequest {
            source,
            destination,
            window_start: window_start.map(|w| domain::local_time("window.start", &w)),
            time_zone,
            requester_email: defaults
                .requester_email
                .as_deref()
                .map(|e| EmailAddress::parse("requester_email", e)),
            ..Default::default()
        };
        (request, problems)
    }

    fn side(&self, side: SideColumns, problems: &mut Vec<FieldError>) -> ServerInput {
        let host_field = side.host.field();
        let written = self.cell(side.host);
        let (host, port) = host_and_port(written);
        let port = match port.map(str::parse::<u16>) {
            None => None,
            Some(Ok(port)) => Some(port),
            Some(Err(_)) => {
                problems.push(FieldError::new(
                    host_field,
                    format!(
                        "{} has a port that is not a number from 1 to 65535; write host:993, or just the host",
                        domain::quoted(written)
                    ),
                ));
                None
            }
        };
        // Unless a column says, the port says how the connection is secured: 143 is
        // IMAP with STARTTLS, anything else implicit TLS (993), as mail clients assume.
        let security = match (self.cell(side.security), port) {
            ("", Some(143)) => Some(Ok(Security::Starttls)),
            ("", _) => None,
            (written, _) => Some(domain::choice(side.security.field(), written)),
        };
        let password = self.cell(side.password);
        ServerInput {
            host: host.to_owned(),
            port,
            security,
            username: match (self.cell(side.email), side.fallback_email) {
                ("", Some(fallback)) => self.cell(fallback).to_owned(),
                (email, _) => email.to_owned(),
            },
            password: (!password.is_empty()).then(|| SecretString::from(password.to_owned())),
            authuser: Some(self.cell(side.admin).to_owned()).filter(|a| !a.is_empty()),
            dav_url: None,
            upload_id: None,
        }
    }
}

/// The columns of one side.
#[derive(Clone, Copy)]
struct SideColumns {
    host: Column,
    email: Column,
    password: Column,
    admin: Column,
    security: Column,
    /// Whose address an empty login takes: the destination mailbox keeps the source's.
    fallback_email: Option<Column>,
}

const SOURCE: SideColumns = SideColumns {
    host: Column::SourceHost,
    email: Column::SourceEmail,
    password: Column::SourcePassword,
    admin: Column::SourceAdmin,
    security: Column::SourceSecurity,
    fallback_email: None,
};

const DESTINATION: SideColumns = SideColumns {
    host: Column::DestinationHost,
    email: Column::DestinationEmail,
    password: Column::DestinationPassword,
    admin: Column::DestinationAdmin,
    security: Column::DestinationSecurity,
    fallback_email: Some(Column::SourceEmail),
};

/// `imap.example.com`, `imap.example.com:993` or `imaps://imap.example.com:993/`: the
/// host and, when written, the port's text.
fn host_and_port(cell: &str) -> (&str, Option<&str>) {
    let cell = cell.trim();
    let cell = cell.split_once("://").map_or(cell, |(_, rest)| rest);
    let cell = cell.split('/').next().unwrap_or_default();
    match cell.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (cell, None),
    }
}

/// `2026-12-01T21:00 Europe/Paris`, `2026-12-01 21:00` or `2026-12-01T21:00`: the local
/// time's text and the zone, when written.
fn window(cell: &str) -> (Option<String>, Option<String>) {
    let words: Vec<&str> = cell.split_whitespace().collect();
    let (time, zone): (Vec<&str>, Vec<&str>) = words
        .iter()
        .partition(|w| !(w.contains('/') || w.eq_ignore_ascii_case("utc")));
    let time = (!time.is_empty()).then(|| time.join("T"));
    (time, zone.first().map(|z| (*z).to_owned()))
}

/// Reads a list from a file's bytes; `name` (its file name) tells a spreadsheet from
/// a CSV when its first bytes do not.
pub fn read(name: &str, bytes: &[u8]) -> Result<MailboxList, ListError> {
    let lower = name.to_ascii_lowercase();
    let spreadsheet = bytes.starts_with(b"PK\x03\x04")
        || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0])
        || [".xlsx", ".xls", ".ods", ".xlsb"]
            .iter()
            .any(|ext| lower.ends_with(ext));
    let table = if spreadsheet {
        spreadsheet_cells(bytes)?
    } else {
        csv_cells(bytes)
    };
    rows_of(table)
}

/// A CSV's cells, rows numbered from 1.
fn csv_cells(bytes: &[u8]) -> Vec<(usize, Vec<String>)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        // Spreadsheets on Windows save CSV in the ANSI code page.
        Err(_) => {
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
        }
    };
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let delimiter = [b';', b',', b'\t']
        .into_iter()
        .max_by_key(|d| first.bytes().filter(|b| b == d).count())
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    // A record's position is where the reader stood before it skipped the line end
    // and any blank lines, so the row's number is counted here from its first cell.
    let (mut line, mut counted_to) = (1usize, 0usize);
    for record in reader.records() {
        // The text is UTF-8 already, so a record fails only on a bare quote; such a
        // row is left out here, and the rows around it keep their numbers.
        let Ok(record) = record else { continue };
        let start = record.position().map_or(counted_to, |p| {
            usize::try_from(p.byte()).unwrap_or(counted_to)
        });
        let mut start = start.clamp(counted_to, text.len());
        while matches!(text.as_bytes().get(start), Some(b'\n' | b'\r')) {
            start += 1;
        }
        line += text.as_bytes()[counted_to..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        counted_to = start;
        rows.push((line, record.iter().map(|c| c.trim().to_owned()).collect()));
    }
    rows
}

/// The first sheet's cells, as the values a person sees (dates as dates, ports as
/// whole numbers, formulas as their results).
fn spreadsheet_cells(bytes: &[u8]) -> Result<Vec<(usize, Vec<String>)>, ListError> {
    let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
        .map_err(|e| ListError::Spreadsheet(short(&e.to_string())))?;
    let range = match book.worksheet_range_at(0) {
        Some(range) => range.map_err(|e| ListError::Spreadsheet(short(&e.to_string())))?,
        None => return Err(ListError::Empty),
    };
    let first_row = range.start().map_or(0, |(row, _)| row as usize);
    let first_col = range.start().map_or(0, |(_, col)| col as usize);
    Ok(range
        .rows()
        .enumerate()
        .map(|(i, cells)| {
            let mut row = vec![String::new(); first_col];
            row.extend(cells.iter().map(cell_text));
            (first_row + i + 1, row)
        })
        .collect())
}

fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.trim().to_owned(),
        Data::Int(n) => n.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => dt
            .as_datetime()
            .map(|d| d.format("%Y-%m-%dT%H:%M").to_string())
            .unwrap_or_default(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

fn short(text: &str) -> String {
    text.chars().take(120).collect()
}

/// The rows of a table of cells, by its header (or its width when it has none).
fn rows_of(table: Vec<(usize, Vec<String>)>) -> Result<MailboxList, ListError> {
    let mut table = table
        .into_iter()
        .filter(|(_, cells)| cells.iter().any(|c| !c.is_empty()));
    let Some((_, first)) = table.next() else {
        return Err(ListError::Empty);
    };
    let named: Vec<Option<Column>> = first.iter().map(|h| Column::from_header(h)).collect();
    let (columns, headers, data_first) = if named.iter().flatten().count() >= 2 {
        let headers = named
            .iter()
            .zip(&first)
            .filter_map(|(c, h)| c.map(|c| (c, h.clone())))
            .collect();
        (named, headers, None)
    } else {
        let width = first
            .iter()
            .rposition(|c| !c.is_empty())
            .map_or(0, |i| i + 1);
        // A spreadsheet leaves out trailing empty cells, a CSV keeps them.
        let template: &[Column] = match (first.len(), width) {
            (10, _) | (_, 10) => &Column::PROVIDER,
            (5, _) | (_, 5) => &Column::SHORT,
            _ => {
                let seen: Vec<String> = first.iter().take(4).map(|h| domain::quoted(h)).collect();
                return Err(ListError::NoHeader(seen.join(", ")));
            }
        };
        let columns = template.iter().map(|c| Some(*c)).collect();
        let headers = template
            .iter()
            .map(|c| (*c, c.field().to_owned()))
            .collect();
        (columns, headers, Some(first))
    };
    for required in Column::REQUIRED {
        if !columns.contains(&Some(required)) {
            return Err(ListError::MissingColumn(required.field()));
        }
    }
    let data: Vec<_> = data_first
        .map(|cells| (1, cells))
        .into_iter()
        .chain(table)
        .collect();
    if data.len() > MAX_ROWS {
        return Err(ListError::TooManyRows {
            rows: data.len(),
            max: MAX_ROWS,
        });
    }
    let mut rows = Vec::with_capacity(data.len());
    for (number, cells) in data {
        let mut row = ListRow {
            number,
            cells: Default::default(),
            extra_cells: 0,
        };
        for (i, cell) in cells.into_iter().enumerate() {
            match columns.get(i).copied().flatten() {
                Some(column) => row.cells[column.index()] = cell,
                None if i >= columns.len() && !cell.is_empty() => row.extra_cells += 1,
                None => {}
            }
        }
        rows.push(row);
    }
    Ok(MailboxList { headers, rows })
}

/// Rows given as records of field names and values (the API's JSON rows), numbered
/// from 1 in their order; every field must name a column, as a header would.
pub fn from_records(records: &[Vec<(String, String)>]) -> Result<MailboxList, ListError> {
    let mut fields: Vec<String> = Vec::new();
    for record in records {
        for (name, _) in record {
            if Column::from_header(name).is_none() {
                return Err(ListError::UnknownField(domain::quoted(name)));
            }
            if !fields.contains(name) {
                fields.push(name.clone());
            }
        }
    }
    if records.is_empty() {
        return Err(ListError::Empty);
    }
    let mut table = vec![(0, fields.clone())];
    for (i, record) in records.iter().enumerate() {
        let cells = fields
            .iter()
            .map(|f| {
                record
                    .iter()
                    .find(|(name, _)| name == f)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect();
        table.push((i + 1, cells));
    }
    // A record with no value at all is still a row the caller counts.
    let mut list = rows_of(table)?;
    for (i, record) in records.iter().enumerate() {
        if record.iter().all(|(_, v)| v.is_empty()) {
            list.rows.insert(
                i.min(list.rows.len()),
                ListRow {
                    number: i + 1,
                    cells: Default::default(),
                    extra_cells: 0,
                },
            );
        }
    }
    Ok(list)
}

/// The provider's template as CSV: its header and one example row (`seeds/`).
pub const TEMPLATE_CSV: &str = include_str!("../../../seeds/provider-template.csv");
/// The short template as CSV.
pub const SHORT_TEMPLATE_CSV: &str = include_str!("../../../seeds/short-template.csv");

/// The provider's template as an XLSX workbook, made from the CSV template so the two
/// never differ: the header row, the example row, and a sheet of notes on each column.
pub fn template_xlsx() -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = book.add_worksheet().set_name("Mailboxes")?;
    for (r, line) in TEMPLATE_CSV.lines().enumerate() {
        for (c, cell) in line.split(';').enumerate() {
            let (r, c) = (u32::try_from(r).unwrap_or(0), u16::try_from(c).unwrap_or(0));
            if r == 0 {
                sheet.write_string_with_format(r, c, cell, &bold)?;
            } else {
                sheet.write_string(r, c, cell)?;
            }
        }
    }
    sheet.set_column_range_width(0, 9, 26)?;
    let notes = book.add_worksheet().set_name("Notes")?;
    let lines = [
        ("Column", "What to write"),
        ("Source Type", "IMAP (the only kind Ferry moves mail from)."),
        (
            "Source Server url",
            "The old provider's IMAP server, with :993 or :143 when it is not 993.",
        ),
        (
            "Source Login",
            "The mailbox's login at the old provider, usually its address.",
        ),
        (
            "Source Password",
            "Its password there. Stored encrypted, erased after the migration.",
        ),
        ("Destination Type", "IMAP."),
        (
            "Destination Url",
            "Leave empty: the mailbox is on our servers.",
        ),
        ("Destination Mail", "The new mailbox's address with us."),
        ("Destination Password", "Its password with us."),
        (
            "Source admin mail",
            "Only when an administrator logs in for the mailbox (delegation).",
        ),
        ("Destination Admin Mail", "The same, on our side."),
        (
            "window",
            "Optional extra column: when to start, 2026-12-01T21:00 Europe/Paris.",
        ),
    ];
    for (r, (column, what)) in lines.iter().enumerate() {
        let r = u32::try_from(r).unwrap_or(0);
        if r == 0 {
            notes.write_string_with_format(r, 0, *column, &bold)?;
            notes.write_string_with_format(r, 1, *what, &bold)?;
        } else {
            notes.write_string(r, 0, *column)?;
            notes.write_string(r, 1, *what)?;
        }
    }
    notes.set_column_width(0, 24)?;
    notes.set_column_width(1, 80)?;
    book.save_to_buffer()
}

#[cfg(test)]
mod tests;

//! What customers send as lists of mailboxes: any bytes, as a CSV or as a spreadsheet,
//! end as rows or as a reason, never a panic; every row's number is in the file and
//! no row has a password in what the preview shows.
#![no_main]

use ferry::intake::lists::{self, RowDefaults};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the file name the bytes arrive under.
    let (name, bytes) = match data.split_first() {
        Some((b, rest)) if b % 3 == 0 => ("list.xlsx", rest),
        Some((b, rest)) if b % 3 == 1 => ("list.ods", rest),
        Some((_, rest)) => ("list.csv", rest),
        None => ("list.csv", data),
    };
    let Ok(list) = lists::read(name, bytes) else {
        return;
    };
    assert!(list.rows.len() <= lists::MAX_ROWS);
    let defaults = RowDefaults {
        requester_email: Some("it@customer.example".into()),
        time_zone: Some("Europe/Paris".into()),
    };
    for row in &list.rows {
        assert!(row.number >= 1);
        for (column, shown) in row.shown() {
            if matches!(
                column,
                lists::Column::SourcePassword | lists::Column::DestinationPassword
            ) {
                assert_eq!(shown, "••••••", "a password is shown masked");
            }
        }
        let _ = row.request(&defaults);
    }
});

//! The schedule: the days ahead in slots, what each slot holds against the capacity,
//! so staff see where a new request fits.

use poem::{Response, handler};
use serde::Serialize;

use super::migrations::earliest_text;
use super::{Layout, Staff, internal_error};
use crate::domain::MigrationId;

#[derive(Serialize)]
struct Slot {
    hour: String,
    migrations: Vec<(MigrationId, String, &'static str)>,
    /// Passes starting in this hour against `capacity.max_concurrent`.
    over: bool,
}

#[derive(Serialize)]
struct Day {
    day: String,
    slots: Vec<Slot>,
}

#[derive(Serialize)]
struct SchedulePage {
    layout: Layout,
    days: Vec<Day>,
    capacity: u32,
    running: u64,
    earliest: Option<String>,
    /// The viewer's, which the days and hours are in.
    time_zone: &'static str,
}

/// Upcoming work by day and hour (in the viewer's time zone) for the next two weeks, with capacity use,
/// so staff see where a new request fits.
#[handler]
pub async fn schedule(staff: Staff) -> Response {
    let now = staff.services.now();
    let s = &staff.services;
    let upcoming = match s
        .store()
        .upcoming_work(
            now - chrono::Duration::hours(1),
            now + chrono::Duration::days(14),
        )
        .await
    {
        Ok(found) => found,
        Err(err) => return internal_error(s, &err),
    };
    let running = s.store().count_running_passes(now).await.unwrap_or(0);
    let capacity = s.settings().capacity.max_concurrent;
    let mut days: Vec<Day> = Vec::new();
    for m in upcoming {
        let Some(at) = m.next_run_at.map(|at| at.with_timezone(&staff.tz)) else {
            continue;
        };
        let day = at.format("%A %-d %B").to_string();
        let hour = at.format("%H:00").to_string();
        if days.last().is_none_or(|d| d.day != day) {
            days.push(Day {
                day,
                slots: Vec::new(),
            });
        }
        let Some(d) = days.last_mut() else { continue };
        if d.slots.last().is_none_or(|sl| sl.hour != hour) {
            d.slots.push(Slot {
                hour,
                migrations: Vec::new(),
                over: false,
            });
        }
        if let Some(slot) = d.slots.last_mut() {
            let work = m.next_work.map(|w| w.to_string()).unwrap_or_default();
            slot.migrations.push((
                m.id,
                format!("{} ({work})", m.dest.username()),
                m.status.as_str(),
            ));
            slot.over = slot.migrations.len() > capacity as usize;
        }
    }
    staff.render(
        "console/schedule.html",
        &SchedulePage {
            layout: staff.layout("/schedule"),
            days,
            capacity,
            running,
            earliest: earliest_text(&staff, staff.tz.name()),
            time_zone: staff.tz.name(),
        },
    )
}

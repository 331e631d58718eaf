//! The notice rule for a requested window, as a pure function of the clock: at least
//! `notice_hours` ahead, `weekend_notice_hours` when the window starts on a Saturday or
//! Sunday in the requester's time zone, and inside the provider's off-hours there.
//!
//! Windows are instants (UTC) computed with chrono-tz from the requester's wall-clock
//! time; a wall-clock time that does not exist (the clocks go forward) is refused, one
//! that happens twice (the clocks go back) is the first of the two.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

/// The provider's rules (from settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRules {
    pub notice_hours: u32,
    pub weekend_notice_hours: u32,
    /// Off-hours start (local), e.g. 20:00 …
    pub off_hours_start: NaiveTime,
    /// … and end, e.g. 06:00 (the next morning when before the start).
    pub off_hours_end: NaiveTime,
}

/// Which rule a window breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowError {
    /// The wall-clock time does not exist in that zone (the clocks go forward).
    DoesNotExist,
    TooSoon {
        hours: u32,
    },
    WeekendTooSoon {
        hours: u32,
    },
    OutsideOffHours,
}

/// Step of the search for the earliest allowed window.
const STEP_MINUTES: i64 = 15;
/// The search gives up after this (off-hours of a few minutes a day still fit).
const SEARCH_DAYS: i64 = 15;

impl WindowRules {
    /// The window's instant, or the rule it breaks.
    pub fn check(
        &self,
        now: DateTime<Utc>,
        local: NaiveDateTime,
        tz: Tz,
    ) -> Result<DateTime<Utc>, WindowError> {
        let start = match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => t,
            LocalResult::Ambiguous(first, _) => first,
            LocalResult::None => return Err(WindowError::DoesNotExist),
        };
        self.check_instant(now, start.with_timezone(&Utc), tz)
            .map(|()| start.with_timezone(&Utc))
    }

    fn check_instant(
        &self,
        now: DateTime<Utc>,
        start: DateTime<Utc>,
        tz: Tz,
    ) -> Result<(), WindowError> {
        let local = start.with_timezone(&tz);
        if matches!(local.weekday(), Weekday::Sat | Weekday::Sun)
            && start < now + Duration::hours(i64::from(self.weekend_notice_hours))
        {
            return Err(WindowError::WeekendTooSoon {
                hours: self.weekend_notice_hours,
            });
        }
        if start < now + Duration::hours(i64::from(self.notice_hours)) {
            return Err(WindowError::TooSoon {
                hours: self.notice_hours,
            });
        }
        if !self.in_off_hours(local.time()) {
            return Err(WindowError::OutsideOffHours);
        }
        Ok(())
    }

    pub fn in_off_hours(&self, t: NaiveTime) -> bool {
        let (start, end) = (self.off_hours_start, self.off_hours_end);
        if start == end {
            true // "all day"
        } else if start < end {
            t >= start && t < end
        } else {
            t >= start || t < end
        }
    }

    /// The earliest window the rules allow, on a quarter hour, in the requester's zone.
    pub fn earliest(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Tz>> {
        let from = now + Duration::hours(i64::from(self.notice_hours));
        let step = Duration::minutes(STEP_MINUTES);
        let secs = from.timestamp();
        let rounded =
            secs + (STEP_MINUTES * 60 - secs.rem_euclid(STEP_MINUTES * 60)) % (STEP_MINUTES * 60);
        let mut t = DateTime::<Utc>::from_timestamp(rounded, 0)?;
        let last = from + Duration::days(SEARCH_DAYS);
        while t <= last {
            if self.check_instant(now, t, tz).is_ok() {
                return Some(t.with_timezone(&tz));
            }
            t += step;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> WindowRules {
        WindowRules {
            notice_hours: 24,
            weekend_notice_hours: 48,
            off_hours_start: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
            off_hours_end: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
    }

    const PARIS: Tz = chrono_tz::Europe::Paris;

    #[test]
    fn a_weekday_window_needs_a_day_of_notice_in_off_hours() {
        // Tuesday 2026-12-01 10:00 in Paris (09:00 UTC).
        let now = utc("2026-12-01T09:00:00Z");
        assert_eq!(
            rules().check(now, local("2026-12-01T21:00"), PARIS),
            Err(WindowError::TooSoon { hours: 24 })
        );
        assert_eq!(
            rules().check(now, local("2026-12-02T21:00"), PARIS),
            Ok(utc("2026-12-02T20:00:00Z"))
        );
        assert_eq!(
            rules().check(now, local("2026-12-03T14:00"), PARIS),
            Err(WindowError::OutsideOffHours)
        );
        // The earliest: Wednesday 20:00 local.
        assert_eq!(
            rules().earliest(now, PARIS).map(|t| t.naive_local()),
            Some(local("2026-12-02T20:00"))
        );
    }

    #[test]
    fn a_weekend_window_needs_two_days_of_notice() {
        // Thursday 2026-12-03 22:00 in Paris.
        let now = utc("2026-12-03T21:00:00Z");
        // Saturday 01:00 is 27 h ahead: enough for a weekday, not for a weekend.
        assert_eq!(
            rules().check(now, local("2026-12-05T01:00"), PARIS),
            Err(WindowError::WeekendTooSoon { hours: 48 })
        );
        // Saturday 22:00 is 48 h ahead.
        assert!(rules().check(now, local("2026-12-05T22:00"), PARIS).is_ok());
        // Friday night before midnight is a weekday, and 24 h ahead.
        assert!(rules().check(now, local("2026-12-04T23:00"), PARIS).is_ok());
        // The earliest after Friday 22:00 local: Friday 22:00 itself (24 h).
        assert_eq!(
            rules().earliest(now, PARIS).map(|t| t.naive_local()),
            Some(local("2026-12-04T22:00"))
        );
        // From Friday 23:00, the weekend needs 48 h: Sunday 23:00 is the first.
        let friday_late = utc("2026-12-04T22:00:00Z");
        assert_eq!(
            rules()
                .earliest(friday_late, PARIS)
                .map(|t| t.naive_local()),
            Some(local("2026-12-06T23:00"))
        );
    }

    #[test]
    fn windows_across_a_dst_change_are_real_hours_in_the_requesters_zone() {
        // The clocks go back in Paris on Sunday 2026-10-25 at 03:00 (CEST → CET).
        // Thursday 2026-10-22 21:00 CEST (19:00 UTC).
        let now = utc("2026-10-22T19:00:00Z");
        // Monday 2026-10-26 20:00 CET is 19:00 UTC.
        assert_eq!(
            rules().check(now, local("2026-10-26T20:00"), PARIS),
            Ok(utc("2026-10-26T19:00:00Z"))
        );
        // 02:30 on the 25th happens twice: the first (CEST, 00:30 UTC) is taken, and
        // it is a Sunday 75.5 h ahead.
        assert_eq!(
            rules().check(now, local("2026-10-25T02:30"), PARIS),
            Ok(utc("2026-10-25T00:30:00Z"))
        );
        // The clocks go forward on Sunday 2027-03-28 at 02:00: 02:30 does not exist.
        let march = utc("2027-03-20T12:00:00Z");
        assert_eq!(
            rules().check(march, local("2027-03-28T02:30"), PARIS),
            Err(WindowError::DoesNotExist)
        );
        // 24 h of notice across the change counts real hours: from Saturday
        // 2027-03-27 21:00 CET (20:00 UTC), Sunday 21:00 CEST (19:00 UTC) is only
        // 23 h later, and Sunday needs 48 h anyway.
        let saturday = utc("2027-03-27T20:00:00Z");
        assert_eq!(
            rules().check(saturday, local("2027-03-28T21:00"), PARIS),
            Err(WindowError::WeekendTooSoon { hours: 48 })
        );
        // Monday 2027-03-29 20:30 CEST (18:30 UTC) is 46.5 h ahead: fine on a weekday.
        assert!(
            rules()
                .check(saturday, local("2027-03-29T20:30"), PARIS)
                .is_ok()
        );
    }
}

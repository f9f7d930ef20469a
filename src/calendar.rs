//! Days of the proleptic Gregorian calendar in UTC, without a date crate: certificate
//! validity, contract expiry, `ctime`-style and RFC 3339 times all count days from
//! 1970-01-01 through [`Date`].
//!
//! This is the one place that reads "now" ([`Clock`], [`unix_now`]) and the one place
//! that writes a Unix time as text ([`rfc3339`], [`date_time`]). Data enters as Unix
//! seconds or `YYYY-MM-DD` text and leaves as [`Date`]s, seconds and strings.
//!
//! The conversions are Howard Hinnant's `days_from_civil` and `civil_from_days`: years are
//! counted from March 1st so that the leap day ends a year, in eras of 400 years.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds in a day (UTC has no leap seconds here, as in Unix time).
pub const SECONDS_PER_DAY: i64 = 86_400;
/// Days from 0000-03-01 to 1970-01-01.
const DAYS_TO_EPOCH: i64 = 719_468;
/// Days in a 400-year cycle of the Gregorian calendar.
const DAYS_PER_ERA: i64 = 146_097;

/// A day of the Gregorian calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
}

impl Date {
    /// `YYYY-MM-DD`, if it names a day of the calendar.
    pub fn parse(text: &str) -> Option<Date> {
        let mut parts = text.split('-');
        let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
            return None;
        }
        let date = Date {
            year: year.parse().ok()?,
            month: month.parse().ok()?,
            day: day.parse().ok()?,
        };
        let valid =
            (1..=12).contains(&date.month) && (1..=days_in_month(date.year, date.month)).contains(&date.day);
        valid.then_some(date)
    }

    /// The date `days` days after 1970-01-01.
    pub fn from_days(days: i64) -> Date {
        let z = days + DAYS_TO_EPOCH;
        let era = z.div_euclid(DAYS_PER_ERA);
        let day_of_era = z.rem_euclid(DAYS_PER_ERA);
        let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        };
        // day <= 31 and month <= 12 by the arithmetic above: the casts cannot truncate.
        Date {
            year: year_of_era + era * 400 + i64::from(month <= 2),
            month: month as u32,
            day: day as u32,
        }
    }

    /// Days from 1970-01-01 to this date.
    pub fn days(self) -> i64 {
        let year = self.year - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year.rem_euclid(400);
        let month = i64::from(self.month);
        let shifted_month = if month > 2 { month - 3 } else { month + 9 };
        let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * DAYS_PER_ERA + day_of_era - DAYS_TO_EPOCH
    }

    /// The day before.
    pub fn day_before(self) -> Date {
        Date::from_days(self.days() - 1)
    }

    /// The same day a year later; February 29th becomes February 28th.
    pub fn one_year_later(self) -> Date {
        let year = self.year + 1;
        Date {
            year,
            month: self.month,
            day: self.day.min(days_in_month(year, self.month)),
        }
    }

    /// Day of the week, 0 for Sunday.
    pub fn weekday(self) -> u32 {
        // 1970-01-01 was a Thursday.
        (self.days() + 4).rem_euclid(7) as u32
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Days in `month` of `year`.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Where "now" comes from: the system clock in a running fabric, a fixed instant where
/// output must not change from one run to the next (golden transcripts, unit tests).
pub trait Clock: Send + Sync {
    /// Seconds since 1970-01-01 UTC.
    fn unix_seconds(&self) -> i64;

    /// Today's date in UTC.
    fn today(&self) -> Date {
        Date::from_days(self.unix_seconds().div_euclid(SECONDS_PER_DAY))
    }

    /// Time since 1970-01-01 UTC, zero for a clock before it (what `SystemTime` APIs and
    /// certificate builders take).
    fn since_epoch(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.unix_seconds()).unwrap_or(0))
    }

    /// Now as RFC 3339 UTC (`2026-11-25T17:30:00Z`).
    fn now_rfc3339(&self) -> String {
        rfc3339(self.unix_seconds())
    }
}

/// The machine's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_seconds(&self) -> i64 {
        unix_now()
    }
}

/// A clock that always reads the same second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn unix_seconds(&self) -> i64 {
        self.0
    }
}

/// A UNIX time (UTC) as C's `ctime` prints it: `Wed Nov 25 17:30:00 2026`, the day of the
/// month padded with a space (the CLI's `get system status` and contract dates).
pub fn ctime(unix_seconds: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = UtcTime::from_unix(unix_seconds);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        WEEKDAYS[t.date.weekday() as usize],
        MONTHS[(t.date.month - 1) as usize],
        t.date.day,
        t.hour,
        t.minute,
        t.second,
        t.date.year
    )
}

/// Seconds since 1970-01-01 UTC (0 for a clock before it).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

/// Milliseconds since 1970-01-01 UTC (0 for a clock before it).
pub fn unix_now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
    })
}

/// RFC 3339 UTC with milliseconds (`2026-11-25T17:30:00.250Z`), as log lines carry it.
pub fn rfc3339_millis(unix_millis: i64) -> String {
    let t = UtcTime::from_unix(unix_millis.div_euclid(1000));
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        t.date,
        t.hour,
        t.minute,
        t.second,
        unix_millis.rem_euclid(1000)
    )
}

/// RFC 3339 UTC (`2026-11-25T17:30:00Z`) for a Unix time in seconds.
pub fn rfc3339(unix: i64) -> String {
    let t = UtcTime::from_unix(unix);
    format!("{}T{:02}:{:02}:{:02}Z", t.date, t.hour, t.minute, t.second)
}

/// `2028-11-24 17:30:00` for a Unix time in seconds (UTC), as FortiOS prints certificate
/// validity.
pub fn date_time(unix: i64) -> String {
    let t = UtcTime::from_unix(unix);
    format!("{} {:02}:{:02}:{:02}", t.date, t.hour, t.minute, t.second)
}

/// A Unix time split into its UTC date and time of day.
struct UtcTime {
    date: Date,
    hour: i64,
    minute: i64,
    second: i64,
}

impl UtcTime {
    fn from_unix(unix: i64) -> UtcTime {
        let second_of_day = unix.rem_euclid(SECONDS_PER_DAY);
        UtcTime {
            date: Date::from_days(unix.div_euclid(SECONDS_PER_DAY)),
            hour: second_of_day / 3_600,
            minute: second_of_day % 3_600 / 60,
            second: second_of_day % 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_print_as_rfc3339_and_as_date_and_time() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_232_600), "2026-12-02T17:30:00Z");
        assert_eq!(date_time(1_609_459_200), "2021-01-01 00:00:00");
        assert_eq!(date_time(4_107_542_399), "2100-02-28 23:59:59");
        assert_eq!(date_time(-1), "1969-12-31 23:59:59");
        assert_eq!(rfc3339_millis(1_796_232_600_250), "2026-12-02T17:30:00.250Z");
        assert_eq!(rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(FixedClock(1_796_232_600).now_rfc3339(), "2026-12-02T17:30:00Z");
        let now = SystemClock.now_rfc3339();
        assert_eq!(now.len(), "2026-11-25T17:30:00Z".len());
        assert!(now.ends_with('Z'));
    }

    #[test]
    fn days_and_dates_round_trip() {
        for days in [-1, 0, 59, 60, 365, 11_016, 20_000, 47_846, 2_932_896] {
            let date = Date::from_days(days);
            assert_eq!(date.days(), days, "{date}");
            assert_eq!(Date::parse(&date.to_string()), Some(date));
        }
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        assert_eq!(Date::parse("2000-02-29").map(Date::days), Some(11_016));
        assert_eq!(Date::parse("2099-12-31").map(Date::weekday), Some(4));
    }

    #[test]
    fn ctime_matches_c() {
        assert_eq!(ctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime(1_795_627_800), "Wed Nov 25 17:30:00 2026");
        assert_eq!(ctime(951_782_400), "Tue Feb 29 00:00:00 2000");
        assert_eq!(ctime(4_107_542_399), "Sun Feb 28 23:59:59 2100");
        assert_eq!(ctime(1_709_251_199), "Thu Feb 29 23:59:59 2024");
    }

    #[test]
    fn impossible_dates_are_refused() {
        for text in [
            "2023-02-29",
            "2024-13-01",
            "2024-04-31",
            "24-01-01",
            "2024-1-01",
            "x",
        ] {
            assert_eq!(Date::parse(text), None, "{text}");
        }
        assert!(Date::parse("2024-02-29").is_some());
    }

    #[test]
    fn one_year_later_keeps_the_day_where_it_exists() {
        let leap = Date::parse("2024-02-29").unwrap();
        assert_eq!(leap.one_year_later().to_string(), "2025-02-28");
        assert_eq!(leap.day_before().to_string(), "2024-02-28");
    }
}

//! The subset of cron K3s's `etcd-snapshot-schedule-cron` accepts that the stand-in implements:
//! five fields (minute 0-59, hour 0-23, day of month 1-31, month 1-12, day of week 0-6 with 7 =
//! Sunday), each a comma list of `*`, `N`, `A-B`, with an optional `/STEP` (`*/12`, `0-30/10`);
//! day of month and day of week match when either does if both are restricted (classic cron,
//! as robfig/cron does); the descriptors `@yearly`/`@annually`, `@monthly`, `@weekly`,
//! `@daily`/`@midnight`, `@hourly` and `@every <duration>` (`10s`, `5m`, `1h`). Not implemented:
//! month and weekday names, `?`, `L`, `W`, `#`, `CRON_TZ=`. Times are UTC (K3s uses the host's
//! time zone; lab hosts run in UTC).

use time::OffsetDateTime;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `@every <duration>`: at fixed intervals from when the schedule starts.
    Every(std::time::Duration),
    /// Five cron fields.
    Fields(Box<Fields>),
}

/// The allowed values of each field (index = value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    minute: Vec<bool>,
    hour: Vec<bool>,
    dom: Vec<bool>,
    month: Vec<bool>,
    dow: Vec<bool>,
    dom_any: bool,
    dow_any: bool,
}

/// A schedule K3s would take but the stand-in cannot read, or one that is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid etcd-snapshot-schedule-cron {spec:?}: {why}")]
pub struct CronError {
    spec: String,
    why: String,
}

fn field(text: &str, min: u32, max: u32) -> Result<Vec<bool>, String> {
    let mut set = vec![false; max as usize + 1];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("bad step {s:?}"))?;
                if step == 0 {
                    return Err("step 0".into());
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a: u32 = a.parse().map_err(|_| format!("bad value {a:?}"))?;
            let b: u32 = b.parse().map_err(|_| format!("bad value {b:?}"))?;
            (a, b)
        } else {
            let v: u32 = range
                .parse()
                .map_err(|_| format!("bad value {range:?} (names are not supported)"))?;
            // `N/STEP` means N through the maximum.
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{part:?} is outside {min}-{max}"));
        }
        let mut v = lo;
        while v <= hi {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

/// Parses a schedule.
pub fn parse(spec: &str) -> Result<Schedule, CronError> {
    let err = |why: String| CronError {
        spec: spec.to_string(),
        why,
    };
    let t = spec.trim();
    let fields_text = match t {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => t,
    };
    if let Some(d) = fields_text.strip_prefix("@every ") {
        let dur = crate::clock::parse_duration(d.trim())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| err(format!("bad duration {d:?}")))?;
        return Ok(Schedule::Every(dur));
    }
    let parts: Vec<&str> = fields_text.split_whitespace().collect();
    if parts.len() != 5 {
        return Err(err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), got {}",
            parts.len()
        )));
    }
    let mut dow = field(parts[4], 0, 7).map_err(&err)?;
    if dow[7] {
        dow[0] = true;
    }
    dow.truncate(7);
    Ok(Schedule::Fields(Box::new(Fields {
        minute: field(parts[0], 0, 59).map_err(&err)?,
        hour: field(parts[1], 0, 23).map_err(&err)?,
        dom: field(parts[2], 1, 31).map_err(&err)?,
        month: field(parts[3], 1, 12).map_err(&err)?,
        dow,
        dom_any: parts[2].starts_with('*'),
        dow_any: parts[4].starts_with('*'),
    })))
}

impl Fields {
    fn day_matches(&self, t: OffsetDateTime) -> bool {
        let dom = self.dom[t.day() as usize];
        let dow = self.dow[t.weekday().number_days_from_sunday() as usize];
        match (self.dom_any, self.dow_any) {
            (true, true) => true,
            (true, false) => dow,
            (false, true) => dom,
            (false, false) => dom || dow,
        }
    }
}

impl Schedule {
    /// The first time strictly after `after` the schedule fires (None when it never does within
    /// five years, e.g. `0 0 31 2 *`).
    pub fn next(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        use time::Duration;
        match self {
            Schedule::Every(d) => Some(after + *d),
            Schedule::Fields(f) => {
                let start = after.replace_second(0).ok()?.replace_nanosecond(0).ok()?
                    + Duration::minutes(1);
                let limit = after + Duration::days(5 * 366);
                let mut t = start;
                while t < limit {
                    if !f.month[u8::from(t.month()) as usize] || !f.day_matches(t) {
                        // Next day at 00:00.
                        t = t.replace_time(time::Time::MIDNIGHT) + Duration::days(1);
                        continue;
                    }
                    if !f.hour[t.hour() as usize] {
                        t = t.replace_minute(0).ok()? + Duration::hours(1);
                        continue;
                    }
                    if !f.minute[t.minute() as usize] {
                        t += Duration::minutes(1);
                        continue;
                    }
                    return Some(t);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn next(spec: &str, after: OffsetDateTime) -> OffsetDateTime {
        parse(spec).expect("parse").next(after).expect("fires")
    }

    #[test]
    fn k3s_default_fires_at_midnight_and_noon() {
        let spec = "0 */12 * * *";
        assert_eq!(
            next(spec, datetime!(2026-12-01 13:36:47 UTC)),
            datetime!(2026-12-02 00:00 UTC)
        );
        assert_eq!(
            next(spec, datetime!(2026-12-02 00:00 UTC)),
            datetime!(2026-12-02 12:00 UTC)
        );
    }

    #[test]
    fn lists_ranges_steps_and_days() {
        assert_eq!(
            next("5,35 * * * *", datetime!(2026-01-01 10:06 UTC)),
            datetime!(2026-01-01 10:35 UTC)
        );
        assert_eq!(
            next("0-30/10 2 * * *", datetime!(2026-01-01 02:21 UTC)),
            datetime!(2026-01-01 02:30 UTC)
        );
        // 2026-01-01 is a Thursday; next Sunday (0 or 7) is the 4th.
        assert_eq!(
            next("0 3 * * 7", datetime!(2026-01-01 00:00 UTC)),
            datetime!(2026-01-04 03:00 UTC)
        );
        // Both days restricted: either matches.
        assert_eq!(
            next("0 0 15 * 0", datetime!(2026-01-01 00:00 UTC)),
            datetime!(2026-01-04 00:00 UTC)
        );
        assert_eq!(
            next("@monthly", datetime!(2026-01-31 23:59:30 UTC)),
            datetime!(2026-02-01 00:00 UTC)
        );
        assert_eq!(
            next("@every 10s", datetime!(2026-01-01 00:00 UTC)),
            datetime!(2026-01-01 00:00:10 UTC)
        );
        assert_eq!(
            parse("0 0 31 2 *")
                .expect("parse")
                .next(datetime!(2026-01-01 00:00 UTC)),
            None
        );
    }

    #[test]
    fn malformed_schedules_are_refused_with_the_reason() {
        for bad in [
            "0 */12 * *",
            "60 * * * *",
            "0 0 * JAN *",
            "*/0 * * * *",
            "@every x",
        ] {
            let e = parse(bad).expect_err(bad).to_string();
            assert!(e.contains("etcd-snapshot-schedule-cron"), "{e}");
        }
    }
}

//! Schedules of periodic jobs (garbage collection, retention policies):
//! Harbor's schedule objects (`type` None / Hourly / Daily / Weekly /
//! Custom with a 6-field cron), stored as items. Nothing registers timers:
//! the worker's own periodic tick (EventBridge in AWS, a timer in
//! `berth serve`) asks [`Schedules::claim_due`], which moves the next
//! time forward with a conditional write, so exactly one tick starts each
//! scheduled run however many workers tick.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::store::{Attr, Cond, Item, Kv, KvError, WriteOp};

/// One stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// `None`, `Hourly`, `Daily`, `Weekly` or `Custom`.
    pub kind: String,
    /// The 6-field cron (seconds first), empty for `None`.
    pub cron: String,
    /// What each run is asked to do.
    pub params: serde_json::Value,
    /// Next run (epoch seconds), if any.
    pub next: Option<i64>,
    pub created: i64,
    pub updated: i64,
}

/// Why a schedule was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] KvError),
}

/// The schedules.
#[derive(Clone)]
pub struct Schedules {
    kv: Arc<dyn Kv>,
}

const PK: &str = "SCHEDULE";

/// The cron of Harbor's fixed schedule types.
pub fn cron_of(kind: &str) -> Option<&'static str> {
    match kind {
        "Hourly" => Some("0 0 * * * *"),
        "Daily" => Some("0 0 0 * * *"),
        "Weekly" => Some("0 0 0 * * 0"),
        _ => None,
    }
}

/// The first time after `after` (epoch seconds, UTC) that the 6-field
/// `cron` names; `None` if it is invalid or names no time in a year.
pub fn next_after(cron: &str, after: i64) -> Option<i64> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    if fields.len() != 6 {
        return None;
    }
    let sets: Vec<Vec<bool>> = fields
        .iter()
        .zip([(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)])
        .map(|(f, (lo, hi))| field(f, lo, hi))
        .collect::<Option<_>>()?;
    // Minute by minute for a year, then the second within the minute.
    let start = after.div_euclid(60) * 60;
    for m in 0..(366 * 24 * 60) {
        let t = start + m * 60;
        let (mi, h, d, mo, wd) = parts(t);
        let day_ok = sets[3][d as usize] && sets[4][mo as usize] && sets[5][wd as usize];
        if !(day_ok && sets[2][h as usize] && sets[1][mi as usize]) {
            continue;
        }
        for s in 0..60 {
            if sets[0][s as usize] && t + s > after {
                return Some(t + s);
            }
        }
    }
    None
}

/// One cron field as the set of values it allows (index = value).
fn field(f: &str, lo: u32, hi: u32) -> Option<Vec<bool>> {
    let mut set = vec![false; hi as usize + 1];
    for part in f.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        let (a, b) = if range == "*" || range == "?" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (a.parse().ok()?, b.parse().ok()?)
        } else {
            let v: u32 = range.parse().ok()?;
            (v, if part.contains('/') { hi } else { v })
        };
        if a < lo || b > hi || a > b {
            return None;
        }
        for v in (a..=b).step_by(step as usize) {
            set[v as usize] = true;
        }
    }
    Some(set)
}

/// Minute, hour, day of month, month, weekday (0 = Sunday) of `t` (UTC).
fn parts(t: i64) -> (i64, i64, i64, i64, i64) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (mi, h) = ((secs / 60) % 60, secs / 3600);
    let wd = (days + 4).rem_euclid(7);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    (mi, h, d, mo, wd)
}

impl Schedules {
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self { kv }
    }

    pub async fn get(&self, name: &str) -> Result<Option<Schedule>, KvError> {
        Ok(self
            .kv
            .get(PK, name)
            .await?
            .and_then(|i| serde_json::from_slice(i.b("doc")?).ok()))
    }

    /// Sets the schedule of `name` (`kind` None removes the timing).
    pub async fn set(
        &self,
        name: &str,
        kind: &str,
        cron: &str,
        params: serde_json::Value,
        now: i64,
    ) -> Result<Schedule, ScheduleError> {
        let cron = match kind {
            "None" | "" | "Manual" => String::new(),
            "Custom" if cron.trim().is_empty() => {
                return Err(ScheduleError::Invalid(
                    "a Custom schedule needs a cron".to_owned(),
                ));
            }
            "Custom" => cron.trim().to_owned(),
            k => cron_of(k)
                .ok_or_else(|| {
                    ScheduleError::Invalid(format!(
                        "schedule type {k:?} is not one of None, Hourly, Daily, Weekly, Custom"
                    ))
                })?
                .to_owned(),
        };
        let next = if cron.is_empty() {
            None
        } else {
            Some(next_after(&cron, now).ok_or_else(|| {
                ScheduleError::Invalid(format!(
                    "cron {cron:?} is not a valid 6-field cron (second minute hour day month weekday)"
                ))
            })?)
        };
        let created = self.get(name).await?.map_or(now, |s| s.created);
        let s = Schedule {
            kind: if cron.is_empty() {
                "None".into()
            } else {
                kind.to_owned()
            },
            cron,
            params,
            next,
            created,
            updated: now,
        };
        self.write(name, &s, Cond::Always).await?;
        Ok(s)
    }

    async fn write(&self, name: &str, s: &Schedule, cond: Cond) -> Result<(), KvError> {
        let doc = serde_json::to_vec(s).map_err(|e| KvError::Backend(e.to_string()))?;
        let item = Item::new(PK, name)
            .with("doc", Attr::B(doc))
            .with("next", Attr::N(s.next.unwrap_or(-1)));
        self.kv.write(WriteOp::Put { item, cond }).await
    }

    /// If `name` is due at `now`, moves its next time forward and returns
    /// the parameters of the run to start; only one caller gets them.
    pub async fn claim_due(
        &self,
        name: &str,
        now: i64,
    ) -> Result<Option<serde_json::Value>, KvError> {
        let Some(mut s) = self.get(name).await? else {
            return Ok(None);
        };
        let Some(next) = s.next.filter(|n| *n <= now) else {
            return Ok(None);
        };
        s.next = next_after(&s.cron, now);
        let cond = Cond::Eq("next".into(), Attr::N(next));
        match self.write(name, &s, cond).await {
            Ok(()) => Ok(Some(s.params)),
            Err(KvError::ConditionFailed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_types_fire_when_harbor_fires_them() {
        // 2026-12-06T09:15:16Z, a Sunday.
        let t = 1_796_548_516;
        assert_eq!(next_after("0 0 * * * *", t), Some(1_796_551_200)); // 10:00
        assert_eq!(next_after("0 0 0 * * *", t), Some(1_796_601_600)); // next midnight
        assert_eq!(next_after("0 0 0 * * 0", t), Some(1_797_120_000)); // next Sunday
        assert_eq!(next_after("*/30 * * * * *", t), Some(t + 14));
        assert_eq!(next_after("0 15 10 1 1 *", t), Some(1_798_798_500)); // 2027-01-01 10:15
    }

    #[test]
    fn bad_crons_name_no_time() {
        for bad in [
            "",
            "* * * * *",
            "60 * * * * *",
            "a * * * * *",
            "*/0 * * * * *",
            "0 0 0 31 2 *",
        ] {
            assert_eq!(next_after(bad, 0), None, "{bad}");
        }
    }
}

//! `[expire]`: the ages `tern expire` uses and when `tern serve` runs it.

use std::time::Duration;

use anyhow::bail;

use super::parse_age;

/// The `[expire]` section in force: what `tern expire` does with no `--purge-*` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpireConfig {
    /// Purge expunged records this long after their expunge.
    pub purge_expunged: Duration,
    /// Remove deleted mailboxes' tombstones this long after their deletion.
    pub purge_deleted: Duration,
    /// Drop a change-log consumer that has not acknowledged for this long.
    pub consumer_max_idle: Duration,
    /// When `tern serve` runs the expire itself; `None`: never (cron runs `tern expire`).
    pub schedule: Option<Schedule>,
}

/// When `tern serve` runs `tern expire`'s work by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Every day at this many seconds after midnight UTC (`"04:00"`).
    Daily(u64),
    /// Every so often, counted from the start (`"6h"`).
    Every(Duration),
}

impl Schedule {
    /// Parses `"HH:MM"`, an age such as `"6h"` (see [`parse_age`]), or `"off"` (`None`).
    pub fn parse(text: &str) -> anyhow::Result<Option<Schedule>> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        if let Some((h, m)) = text.split_once(':') {
            let shaped = (1..=2).contains(&h.len()) && m.len() == 2;
            let (h, m) = match (h.parse::<u64>(), m.parse::<u64>()) {
                (Ok(h), Ok(m)) if shaped && h < 24 && m < 60 => (h, m),
                _ => bail!("{text:?}: a time of day is HH:MM (00:00 to 23:59, UTC)"),
            };
            return Ok(Some(Schedule::Daily(h * 3600 + m * 60)));
        }
        let every = parse_age(text)?;
        if every.is_zero() {
            bail!("{text:?}: an interval must be longer than 0 (or \"off\")");
        }
        Ok(Some(Schedule::Every(every)))
    }

    /// How long from `now` (Unix seconds) until the next run.
    pub fn wait_from(&self, now: u64) -> Duration {
        match *self {
            Schedule::Every(d) => d,
            Schedule::Daily(at) => {
                let into_day = now % 86400;
                let wait = (at + 86400 - into_day) % 86400;
                Duration::from_secs(if wait == 0 { 86400 } else { wait })
            }
        }
    }
}

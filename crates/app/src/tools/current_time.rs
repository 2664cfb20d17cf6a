//! `current_time`: the date and time now in an IANA time zone.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::{Tool, ToolError};

/// Tells the current date and time in a time zone. The IANA database is
/// compiled in (chrono-tz), so the answer does not depend on the host's
/// `/usr/share/zoneinfo`.
#[derive(Debug, Clone, Copy)]
pub struct CurrentTime {
    clock: fn() -> DateTime<Utc>,
}

impl Default for CurrentTime {
    fn default() -> Self {
        Self { clock: Utc::now }
    }
}

impl CurrentTime {
    /// A tool reading `clock` instead of the system's, so tests get a fixed answer.
    #[must_use]
    pub const fn with_clock(clock: fn() -> DateTime<Utc>) -> Self {
        Self { clock }
    }

    /// The time `now` in the zone named `zone`.
    ///
    /// # Errors
    /// [`ToolError::InvalidArguments`] when `zone` is not an IANA time zone name.
    pub fn at(now: DateTime<Utc>, zone: &str) -> Result<Value, ToolError> {
        let tz: Tz = zone.trim().parse().map_err(|_| {
            ToolError::InvalidArguments(format!(
                "`{zone}` is not an IANA time zone; use a name such as \"Europe/Paris\", \"America/New_York\" or \"UTC\""
            ))
        })?;
        let local = now.with_timezone(&tz);
        Ok(json!({
            "timezone": tz.name(),
            "local_time": local.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            "date": local.format("%Y-%m-%d").to_string(),
            "weekday": local.format("%A").to_string(),
            "utc_offset": local.format("%:z").to_string(),
            "abbreviation": local.format("%Z").to_string(),
        }))
    }
}

#[async_trait]
impl Tool for CurrentTime {
    fn name(&self) -> &str {
        "current_time"
    }

    fn description(&self) -> &str {
        "Returns the current date, time, weekday and UTC offset in an IANA time zone. Use it whenever \
         the answer depends on today's date or the time now; use \"UTC\" when the user's zone is unknown."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "timezone": {
                    "type": "string",
                    "description": "An IANA time zone name, e.g. \"Europe/Paris\", \"Asia/Tokyo\" or \"UTC\".",
                    "maxLength": 64
                }
            },
            "required": ["timezone"],
            "additionalProperties": false
        })
    }

    async fn call(&self, arguments: Value) -> Result<Value, ToolError> {
        let zone = arguments
            .get("timezone")
            .and_then(Value::as_str)
            .ok_or_else(|| ToolError::InvalidArguments("`timezone` must be a string".to_owned()))?;
        Self::at((self.clock)(), zone)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn noon_utc() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap()
    }

    #[tokio::test]
    async fn tells_the_time_in_the_zone_asked_for() {
        let tool = CurrentTime::with_clock(noon_utc);
        let paris = tool
            .call(json!({"timezone": "Europe/Paris"}))
            .await
            .unwrap();
        assert_eq!(paris["local_time"], "2026-07-01T14:00:00+02:00");
        assert_eq!(paris["weekday"], "Wednesday");
        assert_eq!(paris["abbreviation"], "CEST");
        let utc = tool.call(json!({"timezone": "UTC"})).await.unwrap();
        assert_eq!(utc["utc_offset"], "+00:00");
    }

    #[test]
    fn refuses_names_that_are_not_iana_zones() {
        for zone in ["Mars/Olympus", "", "CEST+2", "../../etc/passwd"] {
            assert!(
                matches!(
                    CurrentTime::at(noon_utc(), zone),
                    Err(ToolError::InvalidArguments(_))
                ),
                "{zone}"
            );
        }
    }
}

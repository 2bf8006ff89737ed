//! `portcullis audit`: the audit log, newest first.

use clap::Args;
use serde_json::json;

use super::{open_store, CliError};
use crate::audit::Kind;
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::config::{Config, Seconds};
use crate::store::{AuditEvent, AuditFilter};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events of this authorization server.
    #[arg(long)]
    server: Option<String>,
    /// Only events of this kind (sign_in, sign_in_failed, lockout, token_issued, …).
    #[arg(long, value_parser = parse_kind)]
    kind: Option<Kind>,
    /// Only events since a time: a duration ago (`90s`, `15m`, `24h`, `7d`) or a UTC time
    /// (`2026-01-31T12:00:00Z`).
    #[arg(long, value_name = "DURATION|TIME", value_parser = parse_since)]
    since: Option<Since>,
    /// At most this many events.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
    limit: i64,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy)]
enum Since {
    Ago(Seconds),
    At(UnixTime),
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::parse(s).ok_or_else(|| {
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown kind `{s}` (one of {})", kinds.join(", "))
    })
}

fn parse_since(s: &str) -> Result<Since, String> {
    if s.contains('T') {
        return parse_utc(s)
            .map(Since::At)
            .ok_or_else(|| format!("`{s}` is not a UTC time like 2026-01-31T12:00:00Z"));
    }
    s.parse::<Seconds>().map(Since::Ago)
}

pub async fn run(config: &Config, args: AuditArgs) -> Result<(), CliError> {
    let store = open_store(config).await?;
    let now = SystemClock.now();
    let filter = AuditFilter {
        server_id: args.server,
        kind: args.kind.map(|k| k.as_str().to_string()),
        since: args.since.map(|since| match since {
            Since::Ago(d) => now - d.as_i64(),
            Since::At(t) => t,
        }),
        limit: args.limit,
    };
    let result = store.audit_events(&filter).await.map_err(CliError::from);
    store.close().await;
    for event in result? {
        if args.json {
            println!("{}", to_json(&event));
        } else {
            println!("{}", to_text(&event));
        }
    }
    Ok(())
}

fn to_json(e: &AuditEvent) -> serde_json::Value {
    let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or(json!({}));
    json!({
        "id": e.id,
        "at": e.at,
        "time": format_utc(e.at),
        "server": e.server_id,
        "kind": e.kind,
        "actor": e.actor,
        "subject": e.subject,
        "detail": detail,
    })
}

fn to_text(e: &AuditEvent) -> String {
    format!(
        "{}  {:<8} {:<22} actor={} subject={} {}",
        format_utc(e.at),
        e.server_id.as_deref().unwrap_or("-"),
        e.kind,
        e.actor.as_deref().unwrap_or("-"),
        e.subject.as_deref().unwrap_or("-"),
        e.detail
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `YYYY-MM-DDTHH:MM:SSZ` to Unix seconds.
fn parse_utc(s: &str) -> Option<UnixTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (date.next()??, date.next()??, date.next()??);
    let mut time = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, sec) = (time.next()??, time.next()??, time.next()??);
    let valid = (1..=12).contains(&m)
        && (1..=31).contains(&d)
        && (0..24).contains(&h)
        && (0..60).contains(&min)
        && (0..61).contains(&sec);
    valid.then(|| days_from_civil(y, m, d) * 86400 + h * 3600 + min * 60 + sec)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (H. Hinnant's `civil_from_days`).
fn format_utc(t: UnixTime) -> String {
    let (days, secs) = (t.div_euclid(86400), t.rem_euclid(86400));
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_round_trip() {
        for t in [0, 951_782_400, 1_764_045_296, 4_102_444_799] {
            assert_eq!(parse_utc(&format_utc(t)), Some(t), "{t}");
        }
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(parse_utc("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_utc("2026-01-01 00:00:00"), None);
    }
}

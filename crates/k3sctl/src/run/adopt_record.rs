//! The record of an adoption on the host: k3sctl wrote its own rendering of K3s's files while
//! K3s kept running, because the effective configuration did not change. The files are then
//! newer than the service's start, which otherwise means "an apply was interrupted before the
//! restart". The record holds the service start it vouches for and when it was written; the
//! observation trusts it only while K3s still runs from that start. No local state.

use crate::host::shell::quote;

/// Where the record lives on a host.
pub const RECORD_PATH: &str = "/var/lib/k3sctl/adopted";

/// Shell that writes the record for `unit`'s current start, atomically.
pub fn record_script(unit: &str) -> String {
    let record = quote(RECORD_PATH);
    let tmp = quote(&format!("{RECORD_PATH}.tmp"));
    format!(
        "set -e\n\
         ts=$(systemctl show -p ExecMainStartTimestamp --value {unit})\n\
         started=$(date -d \"$ts\" +%s)\n\
         mkdir -p \"$(dirname {record})\"\n\
         printf '%s %s\\n' \"$started\" \"$(date +%s)\" > {tmp}\n\
         mv -f {tmp} {record}\n",
        unit = quote(unit),
    )
}

/// The start the service counts from: the record's write time when the record vouches for
/// the service's current start (`started`), else `started` itself.
pub fn effective_start(started: Option<i64>, record: Option<&str>) -> Option<i64> {
    let started = started?;
    let mut parts = record.unwrap_or_default().split_whitespace();
    match (
        parts.next().and_then(|s| s.parse::<i64>().ok()),
        parts.next().and_then(|s| s.parse::<i64>().ok()),
    ) {
        (Some(vouched), Some(at)) if vouched == started => Some(started.max(at)),
        _ => Some(started),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_counts_only_for_the_start_it_vouches_for() {
        assert_eq!(effective_start(Some(100), Some("100 160\n")), Some(160));
        assert_eq!(effective_start(Some(200), Some("100 160")), Some(200));
        assert_eq!(effective_start(Some(100), Some("garbage")), Some(100));
        assert_eq!(effective_start(Some(100), None), Some(100));
        assert_eq!(effective_start(None, Some("100 160")), None);
    }

    #[test]
    fn script_names_the_unit_and_writes_atomically() {
        let script = record_script("k3s-agent");
        assert!(script.contains("--value k3s-agent)\n"), "{script}");
        assert!(
            script.contains(&format!("mv -f {RECORD_PATH}.tmp {RECORD_PATH}")),
            "{script}"
        );
    }
}

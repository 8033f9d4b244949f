//! The end of the input (`weir dev`): when every source partition has
//! reached the end offsets it was given, the end markers cross the
//! repartition topic, every window closes, and the pipeline stops. Only
//! `weir dev` sets `finish_at`; `weir run` never ends by itself.

use super::output::OutMsg;
use super::pipeline::{RunOptions, RuntimeError};
use super::route::{derived, send_all, send_markers};
use super::shared::{lock, PartitionTask, Shared};

/// `weir dev`: whether every source partition reached its end offset and,
/// with a repartition, every repartition partition has seen the end marker
/// of every source partition (sent once, when the sources are done; the
/// repartition topic's end offset would not do: with transactions it holds
/// control records no consumer position reaches).
///
/// The tables were read to their end at the start, so once the sources are
/// done every record still held for a table (T4) is released first.
///
/// # Errors
/// [`RuntimeError::RecordFailed`] when a released record fails under
/// `errors.policy: fail`.
pub(super) fn finished(
    shared: &Shared,
    opts: &RunOptions,
    ends_sent: &mut bool,
) -> Result<bool, RuntimeError> {
    let Some(ends) = &opts.finish_at else {
        return Ok(false);
    };
    let sources_done = {
        let parts = lock(&shared.partitions);
        ends.iter()
            .filter(|((t, _), _)| shared.plan.is_source_topic(t))
            .all(|((t, p), end)| {
                *end == 0
                    || parts
                        .get(t, *p)
                        .is_some_and(|task| task.next_offset >= *end)
            })
    };
    if !sources_done {
        return Ok(false);
    }
    if shared.plan.repartition.is_none() {
        let mut out = Vec::new();
        super::table_events::release_held(shared, &mut out)?;
        send_all(shared, &mut out);
        return Ok(true);
    }
    if !*ends_sent {
        *ends_sent = true;
        let mut out = Vec::new();
        super::table_events::release_held(shared, &mut out)?;
        send_markers(shared, &mut out, true);
        send_all(shared, &mut out);
    }
    let parts = lock(&shared.partitions);
    let downstream: Vec<&PartitionTask> = parts.values().filter(|t| t.proc.repartitioned).collect();
    Ok(downstream.len() == shared.repartition_partitions as usize
        && downstream.iter().all(|t| {
            shared
                .upstream_sources
                .iter()
                .all(|s| t.proc.ended.contains(s))
        }))
}

/// End of input (`weir dev`): close every window and route the results.
pub(super) fn flush_windows(
    shared: &Shared,
    out: &mut Vec<(OutMsg, i64)>,
) -> Result<(), RuntimeError> {
    let mut parts = lock(&shared.partitions);
    for task in parts.values_mut() {
        let mut msgs = Vec::new();
        let counts = task.proc.flush(&shared.plan, &mut msgs, &mut |_| {});
        derived(shared, counts, msgs, out)?;
    }
    Ok(())
}

//! What the pipeline loop does with a table event ([`TableEvent`]): a
//! version goes into the pipeline's [`TableCache`] and to every assigned
//! partition whose stages join the table, an idle change to their holds
//! (T4); the stream records either releases run through the stages here,
//! are counted and queued. At the end of `weir dev`'s input the held
//! records are released ([`release_held`]).

use super::output::{OutMsg, StepCounts};
use super::pipeline::RuntimeError;
use super::processor::TableStep;
use super::route::account;
use super::shared::{lock, PartitionTask, Shared};
use super::tables::TableEvent;

/// Applies `ev` (see the module doc); outputs go to `out`.
///
/// # Errors
/// [`RuntimeError::RecordFailed`] when a released record, or the table
/// record itself, fails under `errors.policy: fail`.
pub(super) fn apply(
    shared: &Shared,
    ev: TableEvent,
    out: &mut Vec<(OutMsg, i64)>,
) -> Result<(), RuntimeError> {
    let plan = &*shared.plan;
    let now = crate::kafka::sink::now_ms();
    match ev {
        TableEvent::Error(counts, msgs) => {
            if let Some(message) = counts.fail {
                return Err(RuntimeError::RecordFailed {
                    pipeline: plan.name.clone(),
                    message,
                });
            }
            account(shared, &counts, &msgs);
            out.extend(msgs.into_iter().map(|m| (m, now)));
            Ok(())
        }
        TableEvent::Version {
            table,
            partition,
            key,
            time,
            value,
        } => {
            let name = plan.tables[table].name.as_str();
            if let Some(cache) = &shared.tables {
                lock(cache).insert(name, partition, &key, time, value.clone());
            }
            each_joining(shared, name, out, &mut |task, msgs| {
                task.proc.apply_version(
                    plan,
                    name,
                    partition,
                    (&key, time, value.clone()),
                    msgs,
                    &mut |_| {},
                )
            })
        }
        TableEvent::Idle {
            table,
            partition,
            idle,
        } => {
            let name = plan.tables[table].name.as_str();
            if let Some(cache) = &shared.tables {
                lock(cache).set_idle(name, partition, idle);
            }
            each_joining(shared, name, out, &mut |task, msgs| {
                task.proc
                    .table_idle(plan, name, partition, idle, msgs, &mut |_| {})
            })
        }
    }
}

/// `weir dev`, end of input (the tables were read to their end at the
/// start): every held record is released and run through the stages.
///
/// # Errors
/// As [`apply`].
pub(super) fn release_held(
    shared: &Shared,
    out: &mut Vec<(OutMsg, i64)>,
) -> Result<(), RuntimeError> {
    let mut parts = lock(&shared.partitions);
    for task in parts.values_mut() {
        let mut msgs = Vec::new();
        let step = task.proc.tables_idle(&shared.plan, &mut msgs, &mut |_| {});
        released(shared, task, step, msgs, out)?;
    }
    Ok(())
}

/// Runs `f` on every assigned partition whose stages join `table`.
fn each_joining(
    shared: &Shared,
    table: &str,
    out: &mut Vec<(OutMsg, i64)>,
    f: &mut dyn FnMut(&mut PartitionTask, &mut Vec<OutMsg>) -> TableStep,
) -> Result<(), RuntimeError> {
    let mut parts = lock(&shared.partitions);
    for task in parts.values_mut().filter(|t| t.proc.reads_table(table)) {
        let mut msgs = Vec::new();
        let step = f(task, &mut msgs);
        released(shared, task, step, msgs, out)?;
    }
    Ok(())
}

/// Counts the records `step` released and queues their outputs. Under
/// `errors.policy: fail` the first failing record stops the pipeline, and
/// its partition is committed no further than it.
fn released(
    shared: &Shared,
    task: &mut PartitionTask,
    step: TableStep,
    msgs: Vec<OutMsg>,
    out: &mut Vec<(OutMsg, i64)>,
) -> Result<(), RuntimeError> {
    for (c, origin) in step.released.iter().zip(&step.origins) {
        if let Some(message) = &c.fail {
            task.fail_at = Some(task.fail_at.map_or(origin.offset, |f| f.min(origin.offset)));
            account(
                shared,
                &StepCounts {
                    outcome: c.outcome,
                    stage: c.stage,
                    ..Default::default()
                },
                &[],
            );
            return Err(RuntimeError::RecordFailed {
                pipeline: shared.plan.name.clone(),
                message: message.clone(),
            });
        }
        account(shared, c, &[]);
    }
    account(shared, &StepCounts::default(), &msgs);
    let now = crate::kafka::sink::now_ms();
    out.extend(msgs.into_iter().map(|m| (m, now)));
    Ok(())
}

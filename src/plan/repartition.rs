//! Where a `key_by` splits a pipeline (DESIGN.md §3, Keys and partitions):
//! the repartition topic, and the stage lists weir refuses around it.
//! Errors go to `err` with the field path, as in [`super`].

use crate::operator::Stage;

/// A repartition: stages `..=after` run on the source partitions and end
/// in `topic`, keyed by the new key; stages after it run on the partitions
/// of `topic` (DESIGN.md §3, Keys and partitions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repartition {
    /// Index of the `key_by` stage whose output is repartitioned.
    pub after: usize,
    /// `<group>.<after>.repartition` (`weir.<pipeline>.<after>.repartition`
    /// with the default group id).
    pub topic: String,
    /// The payload reaches the repartition unchanged (JSON source, no
    /// transform before it): the source bytes are forwarded, not
    /// re-serialized.
    pub forward_payload: bool,
}

/// The repartition of `stages` ([`split`]), with an error at the stage for
/// every arrangement weir does not run: a second repartition, a join after
/// the repartition, a window before it. `None` without a repartition, or
/// when there would be two.
pub(super) fn find(
    stages: &[Stage],
    group_id: &str,
    format: crate::spec::Format,
    err: &mut dyn FnMut(&str, String),
) -> Option<Repartition> {
    let repartition = split(stages, group_id, format);
    if let Err(i) = repartition {
        err(
            &format!("stages[{i}]"),
            "a second key_by before a window needs a second repartition, which weir does not do (expected at most one key_by followed by windows)".into(),
        );
    }
    if let Ok(Some(r)) = &repartition {
        // Joins run where the source is read: their hold (rule T4) is not
        // built into the repartition topic's partitions.
        if let Some(i) = stages[r.after + 1..]
            .iter()
            .position(|s| matches!(s, Stage::Join(_) | Stage::StreamJoin(_)))
        {
            err(
                &format!("stages[{}].join", r.after + 1 + i),
                format!(
                    "a join after the key_by at stages[{}] would run on the repartition topic's partitions, which weir does not do yet (expected the join before that key_by)",
                    r.after
                ),
            );
        }
        // Results of a window before the repartition would cross it with no
        // source offset of their own to deduplicate by.
        if let Some(i) = stages[..r.after]
            .iter()
            .position(|s| matches!(s, Stage::Window(_)))
        {
            err(
                &format!("stages[{i}]"),
                format!(
                    "a window before the key_by at stages[{}] would send its results through the repartition topic, which weir does not do yet (expected windows only after that key_by, or a second pipeline reading this one's sink)",
                    r.after
                ),
            );
        }
    }
    repartition.ok().flatten()
}

/// The repartition of a stage list: the last `key_by` before the first
/// window that follows a `key_by`. `Err(i)` when stage `i` is another
/// `key_by` followed by a window after that (a second repartition).
fn split(
    stages: &[Stage],
    group_id: &str,
    format: crate::spec::Format,
) -> Result<Option<Repartition>, usize> {
    let mut last_key_by = None;
    let mut found: Option<usize> = None;
    for (i, s) in stages.iter().enumerate() {
        match s {
            Stage::KeyBy(_) => last_key_by = Some(i),
            Stage::Window(_) => {
                if let Some(k) = last_key_by.take() {
                    if found.is_some() {
                        return Err(k);
                    }
                    found = Some(k);
                }
            }
            _ => {}
        }
    }
    Ok(found.map(|after| Repartition {
        after,
        topic: format!("{group_id}.{after}.repartition"),
        forward_payload: format == crate::spec::Format::Json
            && !stages[..=after]
                .iter()
                .any(|s| matches!(s, Stage::Transform(_))),
    }))
}

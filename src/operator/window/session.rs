//! Adding a record to its key's session windows (DESIGN.md §3, as Flink
//! merges sessions): the record's `[t, t + gap)` merges with every open
//! session of the key that overlaps or touches it; the key's sessions are
//! its window list, sorted by start.

use super::store::OpenWindow;
use super::{agg_error, check, emit, empty_aggs, eval_values, fold};
use super::{AddOutcome, EmitMode, WindowOperator};
use crate::expr::ExprError;
use crate::record::Record;
use cel::Context;

impl WindowOperator {
    /// [`WindowOperator::add`] for session windows.
    pub(super) fn add_session(
        &mut self,
        gap: i64,
        root: &Context<'static, 'static>,
        rec: &Record,
        wm: i64,
        out: &mut Vec<Record>,
    ) -> Result<AddOutcome, ExprError> {
        let t = rec.event_time;
        let WindowOperator {
            def,
            store,
            values,
            merging,
            bytes_results,
        } = self;
        let def = &**def;
        let new_end = t.saturating_add(gap);
        let key = store.keys.get(&rec.key);
        // Open sessions of this key that overlap or touch [t, t + gap).
        merging.clear();
        if let Some(k) = key {
            for &(s, slot) in store.keys.windows(k) {
                if s > new_end {
                    break;
                }
                if store.get(slot).end >= t {
                    merging.push(slot);
                }
            }
        }
        if merging.is_empty() && def.closes_at(new_end) <= wm {
            return Ok(AddOutcome::Late);
        }
        eval_values(def, root, rec, values)?;
        let (mut start, mut end) = (t, new_end);
        for slot in merging.iter() {
            let w = store.get(*slot);
            start = start.min(w.start);
            end = end.max(w.end);
        }
        let mut aggs = match merging.as_slice() {
            [] => empty_aggs(def),
            [slot] => {
                // The common case: the record extends one session.
                check(&def.aggregates, &store.get(*slot).aggs, values)?;
                std::mem::take(&mut store.get_mut(*slot).aggs)
            }
            [first, rest @ ..] => {
                let mut acc = store.get(*first).aggs.clone();
                for slot in rest {
                    let w = store.get(*slot);
                    for ((a, b), spec) in acc.iter_mut().zip(w.aggs.iter()).zip(&def.aggregates) {
                        a.try_merge(spec, b).map_err(|e| agg_error(spec, e))?;
                    }
                }
                acc
            }
        };
        // Checked (one session) or folded into a copy (a merge): a failing
        // record changes no window.
        fold(&def.aggregates, &mut aggs, values, t)?;
        // The merged session keeps the earliest start: a session that
        // already started there is updated in place, the others go.
        let mut kept = None;
        for slot in merging.iter() {
            if store.get(*slot).start == start {
                kept = Some(*slot);
            } else {
                store.remove(*slot);
            }
        }
        let slot = match kept {
            Some(slot) => {
                store.set_end(slot, end);
                let w = store.get_mut(slot);
                w.aggs = aggs;
                w.changed = true;
                store.mark_dirty(slot);
                slot
            }
            None => {
                let k = match key {
                    Some(k) => k,
                    None => store.keys.intern(&rec.key),
                };
                store.insert(OpenWindow {
                    key: k,
                    changed: true,
                    dirty: true,
                    persisted: false,
                    start,
                    end,
                    aggs,
                })
            }
        };
        if def.emit == EmitMode::Update {
            out.push(emit::result(
                def,
                &store.keys,
                store.get(slot),
                *bytes_results,
            ));
        }
        Ok(AddOutcome::Added)
    }
}

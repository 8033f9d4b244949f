//! Adding a record to its tumbling or hopping windows (DESIGN.md §3): the
//! key is looked up once (no key text is built for a string key), each
//! window is found among the key's windows by start, and a new window gets
//! a slot and a place in its close time's bucket.

use super::assigner::Assigner;
use super::store::OpenWindow;
use super::{check, emit, empty_aggs, eval_values, fold};
use super::{AddOutcome, EmitMode, WindowOperator};
use crate::expr::ExprError;
use crate::record::Record;
use cel::Context;

impl WindowOperator {
    /// [`WindowOperator::add`] for aligned windows.
    pub(super) fn add_aligned(
        &mut self,
        a: Assigner,
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
            bytes_results,
            ..
        } = self;
        let def = &**def;
        if def.closes_at(a.last_start(t) + a.size) <= wm {
            return Ok(AddOutcome::Late);
        }
        eval_values(def, root, rec, values)?;
        let mut key = store.keys.get(&rec.key);
        // A hopping record can be partly late: only windows still open.
        let open = || a.starts(t).filter(move |s| def.closes_at(s + a.size) > wm);
        // A failing record changes no window: with several windows, check
        // them all first; with one (tumbling), check it where it is folded.
        let single = a.size == a.advance || open().nth(1).is_none();
        if let (false, Some(k)) = (single, key) {
            for s in open() {
                if let Some(slot) = store.find(k, s) {
                    check(&def.aggregates, &store.get(slot).aggs, values)?;
                }
            }
        }
        for s in open() {
            let slot = match key.and_then(|k| store.find(k, s)) {
                Some(slot) => {
                    let w = store.get_mut(slot);
                    if single {
                        check(&def.aggregates, &w.aggs, values)?;
                    }
                    fold(&def.aggregates, &mut w.aggs, values, t)?;
                    w.changed = true;
                    store.mark_dirty(slot);
                    slot
                }
                None => {
                    let mut aggs = empty_aggs(def);
                    fold(&def.aggregates, &mut aggs, values, t)?;
                    let k = *key.get_or_insert_with(|| store.keys.intern(&rec.key));
                    store.insert(OpenWindow {
                        key: k,
                        changed: true,
                        dirty: true,
                        persisted: false,
                        start: s,
                        end: s + a.size,
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
        }
        Ok(AddOutcome::Added)
    }
}

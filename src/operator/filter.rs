//! `filter`: keep records for which a CEL predicate is true.

use crate::expr::{CelExpr, ExprError};
use crate::record::Record;
use cel::Context;

/// A compiled filter stage.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The predicate; a non-bool result is a record error.
    pub predicate: CelExpr,
}

impl Filter {
    /// `Ok(true)` keeps the record, `Ok(false)` filters it out.
    ///
    /// # Errors
    /// [`ExprError`] when the predicate fails or is not a bool.
    pub fn keep(&self, root: &Context<'static, 'static>, rec: &Record) -> Result<bool, ExprError> {
        self.predicate.eval_bool(root, rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::CelEnv;
    use serde_json::json;

    #[test]
    fn keeps_matching_records_only() {
        let env = CelEnv::new();
        let f = Filter {
            predicate: env
                .compile("has(value.dep_time) && value.dep_time != null")
                .unwrap(),
        };
        let root = env.root();
        let keep = |v| f.keep(&root, &Record::new(json!(null), v)).unwrap();
        assert!(keep(json!({"dep_time": 517})));
        assert!(!keep(json!({"dep_time": null})));
        assert!(!keep(json!({"other": 1})));
    }
}

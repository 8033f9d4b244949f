//! `key_by`: replace the record key with the value of a CEL expression.

use crate::expr::{CelExpr, ExprError};
use crate::record::Record;
use cel::Context;

/// A compiled key_by stage.
#[derive(Debug, Clone)]
pub struct KeyBy {
    /// Expression giving the new key (any JSON-representable value).
    pub key: CelExpr,
}

impl KeyBy {
    /// Sets `rec.key`. A lazy payload stays undecoded: the repartition
    /// topic forwards the source bytes when no stage changed them, and
    /// reads [`Record::json`] otherwise.
    ///
    /// # Errors
    /// [`ExprError`] when the expression fails or its result has no JSON form.
    pub fn apply(
        &self,
        root: &Context<'static, 'static>,
        rec: &mut Record,
    ) -> Result<(), ExprError> {
        rec.key = self.key.eval_json(root, rec)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::CelEnv;
    use serde_json::json;

    #[test]
    fn sets_key_from_value() {
        let env = CelEnv::new();
        let k = KeyBy {
            key: env.compile("value.origin").unwrap(),
        };
        let mut r = Record::new(json!("old"), json!({"origin": "JFK"}));
        k.apply(&env.root(), &mut r).unwrap();
        assert_eq!(r.key, json!("JFK"));
        let mut r = Record::new(json!("old"), json!({"x": 1}));
        assert_eq!(
            k.apply(&env.root(), &mut r).unwrap_err().message,
            "No such key: origin"
        );
    }
}

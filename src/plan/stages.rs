//! Compiling the stages of a pipeline that need more than one expression:
//! `transform` (JSONPaths and CEL) and `window` (kind, emit mode,
//! aggregates). Errors go to `err` with the field path, as in [`super`].

use crate::expr::{CelEnv, CelExpr, JsonPath};
use crate::operator::transform::Transform;
use crate::operator::window::aggregate::parse_aggregate;
use crate::operator::window::assigner::Assigner;
use crate::operator::window::{EmitMode, WindowDef, WindowKind};
use crate::spec::pipeline::{TransformSpec, WindowSpec};

/// `src` compiled as CEL, or its error reported at `path`.
pub(super) fn cel(
    env: &CelEnv,
    path: String,
    src: &str,
    err: &mut dyn FnMut(&str, String),
) -> Option<CelExpr> {
    match env.compile(src) {
        Ok(e) => Some(e),
        Err(m) => {
            err(&path, m);
            None
        }
    }
}

/// The `transform` stage `t` at `base` (`stages[i]`).
pub(super) fn transform(
    env: &CelEnv,
    base: &str,
    t: &TransformSpec,
    err: &mut dyn FnMut(&str, String),
) -> Transform {
    let mut tr = Transform::default();
    for (j, p) in t.select.iter().enumerate() {
        match JsonPath::compile(p) {
            Ok(p) => tr.select.push(p),
            Err(m) => err(&format!("{base}.transform.select[{j}]"), m),
        }
    }
    tr.rename = t
        .rename
        .iter()
        .map(|(a, b)| (a.clone(), b.clone()))
        .collect();
    for (field, src) in &t.set {
        if let Some(p) = cel(env, format!("{base}.transform.set.{field}"), src, err) {
            tr.set.push((field.clone(), p));
        }
    }
    for (j, p) in t.drop.iter().enumerate() {
        match JsonPath::compile(p) {
            Ok(p) => tr.drop.push(p),
            Err(m) => err(&format!("{base}.transform.drop[{j}]"), m),
        }
    }
    tr
}

/// The `window` stage `w` at `wbase` (`stages[i].window`); `None` when its
/// kind cannot be built (the errors say why).
pub(super) fn window(
    env: &CelEnv,
    wbase: &str,
    w: &WindowSpec,
    err: &mut dyn FnMut(&str, String),
) -> Option<WindowDef> {
    let kinds = [
        w.tumbling.is_some(),
        w.hopping.is_some(),
        w.session.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if kinds != 1 {
        err(
            wbase,
            "needs exactly one window kind (expected one of tumbling, hopping, session)".into(),
        );
        return None;
    }
    let kind = if let Some(size) = w.tumbling {
        if size.0 == 0 {
            err(
                &format!("{wbase}.tumbling"),
                "must be longer than 0 (expected e.g. 1m)".into(),
            );
            return None;
        }
        WindowKind::Aligned(Assigner::tumbling(size.0 as i64))
    } else if let Some(h) = &w.hopping {
        if h.advance.0 == 0 || h.size.0 == 0 || h.size.0 % h.advance.0 != 0 {
            err(
                &format!("{wbase}.hopping.advance"),
                format!(
                    "advance {}ms does not divide size {}ms (expected a non-zero advance that divides size)",
                    h.advance.0, h.size.0
                ),
            );
            return None;
        }
        WindowKind::Aligned(Assigner {
            size: h.size.0 as i64,
            advance: h.advance.0 as i64,
        })
    } else {
        let gap = w.session.as_ref().map_or(0, |s| s.gap.0 as i64);
        if gap == 0 {
            err(
                &format!("{wbase}.session.gap"),
                "must be longer than 0 (expected e.g. 30m)".into(),
            );
            return None;
        }
        WindowKind::Session { gap }
    };
    let emit = match w.emit.as_ref().map(parse_emit) {
        None => EmitMode::Final,
        Some(Ok(e)) => e,
        Some(Err(m)) => {
            err(&format!("{wbase}.emit"), m);
            EmitMode::Final
        }
    };
    if w.aggregate.is_empty() {
        err(
            &format!("{wbase}.aggregate"),
            "no aggregates (expected e.g. `flights: count()`)".into(),
        );
    }
    let mut aggregates = Vec::new();
    for (name, call) in &w.aggregate {
        if name == "key" || name == "window" {
            err(
                &format!("{wbase}.aggregate.{name}"),
                format!("`{name}` is a reserved output field (expected another name)"),
            );
            return None;
        }
        match parse_aggregate(env, name, call) {
            Ok(a) => aggregates.push(a),
            Err(m) => err(&format!("{wbase}.aggregate.{name}"), m),
        }
    }
    Some(WindowDef {
        kind,
        allowed_lateness: w.allowed_lateness.0 as i64,
        aggregates,
        late: w.late,
        emit,
    })
}

/// Parses `emit`: `final`, `update` or `{every: D}`.
fn parse_emit(v: &serde_yaml::Value) -> Result<EmitMode, String> {
    const EXPECTED: &str = "(expected final, update or {every: <duration>})";
    match v {
        serde_yaml::Value::String(s) if s == "final" => Ok(EmitMode::Final),
        serde_yaml::Value::String(s) if s == "update" => Ok(EmitMode::Update),
        serde_yaml::Value::Mapping(m) if m.len() == 1 => {
            let d = m
                .get("every")
                .and_then(|d| d.as_str())
                .ok_or_else(|| format!("unknown emit mode {EXPECTED}"))?;
            match humantime::parse_duration(d) {
                Ok(d) if d.as_millis() > 0 => Ok(EmitMode::Every(d.as_millis() as i64)),
                _ => Err(format!(
                    "`every: {d}` is not a positive duration {EXPECTED}"
                )),
            }
        }
        _ => Err(format!("unknown emit mode {EXPECTED}")),
    }
}

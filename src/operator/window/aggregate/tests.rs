//! Tests of the call parser (`parse_aggregate`) and the function table.

use super::*;
use crate::expr::CelEnv;

#[test]
fn parses_calls_and_rejects_unknown() {
    let env = CelEnv::new();
    let a = parse_aggregate(&env, "f", "count()").unwrap();
    assert_eq!((a.kind, a.arg.is_none()), (AggKind::Count, true));
    let a = parse_aggregate(&env, "d", " avg(value.dep_delay) ").unwrap();
    assert_eq!(a.kind, AggKind::Avg);
    let a = parse_aggregate(&env, "p", "percentile(value.dep_delay, 0.95)").unwrap();
    assert_eq!(
        (a.kind, a.q, a.bound),
        (AggKind::Percentile, Some(0.95), None)
    );
    assert_eq!(a.arg.unwrap().source(), "value.dep_delay");
    let a = parse_aggregate(&env, "c", "collect( value.tail , 10 )").unwrap();
    assert_eq!((a.kind, a.bound, a.q), (AggKind::Collect, Some(10), None));
    assert_eq!(a.arg.unwrap().source(), "value.tail");
    for (call, kind) in [
        ("count_distinct(value.origin)", AggKind::CountDistinct),
        ("first(value.a)", AggKind::First),
        ("last(value.a)", AggKind::Last),
    ] {
        assert_eq!(parse_aggregate(&env, "x", call).unwrap().kind, kind);
    }
    assert_eq!(
        parse_aggregate(&env, "x", "median(value.a)").unwrap_err(),
        "unknown aggregate `median` (expected one of count, sum, min, max, avg, count_distinct, first, last, collect, percentile)"
    );
    assert_eq!(
        parse_aggregate(&env, "x", "sum()").unwrap_err(),
        "`sum` needs an argument (expected sum(expr))"
    );
    assert_eq!(
        parse_aggregate(&env, "x", "sum(value.a, 2)").unwrap_err(),
        "`sum` takes one argument (expected sum(expr))"
    );
    assert_eq!(
        parse_aggregate(&env, "x", "value.a").unwrap_err(),
        "`value.a` is not an aggregate call (expected one of count(), count(expr), sum(expr), min(expr), max(expr), avg(expr), count_distinct(expr), first(expr), last(expr), collect(expr, N), percentile(expr, q))"
    );
}

#[test]
fn parse_errors_of_collect_and_percentile() {
    let env = CelEnv::new();
    let err = |call: &str| parse_aggregate(&env, "x", call).unwrap_err();
    assert_eq!(
        err("collect(value.x)"),
        "`collect` needs a bound (expected collect(expr, N) with N > 0)"
    );
    assert_eq!(
        err("collect()"),
        "`collect` needs an argument (expected collect(expr, N) with N > 0)"
    );
    assert_eq!(
        err("collect(, 3)"),
        "`collect` needs an argument (expected collect(expr, N) with N > 0)"
    );
    assert_eq!(
        err("collect(value.x, 0)"),
        "`collect` bound `0` is not a positive integer (expected collect(expr, N) with N > 0)"
    );
    assert_eq!(
        err("collect(value.x, -2)"),
        "`collect` bound `-2` is not a positive integer (expected collect(expr, N) with N > 0)"
    );
    assert_eq!(
        err("collect(value.x, 'a,b')"),
        "`collect` bound `'a,b'` is not a positive integer (expected collect(expr, N) with N > 0)"
    );
    assert_eq!(
        err("percentile(value.x)"),
        "`percentile` needs a quantile (expected percentile(expr, q) with q a number in [0, 1])"
    );
    assert_eq!(
        err("percentile(value.x, 1.5)"),
        "`percentile` quantile `1.5` is not a number in [0, 1] (expected percentile(expr, q) with q a number in [0, 1])"
    );
    assert_eq!(
        err("percentile(value.x, -0.1)"),
        "`percentile` quantile `-0.1` is not a number in [0, 1] (expected percentile(expr, q) with q a number in [0, 1])"
    );
    assert_eq!(
        err("percentile(value.x, NaN)"),
        "`percentile` quantile `NaN` is not a number in [0, 1] (expected percentile(expr, q) with q a number in [0, 1])"
    );
    assert_eq!(
        err("first(value.a, value.b)"),
        "`first` takes one argument (expected first(expr))"
    );
}

#[test]
fn commas_inside_nested_expressions_and_strings_stay_in_the_argument() {
    let env = CelEnv::new();
    let source = |call: &str| {
        let a = parse_aggregate(&env, "x", call).unwrap();
        (a.arg.unwrap().source().to_owned(), a.bound, a.q)
    };
    assert_eq!(
        source(r#"first(value.a + "x,y")"#),
        (r#"value.a + "x,y""#.into(), None, None)
    );
    assert_eq!(
        source("collect(size([1,2]), 3)"),
        ("size([1,2])".into(), Some(3), None)
    );
    assert_eq!(
        source("collect({'a': 1, 'b': value.b}, 2)"),
        ("{'a': 1, 'b': value.b}".into(), Some(2), None)
    );
    assert_eq!(
        source(r#"last('it\'s, "ok"' + value.s)"#),
        (r#"'it\'s, "ok"' + value.s"#.into(), None, None)
    );
    assert_eq!(
        source(r#"count_distinct("""a,"b",c""" + r'x\' + ',' + value.s)"#),
        (
            r#""""a,"b",c""" + r'x\' + ',' + value.s"#.into(),
            None,
            None
        )
    );
    assert_eq!(
        source("percentile(value.x > 0 ? [value.x, 1][0] : {'a': 0, 'b': 1}['a'], 0.5)"),
        (
            "value.x > 0 ? [value.x, 1][0] : {'a': 0, 'b': 1}['a']".into(),
            None,
            Some(0.5)
        )
    );
}

#[test]
fn the_table_lists_every_function_once() {
    let names: Vec<_> = AggKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
            "count",
            "sum",
            "min",
            "max",
            "avg",
            "count_distinct",
            "first",
            "last",
            "collect",
            "percentile"
        ]
    );
    for k in AggKind::ALL {
        assert_eq!(AggKind::from_name(k.name()), Some(*k));
    }
    assert_eq!(AggKind::from_name("median"), None);
}

#[test]
fn the_call_is_split_by_the_cel_parser() {
    let env = CelEnv::new();
    let parse = |call: &str| {
        let a = parse_aggregate(&env, "x", call).unwrap();
        (a.arg.unwrap().source().to_owned(), a.bound, a.q)
    };
    // Byte offsets stay right after multi-byte characters.
    assert_eq!(
        parse(r#"collect(value.a + "é,ü", 3)"#),
        (r#"value.a + "é,ü""#.into(), Some(3), None)
    );
    assert_eq!(
        parse("collect(value.x, (3))"),
        ("value.x".into(), Some(3), None)
    );
    assert_eq!(parse("sum (value.x)"), ("value.x".into(), None, None));
    assert_eq!(
        parse("percentile(value.x, 1)"),
        ("value.x".into(), None, Some(1.0))
    );
    assert_eq!(
        parse("count(value.items.exists(i, i > 1))"),
        ("value.items.exists(i, i > 1)".into(), None, None)
    );
    assert_eq!(
        parse("collect(value.m[?'k'].orValue(0), 2)"),
        ("value.m[?'k'].orValue(0)".into(), Some(2), None)
    );
}

#[test]
fn calls_that_are_not_aggregates_or_not_cel() {
    let env = CelEnv::new();
    let err = |call: &str| parse_aggregate(&env, "x", call).unwrap_err();
    for call in [
        "sum(value.x) + 1",
        "value.sum(value.x)",
        "(sum(value.x))",
        "sum(value.x",
    ] {
        assert!(
            err(call).starts_with(&format!("`{call}` is not an aggregate call (expected one of count(), count(expr), sum(expr)")),
            "{call}: {}",
            err(call)
        );
    }
    assert!(err("has(value.x)").starts_with("unknown aggregate `has`"));
    assert!(err("median(value.x +)").starts_with("unknown aggregate `median`"));
    assert_eq!(
        err("collect(value.x, 2, 3)"),
        "`collect` takes two arguments (expected collect(expr, N) with N > 0)"
    );
    assert_eq!(
        err("collect(value.x, size(value.y))"),
        "`collect` bound `size(value.y)` is not a positive integer (expected collect(expr, N) with N > 0)"
    );
    // A syntax error reads as CelEnv::compile reports it for the call.
    let compiled = env.compile("sum(value.x +)").unwrap_err();
    assert_eq!(err("sum(value.x +)"), compiled);
    assert!(
        compiled.starts_with("CEL syntax error at 1:14"),
        "{compiled}"
    );
    assert!(
        err("percentile(value.x, +0.5)").starts_with("CEL syntax error at 1:21"),
        "{}",
        err("percentile(value.x, +0.5)")
    );
    assert_eq!(
        err("count(nope.x)"),
        env.compile("nope.x").unwrap_err(),
        "an unknown variable"
    );
}

#[test]
fn a_missing_key_is_recognised() {
    let env = CelEnv::new();
    let root = env.root();
    let rec = crate::record::Record::new(serde_json::json!(null), serde_json::json!({}));
    let e = env
        .compile("value.missing")
        .unwrap()
        .eval(&root, &rec)
        .unwrap_err();
    assert!(is_missing_key(&e), "{e:?}");
    let e = env.compile("1 / 0").unwrap().eval(&root, &rec).unwrap_err();
    assert!(!is_missing_key(&e), "{e:?}");
}

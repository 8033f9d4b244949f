//! Unit tests of the reset plan against a fake [`GroupAdmin`]: the paths
//! neither test broker can show (offsets-for-times, member lists).

use super::*;
use crate::kafka::offsets::Member;
use std::cell::RefCell;
use std::collections::HashMap;

/// A broker in memory: per partition its records' timestamps (offset =
/// index + low), the group's description and committed offsets.
struct Fake {
    group: GroupDescription,
    logs: BTreeMap<TopicPartition, (i64, Vec<i64>)>,
    committed: HashMap<TopicPartition, i64>,
    commits: RefCell<Vec<(TopicPartition, i64)>>,
}

fn tp(t: &str, p: i32) -> TopicPartition {
    (t.to_owned(), p)
}

impl Fake {
    fn new(state: &str) -> Fake {
        let mut logs = BTreeMap::new();
        // flights/0: offsets 100..105 at times 1000, 2000, …, 5000.
        logs.insert(tp("flights", 0), (100, vec![1000, 2000, 3000, 4000, 5000]));
        // flights/1: offsets 0..3 at 1500, 2500, 3500.
        logs.insert(tp("flights", 1), (0, vec![1500, 2500, 3500]));
        Fake {
            group: GroupDescription {
                state: state.to_owned(),
                members: Vec::new(),
            },
            logs,
            committed: HashMap::from([(tp("flights", 0), 103)]),
            commits: RefCell::new(Vec::new()),
        }
    }
}

impl GroupAdmin for Fake {
    fn describe_group(&self, _group: &str) -> Result<GroupDescription, OffsetsError> {
        Ok(self.group.clone())
    }
    fn topics(&self) -> Result<BTreeMap<String, i32>, OffsetsError> {
        let mut t = BTreeMap::new();
        for (topic, _) in self.logs.keys() {
            *t.entry(topic.clone()).or_insert(0) += 1;
        }
        t.insert("weir.x.checkpoint".to_owned(), 1);
        Ok(t)
    }
    fn watermarks(&self, tp: &TopicPartition) -> Result<(i64, i64), OffsetsError> {
        let (low, ts) = &self.logs[tp];
        Ok((*low, low + ts.len() as i64))
    }
    fn committed(
        &self,
        _group: &str,
        parts: &[TopicPartition],
    ) -> Result<Vec<Option<i64>>, OffsetsError> {
        Ok(parts
            .iter()
            .map(|p| self.committed.get(p).copied())
            .collect())
    }
    fn offsets_for_time(
        &self,
        parts: &[TopicPartition],
        ms: i64,
    ) -> Result<Vec<Option<i64>>, OffsetsError> {
        Ok(parts
            .iter()
            .map(|p| {
                let (low, ts) = &self.logs[p];
                ts.iter().position(|t| *t >= ms).map(|i| low + i as i64)
            })
            .collect())
    }
    fn commit(&self, _group: &str, offsets: &[(TopicPartition, i64)]) -> Result<(), OffsetsError> {
        self.commits.borrow_mut().extend_from_slice(offsets);
        Ok(())
    }
}

fn news(admin: &Fake, target: ResetTarget, start: StartFrom) -> Vec<(Option<i64>, i64, i64)> {
    plan_offsets(
        admin,
        "weir.x",
        &[tp("flights", 0), tp("flights", 1)],
        target,
        start,
    )
    .unwrap()
    .iter()
    .map(|r| (r.current, r.new, r.lag()))
    .collect()
}

#[test]
fn refuses_an_active_group_and_names_its_members() {
    let mut admin = Fake::new("Stable");
    admin.group.members = vec![
        Member {
            id: "weir-1f3a".into(),
            client_id: "weir".into(),
            host: "/10.0.0.7".into(),
        },
        Member {
            id: "weir-9c2e".into(),
            client_id: "weir".into(),
            host: "/10.0.0.8".into(),
        },
    ];
    let e = check_group(&admin, "weir.x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "assignments can only be reset if the group `weir.x` is inactive, but the current state is \
         Stable with members weir-1f3a (weir, /10.0.0.7), weir-9c2e (weir, /10.0.0.8); \
         stop every `weir run` of this pipeline first"
    );
    // Tansu lists member ids only.
    admin.group.members = vec![Member {
        id: "rdkafka-a527".into(),
        client_id: String::new(),
        host: String::new(),
    }];
    assert_eq!(
        check_group(&admin, "weir.x").unwrap_err().to_string(),
        "assignments can only be reset if the group `weir.x` is inactive, but the current state is \
         Stable with members rdkafka-a527; stop every `weir run` of this pipeline first"
    );
    // No members listed.
    let e = check_group(&Fake::new("PreparingRebalance"), "weir.x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "assignments can only be reset if the group `weir.x` is inactive, but the current state is \
         PreparingRebalance; stop every `weir run` of this pipeline first"
    );
    assert!(check_group(&Fake::new("Empty"), "weir.x").is_ok());
    assert!(check_group(&Fake::new("Dead"), "weir.x").is_ok());
}

#[test]
fn to_datetime_resolves_through_the_time_index() {
    let admin = Fake::new("Empty");
    // 2500: flights/0's first record at or after it is offset 102 (3000),
    // flights/1's is offset 1 (2500, equal counts).
    assert_eq!(
        news(&admin, ResetTarget::Datetime(2500), StartFrom::Earliest),
        vec![(Some(103), 102, 3), (None, 1, 2)]
    );
    // Later than every record: the log end, as kafka-consumer-groups does.
    assert_eq!(
        news(&admin, ResetTarget::Datetime(4500), StartFrom::Earliest),
        vec![(Some(103), 104, 1), (None, 3, 0)]
    );
    // Before every record: the first offset.
    assert_eq!(
        news(&admin, ResetTarget::Datetime(0), StartFrom::Earliest),
        vec![(Some(103), 100, 5), (None, 0, 3)]
    );
}

#[test]
fn earliest_latest_offset_and_shift_are_clamped_to_the_log() {
    let admin = Fake::new("Empty");
    let e = StartFrom::Earliest;
    assert_eq!(
        news(&admin, ResetTarget::Earliest, e),
        vec![(Some(103), 100, 5), (None, 0, 3)]
    );
    assert_eq!(
        news(&admin, ResetTarget::Latest, e),
        vec![(Some(103), 105, 0), (None, 3, 0)]
    );
    assert_eq!(
        news(&admin, ResetTarget::Offset(2), e),
        vec![(Some(103), 100, 5), (None, 2, 1)]
    );
    assert_eq!(
        news(&admin, ResetTarget::Offset(1_000), e),
        vec![(Some(103), 105, 0), (None, 3, 0)]
    );
    // From the committed offset; without one, from where the group starts.
    assert_eq!(
        news(&admin, ResetTarget::ShiftBy(-2), e),
        vec![(Some(103), 101, 4), (None, 0, 3)]
    );
    assert_eq!(
        news(&admin, ResetTarget::ShiftBy(-2), StartFrom::Latest),
        vec![(Some(103), 101, 4), (None, 1, 2)]
    );
    assert_eq!(
        news(&admin, ResetTarget::ShiftBy(-50), e),
        vec![(Some(103), 100, 5), (None, 0, 3)]
    );
    assert_eq!(
        news(&admin, ResetTarget::ShiftBy(9), e),
        vec![(Some(103), 105, 0), (None, 3, 0)]
    );
    assert!(
        admin.commits.borrow().is_empty(),
        "planning commits nothing"
    );
}

#[test]
fn partitions_are_chosen_by_sources_pattern_and_topic_filters() {
    let admin = Fake::new("Empty");
    let topics = admin.topics().unwrap();
    let all = vec![tp("flights", 0), tp("flights", 1)];
    let srcs = ["flights".to_owned()];
    assert_eq!(
        select_partitions("x", &srcs, None, &[], &topics).unwrap(),
        all
    );
    let re = regex::Regex::new("^fl.*|^weir.*").unwrap();
    assert_eq!(
        select_partitions("x", &[], Some(&|t: &str| re.is_match(t)), &[], &topics).unwrap(),
        all,
        "internal topics never match a pattern"
    );
    let f: TopicFilter = "flights:1".parse().unwrap();
    assert_eq!(
        select_partitions("x", &srcs, None, &[f], &topics).unwrap(),
        vec![tp("flights", 1)]
    );
    let f: TopicFilter = "flights:0,3".parse().unwrap();
    assert_eq!(
        select_partitions("x", &srcs, None, &[f], &topics)
            .unwrap_err()
            .to_string(),
        "--topic flights:3: topic `flights` has partitions 0..2"
    );
    let f: TopicFilter = "visits".parse().unwrap();
    assert_eq!(
        select_partitions("x", &srcs, None, &[f], &topics)
            .unwrap_err()
            .to_string(),
        "--topic visits: not a source topic of pipeline x (its sources: flights)"
    );
    assert_eq!(
        select_partitions("x", &["visits".to_owned()], None, &[], &topics)
            .unwrap_err()
            .to_string(),
        "source topic `visits` does not exist"
    );
    assert_eq!(
        "flights:a".parse::<TopicFilter>().unwrap_err(),
        "`flights:a`: expected TOPIC:PARTITION,… with partitions as numbers ≥ 0"
    );
}

#[test]
fn the_plan_prints_as_a_table() {
    let admin = Fake::new("Empty");
    let rows = plan_offsets(
        &admin,
        "weir.x",
        &[tp("flights", 0), tp("flights", 1)],
        ResetTarget::Earliest,
        StartFrom::Earliest,
    )
    .unwrap();
    assert_eq!(
        render(&rows),
        "TOPIC    PARTITION  CURRENT-OFFSET  NEW-OFFSET  LOG-END-OFFSET  LAG\n\
         flights  0          103             100         105             5\n\
         flights  1          -               0           3               3\n"
    );
}

#[test]
fn a_committed_offset_beyond_the_reported_log_end_raises_it() {
    // Tansu reports the base offset of the last batch + 1 as the high
    // watermark: 3 here, while the group has read to 7.
    let mut admin = Fake::new("Empty");
    admin.committed.insert(tp("flights", 1), 7);
    assert_eq!(
        news(&admin, ResetTarget::Offset(5), StartFrom::Earliest),
        vec![(Some(103), 100, 5), (Some(7), 5, 2)]
    );
    assert_eq!(
        news(&admin, ResetTarget::ShiftBy(-3), StartFrom::Earliest),
        vec![(Some(103), 100, 5), (Some(7), 4, 3)]
    );
}

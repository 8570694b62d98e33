//! Unit tests of placement: water-filling, tie rotation, each strategy, the
//! constraint filters, pure queries, and the error messages.

use std::collections::BTreeMap;
use std::time::Instant;

use pool_proto::{ErrorCode, LabelReq, LoadReport, NodeId, NodeInfo, NodeKind, PlaceQuery};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::load_table::{LoadTable, LoadTableConfig};

fn id(n: u64) -> NodeId {
    NodeId::from_u64(n)
}

/// A table of workers `w1..=wn`, capacity 1, labels from `labels(n)`.
fn table(n: u64, labels: impl Fn(u64) -> Vec<(&'static str, &'static str)>) -> LoadTable {
    let now = Instant::now();
    let mut t = LoadTable::default();
    for i in 1..=n {
        t.add_node(
            NodeInfo {
                id: id(i),
                name: format!("w{i}"),
                addr: format!("127.0.0.1:{}", 7500 + i),
                kind: NodeKind::Worker,
                capacity: 1,
                labels: labels(i)
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            },
            now,
        );
    }
    t
}

fn plain(n: u64) -> LoadTable {
    table(n, |_| vec![])
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn query(count: u32, strategy: PlacementStrategy) -> PlaceQuery {
    PlaceQuery {
        count,
        strategy: Some(strategy),
        commit: true,
        ..Default::default()
    }
}

/// How many placements each node got, by id.
fn tally(nodes: &[NodeId]) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for n in nodes {
        *m.entry(n.as_u64()).or_default() += 1;
    }
    m
}

fn set_run_queue(t: &mut LoadTable, n: u64, run_queue: u32) {
    t.on_report(
        id(n),
        LoadReport {
            run_queue,
            processes: u64::from(run_queue),
            capacity: 1,
            ..Default::default()
        },
        Instant::now(),
    );
}

/// A burst of 32 over 8 idle equal nodes puts exactly 4 on each, whether it
/// comes as one query or as 32 single placements.
#[test]
fn least_loaded_burst_water_fills_to_the_ideal() {
    let mut t = plain(8);
    let nodes = t
        .place(
            &query(32, PlacementStrategy::LeastLoaded),
            DEFAULT_STRATEGY,
            &mut rng(),
        )
        .unwrap();
    assert!(
        tally(&nodes).values().all(|&c| c == 4),
        "{:?}",
        tally(&nodes)
    );

    let mut t = plain(8);
    let mut all = Vec::new();
    for _ in 0..32 {
        all.extend(
            t.place(
                &query(1, PlacementStrategy::LeastLoaded),
                DEFAULT_STRATEGY,
                &mut rng(),
            )
            .unwrap(),
        );
    }
    assert!(tally(&all).values().all(|&c| c == 4), "{:?}", tally(&all));
    assert!((1..=8).all(|n| t.pending(id(n)) == Some(4)));
}

/// One idle node among seven running 4: the burst fills the idle node up to
/// the others' level first, and no node ends above the even level.
#[test]
fn least_loaded_uneven_burst_fills_the_idle_node_first() {
    let mut t = plain(8);
    for n in 2..=8 {
        set_run_queue(&mut t, n, 4);
    }
    set_run_queue(&mut t, 1, 0);
    let nodes = t
        .place(
            &query(32, PlacementStrategy::LeastLoaded),
            DEFAULT_STRATEGY,
            &mut rng(),
        )
        .unwrap();
    assert_eq!(
        &nodes[..4],
        &[id(1); 4],
        "the idle node gets the first four"
    );
    let c = tally(&nodes);
    assert!(c[&1] >= 7, "{c:?}");
    let max_total = (1..=8).map(|n| t.load(id(n)).unwrap()).fold(0.0, f64::max);
    assert_eq!(max_total, 8.0, "60 tasks over 8 nodes: at most 8 each");
}

/// Equal nodes take turns across separate bursts: with a report in between
/// (which clears the accounting), the next single placement goes to the next
/// node, not back to the first.
#[test]
fn ties_rotate_across_reports() {
    let mut t = plain(4);
    let mut seen = Vec::new();
    for _ in 0..8 {
        let n = t
            .place(
                &query(1, PlacementStrategy::LeastLoaded),
                DEFAULT_STRATEGY,
                &mut rng(),
            )
            .unwrap()[0];
        seen.push(n.as_u64());
        for m in 1..=4 {
            set_run_queue(&mut t, m, 0);
        }
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 1, 2, 3, 4]);
}

/// Equal scores are broken by fewer processes per capacity.
#[test]
fn ties_prefer_fewer_processes_per_capacity() {
    let mut t = plain(2);
    for (n, procs) in [(1, 50), (2, 3)] {
        t.on_report(
            id(n),
            LoadReport {
                run_queue: 1,
                processes: procs,
                ..Default::default()
            },
            Instant::now(),
        );
    }
    let got = t
        .place(
            &query(1, PlacementStrategy::LeastLoaded),
            DEFAULT_STRATEGY,
            &mut rng(),
        )
        .unwrap();
    assert_eq!(got, vec![id(2)]);
}

/// Least-loaded divides by capacity: a 3-core node takes 3 for each 1 of a
/// 1-core node.
#[test]
fn least_loaded_follows_capacity() {
    let now = Instant::now();
    let mut t = plain(1);
    t.add_node(
        NodeInfo {
            id: id(2),
            name: "big".into(),
            addr: String::new(),
            kind: NodeKind::Worker,
            capacity: 3,
            labels: Default::default(),
        },
        now,
    );
    let c = tally(
        &t.place(
            &query(40, PlacementStrategy::LeastLoaded),
            DEFAULT_STRATEGY,
            &mut rng(),
        )
        .unwrap(),
    );
    assert_eq!((c[&1], c[&2]), (10, 30));
}

/// A query without commit answers what a committed one would, and leaves the
/// table (accounting and rotation) as it was.
#[test]
fn pure_query_simulates_without_changing_the_table() {
    for strategy in [
        PlacementStrategy::LeastLoaded,
        PlacementStrategy::RoundRobin,
        PlacementStrategy::TwoChoices,
        PlacementStrategy::Random,
    ] {
        let mut t = plain(3);
        set_run_queue(&mut t, 2, 2);
        let mut dry = query(5, strategy);
        dry.commit = false;
        let a = t.place(&dry, DEFAULT_STRATEGY, &mut rng()).unwrap();
        let b = t.place(&dry, DEFAULT_STRATEGY, &mut rng()).unwrap();
        assert_eq!(a, b, "{strategy}: a pure query changes nothing");
        assert!((1..=3).all(|n| t.pending(id(n)) == Some(0)));
        let c = t
            .place(&query(5, strategy), DEFAULT_STRATEGY, &mut rng())
            .unwrap();
        assert_eq!(a, c, "{strategy}: same answer as the committed query");
        assert_eq!((1..=3).map(|n| t.pending(id(n)).unwrap()).sum::<u32>(), 5);
    }
    // The dry-run least-loaded answer water-fills too.
    let mut t = plain(2);
    set_run_queue(&mut t, 1, 3);
    let mut dry = query(5, PlacementStrategy::LeastLoaded);
    dry.commit = false;
    let got = t.place(&dry, DEFAULT_STRATEGY, &mut rng()).unwrap();
    assert_eq!(tally(&got), BTreeMap::from([(1, 1), (2, 4)]));
}

/// Round-robin visits eligible nodes in id order, wrapping, and survives a
/// node leaving.
#[test]
fn round_robin_rotates_in_id_order() {
    let mut t = plain(4);
    set_run_queue(&mut t, 1, 100); // load is ignored
    let got = t
        .place(
            &query(6, PlacementStrategy::RoundRobin),
            DEFAULT_STRATEGY,
            &mut rng(),
        )
        .unwrap();
    assert_eq!(got, [1, 2, 3, 4, 1, 2].map(id));
    t.remove_node(id(3));
    let got = t
        .place(
            &query(3, PlacementStrategy::RoundRobin),
            DEFAULT_STRATEGY,
            &mut rng(),
        )
        .unwrap();
    assert_eq!(got, [4, 1, 2].map(id));
}

/// Two-choices with two nodes always compares both, so it always takes the
/// less loaded; with accounting it alternates once they are level.
#[test]
fn two_choices_takes_the_less_loaded_of_two() {
    let mut t = plain(2);
    set_run_queue(&mut t, 1, 5);
    let got = t
        .place(
            &query(5, PlacementStrategy::TwoChoices),
            DEFAULT_STRATEGY,
            &mut rng(),
        )
        .unwrap();
    assert_eq!(got, vec![id(2); 5]);
    let next = t
        .place(
            &query(2, PlacementStrategy::TwoChoices),
            DEFAULT_STRATEGY,
            &mut rng(),
        )
        .unwrap();
    // Both at 5: tie on score and on processes (5 reported vs 0 + 5), so
    // either; then the other one is strictly lower.
    assert_ne!(next[0], next[1]);
}

/// Random spreads roughly uniformly and only over eligible nodes.
#[test]
fn random_is_uniform_over_eligible_nodes() {
    let mut t = table(5, |n| vec![("zone", if n <= 4 { "a" } else { "b" })]);
    let mut q = query(8000, PlacementStrategy::Random);
    q.labels = vec![LabelReq::parse("zone=a").unwrap()];
    let c = tally(&t.place(&q, DEFAULT_STRATEGY, &mut rng()).unwrap());
    assert!(!c.contains_key(&5));
    assert!(c.values().all(|&k| (1800..=2200).contains(&k)), "{c:?}");
}

/// Keyed placement goes to the rendezvous winner among the eligible nodes,
/// the same node every time, whatever the load and the strategy field.
#[test]
fn keyed_goes_to_the_hash_winner_regardless_of_load() {
    let mut t = plain(5);
    let mut q = query(3, PlacementStrategy::RoundRobin);
    q.key = Some("user:42".into());
    let expected = keyed::pick(b"user:42", (1..=5).map(|n| (id(n), 1.0))).unwrap();
    let first = t.place(&q, DEFAULT_STRATEGY, &mut rng()).unwrap();
    assert_eq!(first, vec![expected; 3]);
    set_run_queue(&mut t, expected.as_u64(), 1000);
    assert_eq!(
        t.place(&q, DEFAULT_STRATEGY, &mut rng()).unwrap()[0],
        expected
    );
    // Excluding its node moves only this query's answer, to the runner-up.
    q.exclude = vec![expected];
    let runner_up = keyed::pick(
        b"user:42",
        (1..=5).filter(|&n| id(n) != expected).map(|n| (id(n), 1.0)),
    )
    .unwrap();
    assert_eq!(
        t.place(&q, DEFAULT_STRATEGY, &mut rng()).unwrap()[0],
        runner_up
    );
}

/// The default strategy applies when the query names none.
#[test]
fn default_strategy_applies_when_none_is_given() {
    let mut t = plain(3);
    let mut q = query(3, PlacementStrategy::Random);
    q.strategy = None;
    let got = t
        .place(&q, PlacementStrategy::RoundRobin, &mut rng())
        .unwrap();
    assert_eq!(got, [1, 2, 3].map(id));
}

/// Labels: all must match.
#[test]
fn labels_all_must_match() {
    let mut t = table(4, |n| match n {
        1 => vec![("zone", "a"), ("disk", "ssd")],
        2 => vec![("zone", "a")],
        3 => vec![("zone", "b"), ("disk", "ssd")],
        _ => vec![],
    });
    let mut q = query(10, PlacementStrategy::LeastLoaded);
    q.labels = LabelReq::parse_list("zone=a,disk=ssd").unwrap();
    let got = t.place(&q, DEFAULT_STRATEGY, &mut rng()).unwrap();
    assert_eq!(got, vec![id(1); 10]);
}

/// Hidden nodes are never candidates, not even by name; a pool with only
/// hidden nodes has no nodes.
#[test]
fn hidden_nodes_are_never_chosen() {
    let now = Instant::now();
    let mut t = LoadTable::default();
    let hidden = NodeInfo {
        id: id(9),
        name: "poolctl-1".into(),
        addr: String::new(),
        kind: NodeKind::Hidden,
        capacity: 64,
        labels: Default::default(),
    };
    t.add_node(hidden, now);
    let err = t
        .place(
            &query(1, PlacementStrategy::Random),
            DEFAULT_STRATEGY,
            &mut rng(),
        )
        .unwrap_err();
    assert_eq!(err, PlaceError::NoNodes);
    t.add_node(plain(1).info(id(1)).unwrap().clone(), now);
    for s in PlacementStrategy::ALL {
        let got = t
            .place(&query(20, s), DEFAULT_STRATEGY, &mut rng())
            .unwrap();
        assert!(got.iter().all(|&n| n == id(1)), "{s}");
    }
    let mut q = query(1, PlacementStrategy::LeastLoaded);
    q.node = Some("poolctl-1".into());
    let err = t.place(&q, DEFAULT_STRATEGY, &mut rng()).unwrap_err();
    assert!(matches!(err, PlaceError::HiddenNode { .. }), "{err}");
}

/// A named node is chosen when live and fitting, whatever its load.
#[test]
fn named_node() {
    let mut t = plain(3);
    set_run_queue(&mut t, 2, 50);
    let mut q = query(2, PlacementStrategy::LeastLoaded);
    q.node = Some("w2".into());
    assert_eq!(
        t.place(&q, DEFAULT_STRATEGY, &mut rng()).unwrap(),
        vec![id(2); 2]
    );
    assert_eq!(t.pending(id(2)), Some(2));
}

/// Count 0 returns nothing but still checks the constraints; an oversized
/// count is refused.
#[test]
fn count_zero_and_too_many() {
    let mut t = plain(2);
    assert_eq!(
        t.place(
            &query(0, PlacementStrategy::Random),
            DEFAULT_STRATEGY,
            &mut rng()
        ),
        Ok(vec![])
    );
    let mut q = query(0, PlacementStrategy::Random);
    q.node = Some("w9".into());
    assert!(t.place(&q, DEFAULT_STRATEGY, &mut rng()).is_err());
    let err = t
        .place(
            &query(MAX_PLACE_COUNT + 1, PlacementStrategy::Random),
            DEFAULT_STRATEGY,
            &mut rng(),
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadRequest);
}

/// Every error names the constraint that left nothing.
#[test]
fn errors_name_the_constraint() {
    let err =
        |t: &mut LoadTable, q: PlaceQuery| t.place(&q, DEFAULT_STRATEGY, &mut rng()).unwrap_err();
    let base = query(1, PlacementStrategy::LeastLoaded);

    let e = err(&mut LoadTable::default(), base.clone());
    assert_eq!(
        e.to_string(),
        "no nodes in the pool: start a worker with pool-worker --master ADDR"
    );
    assert_eq!(e.code(), ErrorCode::NoNode);

    let mut t = table(2, |_| vec![("zone", "a")]);
    let e = err(
        &mut t,
        PlaceQuery {
            labels: vec![LabelReq::parse("zone=b").unwrap()],
            ..base.clone()
        },
    );
    assert_eq!(
        e.to_string(),
        "no live node has label zone=b (live nodes: w1 zone=a, w2 zone=a)"
    );

    let mut t = table(2, |n| {
        vec![if n == 1 {
            ("zone", "a")
        } else {
            ("disk", "ssd")
        }]
    });
    let e = err(
        &mut t,
        PlaceQuery {
            labels: LabelReq::parse_list("zone=a,disk=ssd").unwrap(),
            ..base.clone()
        },
    );
    assert_eq!(
        e.to_string(),
        "no live node has all of the labels zone=a,disk=ssd \
         (live nodes: w1 zone=a, w2 disk=ssd)"
    );

    let mut t = plain(2);
    let e = err(
        &mut t,
        PlaceQuery {
            node: Some("w9".into()),
            ..base.clone()
        },
    );
    assert_eq!(e.to_string(), "node w9 is not live (live nodes: w1, w2)");
    assert_eq!(e.code(), ErrorCode::UnknownNode);

    let e = err(
        &mut t,
        PlaceQuery {
            node: Some("w1".into()),
            labels: vec![LabelReq::parse("zone=a").unwrap()],
            ..base.clone()
        },
    );
    assert_eq!(
        e.to_string(),
        "node w1 does not have label zone=a (its labels: (no labels))"
    );

    let e = err(
        &mut t,
        PlaceQuery {
            node: Some("w1".into()),
            exclude: vec![id(1)],
            ..base.clone()
        },
    );
    assert_eq!(
        e.to_string(),
        "node w1 is both asked for and excluded by the query"
    );

    let e = err(
        &mut t,
        PlaceQuery {
            exclude: vec![id(1), id(2)],
            ..base.clone()
        },
    );
    assert_eq!(
        e.to_string(),
        "every node that fits is excluded by the query: w1, w2"
    );

    for n in 1..=2 {
        t.on_report(
            id(n),
            LoadReport {
                mem_used: 98,
                mem_total: 100,
                ..Default::default()
            },
            Instant::now(),
        );
    }
    let e = err(&mut t, base.clone());
    assert_eq!(
        e.to_string(),
        "every node that fits refuses spawns under memory pressure: \
         w1 mem 98%, w2 mem 98% (limit 95%); free memory or add a worker"
    );
    assert_eq!(e.code(), ErrorCode::Overloaded);
    let remote: pool_proto::RemoteError = e.into();
    assert_eq!(remote.code, ErrorCode::Overloaded);

    // Long lists are cut.
    let mut t = plain(12);
    let e = err(
        &mut t,
        PlaceQuery {
            node: Some("nope".into()),
            ..base
        },
    );
    assert_eq!(
        e.to_string(),
        "node nope is not live (live nodes: w1, w2, w3, w4, w5, w6, w7, w8 and 4 more)"
    );
}

/// A node under memory pressure is skipped while others fit.
#[test]
fn memory_pressure_skips_the_node() {
    let mut t = plain(2);
    t.on_report(
        id(1),
        LoadReport {
            mem_used: 99,
            mem_total: 100,
            ..Default::default()
        },
        Instant::now(),
    );
    set_run_queue(&mut t, 2, 40);
    for s in PlacementStrategy::ALL {
        let got = t
            .place(&query(10, s), DEFAULT_STRATEGY, &mut rng())
            .unwrap();
        assert!(got.iter().all(|&n| n == id(2)), "{s}");
    }
}

/// Without accounting, least-loaded herds: every placement of a burst goes
/// to the node that reported the lowest load (what PERF.md calls stale
/// least-loaded).
#[test]
fn stale_least_loaded_herds() {
    let mut t = plain(4);
    t.config = LoadTableConfig {
        accounting: false,
        ..Default::default()
    };
    for n in 1..=4 {
        t.on_report(
            id(n),
            LoadReport {
                busy_threads: 0.01 * n as f32,
                ..Default::default()
            },
            Instant::now(),
        );
    }
    let got = t
        .place(
            &query(16, PlacementStrategy::LeastLoaded),
            DEFAULT_STRATEGY,
            &mut rng(),
        )
        .unwrap();
    assert_eq!(got, vec![id(1); 16]);
}

/// Workers w1..=wn where the nodes in `custom` also register `wc.count`;
/// every node registers `builtin.echo`.
fn with_functions(n: u64, custom: &[u64]) -> LoadTable {
    let mut t = plain(n);
    for i in 1..=n {
        let mut f = vec!["builtin.echo".to_owned()];
        if custom.contains(&i) {
            f.push("wc.count".to_owned());
        }
        assert!(t.set_functions(id(i), f));
    }
    t
}

fn for_function(f: &str, strategy: PlacementStrategy) -> PlaceQuery {
    PlaceQuery {
        function: Some(f.to_owned()),
        ..query(1, strategy)
    }
}

/// A query naming a function places only on the nodes that register it,
/// whatever the strategy and however loaded the others are; a function
/// every node has, or none named, places as before.
#[test]
fn a_function_keeps_placement_to_the_nodes_that_have_it() {
    for strategy in PlacementStrategy::ALL {
        let mut t = with_functions(4, &[3]);
        // w3 is the busiest: load alone would never choose it.
        set_run_queue(&mut t, 3, 50);
        for _ in 0..20 {
            let nodes = t
                .place(
                    &for_function("wc.count", strategy),
                    DEFAULT_STRATEGY,
                    &mut rng(),
                )
                .unwrap();
            assert_eq!(nodes, vec![id(3)], "{strategy:?}");
        }
        let everywhere = t
            .place(
                &PlaceQuery {
                    count: 40,
                    ..for_function("builtin.echo", strategy)
                },
                DEFAULT_STRATEGY,
                &mut rng(),
            )
            .unwrap();
        assert!(everywhere.iter().any(|&n| n != id(3)), "{strategy:?}");
    }
}

/// A keyed spawn of a function hashes over the nodes that have it only:
/// every key lands on one of them, and keys spread over all of them.
#[test]
fn a_keyed_spawn_hashes_over_the_capable_nodes() {
    let mut t = with_functions(6, &[2, 5]);
    let mut seen = BTreeMap::new();
    for k in 0..200 {
        let q = PlaceQuery {
            key: Some(format!("user:{k}")),
            function: Some("wc.count".into()),
            ..query(1, PlacementStrategy::LeastLoaded)
        };
        let n = t.place(&q, DEFAULT_STRATEGY, &mut rng()).unwrap()[0];
        *seen.entry(n.as_u64()).or_insert(0) += 1;
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        vec![2, 5],
        "{seen:?}"
    );
}

/// When no live node registers the function the error names it and the
/// live nodes (code `NoNode`: a tree child waits pending for one); a named
/// node without it is refused before any spawn; labels apply on top, and
/// when the nodes with the function lack the labels the error says what
/// each node lacks.
#[test]
fn function_errors_name_the_function_and_the_nodes() {
    let err =
        |t: &mut LoadTable, q: PlaceQuery| t.place(&q, DEFAULT_STRATEGY, &mut rng()).unwrap_err();
    let mut t = with_functions(2, &[]);
    let e = err(
        &mut t,
        for_function("wc.count", PlacementStrategy::LeastLoaded),
    );
    assert_eq!(
        e.to_string(),
        "no live node registers function \"wc.count\" (live nodes: w1, w2): \
         start a worker that registers it, or check the spelling"
    );
    assert_eq!(e.code(), ErrorCode::NoNode);

    let mut t = with_functions(3, &[3]);
    let e = err(
        &mut t,
        PlaceQuery {
            node: Some("w1".into()),
            ..for_function("wc.count", PlacementStrategy::LeastLoaded)
        },
    );
    assert_eq!(
        e.to_string(),
        "node w1 does not register function \"wc.count\" (live nodes that do: w3)"
    );
    assert_eq!(e.code(), ErrorCode::UnknownFunction);
    let ok = t
        .place(
            &PlaceQuery {
                node: Some("w3".into()),
                ..for_function("wc.count", PlacementStrategy::LeastLoaded)
            },
            DEFAULT_STRATEGY,
            &mut rng(),
        )
        .unwrap();
    assert_eq!(ok, vec![id(3)]);

    // Labels on top: w1 zone=a (stock), w2 zone=b (custom), w3 zone=a
    // (custom).
    let mut t = table(3, |n| vec![("zone", if n == 2 { "b" } else { "a" })]);
    for (n, f) in [(1, "builtin.echo"), (2, "wc.count"), (3, "wc.count")] {
        t.set_functions(id(n), [f.to_owned()]);
    }
    let zone_a = PlaceQuery {
        labels: vec![LabelReq::parse("zone=a").unwrap()],
        ..for_function("wc.count", PlacementStrategy::RoundRobin)
    };
    for _ in 0..6 {
        let n = t.place(&zone_a, DEFAULT_STRATEGY, &mut rng()).unwrap();
        assert_eq!(n, vec![id(3)]);
    }
    t.set_functions(id(3), ["builtin.echo".to_owned()]);
    let e = err(&mut t, zone_a.clone());
    assert_eq!(
        e.to_string(),
        "no live node has both function \"wc.count\" and the labels zone=a \
         (live nodes: w1 (lacks \"wc.count\"), w2 (lacks zone=a), w3 (lacks \"wc.count\"))"
    );
    assert_eq!(e.code(), ErrorCode::NoNode);
}

/// A tree root needs every function of its tree on one node:
/// `place_requiring` keeps to the nodes with all of them, and its error
/// says what each node lacks.
#[test]
fn several_functions_are_required_together() {
    let mut t = plain(3);
    t.set_functions(id(1), ["a".to_owned()]);
    t.set_functions(id(2), ["a".to_owned(), "b".to_owned()]);
    t.set_functions(id(3), ["b".to_owned()]);
    let q = query(1, PlacementStrategy::RoundRobin);
    for _ in 0..4 {
        let n = t
            .place_requiring(&q, &["a", "b"], DEFAULT_STRATEGY, &mut rng())
            .unwrap();
        assert_eq!(n, vec![id(2)]);
    }
    t.set_functions(id(2), ["a".to_owned()]);
    let e = t
        .place_requiring(&q, &["a", "b"], DEFAULT_STRATEGY, &mut rng())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "no live node registers all of the functions \"a\", \"b\" \
         (live nodes: w1 (lacks \"b\"), w2 (lacks \"b\"), w3 (lacks \"a\")): \
         start a worker that registers it, or check the spelling"
    );
}

/// A wasm function (either form) is placed only on the nodes that run
/// wasm, by the same water-filling as any function; a native one still
/// needs its registration (running wasm does not register it); with no
/// wasm node the error says so.
#[test]
fn wasm_functions_go_only_to_wasm_nodes() {
    let mut t = plain(3);
    let hash = pool_proto::ModuleHash::of(b"m");
    let mut q = query(4, PlacementStrategy::LeastLoaded);
    q.function = Some(format!("{hash}:run"));
    let e = t.place(&q, DEFAULT_STRATEGY, &mut rng()).unwrap_err();
    assert!(matches!(e, PlaceError::NoWasmNode { .. }), "{e}");
    assert_eq!(e.code(), ErrorCode::NoNode);
    assert!(t.set_wasm(id(2), true) && t.set_wasm(id(3), true));
    let nodes = t.place(&q, DEFAULT_STRATEGY, &mut rng()).unwrap();
    assert_eq!(tally(&nodes), BTreeMap::from([(2, 2), (3, 2)]));
    q.function = Some("app.wasm:run".into());
    let nodes = t.place(&q, DEFAULT_STRATEGY, &mut rng()).unwrap();
    assert!(nodes.iter().all(|&n| n != id(1)), "{nodes:?}");
    q.function = Some("builtin.echo".into());
    let e = t.place(&q, DEFAULT_STRATEGY, &mut rng()).unwrap_err();
    assert!(matches!(e, PlaceError::NoFunction { .. }), "{e}");
}

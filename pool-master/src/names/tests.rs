//! Unit tests of the global-name registry.

use pool_proto::{NodeId, Pid};

use super::*;

fn pid(node: u64, serial: u64) -> Pid {
    Pid::new(NodeId::from_u64(node), serial)
}

/// A taken name is refused, even to the pid holding it, as OTP's `global`
/// answers `no`.
#[test]
fn taken_name_is_refused() {
    let mut n = GlobalNames::default();
    assert!(n.register("a", pid(1, 1)));
    assert!(!n.register("a", pid(1, 2)));
    assert!(!n.register("a", pid(1, 1)));
    assert_eq!(n.whereis("a"), Some(pid(1, 1)));
}

/// A pid holds at most one name.
#[test]
fn one_name_per_pid() {
    let mut n = GlobalNames::default();
    assert!(n.register("a", pid(1, 1)));
    assert!(!n.register("b", pid(1, 1)));
    n.unregister("a");
    assert!(n.register("b", pid(1, 1)));
}

/// A release by an old holder leaves a newer holder alone.
#[test]
fn release_only_by_the_holder() {
    let mut n = GlobalNames::default();
    assert!(n.register("a", pid(1, 1)));
    assert!(!n.release("a", pid(1, 2)));
    assert!(n.release("a", pid(1, 1)));
    assert!(n.is_empty());
    assert!(n.register("x", pid(1, 1)), "the pid is free again");
}

/// Names die with their node, and only that node's.
#[test]
fn names_die_with_their_node() {
    let mut n = GlobalNames::default();
    n.register("a", pid(1, 1));
    n.register("b", pid(2, 1));
    n.register("c", pid(1, 2));
    let gone = n.remove_node(NodeId::from_u64(1));
    assert_eq!(gone.len(), 2);
    assert_eq!(n.all().into_keys().collect::<Vec<_>>(), vec!["b"]);
    assert!(n.register("a", pid(3, 1)));
}

/// A rejoining node keeps its own names, gets free ones back and loses the
/// ones another process took meanwhile.
#[test]
fn reclaim_on_rejoin() {
    let mut n = GlobalNames::default();
    n.register("kept", pid(1, 1));
    n.register("taken", pid(2, 9));
    assert_eq!(n.reclaim("kept", pid(1, 1)), Reclaim::Kept);
    assert_eq!(n.reclaim("free", pid(1, 2)), Reclaim::Registered);
    assert_eq!(n.reclaim("taken", pid(1, 3)), Reclaim::Lost);
    assert_eq!(n.len(), 3);
}

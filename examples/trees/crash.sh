#!/usr/bin/env bash
# Crashes a child of each strategy's example tree and shows what was
# restarted (a local runtime, no pool needed):
#
#   examples/trees/crash.sh                 # all four strategies
#   examples/trees/crash.sh rest_for_one    # one of them
#
# one_for_one restarts only the crashed child; one_for_all restarts them
# all; rest_for_one restarts the crashed child and those started after it;
# simple_one_for_one restarts only the crashed one of its dynamic children.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --quiet -p pool-examples --example tree_crash
run() { ./target/debug/examples/tree_crash "examples/trees/$1.toml" "$2"; echo; }

case "${1:-all}" in
  all)
    run one_for_one b
    run one_for_all b
    run rest_for_one b
    run simple_one_for_one 2
    ;;
  simple_one_for_one) run simple_one_for_one 2 ;;
  one_for_one | one_for_all | rest_for_one) run "$1" b ;;
  *) echo "unknown strategy $1: one_for_one, one_for_all, rest_for_one or simple_one_for_one" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# bench/engine/run.sh [quick] - the engine figures of DESIGN §7, one line
# each. Expects a built tree (the caller ran lash_setup); `quick` uses small
# sizes for a smoke run. LASH_BENCH_VERBOSE=1 adds notes on stderr.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR/../..
# shellcheck source=scripts/setup
source "$here/../../scripts/setup"
set +e
lash_lua_env

if [ "${1:-}" = quick ]; then
  drain_n=10000 roundtrip_n=200 signal_n=200 parked_n=10000 worklist_n=100000 xproc_n=5 recovery_n=3
else
  drain_n=100000 roundtrip_n=2000 signal_n=1000 parked_n=100000 worklist_n=1000000 xproc_n=20 recovery_n=20
fi
# Durable execution (issue 9): steps, replay, suspended processes.
if [ "${1:-}" = quick ]; then
  steps_n=5000 commits_n=500 replay_n=50 susp_xproc_n=20 suspended_n=10000
else
  steps_n=50000 commits_n=2000 replay_n=200 susp_xproc_n=200 suspended_n=100000
fi
[ "${LASH_BENCH_FULL:-}" = 1 ] && suspended_n=1000000

# A figure that hangs is stopped after LASH_BENCH_TIMEOUT seconds.
limit=${LASH_BENCH_TIMEOUT:-1200}
rc=0
figure() { # figure NAME SCRIPT ARG
  local name=$1 script=$2 n=$3
  if ! timeout -k 10 "$limit" lua5.4 "$here/$script" "$n"; then
    echo "$name  FAILED (lua5.4 bench/engine/$script $n)"
    rc=1
  fi
}

figure "engine drain" drain.lua "$drain_n"
figure "engine await round trip" roundtrip.lua "$roundtrip_n"
figure "engine signal -> resume" signal.lua "$signal_n"
figure "engine signal from another process" signal_xproc.lua "$xproc_n"
figure "engine parked bodies" parked.lua "$parked_n"
figure "engine drive pass" worklist.lua "$worklist_n"
figure "engine kill -9 recovery" recovery.lua "$recovery_n"
figure "engine 3-step bodies" steps.lua "$steps_n"
figure "engine commits of a 20-step body" step_commits.lua "$commits_n"
figure "engine replay of a 100-command journal" replay.lua "$replay_n"
figure "engine signal -> suspended process resumed in another worker" suspended_xproc.lua "$susp_xproc_n"
figure "engine suspended processes" suspended.lua "$suspended_n"
# Issue 13 (retry): delayed rows all due at once, beside a plain drain.
figure "engine delayed rows due at once" delayed.lua "$drain_n"
# Looking without slowing (issue 14): the drain with lash top and the UI.
figure "engine drain with lash top and the UI polled" observed.lua "$drain_n"
exit $rc

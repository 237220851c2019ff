#!/usr/bin/env bash
# `oneadapt compare --nats` on a joint config (docs/joint.md, docs/deployment.md "Distributed
# compare"): this test starts its own nats-server on a free loopback port and two
# `oneadapt serve --jobs-dir ROOT`, then runs each joint comparison in one process and as jobs on
# the servers (each stream's grid dealt out, each policy's run on each scaled link a job): the
# tables (joint-compare.md/.csv, joint-accuracy.csv, joint-frontier.csv,
# joint-frontier-verdicts.csv) and every run's joint.jsonl must be byte for byte equal. Two
# comparisons: the synthetic two-spots fixture (every policy) and two real streams (speech with
# Silero VAD, a recurrent task; LiDAR with point segmentation). Then an input that is a URL, a
# budget trace, a model and a config outside a server's --jobs-dir are refused with one line each. Exit 77 (skipped) when no nats-server
# is installed.
# Usage: compare_joint_nats.sh ONEADAPT ROOT (the source tree) SHIFT_PLUGIN_DIR
set -u
oa=$1 root=$2 shift_dir=$3
. "$(dirname "$0")/nats_env.sh"
FAIL_TAIL=15
nats_env oneadapt-jointnats
cd "$root" || fail "no $root"

# serve ID JOBS_DIR: a server that runs compare jobs (the synthetic fixture's plugins loaded), one
# thread each (they share the cores).
serve() {
  OMP_NUM_THREADS=1 "$oa" --plugin-dir "$shift_dir" serve --nats "$url" --auth "$auth" --id "$1" \
    --jobs-dir "$2" >"$dir/serve-$1.log" 2>&1 &
  pids+=($!)
  eval "pid_$1=$!"
  for _ in $(seq 100); do grep -q "serving on" "$dir/serve-$1.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "serving on" "$dir/serve-$1.log" || fail "server $1 did not start"
}
serve w1 "$root"
serve w2 "$root"

# compare NAME ARGS...: in one process, then as jobs; the tables and every run's joint.jsonl equal.
compare() {
  local name=$1
  shift
  "$oa" --plugin-dir "$shift_dir" compare "$@" --out "$dir/$name-local" >"$dir/$name-local.log" 2>&1 ||
    fail "$name: in-process compare exited with $?"
  "$oa" --plugin-dir "$shift_dir" compare "$@" --out "$dir/$name-jobs" --nats "$url" --auth "$auth" \
    --grid-jobs 2 >"$dir/$name-jobs.log" 2>&1 || fail "$name: distributed compare exited with $?"
  local files=(joint-compare.md joint-compare.csv joint-accuracy.csv joint-frontier.csv
    joint-frontier-verdicts.csv)
  local runs
  runs=$(cd "$dir/$name-local" && find . -name joint.jsonl | sort)
  [ -n "$runs" ] || fail "$name: no run in one process"
  [ "$runs" = "$(cd "$dir/$name-jobs" && find . -name joint.jsonl | sort)" ] ||
    fail "$name: the runs differ between one process and the servers"
  for f in "${files[@]}" $runs; do
    cmp -s "$dir/$name-local/$f" "$dir/$name-jobs/$f" ||
      fail "$name: $f differs between one process and the servers"
  done
  grep -q "grid 2/2" "$dir/$name-jobs.log" || fail "$name: a stream's grid was not dealt out"
  echo "$name: tables and $(echo "$runs" | wc -l) runs equal ($(grep -c '\] .* done on' "$dir/$name-jobs.log") jobs on $(sed -n 's/.*done on \(w[0-9]*\).*/\1/p' "$dir/$name-jobs.log" | sort -u | wc -l) servers)"
}
compare spots --config tests/fixtures/joint/two-spots.toml
compare real --config tests/fixtures/joint/real-short.toml \
  --policies oneadapt-joint,equal-split,equal-split-awstream,best-static-split --split-scales 2
grep -q '"servers"' "$dir/real-jobs/jobs.json" || fail "real: no jobs.json"

# refused NAME WANT COMMAND...: the command exits 1 with exactly one error line, matching WANT.
refused() {
  local name=$1 want=$2 rc line
  shift 2
  "$@" >"$dir/$name.log" 2>&1
  rc=$?
  [ "$rc" = 1 ] || fail "$name: exit $rc, expected 1"
  line=$(grep "^oneadapt: error:" "$dir/$name.log")
  echo "$line" | grep -q "$want" || fail "$name: '$line'"
  [ "$(grep -c . <<<"$line")" = 1 ] || fail "$name: more than one error line"
  echo "$name: $line"
}
video_job=(compare -c configs/video-detection.toml --max-intervals 1 --policies oneadapt
  --grid resolution=1,0.5 --grid qp=30 --grid fps=10 --backward-weight 1 --nats "$url"
  --auth "$auth")

# An input that is a URL (here a libavfilter source the coordinator can open) is never opened by
# a server: one line naming it.
refused url "server w[12], job grid .*lavfi:testsrc2=size=160x120:rate=10: input not under this server's --jobs-dir" \
  "$oa" "${video_job[@]}" --input 'lavfi:testsrc2=size=160x120:rate=10' --out "$dir/url"

# A budget trace outside the servers' --jobs-dir (a config may name any file, and a server would
# echo a malformed line back) is never read by a server: one line naming it, for a single-stream
# and a joint comparison.
printf 't_seconds,kbps\n0,400\n' >"$dir/outside-trace.csv"
refused trace1 "server w[12], job grid .*outside-trace.csv: budget.trace not under this server's --jobs-dir" \
  "$oa" "${video_job[@]}" --budget-trace "$dir/outside-trace.csv" --out "$dir/trace1"
# So is a model named by the config ([task.models]), refused before it is loaded.
cache=${ONEADAPT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/oneadapt}
cp -r "$cache/nanodet" "$dir/nanodet" || fail "no NanoDet in $cache"
refused model "server w[12], job grid .*nanodet.json: task.models.detector not under this server's --jobs-dir" \
  "$oa" "${video_job[@]}" --set "task.models.detector=\"$dir/nanodet/nanodet.json\"" --out "$dir/model"
refused trace2 "server w[12], job .*outside-trace.csv: joint.trace not under this server's --jobs-dir" \
  "$oa" --plugin-dir "$shift_dir" compare --config tests/fixtures/joint/two-spots.toml \
  --budget-trace "$dir/outside-trace.csv" --out "$dir/trace2" --nats "$url" --auth "$auth"

# A server whose --jobs-dir holds the comparison's working directory but not its config refuses
# the job: one line naming the config.
kill -TERM "$pid_w1" "$pid_w2"
wait "$pid_w1" "$pid_w2" 2>/dev/null
serve w3 "$dir"
cd "$dir" || fail "no $dir"
refused outside "server w3, job bright grid 1/[0-9]* .*two-spots.toml: not under this server's --jobs-dir" \
  "$oa" --plugin-dir "$shift_dir" compare --config "$root/tests/fixtures/joint/two-spots.toml" \
  --out "$dir/outside" --nats "$url" --auth "$auth"
echo PASS

#!/usr/bin/env bash
# `oneadapt compare --nats` on loopback (docs/deployment.md, "Distributed compare"): this test
# starts its own nats-server on a free loopback port with a user and password and two
# `oneadapt serve --jobs-dir ROOT`, then runs each comparison in one process and as jobs on the
# servers; compare.csv, compare.md, savings.csv and frontier.csv (budget-summary.csv and each
# trace's compare.md under budgets) must be byte for byte equal. The video comparison loses a
# server mid-run (SIGKILL as it takes a OneAdapt run): its job is handed out again. Then: with no
# server that runs jobs, one line naming the URL; a server whose --jobs-dir does not hold the
# config refuses the job with one line. One server authenticates with a user and password, the
# other with an nkey seed. Exit 77 (skipped) when no nats-server is installed.
# Usage: compare_nats.sh ONEADAPT ROOT (the source tree: configs/ under it)
set -u
oa=$1 root=$2
. "$(dirname "$0")/nats_env.sh"
FAIL_TAIL=15
nats_env oneadapt-cmpnats '{ nkey: "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4" }'
# The user nkey of the NATS documentation's example (its seed; the server knows the public key).
printf 'SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY\n' >"$dir/nkey" && chmod 600 "$dir/nkey"
cd "$root" || fail "no $root"

# serve ID JOBS_DIR [AUTH]: a server that runs compare jobs, one thread each (they share the
# cores).
serve() {
  OMP_NUM_THREADS=1 "$oa" serve --nats "$url" --auth "${3:-$dir/auth}" --id "$1" --jobs-dir "$2" \
    >"$dir/serve-$1.log" 2>&1 &
  pids+=($!)
  eval "pid_$1=$!"
  for _ in $(seq 100); do grep -q "serving on" "$dir/serve-$1.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "serving on" "$dir/serve-$1.log" || fail "server $1 did not start"
}
serve w1 "$root"
serve w2 "$root" "$dir/nkey"  # authenticated by an nkey seed

# same NAME FILE...: the two comparisons' files are equal.
same() {
  local name=$1
  shift
  for f in "$@"; do
    cmp -s "$dir/$name-local/$f" "$dir/$name-jobs/$f" || fail "$name: $f differs between one process and the servers"
  done
  echo "$name: $* equal ($(grep -c '\] .* done on' "$dir/$name-jobs.log") jobs on $(sed -n 's/.*done on \(w[0-9]*\).*/\1/p' "$dir/$name-jobs.log" | sort -u | wc -l) servers)"
}
# compare NAME ARGS...: in one process, then as jobs.
compare() {
  local name=$1
  shift
  "$oa" compare "$@" --out "$dir/$name-local" >"$dir/$name-local.log" 2>&1 || fail "$name: in-process compare exited with $?"
  "$oa" compare "$@" --out "$dir/$name-jobs" --nats "$url" --auth "$dir/auth" >"$dir/$name-jobs.log" 2>&1 || fail "$name: distributed compare exited with $?"
}

grep -q "serving on" "$dir/serve-w2.log" && echo "nkey: w2 authenticated by its nkey seed"
# Video (2 intervals, every policy with a point kind): w1 is killed as it takes a OneAdapt run.
video=(-c configs/video-detection.toml --max-intervals 2 --policies
  oneadapt,static,awstream,chameleon,reducto,best-static,oracle,oracle-split --betas 0.1,1
  --targets 0.9 --grid resolution=1,0.5 --grid qp=30 --grid fps=10 --profile-every 2
  --backward-weight 1)
"$oa" compare "${video[@]}" --out "$dir/video-local" >"$dir/video-local.log" 2>&1 || fail "video: in-process compare exited with $?"
"$oa" compare "${video[@]}" --out "$dir/video-jobs" --nats "$url" --auth "$dir/auth" >"$dir/video-jobs.log" 2>&1 &
cmp_pid=$!
for _ in $(seq 1200); do grep -q "oneadapt-beta[0-9.]* to w1" "$dir/video-jobs.log" && break; sleep 0.05; done
grep -q "oneadapt-beta[0-9.]* to w1" "$dir/video-jobs.log" || fail "w1 never took a OneAdapt run"
kill -KILL "$pid_w1"
wait "$cmp_pid" || fail "video: the distributed compare did not survive the loss of w1"
grep -q "server w1 is gone; handed out again" "$dir/video-jobs.log" || fail "video: w1's job was not handed out again"
same video compare.csv compare.md savings.csv frontier.csv
echo "video: w1 killed mid-job, its run handed out again to w2"
serve w1 "$root"

# roi-hindsight reads OneAdapt's runs: it runs in a second wave.
compare spatial -c configs/video-detection.toml --set modality.params.roi_tile=64 --max-intervals 2 \
  --policies oneadapt,roi-static,roi-hindsight --betas 0.3 --grid crf=18,33 --grid resolution=1 \
  --grid fps=10 --backward-weight 1
same spatial compare.csv compare.md savings.csv frontier.csv

# Budgets: every budget-aware policy on two traces, each in its own folder.
compare budget -c configs/audio-vad.toml --max-intervals 8 --warmup 2 \
  --policies oneadapt,awstream,chameleon,best-static,oracle --grid sample_rate=16000,8000 \
  --grid bits=16,8 --grid codec=flac --backward-weight 1 \
  --set 'compare.budget_traces=["configs/budgets/audio-step.csv","configs/budgets/audio-constant.csv"]'
same budget budget-summary.csv audio-step/compare.md audio-constant/compare.md

# No server that runs jobs: one line naming the URL.
kill -TERM "$pid_w1" "$pid_w2"
wait "$pid_w1" "$pid_w2" 2>/dev/null
"$oa" compare -c configs/audio-vad.toml --max-intervals 2 --policies oneadapt --grid bits=16 \
  --grid codec=flac --out "$dir/none" --nats "$url" --auth "$dir/auth" --timeout 2 >"$dir/none.log" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "no job server: exit $rc, expected 1"
line=$(grep "^oneadapt: error:" "$dir/none.log")
echo "$line" | grep -q "$url: no server took a job of this comparison within 2 s" || fail "no job server: '$line'"
echo "no job server: $line"

# A server whose --jobs-dir does not hold the config refuses the job: one line.
mkdir -p "$dir/elsewhere"
serve w3 "$dir/elsewhere"
"$oa" compare -c configs/audio-vad.toml --max-intervals 2 --policies oneadapt --grid bits=16 \
  --grid codec=flac --out "$dir/outside" --nats "$url" --auth "$dir/auth" >"$dir/outside.log" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "outside --jobs-dir: exit $rc, expected 1"
line=$(grep "^oneadapt: error:" "$dir/outside.log")
echo "$line" | grep -q "server w3, job grid 1/[0-9]* .*is not under this server's --jobs-dir" || fail "outside --jobs-dir: '$line'"
echo "outside --jobs-dir: $line"
echo PASS

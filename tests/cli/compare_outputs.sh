#!/usr/bin/env bash
# oneadapt compare on 2 intervals of real video with a 2-configuration grid: every policy's
# records, compare.csv (a row per policy and beta), compare.md and the PNG plots are written.
# Usage: compare_outputs.sh ONEADAPT CONFIG WORKDIR
set -eu
oa=$1 config=$2 work=$3
rm -rf "$work/compare"
"$oa" compare -c "$config" --max-intervals 2 --policies oneadapt,static,awstream,chameleon,reducto,best-static,oracle,oracle-split \
  --betas 0.1,1 --targets 0.8,0.9 --grid resolution=1,0.5 --grid qp=30 --grid fps=10 --profile-every 2 --out "$work/compare"
csv="$work/compare/compare.csv"
echo "csv rows: $(($(grep -c '' "$csv") - 1))"
head -1 "$csv"
for p in oneadapt-beta0.1 static awstream-beta1 chameleon-beta0.1 reducto-target0.9 oracle-split-beta0.1; do
  test -s "$work/compare/$p/records.jsonl" && test -s "$work/compare/$p/summary.json" && echo "records: $p"
done
test -s "$work/compare/compare.md" && echo "compare.md written"
echo "frontier: $(head -1 "$work/compare/frontier.csv") rows $(($(grep -c '' "$work/compare/frontier.csv") - 1)) hull $(grep -c ',1$' "$work/compare/frontier.csv")"
echo "savings: $(head -1 "$work/compare/savings.csv")"
"$(dirname "$0")/valid_png.sh" "$work/compare" tradeoff trajectories accgrad

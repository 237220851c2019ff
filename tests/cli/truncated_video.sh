#!/usr/bin/env bash
# A video cut at about 4 % (3 s): `oneadapt run` must keep the records of every completed
# interval, print one error line, and exit non-zero (with the run's exit code).
# Usage: truncated_video.sh ONEADAPT CONFIG VTEST WORKDIR
set -u
oa=$1 config=$2 vtest=$3 work=$4
mkdir -p "$work" && rm -rf "$work/truncated"
head -c 330000 "$vtest" >"$work/truncated.avi"
"$oa" run -c "$config" --input "$work/truncated.avi" --max-intervals 0 --out "$work/truncated"
rc=$?
echo "records: $(grep -c '' "$work/truncated/records.jsonl")"
echo "summary status: $(grep -o '"status": "[a-z]*"' "$work/truncated/summary.json")"
exit $rc

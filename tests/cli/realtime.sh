#!/usr/bin/env bash
# `oneadapt run --realtime` paces a file as if it were live: N intervals take at least their
# length in wall time, every record has lag_ms and late, summary.json counts the late ones.
# Usage: realtime.sh ONEADAPT CONFIG INTERVALS WORKDIR
set -eu
oa=$1 cfg=$2 n=$3 work=$4
rm -rf "$work/realtime"
"$oa" run -c "$cfg" --max-intervals "$n" --realtime --out "$work/realtime" >"$work/realtime.out" 2>/dev/null
grep "^real time:" "$work/realtime.out"
python3 - "$work/realtime" "$n" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
recs = [json.loads(l) for l in open(f"{d}/records.jsonl")]
s = json.load(open(f"{d}/summary.json"))
assert len(recs) == n, len(recs)
assert all(r["lag_ms"] >= 0 and isinstance(r["late"], bool) for r in recs)
media = sum(r["duration"] for r in recs)
assert s["wall_s"] >= media - 0.05, (s["wall_s"], media)
assert s["realtime"]["intervals_late"] == sum(r["late"] for r in recs)
print(f"paced: {n} intervals of {media:.2f} s of media took {s['wall_s']:.2f} s, "
      f"{s['realtime']['intervals_late']} late")
PY

#!/usr/bin/env bash
# The video source opens capture devices through libavdevice (docs/deployment.md, "Live
# inputs"): the clip replayed through the lavfi device (`lavfi:movie=CLIP`, the path a camera's
# frames take: a device's raw frames, no container) gives the same records as the file itself;
# a generated stream (`lavfi:testsrc2=...`) runs as a live source.
# Usage: capture_lavfi.sh ONEADAPT CONFIG CLIP WORKDIR
set -u
oa=$1 cfg=$2 clip=$3 work=$4
rm -rf "$work/capture" && mkdir -p "$work/capture"
common=(--max-intervals 2 --set policy.backward_weight=1)
"$oa" run -c "$cfg" --input "$clip" "${common[@]}" --out "$work/capture/file" >/dev/null 2>&1 || { echo "FAIL: file run"; exit 1; }
"$oa" run -c "$cfg" --input "lavfi:movie=$clip" "${common[@]}" --out "$work/capture/movie" \
  >/dev/null 2>"$work/capture/movie.log" || { echo "FAIL: lavfi:movie run"; tail -3 "$work/capture/movie.log"; exit 1; }
"$oa" run -c "$cfg" --input "lavfi:testsrc2=size=320x240:rate=10" "${common[@]}" \
  --out "$work/capture/testsrc" >/dev/null 2>"$work/capture/testsrc.log" || { echo "FAIL: lavfi:testsrc2 run"; tail -3 "$work/capture/testsrc.log"; exit 1; }
python3 - "$work/capture" <<'PY'
import json, sys
d = sys.argv[1]
rows = lambda k: [json.loads(l) for l in open(f"{d}/{k}/records.jsonl")]
f, m, t = rows("file"), rows("movie"), rows("testsrc")
assert len(f) == len(m) == 2, (len(f), len(m))
for x, y in zip(f, m):
    for q in ("config", "accuracy", "charges", "bytes"):
        assert x[q] == y[q], (x["interval"], q, x[q], y[q])
assert len(t) == 2 and all(r["bytes"] > 0 for r in t), t
print("capture: lavfi:movie= gives the file's records (2 intervals), lavfi:testsrc2 runs live")
PY

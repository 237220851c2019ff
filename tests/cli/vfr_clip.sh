#!/usr/bin/env bash
# A variable-frame-rate clip (make_vfr_clip: frames 1 to 4 periods apart, 6 s) must play to its
# end: prints the number of records and the last interval's start and reference frame count.
# Usage: vfr_clip.sh MAKE_VFR_CLIP ONEADAPT CONFIG WORKDIR EXT
set -eu
make_clip=$1 oa=$2 config=$3 work=$4 ext=$5
mkdir -p "$work" && rm -rf "$work/vfr-$ext"
"$make_clip" "$work/vfr.$ext" 6
"$oa" run -c "$config" --input "$work/vfr.$ext" --policy static --max-intervals 0 --out "$work/vfr-$ext" >/dev/null
echo "records: $(grep -c '' "$work/vfr-$ext/records.jsonl")"
tail -1 "$work/vfr-$ext/records.jsonl" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("t_start", int(r["t_start"]), "frames", int(r["frames_ref"]))'

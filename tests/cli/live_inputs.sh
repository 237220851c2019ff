#!/usr/bin/env bash
# The video source reads FFmpeg URLs as live streams (docs/deployment.md, "Live inputs"): a clip
# piped to standard input (pipe:0) and the same clip over HTTP (a python3 http.server this test
# starts on a free loopback port) give the same records as the file itself.
# Usage: live_inputs.sh ONEADAPT CONFIG CLIP WORKDIR
set -u
oa=$1 cfg=$2 clip=$3 work=$4
rm -rf "$work/live" && mkdir -p "$work/live"
common=(--max-intervals 3 --set policy.backward_weight=1)
"$oa" run -c "$cfg" --input "$clip" "${common[@]}" --out "$work/live/file" >/dev/null 2>&1 || { echo "FAIL: file run"; exit 1; }
"$oa" run -c "$cfg" --input pipe:0 "${common[@]}" --out "$work/live/pipe" <"$clip" >/dev/null 2>"$work/live/pipe.log" || { echo "FAIL: pipe run"; tail -3 "$work/live/pipe.log"; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$(dirname "$clip")" && exec python3 -m http.server "$port" --bind 127.0.0.1) >"$work/live/http.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$port/$(basename "$clip")"
"$oa" run -c "$cfg" --input "$url" "${common[@]}" --out "$work/live/http" >/dev/null 2>"$work/live/http-run.log" || { echo "FAIL: http run"; tail -3 "$work/live/http-run.log"; exit 1; }
python3 - "$work/live" <<'PY'
import json, sys
d = sys.argv[1]
rows = lambda k: [json.loads(l) for l in open(f"{d}/{k}/records.jsonl")]
f = rows("file")
for k in ("pipe", "http"):
    r = rows(k)
    assert len(r) == len(f) == 3, (k, len(r))
    assert all(x[q] == y[q] for x, y in zip(f, r) for q in ("config", "accuracy", "charges")), k
print("live inputs: pipe:0 and http:// give the file's records (3 intervals)")
PY

#!/usr/bin/env bash
# Cross-stream batching on loopback (docs/deployment.md, "Batching across streams"): this test
# starts its own nats-server on a free loopback port, one `oneadapt serve --max-batch 8`, and
# STREAMS sources of one config at once (streams of one task and model: their inferences share
# passes), each starting at another interval of the input. The server must have answered some
# calls in shared passes, and every source's records must equal the in-process run on the same
# excerpt: configuration and bytes exactly, accuracy and proxy to float rounding (a shared pass
# sums its matrix products in another order). Exit 77 (skipped) when no nats-server is installed.
# Usage: split_batching.sh ONEADAPT CONFIG INTERVALS URI [URI...]
set -u
oa=$1 cfg=$2 n=$3
shift 3
uris=("$@")
streams=${#uris[@]}
. "$(dirname "$0")/nats_env.sh"
nats_env oneadapt-batch

"$oa" serve --nats "$url" --auth "$dir/auth" --id srv1 --max-batch 8 --max-streams "$streams" \
  >"$dir/serve.log" 2>&1 &
serve=$!
pids+=($serve)
for _ in $(seq 100); do grep -q "serving on" "$dir/serve.log" 2>/dev/null && break; sleep 0.1; done
grep -q "serving on" "$dir/serve.log" || fail "oneadapt serve did not start"

common=(--max-intervals "$n" --set policy.backward_weight=1)
src=()
for i in $(seq "$streams"); do
  "$oa" source -c "$cfg" --nats "$url" --auth "$dir/auth" --stream "s$i" --timeout 300 \
    --set "input.uri=${uris[$((i - 1))]}" "${common[@]}" --out "$dir/source-$i" \
    >"$dir/source-$i.log" 2>&1 &
  src+=($!)
done
wait_sources "${src[@]}"
wait "$serve" || fail "the server exited with $?"
for i in $(seq "$streams"); do
  "$oa" run -c "$cfg" --set "input.uri=${uris[$((i - 1))]}" "${common[@]}" --out "$dir/run-$i" \
    >"$dir/run-$i.log" 2>&1 || fail "run $i"
done
python3 - "$dir" "$streams" <<'PY' || fail "batched records"
import json, math, os, re, sys
d, streams = sys.argv[1], int(sys.argv[2])
log = open(os.path.join(d, "serve.log")).read()
status = json.loads(re.search(r"stops: (\{.*\})", log).group(1))
assert status["batched_calls"] > 0, f"no call was answered in a shared pass: {status}"
for i in range(1, streams + 1):
    rows = lambda f: [json.loads(l) for l in open(os.path.join(d, f, "records.jsonl"))]
    a, b = rows(f"run-{i}"), rows(f"source-{i}")
    assert len(a) == len(b) > 0, f"stream {i}: {len(a)} intervals in one process, {len(b)} over the split"
    for x, y in zip(a, b):
        for k in ("config", "bytes", "bytes_ref", "charges"):
            assert x.get(k) == y.get(k), f"stream {i} interval {x['interval']}: {k} {x.get(k)} != {y.get(k)}"
        for k in ("accuracy", "proxy"):
            assert math.isclose(x[k], y[k], rel_tol=1e-4, abs_tol=1e-6), \
                f"stream {i} interval {x['interval']}: {k} {x[k]} != {y[k]}"
print(f"{streams} streams on one server: {status['batched_calls']} of {status['calls']} calls "
      f"answered in {status['batches']} shared passes; every stream's records equal to one process")
PY
echo "PASS"

#!/usr/bin/env node
// Runs any ONNX model once in onnxruntime (onnxruntime-node, CPU) on inputs given as raw
// float32/int64 files, and writes every output as raw float32: golden outputs for the engine.
// Usage: node tools/ort-run.cjs MODEL_ONNX OUT_DIR NAME:TYPE:D1xD2x...:FILE [...]
//   TYPE float32 or int64; OUT_DIR receives out_<k>.f32 in the model's output order.
// onnxruntime-node is loaded from $ONEADAPT_ORT_DIR/node_modules (tools/fetch-assets ort).
'use strict';
const fs = require('fs');
const path = require('path');
const [modelPath, outDir, ...specs] = process.argv.slice(2);
if (!modelPath || !outDir || specs.length === 0) {
  console.error('usage: ort-run.cjs MODEL_ONNX OUT_DIR NAME:TYPE:D1xD2:FILE ...');
  process.exit(2);
}
const ort = require(path.join(process.env.ONEADAPT_ORT_DIR || '.', 'node_modules', 'onnxruntime-node'));
async function main() {
  const session = await ort.InferenceSession.create(modelPath, { logSeverityLevel: 3, intraOpNumThreads: 1 });
  const feeds = {};
  for (const spec of specs) {
    const [name, type, dims, file] = spec.split(':');
    const shape = dims === '' ? [] : dims.split('x').map(Number);
    const raw = fs.readFileSync(file);
    const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
    feeds[name] = new ort.Tensor(type, type === 'int64' ? new BigInt64Array(buf) : new Float32Array(buf), shape);
  }
  const out = await session.run(feeds);
  fs.mkdirSync(outDir, { recursive: true });
  session.outputNames.forEach((name, k) => {
    const data = Float32Array.from(out[name].data, Number);
    fs.writeFileSync(path.join(outDir, `out_${k}.f32`), Buffer.from(data.buffer));
  });
}
main().catch((e) => { console.error(`ort-run: ${e.message}`); process.exit(1); });

#!/usr/bin/env node
// Runs a TensorFlow.js graph model in TensorFlow.js itself (CPU backend): the independent
// runtime that the engine's importer is checked against (golden outputs) and timed against.
//
// Usage: node tools/tfjs-run.cjs MODEL_JSON INPUT_F32 OUT_DIR [REPEAT]
//   INPUT_F32  raw little-endian float32, the model's single input in its declared shape
//   OUT_DIR    receives out_<k>.f32 per output (outputs in natural name order, as the engine
//              orders them) and outputs.json ({name, shape} each, plus the median time)
//   REPEAT     run the model this many times after one warm-up and report the median ms
// TensorFlow.js is loaded from $ONEADAPT_TFJS_DIR/node_modules (tools/fetch-assets tfjs).
'use strict';
const fs = require('fs');
const path = require('path');

const [modelJson, inputFile, outDir, repeatArg] = process.argv.slice(2);
if (!modelJson || !inputFile || !outDir) {
  console.error('usage: tfjs-run.cjs MODEL_JSON INPUT_F32 OUT_DIR [REPEAT]');
  process.exit(2);
}
const tfjsDir = process.env.ONEADAPT_TFJS_DIR;
if (!tfjsDir) { console.error('tfjs-run: ONEADAPT_TFJS_DIR is not set'); process.exit(2); }
const tf = require(path.join(tfjsDir, 'node_modules', '@tensorflow', 'tfjs'));

// Names with embedded numbers compare by value ("Identity_2" < "Identity_10"); other
// characters by code unit. The same order as the engine's natural_compare().
function natural(a, b) {
  let i = 0, j = 0;
  const digit = (c) => c >= '0' && c <= '9';
  while (i < a.length && j < b.length) {
    if (digit(a[i]) && digit(b[j])) {
      let ie = i, je = j;
      while (ie < a.length && digit(a[ie])) ie++;
      while (je < b.length && digit(b[je])) je++;
      const x = Number(a.slice(i, ie)), y = Number(b.slice(j, je));
      if (x !== y) return x < y ? -1 : 1;
      i = ie; j = je;
    } else {
      if (a[i] !== b[j]) return a[i] < b[j] ? -1 : 1;
      i++; j++;
    }
  }
  return (a.length - i) - (b.length - j);
}

async function main() {
  await tf.setBackend('cpu');
  const doc = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const dir = path.dirname(modelJson);
  const weightSpecs = doc.weightsManifest.flatMap((g) => g.weights);
  const buffers = doc.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p))));
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const handler = tf.io.fromMemory({ modelTopology: doc.modelTopology, signature: doc.signature,
                                     format: doc.format, weightSpecs, weightData });
  const model = await tf.loadGraphModel(handler);

  const [inputKey, inputSig] = Object.entries(doc.signature.inputs)[0];
  const shape = inputSig.tensorShape.dim.map((d) => Number(d.size));
  const raw = fs.readFileSync(inputFile);
  const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const expected = shape.reduce((a, b) => a * b, 1);
  if (data.length !== expected) throw new Error(`${inputFile}: ${data.length} floats, the input needs ${expected}`);
  const x = tf.tensor(data, shape, 'float32');
  const outputNames = Object.keys(doc.signature.outputs).sort(natural);
  const feed = { [inputSig.name || inputKey]: x };

  const run = () => model.execute(feed, outputNames);
  let outputs = run();
  const times = [];
  const repeat = Number(repeatArg || 0);
  for (let i = 0; i < repeat; i++) {
    tf.dispose(outputs);
    const t0 = process.hrtime.bigint();
    outputs = run();
    await Promise.all(outputs.map((o) => o.data()));
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  fs.mkdirSync(outDir, { recursive: true });
  const meta = [];
  for (let k = 0; k < outputs.length; k++) {
    const values = await outputs[k].data();
    fs.writeFileSync(path.join(outDir, `out_${k}.f32`), Buffer.from(new Float32Array(values).buffer));
    meta.push({ name: outputNames[k], shape: outputs[k].shape });
  }
  times.sort((a, b) => a - b);
  const median = times.length ? times[Math.floor(times.length / 2)] : null;
  fs.writeFileSync(path.join(outDir, 'outputs.json'), JSON.stringify({ outputs: meta, median_ms: median }));
  if (median !== null) console.log(`tfjs median ${median.toFixed(1)} ms over ${times.length} runs`);
}

main().catch((e) => { console.error(`tfjs-run: ${e.message}`); process.exit(1); });

#!/usr/bin/env node
// Runs Silero VAD v5 in onnxruntime (onnxruntime-node, CPU), streaming: 512-sample chunks at
// 16 kHz, each preceded by the previous 64 samples of context (zeros at the start), the
// recurrent state carried from chunk to chunk. The independent runtime that the engine's ONNX
// importer is checked against (golden outputs) and timed against.
//
// Usage: node tools/ort-run-silero.cjs MODEL_ONNX SAMPLES_F32 OUT_F32 [REPEAT [THREADS]]
//   SAMPLES_F32  raw little-endian float32 samples at 16 kHz in [-1, 1]
//   OUT_F32      the speech probability of every chunk, float32
//   REPEAT       run the whole stream this many more times and print the median per chunk
// onnxruntime-node is loaded from $ONEADAPT_ORT_DIR/node_modules (tools/fetch-assets ort).
'use strict';
const fs = require('fs');
const path = require('path');

const [modelPath, samplesFile, outFile, repeatArg, threadsArg] = process.argv.slice(2);
if (!modelPath || !samplesFile || !outFile) {
  console.error('usage: ort-run-silero.cjs MODEL_ONNX SAMPLES_F32 OUT_F32 [REPEAT [THREADS]]');
  process.exit(2);
}
const ortDir = process.env.ONEADAPT_ORT_DIR;
if (!ortDir) { console.error('ort-run-silero: ONEADAPT_ORT_DIR is not set'); process.exit(2); }
const ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));

const CHUNK = 512, CONTEXT = 64;

async function stream(session, samples) {
  const chunks = Math.floor(samples.length / CHUNK);
  const probs = new Float32Array(chunks);
  let state = new ort.Tensor('float32', new Float32Array(2 * 128), [2, 1, 128]);
  const sr = new ort.Tensor('int64', BigInt64Array.from([16000n]), []);
  const input = new Float32Array(CONTEXT + CHUNK);
  for (let c = 0; c < chunks; c++) {
    const start = c * CHUNK;
    for (let i = 0; i < CONTEXT; i++) input[i] = start - CONTEXT + i >= 0 ? samples[start - CONTEXT + i] : 0;
    input.set(samples.subarray(start, start + CHUNK), CONTEXT);
    const out = await session.run({ input: new ort.Tensor('float32', input.slice(), [1, CONTEXT + CHUNK]), sr, state });
    probs[c] = out.output.data[0];
    state = out.stateN;
  }
  return probs;
}

async function main() {
  const threads = Number(threadsArg || 1);
  const session = await ort.InferenceSession.create(modelPath, {
    logSeverityLevel: 3, intraOpNumThreads: threads, interOpNumThreads: 1 });
  const raw = fs.readFileSync(samplesFile);
  const samples = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const probs = await stream(session, samples);
  fs.writeFileSync(outFile, Buffer.from(probs.buffer));
  const repeat = Number(repeatArg || 0);
  if (repeat > 0) {
    const times = [];
    for (let r = 0; r < repeat; r++) {
      const t0 = process.hrtime.bigint();
      await stream(session, samples);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6 / probs.length);
    }
    times.sort((a, b) => a - b);
    console.log(`ort median ${times[Math.floor(times.length / 2)].toFixed(4)} ms per chunk over ${repeat} runs of ${probs.length} chunks, ${threads} thread(s)`);
  }
}

main().catch((e) => { console.error(`ort-run-silero: ${e.message}`); process.exit(1); });

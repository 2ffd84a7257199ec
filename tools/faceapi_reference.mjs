// face-api's own FaceExpressionNet output, to check resemotenet.models.faceapi against (development only).
//
//   node tools/faceapi_reference.mjs PACKAGE_DIR face0.raw face1.raw ...
//
// PACKAGE_DIR is the unpacked `npm pack @vladmandic/face-api@1.7.15` (its package/ folder); each
// .raw file is one 112x112 RGB uint8 face, row-major HWC (numpy's `array.tofile`). Prints one JSON
// list of probabilities per face, in face-api's order (neutral, happy, sad, angry, fearful,
// disgusted, surprised). Runs offline on tfjs's pure-JS CPU backend bundled in dist/face-api.esm.js:
// the bundle is the browser build, so the Node platform check is hidden and a stub environment set.
import fs from 'fs';
import path from 'path';
import util from 'util';

const [pkg, ...files] = process.argv.slice(2);
Object.defineProperty(process, 'versions', { value: { ...process.versions, node: undefined }, configurable: true });
const faceapi = await import(path.resolve(pkg, 'dist/face-api.esm.js'));
const tf = faceapi.tf;
tf.env().setPlatform('reference', {
  fetch: globalThis.fetch,
  now: () => performance.now(),
  encode: (text) => new TextEncoder().encode(text),
  decode: (bytes, encoding) => new TextDecoder(encoding).decode(bytes),
  isTypedArray: (a) => util.types.isTypedArray(a),
  setTimeoutCustom: setTimeout,
});
await tf.setBackend('cpu');
await tf.ready();
class Stub {}
faceapi.env.setEnv({
  Canvas: Stub, CanvasRenderingContext2D: Stub, Image: Stub, ImageData: Stub, Video: Stub,
  createCanvasElement: () => new Stub(), createImageElement: () => new Stub(), createVideoElement: () => new Stub(),
  fetch: globalThis.fetch, readFile: fs.promises.readFile,
});
const dir = path.resolve(pkg, 'model');
const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'face_expression_model-weights_manifest.json')));
const bin = fs.readFileSync(path.join(dir, 'face_expression_model.bin'));
const net = new faceapi.FaceExpressionNet();
net.loadFromWeightMap(tf.io.decodeWeights(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length), manifest[0].weights));
const out = [];
for (const f of files) {
  const t = tf.tensor3d(new Uint8Array(fs.readFileSync(f)), [112, 112, 3], 'int32');
  const p = await net.forward(t);
  out.push(Array.from(p.dataSync()));
  tf.dispose([t, p]);
}
console.log(JSON.stringify({ faceapi: faceapi.version, tfjs: tf.version_core, probabilities: out }));

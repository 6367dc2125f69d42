// Parses the worker's deployment files with each network's own code and prints what it made of
// them as JSON (agent/tests/integration/deploy.rs reads it):
//   node scripts/ops/check-deploy.mjs akash FILE.sdl.yaml   -> {"manifest": ..., "groups": ..., "version": hex}
//   node scripts/ops/check-deploy.mjs nosana FILE.json      -> {"success": true} or the errors
// Exit status 1 when the network's parser rejects the file.
import { readFileSync } from "node:fs";

const [what, file] = process.argv.slice(2);
const text = readFileSync(file, "utf8");
const json = (v) =>
  JSON.stringify(v, (_, x) =>
    typeof x === "bigint" ? x.toString() : x instanceof Uint8Array ? Buffer.from(x).toString("utf8") : x,
  );

try {
  if (what === "akash") {
    const { SDL } = await import("@akashnetwork/akashjs/build/sdl/index.js");
    const sdl = SDL.fromString(text, "beta3");
    const manifest = sdl.manifest();
    const groups = sdl.groups();
    const version = Buffer.from(await sdl.manifestVersion()).toString("hex");
    console.log(json({ manifest, groups, version }));
  } else if (what === "nosana") {
    const { validateJobDefinition } = await import("@nosana/types");
    const r = validateJobDefinition(JSON.parse(text));
    console.log(json(r.success ? { success: true } : { success: false, errors: r.errors }));
    process.exit(r.success ? 0 : 1);
  } else {
    console.error("usage: check-deploy.mjs akash|nosana FILE");
    process.exit(2);
  }
} catch (e) {
  console.log(json({ error: String(e && e.message ? e.message : e) }));
  process.exit(1);
}

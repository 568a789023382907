// Minify many tracker variants in one Node process (scripts/build_tracker.py runs it).
// stdin: a JSON object {name: source}; stdout: a JSON object {name: minified code}.
// The options are terser's CLI flags `--ecma 2016 --toplevel --compress passes=2,unsafe=true --mangle`.
import { minify } from "terser";

const OPTIONS = { ecma: 2016, toplevel: true, compress: { passes: 2, unsafe: true }, mangle: true };

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const sources = JSON.parse(input);
const built = {};
for (const [name, source] of Object.entries(sources)) {
  built[name] = (await minify(source, OPTIONS)).code;
}
process.stdout.write(JSON.stringify(built));

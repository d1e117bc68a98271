// Shared by the client scripts: load the pinned npm packages from the cache that
// scripts/install_js_clients.sh fills (WIREBRIDGE_JS_MODULES), read the scenario, print the result.
//
// ESM ignores NODE_PATH, so the packages are loaded with a require() rooted in that directory:
// every client then shares one copy of `openai` and `zod`, as in an application.
import { createRequire } from "node:module";

const modules = process.env.WIREBRIDGE_JS_MODULES;
if (!modules) {
  throw new Error("WIREBRIDGE_JS_MODULES must name the node_modules directory of the clients");
}
export const load = createRequire(`${modules}/`);

/** The bridge's base URL (…/v1) and the model name the scripted upstream answers to. */
export const baseURL = process.env.WIREBRIDGE_BASE_URL;
export const model = process.env.WIREBRIDGE_MODEL ?? "bridge-model";
export const apiKey = "sk-not-checked";

/** Runs `scenarios[argv[2]]` and prints its result as one JSON line on stdout. */
export async function main(scenarios) {
  const name = process.argv[2];
  const scenario = scenarios[name];
  if (!scenario) {
    throw new Error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(", ")}`);
  }
  const result = await scenario();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

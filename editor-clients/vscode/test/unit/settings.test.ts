import assert from "node:assert/strict";
import { test } from "node:test";
import {
  configurationAnswer,
  SERVER_KEYS,
  serverExecutable,
  serverSettings,
} from "../../src/settings";

/** What VS Code hands over for the `nexus` section: every declared key, null when unset. */
function vscodeConfig(set: Record<string, unknown>): Record<string, unknown> {
  const config: Record<string, unknown> = { server: { command: [], python: null } };
  for (const key of SERVER_KEYS) {
    config[key] = null;
  }
  return { ...config, ...set };
}

test("only the server's keys with a value are sent", () => {
  const config = vscodeConfig({ model: "qwen", maxSteps: 10, guided: false, baseUrl: "" });
  assert.deepEqual(serverSettings(config), { model: "qwen", maxSteps: 10, guided: false });
});

test("the extension's own keys never reach the server", () => {
  const config = vscodeConfig({ server: { command: ["nexus-ls"] }, model: "m" });
  assert.deepEqual(Object.keys(serverSettings(config)), ["model"]);
});

test("workspace/configuration answers the nexus section mapped, others as VS Code did", () => {
  const config = vscodeConfig({ wallTime: 30 });
  const items = [{ section: "nexus" }, { section: "editor" }, {}];
  assert.deepEqual(configurationAnswer(items, [{ all: 1 }, { tabSize: 4 }, null], config), [
    { wallTime: 30 },
    { tabSize: 4 },
    null,
  ]);
});

test("the server starts from nexus.server.command when given", () => {
  const config = vscodeConfig({ server: { command: ["/opt/nexus/bin/nexus", "serve"] } });
  assert.deepEqual(serverExecutable(config), { command: "/opt/nexus/bin/nexus", args: ["serve"] });
});

test("a configured interpreter starts `python -m nexus_ls`", () => {
  const config = vscodeConfig({ server: { command: [], python: "/venv/bin/python" } });
  assert.deepEqual(serverExecutable(config), {
    command: "/venv/bin/python",
    args: ["-m", "nexus_ls"],
  });
});

test("with nothing configured the server is `nexus-ls` from PATH", () => {
  assert.deepEqual(serverExecutable(vscodeConfig({})), { command: "nexus-ls", args: [] });
  assert.deepEqual(serverExecutable({}), { command: "nexus-ls", args: [] });
});

test("a server command that starts with nothing is refused with a message", () => {
  const config = vscodeConfig({ server: { command: [" ", "serve"] } });
  assert.throws(() => serverExecutable(config), /must start with a program/);
});

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { COMMANDS, SERVER_COMMANDS, VIEWS } from "../../src/ids";
import { SERVER_KEYS } from "../../src/settings";

interface Manifest {
  main: string;
  engines: { vscode: string };
  contributes: {
    commands: { command: string; title: string; category: string }[];
    menus: Record<string, { command: string }[]>;
    views: Record<string, { id: string }[]>;
    viewsContainers: { activitybar: { id: string }[] };
    configuration: { properties: Record<string, { default: unknown }> };
  };
}

const manifest = JSON.parse(
  readFileSync(join(__dirname, "..", "..", "..", "package.json"), "utf8"),
) as Manifest;

test("package.json declares exactly the commands the extension registers", () => {
  const declared = manifest.contributes.commands.map((c) => [
    c.command,
    `${c.category}: ${c.title}`,
  ]);
  const registered = Object.values(COMMANDS).map((c) => [c.id, c.title]);
  assert.deepEqual(declared.sort(), registered.sort());
});

test("no command of the extension has the id of a server command", () => {
  // vscode-languageclient registers the server's commands under their own ids.
  const ours = new Set<string>(Object.values(COMMANDS).map((c) => c.id));
  assert.deepEqual(
    SERVER_COMMANDS.filter((id) => ours.has(id)),
    [],
  );
  assert.ok([...ours].every((id) => !id.startsWith("nexus.")));
});

test("every menu entry names a declared command", () => {
  const declared = new Set(manifest.contributes.commands.map((c) => c.command));
  for (const [menu, entries] of Object.entries(manifest.contributes.menus)) {
    for (const entry of entries) {
      assert.ok(declared.has(entry.command), `${menu}: ${entry.command}`);
    }
  }
});

test("the run command is in the editor's context menu", () => {
  const context = manifest.contributes.menus["editor/context"].map((e) => e.command);
  assert.deepEqual(context, [COMMANDS.run.id]);
});

test("every server setting is a nexus.* setting that is unset by default", () => {
  const properties = manifest.contributes.configuration.properties;
  for (const key of SERVER_KEYS) {
    assert.ok(`nexus.${key}` in properties, `nexus.${key} is not declared`);
    // unset, so the server's own default (and its environment) applies
    assert.equal(properties[`nexus.${key}`].default, null, `nexus.${key}`);
  }
  const own = Object.keys(properties).filter((k) => !SERVER_KEYS.some((s) => k === `nexus.${s}`));
  assert.deepEqual(own.sort(), ["nexus.server.command", "nexus.server.python"]);
});

test("the side bar holds the runs and the memory views", () => {
  assert.deepEqual(
    manifest.contributes.viewsContainers.activitybar.map((c) => c.id),
    [VIEWS.container],
  );
  assert.deepEqual(
    manifest.contributes.views[VIEWS.container].map((v) => v.id),
    [VIEWS.runs, VIEWS.memory],
  );
  assert.equal(manifest.main, "./out/src/extension.js");
});

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Diagnostic } from "vscode-languageserver-protocol";
import { parseLogQuery, runActionRequest, runRequest } from "../../src/requests";

const URI = "file:///home/me/calc/calc.py";

function span(line: number, from: number, to: number) {
  return { start: { line, character: from }, end: { line, character: to } };
}

function diagnostic(line: number, message: string): Diagnostic {
  return { range: span(line, 4, 16), message, severity: 1 };
}

test("a task alone runs on the workspace", () => {
  assert.deepEqual(runRequest("  add type hints  "), {
    command: "nexus.run",
    arguments: [{ task: "add type hints" }],
  });
});

test("a selection sends its range and the diagnostics that start inside it", () => {
  const range = { start: { line: 0, character: 0 }, end: { line: 2, character: 0 } };
  const inside = diagnostic(1, "add subtracts");
  const outside = diagnostic(7, "far away");
  const request = runRequest("fix it", { uri: URI, range, diagnostics: [inside, outside] });
  assert.deepEqual(request.arguments, [{ task: "fix it", uri: URI, range, diagnostics: [inside] }]);
});

test("an empty selection is about the file, without a range", () => {
  const request = runRequest("explain", { uri: URI, range: span(3, 2, 2), diagnostics: [] });
  assert.deepEqual(request.arguments, [{ task: "explain", uri: URI }]);
});

test("an empty task is refused before anything is sent", () => {
  assert.throws(() => runRequest("   "), /the task is empty/);
});

test("run actions carry the run id", () => {
  assert.deepEqual(runActionRequest("accept", "2026"), {
    command: "nexus.accept",
    arguments: [{ runId: "2026" }],
  });
});

test("a log search: key=value words filter, the rest is searched for", () => {
  assert.deepEqual(parseLogQuery("run=2026 level=WARNING push  failed limit=20"), {
    runId: "2026",
    level: "WARNING",
    grep: "push failed",
    limit: 20,
  });
  assert.deepEqual(parseLogQuery(""), { limit: 500 });
  assert.deepEqual(parseLogQuery("a=b"), { grep: "a=b", limit: 500 });
});

test("a bad limit is an error, not a silent default", () => {
  assert.throws(() => parseLogQuery("limit=ten"), /limit=ten is not a whole number/);
  assert.throws(() => parseLogQuery("limit=0"), /not a whole number above 0/);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  countLive,
  endedStatus,
  eventLine,
  type JournalEvent,
  latestPlan,
  lessonDescription,
  logDocument,
  planSummary,
  type RunInfo,
  runActions,
  runContext,
  runPickItems,
  runTree,
  statusBarText,
  uniqueRuns,
} from "../../src/format";

const ROOT: RunInfo = { runId: "20261202-1", task: "fix add", status: "running", depth: 0 };
const CHILD: RunInfo = {
  runId: "20261202-1-1",
  task: "write tests",
  status: "succeeded",
  parent: "20261202-1",
  depth: 1,
};
const CHILD2: RunInfo = {
  runId: "20261202-1-2",
  task: "docs",
  status: "queued",
  parent: "20261202-1",
  depth: 1,
};
const OLD: RunInfo = {
  runId: "20261201-9",
  task: "old\ntask",
  status: "failed",
  review: "discarded",
};
const STRAY: RunInfo = {
  runId: "20261130-5-1",
  task: "child of a run not listed",
  status: "failed",
  parent: "20261130-5",
};

function event(over: Partial<JournalEvent>): JournalEvent {
  return {
    id: "e",
    ts: "2026-12-02T10:04:16.472Z",
    level: "INFO",
    category: "run",
    message: "m",
    ...over,
  };
}

test("sub-agents sit under their parent; one whose parent is not listed stays on top", () => {
  // nexus.runs lists newest first, children before their parent
  const tree = runTree([CHILD2, CHILD, ROOT, OLD, STRAY]);
  assert.deepEqual(
    tree.map((n) => [n.run.runId, n.children.map((c) => c.run.runId)]),
    [
      ["20261202-1", ["20261202-1-1", "20261202-1-2"]],
      ["20261201-9", []],
      ["20261130-5-1", []],
    ],
  );
});

test("the runs quick pick: a line per run, sub-agents indented, status and review said", () => {
  const items = runPickItems([CHILD2, CHILD, ROOT, OLD]);
  assert.deepEqual(
    items.map((i) => [i.label, i.description]),
    [
      ["$(sync~spin) fix add", "running · 20261202-1"],
      ["    $(pass) write tests", "succeeded · 20261202-1-1"],
      ["    $(clock) docs", "queued · 20261202-1-2"],
      ["$(error) old task", "failed · discarded · 20261201-9"],
    ],
  );
});

test("the status bar counts agents at work, sub-agents included", () => {
  const runs = [ROOT, CHILD, CHILD2, OLD];
  assert.equal(countLive(runs), 2);
  assert.equal(statusBarText(countLive(runs)), "$(sync~spin) NEXUS: 2 running");
  assert.equal(statusBarText(0), "$(hubot) NEXUS");
});

test("a run offers what can be done with it now", () => {
  const labels = (run: RunInfo) => runActions(run).map((a) => a.action);
  assert.deepEqual(labels(ROOT), ["show", "review", "cancel"]);
  assert.deepEqual(labels(CHILD), ["show", "review", "accept", "discard"]);
  assert.deepEqual(labels({ ...CHILD, review: "accepted" }), ["show", "review", "discard"]);
  assert.deepEqual(labels({ ...CHILD, review: "discarded" }), ["show", "review"]);
  assert.deepEqual(labels({ runId: "x", status: "damaged", error: "unreadable" }), ["discard"]);
  assert.deepEqual(labels({ runId: "y", status: "orphaned", branch: "nexus/y" }), ["discard"]);
});

test("the tree's context values say what the menus may offer", () => {
  assert.equal(runContext(ROOT), "run.live");
  assert.equal(runContext(CHILD), "run.ended");
  assert.equal(runContext({ ...CHILD, review: "accepted" }), "run.accepted");
  assert.equal(runContext({ ...CHILD, review: "discarded" }), "run.discarded");
  assert.equal(runContext({ runId: "x", status: "damaged" }), "run.broken");
});

test("a run listed by two folders of one repository is shown once", () => {
  const runs = uniqueRuns([ROOT, CHILD, ROOT, CHILD]);
  assert.deepEqual(
    runs.map((r) => r.runId),
    [ROOT.runId, CHILD.runId],
  );
  assert.equal(countLive(runs), 1);
});

test("an event is one line of the output channel, its later lines indented", () => {
  const line = eventLine(
    "20261202-1",
    event({ category: "edit", message: "edited calc.py\n+ a + b" }),
  );
  assert.equal(line, "[10:04:16] INFO    edit    20261202-1: edited calc.py\n    + a + b");
  assert.match(eventLine(null, event({ category: "memory", run: null })), /workspace: m$/);
});

test("a run's end is found from data.status with the exit code, not from the text", () => {
  const end = event({ message: "run succeeded: x", data: { status: "succeeded", exit_code: 0 } });
  assert.equal(endedStatus(end), "succeeded");
  assert.equal(
    endedStatus(event({ category: "error", data: { status: "failed", exit_code: 1 } })),
    "failed",
  );
  assert.equal(
    endedStatus(event({ message: "run succeeded: looks like an end", data: {} })),
    undefined,
  );
  assert.equal(
    endedStatus(event({ category: "tool", data: { status: "failed", exit_code: 1 } })),
    undefined,
  );
});

test("the newest plan of a run's events, and its summary", () => {
  const plan = (done: number) =>
    event({
      category: "agent",
      data: {
        plan: [
          { text: "read", status: done > 0 ? "done" : "in_progress" },
          { text: "fix", status: done > 1 ? "done" : "pending" },
        ],
        current: done + 1,
        done,
        total: 2,
        source: "model",
      },
    });
  const latest = latestPlan([plan(0), event({ category: "tool" }), plan(1)]);
  assert.ok(latest);
  assert.equal(planSummary(latest), "plan 1/2 done");
  assert.equal(latestPlan([event({ category: "tool" })]), undefined);
});

test("a lesson says how strong it is and where it came from", () => {
  assert.equal(
    lessonDescription({ id: "L1", text: "t", strength: 0.25, offered: false, source_run: "2026" }),
    "strength 0.25 · not offered · from 2026",
  );
  assert.equal(lessonDescription({ id: "L2", text: "t", source_run: null }), "yours");
});

test("a log search reads as a document, oldest first", () => {
  const text = logDocument(" category=test ", [event({ message: "tests: 1 passed" })]);
  assert.equal(
    text,
    "NEXUS log (category=test): 1 event(s), oldest first\n\n[10:04:16] INFO    run     workspace: tests: 1 passed\n",
  );
});

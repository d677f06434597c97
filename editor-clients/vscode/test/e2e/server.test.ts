/**
 * A real `nexus-ls` driven over stdio by Microsoft's own protocol client, with exactly the
 * requests the extension sends (NexusApi, the settings mapping, the diff sides). The
 * Python suite starts it (tests/test_vscode_client.py) because the scripted model that
 * plays the language model lives there; it passes a JSON file naming the scenario, the
 * repository, the server command and the model's URL, and checks what this writes.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import {
  ApplyWorkspaceEditRequest,
  ConfigurationRequest,
  createProtocolConnection,
  DidOpenTextDocumentNotification,
  ExecuteCommandRequest,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  type ProtocolConnection,
  ShowDocumentRequest,
  ShowMessageNotification,
  ShowMessageRequest,
  type ShowMessageRequestParams,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
} from "vscode-languageserver-protocol/node";
import { NexusApi } from "../../src/api";
import {
  countLive,
  endedStatus,
  eventLine,
  type JournalEvent,
  lessonLabel,
  logDocument,
  planOf,
  planSummary,
  runActions,
  runPickItems,
} from "../../src/format";
import { changedFiles, fileAt, runTip } from "../../src/git";
import { COMMANDS, SERVER_COMMANDS } from "../../src/ids";
import { parseLogQuery } from "../../src/requests";
import {
  configurationAnswer,
  SERVER_KEYS,
  serverExecutable,
  serverSettings,
} from "../../src/settings";

interface Params {
  scenario: "review" | "autonomy";
  repo: string;
  /** `nexus.server.*` as the user would set them. */
  server: { command?: string[]; python?: string };
  baseUrl: string;
  out: string;
}

const PARAMS_FILE = process.env.NEXUS_E2E_PARAMS;
const WAIT_MS = 60_000;

type Message = { method: string; params: unknown };

/** Everything the server sent, and a way to wait for what a test expects next. */
class Seen {
  readonly messages: Message[] = [];
  private waiters: { check: () => boolean; resolve: () => void; reject: (e: Error) => void }[] = [];
  private gone: Error | undefined;

  /** The server died: whatever a test waits for will not come. */
  fail(error: Error): void {
    this.gone = error;
    for (const waiter of this.waiters) {
      waiter.reject(error);
    }
    this.waiters = [];
  }

  add(method: string, params: unknown): void {
    this.messages.push({ method, params });
    this.waiters = this.waiters.filter((w) => {
      if (w.check()) {
        w.resolve();
        return false;
      }
      return true;
    });
  }

  of<T>(method: string): T[] {
    return this.messages.filter((m) => m.method === method).map((m) => m.params as T);
  }

  events(runId?: string): JournalEvent[] {
    return this.of<{ runId: string | null; event: JournalEvent }>("nexus/event")
      .filter((p) => runId === undefined || p.runId === runId)
      .map((p) => p.event);
  }

  /** Resolves once `check` holds; fails the test, saying what it waited for, after a minute. */
  until(what: string, check: () => boolean): Promise<void> {
    if (check()) {
      return Promise.resolve();
    }
    if (this.gone !== undefined) {
      return Promise.reject(this.gone);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`waited ${WAIT_MS / 1000} s for ${what}`)),
        WAIT_MS,
      );
      this.waiters.push({
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  ended(runId: string): Promise<void> {
    return this.until(`run ${runId} to end`, () =>
      this.events(runId).some((e) => endedStatus(e) !== undefined),
    );
  }
}

/** The `nexus` section as VS Code hands it over: every declared key, null when unset. */
function vscodeConfiguration(baseUrl: string): Record<string, unknown> {
  const config: Record<string, unknown> = { server: { command: [], python: null } };
  for (const key of SERVER_KEYS) {
    config[key] = null;
  }
  return { ...config, baseUrl, maxSteps: 12 };
}

interface Session {
  seen: Seen;
  api: NexusApi;
  connection: ProtocolConnection;
  server: ChildProcess;
  commands: string[];
  answer: (question: ShowMessageRequestParams) => string;
  /** Rejects when the server process ends; every request races it. */
  exited?: Promise<never>;
}

async function start(params: Params): Promise<Session> {
  // The extension's own choice of command, from the settings the test gives
  const exe = serverExecutable({ server: params.server });
  const server = spawn(exe.command, exe.args, {
    cwd: params.repo,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const connection = createProtocolConnection(
    new StreamMessageReader(server.stdout),
    new StreamMessageWriter(server.stdin),
  );
  const seen = new Seen();
  const config = vscodeConfiguration(params.baseUrl);
  const session: Session = {
    seen,
    connection,
    server,
    api: new NexusApi((p) =>
      Promise.race([connection.sendRequest(ExecuteCommandRequest.type, p), session.exited]),
    ),
    commands: [],
    answer: () => "Deny",
  };
  const exited = new Promise<never>((_, reject) => {
    server.on("exit", (code, signal) => {
      const error = new Error(`nexus-ls exited (${signal ?? code}) before the test was done`);
      seen.fail(error);
      reject(error);
    });
  });
  exited.catch(() => undefined); // raced against each request below
  session.exited = exited;
  connection.onUnhandledNotification((message) => seen.add(message.method, message.params));
  connection.onRequest(ConfigurationRequest.type, (p) => {
    seen.add(ConfigurationRequest.method, p);
    return configurationAnswer(p.items, [], config);
  });
  connection.onRequest(WorkDoneProgressCreateRequest.type, (p) => {
    seen.add(WorkDoneProgressCreateRequest.method, p);
    // as vscode-languageclient does: follow the token the server made
    connection.onProgress(WorkDoneProgress.type, p.token, (value) =>
      seen.add("$/progress", { token: p.token, value }),
    );
    return null;
  });
  connection.onRequest(ShowDocumentRequest.type, (p) => {
    seen.add(ShowDocumentRequest.method, p);
    return { success: true };
  });
  connection.onRequest(ApplyWorkspaceEditRequest.type, (p) => {
    seen.add(ApplyWorkspaceEditRequest.method, p);
    return { applied: true };
  });
  connection.onRequest(ShowMessageRequest.type, (p) => {
    seen.add(ShowMessageRequest.method, p);
    const title = session.answer(p); // the button the user clicks in the modal
    return (p.actions ?? []).find((a) => a.title === title) ?? null;
  });
  connection.listen();

  const root = pathToFileURL(params.repo).href;
  const init = await Promise.race([
    exited,
    connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: root,
      workspaceFolders: [{ uri: root, name: "proj" }],
      initializationOptions: { nexus: serverSettings(config) },
      capabilities: {
        workspace: {
          configuration: true,
          workspaceFolders: true,
          applyEdit: true,
          didChangeConfiguration: { dynamicRegistration: true },
          executeCommand: { dynamicRegistration: true },
        },
        window: {
          workDoneProgress: true,
          showDocument: { support: true },
          showMessage: { messageActionItem: { additionalPropertiesSupport: true } },
        },
        textDocument: { synchronization: { dynamicRegistration: true, didSave: true } },
      },
    }),
  ]);
  session.commands = init.capabilities.executeCommandProvider?.commands ?? [];
  await connection.sendNotification(InitializedNotification.type, {});
  await seen.until("the server to ask for the settings", () =>
    seen.messages.some((m) => m.method === ConfigurationRequest.method),
  );
  return session;
}

async function stop(session: Session): Promise<void> {
  await session.connection.sendRequest(ShutdownRequest.type);
  await session.connection.sendNotification(ExitNotification.type);
  await new Promise<void>((resolve) => {
    if (session.server.exitCode !== null) {
      resolve();
    } else {
      session.server.on("exit", () => resolve());
    }
  });
  session.connection.dispose();
}

function settingWarnings(seen: Seen): string[] {
  return seen
    .of<{ message: string }>(ShowMessageNotification.method)
    .map((m) => m.message)
    .filter((m) => m.includes("is not a setting") || m.includes("is not valid"));
}

/** Fix a failing test from a selection; watch, review, report, log, accept. */
async function review(params: Params): Promise<Record<string, unknown>> {
  const session = await start(params);
  const { seen, api } = session;
  const uri = pathToFileURL(join(params.repo, "calc.py")).href;
  const text = readFileSync(join(params.repo, "calc.py"), "utf8");
  await session.connection.sendNotification(DidOpenTextDocumentNotification.type, {
    textDocument: { uri, languageId: "python", version: 1, text },
  });
  const selection = { start: { line: 0, character: 0 }, end: { line: 2, character: 0 } };
  const diagnostic = {
    range: { start: { line: 1, character: 4 }, end: { line: 1, character: 16 } },
    message: "add subtracts",
    severity: 1 as const,
    source: "mytests",
  };
  const started = await api.run("fix the failing test", {
    uri,
    range: selection,
    diagnostics: [diagnostic],
  });
  await seen.ended(started.runId);
  const runId = started.runId;

  const runs = await api.runs();
  const run = runs.find((r) => r.runId === runId);
  assert.ok(run, `nexus.runs does not list ${runId}`);
  assert.ok(run.base && run.head, "nexus.runs gives the base and head the diff editor needs");
  const tip = await runTip(params.repo, run.branch ?? undefined, run.head);
  const files = await changedFiles(params.repo, run.base, tip);

  await api.act("show", runId);
  await seen.until("the report to be shown", () => seen.of(ShowDocumentRequest.method).length > 0);
  const logText = logDocument("category=test", await api.log(parseLogQuery("category=test")));
  const diff = await api.diff(runId);
  const accepted = await api.accept(runId);
  const edits = seen.of<{ label?: string }>(ApplyWorkspaceEditRequest.method);
  await stop(session);

  const progress = seen.of<{ token: string; value: { kind: string; message?: string } }>(
    "$/progress",
  );
  const created = seen.of<{ token: string }>(WorkDoneProgressCreateRequest.method);
  return {
    run_id: runId,
    branch: started.branch,
    commands: session.commands,
    setting_warnings: settingWarnings(seen),
    progress_tokens: created.map((c) => c.token),
    progress: progress.map((p) => ({ token: p.token, ...p.value })),
    output_channel: seen.events(runId).map((e) => eventLine(runId, e)),
    status: seen
      .events(runId)
      .map(endedStatus)
      .find((s) => s !== undefined),
    runs,
    picks: runPickItems(runs).map((i) => [i.label, i.description]),
    actions: runActions(run).map((a) => a.action),
    files: files.map((f) => [f.status, f.path]),
    base_side: await fileAt(params.repo, run.base, "calc.py"),
    tip_side: await fileAt(params.repo, tip, "calc.py"),
    tip,
    shown: seen.of(ShowDocumentRequest.method),
    log_document: logText,
    diff,
    accepted,
    edits,
  };
}

/** A plan watched live, an approval answered, a lesson forgotten, a run cancelled. */
async function autonomy(params: Params): Promise<Record<string, unknown>> {
  const session = await start(params);
  const { seen, api } = session;
  const questions: ShowMessageRequestParams[] = [];
  session.answer = (question) => {
    questions.push(question);
    return "Deny";
  };
  const first = await api.run("push it and note how the schema is made");
  await seen.ended(first.runId);
  const plans = seen
    .events(first.runId)
    .map(planOf)
    .filter((p) => p !== undefined)
    .map(planSummary);
  const fromJournal = await api.plan(first.runId);

  const lessons = await api.lessons();
  const learned = lessons.find((l) => l.text.includes("make schema"));
  assert.ok(learned, `no lesson about the schema in ${JSON.stringify(lessons)}`);
  await api.forget(learned.id);
  const afterForget = await api.lessons();

  const second = await api.run("wait for the model");
  await seen.until("the second run's agent to start", () =>
    seen.events(second.runId).some((e) => e.category === "agent"),
  );
  const liveWhileRunning = countLive(await api.runs());
  await api.act("cancel", second.runId);
  await seen.ended(second.runId);
  const liveAfter = countLive(await api.runs());
  await stop(session);
  return {
    run_id: first.runId,
    commands: session.commands,
    setting_warnings: settingWarnings(seen),
    status: seen
      .events(first.runId)
      .map(endedStatus)
      .find((s) => s !== undefined),
    questions,
    plans,
    plan_from_journal: fromJournal ? planSummary(fromJournal) : null,
    plan_steps: fromJournal?.plan ?? [],
    lesson: lessonLabel(learned),
    lesson_run: learned.source_run,
    after_forget: afterForget.map((l) => l.text),
    live_while_running: liveWhileRunning,
    live_after: liveAfter,
    cancelled: seen
      .events(second.runId)
      .map(endedStatus)
      .find((s) => s !== undefined),
    output_channel: seen.events(first.runId).map((e) => eventLine(first.runId, e)),
  };
}

test(
  "the extension's requests against a real nexus-ls",
  { skip: PARAMS_FILE ? false : "run from tests/test_vscode_client.py, which starts the model" },
  async () => {
    const params = JSON.parse(readFileSync(PARAMS_FILE as string, "utf8")) as Params;
    const observed = params.scenario === "review" ? await review(params) : await autonomy(params);
    writeFileSync(params.out, JSON.stringify(observed, null, 2));
    // What the extension relies on from the server itself:
    const commands = observed.commands as string[];
    assert.deepEqual([...commands].sort(), [...SERVER_COMMANDS].sort());
    const ours = Object.values(COMMANDS).map((c) => c.id);
    assert.deepEqual(
      ours.filter((id) => SERVER_COMMANDS.includes(id as never)),
      [],
    );
  },
);

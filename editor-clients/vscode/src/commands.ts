/**
 * The extension's commands: run on a selection, the runs and what to do with one,
 * cancel, log search and lesson forgetting. Each asks what it needs and reports errors
 * (the server's messages are written for users) as VS Code error messages.
 */
import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";
import type { NexusApi } from "./api";
import {
  canAccept,
  canDiscard,
  isBroken,
  isLive,
  type Lesson,
  type RunInfo,
  runActions,
  runPickItems,
  runTitle,
} from "./format";
import { COMMANDS, type CommandName, LOG_SCHEME } from "./ids";
import { parseLogQuery, type RunTarget } from "./requests";
import { reviewRun } from "./review";
import type { MemoryView, RunsItem, RunsView } from "./views";

export interface Context {
  api: () => NexusApi | undefined;
  client: () => LanguageClient | undefined;
  output: vscode.OutputChannel;
  runsView: RunsView;
  memoryView: MemoryView;
  refreshRuns: () => void;
  restart: () => Promise<void>;
}

function need(ctx: Context): NexusApi {
  const api = ctx.api();
  if (api === undefined) {
    throw new Error(
      "the NEXUS server is not running (the NEXUS Server output says why); fix the " +
        "settings, then “NEXUS: Restart server”",
    );
  }
  return api;
}

function guard<A extends unknown[]>(run: (...args: A) => Promise<unknown>) {
  return async (...args: A): Promise<void> => {
    try {
      await run(...args);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      void vscode.window.showErrorMessage(`NEXUS: ${message}`);
    }
  };
}

/** The selection of the active editor, in the server's terms. */
function editorTarget(ctx: Context): RunTarget | undefined {
  const editor = vscode.window.activeTextEditor;
  const client = ctx.client();
  if (editor === undefined || client === undefined || editor.document.uri.scheme !== "file") {
    return undefined;
  }
  const convert = client.code2ProtocolConverter;
  return {
    uri: convert.asUri(editor.document.uri),
    range: editor.selection.isEmpty ? undefined : convert.asRange(editor.selection),
    diagnostics: convert.asDiagnosticsSync(vscode.languages.getDiagnostics(editor.document.uri)),
  };
}

async function runOnSelection(ctx: Context): Promise<void> {
  const api = need(ctx);
  const target = editorTarget(ctx);
  const where = target
    ? `${vscode.workspace.asRelativePath(vscode.Uri.parse(target.uri))}${target.range ? `, lines ${target.range.start.line + 1}-${target.range.end.line + 1}` : ""}`
    : "the workspace";
  const task = await vscode.window.showInputBox({
    title: "NEXUS: Run agent",
    prompt: `What should the agent do? (about ${where})`,
    placeHolder: "e.g. fix the failing test in this function",
    ignoreFocusOut: true,
    validateInput: (text) => (text.trim() === "" ? "Say what the agent should do." : undefined),
  });
  if (task === undefined) {
    return;
  }
  const started = await api.run(task, target);
  ctx.refreshRuns();
  const choice = await vscode.window.showInformationMessage(
    `NEXUS run ${started.runId} started on ${started.branch}.`,
    "Show log",
  );
  if (choice === "Show log") {
    ctx.output.show(true);
  }
}

async function pickRun(
  ctx: Context,
  title: string,
  which: (run: RunInfo) => boolean,
): Promise<RunInfo | undefined> {
  const runs = (await need(ctx).runs()).filter(which);
  if (runs.length === 0) {
    void vscode.window.showInformationMessage(
      "NEXUS: no such run. “NEXUS: Run agent on selection…” starts one.",
    );
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(runPickItems(runs), {
    title,
    matchOnDescription: true,
    matchOnDetail: true,
  });
  return picked?.run;
}

/** A command on a run: the tree item it was invoked on, else a pick. */
async function runFrom(
  ctx: Context,
  item: unknown,
  title: string,
  which: (run: RunInfo) => boolean = () => true,
) {
  const given = item as RunsItem | undefined;
  if (given?.kind === "run") {
    return given.node.run;
  }
  return pickRun(ctx, title, which);
}

async function act(ctx: Context, action: string, run: RunInfo): Promise<void> {
  const api = need(ctx);
  switch (action) {
    case "show":
      await api.act("show", run.runId); // the server opens the report (window/showDocument)
      return;
    case "review":
      await reviewRun(run);
      return;
    case "cancel":
      await api.act("cancel", run.runId);
      void vscode.window.showInformationMessage(`NEXUS: cancelling run ${run.runId}.`);
      break;
    case "accept": {
      const accepted = await api.accept(run.runId);
      const files = accepted.files.length;
      void vscode.window.showInformationMessage(
        `NEXUS run ${run.runId} accepted: ${files} file${files === 1 ? "" : "s"} changed in your working tree.`,
      );
      break;
    }
    case "discard": {
      const sure = await vscode.window.showWarningMessage(
        `Discard NEXUS run ${run.runId} (${runTitle(run)})? Its branch and worktree are deleted.`,
        { modal: true },
        "Discard",
      );
      if (sure !== "Discard") {
        return;
      }
      await api.act("discard", run.runId);
      break;
    }
  }
  ctx.refreshRuns();
}

async function showRuns(ctx: Context): Promise<void> {
  const run = await pickRun(ctx, "NEXUS runs", () => true);
  if (run === undefined) {
    return;
  }
  const picked = await vscode.window.showQuickPick(runActions(run), {
    title: `NEXUS run ${run.runId}: ${runTitle(run)}`,
  });
  if (picked !== undefined) {
    await act(ctx, picked.action, run);
  }
}

async function searchLog(ctx: Context): Promise<void> {
  need(ctx);
  const typed = await vscode.window.showInputBox({
    title: "NEXUS: Search log",
    prompt:
      "Text to find in the journal; filter with run=ID level=WARNING category=test since=1h limit=N",
    ignoreFocusOut: true,
  });
  if (typed === undefined) {
    return;
  }
  parseLogQuery(typed); // a bad filter is an error here, before a document opens
  // A new fragment each time: VS Code keeps a loaded document, and the log has grown.
  const uri = vscode.Uri.from({
    scheme: LOG_SCHEME,
    path: "/search.log",
    query: typed,
    fragment: String(Date.now()),
  });
  const document = await vscode.workspace.openTextDocument(uri);
  await vscode.window.showTextDocument(document, { preview: true });
}

async function forget(ctx: Context, item: unknown): Promise<void> {
  const api = need(ctx);
  let lesson = item as Lesson | undefined;
  if (lesson?.id === undefined) {
    const lessons = await api.lessons();
    const picked = await vscode.window.showQuickPick(
      lessons.map((l) => ({ label: l.id, description: l.text, lesson: l })),
      { title: "NEXUS: Forget lesson", matchOnDescription: true },
    );
    lesson = picked?.lesson;
  }
  if (lesson === undefined) {
    return;
  }
  await api.forget(lesson.id);
  ctx.memoryView.refresh();
}

export function registerCommands(ctx: Context): vscode.Disposable[] {
  const handlers: Record<CommandName, (item?: unknown) => Promise<unknown>> = {
    run: () => runOnSelection(ctx),
    runs: () => showRuns(ctx),
    cancel: async (item) => {
      const run = await runFrom(ctx, item, "NEXUS: Cancel run", isLive);
      return run && act(ctx, "cancel", run);
    },
    log: () => searchLog(ctx),
    show: async (item) => {
      const run = await runFrom(ctx, item, "NEXUS: Show run report", (r) => !isBroken(r));
      return run && act(ctx, "show", run);
    },
    review: async (item) => {
      const run = await runFrom(ctx, item, "NEXUS: Review run changes", (r) => !isBroken(r));
      return run && act(ctx, "review", run);
    },
    accept: async (item) => {
      const run = await runFrom(ctx, item, "NEXUS: Accept run", canAccept);
      return run && act(ctx, "accept", run);
    },
    discard: async (item) => {
      const run = await runFrom(ctx, item, "NEXUS: Discard run", canDiscard);
      return run && act(ctx, "discard", run);
    },
    forget: (item) => forget(ctx, item),
    restart: () => ctx.restart(),
    refresh: () => {
      ctx.refreshRuns();
      ctx.memoryView.refresh();
      return Promise.resolve();
    },
  };
  return (Object.keys(COMMANDS) as CommandName[]).map((name) =>
    vscode.commands.registerCommand(COMMANDS[name].id, guard(handlers[name])),
  );
}

/**
 * NEXUS for VS Code: starts `nexus-ls`, shows its runs (side bar, status bar, output
 * channel), and gives the palette and editor menu the commands to run, watch, review and
 * accept an agent's work. The server does the work; this is its face.
 */
import * as vscode from "vscode";
import { ExecuteCommandRequest, type LanguageClient } from "vscode-languageclient/node";
import { NexusApi } from "./api";
import { makeClient, readConfiguration, sendSettings } from "./client";
import { registerCommands } from "./commands";
import {
  countLive,
  endedStatus,
  eventLine,
  type JournalEvent,
  logDocument,
  planOf,
  statusBarText,
} from "./format";
import { COMMANDS, LOG_SCHEME, REVISION_SCHEME, VIEWS } from "./ids";
import { parseLogQuery } from "./requests";
import { RevisionContent } from "./review";
import { serverExecutable, serverSettings } from "./settings";
import { MemoryView, RunsView } from "./views";

let client: LanguageClient | undefined;

interface EventParams {
  runId: string | null;
  event: JournalEvent;
}

function startFailure(error: unknown): string {
  const exe = serverExecutable(readConfiguration());
  const shown = [exe.command, ...exe.args].join(" ");
  const why = error instanceof Error ? error.message : String(error);
  return (
    `NEXUS: could not start the server \`${shown}\` (${why}). Install NEXUS so \`nexus-ls\` is on ` +
    "PATH, or set nexus.server.python to an interpreter that has it (or nexus.server.command)."
  );
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const events = vscode.window.createOutputChannel("NEXUS");
  const serverLog = vscode.window.createOutputChannel("NEXUS Server");
  // Set once the server answered `initialize`; the views and commands wait for it.
  const server: { api?: NexusApi } = {};
  const api = () => server.api;
  const runsView = new RunsView(api);
  const memoryView = new MemoryView(api);
  const status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 50);
  status.text = statusBarText(0);
  status.tooltip = "NEXUS agents at work; click to show runs";
  status.command = COMMANDS.runs.id;
  status.show();

  let pending: ReturnType<typeof setTimeout> | undefined;
  const refreshRuns = () => {
    // Several events arrive together at a run's start and end: one refresh for them.
    if (pending !== undefined) {
      clearTimeout(pending);
    }
    pending = setTimeout(() => {
      pending = undefined;
      runsView.refresh();
      api()
        ?.runs()
        .then((runs) => {
          status.text = statusBarText(countLive(runs));
        })
        .catch(() => undefined);
    }, 150);
  };

  context.subscriptions.push(
    events,
    serverLog,
    status,
    vscode.window.registerTreeDataProvider(VIEWS.runs, runsView),
    vscode.window.registerTreeDataProvider(VIEWS.memory, memoryView),
    vscode.workspace.registerTextDocumentContentProvider(REVISION_SCHEME, new RevisionContent()),
    vscode.workspace.registerTextDocumentContentProvider(LOG_SCHEME, {
      provideTextDocumentContent: async (uri) => {
        const nexus = api();
        if (nexus === undefined) {
          return "The NEXUS server is not running.";
        }
        return logDocument(uri.query, await nexus.log(parseLogQuery(uri.query)));
      },
    }),
    ...registerCommands({
      api,
      client: () => client,
      output: events,
      runsView,
      memoryView,
      refreshRuns,
    }),
  );

  try {
    client = makeClient(serverLog);
  } catch (error) {
    void vscode.window.showErrorMessage(startFailure(error));
    return;
  }
  const started = client;
  started.onNotification("nexus/event", (params: EventParams) => {
    const event = params.event;
    events.appendLine(eventLine(params.runId, event));
    const plan = planOf(event);
    if (plan !== undefined && params.runId) {
      runsView.plans.set(params.runId, plan);
      runsView.refresh();
    }
    if (event.category === "memory") {
      memoryView.refresh();
    }
    if (
      event.category === "run" ||
      event.category === "error" ||
      endedStatus(event) !== undefined
    ) {
      refreshRuns();
    }
  });

  let sent = serverSettings(readConfiguration());
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (change) => {
      if (!change.affectsConfiguration("nexus") || client === undefined) {
        return;
      }
      const now = serverSettings(readConfiguration());
      const unset = Object.keys(sent).filter((key) => !(key in now));
      sent = now;
      if (change.affectsConfiguration("nexus.server") || unset.length > 0) {
        // A new server command, or a key back to its default, needs a fresh server.
        const why =
          unset.length > 0
            ? `nexus.${unset.join(", nexus.")} back to the default`
            : "the new server command";
        const choice = await vscode.window.showInformationMessage(
          `NEXUS: restart the server to use ${why}.`,
          "Restart",
        );
        if (choice === "Restart") {
          await client.restart();
        }
        return;
      }
      await sendSettings(client);
    }),
  );

  try {
    await started.start();
  } catch (error) {
    void vscode.window.showErrorMessage(startFailure(error));
    return;
  }
  server.api = new NexusApi((params) => started.sendRequest(ExecuteCommandRequest.type, params));
  refreshRuns();
  memoryView.refresh();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}

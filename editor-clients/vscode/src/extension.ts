/**
 * NEXUS for VS Code: starts `nexus-ls`, shows its runs (side bar, status bar, output
 * channel), and gives the palette and editor menu the commands to run, watch, review and
 * accept an agent's work. The server does the work; this is its face.
 */
import * as vscode from "vscode";
import { type EventParams, readConfiguration, sendSettings, Server } from "./client";
import { registerCommands } from "./commands";
import { countLive, endedStatus, eventLine, logDocument, planOf, statusBarText } from "./format";
import { COMMANDS, LOG_SCHEME, REVISION_SCHEME, VIEWS } from "./ids";
import { parseLogQuery } from "./requests";
import { RevisionContent } from "./review";
import { serverSettings } from "./settings";
import { MemoryView, RunsView } from "./views";

let server: Server | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const events = vscode.window.createOutputChannel("NEXUS");
  const serverLog = vscode.window.createOutputChannel("NEXUS Server");
  const api = () => server?.api;
  const runsView = new RunsView(api);
  const memoryView = new MemoryView(api);
  const status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 50);
  status.text = statusBarText(0);
  status.tooltip = "NEXUS agents at work; click to show runs";
  status.command = COMMANDS.runs.id;
  status.show();

  let pending: ReturnType<typeof setTimeout> | undefined;
  const refreshRuns = () => {
    // Several events arrive together at a run's start, plan changes and end: one refresh.
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

  const onEvent = (params: EventParams) => {
    const event = params.event;
    events.appendLine(eventLine(params.runId, event));
    const plan = planOf(event);
    if (plan !== undefined && params.runId) {
      runsView.plans.set(params.runId, plan);
      refreshRuns();
    }
    if (event.category === "memory") {
      memoryView.refresh();
    }
    if (event.category === "run" || event.category === "error" || endedStatus(event)) {
      refreshRuns();
    }
  };
  server = new Server(serverLog, onEvent);
  const running = server;

  const restart = async () => {
    if (await running.start()) {
      refreshRuns();
      memoryView.refresh();
    }
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
      client: () => running.client,
      output: events,
      runsView,
      memoryView,
      refreshRuns,
      restart,
    }),
    vscode.workspace.onDidChangeConfiguration(async (change) => {
      if (!change.affectsConfiguration("nexus")) {
        return;
      }
      const client = running.client;
      if (client?.isRunning()) {
        await sendSettings(client);
      }
      // The server keeps what it was started with: a key back to unset, or a new server
      // command, needs a fresh server (which interrupts the runs it has going).
      const now = serverSettings(readConfiguration());
      const unset = Object.keys(running.startedWith).filter((key) => !(key in now));
      if (!change.affectsConfiguration("nexus.server") && unset.length === 0 && client) {
        return;
      }
      const why =
        unset.length > 0
          ? `nexus.${unset.join(", nexus.")} back to the default`
          : "the new server settings";
      const choice = await vscode.window.showInformationMessage(
        `NEXUS: restart the server to use ${why}? Runs it has going are interrupted ` +
          "(they can be reviewed and accepted later).",
        "Restart",
      );
      if (choice === "Restart") {
        await restart();
      }
    }),
  );

  await restart();
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}

/**
 * The language client: starts `nexus-ls`, hands it the settings, and turns its approval
 * questions into modal choices. Everything else the server sends (progress, documents
 * to show, edits on accept) vscode-languageclient handles as for any server.
 */
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  MessageType,
  type ServerOptions,
  ShowMessageRequest,
  type MessageActionItem,
  type ShowMessageRequestParams,
} from "vscode-languageclient/node";
import { NexusApi } from "./api";
import type { JournalEvent } from "./format";
import {
  type Configuration,
  configurationAnswer,
  SERVER_KEYS,
  serverExecutable,
  type ServerSettings,
  serverSettings,
} from "./settings";

/** The `nexus` section as a plain object (what the pure mapping functions take). */
export function readConfiguration(): Configuration {
  const section = vscode.workspace.getConfiguration("nexus");
  const config: Record<string, unknown> = {};
  for (const key of SERVER_KEYS) {
    config[key] = section.get(key);
  }
  config.server = { command: section.get("server.command"), python: section.get("server.python") };
  return config;
}

/** An approval is a modal question: the run waits on it, so it must not hide in a corner. */
async function askModal(params: ShowMessageRequestParams): Promise<MessageActionItem | null> {
  const titles = (params.actions ?? []).map((action) => action.title);
  const show =
    params.type === MessageType.Error
      ? vscode.window.showErrorMessage
      : params.type === MessageType.Warning
        ? vscode.window.showWarningMessage
        : vscode.window.showInformationMessage;
  const chosen = await show(params.message, { modal: true }, ...titles);
  return (params.actions ?? []).find((action) => action.title === chosen) ?? null;
}

export function makeClient(output: vscode.OutputChannel): LanguageClient {
  const exe = serverExecutable(readConfiguration());
  const serverOptions: ServerOptions = { command: exe.command, args: exe.args };
  const clientOptions: LanguageClientOptions = {
    // Every file: the server keeps open buffers so a selection's unsaved text reaches
    // the agent and accept can update what is open.
    documentSelector: [{ scheme: "file" }],
    // read at each start, so a restart sends the settings of now
    initializationOptions: () => ({ nexus: serverSettings(readConfiguration()) }),
    outputChannel: output,
    middleware: {
      workspace: {
        configuration: async (params, token, next) => {
          const answer = await next(params, token);
          if (!Array.isArray(answer)) {
            return answer;
          }
          return configurationAnswer(params.items, answer, readConfiguration());
        },
      },
    },
  };
  const client = new LanguageClient("nexus", "NEXUS", serverOptions, clientOptions);
  client.onRequest(ShowMessageRequest.type, askModal);
  return client;
}

/** Tells the server the settings changed (only its own keys, only those with a value). */
export async function sendSettings(client: LanguageClient): Promise<void> {
  await client.sendNotification(DidChangeConfigurationNotification.type, {
    settings: { nexus: serverSettings(readConfiguration()) },
  });
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

/**
 * One server at a time: a start (or restart) makes a fresh LanguageClient from the
 * settings of now, since a client keeps the command and options it was made with.
 */
export class Server {
  client: LanguageClient | undefined;
  api: NexusApi | undefined;
  /** The settings the running server was started with (it keeps them until restarted). */
  startedWith: ServerSettings = {};

  constructor(
    private readonly log: vscode.OutputChannel,
    private readonly onEvent: (params: EventParams) => void,
  ) {}

  /** Starts the server, stopping the one before; a failure is shown, not thrown. */
  async start(): Promise<boolean> {
    await this.stop();
    let client: LanguageClient;
    try {
      client = makeClient(this.log);
    } catch (error) {
      void vscode.window.showErrorMessage(startFailure(error));
      return false;
    }
    client.onNotification("nexus/event", this.onEvent);
    this.client = client;
    this.startedWith = serverSettings(readConfiguration());
    try {
      await client.start();
    } catch (error) {
      void vscode.window.showErrorMessage(startFailure(error));
      await this.stop();
      return false;
    }
    this.api = new NexusApi((params) => client.sendRequest(ExecuteCommandRequest.type, params));
    return true;
  }

  /** Stops the server; its agents get the 5 s the server gives them, and a little more. */
  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.api = undefined;
    if (client === undefined) {
      return;
    }
    try {
      await client.dispose(STOP_MS);
    } catch {
      // it had not started, or is gone already: nothing left to stop
    }
  }
}

const STOP_MS = 10_000;

export interface EventParams {
  runId: string | null;
  event: JournalEvent;
}

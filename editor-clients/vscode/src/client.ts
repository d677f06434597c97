/**
 * The language client: starts `nexus-ls`, hands it the settings, and turns its approval
 * questions into modal choices. Everything else the server sends (progress, documents
 * to show, edits on accept) vscode-languageclient handles as for any server.
 */
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  type LanguageClientOptions,
  MessageType,
  type ServerOptions,
  ShowMessageRequest,
  type MessageActionItem,
  type ShowMessageRequestParams,
} from "vscode-languageclient/node";
import {
  type Configuration,
  configurationAnswer,
  SERVER_KEYS,
  serverExecutable,
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
    initializationOptions: { nexus: serverSettings(readConfiguration()) },
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

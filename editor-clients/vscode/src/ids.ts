/**
 * Every id the extension owns, in one place. vscode-languageclient registers the
 * server's own commands (`nexus.run`, `nexus.runs`, ...) as VS Code commands, so the
 * extension's commands live under another prefix; a unit test checks package.json
 * against this table and the end-to-end test checks it against the server's list.
 */

export const SERVER_COMMANDS = [
  "nexus.run",
  "nexus.cancel",
  "nexus.runs",
  "nexus.show",
  "nexus.diff",
  "nexus.accept",
  "nexus.discard",
  "nexus.log",
  "nexus.export",
  "nexus.memory",
] as const;

export type ServerCommand = (typeof SERVER_COMMANDS)[number];

/** The extension's commands: id -> title shown in the palette. */
export const COMMANDS = {
  run: { id: "nexus-vscode.run", title: "NEXUS: Run agent on selection…" },
  runs: { id: "nexus-vscode.runs", title: "NEXUS: Show runs" },
  cancel: { id: "nexus-vscode.cancel", title: "NEXUS: Cancel run" },
  log: { id: "nexus-vscode.log", title: "NEXUS: Search log" },
  show: { id: "nexus-vscode.show", title: "NEXUS: Show run report" },
  review: { id: "nexus-vscode.review", title: "NEXUS: Review run changes" },
  accept: { id: "nexus-vscode.accept", title: "NEXUS: Accept run" },
  discard: { id: "nexus-vscode.discard", title: "NEXUS: Discard run" },
  forget: { id: "nexus-vscode.forget", title: "NEXUS: Forget lesson" },
  refresh: { id: "nexus-vscode.refresh", title: "NEXUS: Refresh" },
  restart: { id: "nexus-vscode.restart", title: "NEXUS: Restart server" },
} as const;

export type CommandName = keyof typeof COMMANDS;

export const VIEWS = { container: "nexus", runs: "nexusRuns", memory: "nexusMemory" } as const;

/** The scheme of the read-only documents that show a file at a run's base or tip. */
export const REVISION_SCHEME = "nexus-revision";

/** The scheme of the read-only documents that show a log search. */
export const LOG_SCHEME = "nexus-log";

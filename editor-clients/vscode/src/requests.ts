/**
 * The `workspace/executeCommand` requests the extension sends, built in one place so the
 * end-to-end test sends exactly these to a real `nexus-ls`.
 */
import type { Diagnostic, ExecuteCommandParams, Range } from "vscode-languageserver-protocol";
import type { ServerCommand } from "./ids";

function request(command: ServerCommand, argument: object): ExecuteCommandParams {
  return { command, arguments: [argument] };
}

export interface RunTarget {
  uri: string;
  /** The selection; none when nothing is selected (the task is about the whole file). */
  range?: Range;
  /** The file's diagnostics; those that start inside the range go with it. */
  diagnostics?: readonly Diagnostic[];
}

function isEmpty(range: Range): boolean {
  return range.start.line === range.end.line && range.start.character === range.end.character;
}

/** The server passes on the diagnostics that start inside the range; send only those. */
function startsInside(diagnostic: Diagnostic, range: Range): boolean {
  const at = diagnostic.range.start;
  const after = (a: Range["start"], b: Range["start"]) =>
    a.line > b.line || (a.line === b.line && a.character >= b.character);
  return after(at, range.start) && after(range.end, at);
}

/** `nexus.run` on a task, about a file and its selection when there is one. */
export function runRequest(task: string, target?: RunTarget): ExecuteCommandParams {
  const text = task.trim();
  if (text === "") {
    throw new Error("the task is empty: say what the agent should do");
  }
  const argument: Record<string, unknown> = { task: text };
  if (target !== undefined) {
    argument.uri = target.uri;
    if (target.range !== undefined && !isEmpty(target.range)) {
      const range = target.range;
      argument.range = range;
      const near = (target.diagnostics ?? []).filter((d) => startsInside(d, range));
      if (near.length > 0) {
        argument.diagnostics = near;
      }
    }
  }
  return request("nexus.run", argument);
}

export function runsRequest(): ExecuteCommandParams {
  return request("nexus.runs", {});
}

export type RunAction = "cancel" | "show" | "diff" | "accept" | "discard";

export function runActionRequest(action: RunAction, runId: string): ExecuteCommandParams {
  return request(`nexus.${action}`, { runId });
}

export interface LogQuery {
  grep?: string;
  runId?: string;
  level?: string;
  category?: string;
  since?: string;
  limit?: number;
}

const LOG_WORDS: Record<string, keyof LogQuery> = {
  run: "runId",
  level: "level",
  category: "category",
  since: "since",
  limit: "limit",
};

/**
 * What the user typed into "Search log": `key=value` words (run, level, category, since,
 * limit) filter, the rest is the text searched for. At most 500 events unless asked.
 */
export function parseLogQuery(typed: string): LogQuery {
  const query: LogQuery = {};
  const words: string[] = [];
  for (const word of typed.split(/\s+/).filter((w) => w !== "")) {
    const found = /^([a-z]+)=(.+)$/.exec(word);
    const key = found ? LOG_WORDS[found[1]] : undefined;
    if (found && key === "limit") {
      const limit = Number(found[2]);
      if (!Number.isInteger(limit) || limit <= 0) {
        throw new Error(`limit=${found[2]} is not a whole number above 0`);
      }
      query.limit = limit;
    } else if (found && key !== undefined) {
      query[key as Exclude<keyof LogQuery, "limit">] = found[2];
    } else {
      words.push(word);
    }
  }
  if (words.length > 0) {
    query.grep = words.join(" ");
  }
  query.limit ??= 500;
  return query;
}

export function logRequest(query: LogQuery): ExecuteCommandParams {
  return request("nexus.log", query);
}

export function planRequest(runId: string): ExecuteCommandParams {
  return request("nexus.log", { runId, category: "agent" });
}

export function memoryListRequest(): ExecuteCommandParams {
  return request("nexus.memory", { action: "list" });
}

export function forgetRequest(lessonId: string): ExecuteCommandParams {
  return request("nexus.memory", { action: "forget", id: lessonId });
}

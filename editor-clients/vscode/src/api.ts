/**
 * The server's commands as typed calls. It takes the function that sends one
 * `workspace/executeCommand`, so the extension (through its LanguageClient) and the
 * end-to-end test (through a bare vscode-jsonrpc connection) make the same requests.
 */
import type { ExecuteCommandParams } from "vscode-languageserver-protocol";
import {
  type JournalEvent,
  type Lesson,
  latestPlan,
  type Plan,
  type RunInfo,
  uniqueRuns,
} from "./format";
import {
  forgetRequest,
  type LogQuery,
  logRequest,
  memoryListRequest,
  planRequest,
  type RunAction,
  runActionRequest,
  runRequest,
  runsRequest,
  type RunTarget,
} from "./requests";

export type Send = (params: ExecuteCommandParams) => Promise<unknown>;

export interface Started {
  runId: string;
  branch: string;
}

export interface Accepted {
  runId: string;
  files: string[];
  buffers: string[];
}

export class NexusApi {
  constructor(private readonly send: Send) {}

  async run(task: string, target?: RunTarget): Promise<Started> {
    return (await this.send(runRequest(task, target))) as Started;
  }

  async runs(): Promise<RunInfo[]> {
    return uniqueRuns(((await this.send(runsRequest())) as RunInfo[] | null) ?? []);
  }

  async act(action: Exclude<RunAction, "accept" | "diff">, runId: string): Promise<unknown> {
    return this.send(runActionRequest(action, runId));
  }

  async diff(runId: string): Promise<string> {
    return (await this.send(runActionRequest("diff", runId))) as string;
  }

  async accept(runId: string): Promise<Accepted> {
    return (await this.send(runActionRequest("accept", runId))) as Accepted;
  }

  async log(query: LogQuery): Promise<JournalEvent[]> {
    return (await this.send(logRequest(query))) as JournalEvent[];
  }

  /** A run's latest plan, from its journal (for a run this session did not watch). */
  async plan(runId: string): Promise<Plan | undefined> {
    return latestPlan((await this.send(planRequest(runId))) as JournalEvent[]);
  }

  async lessons(): Promise<Lesson[]> {
    return (await this.send(memoryListRequest())) as Lesson[];
  }

  async forget(lessonId: string): Promise<Lesson> {
    return (await this.send(forgetRequest(lessonId))) as Lesson;
  }
}

/**
 * How runs, events, plans and lessons read in VS Code: quick picks, the tree view, the
 * status bar and the output channel. Pure, so it is tested without VS Code.
 */

/** One entry of `nexus.runs` (docs/lsp.md#nexusruns). */
export interface RunInfo {
  runId: string;
  status: string;
  task?: string;
  branch?: string | null;
  created?: string;
  review?: string | null;
  parent?: string | null;
  depth?: number;
  base?: string;
  head?: string;
  error?: string | null;
}

/** A journal event (docs/lsp.md#nexusevent). */
export interface JournalEvent {
  id: string;
  ts: string;
  level: string;
  category: string;
  run?: string | null;
  agent?: string | null;
  step?: number | null;
  message: string;
  data?: Record<string, unknown> | null;
}

export interface PlanStep {
  text: string;
  status: string;
}

export interface Plan {
  plan: PlanStep[];
  current?: number | null;
  done?: number;
  total?: number;
  source?: string;
}

export interface Lesson {
  id: string;
  text: string;
  tags?: string[];
  source_run?: string | null;
  strength?: number;
  offered?: boolean;
  uses?: number;
}

export const END_STATUSES = ["succeeded", "failed", "cancelled", "interrupted"] as const;

const ICONS: Record<string, string> = {
  queued: "clock",
  running: "sync~spin",
  succeeded: "pass",
  failed: "error",
  cancelled: "circle-slash",
  interrupted: "debug-disconnect",
  damaged: "warning",
  orphaned: "question",
};

/** The codicon of a run's status (`$(name)` in labels, a ThemeIcon in the tree). */
export function statusIcon(status: string): string {
  return ICONS[status] ?? "circle-outline";
}

export function isLive(run: RunInfo): boolean {
  return run.status === "running" || run.status === "queued";
}

/** A record that cannot be read, or a branch with no record: it can only be discarded. */
export function isBroken(run: RunInfo): boolean {
  return run.status === "damaged" || run.status === "orphaned";
}

export function canAccept(run: RunInfo): boolean {
  return !isLive(run) && !isBroken(run) && !run.review;
}

/** An accepted run may still be discarded (its branch and worktree go); a discarded one not. */
export function canDiscard(run: RunInfo): boolean {
  return !isLive(run) && run.review !== "discarded";
}

/** The tree item's context value, which the menus of package.json match on. */
export function runContext(run: RunInfo): string {
  if (isBroken(run)) {
    return "run.broken";
  }
  if (isLive(run)) {
    return "run.live";
  }
  return run.review ? `run.${run.review}` : "run.ended";
}

/**
 * Each run once: two workspace folders inside one repository both list its runs, and a
 * repeated id would break the tree view.
 */
export function uniqueRuns(runs: readonly RunInfo[]): RunInfo[] {
  const seen = new Set<string>();
  return runs.filter((run) => !seen.has(run.runId) && seen.add(run.runId));
}

/** What a run is: its task, or what is wrong with an entry that is not a readable run. */
export function runTitle(run: RunInfo): string {
  const what = run.task ?? run.error ?? run.branch ?? "";
  return what.replace(/\s+/g, " ").trim() || run.runId;
}

/** `succeeded · accepted · 20261202-...`: status, the user's verdict, the id. */
export function runDescription(run: RunInfo): string {
  return [run.status, run.review ?? undefined, run.runId].filter((p) => p).join(" · ");
}

export interface RunPickItem {
  label: string;
  description: string;
  detail?: string;
  run: RunInfo;
}

/**
 * The "Show runs" quick pick: newest tree first, each sub-agent right under its parent,
 * indented by its depth.
 */
export function runPickItems(runs: readonly RunInfo[]): RunPickItem[] {
  return flattenTree(runTree(runs)).map(({ run, depth }) => ({
    label: `${"    ".repeat(depth)}$(${statusIcon(run.status)}) ${runTitle(run)}`,
    description: runDescription(run),
    detail: run.branch
      ? `${run.branch}${run.created ? `, started ${run.created}` : ""}`
      : undefined,
    run,
  }));
}

export interface RunNode {
  run: RunInfo;
  children: RunNode[];
}

/** Runs as trees: a sub-agent under its parent, one whose parent is not listed at the top. */
export function runTree(runs: readonly RunInfo[]): RunNode[] {
  const nodes = new Map<string, RunNode>();
  for (const run of runs) {
    nodes.set(run.runId, { run, children: [] });
  }
  const roots: RunNode[] = [];
  for (const run of runs) {
    const node = nodes.get(run.runId) as RunNode;
    const parent = run.parent ? nodes.get(run.parent) : undefined;
    if (parent !== undefined && parent !== node) {
      parent.children.push(node);
    } else {
      roots.push(node);
    }
  }
  for (const node of nodes.values()) {
    node.children.sort((a, b) => a.run.runId.localeCompare(b.run.runId, "en", { numeric: true }));
  }
  return roots;
}

function flattenTree(nodes: readonly RunNode[], depth = 0): { run: RunInfo; depth: number }[] {
  return nodes.flatMap((node) => [
    { run: node.run, depth },
    ...flattenTree(node.children, depth + 1),
  ]);
}

/** How many agents are at work: running or waiting for a slot, sub-agents included. */
export function countLive(runs: readonly RunInfo[]): number {
  return runs.filter(isLive).length;
}

export function statusBarText(live: number): string {
  return live === 0 ? "$(hubot) NEXUS" : `$(sync~spin) NEXUS: ${live} running`;
}

/** The actions offered for a run chosen in "Show runs". */
export function runActions(run: RunInfo): { label: string; action: string }[] {
  const actions: { label: string; action: string }[] = [];
  if (!isBroken(run)) {
    actions.push({ label: "$(file-text) Show report", action: "show" });
    actions.push({ label: "$(diff) Review changes", action: "review" });
  }
  if (isLive(run)) {
    actions.push({ label: "$(debug-stop) Cancel", action: "cancel" });
  }
  if (canAccept(run)) {
    actions.push({ label: "$(check) Accept", action: "accept" });
  }
  if (canDiscard(run)) {
    actions.push({ label: "$(trash) Discard", action: "discard" });
  }
  return actions;
}

/** One line of the "NEXUS" output channel. */
export function eventLine(runId: string | null, event: JournalEvent): string {
  const time = event.ts.length >= 19 ? event.ts.slice(11, 19) : event.ts;
  const who = runId ?? event.run ?? "workspace";
  const message = event.message.replace(/\n/g, "\n    ");
  return `[${time}] ${event.level.padEnd(7)} ${event.category.padEnd(7)} ${who}: ${message}`;
}

/**
 * The status a run ended with, when this event is its end: the run or error event whose
 * data carries the agent's exit code and the final status, never a pattern on the text.
 */
export function endedStatus(event: JournalEvent): string | undefined {
  const data = event.data ?? {};
  if (event.category !== "run" && event.category !== "error") {
    return undefined;
  }
  if (typeof data.exit_code !== "number" || typeof data.status !== "string") {
    return undefined;
  }
  return (END_STATUSES as readonly string[]).includes(data.status) ? data.status : undefined;
}

/** The run's plan when this event carries one (the agent's `update_plan`, or guided mode). */
export function planOf(event: JournalEvent): Plan | undefined {
  const data = event.data;
  if (event.category !== "agent" || !data || !Array.isArray(data.plan)) {
    return undefined;
  }
  return data as unknown as Plan;
}

/** The newest plan among a run's events, oldest first as `nexus.log` gives them. */
export function latestPlan(events: readonly JournalEvent[]): Plan | undefined {
  let found: Plan | undefined;
  for (const event of events) {
    found = planOf(event) ?? found;
  }
  return found;
}

const MARKS: Record<string, string> = {
  done: "pass",
  in_progress: "arrow-right",
  pending: "circle-outline",
};

export function planStepIcon(step: PlanStep): string {
  return MARKS[step.status] ?? "question";
}

/** `plan 2/3 done` for the tree's plan node. */
export function planSummary(plan: Plan): string {
  const total = plan.total ?? plan.plan.length;
  const done = plan.done ?? plan.plan.filter((s) => s.status === "done").length;
  return `plan ${done}/${total} done${plan.source === "guided" ? " (guided)" : ""}`;
}

export function lessonLabel(lesson: Lesson): string {
  return `${lesson.id}  ${lesson.text.replace(/\s+/g, " ").trim()}`;
}

export function lessonDescription(lesson: Lesson): string {
  const parts = [];
  if (typeof lesson.strength === "number") {
    parts.push(`strength ${lesson.strength.toFixed(2)}`);
  }
  if (lesson.offered === false) {
    parts.push("not offered");
  }
  parts.push(lesson.source_run ? `from ${lesson.source_run}` : "yours");
  return parts.join(" · ");
}

/** The read-only document a log search opens. */
export function logDocument(typed: string, events: readonly JournalEvent[]): string {
  const head = `NEXUS log${typed.trim() ? ` (${typed.trim()})` : ""}: ${events.length} event(s), oldest first`;
  return [head, "", ...events.map((e) => eventLine(null, e))].join("\n") + "\n";
}

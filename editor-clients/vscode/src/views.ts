/**
 * The "NEXUS" side bar: runs with their sub-agent trees and current plans, and the
 * workspace memory. The data comes from the server; plans seen in `nexus/event`s are
 * kept so a watched run's plan needs no request.
 */
import * as vscode from "vscode";
import type { NexusApi } from "./api";
import {
  lessonDescription,
  lessonLabel,
  type Lesson,
  type Plan,
  type PlanStep,
  planStepIcon,
  planSummary,
  type RunNode,
  runDescription,
  runTitle,
  runTree,
  isBroken,
  isLive,
  runContext,
  statusIcon,
} from "./format";

export type RunsItem =
  | { kind: "run"; node: RunNode }
  | { kind: "plan"; runId: string; plan: Plan }
  | { kind: "step"; step: PlanStep };

export class RunsView implements vscode.TreeDataProvider<RunsItem> {
  private readonly changed = new vscode.EventEmitter<RunsItem | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  /** runId -> latest plan (null: none), from this session's events and from the journal. */
  readonly plans = new Map<string, Plan | null>();

  constructor(private readonly api: () => NexusApi | undefined) {}

  refresh(): void {
    this.changed.fire(undefined);
  }

  getTreeItem(item: RunsItem): vscode.TreeItem {
    if (item.kind === "run") {
      const run = item.node.run;
      const collapsible =
        item.node.children.length > 0 || run.task !== undefined
          ? vscode.TreeItemCollapsibleState.Collapsed
          : vscode.TreeItemCollapsibleState.None;
      const tree = new vscode.TreeItem(runTitle(run), collapsible);
      tree.id = `run:${run.runId}`;
      tree.description = runDescription(run);
      tree.tooltip = `${run.task ?? run.error ?? ""}\n${run.branch ?? ""}`.trim();
      tree.iconPath = new vscode.ThemeIcon(statusIcon(run.status));
      tree.contextValue = runContext(run);
      return tree;
    }
    if (item.kind === "plan") {
      const tree = new vscode.TreeItem(
        planSummary(item.plan),
        vscode.TreeItemCollapsibleState.Expanded,
      );
      tree.id = `plan:${item.runId}`;
      tree.iconPath = new vscode.ThemeIcon("checklist");
      return tree;
    }
    const tree = new vscode.TreeItem(item.step.text);
    tree.iconPath = new vscode.ThemeIcon(planStepIcon(item.step));
    tree.description = item.step.status.replace("_", " ");
    return tree;
  }

  async getChildren(item?: RunsItem): Promise<RunsItem[]> {
    const api = this.api();
    if (api === undefined) {
      return [];
    }
    if (item === undefined) {
      return runTree(await api.runs()).map((node) => ({ kind: "run", node }));
    }
    if (item.kind === "plan") {
      return item.plan.plan.map((step) => ({ kind: "step", step }));
    }
    if (item.kind === "step") {
      return [];
    }
    const run = item.node.run;
    const children: RunsItem[] = [];
    let plan = this.plans.get(run.runId);
    if (plan === undefined && run.task !== undefined && !isBroken(run)) {
      plan = (await api.plan(run.runId)) ?? null;
      if (plan !== null || !isLive(run)) {
        // found, or the run has ended without one: either way it is not asked again
        // (a live run's later plans come as events)
        this.plans.set(run.runId, plan);
      }
    }
    if (plan) {
      children.push({ kind: "plan", runId: run.runId, plan });
    }
    return children.concat(item.node.children.map((node) => ({ kind: "run" as const, node })));
  }
}

export class MemoryView implements vscode.TreeDataProvider<Lesson> {
  private readonly changed = new vscode.EventEmitter<Lesson | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly api: () => NexusApi | undefined) {}

  refresh(): void {
    this.changed.fire(undefined);
  }

  getTreeItem(lesson: Lesson): vscode.TreeItem {
    const tree = new vscode.TreeItem(lessonLabel(lesson));
    tree.id = `lesson:${lesson.id}`;
    tree.description = lessonDescription(lesson);
    tree.tooltip = `${lesson.text}${lesson.tags?.length ? `\ntags: ${lesson.tags.join(", ")}` : ""}`;
    tree.iconPath = new vscode.ThemeIcon(
      lesson.offered === false ? "lightbulb-empty" : "lightbulb",
    );
    tree.contextValue = "lesson";
    return tree;
  }

  async getChildren(lesson?: Lesson): Promise<Lesson[]> {
    const api = this.api();
    if (lesson !== undefined || api === undefined) {
      return [];
    }
    return api.lessons();
  }
}

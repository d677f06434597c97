/**
 * Diff review: VS Code's diff editor between a run's base snapshot and its tip, one file
 * or all of them, from read-only documents that git fills.
 */
import * as vscode from "vscode";
import type { RunInfo } from "./format";
import { type ChangedFile, changedFiles, fileAt, hasCommit, repositoryRoot, runTip } from "./git";
import { REVISION_SCHEME } from "./ids";

interface Revision {
  root: string;
  /** The commit; empty for the missing side of an added or deleted file. */
  rev: string;
}

function revisionUri(root: string, rev: string, path: string): vscode.Uri {
  const query = JSON.stringify({ root, rev } satisfies Revision);
  return vscode.Uri.from({ scheme: REVISION_SCHEME, path: `/${path}`, query });
}

export class RevisionContent implements vscode.TextDocumentContentProvider {
  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const { root, rev } = JSON.parse(uri.query) as Revision;
    return rev === "" ? "" : fileAt(root, rev, uri.path.slice(1));
  }
}

/** The repository of the open folders that holds the run's base commit. */
async function runRoot(run: RunInfo): Promise<string> {
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    const root = await repositoryRoot(folder.uri.fsPath).catch(() => undefined);
    if (root !== undefined && run.base && (await hasCommit(root, run.base))) {
      return root;
    }
  }
  throw new Error(`run ${run.runId} is not in a repository of the open folders`);
}

function sides(
  root: string,
  base: string,
  tip: string,
  file: ChangedFile,
): [vscode.Uri, vscode.Uri] {
  const left = revisionUri(root, file.status === "A" ? "" : base, file.oldPath);
  const right = revisionUri(root, file.status === "D" ? "" : tip, file.path);
  return [left, right];
}

function fileTitle(run: RunInfo, file: ChangedFile): string {
  const name = file.oldPath === file.path ? file.path : `${file.oldPath} → ${file.path}`;
  return `${name} (NEXUS run ${run.runId}: base ↔ tip)`;
}

/** Opens the run's changes: one file at once, else a pick of them (or all together). */
export async function reviewRun(run: RunInfo): Promise<void> {
  if (!run.base) {
    throw new Error(`run ${run.runId} has no base commit to compare with`);
  }
  const root = await runRoot(run);
  const tip = await runTip(root, run.branch ?? undefined, run.head);
  const files = await changedFiles(root, run.base, tip);
  if (files.length === 0) {
    void vscode.window.showInformationMessage(`NEXUS run ${run.runId} changed no files (yet).`);
    return;
  }
  // A tab of its own for each (preview tabs replace each other when opening them all)
  const open = (file: ChangedFile) => {
    const [left, right] = sides(root, run.base as string, tip, file);
    const title = fileTitle(run, file);
    return vscode.commands.executeCommand("vscode.diff", left, right, title, { preview: false });
  };
  if (files.length === 1) {
    await open(files[0]);
    return;
  }
  const all = { label: `$(files) All ${files.length} files`, file: undefined };
  const picked = await vscode.window.showQuickPick(
    [all, ...files.map((file) => ({ label: `${file.status}  ${file.path}`, file }))],
    { title: `NEXUS run ${run.runId}: changed files`, placeHolder: "a file to review" },
  );
  if (picked === undefined) {
    return;
  }
  if (picked.file !== undefined) {
    await open(picked.file);
    return;
  }
  const known = await vscode.commands.getCommands(true);
  if (known.includes("vscode.changes")) {
    const resources = files.map((file) => {
      const [left, right] = sides(root, run.base as string, tip, file);
      return [vscode.Uri.file(`${root}/${file.path}`), left, right];
    });
    await vscode.commands.executeCommand("vscode.changes", `NEXUS run ${run.runId}`, resources);
  } else {
    for (const file of files) {
      await open(file);
    }
  }
}

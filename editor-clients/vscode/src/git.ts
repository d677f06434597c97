/**
 * The two sides of a run's diff, read with plain git from the run's base and tip (the
 * branch `nexus/<id>`); the diff editor shows them. Node only, no VS Code.
 */
import { execFile } from "node:child_process";

export interface ChangedFile {
  /** `A`dded, `M`odified, `D`eleted, `R`enamed, `C`opied, `T`ype changed. */
  status: string;
  /** The path at the run's tip (for a deletion, the path that was deleted). */
  path: string;
  /** The path at the base: differs from `path` for a rename or copy. */
  oldPath: string;
}

/** `git diff --name-status -z` output as files (paths may hold any byte but NUL). */
export function parseNameStatus(output: string): ChangedFile[] {
  const fields = output.split("\0");
  const files: ChangedFile[] = [];
  let i = 0;
  while (i < fields.length && fields[i] !== "") {
    const status = fields[i].charAt(0);
    if (status === "R" || status === "C") {
      files.push({ status, oldPath: fields[i + 1], path: fields[i + 2] });
      i += 3;
    } else {
      files.push({ status, oldPath: fields[i + 1], path: fields[i + 1] });
      i += 2;
    }
  }
  return files;
}

function git(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      args,
      { cwd, maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`git ${args[0]} failed: ${(stderr || error.message).trim()}`));
        } else {
          resolve(stdout);
        }
      },
    );
  });
}

/** The files a run changed, base to tip, renames followed. */
export async function changedFiles(
  root: string,
  base: string,
  tip: string,
): Promise<ChangedFile[]> {
  const out = await git(root, ["diff", "--name-status", "-z", "-M", base, tip, "--"]);
  return parseNameStatus(out);
}

/** A file's text at a commit. */
export function fileAt(root: string, rev: string, path: string): Promise<string> {
  return git(root, ["show", `${rev}:${path}`]);
}

/**
 * The commit to show as a run's tip: its branch while it exists (a running run's tip
 * moves), else the head its record kept (a discarded run's branch is gone).
 */
export async function runTip(
  root: string,
  branch: string | undefined,
  head: string | undefined,
): Promise<string> {
  if (branch) {
    try {
      return (
        await git(root, ["rev-parse", "--verify", "--quiet", `refs/heads/${branch}^{commit}`])
      ).trim();
    } catch {
      // gone: fall back to the recorded head
    }
  }
  if (head) {
    return head;
  }
  throw new Error("the run has no branch and no recorded tip to compare with");
}

/** The repository's top folder, for a workspace folder inside it. */
export async function repositoryRoot(folder: string): Promise<string> {
  return (await git(folder, ["rev-parse", "--show-toplevel"])).trim();
}

/** Whether the repository at `root` holds the commit (a run's base picks its folder). */
export async function hasCommit(root: string, rev: string): Promise<boolean> {
  try {
    await git(root, ["cat-file", "-e", `${rev}^{commit}`]);
    return true;
  } catch {
    return false;
  }
}

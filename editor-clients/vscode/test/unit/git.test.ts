import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { changedFiles, fileAt, hasCommit, parseNameStatus, runTip } from "../../src/git";

const repo = mkdtempSync(join(tmpdir(), "nexus-vscode-git-"));
after(() => rmSync(repo, { recursive: true, force: true }));

function git(...args: string[]): string {
  return execFileSync("git", args, {
    cwd: repo,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@e",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@e",
    },
  }).trim();
}

git("init", "-q", "-b", "main");
writeFileSync(join(repo, "calc.py"), "def add(a, b):\n    return a - b\n");
writeFileSync(join(repo, "old name.txt"), "one\ntwo\nthree\nfour\n");
writeFileSync(join(repo, "gone.txt"), "bye\n");
git("add", ".");
git("commit", "-q", "-m", "base");
const base = git("rev-parse", "HEAD");
git("switch", "-q", "-c", "nexus/run-1");
writeFileSync(join(repo, "calc.py"), "def add(a, b):\n    return a + b\n");
git("mv", "old name.txt", "new name.txt");
git("rm", "-q", "gone.txt");
writeFileSync(join(repo, "added.py"), "x = 1\n");
git("add", ".");
git("commit", "-q", "-m", "run");
const tip = git("rev-parse", "HEAD");
git("switch", "-q", "main");

test("name-status output with renames and odd paths", () => {
  assert.deepEqual(parseNameStatus("M\0a b.py\0R087\0old\0new\0A\0x\0"), [
    { status: "M", oldPath: "a b.py", path: "a b.py" },
    { status: "R", oldPath: "old", path: "new" },
    { status: "A", oldPath: "x", path: "x" },
  ]);
  assert.deepEqual(parseNameStatus(""), []);
});

test("a run's changed files, from a real repository", async () => {
  const files = await changedFiles(repo, base, tip);
  assert.deepEqual(
    files.map((f) => [f.status, f.oldPath, f.path]),
    [
      ["A", "added.py", "added.py"],
      ["M", "calc.py", "calc.py"],
      ["D", "gone.txt", "gone.txt"],
      ["R", "old name.txt", "new name.txt"],
    ],
  );
});

test("both sides of a file, at the base and at the tip", async () => {
  assert.equal(await fileAt(repo, base, "calc.py"), "def add(a, b):\n    return a - b\n");
  assert.equal(await fileAt(repo, tip, "calc.py"), "def add(a, b):\n    return a + b\n");
  await assert.rejects(fileAt(repo, base, "added.py"), /git show failed/);
});

test("the tip is the branch while it exists, else the recorded head", async () => {
  assert.equal(await runTip(repo, "nexus/run-1", "0000"), tip);
  assert.equal(await runTip(repo, "nexus/gone", tip), tip);
  await assert.rejects(runTip(repo, "nexus/gone", undefined), /no branch and no recorded tip/);
});

test("a run's folder is the repository that holds its base", async () => {
  assert.equal(await hasCommit(repo, base), true);
  assert.equal(await hasCommit(repo, "1".repeat(40)), false);
});

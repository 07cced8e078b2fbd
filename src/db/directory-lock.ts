import { open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";

export class DirectoryInUseError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`the data dir ${dir} is in use by another Steward process (pid ${pid})`);
    this.name = "DirectoryInUseError";
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes `<dir>/steward.pid` for this process; a lock left by a dead process is taken over. */
export async function acquireDirectoryLock(dir: string): Promise<{ release(): Promise<void> }> {
  const path = join(dir, "steward.pid");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, "wx", 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return { release: () => rm(path, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const pid = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
        throw new DirectoryInUseError(dir, pid);
      }
      await rm(path, { force: true });
    }
  }
  throw new DirectoryInUseError(dir, 0);
}

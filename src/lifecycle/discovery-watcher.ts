import { type FSWatcher, readdirSync, statSync, watch } from "node:fs";
import path from "node:path";
import { isPackageFolderName } from "./discovery-scan.js";

/** Options of {@link watchAgentsDirectory}. */
export interface WatchOptions {
  /** Quiet period before onChange fires, so a burst of writes (an unpacked package) is one rescan. */
  debounceMs?: number;
  /** How often to look for the directory while it is missing, and for it being replaced. */
  pollMs?: number;
  onError?: (error: unknown) => void;
}

const DEFAULT_DEBOUNCE_MS = 300;
const DEFAULT_POLL_MS = 1000;

/**
 * Watches the agents directory and each package folder in it (non-recursively: the scan reads
 * nothing deeper). Node 20's recursive fs.watch on Linux puts an inotify watch on every file of
 * the tree, and agent packages carry node_modules and virtualenvs that would exhaust the limit.
 *
 * fs calls here are synchronous on purpose: they touch one small directory, and keeping each
 * state change in one tick means no stale async result can resurrect a closed watcher.
 */
class AgentsDirectoryWatcher {
  readonly #directory: string;
  readonly #onChange: () => void;
  readonly #onError: (error: unknown) => void;
  readonly #debounceMs: number;
  readonly #pollMs: number;
  #closed = false;
  #root: FSWatcher | null = null;
  /** Device and inode of the watched directory; a new identity means it was replaced. */
  #rootIdentity: string | null = null;
  readonly #folders = new Map<string, FSWatcher>();
  #debounceTimer: NodeJS.Timeout | null = null;
  #pollTimer: NodeJS.Timeout | null = null;

  constructor(directory: string, onChange: () => void, options: WatchOptions) {
    this.#directory = path.resolve(directory);
    this.#onChange = onChange;
    this.#onError = options.onError ?? (() => {});
    this.#debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.#pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  }

  start(): void {
    // The caller scans once itself, so an already present directory is not reported as a change.
    this.#reconcile(false);
    this.#schedulePoll();
  }

  close(): void {
    this.#closed = true;
    if (this.#debounceTimer) clearTimeout(this.#debounceTimer);
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    this.#debounceTimer = null;
    this.#pollTimer = null;
    this.#unwatch();
  }

  /** Brings the watch in line with the directory: starts, stops or restarts it when it appeared, vanished or was replaced. */
  #reconcile(announce: boolean): void {
    if (this.#closed) return;
    const identity = this.#identity();
    if (identity === this.#rootIdentity && (identity === null || this.#root)) return;
    this.#unwatch();
    if (identity !== null) this.#watchRoot(identity);
    if (announce) this.#changed();
  }

  #identity(): string | null {
    try {
      const stats = statSync(this.#directory);
      return stats.isDirectory() ? `${stats.dev}:${stats.ino}` : null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") this.#report(error);
      return null;
    }
  }

  #watchRoot(identity: string): void {
    try {
      this.#root = this.#watch(this.#directory, () => {
        this.#changed();
        this.#reconcile(true);
        this.#syncFolders();
      });
      this.#rootIdentity = identity;
      this.#syncFolders();
    } catch (error) {
      // Left unwatched; the next poll retries.
      this.#report(error);
      this.#unwatch();
    }
  }

  /** Watches each package folder present now and forgets the ones that are gone. */
  #syncFolders(): void {
    if (this.#closed || !this.#root) return;
    const present = new Set(this.#packageFolders());
    for (const [folder, watcher] of this.#folders) {
      if (present.has(folder)) continue;
      watcher.close();
      this.#folders.delete(folder);
    }
    for (const folder of present) {
      if (this.#folders.has(folder)) continue;
      try {
        this.#folders.set(
          folder,
          this.#watch(folder, () => this.#changed()),
        );
      } catch (error) {
        // Gone again already, or out of inotify watches; the root watch still sees the folder come and go.
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") this.#report(error);
      }
    }
  }

  #packageFolders(): string[] {
    try {
      return readdirSync(this.#directory, { withFileTypes: true })
        .filter((entry) => isPackageFolderName(entry.name) && (entry.isDirectory() || entry.isSymbolicLink()))
        .map((entry) => path.join(this.#directory, entry.name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") this.#report(error);
      return [];
    }
  }

  /** fs.watch with its errors reported rather than thrown from an EventEmitter. */
  #watch(target: string, onEvent: () => void): FSWatcher {
    const watcher = watch(target, { persistent: true }, () => this.#guard(onEvent));
    watcher.on("error", (error) => {
      this.#report(error);
      watcher.close();
      // A broken root watch is rebuilt by the next poll; a broken folder watch by the next sync.
      if (watcher === this.#root) this.#rootIdentity = null;
      for (const [folder, candidate] of this.#folders)
        if (candidate === watcher) this.#folders.delete(folder);
    });
    return watcher;
  }

  #unwatch(): void {
    this.#root?.close();
    this.#root = null;
    this.#rootIdentity = null;
    for (const watcher of this.#folders.values()) watcher.close();
    this.#folders.clear();
  }

  #schedulePoll(): void {
    if (this.#closed) return;
    this.#pollTimer = setTimeout(() => {
      this.#guard(() => this.#reconcile(true));
      this.#schedulePoll();
    }, this.#pollMs);
  }

  /** Restarts the quiet period; onChange fires once it passes. */
  #changed(): void {
    if (this.#closed) return;
    if (this.#debounceTimer) clearTimeout(this.#debounceTimer);
    this.#debounceTimer = setTimeout(() => {
      this.#debounceTimer = null;
      if (!this.#closed) this.#guard(this.#onChange);
    }, this.#debounceMs);
  }

  /** Runs a callback from a timer or watcher, where a throw would crash the process. */
  #guard(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.#report(error);
    }
  }

  #report(error: unknown): void {
    try {
      this.#onError(error);
    } catch {
      // An onError that throws has nowhere left to report to.
    }
  }
}

/** Calls onChange (debounced) when anything the discovery scan reads changes; creates nothing; survives the directory not existing yet and being deleted. */
export function watchAgentsDirectory(
  directory: string,
  onChange: () => void,
  options: WatchOptions = {},
): { close(): void } {
  const watcher = new AgentsDirectoryWatcher(directory, onChange, options);
  watcher.start();
  return { close: () => watcher.close() };
}

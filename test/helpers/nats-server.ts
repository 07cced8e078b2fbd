import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
} from "@nats-io/jwt";
import { stopProcess } from "./child-process.js";

/** The nats-server binary the integration tests start their own servers from. */
export const NATS_SERVER_BIN = "/usr/sbin/nats-server";

/** A throwaway nats-server in decentralized auth mode, trusting one operator with one account. */
export interface DecentralizedNatsServer {
  url: string;
  /** Seed of the account the agents' users belong to: what Steward would be configured with. */
  accountSeed: string;
  accountPublicKey: string;
  /** Seed of a signing key the account lists: the recommended key to give Steward instead. */
  signingKeySeed: string;
  /** .creds text of a user in the same account with no permission limits, for observing agents. */
  adminCreds(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts nats-server with an operator, a system account (the server's own events) and an
 * application account, all preloaded in a memory resolver, listening on a port the server picks.
 */
export async function startDecentralizedNatsServer(): Promise<DecentralizedNatsServer> {
  const operator = createOperator();
  const system = createAccount();
  const account = createAccount();
  const signingKey = createAccount();
  const operatorJwt = await encodeOperator("steward-test", operator, {
    system_account: system.getPublicKey(),
  });
  // Spelled out because the server reads a missing limit as 0: no connections at all.
  const unlimited = {
    limits: {
      conn: -1,
      subs: -1,
      data: -1,
      payload: -1,
      imports: -1,
      exports: -1,
      leaf: -1,
      wildcards: true,
    },
  };
  const systemJwt = await encodeAccount("SYS", system, unlimited, { signer: operator });
  const accountJwt = await encodeAccount(
    "steward-agents",
    account,
    { ...unlimited, signing_keys: [signingKey.getPublicKey()] },
    { signer: operator },
  );
  const config = [
    // Port -1: the server picks a free port and logs it, so no port can be taken between probe and bind.
    "listen: 127.0.0.1:-1",
    `operator: ${operatorJwt}`,
    `system_account: ${system.getPublicKey()}`,
    "resolver: MEMORY",
    "resolver_preload: {",
    `  ${system.getPublicKey()}: ${systemJwt}`,
    `  ${account.getPublicKey()}: ${accountJwt}`,
    "}",
    "",
  ].join("\n");
  const dir = await mkdtemp(join(tmpdir(), "steward-nats-"));
  const configPath = join(dir, "nats-server.conf");
  await writeFile(configPath, config);
  const child = spawn(NATS_SERVER_BIN, ["-c", configPath], { stdio: ["ignore", "ignore", "pipe"] });
  let port: number;
  try {
    port = await listeningPort(child);
  } catch (error) {
    await stopProcess(child);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    accountSeed: new TextDecoder().decode(account.getSeed()),
    accountPublicKey: account.getPublicKey(),
    signingKeySeed: new TextDecoder().decode(signingKey.getSeed()),
    async adminCreds() {
      const user = createUser();
      const jwt = await encodeUser("test-admin", user, account);
      return new TextDecoder().decode(fmtCreds(jwt, user));
    },
    async stop() {
      await stopProcess(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A throwaway nats-server with JetStream that a test can stop and start again on the same port. */
export interface RestartableNatsServer {
  url: string;
  stop(): Promise<void>;
  /** Starts it again on the same port with the same JetStream store. */
  start(): Promise<void>;
  /** Stops it for good and removes its store. */
  dispose(): Promise<void>;
}

export async function startRestartableNatsServer(): Promise<RestartableNatsServer> {
  const storeDir = await mkdtemp(join(tmpdir(), "steward-nats-js-"));
  const launch = async (port: number | "-1") => {
    const child = spawn(NATS_SERVER_BIN, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    try {
      return { child, port: await listeningPort(child) };
    } catch (error) {
      await stopProcess(child);
      throw error;
    }
  };
  let { child, port } = await launch("-1");
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: () => stopProcess(child),
    async start() {
      ({ child } = await launch(port));
    },
    async dispose() {
      await stopProcess(child);
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}

/** Resolves with the client port once the server logs that it is ready; rejects with its log if it exits. */
function listeningPort(child: ChildProcess, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let log = "";
    let port: number | undefined;
    const timer = setTimeout(() => fail(`nats-server not ready after ${timeoutMs} ms`), timeoutMs);
    const fail = (reason: string) => {
      clearTimeout(timer);
      reject(new Error(`${reason}:\n${log}`));
    };
    child.once("error", (error) => fail(`nats-server could not start (${error.message})`));
    child.once("exit", (code) => fail(`nats-server exited with ${code}`));
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      log += chunk;
      const listening = /Listening for client connections on [^\s]+:(\d+)/.exec(log);
      if (listening?.[1]) port = Number(listening[1]);
      if (port !== undefined && log.includes("Server is ready")) {
        clearTimeout(timer);
        // Keep draining the log without holding it, so a chatty server never blocks on a full pipe.
        child.stderr?.removeAllListeners("data");
        child.stderr?.resume();
        resolve(port);
      }
    });
  });
}

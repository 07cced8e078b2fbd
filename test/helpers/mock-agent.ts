import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type ReceivedRequest, readRequest } from "./received-request.js";

/**
 * A stand-in for an external agent on 127.0.0.1: records every request and answers
 * as the test says (a status, a JSON body, a delay, or never).
 */

export type { ReceivedRequest };

export interface MockReply {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  delayMs?: number;
  /** Never answer (the socket stays open until the server closes). */
  hang?: boolean;
}

export type MockHandler = (request: ReceivedRequest, index: number) => MockReply | Promise<MockReply>;

export interface MockAgent {
  url: string;
  requests: ReceivedRequest[];
  /** Replaces how the agent answers from now on. */
  answer(handler: MockHandler): void;
  close(): Promise<void>;
}

const echo: MockHandler = (request) => ({ body: { result: `echo: ${String(request.body.input)}` } });

export async function startMockAgent(handler: MockHandler = echo): Promise<MockAgent> {
  let current = handler;
  const requests: ReceivedRequest[] = [];
  const hanging = new Set<ServerResponse>();
  const server = createServer(async (incoming, response) => {
    const request = await readRequest(incoming);
    requests.push(request);
    const reply = await current(request, requests.length - 1);
    if (reply.hang) {
      hanging.add(response);
      return;
    }
    if (reply.delayMs) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
    // A string body is sent as it is (Slack answers a plain "ok"); anything else as JSON.
    const text = typeof reply.body === "string";
    response.writeHead(reply.status ?? 200, {
      "content-type": text ? "text/plain" : "application/json",
      ...reply.headers,
    });
    response.end(reply.body === undefined ? "" : text ? reply.body : JSON.stringify(reply.body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/invoke`,
    requests,
    answer(next) {
      current = next;
    },
    async close() {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

import { createSocket } from "node:dgram";

/**
 * A tiny DNS server on 127.0.0.1 for tests that need a name to resolve somewhere
 * chosen (STEWARD_DNS_SERVERS / AddressGuard's dnsServers point at it). It answers A
 * queries from `records`; a known name asked for another type gets an empty answer
 * (ENODATA), an unknown name NXDOMAIN. Answers carry TTL 0 and `setRecords` changes
 * them at runtime, so a test can stage DNS rebinding: one answer when a URL is checked,
 * another when it is connected to.
 */

export interface TestDnsServer {
  /** "127.0.0.1:<port>", the form dnsServers takes. */
  address: string;
  /** Every name asked, lower-case, in order. */
  queries: string[];
  /** From now on `name` answers `ips` (an empty list: NOERROR with no address). */
  setRecords(name: string, ips: string[]): void;
  close(): Promise<void>;
}

const TYPE_A = 1;
const CLASS_IN = 1;
const RCODE_NXDOMAIN = 3;

export async function startDnsServer(records: Record<string, string[]>): Promise<TestDnsServer> {
  const known = new Map(Object.entries(records).map(([name, ips]) => [normalized(name), ips]));
  const queries: string[] = [];
  const socket = createSocket("udp4");

  socket.on("message", (message, remote) => {
    const question = parseQuestion(message);
    if (!question) return;
    queries.push(question.name);
    const ips = known.get(question.name);
    const answers = ips && question.type === TYPE_A ? ips : [];
    const reply = buildReply(message, question.end, answers, ips ? 0 : RCODE_NXDOMAIN);
    socket.send(reply, remote.port, remote.address);
  });

  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${socket.address().port}`,
    queries,
    setRecords(name, ips) {
      known.set(normalized(name), [...ips]);
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** Names are matched lower-case and without the root's trailing dot ("Agent.Test." is "agent.test"). */
function normalized(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

function parseQuestion(message: Buffer): { name: string; type: number; end: number } | undefined {
  if (message.length < 12 || message.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  for (;;) {
    const length = message[offset];
    if (length === undefined || offset + length >= message.length) return undefined;
    offset += 1;
    if (length === 0) break;
    labels.push(message.subarray(offset, offset + length).toString("ascii"));
    offset += length;
  }
  if (offset + 4 > message.length) return undefined;
  return { name: labels.join(".").toLowerCase(), type: message.readUInt16BE(offset), end: offset + 4 };
}

function buildReply(query: Buffer, questionEnd: number, ips: string[], rcode: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0); // id
  // QR + AA, the query's RD bit echoed, RA, and the response code.
  header.writeUInt16BE(0x8400 | (query.readUInt16BE(2) & 0x0100) | 0x0080 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(ips.length, 6);
  const answers = ips.map((ip) => {
    const answer = Buffer.alloc(16);
    answer.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    answer.writeUInt16BE(TYPE_A, 2);
    answer.writeUInt16BE(CLASS_IN, 4);
    answer.writeUInt32BE(0, 6); // TTL 0: nothing may cache it
    answer.writeUInt16BE(4, 10);
    Buffer.from(ip.split(".").map(Number)).copy(answer, 12);
    return answer;
  });
  return Buffer.concat([header, query.subarray(12, questionEnd), ...answers]);
}

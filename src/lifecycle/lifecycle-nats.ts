import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { TSchema } from "typebox";
import { Compile } from "typebox/compile";
import type { ManagedAgentRow } from "../db/schema.js";
import type { ControlChannel } from "./agent-config.service.js";
import { HeartbeatBody, LogsBody, MetricsBody } from "./agent-telemetry.schemas.js";

/** What arrives from agents on `agents.{id}.heartbeat|metrics|logs`, already validated. */
export interface AgentMessageHandlers {
  findAgent(id: string): Promise<ManagedAgentRow | undefined>;
  heartbeat(agent: ManagedAgentRow, body: HeartbeatBody): Promise<void>;
  metrics(agent: ManagedAgentRow, body: MetricsBody): Promise<void>;
  logs(agent: ManagedAgentRow, body: LogsBody): Promise<void>;
}

/**
 * Steward's side of the managed agents' NATS subjects: it listens to what agents
 * report and sends them control messages. Without decentralized auth the subject is
 * the only proof of who sent a message (docs/nats-auth.md).
 */
export class LifecycleNats implements ControlChannel {
  private readonly subscriptions: Subscription[] = [];

  private constructor(
    private readonly connection: NatsConnection,
    /** Replicas share the work: each message goes to one member of this queue group. */
    private readonly queueGroup: string,
    private readonly logger: Logger,
  ) {}

  /** Connects (failing fast when the server does not answer) and then reconnects for ever. */
  static async connect(url: string, queueGroup: string, logger: Logger): Promise<LifecycleNats> {
    const connection = await connect({ servers: url, name: "steward-lifecycle", maxReconnectAttempts: -1 });
    return new LifecycleNats(connection, queueGroup, logger);
  }

  listen(handlers: AgentMessageHandlers): void {
    this.subscribe("heartbeat", HeartbeatBody, handlers.heartbeat.bind(handlers), handlers);
    this.subscribe("metrics", MetricsBody, handlers.metrics.bind(handlers), handlers);
    this.subscribe("logs", LogsBody, handlers.logs.bind(handlers), handlers);
  }

  publishControl(agentId: string, message: Record<string, unknown>): void {
    this.connection.publish(`agents.${agentId}.control`, JSON.stringify(message));
  }

  async close(): Promise<void> {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    await this.connection.drain();
  }

  private subscribe<T extends TSchema>(
    kind: string,
    schema: T,
    handle: (agent: ManagedAgentRow, body: never) => Promise<void>,
    handlers: AgentMessageHandlers,
  ): void {
    const validator = Compile(schema);
    const subscription = this.connection.subscribe(`agents.*.${kind}`, {
      queue: this.queueGroup,
      callback: (error, message) => {
        if (error) {
          this.logger.warn({ err: error, kind }, "agent subscription error");
          return;
        }
        const agentId = message.subject.split(".")[1] as string;
        void (async () => {
          let body: unknown;
          try {
            body = message.json();
          } catch {
            this.logger.warn({ agent_id: agentId, kind }, "agent message is not JSON; dropped");
            return;
          }
          if (!validator.Check(body)) {
            this.logger.warn({ agent_id: agentId, kind }, "agent message does not match its schema; dropped");
            return;
          }
          // Over HTTP a heartbeat naming another agent is refused; here it is dropped.
          const named = (body as { agent_id?: unknown }).agent_id;
          if (named !== undefined && named !== agentId) {
            this.logger.warn(
              { agent_id: agentId, named, kind },
              "agent message names another agent; dropped",
            );
            return;
          }
          const agent = await handlers.findAgent(agentId);
          if (!agent) {
            this.logger.warn({ agent_id: agentId, kind }, "agent message for an unknown agent; dropped");
            return;
          }
          await handle(agent, body as never);
        })().catch((failure: unknown) =>
          this.logger.error({ err: failure, agent_id: agentId, kind }, "agent message could not be recorded"),
        );
      },
    });
    this.subscriptions.push(subscription);
  }
}

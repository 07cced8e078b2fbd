import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/eventually.js";
import { AGENTS, fieldsOf, registerByHand, useAgentsDir } from "../helpers/managed-agents.js";
import { type MockAgent, startMockAgent } from "../helpers/mock-agent.js";
import { createKey, createOrgWithKey, invokeEnv, registerAgent } from "../helpers/steward.js";

/**
 * Managed agents through the API: alert rules, the alerts they open and resolve, and their
 * announcement on an external agent.
 * On PostgreSQL; each group runs its own Steward over this file's agents directory, so each
 * starts from the same start-time scan.
 */

const agentsDir = useAgentsDir();

describe("alerts", () => {
  let channel: MockAgent;
  const api = agentsDir.useSteward(() => invokeEnv({ STEWARD_DELIVERY_RETRY_DELAYS: "100ms" }));
  beforeAll(async () => {
    channel = await startMockAgent(() => ({ status: 200, body: {} }));
  });
  afterAll(async () => {
    await channel?.close();
  });
  const alerts = async (query: string) => {
    const response = await api.get(`${AGENTS}/alerts?${query}`);
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  /** Creates an alert rule on one agent (201); answers the rule. */
  const createRule = async (agent: { id: string }, rule: Record<string, unknown>) => {
    const response = await api.post(`${AGENTS}/alert-rules`, { ...rule, agent_id: agent.id });
    expect(response.statusCode, response.body).toBe(201);
    return response.json();
  };

  describe("happy path", () => {
    it("a metric above a rule's threshold opens an alert; a value below resolves it", async () => {
      const agent = await registerByHand(api);
      const body = { name: "too many errors", kind: "metric_threshold", metric: "errors", threshold: 5 };
      const rule = await createRule(agent, body);
      expect(rule).toMatchObject({ ...body, enabled: true });
      expect(
        (await api.get(`${AGENTS}/alert-rules`)).json().items.map((r: { id: string }) => r.id),
      ).toContain(rule.id);

      expect((await api.post(`${AGENTS}/${agent.id}/metrics`, { errors: 9 }, agent.token)).statusCode).toBe(
        202,
      );
      let open: { items: Array<Record<string, unknown>> } = { items: [] };
      await until(async () => {
        open = await alerts(`open=true&agent_id=${agent.id}`);
        return open.items.length > 0;
      });
      expect(open.items).toHaveLength(1);
      const [alert] = open.items;
      expect(alert).toMatchObject({
        agent_id: agent.id,
        rule_id: rule.id,
        kind: "metric_threshold",
        resolved_at: null,
        details: { metric: "errors", value: 9, threshold: 5 },
      });
      // Still above: the same alert stays open, no second one.
      await api.post(`${AGENTS}/${agent.id}/metrics`, { errors: 12 }, agent.token);
      expect((await alerts(`agent_id=${agent.id}`)).total).toBe(1);
      const health = (await api.get(`${AGENTS}/${agent.id}/health`)).json();
      expect(health.open_alerts.map((item: { id: string }) => item.id)).toEqual([alert?.id]);

      expect((await api.post(`${AGENTS}/${agent.id}/metrics`, { errors: 1 }, agent.token)).statusCode).toBe(
        202,
      );
      await until(async () => (await alerts(`open=true&agent_id=${agent.id}`)).items.length === 0);
      expect((await alerts(`open=true&agent_id=${agent.id}`)).items).toEqual([]);
      const resolved = (await alerts(`open=false&agent_id=${agent.id}`)).items;
      expect(resolved.map((item: { id: string }) => item.id)).toEqual([alert?.id]);
      expect(resolved[0].resolved_at).not.toBeNull();
    });

    it("announces an alert on the external agent a rule names", async () => {
      const channelId = await registerAgent(api.t, channel.url, {
        platform_config: { webhook_url: channel.url },
      });
      const agent = await registerByHand(api);
      const rule = await createRule(agent, {
        name: "queue backlog",
        kind: "metric_threshold",
        metric: "queue_depth",
        threshold: 100,
        notify_external_agent_id: channelId,
      });
      expect(rule.notify_external_agent_id).toBe(channelId);

      const report = { custom: { queue_depth: 250 } };
      expect((await api.post(`${AGENTS}/${agent.id}/metrics`, report, agent.token)).statusCode).toBe(202);
      await until(() => channel.requests.length > 0);
      expect(channel.requests).toHaveLength(1);
      const [alert] = (await alerts(`open=true&agent_id=${agent.id}`)).items;
      expect(alert).toBeDefined();
      const body = channel.requests[0]?.rawBody ?? "";
      expect(body).toContain(alert.id);
      expect(body).toContain(agent.agent.name);
      expect(body).toContain("queue_depth");
      // The message links to the managed agent's page on the dashboard.
      expect(JSON.parse(body).data.dashboard_url).toMatch(new RegExp(`/managed/${agent.id}$`));
    });
    it("an error-rate rule fires above the share of errors in its window and clears below", async () => {
      const agent = await registerByHand(api);
      const rule = await createRule(agent, {
        name: "error rate",
        kind: "error_rate",
        threshold: 0.5,
        window_s: 60,
      });
      const report = (body: object) => api.post(`${AGENTS}/${agent.id}/metrics`, body, agent.token);
      expect((await report({ events_processed: 10, errors: 8 })).statusCode).toBe(202);
      const [open] = (await alerts(`open=true&agent_id=${agent.id}`)).items;
      expect(open).toMatchObject({ kind: "error_rate", rule_id: rule.id });
      expect((await report({ events_processed: 100, errors: 0 })).statusCode).toBe(202);
      expect((await alerts(`open=true&agent_id=${agent.id}`)).total).toBe(0);
    });

    it("deleting a rule resolves the alerts it left open (nothing else could close them)", async () => {
      const agent = await registerByHand(api);
      const rules: string[] = [];
      for (const metric of ["memory", "cpu"]) {
        const rule = await createRule(agent, {
          name: `doomed ${metric} rule`,
          kind: "metric_threshold",
          metric,
          threshold: 100,
        });
        rules.push(rule.id);
      }
      await api.post(`${AGENTS}/${agent.id}/metrics`, { memory: 500, cpu: 200 }, agent.token);
      const open = (await alerts(`open=true&agent_id=${agent.id}`)).items;
      expect(open.map((alert: { rule_id: string }) => alert.rule_id).sort()).toEqual([...rules].sort());
      // Both rules' alerts are of one kind: deleting the second must not clash with the first.
      for (const rule of rules) {
        const deleted = await api.del(`${AGENTS}/alert-rules/${rule}`);
        expect(deleted.statusCode, deleted.body).toBe(204);
      }
      expect((await alerts(`open=true&agent_id=${agent.id}`)).total).toBe(0);
      const kept = (await alerts(`agent_id=${agent.id}`)).items;
      expect(kept.map((alert: { id: string }) => alert.id).sort()).toEqual(
        open.map((alert: { id: string }) => alert.id).sort(),
      );
      for (const alert of kept) {
        expect(alert.rule_id).toBeNull();
        expect(alert.resolved_at).not.toBeNull();
      }
      expect((await api.get(`${AGENTS}/${agent.id}/health`)).json().open_alerts).toEqual([]);
    });

    it.each(["DELETE", "PUT status deleted"])(
      "deleting the agent (%s) resolves its open alerts, which nothing could clear after",
      async (how) => {
        const agent = await registerByHand(api);
        await createRule(agent, {
          name: `hot (${how})`,
          kind: "metric_threshold",
          metric: "cpu",
          threshold: 10,
        });
        await api.post(`${AGENTS}/${agent.id}/metrics`, { cpu: 50 }, agent.token);
        await until(async () => (await alerts(`open=true&agent_id=${agent.id}`)).total === 1);
        const deleted =
          how === "DELETE"
            ? await api.del(`${AGENTS}/${agent.id}`)
            : await api.put(`${AGENTS}/${agent.id}/status`, { status: "deleted" });
        expect(deleted.statusCode, deleted.body).toBe(how === "DELETE" ? 204 : 200);
        expect((await alerts(`open=true&agent_id=${agent.id}`)).total).toBe(0);
        const [resolved] = (await alerts(`agent_id=${agent.id}`)).items;
        expect(resolved.resolved_at).not.toBeNull();
      },
    );
  });

  describe("errors", () => {
    it("refuses incomplete or clashing rules", async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ name: "no metric", kind: "metric_threshold", threshold: 5 }, "metric"],
        [{ name: "bad kind", kind: "vibes", threshold: 5 }, "kind"],
        [
          {
            name: "nowhere",
            kind: "missed_heartbeats",
            threshold: 3,
            notify_external_agent_id: "agt_00000000000000000000000000",
          },
          "notify_external_agent_id",
        ],
      ];
      for (const [rule, field] of cases) {
        const response = await api.post(`${AGENTS}/alert-rules`, rule);
        expect(response.statusCode, String(rule.name)).toBe(400);
        expect(fieldsOf(response)).toContain(field);
      }
      const body = { name: "twice", kind: "missed_heartbeats", threshold: 3 };
      expect((await api.post(`${AGENTS}/alert-rules`, body)).statusCode).toBe(201);
      const again = await api.post(`${AGENTS}/alert-rules`, body);
      expect(again.statusCode).toBe(409);
    });
  });

  describe("security", () => {
    it("rules cannot notify another organization's external agent; readers and agents cannot manage rules", async () => {
      const other = await createOrgWithKey(api.t, "admin");
      const foreign = await registerAgent(api.t, channel.url, {}, other.key);
      const response = await api.post(`${AGENTS}/alert-rules`, {
        name: "foreign channel",
        kind: "missed_heartbeats",
        threshold: 3,
        notify_external_agent_id: foreign,
      });
      expect(response.statusCode).toBe(400);
      expect(fieldsOf(response)).toContain("notify_external_agent_id");

      const agent = await registerByHand(api);
      const viewer = await createKey(api.t, "viewer");
      const rule = { name: "not yours", kind: "missed_heartbeats", threshold: 3 };
      expect((await api.post(`${AGENTS}/alert-rules`, rule, viewer)).statusCode).toBe(403);
      expect((await api.post(`${AGENTS}/alert-rules`, rule, agent.token)).statusCode).toBe(403);
      expect((await api.get(`${AGENTS}/alert-rules`, agent.token)).statusCode).toBe(403);
      // Another organization sees none of this organization's rules or alerts.
      expect((await api.get(`${AGENTS}/alert-rules`, other.key)).json().total).toBe(0);
      expect((await api.get(`${AGENTS}/alerts`, other.key)).json().total).toBe(0);
    });
  });
});

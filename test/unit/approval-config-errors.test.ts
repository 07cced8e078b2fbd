import { describe, expect, it } from "vitest";
import type { ApprovalConfig } from "../../src/approvals/approval-config.js";
import { approvalConfigErrors } from "../../src/approvals/triggers/config-errors.js";

const PREFIX = "approval_config";

describe("approvalConfigErrors", () => {
  it("accepts a complete, sensible config", () => {
    const config: ApprovalConfig = {
      triggers: {
        cost_threshold: 5,
        payload_patterns: ["refund", "drop\\s+table", "a".repeat(200)],
        rate: { max_calls: 10, window: "1h" },
      },
      workflow: {
        approver_roles: ["admin"],
        required_approvals: 2,
        timeout: "2d",
        reminder_interval: 3600,
        escalation_after: "365d",
      },
      trusted_users: ["u-1"],
    };
    expect(approvalConfigErrors(config, PREFIX)).toEqual([]);
  });

  it("names each pattern that cannot be used by its index", () => {
    const config: ApprovalConfig = {
      triggers: { payload_patterns: ["fine", "(unclosed", "x".repeat(201), "(a+)+"] },
    };
    const errors = approvalConfigErrors(config, PREFIX);
    expect(errors.map((error) => error.field)).toEqual([
      "approval_config.triggers.payload_patterns[1]",
      "approval_config.triggers.payload_patterns[2]",
      "approval_config.triggers.payload_patterns[3]",
    ]);
    expect(errors[0]?.message).toMatch(/^is not a valid regular expression: .*Unterminated group/);
    expect(errors[1]?.message).toBe("is longer than 200 characters");
    expect(errors[2]?.message).toMatch(/exponential time/);
  });

  it.each([
    ["zero seconds as text", { triggers: { rate: { max_calls: 1, window: "0s" } } }, "triggers.rate.window"],
    [
      "more than a year",
      { triggers: {}, workflow: { approver_roles: ["admin"], timeout: "366d" } },
      "workflow.timeout",
    ],
    [
      "more than a year in seconds",
      { triggers: {}, workflow: { approver_roles: ["admin"], reminder_interval: 365 * 86_400 + 1 } },
      "workflow.reminder_interval",
    ],
    [
      "a huge number of days",
      { triggers: {}, workflow: { approver_roles: ["admin"], escalation_after: "99999999999999999999d" } },
      "workflow.escalation_after",
    ],
    ["an unknown unit", { triggers: { rate: { max_calls: 1, window: "2w" } } }, "triggers.rate.window"],
    ["a fraction of a second", { triggers: { rate: { max_calls: 1, window: 1.5 } } }, "triggers.rate.window"],
  ] as Array<[string, ApprovalConfig, string]>)("refuses a duration of %s", (_, config, field) => {
    expect(approvalConfigErrors(config, PREFIX).map((error) => error.field)).toEqual([`${PREFIX}.${field}`]);
  });

  it("accepts a duration of exactly 365 days", () => {
    const config: ApprovalConfig = { triggers: { rate: { max_calls: 1, window: 365 * 86_400 } } };
    expect(approvalConfigErrors(config, PREFIX)).toEqual([]);
  });

  it("requires a workflow to name an approver role or user", () => {
    for (const workflow of [{}, { approver_roles: [], approver_users: [] }, { timeout: "1h" }]) {
      expect(approvalConfigErrors({ triggers: {}, workflow }, PREFIX)).toEqual([
        {
          field: "approval_config.workflow",
          message: "must name at least one approver in approver_roles or approver_users",
        },
      ]);
    }
    expect(approvalConfigErrors({ triggers: {}, workflow: { approver_users: ["key_1"] } }, PREFIX)).toEqual(
      [],
    );
    expect(approvalConfigErrors({ triggers: {} }, PREFIX)).toEqual([]);
  });

  it("refuses a quorum larger than the distinct named users who could reach it", () => {
    const workflow = { approver_users: ["key_1", "key_2", "key_2"], required_approvals: 3 };
    expect(approvalConfigErrors({ triggers: {}, workflow }, PREFIX)).toEqual([
      {
        field: "approval_config.workflow.required_approvals",
        message: "is 3, more than the 2 distinct approver_users who could approve",
      },
    ]);
    // Roles or escalation can bring in more approvers, so the count is not known.
    expect(
      approvalConfigErrors({ triggers: {}, workflow: { ...workflow, approver_roles: ["admin"] } }, PREFIX),
    ).toEqual([]);
    expect(
      approvalConfigErrors({ triggers: {}, workflow: { ...workflow, escalation_to: ["owner"] } }, PREFIX),
    ).toEqual([]);
  });

  it("names fields without a prefix when given none", () => {
    expect(approvalConfigErrors({ triggers: { payload_patterns: ["("] }, workflow: {} }, "")).toEqual([
      { field: "triggers.payload_patterns[0]", message: expect.stringMatching(/^is not a valid/) },
      { field: "workflow", message: expect.any(String) },
    ]);
  });
});

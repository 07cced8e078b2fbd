import { eq } from "drizzle-orm";
import type { Logger } from "pino";
import type { RequestContext } from "../audit/audit.js";
import type { Db } from "../db/database.js";
import { agentDiscoveryReports } from "../db/schema.js";
import type { PackageProblem } from "./agent-package.js";
import { scanAgentsDirectory } from "./discovery-scan.js";
import { watchAgentsDirectory } from "./discovery-watcher.js";
import type { ManagedAgentService } from "./managed-agent.service.js";

export interface DiscoveryReport {
  directory: string;
  directory_missing: boolean;
  scanned_at: string;
  agents: Array<{ id: string; name: string; version: string; file: string; created: boolean }>;
  problems: PackageProblem[];
}

/**
 * Scans the agents directory into an organization's registry: each valid package
 * becomes (or stays) one `discovered` agent, each broken one a line in the report,
 * which is kept per organization for GET /agents/discovery-report.
 */
export class AgentDiscovery {
  constructor(
    private readonly db: Db,
    private readonly agents: ManagedAgentService,
    private readonly directory: string,
    private readonly logger: Logger,
  ) {}

  async scan(organizationId: string, context: RequestContext): Promise<DiscoveryReport> {
    const result = await scanAgentsDirectory(this.directory);
    const agents: DiscoveryReport["agents"] = [];
    for (const pkg of result.packages) {
      const { agent, created } = await this.agents.recordDiscovered(organizationId, pkg, context);
      agents.push({ id: agent.id, name: pkg.name, version: pkg.version, file: pkg.file, created });
    }
    const report: DiscoveryReport = {
      directory: result.directory,
      directory_missing: result.directoryMissing,
      scanned_at: new Date().toISOString(),
      agents,
      problems: result.problems,
    };
    await this.db
      .insert(agentDiscoveryReports)
      .values({
        organizationId,
        directory: result.directory,
        scannedAt: new Date(report.scanned_at),
        report: { ...report },
      })
      .onConflictDoUpdate({
        target: agentDiscoveryReports.organizationId,
        set: { directory: result.directory, scannedAt: new Date(report.scanned_at), report: { ...report } },
      });
    if (report.problems.length > 0)
      this.logger.warn(
        { problems: report.problems },
        "some agent packages were refused; see the discovery report",
      );
    return report;
  }

  /** The organization's last scan, or undefined before the first. */
  async report(organizationId: string): Promise<DiscoveryReport | undefined> {
    const [row] = await this.db
      .select({ report: agentDiscoveryReports.report })
      .from(agentDiscoveryReports)
      .where(eq(agentDiscoveryReports.organizationId, organizationId));
    return row?.report as DiscoveryReport | undefined;
  }

  /** Rescans for `organizationId` whenever the directory changes, until the returned function is called. */
  watch(organizationId: string, context: RequestContext): () => void {
    const watcher = watchAgentsDirectory(
      this.directory,
      () => {
        this.scan(organizationId, context).catch((error: unknown) =>
          this.logger.error({ err: error }, "agent discovery scan failed"),
        );
      },
      { onError: (error) => this.logger.warn({ err: error }, "watching the agents directory failed") },
    );
    return () => watcher.close();
  }
}

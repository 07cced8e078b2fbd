import { desc, eq, or } from "drizzle-orm";
import { type RequestContext, recordAudit } from "../audit/audit.js";
import type { Db } from "../db/database.js";
import { isUniqueViolation } from "../db/errors.js";
import { selectRows } from "../db/paginate.js";
import { type OrganizationRow, organizations } from "../db/schema.js";
import { AppError } from "../errors.js";
import type { PageRequest } from "../http/pagination.js";
import { newId } from "../ids.js";

/** The organization that exists from the first start, for single-tenant installs and bootstrap keys. */
export const DEFAULT_ORGANIZATION_ID = "default";

export class OrganizationService {
  constructor(private readonly db: Db) {}

  async ensureDefault(): Promise<void> {
    await this.db
      .insert(organizations)
      .values({ id: DEFAULT_ORGANIZATION_ID, name: DEFAULT_ORGANIZATION_ID })
      .onConflictDoNothing();
  }

  async create(name: string, context: RequestContext): Promise<OrganizationRow> {
    try {
      return await this.db.transaction(async (tx) => {
        const [row] = await tx
          .insert(organizations)
          .values({ id: newId("organization"), name })
          .returning();
        if (!row) throw new Error("insert returned no row");
        await recordAudit(tx, context, {
          organizationId: row.id,
          action: "organization.created",
          resourceType: "organization",
          resourceId: row.id,
          details: { name },
        });
        return row;
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new AppError("CONFLICT", `an organization named "${name}" already exists`, { field: "name" });
      }
      throw error;
    }
  }

  async list(page: PageRequest): Promise<{ rows: OrganizationRow[]; total: number }> {
    return selectRows(
      this.db,
      organizations,
      undefined,
      [desc(organizations.createdAt), desc(organizations.id)],
      page,
    );
  }

  /** Finds an organization by id or by name (JWT claims may carry either). */
  async findByIdOrName(idOrName: string): Promise<OrganizationRow | undefined> {
    const [row] = await this.db
      .select()
      .from(organizations)
      .where(or(eq(organizations.id, idOrName), eq(organizations.name, idOrName)))
      .limit(1);
    return row;
  }

  async exists(id: string): Promise<boolean> {
    const [row] = await this.db
      .select({ id: organizations.id })
      .from(organizations)
      .where(eq(organizations.id, id));
    return row !== undefined;
  }
}

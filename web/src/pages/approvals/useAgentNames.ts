import { useLoader } from "../../api/hooks";

/**
 * Agent names for the ids on screen (approvals carry only the id). An agent that cannot
 * be read (deleted since) keeps its id as its name.
 */
export function useAgentNames(ids: string[]): Record<string, string> {
  const unique = [...new Set(ids)].sort();
  const names = useLoader(
    async (api) =>
      Object.fromEntries(
        await Promise.all(
          unique.map(async (id) => {
            try {
              return [id, (await api.get<{ name: string }>(`/external-agents/${id}`)).name];
            } catch {
              return [id, id];
            }
          }),
        ),
      ) as Record<string, string>,
    [unique.join(",")],
  );
  return names.data ?? {};
}

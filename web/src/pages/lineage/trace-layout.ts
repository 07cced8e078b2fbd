import type { GraphNodeType, LineageGraph } from "./lineage-types";

/**
 * A layered, left-to-right layout of a call graph: external users, then systems, then
 * credentials, then agents, with each downstream agent one column right of its caller.
 */

export const NODE_WIDTH = 156;
export const NODE_HEIGHT = 56;
/** Wide enough for an edge's cost and duration label between two columns. */
const COLUMN_GAP = 112;
const ROW_GAP = 28;
const PADDING = 16;

const FIRST_LAYER: Record<GraphNodeType, number> = {
  external_user: 0,
  external_system: 1,
  credential: 2,
  agent: 3,
};

type GraphNode = LineageGraph["nodes"][number];
type GraphEdge = LineageGraph["edges"][number];

export interface PlacedNode extends GraphNode {
  layer: number;
  x: number;
  y: number;
}

export interface PlacedEdge extends GraphEdge {
  /** An SVG path from the caller's right side to the callee's left side. */
  path: string;
  labelX: number;
  labelY: number;
}

export interface TraceLayout {
  width: number;
  height: number;
  nodes: PlacedNode[];
  edges: PlacedEdge[];
}

/**
 * The edges without the ones that close a cycle (an agent calling back an agent that
 * called it), found by a depth-first walk from users towards agents. What is left is
 * acyclic, so every node gets a column.
 */
function forwardEdges(nodes: GraphNode[], edges: GraphEdge[]): GraphEdge[] {
  const outgoing = new Map<string, GraphEdge[]>();
  for (const edge of edges) outgoing.set(edge.from, [...(outgoing.get(edge.from) ?? []), edge]);
  const state = new Map<string, "open" | "done">();
  const closing = new Set<GraphEdge>();
  const visit = (id: string) => {
    state.set(id, "open");
    for (const edge of outgoing.get(id) ?? []) {
      const next = state.get(edge.to);
      if (next === "open") closing.add(edge);
      else if (next === undefined) visit(edge.to);
    }
    state.set(id, "done");
  };
  const byColumn = [...nodes].sort((a, b) => FIRST_LAYER[a.type] - FIRST_LAYER[b.type]);
  for (const node of byColumn) if (!state.has(node.id)) visit(node.id);
  return edges.filter((edge) => !closing.has(edge));
}

/** Each node's column: its type's first column, pushed right past every caller (longest path). */
function assignLayers(nodes: GraphNode[], edges: GraphEdge[]): Map<string, number> {
  const layers = new Map(nodes.map((node) => [node.id, FIRST_LAYER[node.type]]));
  const forward = forwardEdges(nodes, edges);
  // An acyclic graph settles within one pass per node.
  for (let pass = 0; pass < nodes.length; pass++) {
    let moved = false;
    for (const edge of forward) {
      const from = layers.get(edge.from);
      const to = layers.get(edge.to);
      if (from === undefined || to === undefined || to > from) continue;
      layers.set(edge.to, from + 1);
      moved = true;
    }
    if (!moved) break;
  }
  return layers;
}

/**
 * Orders each column by the mean row of its callers, which untangles most crossings, and
 * drops empty columns (a graph of nested calls only has no users or systems).
 */
function orderColumns(nodes: GraphNode[], edges: GraphEdge[], layers: Map<string, number>): GraphNode[][] {
  const columns: GraphNode[][] = [];
  for (const node of nodes) {
    const layer = layers.get(node.id) ?? 0;
    columns[layer] = [...(columns[layer] ?? []), node];
  }
  const row = new Map<string, number>();
  return Array.from(columns, (column = []) => {
    const weight = (node: GraphNode) => {
      const callers = edges
        .filter((edge) => edge.to === node.id)
        .map((edge) => row.get(edge.from))
        .filter((index): index is number => index !== undefined);
      return callers.length === 0
        ? Number.POSITIVE_INFINITY
        : callers.reduce((a, b) => a + b) / callers.length;
    };
    const weights = new Map(column.map((node) => [node.id, weight(node)]));
    // A stable sort keeps the API's order among nodes with no caller drawn yet.
    const ordered = [...column].sort((a, b) => {
      const [first, second] = [weights.get(a.id) ?? 0, weights.get(b.id) ?? 0];
      return first === second ? 0 : first - second;
    });
    for (const [index, node] of ordered.entries()) row.set(node.id, index);
    return ordered;
  }).filter((column) => column.length > 0);
}

export function layoutTrace(graph: LineageGraph): TraceLayout {
  const layers = assignLayers(graph.nodes, graph.edges);
  const columns = orderColumns(graph.nodes, graph.edges, layers);
  const tallest = Math.max(1, ...columns.map((column) => column.length));
  const height = PADDING * 2 + tallest * NODE_HEIGHT + (tallest - 1) * ROW_GAP;
  const width = PADDING * 2 + columns.length * NODE_WIDTH + Math.max(0, columns.length - 1) * COLUMN_GAP;

  const placed = new Map<string, PlacedNode>();
  columns.forEach((column, layer) => {
    const columnHeight = column.length * NODE_HEIGHT + Math.max(0, column.length - 1) * ROW_GAP;
    const top = (height - columnHeight) / 2;
    column.forEach((node, index) => {
      placed.set(node.id, {
        ...node,
        layer,
        x: PADDING + layer * (NODE_WIDTH + COLUMN_GAP),
        y: top + index * (NODE_HEIGHT + ROW_GAP),
      });
    });
  });

  const edges = graph.edges.flatMap((edge): PlacedEdge[] => {
    const from = placed.get(edge.from);
    const to = placed.get(edge.to);
    if (!from || !to) return [];
    const x1 = from.x + NODE_WIDTH;
    const y1 = from.y + NODE_HEIGHT / 2;
    const x2 = to.x;
    const y2 = to.y + NODE_HEIGHT / 2;
    const bend = Math.max(40, Math.abs(x2 - x1) / 2);
    return [
      {
        ...edge,
        path: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
        labelX: (x1 + x2) / 2,
        labelY: (y1 + y2) / 2,
      },
    ];
  });
  return { width, height, nodes: [...placed.values()], edges };
}

import { useId } from "react";
import { formatCost, formatDuration } from "./lineage-format";
import type { GraphNodeType, LineageGraph } from "./lineage-types";
import { layoutTrace, NODE_HEIGHT, NODE_WIDTH, type PlacedEdge, type PlacedNode } from "./trace-layout";

const TYPE_NAMES: Record<GraphNodeType, string> = {
  external_user: "External user",
  external_system: "External system",
  credential: "Steward credential",
  agent: "Agent",
};

/** What fits on a node at its font size; the whole label is in the node's tooltip. */
const LABEL_CHARACTERS = 18;

/** How far a wide graph may shrink to fit before it scrolls instead (its text stays legible). */
const MIN_SCALE = 0.75;

function shorten(text: string): string {
  return text.length > LABEL_CHARACTERS ? `${text.slice(0, LABEL_CHARACTERS - 1)}…` : text;
}

function edgeFigures(edge: LineageGraph["edges"][number]): string {
  return `${formatCost(edge.cost_usd)} · ${formatDuration(edge.duration_ms)}`;
}

function callCount(invocations: number): string {
  return `${invocations} ${invocations === 1 ? "call" : "calls"}`;
}

function Node({ node }: { node: PlacedNode }) {
  return (
    <g className={`trace-node trace-node-${node.type}`} transform={`translate(${node.x},${node.y})`}>
      <title>{`${TYPE_NAMES[node.type]}: ${node.label}`}</title>
      <rect width={NODE_WIDTH} height={NODE_HEIGHT} rx={8} />
      <text className="trace-node-type" x={12} y={21}>
        {TYPE_NAMES[node.type]}
      </text>
      <text className="trace-node-label" x={12} y={41}>
        {shorten(node.label)}
      </text>
    </g>
  );
}

function Edge({ edge, arrow }: { edge: PlacedEdge; arrow: string }) {
  const figures = edgeFigures(edge);
  const lines = edge.invocations > 1 ? [figures, callCount(edge.invocations)] : [figures];
  return (
    <g className="trace-edge">
      <path d={edge.path} markerEnd={`url(#${arrow})`} />
      {lines.map((line, index) => (
        <text
          key={line}
          className="trace-edge-label"
          x={edge.labelX}
          y={edge.labelY - 6 - (lines.length - 1 - index) * 13}
          textAnchor="middle"
        >
          {line}
        </text>
      ))}
    </g>
  );
}

/** The edges in words: the graph's text alternative. */
function EdgeList({ graph, id }: { graph: LineageGraph; id: string }) {
  const nodes = new Map(graph.nodes.map((node) => [node.id, node]));
  const name = (nodeId: string) => {
    const node = nodes.get(nodeId);
    return node ? `${node.label} (${TYPE_NAMES[node.type].toLowerCase()})` : nodeId;
  };
  return (
    <ul id={id} className="visually-hidden" aria-label="Edges of the call graph">
      {graph.edges.map((edge) => (
        <li key={`${edge.from}>${edge.to}`}>
          {name(edge.from)} → {name(edge.to)}: {callCount(edge.invocations)}, cost {formatCost(edge.cost_usd)}
          , duration {formatDuration(edge.duration_ms)}
        </li>
      ))}
    </ul>
  );
}

/**
 * The call chain of a trace, left to right: external user → external system → Steward
 * credential → agent → downstream agents, each edge labelled with its cost and duration.
 */
export function TraceGraph({ graph }: { graph: LineageGraph }) {
  const layout = layoutTrace(graph);
  const arrow = useId().replaceAll(":", "");
  const listId = `${arrow}-edges`;
  return (
    <figure className="trace-graph">
      <div className="trace-graph-scroll">
        <svg
          style={{ maxWidth: layout.width, minWidth: layout.width * MIN_SCALE }}
          viewBox={`0 0 ${layout.width} ${layout.height}`}
          role="img"
          aria-label={`Call graph: ${graph.nodes.length} nodes and ${graph.edges.length} edges`}
          aria-describedby={listId}
        >
          <defs>
            <marker
              id={arrow}
              viewBox="0 0 10 10"
              refX={10}
              refY={5}
              markerWidth={8}
              markerHeight={8}
              orient="auto"
            >
              <path d="M0,0 L10,5 L0,10 z" className="trace-arrow" />
            </marker>
          </defs>
          {layout.edges.map((edge) => (
            <Edge key={`${edge.from}>${edge.to}`} edge={edge} arrow={arrow} />
          ))}
          {layout.nodes.map((node) => (
            <Node key={node.id} node={node} />
          ))}
        </svg>
      </div>
      <EdgeList graph={graph} id={listId} />
    </figure>
  );
}

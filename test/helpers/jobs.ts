/** The graph the issue says must work exactly as written. */
export const SHOUT = {
  name: "shout",
  nodes: [{ id: "up", type: "transform", expression: "{'text': $uppercase(input.text)}" }],
  edges: [
    { from: "__start__", to: "up" },
    { from: "up", to: "__end__" },
  ],
};

/**
 * The agent every contender calls: a minimal Node HTTP server answering each POST with a
 * small JSON body, as a cheap agent would. Listens on 127.0.0.1:$PORT.
 */
import { createServer } from "node:http";

const ANSWER = JSON.stringify({ result: "ok", usage: { cost_usd: 0.001 } });

createServer((request, response) => {
  request.resume();
  request.on("end", () => {
    response.writeHead(200, { "content-type": "application/json", "content-length": ANSWER.length });
    response.end(ANSWER);
  });
}).listen(Number(process.env.PORT), "127.0.0.1");

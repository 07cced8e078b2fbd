/**
 * The floor any Node gateway stands on: a pass-through proxy on undici that forwards each
 * request to $UPSTREAM and streams the answer back, with nothing else. Listens on
 * 127.0.0.1:$PORT.
 */
import { createServer } from "node:http";
import { pipeline } from "node:stream/promises";
import { Pool } from "undici";

const upstream = new Pool(process.env.UPSTREAM as string, { connections: 128 });

createServer(async (request, response) => {
  try {
    const answer = await upstream.request({
      method: request.method as "POST",
      path: request.url ?? "/",
      headers: { "content-type": request.headers["content-type"] ?? "application/octet-stream" },
      body: request,
    });
    response.writeHead(answer.statusCode, { "content-type": String(answer.headers["content-type"] ?? "") });
    await pipeline(answer.body, response);
  } catch {
    if (!response.headersSent) response.writeHead(502);
    response.end();
  }
}).listen(Number(process.env.PORT), "127.0.0.1");

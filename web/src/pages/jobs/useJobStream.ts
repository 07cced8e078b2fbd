import { useEffect, useReducer, useRef } from "react";
import { useApi } from "../../auth/session";
import { probeClosedSocket } from "../socket-probe";
import { INITIAL_STREAM, type JobStreamState, streamReducer } from "./job-stream-state";
import type { JobStreamEvent } from "./job-types";

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 15_000;

/**
 * Follows a job's events over GET /jobs/{id}/stream/ws: Steward sends the history, then
 * live events, then closes after `end`. A socket that drops before `end` is opened again
 * with `last_event_id` so nothing is missed or shown twice. A socket closed before its
 * first message may have been refused, so the REST API is asked why before retrying: a
 * 401 signs out, a 403 or 404 stops the retries and becomes the state's `error`. A null
 * job id follows nothing.
 */
export function useJobStream(jobId: string | null, onEnd: () => void): JobStreamState {
  const api = useApi();
  const [state, dispatch] = useReducer(streamReducer, INITIAL_STREAM);
  const onEndRef = useRef(onEnd);
  onEndRef.current = onEnd;

  useEffect(() => {
    if (jobId === null) return;
    dispatch({ type: "reset" });
    let lastSeq = 0;
    let ended = false;
    let disposed = false;
    let socket: WebSocket | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let delay = FIRST_RETRY_MS;

    const reconnect = () => {
      retry = setTimeout(connect, delay);
      delay = Math.min(delay * 2, MAX_RETRY_MS);
    };
    const connect = () => {
      let heard = false;
      const query = lastSeq > 0 ? { last_event_id: lastSeq } : {};
      socket = new WebSocket(api.socketUrl(`/jobs/${encodeURIComponent(jobId)}/stream/ws`, query));
      socket.onopen = () => dispatch({ type: "connection", connection: "live" });
      socket.onmessage = (message) => {
        heard = true;
        const event = JSON.parse(String(message.data)) as JobStreamEvent;
        if (event.seq <= lastSeq) return;
        lastSeq = event.seq;
        delay = FIRST_RETRY_MS;
        dispatch({ type: "event", event });
        if (event.event_type === "end") {
          ended = true;
          onEndRef.current();
        }
      };
      socket.onclose = () => {
        if (disposed || ended) return;
        dispatch({ type: "connection", connection: "reconnecting" });
        if (heard) return reconnect();
        void probeClosedSocket(() => api.get(`/jobs/${encodeURIComponent(jobId)}`)).then((error) => {
          if (disposed) return;
          if (error === undefined) reconnect();
          else dispatch({ type: "failed", error });
        });
      };
    };
    connect();
    return () => {
      disposed = true;
      clearTimeout(retry);
      socket?.close();
    };
  }, [api, jobId]);

  return state;
}

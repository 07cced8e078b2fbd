import { randomBytes } from "node:crypto";

/** The seed of a run's random choices: CHAOS_SEED when set (to replay a run), else a fresh one. */
export function chaosSeed(): number {
  return Number(process.env.CHAOS_SEED ?? randomBytes(4).readUInt32BE());
}

/** mulberry32: a small generator in [0, 1) whose sequence the seed fixes. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

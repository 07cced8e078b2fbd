import { randomFillSync } from "node:crypto";

const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let used = POOL_SIZE;

/**
 * `size` bytes from the system's CSPRNG, drawn from a buffer filled 4 KB at a time: ids,
 * trace ids and request ids are made several times per request, and one fill per few
 * hundred of them costs far less than one call each. The bytes are copied out, so no
 * caller sees another's. Keys and secrets use `randomBytes` directly.
 */
export function pooledRandomBytes(size: number): Buffer {
  if (size > POOL_SIZE) throw new RangeError(`at most ${POOL_SIZE} pooled random bytes at once`);
  if (used + size > POOL_SIZE) {
    randomFillSync(pool);
    used = 0;
  }
  const bytes = Buffer.from(pool.subarray(used, used + size));
  used += size;
  return bytes;
}

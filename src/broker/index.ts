/**
 * duplex/broker — public entry point of the `broker` layer (see docs/architecture.md): Broker
 * implementations. The in-memory broker is the embedded default; the Redis broker lets several
 * nodes share channels (docs/scaling.md).
 */
export const LAYER = "broker";

export {
  MemoryBackend,
  type MemoryBackendOptions,
  type MemoryBackendStats,
  MemoryBroker,
  type MemoryBrokerOptions,
} from "./memory.js";
export { RedisBroker, type RedisBrokerOptions } from "./redis.js";

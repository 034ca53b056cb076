export { hostKey } from './host-key.js';
export { LocalHostLimiter } from './local-host-limiter.js';
export { HostCircuit, type CircuitState, type HostCircuitOptions } from './circuit-breaker.js';
export { HostPace } from './host-pace.js';

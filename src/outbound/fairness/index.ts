export { hostKey } from './host-key.js';
export { HostSlots, LocalHostLimiter, type HostSlotsOptions, type Slot } from './host-slots.js';
export { HostCircuit, type CircuitState, type HostCircuitOptions } from './circuit-breaker.js';

export { runEngine } from './run-engine.js';
export { buttonCallbackData, parseButtonCallbackData, MAX_CALLBACK_DATA_BYTES } from './callback-data.js';
export { nextOccurrence, isValidTimeZone } from './next-occurrence.js';
export { evaluateCondition, type ConditionDialog } from './conditions.js';
export {
  DEFAULT_MAX_STEPS,
  type DialogChanges,
  type Effect,
  type EffectButton,
  type EngineDialog,
  type EngineInput,
  type EngineResult,
  type EngineScript,
  type EngineStep,
  type StopReason,
  type Trigger,
} from './types.js';

export { runEngine } from './run-engine.js';
export { buttonCallbackData, parseButtonCallbackData } from './callback-data.js';
export { nextOccurrence } from './next-occurrence.js';
export { evaluateCondition, type ConditionDialog } from './conditions.js';
export {
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

// Inputs journaled out of their acceptance order, deterministically (the randomized runs are in
// dialog-order-interleaving-runs-*.test.ts; the machinery of both in test/support/interleaving.ts).
import { defineJournaledOutOfOrder } from '../support/interleaving.js';

defineJournaledOutOfOrder();

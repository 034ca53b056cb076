// Randomized interleavings, part 1 of 3: the runs numbered 1, 4 … of PROPERTY_RUNS (5 by default), as test/support/interleaving.ts describes.
import { defineInterleavingRuns } from '../support/interleaving.js';

defineInterleavingRuns(0, 3);

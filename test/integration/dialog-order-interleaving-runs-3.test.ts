// Randomized interleavings, part 3 of 3: the runs numbered 3 … of PROPERTY_RUNS (5 by default), as test/support/interleaving.ts describes.
import { defineInterleavingRuns } from '../support/interleaving.js';

defineInterleavingRuns(2, 3);

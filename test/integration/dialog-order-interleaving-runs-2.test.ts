// Randomized interleavings, part 2 of 2: the runs numbered 2, 4 … of PROPERTY_RUNS (5 by default), as test/support/interleaving.ts describes.
import { defineInterleavingRuns } from '../support/interleaving.js';

defineInterleavingRuns(1, 2);

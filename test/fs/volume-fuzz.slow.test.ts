/** Whole-volume fuzz of damaged images, all 10,000 cases in seeded batches (`npm run test:slow`). */
import { volumeFuzz } from '../helpers/volume-fuzz.js';

volumeFuzz({ cases: 10_000, batch: 100 });

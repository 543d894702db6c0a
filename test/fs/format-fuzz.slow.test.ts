/** Fuzzing the format's validating door: all 10,000 damaged images in seeded batches (`npm run test:slow`). */
import { formatFuzz } from '../helpers/format-fuzz.js';

formatFuzz({ cases: 10_000, batch: 250 });

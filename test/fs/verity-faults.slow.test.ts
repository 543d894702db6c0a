/** A device fault at every step of enableVerity leaves the file as it was (`npm run test:slow`). */
import { sealingFaults } from '../helpers/sealing-faults.js';

sealingFaults(1);

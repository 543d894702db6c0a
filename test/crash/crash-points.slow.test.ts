/** Power cut at every device operation of a workload, then recovery, on every geometry (`npm run test:slow`). */
import { crashPoints, GEOMETRY_COUNT } from '../helpers/crash-points.js';

crashPoints([...Array(GEOMETRY_COUNT).keys()]);

#!/usr/bin/env node
/** The `iomap-verity` command. */
process.stdout.write('iomap-verity: not yet\n');

#!/usr/bin/env node
// Runs the TypeScript CLI directly through tsx's loader (no separate build step for the CLI).
import { register } from 'tsx/esm/api';

register();
await import('../electron/cli/main.ts');

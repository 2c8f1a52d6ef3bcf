// What the whizard-telemetry job reads and changes (docs/rbac.md).
import { createInstallPlan, readKubeSphereConfig, removeInstallPlan } from '../../rbac/rules.js';
import type { AccessRule } from '../../rbac/types.js';

export const WHIZARD_TELEMETRY_ACCESS: readonly AccessRule[] = [
  readKubeSphereConfig(),
  ...createInstallPlan('whizard-telemetry'),
  removeInstallPlan('whizard-telemetry'),
];

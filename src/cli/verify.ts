// `ks-upgrade verify <cluster>`: is the upgrade of a cluster done, judged from the cluster itself
// (docs/verification.md). Exits 1 with the findings when it is not.
import { parseDuration } from '../config/index.js';
import { closeSharedConnections } from '../kube/connect.js';
import { verifyUpgrade } from '../upgrade/verification.js';
import { formatVerification } from '../verify/index.js';
import { EXIT, clusterTarget, jobRegistry, upgradeInput, type CommonOptions, type Io } from './common.js';

export async function verifyCommand(
  cluster: string,
  o: CommonOptions & { json?: boolean; targetVersion?: string; wait?: string },
  io: Io,
): Promise<number> {
  const registry = await jobRegistry(o);
  const input = upgradeInput(o, await clusterTarget({ ...o, cluster }));
  try {
    const waitMs = o.wait ? parseDuration(o.wait) : 0;
    const report = await verifyUpgrade(input, {
      registry,
      waitMs,
      ...(o.targetVersion ? { targetVersion: o.targetVersion } : {}),
    });
    io.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : formatVerification(report));
    return report.ok ? EXIT.ok : EXIT.failed;
  } finally {
    await closeSharedConnections();
  }
}

// The `ks-upgrade` command line. Commands load their modules on demand, so `version` or `backups`
// do not pay for the Temporal and Kubernetes clients.
import { Command, Option } from 'commander';
import type { Phase } from '../jobs/types.js';
import { VERSION } from '../version.js';
import type { CodecServerOptions } from './codec-server.js';
import type { CommonOptions, Io } from './common.js';
import { fleetCommand } from './fleet-commands.js';
import type { RunOptions } from './run.js';

const io: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Options every cluster/workflow command takes. */
function withCommon(cmd: Command): Command {
  return cmd
    .option(
      '-c, --config <file>',
      'config file, original ks-upgrade format (repeatable; merged in order)',
      collect,
    )
    .option('--no-defaults', 'do not start from the built-in defaults (the original config.yaml)')
    .option('--kubeconfig <file>', 'kubeconfig file (default: KUBECONFIG, then ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context')
    .option('--in-cluster', "use the pod's service account")
    .option(
      '--cluster <name>',
      'logical cluster name: workflow ID ks-upgrade-<name>, backup folder (default: the kubeconfig context, made a DNS label; in-cluster: host)',
    )
    .option(
      '--temporal-address <host:port>',
      'Temporal frontend (default: TEMPORAL_ADDRESS; none: the embedded dev server)',
    )
    .option('--namespace <ns>', 'Temporal namespace (default: TEMPORAL_NAMESPACE or default)')
    .option('--task-queue <name>', 'task queue of the workers (default: ks-upgrade)')
    .option(
      '--state-dir <dir>',
      'state of the embedded Temporal dev server (default: ~/.local/state/ks-upgrade)',
    )
    .option('--plugin <module>', 'ES module with extra jobs (repeatable; also KS_UPGRADE_PLUGINS)', collect)
    .option(
      '--codec-key-file <file>',
      'payload encryption keys, one per line, the first encrypts (also KS_UPGRADE_CODEC_KEY_FILE, KS_UPGRADE_CODEC_KEY; embedded default: a key in the state dir)',
    )
    .addOption(logFormatOption())
    .option('-v, --verbose', 'more logging');
}

function logFormatOption(): Option {
  return new Option(
    '--log-format <format>',
    'log lines as JSON or text (default: json unless stderr is a terminal)',
  )
    .choices(['json', 'text'])
    .env('KS_UPGRADE_LOG_FORMAT');
}

function allowEmptyOption(): Option {
  return new Option(
    '--allow-empty',
    'accept a config that enables no job (the upgrade then changes nothing)',
  );
}

/** `--skip-check NAME` (repeatable), `--skip-reason`, `--by`: going past a failing preflight check. */
function withSkipChecks(cmd: Command): Command {
  return cmd
    .option(
      '--skip-check <name>',
      'go past this failing preflight check (repeatable; or `verification`); recorded with --skip-reason and --by',
      collect,
    )
    .option('--skip-reason <text>', 'why the checks are skipped (required with --skip-check)')
    .option('--by <name>', 'who skips them (default: user@host)');
}

function gateOption(): Option {
  return new Option(
    '--gate <mode>',
    'between pre- and post-upgrade: wait for a signal, detect v4 core, run the ks-core upgrade (helm), or none',
  ).choices(['signal', 'detect', 'helm', 'none']);
}

/** Runs a command body and turns errors into the documented exit codes. */
function action<A extends unknown[]>(fn: (...args: A) => Promise<number>) {
  return async (...args: A): Promise<void> => {
    try {
      process.exitCode = await fn(...args);
    } catch (err) {
      const { reportError } = await import('./common.js');
      process.exitCode = reportError(err, io);
    }
  };
}

const program = new Command()
  .name('ks-upgrade')
  .description('Upgrade KubeSphere v3.x clusters to v4 as durable Temporal workflows.')
  .version(`ks-upgrade ${VERSION} (node ${process.version})`, '--version')
  .showHelpAfterError('(run with --help for usage)')
  .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

withCommon(
  withSkipChecks(program.command('run'))
    .description(
      'upgrade a cluster: plan, prepare/pre-upgrade, gate, post-upgrade; resumes a running upgrade',
    )
    .addOption(gateOption())
    .addOption(
      new Option(
        '--failure-policy <policy>',
        'on a failed step: ask an operator or abort (roll back)',
      ).choices(['ask', 'abort']),
    )
    .option(
      '--phases <list>',
      'comma list of phases to run (default: prepare-upgrade,pre-upgrade,post-upgrade)',
    )
    .addOption(allowEmptyOption())
    .option('--dry-run', 'plan through the workflow; change nothing')
    .option('--detach', 'start and return (needs --temporal-address and running workers)')
    .option('--rerun', "run again even if this cluster's upgrade already succeeded")
    .option('--ui-url <url>', 'Temporal UI base URL for links (default: TEMPORAL_UI_URL, or the embedded UI)')
    .option('--heartbeat-timeout <duration>', 'how fast a dead worker is noticed (default 60s)'),
).action(
  action(async (o: RunOptions) => {
    const { runCommand } = await import('./run.js');
    return runCommand(o, io);
  }),
);

const PHASE_COMMANDS: [Phase, string][] = [
  ['prepare-upgrade', 'scale the v3 control plane down and prepare (before the v4 CRDs are applied)'],
  ['pre-upgrade', 'back up and clean up v3 state (after the v4 CRDs, before helm upgrade)'],
  ['post-upgrade', 'migrate backups into v4 objects and create InstallPlans (after helm upgrade)'],
  ['dynamic-upgrade', 'follow-up work per object (e.g. one gateway)'],
  ['rollback', 'undo what the jobs did, newest first'],
];
for (const [phase, description] of PHASE_COMMANDS) {
  withCommon(
    program
      .command(phase)
      .description(`${description}; one phase in this process, no Temporal`)
      .addOption(allowEmptyOption()),
  ).action(
    action(async (o: CommonOptions) => {
      const { phaseCommand } = await import('./phase.js');
      return phaseCommand(phase, o, io);
    }),
  );
}

withCommon(
  withSkipChecks(
    program
      .command('plan')
      .description(
        'dry run: the preflight checks, then the jobs in order, enabled or not and why, and what each would change',
      )
      .option('--offline', 'do not contact the cluster (no preflight, no per-job actions)')
      .addOption(allowEmptyOption())
      .option('--json', 'machine-readable output (secrets redacted)'),
  ),
).action(
  action(async (o: CommonOptions & { offline?: boolean; json?: boolean }) => {
    const { planCommand } = await import('./plan.js');
    return planCommand(o, io);
  }),
);

program
  .command('rbac')
  .description('print the ClusterRole, Roles and bindings the enabled jobs need (least privilege)')
  .option('-c, --config <file>', 'config file (repeatable; merged in order)', collect)
  .option('--no-defaults', 'do not start from the built-in defaults (the original config.yaml)')
  .option('--plugin <module>', 'ES module with extra jobs (repeatable; also KS_UPGRADE_PLUGINS)', collect)
  .option('--service-account <namespace/name>', 'the worker service account to bind', 'ks-upgrade/ks-upgrade')
  .option('--name <name>', 'name of the roles and bindings', 'ks-upgrade')
  .option('--members', 'what the jobs need on member clusters (through their Cluster kubeconfigs) instead')
  .action(
    action(async (o: CommonOptions & { serviceAccount?: string; name?: string; members?: boolean }) => {
      const { rbacCommand } = await import('./rbac.js');
      return rbacCommand(o, io);
    }),
  );

withCommon(
  program
    .command('verify')
    .argument('<cluster>', 'cluster name (the kube context and config select the cluster itself)')
    .description(
      'verify an upgrade on the cluster: v4 core rolled out, InstallPlans installed, no v3 leftovers',
    )
    .option('--json', 'the report as JSON')
    .option(
      '--wait <duration>',
      'wait up to this long for rollouts and installs in progress (e.g. 5m); default: judge now',
    )
    .option(
      '--target-version <version>',
      'the ks-core appVersion expected (default: checks.targetVersion, else the deployed v4 one)',
    ),
).action(
  action(
    async (cluster: string, o: CommonOptions & { json?: boolean; targetVersion?: string; wait?: string }) => {
      const { verifyCommand } = await import('./verify.js');
      return verifyCommand(cluster, o, io);
    },
  ),
);

withCommon(
  program
    .command('status')
    .argument('<cluster>', 'cluster name')
    .description("an upgrade's progress")
    .option('--json', 'the full progress query as JSON'),
).action(
  action(async (cluster: string, o: CommonOptions & { json?: boolean }) => {
    const { statusCommand } = await import('./operate.js');
    return statusCommand(cluster, o, io);
  }),
);

withCommon(
  program
    .command('resolve')
    .argument('<cluster>', 'cluster name')
    .argument('<decision>', 'retry | skip | abort')
    .description('decide a failed step of an upgrade that waits for an operator')
    .requiredOption('--reason <text>', 'why (recorded with the decision)')
    .option('--by <name>', 'who decides (default: user@host)'),
).action(
  action(async (cluster: string, decision: string, o: CommonOptions & { reason?: string; by?: string }) => {
    const { resolveCommand } = await import('./operate.js');
    return resolveCommand(cluster, decision, o, io);
  }),
);

withCommon(
  program
    .command('gate')
    .argument('<cluster>', 'cluster name')
    .description('tell the upgrade that KubeSphere v4 core is installed (gate mode signal)')
    .option('--note <text>', 'recorded with the gate'),
).action(
  action(async (cluster: string, o: CommonOptions & { note?: string }) => {
    const { gateCommand } = await import('./operate.js');
    return gateCommand(cluster, o, io);
  }),
);

withCommon(
  program
    .command('worker')
    .description(
      'run a worker for a Temporal service (SIGTERM drains it); --cluster X: the worker of cluster X, on queue ks-upgrade-cluster-X',
    )
    .option('--metrics-address <host:port>', 'serve Prometheus metrics (also KS_UPGRADE_METRICS_ADDRESS)')
    .option('--tls-cert <file>', 'mTLS client certificate (also TEMPORAL_TLS_CERT)')
    .option('--tls-key <file>', 'mTLS client key (also TEMPORAL_TLS_KEY)')
    .option('--tls-ca <file>', 'server CA (also TEMPORAL_TLS_CA); TEMPORAL_API_KEY enables API-key auth'),
).action(
  action(async (o: CommonOptions & { metricsAddress?: string }) => {
    const { workerCommand } = await import('./worker.js');
    return workerCommand(o, io);
  }),
);

program.addCommand(fleetCommand(withCommon, action, io));

program
  .command('codec-server')
  .description('serve /encode and /decode for the Temporal UI and CLI with the payload codec keys')
  .option('--host <ip>', 'address to bind (default 127.0.0.1)')
  .option('--port <port>', 'port (default 8888)')
  .option('--codec-key-file <file>', 'the keys (also KS_UPGRADE_CODEC_KEY_FILE, KS_UPGRADE_CODEC_KEY)')
  .option(
    '--cors-origin <origin>',
    "the Temporal UI's origin, e.g. http://localhost:8233 (repeatable; also KS_UPGRADE_CODEC_CORS_ORIGINS)",
    collect,
  )
  .option('--namespace <ns>', 'serve only this Temporal namespace (repeatable; default any)', collect)
  .action(
    action(async (o: CodecServerOptions) => {
      const { codecServerCommand } = await import('./codec-server.js');
      return codecServerCommand(o, io);
    }),
  );

program
  .command('backups')
  .description("list, show or verify the backup store, or import the Go tool's (ks-upgrade backups --help)")
  .helpOption(false)
  .allowUnknownOption()
  .allowExcessArguments()
  .argument('[args...]')
  .action(
    action(async (args: string[]) => {
      const { runBackupsCommand } = await import('./backups.js');
      return runBackupsCommand(args, { stdout: process.stdout, stderr: process.stderr });
    }),
  );

program
  .command('version')
  .description('print the version')
  .action(() => {
    process.stdout.write(`ks-upgrade ${VERSION} (node ${process.version})\n`);
  });

// `run` is the default command when only options are given (`ks-upgrade --config c.yaml`), as with
// the original tool's single binary; an unknown word stays an unknown-command error.
const argv = process.argv.slice(2);
const first = argv[0];
const implicitRun =
  first === undefined ? false : first.startsWith('-') && !['-h', '--help', '--version'].includes(first);
if (argv.length === 0) {
  // No arguments: help, never an upgrade of whatever the current kubeconfig points at.
  program.outputHelp();
} else {
  await program.parseAsync(implicitRun ? ['run', ...argv] : argv, { from: 'user' });
}

// `ks-upgrade fleet …`: the command tree only. Each command loads its module when it runs, so the
// CLI's start-up does not pay for the fleet.
import { Command } from 'commander';
import type { CommonOptions, Io } from './common.js';
import type { FleetOptions, FleetRunOptions, FleetStatusOptions } from './fleet.js';
import type { ScheduleCreateOptions } from './fleet-schedule.js';

type Action = <A extends unknown[]>(fn: (...args: A) => Promise<number>) => (...args: A) => Promise<void>;

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The `fleet` command with its subcommands; `withCommon` adds the shared options. */
export function fleetCommand(withCommon: (cmd: Command) => Command, action: Action, io: Io): Command {
  const fleet = new Command('fleet').description(
    'upgrade a whole fleet: the host first, then members in waves (docs/fleet.md)',
  );
  const fileOption = (cmd: Command): Command =>
    cmd.requiredOption('-f, --file <fleet.yaml>', 'the fleet file (docs/fleet.md, docs/fleet.schema.json)');
  const note = (cmd: Command): Command =>
    cmd
      .requiredOption('--reason <text>', 'why (recorded with the decision)')
      .option('--by <name>', 'who decides (default: user@host)');

  withCommon(
    fileOption(
      fleet
        .command('plan')
        .description('the waves, the order, each cluster’s planned jobs and the windows; changes nothing')
        .option('--json', 'machine-readable output'),
    ),
  ).action(
    action(async (o: FleetOptions & { json?: boolean }) => {
      const { fleetPlanCommand } = await import('./fleet.js');
      return fleetPlanCommand(o, io);
    }),
  );

  withCommon(
    fileOption(
      fleet
        .command('run')
        .description('start the fleet (or attach to the running one) and watch it')
        .option('--detach', 'start and return (needs --temporal-address and running workers)')
        .option('--ui-url <url>', 'Temporal UI base URL for links'),
    ),
  ).action(
    action(async (o: FleetRunOptions) => {
      const { fleetRunCommand } = await import('./fleet.js');
      return fleetRunCommand(o, io);
    }),
  );

  withCommon(
    fleet
      .command('status')
      .argument('<fleet>', 'fleet name')
      .description('a table per cluster: wave, state, phase, job, what it waits for')
      .option('--json', 'the fleetProgress query as JSON')
      .option('-w, --watch', 'a live view until the fleet ends')
      .option('--interval <seconds>', 'refresh of --watch', '2'),
  ).action(
    action(async (name: string, o: FleetStatusOptions) => {
      const { fleetStatusCommand } = await import('./fleet.js');
      return fleetStatusCommand(name, o, io);
    }),
  );

  withCommon(
    note(fleet.command('approve').argument('<fleet>').argument('<wave>').description('let a wave start')),
  ).action(
    action(async (name: string, wave: string, o: FleetOptions) => {
      const { fleetUpdateCommand } = await import('./fleet.js');
      return fleetUpdateCommand(name, 'approve', o, io, { wave });
    }),
  );
  for (const [verb, text] of [
    ['pause', 'no new cluster starts (those in flight finish)'],
    ['resume', 'start clusters again after pause'],
    ['cancel', 'stop the fleet: nothing new starts; upgrades in flight run on by themselves'],
  ] as const) {
    withCommon(note(fleet.command(verb).argument('<fleet>').description(text))).action(
      action(async (name: string, o: FleetOptions) => {
        const { fleetUpdateCommand } = await import('./fleet.js');
        return fleetUpdateCommand(name, verb, o, io);
      }),
    );
  }
  withCommon(
    note(
      fleet
        .command('resolve')
        .argument('<fleet>')
        .argument('<cluster>')
        .argument('<decision>', 'retry | skip | fail')
        .description('decide a cluster that fails the wave gate (its own upgrade: ks-upgrade resolve)'),
    ),
  ).action(
    action(async (name: string, cluster: string, decision: string, o: FleetOptions) => {
      const { fleetUpdateCommand } = await import('./fleet.js');
      return fleetUpdateCommand(name, 'resolve', o, io, { cluster, decision });
    }),
  );

  const schedule = fleet
    .command('schedule')
    .description('run the fleet on a Temporal Schedule: maintenance windows (needs --temporal-address)');
  withCommon(
    fileOption(
      schedule
        .command('create')
        .description('a Schedule that starts upgradeFleet (overlap: skip)')
        .option('--id <id>', 'schedule ID (default: ks-upgrade-fleet-<fleet>)')
        .option('--cron <expr>', 'cron expression, e.g. "0 1 * * 6" (repeatable)', collect)
        .option(
          '--calendar <json>',
          'calendar spec, e.g. \'{"dayOfWeek":"SATURDAY","hour":1}\' (repeatable)',
          collect,
        )
        .option('--time-zone <tz>', 'time zone of the spec (IANA), default UTC')
        .option(
          '--catchup-window <duration>',
          'run a missed action if the service was down less than this',
          '1h',
        )
        .option('--pause-on-failure', 'pause the schedule when a fleet run fails')
        .option('--note <text>', 'a note on the schedule')
        .option('--paused', 'create it paused'),
    ),
  ).action(
    action(async (o: ScheduleCreateOptions) => {
      const { scheduleCreateCommand } = await import('./fleet-schedule.js');
      return scheduleCreateCommand(o, io);
    }),
  );
  for (const [verb, text] of [
    ['describe', 'the spec, policies, note, recent and next runs'],
    ['delete', 'delete the schedule (running fleets go on)'],
    ['trigger', 'start a run now (skipped if one runs)'],
  ] as const) {
    withCommon(schedule.command(verb).argument('<id>').description(text)).action(
      action(async (id: string, o: CommonOptions) => {
        const { scheduleCommand } = await import('./fleet-schedule.js');
        return scheduleCommand(verb, id, o, io);
      }),
    );
  }
  withCommon(schedule.command('list').description('the fleet schedules')).action(
    action(async (o: CommonOptions) => {
      const { scheduleCommand } = await import('./fleet-schedule.js');
      return scheduleCommand('list', '', o, io);
    }),
  );
  return fleet;
}

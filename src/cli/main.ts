import { VERSION } from '../version.js';

const HELP = `ks-upgrade ${VERSION}: upgrade KubeSphere v3.x clusters to v4 as durable Temporal workflows.

Usage: ks-upgrade <command>

Commands:
  backups     list, show or verify the backup store (ks-upgrade backups --help)
  version     print the version
  help        print this help
`;

async function main(argv: string[]): Promise<number> {
  const [command = 'help'] = argv;
  switch (command) {
    case 'backups': {
      // Loaded on demand: the AWS SDK behind it is not needed by the other commands.
      const { runBackupsCommand } = await import('./backups.js');
      return runBackupsCommand(argv.slice(1), { stdout: process.stdout, stderr: process.stderr });
    }
    case 'version':
    case '--version':
      process.stdout.write(`ks-upgrade ${VERSION} (node ${process.version})\n`);
      return 0;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return 0;
    default:
      process.stderr.write(`ks-upgrade: unknown command '${command}'; run 'ks-upgrade help'\n`);
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));

import { VERSION } from '../version.js';

const HELP = `ks-upgrade ${VERSION}: upgrade KubeSphere v3.x clusters to v4 as durable Temporal workflows.

Usage: ks-upgrade <command>

Commands:
  version     print the version
  help        print this help
`;

function main(argv: string[]): number {
  const [command = 'help'] = argv;
  switch (command) {
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

process.exitCode = main(process.argv.slice(2));

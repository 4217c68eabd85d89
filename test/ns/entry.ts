// Runs one scenario inside the namespace it was started in (test/helpers.ts starts it as
// `setpriv --pdeathsig KILL -- unshare --net -- node dist/test/ns/entry.js <name> <json>`)
// and prints what it measured as the last line of stdout.
import { scenarios } from './scenarios';

async function main(): Promise<void> {
  const [name, input] = process.argv.slice(2);
  const scenario = scenarios[name ?? ''];
  if (!scenario) {
    process.stderr.write(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(', ')}\n`);
    process.exit(2);
  }
  const result = await scenario(JSON.parse(input ?? '{}') as Record<string, unknown>);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}

main().catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`);
  process.exit(1);
});

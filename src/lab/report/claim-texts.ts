// Each claim's text beside its id where a lab lists its claims, generated from the one registry
// (src/lab/claims.ts), never written by hand: `npm run labs:claims` rewrites every lab's
// `claims: [...]` list (or lab 01's `const CLAIM_IDS = [...]`) as one id per line, each followed
// by its text as a comment; test/claim-texts.test.ts fails when a lab's comments have gone stale.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { claimById } from '../api/claims';

/** Comment lines are wrapped at this width (the id's line included). */
const WIDTH = 110;

/** `claims: [ ... ]` or `const CLAIM_IDS = [ ... ] as const` holding only registry ids (and comments). */
const LIST = /^( *)(claims: |(?:export )?const CLAIM_IDS = )\[((?:\s*'[A-Z]+\d+',?(?:\s*\/\/[^\n]*)*)+\s*)\]/gm;

function wrap(first: string, text: string, indent: string): string[] {
  const lines: string[] = [];
  let line = `${first} //`;
  for (const word of text.split(' ')) {
    if (line.length + 1 + word.length > WIDTH && !/\/\/ *$/.test(line)) {
      lines.push(line);
      line = `${indent}//  `;
    }
    line += ` ${word}`;
  }
  return [...lines, line];
}

/** The source with every listed claim's text beside its id (unchanged when already so). */
export function withClaimTexts(source: string): string {
  return source.replace(LIST, (_all, indent: string, head: string, body: string) => {
    const ids = [...body.replace(/\/\/[^\n]*/g, '').matchAll(/'([A-Z]+\d+)'/g)].map((m) => m[1]!);
    const inner = `${indent}  `;
    const lines = ids.flatMap((id) => wrap(`${inner}'${id}',`, `${claimById(id).text}`, inner));
    return `${indent}${head}[\n${lines.join('\n')}\n${indent}]`;
  });
}

/** Every lab file under `dir` (files and folders' index.ts). */
export function labSources(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /^\d{2}-[a-z0-9-]+(\.ts)?$/.test(f))
    .map((f) => (f.endsWith('.ts') ? path.join(dir, f) : path.join(dir, f, 'index.ts')))
    .filter((f) => fs.existsSync(f))
    .sort();
}

if (require.main === module) {
  const labs = path.resolve(__dirname, '..', '..', '..', '..', 'labs');
  for (const file of labSources(labs)) {
    const before = fs.readFileSync(file, 'utf8');
    const after = withClaimTexts(before);
    if (after !== before) fs.writeFileSync(file, after);
    process.stdout.write(`${path.relative(process.cwd(), file)}${after === before ? '' : ': claim texts written'}\n`);
  }
}

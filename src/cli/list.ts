// `twlab list`: the labs, what each shows; with -v their parameters, claims and questions.
import type { Command } from 'commander';
import { scopeLabel } from '../lab/api/claims';
import { describeParam } from '../lab/api/params';
import { labClaims } from '../lab/api/types';
import { allLabs } from '../lab/run/registry';
import { OPTIONS } from './options';
import { out } from './output';

/** what `twlab list` adds to a claim of possibility */
const MAY = '; a claim of possibility: holds when some valid trial shows it';

export function register(program: Command): void {
  program
    .command('list')
    .description('list the labs: id, slug, title and what each shows')
    .addOption(OPTIONS.verbose())
    .addOption(OPTIONS.json('print the lab descriptions as JSON'))
    .action((opts: { json?: boolean; verbose?: boolean }) => listCommand(opts));
}

function listCommand(opts: { json?: boolean; verbose?: boolean }): void {
  const labs = allLabs();
  if (opts.json) {
    out(
      JSON.stringify(
        labs.map((l) => ({
          id: l.id,
          slug: l.slug,
          title: l.title,
          shows: l.shows,
          question: l.question,
          params: l.params.map((p) => ({ ...p, validate: undefined })),
          claims: labClaims(l).map((c) => ({ ...c, scope: scopeLabel(c.scope) })),
        })),
        null,
        2,
      ),
    );
    return;
  }
  for (const l of labs) {
    out(`${l.id}  ${l.slug.padEnd(22)} ${l.title}`);
    out(`    shows: ${l.shows}`);
    if (opts.verbose) {
      out(`    question: ${l.question}`);
      for (const p of l.params) out(`    --set ${describeParam(p)}`);
      for (const c of labClaims(l))
        out(`    ${c.id}: ${c.text} [${c.source}; stated for ${scopeLabel(c.scope)}${c.modality === 'may' ? MAY : ''}]`);
      for (const q of l.questions ?? []) out(`    question ${q.id}: ${q.text} (${q.choices.map((c, i) => `${i + 1}) ${c}`).join(', ')})`);
    }
  }
  if (!opts.verbose) out(`\n\`twlab list -v\` shows each lab's parameters and claims.`);
}

// `twlab course`: a suggested order through the labs, on the terminal or as course.html.
import type { Command } from 'commander';
import { formatCourse, writeCourseHtml } from '../lab/report/course';
import { prepareOutDir } from '../lab/run/outdir';
import { OPTIONS } from './options';
import { out, shown } from './output';

export function register(program: Command): void {
  program
    .command('course')
    .description('a suggested order through the labs: what each teaches and what to look at in its capture')
    .option('--html', "write course.html into --out, linking each lab's report")
    .addOption(OPTIONS.out('where the evidence is (and course.html goes)'))
    .action((opts: { html?: boolean; out: string }) => {
      if (opts.html) {
        const file = writeCourseHtml(prepareOutDir(opts.out));
        out(shown(file));
      } else for (const line of formatCourse()) out(line);
      process.exitCode = 0;
    });
}

// Lab 08 — FIN_WAIT_2 and tcp_fin_timeout.
//
// Question: the kernel has sent its FIN and had it acknowledged, but the peer never sends its own.
// How long does the kernel wait in FIN_WAIT_2 — when the application still holds the socket
// (shutdown) and when it has let go (close) — and what happens to data the peer sends late?
import { defineLab, kernelConnects, type LabContext } from '../src/lab';

const CLAIMS = [
  {
    id: 'T5',
    text: 'An orphaned FIN_WAIT_2 socket lives tcp_fin_timeout seconds; one the application still holds does not time out.',
    source: 'man 7 tcp (tcp_fin_timeout)',
  },
] as const;

const PORT = 80;

async function halfClosed(ctx: LabContext, how: 'shutdown' | 'close'): Promise<Record<string, unknown>> {
  const finTimeout = ctx.int('fin_timeout');
  const { k, conn, local } = await kernelConnects(ctx, PORT);
  const mine = (): { state: string; timer: string; timerMs: number } | undefined =>
    ctx.table((e) => e.local.port === local.port && e.remote.port === PORT && e.state !== 'LISTEN').map((e) => ({ state: e.state, timer: e.timer, timerMs: e.timerMs }))[0];
  const t0 = performance.now();
  if (how === 'shutdown') k.shutdown('SHUT_WR');
  else await k.close();
  const inFw2 = await ctx.waitUntil(() => mine()?.state === 'FIN_WAIT2' && mine(), { timeoutMs: 3000 });
  // watch it for tcp_fin_timeout + 3 s
  const gone = await ctx.waitUntil(() => !mine(), {
    timeoutMs: (finTimeout + 3) * 1000,
    everyMs: 100,
    progress: (ms) => `${how}: FIN_WAIT_2 for ${(ms / 1000).toFixed(0)} s (tcp_fin_timeout ${finTimeout} s)`,
  });
  const lifetimeMs = gone ? Math.round(performance.now() - t0) : null;
  const stillThere = mine();
  // the peer sends data late, then closes
  conn.write(new TextEncoder().encode('late data'));
  await ctx.sleep(300);
  let readLate: string | null = null;
  if (how === 'shutdown') {
    const r = await k.recv(100, { timeoutMs: 1000 });
    readLate = r.ret > 0 ? r.data.toString() : `recv → ${r.ret} ${r.errno ?? ''}`.trim();
  }
  conn.end();
  await Promise.race([conn.waitFor('CLOSED'), ctx.sleep(2000)]);
  if (how === 'shutdown') await k.close();
  return {
    how,
    finTimeout,
    fw2Timer: inFw2 ? { kind: inFw2.timer, ms: inFw2.timerMs } : null,
    lifetimeMs,
    stillAfterTimeout: stillThere ? `${stillThere.state} (${stillThere.timer} timer)` : null,
    lateData: how === 'shutdown' ? { readByApplication: readLate } : { peerReset: conn.resetReason },
    peerStates: conn.history.map((h) => h.state),
  };
}

export default defineLab({
  id: '08',
  slug: 'fin-wait-2',
  title: 'FIN_WAIT_2: waiting for a FIN that does not come',
  shows: 'an orphaned FIN_WAIT_2 lives tcp_fin_timeout seconds, a shutdown() one lives on; late data is read, or answered with RST',
  question: 'The peer acknowledges our FIN but never sends its own: how long does Linux wait, with and without the application holding the socket?',
  params: [{ name: 'fin_timeout', kind: 'int', default: 5, min: 1, max: 120, unit: 'seconds', sysctl: 'net.ipv4.tcp_fin_timeout', help: 'net.ipv4.tcp_fin_timeout' }],
  claims: CLAIMS,
  async run(ctx) {
    const orphan = await ctx.variant('closed-orphaned', { how: 'close()' }, () => halfClosed(ctx, 'close'));
    const held = await ctx.variant('shutdown-kept-open', { how: 'shutdown(SHUT_WR)' }, () => halfClosed(ctx, 'shutdown'));
    const ft = ctx.int('fin_timeout') * 1000;
    const life = orphan.lifetimeMs as number | null;
    const t5 = life !== null && Math.abs(life - ft) <= 1500 && held.stillAfterTimeout !== null && (held.stillAfterTimeout as string).startsWith('FIN_WAIT2');
    ctx.claim(
      'T5',
      t5 ? 'holds' : 'does not hold',
      `after close(): FIN_WAIT2 gone ${life === null ? 'never (within the watch)' : `after ${(life / 1000).toFixed(1)} s`} with tcp_fin_timeout=${ft / 1000}; ` +
        `after shutdown(): ${held.stillAfterTimeout ? `still ${held.stillAfterTimeout as string} ${ft / 1000 + 3} s later` : `gone after ${((held.lifetimeMs as number) / 1000).toFixed(1)} s`}`,
    );
    const orphanSent = ctx.sentBy('closed-orphaned', ctx.addr.host4);
    ctx.print(`Lab 08 — ${this.title} (tcp_fin_timeout ${ft / 1000} s)`);
    ctx.print(`close()   : FIN_WAIT2 with a ${(orphan.fw2Timer as { kind: string } | null)?.kind ?? '?'} timer; gone after ${life === null ? '—' : `${(life / 1000).toFixed(1)} s`}; late data from the peer → ${orphanSent.rst} RST from the kernel (peer ${(orphan.lateData as { peerReset: string | null }).peerReset ?? 'not reset'})`);
    ctx.print(`shutdown(): ${held.stillAfterTimeout ? `still ${held.stillAfterTimeout as string} after ${ft / 1000 + 3} s` : 'gone'}; late data read by the application: ${JSON.stringify((held.lateData as { readByApplication: string }).readByApplication)}`);
    ctx.print();
    ctx.concludeClaims();
  },
});

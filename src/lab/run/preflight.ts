// What a lab run needs from this machine, checked before anything starts; `twlab doctor` shows
// every check with its fix, `twlab run` stops at the first failing one with a one-line error.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KernelSocket } from '../../host/ksocket';
import { addonPath, native } from '../../host/native';
import { TwlabError, type TwlabErrorCode } from '../api/errors';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** how to fix it, when it failed */
  fix?: string;
  /** failing it stops `twlab run` with this code */
  code?: TwlabErrorCode;
  /** a warning does not stop a run */
  warning?: boolean;
}

export type Isolation = { kind: 'root'; unshareArgs: string[] } | { kind: 'userns'; unshareArgs: string[] };

const SEARCH_PATH = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];

export function which(tool: string): string | null {
  for (const dir of SEARCH_PATH) {
    if (!dir) continue;
    const p = path.join(dir, tool);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  return null;
}

export const TUN_DEVICE = '/dev/net/tun';

let userNsCache: boolean | null = null;
function userNamespacesWork(): boolean {
  if (userNsCache === null) {
    const r = spawnSync('unshare', ['-rn', 'true'], { stdio: 'ignore', timeout: 5000 });
    userNsCache = r.status === 0;
  }
  return userNsCache;
}

export function isolation(): Isolation | null {
  if (process.geteuid?.() === 0) return { kind: 'root', unshareArgs: ['--net'] };
  if (which('unshare') && userNamespacesWork()) return { kind: 'userns', unshareArgs: ['--user', '--map-root-user', '--net'] };
  return null;
}

export function checks(): Check[] {
  const out: Check[] = [];
  const root = process.geteuid?.() === 0;
  const tools: Array<[string, string]> = [
    ['unshare', 'apt-get install util-linux'],
    ['setpriv', 'apt-get install util-linux'],
    ['ip', 'apt-get install iproute2'],
  ];
  for (const [tool, fix] of tools) {
    const p = which(tool);
    out.push({ name: `${tool} available`, ok: !!p, detail: p ?? 'not found on PATH', fix, code: 'MISSING_TOOL' });
  }
  const iso = root ? true : which('unshare') ? userNamespacesWork() : false;
  out.push({
    name: 'privileges for a private network namespace',
    ok: iso,
    detail: root
      ? 'running as root: `unshare --net`'
      : iso
        ? 'not root; unprivileged user namespaces work: `unshare -rn`'
        : 'not root, and `unshare -rn true` fails (no unprivileged user namespaces)',
    fix: 'run as root (sudo npx twlab …), or allow user namespaces (sysctl kernel.unprivileged_userns_clone=1, or kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu)',
    code: 'NO_PRIVILEGE',
  });
  let tunOk = false;
  let tunDetail: string;
  try {
    const st = fs.statSync(TUN_DEVICE);
    if (!st.isCharacterDevice()) tunDetail = `${TUN_DEVICE} is not a character device`;
    else {
      try {
        fs.accessSync(TUN_DEVICE, fs.constants.R_OK | fs.constants.W_OK);
        tunOk = true;
        tunDetail = `${TUN_DEVICE} present and read/writable`;
      } catch {
        tunDetail = `${TUN_DEVICE} present but not read/writable by uid ${process.geteuid?.()}`;
      }
    }
  } catch {
    tunDetail = `${TUN_DEVICE} does not exist`;
  }
  out.push({
    name: 'TUN device',
    ok: tunOk,
    detail: tunDetail,
    fix: tunDetail.includes('does not exist')
      ? 'load the tun module (modprobe tun); in a container, pass the device in (docker run --device /dev/net/tun --cap-add NET_ADMIN)'
      : 'run as root, or give your user access to it (chmod 0666 /dev/net/tun)',
    code: 'NO_TUN',
  });
  let addonOk = false;
  let addonDetail: string;
  try {
    native();
    addonOk = true;
    addonDetail = `loaded ${addonPath()}`;
  } catch (e) {
    addonDetail = (e as Error).message.split('\n')[0]!;
  }
  out.push({
    name: 'native addon built',
    ok: addonOk,
    detail: addonDetail,
    fix: 'npm install (or npm run build) in the twlab folder; needs python3, make and g++',
    code: 'ADDON_MISSING',
  });
  // measured, not guessed from the version: distributions backport it (Debian's 6.1 has it)
  let portRange: { ok: boolean; detail: string } = { ok: false, detail: 'the native addon is needed to try it' };
  if (addonOk) {
    const s = KernelSocket.create('ipv4', 'tcp');
    const r = s.setOption('IP_LOCAL_PORT_RANGE', { lo: 40000, hi: 40010 });
    s.closeNow();
    portRange = {
      ok: r.ret === 0,
      detail:
        r.ret === 0
          ? `setsockopt(IP_LOCAL_PORT_RANGE) works on ${os.release()}`
          : `setsockopt(IP_LOCAL_PORT_RANGE) → ${r.errno} on ${os.release()}`,
    };
  }
  out.push({
    name: 'IP_LOCAL_PORT_RANGE (Linux 6.3, or a backport)',
    ok: portRange.ok,
    detail: portRange.detail,
    fix: "lab 04's kernel-chosen-port cells need it; without it they say 'not tested', everything else works",
    warning: true,
  });
  const [nodeMaj, nodeMin] = process.versions.node.split('.').map(Number) as [number, number];
  out.push({
    name: 'Node.js ≥ 20.19',
    ok: nodeMaj > 20 || (nodeMaj === 20 && nodeMin >= 19),
    detail: `node ${process.versions.node}`,
    fix: 'install Node.js 20.19 or newer',
    warning: true,
  });
  return out;
}

/** Starts a throw-away lab namespace exactly as the runner would, and builds the lab network in it. */
export function liveCheck(iso: Isolation): Check {
  const r = spawnSync(
    'setpriv',
    ['--pdeathsig', 'KILL', '--', 'unshare', ...iso.unshareArgs, '--', process.execPath, path.join(__dirname, 'live-check-main.js')],
    { encoding: 'utf8', timeout: 20000 },
  );
  let reply: { ok: boolean; interfaces?: string[]; error?: string } = {
    ok: false,
    error: (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').pop(),
  };
  try {
    reply = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as typeof reply;
  } catch {
    // keep the error above
  }
  return {
    name: 'live: a lab namespace with its TUN device',
    ok: reply.ok,
    detail: reply.ok ? `created and removed a namespace with ${reply.interfaces!.join(', ')}` : `failed: ${reply.error}`,
    fix: 'fix the checks above first; if they pass, run `unshare --net ip link` by hand to see what the system refuses',
    code: 'NO_TUN',
  };
}

/** Throws the first failing check as a one-line TwlabError. */
export function assertReady(): Isolation {
  for (const c of checks()) {
    if (!c.ok && !c.warning) throw new TwlabError(c.code ?? 'NO_PRIVILEGE', `${c.detail}; fix: ${c.fix} (see \`twlab doctor\`)`);
  }
  const iso = isolation();
  if (!iso) throw new TwlabError('NO_PRIVILEGE', 'cannot create a private network namespace; run `twlab doctor`');
  return iso;
}

// `twlab doctor`'s live check: started exactly like a lab process, it builds the lab network
// (namespace, TUN, addresses) and reports what it saw, then exits, taking it all with it.
import { interfaces, setupLabNetwork } from '../../host/netns';
import { native } from '../../host/native';

async function main(): Promise<void> {
  try {
    const net = await setupLabNetwork();
    const ifs = interfaces();
    native().closeNow(net.tunFd);
    process.stdout.write(JSON.stringify({ ok: true, interfaces: ifs }) + '\n');
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: (e as Error).message }) + '\n');
  }
  process.exit(0);
}

void main();

import { SEED } from '../src/simulator/seed.js';
import type { SimAnswerMessage, SimRequestMessage } from './simulator-process.js';
import { startUpstream } from './upstream.js';

// The simulator alone in a process, started by simulator-process.ts for the load points.
const send = (m: SimAnswerMessage) => process.send?.(m);

try {
  const jobMs = process.env.BENCH_SIM_JOB_MS;
  const upstream = await startUpstream(jobMs ? { jobMs: Number(jobMs) } : {});
  let closing = false;
  const close = async () => {
    if (closing) return;
    closing = true;
    try {
      await upstream.close();
    } finally {
      process.exit(0);
    }
  };
  // Never outlive the bench: the IPC channel closes when the parent dies, however it dies.
  process.on('disconnect', () => void close());
  process.on('SIGTERM', () => void close());
  process.on('SIGINT', () => void close());
  process.on('message', (m: SimRequestMessage) => {
    switch (m.type) {
      case 'calls':
        return send({ type: 'answer', id: m.id, calls: upstream.calls() });
      case 'reset':
        upstream.reset();
        return send({ type: 'answer', id: m.id });
      case 'latency':
        upstream.sim.faults.clear();
        if (m.ms > 0) upstream.sim.faults.add({ latencyMs: m.ms });
        return send({ type: 'answer', id: m.id });
      case 'seed': {
        const store = upstream.sim.store;
        const projects = store.listProjects();
        const P = SEED.projects.payments.id;
        return send({
          type: 'answer',
          id: m.id,
          seed: {
            projects: projects.length,
            clusters: projects.flatMap((p) => store.listClusters(p.id)).length,
            flexSnapshotCounts: projects
              .flatMap((p) => store.listClusters(p.id))
              .filter((c) => store.familyOf(c) === 'flex')
              .map((c) => store.listSnapshots(c.groupId, c.name).length),
            detailFlexSnapshots: store.listSnapshots(P, SEED.flex.clusterName).length,
            completedFlexSnapshots: store
              .listSnapshots(P, SEED.flex.clusterName)
              .filter((s) => s.status === 'COMPLETED')
              .map((s) => s.id),
          },
        });
      }
      case 'close':
        return void close();
    }
  });
  send({ type: 'ready', url: upstream.url });
} catch (err) {
  send({ type: 'error', message: (err as Error).message });
  process.exit(1);
}

'use strict';
// Peer: graphile-worker on PostgreSQL.
//   node drain_graphile.js enqueue N   migrate, then add N no-op jobs
//   node drain_graphile.js drain N     start ONE worker process (a pool of
//                                      CONCURRENCY workers), drain the N jobs,
//                                      print "drain_seconds=S"
// Connection: PEERS_PG_URL (e.g. postgres:///postgres?host=/tmp/x&user=postgres).
// Dependencies are resolved through NODE_PATH (run.sh points it at build/peers).
const { performance } = require('perf_hooks');
const { run, makeWorkerUtils, Logger } = require('graphile-worker');

const [mode, nArg] = process.argv.slice(2);
const N = Number(nArg);
const url = process.env.PEERS_PG_URL;
if (!['enqueue', 'drain'].includes(mode) || !Number.isInteger(N) || N < 1 || !url) {
  console.error('usage: PEERS_PG_URL=... node drain_graphile.js enqueue|drain N');
  process.exit(2);
}

// Best-throughput settings graphile-worker 0.17 offers for a single instance
// (tuned on the 2-core bench machine: concurrency 20 with a 500-job local
// queue and 10 ms completion batching beat 10/16/32, 100/1000 and 0/25/50).
const CONCURRENCY = Number(process.env.GW_CONCURRENCY || 20);
const LOCAL_QUEUE = Number(process.env.GW_LOCAL_QUEUE || 500);
const COMPLETE_BATCH_DELAY = Number(process.env.GW_COMPLETE_BATCH_DELAY || 10);
const ENQUEUE_CHUNK = 10000;
const TASK = 'noop';

const logger = new Logger(() => (level, message) => {
  if (level === 'error') console.error(`graphile-worker: ${message}`);
});

async function remaining(utils) {
  const { rows } = await utils.withPgClient((client) => client.query(
    'select count(*)::int as n from graphile_worker._private_jobs'));
  return rows[0].n;
}

async function enqueue() {
  const utils = await makeWorkerUtils({ connectionString: url, logger });
  try {
    await utils.migrate();
    for (let i = 0; i < N; i += ENQUEUE_CHUNK) {
      const specs = [];
      for (let j = i; j < Math.min(N, i + ENQUEUE_CHUNK); j++) {
        specs.push({ identifier: TASK, payload: { i: j } });
      }
      await utils.addJobs(specs);
    }
  } finally {
    await utils.release();
  }
}

async function drain() {
  const probe = await makeWorkerUtils({ connectionString: url, maxPoolSize: 2, logger });
  try {
    const queued = await remaining(probe);
    if (queued !== N) throw new Error(`expected ${N} queued jobs, found ${queued}`);

    let done = 0;
    let allRan;
    const ran = new Promise((resolve) => { allRan = resolve; });
    const taskList = {
      [TASK]: async () => {
        if (++done === N) allRan();
      },
    };

    const t0 = performance.now();
    const runner = await run({
      connectionString: url,
      concurrency: CONCURRENCY,
      maxPoolSize: CONCURRENCY + 4,
      noHandleSignals: true,
      pollInterval: 1000,
      useNodeTime: true,
      logger,
      taskList,
      preset: {
        worker: {
          localQueue: { size: LOCAL_QUEUE },
          completeJobBatchDelay: COMPLETE_BATCH_DELAY,
          failJobBatchDelay: COMPLETE_BATCH_DELAY,
        },
      },
    });
    await ran;
    // Every task has run; the drain ends when the last completion is
    // committed (completed jobs are deleted), so poll until the table is empty.
    while ((await remaining(probe)) !== 0) {
      await new Promise((r) => setTimeout(r, 2));
    }
    const seconds = (performance.now() - t0) / 1000;
    await runner.stop();
    if (done !== N) throw new Error(`ran ${done} jobs, expected ${N}`);
    console.log(`drain_seconds=${seconds.toFixed(6)}`);
  } finally {
    await probe.release();
  }
}

(mode === 'enqueue' ? enqueue() : drain()).then(
  () => process.exit(0),
  (err) => {
    console.error(`drain_graphile.js ${mode}: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);

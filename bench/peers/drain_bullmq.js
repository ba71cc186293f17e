'use strict';
// Peer: BullMQ on Redis.
//   node drain_bullmq.js enqueue N   addBulk N no-op jobs
//   node drain_bullmq.js drain N     start ONE worker (CONCURRENCY parallel
//                                    jobs), drain the N jobs, print
//                                    "drain_seconds=S"
// Connection: PEERS_REDIS_SOCKET (unix socket path of the redis-server).
// Dependencies are resolved through NODE_PATH (run.sh points it at build/peers).
const { performance } = require('perf_hooks');
const { Queue, Worker } = require('bullmq');

const [mode, nArg] = process.argv.slice(2);
const N = Number(nArg);
const socket = process.env.PEERS_REDIS_SOCKET;
if (!['enqueue', 'drain'].includes(mode) || !Number.isInteger(N) || N < 1 || !socket) {
  console.error('usage: PEERS_REDIS_SOCKET=... node drain_bullmq.js enqueue|drain N');
  process.exit(2);
}

// 100 beat 20 and 50 and tied 200 on the 2-core bench machine.
const CONCURRENCY = Number(process.env.BULLMQ_CONCURRENCY || 100);
const ENQUEUE_CHUNK = 1000;
const QUEUE = 'lash-peer-bench';
const connection = { path: socket, maxRetriesPerRequest: null };
// Completed jobs are removed, as graphile-worker deletes them: no history kept.
const jobOpts = { removeOnComplete: true, removeOnFail: true };

async function enqueue() {
  const queue = new Queue(QUEUE, { connection });
  try {
    await queue.obliterate({ force: true });
    for (let i = 0; i < N; i += ENQUEUE_CHUNK) {
      const jobs = [];
      for (let j = i; j < Math.min(N, i + ENQUEUE_CHUNK); j++) {
        jobs.push({ name: 'noop', data: { i: j }, opts: jobOpts });
      }
      await queue.addBulk(jobs);
    }
    const waiting = await queue.getWaitingCount();
    if (waiting !== N) throw new Error(`expected ${N} waiting jobs, found ${waiting}`);
  } finally {
    await queue.close();
  }
}

async function drain() {
  let done = 0;
  let failed = 0;
  let allDone;
  const finished = new Promise((resolve) => { allDone = resolve; });

  const t0 = performance.now();
  const worker = new Worker(QUEUE, async () => {}, {
    connection,
    concurrency: CONCURRENCY,
    autorun: true,
  });
  worker.on('error', (err) => console.error(`bullmq worker: ${err}`));
  // 'completed' is emitted after moveToFinished returned, i.e. once Redis
  // acknowledged (and, with appendfsync always, fsynced) the completion.
  worker.on('completed', () => { if (++done + failed === N) allDone(); });
  worker.on('failed', () => { if (done + ++failed === N) allDone(); });
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  await worker.close();

  const queue = new Queue(QUEUE, { connection });
  try {
    const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
    const left = c.waiting + c.active + c.delayed + c.failed;
    if (failed || left) throw new Error(`${failed} failed, ${left} left in the queue`);
  } finally {
    await queue.close();
  }
  console.log(`drain_seconds=${seconds.toFixed(6)}`);
}

(mode === 'enqueue' ? enqueue() : drain()).then(
  () => process.exit(0),
  (err) => {
    console.error(`drain_bullmq.js ${mode}: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);

import { gzipSync } from 'node:zlib';
import type { SeedCluster, SeedSnapshot } from './seed.js';

/*
 * The archive is built with a small ustar writer instead of tar-stream's `pack()`: pack is a streamx
 * stream that only emits on later ticks, and the download route needs the bytes synchronously.
 * tar-stream's `extract()` (in the tests) reads it back, which is what proves it is a real tar.
 */

const BLOCK = 512;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(name: string, size: number, mtimeSec: number, type: '0' | '5'): Buffer {
  const h = Buffer.alloc(BLOCK);
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length > 100) throw new Error(`tar entry name too long: ${name}`);
  nameBytes.copy(h, 0);
  h.write(octal(type === '5' ? 0o755 : 0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(mtimeSec, 12), 136, 'ascii');
  h.write(' '.repeat(8), 148, 'ascii');
  h.write(type, 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('mongodb', 265, 'ascii');
  h.write('mongodb', 297, 'ascii');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

function tar(entries: { name: string; data?: Buffer }[], mtimeSec: number): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (!e.data) {
      parts.push(header(e.name, 0, mtimeSec, '5'));
      continue;
    }
    parts.push(header(e.name, e.data.length, mtimeSec, '0'), e.data);
    const pad = (BLOCK - (e.data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

/** A minimal BSON document `{ _id: <int32> , name: <string> }`, so the stub data file holds real BSON. */
function int32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
}

function bsonDoc(id: number, name: string): Buffer {
  const str = Buffer.from(`${name}\0`, 'utf8');
  const body = Buffer.concat([
    Buffer.from([0x10]),
    Buffer.from('_id\0', 'ascii'),
    int32le(id),
    Buffer.from([0x02]),
    Buffer.from('name\0', 'ascii'),
    int32le(str.length),
    str,
    Buffer.from([0x00]),
  ]);
  return Buffer.concat([int32le(body.length + 4), body]);
}

/** `size` bytes gzip cannot shrink, the same for the same seed (xorshift32: fast, not for secrets). */
function noise(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  let x = 2463534242;
  for (const c of seed) x = (x ^ c.charCodeAt(0)) * 16777619;
  x >>>= 0;
  if (x === 0) x = 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  return out;
}

/**
 * The `.tgz` Atlas hands out for a DOWNLOAD job: a gzipped tar of the snapshot's data files under
 * `<snapshotId>/`. Deterministic (mtime = snapshot finish time, gzip header without a timestamp) so
 * tests can compare bytes.
 */
export function snapshotArchive(snapshot: SeedSnapshot, cluster: SeedCluster, extraBytes = 0): Buffer {
  const when = Date.parse(snapshot.finishTime ?? snapshot.scheduledTime);
  const mtimeSec = Math.floor(when / 1000);
  const dir = `${snapshot.id}/`;
  const metadata = {
    snapshotId: snapshot.id,
    groupId: cluster.groupId,
    clusterName: cluster.name,
    clusterId: cluster.id,
    instanceSize: cluster.instanceSize,
    backingProviderName: cluster.backingProviderName,
    regionName: cluster.regionName,
    mongoDBVersion: snapshot.mongoDBVersion,
    scheduledTime: snapshot.scheduledTime,
    finishTime: snapshot.finishTime ?? null,
    storageEngine: 'wiredTiger',
  };
  return gzipSync(
    tar(
      [
        { name: dir },
        { name: `${dir}metadata.json`, data: Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`) },
        { name: `${dir}WiredTiger`, data: Buffer.from('WiredTiger\nWiredTiger 11.3.1: (January 1, 2025)\n') },
        { name: `${dir}storage.bson`, data: bsonDoc(1, cluster.name) },
        ...(extraBytes > 0 ? [{ name: `${dir}padding.bin`, data: noise(extraBytes, snapshot.id) }] : []),
      ],
      mtimeSec,
    ),
  );
}

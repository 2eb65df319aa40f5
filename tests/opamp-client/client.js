// OpAMP clients from the npm registry, driven by fleet-edge's integration tests and benches.
//
//   node client.js elastic <endpoint> <token> <ca-file> <successes> <description-json>
//       Elastic's @elastic/opamp-client-node (HTTP transport) until it has had <successes>
//       answered messages (or a failure): prints {instance_uid, replies, failures, applied}.
//       A 7th argument `remote` makes it accept remote configuration, apply what it is offered
//       and report APPLIED; it then also waits for that report to be answered.
//   node client.js raw <http|ws> <endpoint> <token> <ca-file> <steps-json-file>
//       Sends AgentToServer messages encoded by @bufbuild/protobuf with the client's generated
//       OpAMP schema, over HTTP POST (undici) or WebSocket (ws, one-byte header): prints one
//       result per step. A step is {"message": <AgentToServer proto3 JSON>}, {"raw": <base64>}
//       (bytes sent as they are), {"ping": "<text>"} or {"close": true}; "ping_after" on a
//       message step sends a ping right behind it.
//   node client.js park <ws-endpoint> <token> <ca-file> <count>
//       Opens <count> WebSocket collectors, each enrolled by one message, prints
//       {"parked": n} and keeps them open until stdin closes.
'use strict';

const fs = require('fs');
const crypto = require('crypto');
const {create, fromJson, toJson, toBinary, fromBinary} = require('@bufbuild/protobuf');
const {
    AgentToServerSchema,
    ServerToAgentSchema,
} = require('@elastic/opamp-client-node/lib/generated/opamp_pb');
const undici = require('undici');
const WebSocket = require('ws');

const DEADLINE_MS = 30000;
setTimeout(() => {
    process.stderr.write('opamp client: deadline passed\n');
    process.exit(3);
}, DEADLINE_MS).unref();

function out(value) {
    process.stdout.write(JSON.stringify(value) + '\n');
}

function s2aJson(bytes) {
    return toJson(ServerToAgentSchema, fromBinary(ServerToAgentSchema, bytes));
}

async function elastic(endpoint, token, caFile, successes, description, remote) {
    const {
        createOpAMPClient,
        DIAG_CH_SEND_SUCCESS,
        DIAG_CH_SEND_FAIL,
        AgentCapabilities,
        RemoteConfigStatuses,
    } = require('@elastic/opamp-client-node');
    const {subscribe} = require('diagnostics_channel');
    const replies = [];
    const failures = [];
    let client;
    // With `remote`: the configuration the server offered, applied and reported back.
    let applied = null;
    let reported = false;
    const done = new Promise((resolve) => {
        subscribe(DIAG_CH_SEND_SUCCESS, (m) => {
            replies.push(toJson(ServerToAgentSchema, m.s2a));
            if (applied && m.a2s.remoteConfigStatus && m.a2s.remoteConfigStatus.status === RemoteConfigStatuses.RemoteConfigStatuses_APPLIED) {
                reported = true;
            }
            if (replies.length >= successes && (!remote || reported)) resolve();
        });
        subscribe(DIAG_CH_SEND_FAIL, (m) => {
            failures.push(String(m.err));
            resolve();
        });
    });
    client = createOpAMPClient({
        endpoint,
        headers: {Authorization: `ApiKey ${token}`},
        connect: {ca: fs.readFileSync(caFile)},
        heartbeatIntervalSeconds: 0.1,
        diagEnabled: true,
        ...(remote
            ? {
                  capabilities: BigInt(
                      AgentCapabilities.AgentCapabilities_AcceptsRemoteConfig |
                          AgentCapabilities.AgentCapabilities_ReportsRemoteConfig
                  ),
                  onMessage: ({remoteConfig}) => {
                      if (!remoteConfig) return;
                      applied = {
                          hash: Buffer.from(remoteConfig.configHash).toString('hex'),
                          files: Object.fromEntries(
                              Object.entries(remoteConfig.config.configMap).map(([k, f]) => [
                                  k,
                                  Buffer.from(f.body).toString('utf8'),
                              ])
                          ),
                      };
                      client.setRemoteConfigStatus({
                          status: RemoteConfigStatuses.RemoteConfigStatuses_APPLIED,
                          lastRemoteConfigHash: remoteConfig.configHash,
                      });
                  },
              }
            : {}),
    });
    client.setAgentDescription(description);
    // The client unrefs its timers so it never keeps a process alive; this run must wait for it.
    const keepAlive = setInterval(() => {}, 1000);
    client.start();
    await done;
    clearInterval(keepAlive);
    const uid = Buffer.from(client.getInstanceUid()).toString('hex');
    await client.shutdown();
    out({instance_uid: uid, replies, failures, applied});
}

function encodeStep(step, withHeader) {
    let body;
    if (step.raw !== undefined) {
        return Buffer.from(step.raw, 'base64');
    }
    body = Buffer.from(toBinary(AgentToServerSchema, fromJson(AgentToServerSchema, step.message)));
    return withHeader ? Buffer.concat([Buffer.from([0]), body]) : body;
}

async function rawHttp(endpoint, token, caFile, steps) {
    const dispatcher = new undici.Agent({connect: {ca: fs.readFileSync(caFile)}});
    for (const step of steps) {
        const res = await undici.request(endpoint, {
            dispatcher,
            method: 'POST',
            headers: {
                Authorization: `ApiKey ${token}`,
                'Content-Type': 'application/x-protobuf',
                ...(step.headers || {}),
            },
            body: encodeStep(step, false),
        });
        const body = Buffer.from(await res.body.arrayBuffer());
        const result = {status: res.statusCode, content_type: res.headers['content-type'] || null};
        if (res.statusCode === 200) result.reply = s2aJson(body);
        else result.body_length = body.length;
        out(result);
    }
    await dispatcher.close();
}

function openWs(endpoint, token, ca) {
    return new Promise((resolve) => {
        const ws = new WebSocket(endpoint, {ca, headers: {Authorization: `ApiKey ${token}`}});
        ws.once('open', () => resolve({ws}));
        ws.once('unexpected-response', (_req, res) => resolve({status: res.statusCode}));
        ws.once('error', (err) => resolve({error: String(err)}));
    });
}

function next(ws, event, ms) {
    return new Promise((resolve) => {
        const timer = setTimeout(() => {
            ws.off(event, on);
            resolve({timeout: true});
        }, ms);
        const on = (...args) => {
            clearTimeout(timer);
            resolve({args});
        };
        ws.once(event, on);
    });
}

async function rawWs(endpoint, token, caFile, steps) {
    const opened = await openWs(endpoint, token, fs.readFileSync(caFile));
    if (!opened.ws) {
        out({upgrade: opened});
        return;
    }
    const ws = opened.ws;
    out({upgrade: {status: 101}});
    // Every message and the close, in arrival order: a step waits on this queue.
    const arrived = [];
    let wake = null;
    const push = (item) => {
        arrived.push(item);
        if (wake) wake();
    };
    ws.on('message', (data) => push({header: data[0], reply: s2aJson(data.subarray(1))}));
    ws.on('pong', (data) => push({pong: data.toString()}));
    ws.on('close', (code) => push({closed: code}));
    const take = (ms) =>
        new Promise((resolve) => {
            const poll = () => {
                if (arrived.length > 0) {
                    wake = null;
                    clearTimeout(timer);
                    resolve(arrived.shift());
                }
            };
            const timer = setTimeout(() => {
                wake = null;
                resolve({timeout: true});
            }, ms);
            wake = poll;
            poll();
        });
    for (const step of steps) {
        if (step.ping !== undefined) {
            ws.ping(Buffer.from(step.ping));
        } else if (step.close) {
            ws.close(1000);
        } else if (ws.readyState === WebSocket.OPEN) {
            ws.send(encodeStep(step, true), {binary: true});
            // A ping right behind a message: its pong arrives first if the message got no answer.
            if (step.ping_after !== undefined) ws.ping(Buffer.from(step.ping_after));
        }
        out(await take(5000));
    }
    ws.terminate();
}

async function park(endpoint, token, caFile, count) {
    const ca = fs.readFileSync(caFile);
    const sockets = [];
    let parked = 0;
    const batch = 50;
    for (let i = 0; i < count; i += batch) {
        await Promise.all(
            Array.from({length: Math.min(batch, count - i)}, async () => {
                const opened = await openWs(endpoint, token, ca);
                if (!opened.ws) throw new Error(`upgrade failed: ${JSON.stringify(opened)}`);
                const ws = opened.ws;
                const uid = crypto.randomBytes(16);
                const message = create(AgentToServerSchema, {
                    instanceUid: uid,
                    sequenceNum: 1n,
                    capabilities: 0x1n | 0x800n,
                    agentDescription: {
                        identifyingAttributes: [
                            {key: 'service.name', value: {value: {case: 'stringValue', value: 'parked-collector'}}},
                        ],
                    },
                });
                const reply = next(ws, 'message', 20000);
                ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(toBinary(AgentToServerSchema, message))]));
                const got = await reply;
                if (got.timeout) throw new Error('no reply');
                sockets.push(ws);
                parked += 1;
            })
        );
    }
    out({parked});
    process.stdin.resume();
    process.stdin.on('end', () => {
        for (const ws of sockets) ws.terminate();
        process.exit(0);
    });
}

async function main() {
    const [mode, ...args] = process.argv.slice(2);
    if (mode === 'elastic') {
        const [endpoint, token, ca, successes, description, remote] = args;
        await elastic(endpoint, token, ca, Number(successes), JSON.parse(description), remote === 'remote');
    } else if (mode === 'raw') {
        const [transport, endpoint, token, ca, stepsFile] = args;
        const steps = JSON.parse(fs.readFileSync(stepsFile, 'utf8'));
        if (transport === 'ws') await rawWs(endpoint, token, ca, steps);
        else await rawHttp(endpoint, token, ca, steps);
    } else if (mode === 'park') {
        const [endpoint, token, ca, count] = args;
        await park(endpoint, token, ca, Number(count));
        return;
    } else {
        throw new Error(`unknown mode ${mode}`);
    }
    process.exit(0);
}

main().catch((err) => {
    process.stderr.write(`opamp client: ${err && err.stack ? err.stack : err}\n`);
    process.exit(2);
});

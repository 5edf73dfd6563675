// Verifies the verify_bench message set with postalsys/mailauth (Node), for comparison.
//
//   node benches/compare_mailauth.js MESSAGES_DIR DNS_SERVER PARALLEL
//
// MESSAGES_DIR holds NNNNN.eml and NNNNN.json ({ip, helo, sender}) as written by
// `cargo bench --bench verify_bench -- --compare-mailauth`; DNS_SERVER is the bench's loopback
// DNS server (127.0.0.1:PORT). Every message is authenticated with mailauth's `authenticate`
// (DKIM, SPF, ARC, DMARC; BIMI off, as mailshift has none), PARALLEL at a time, twice: with
// mailauth's own DNS use (a lookup per question, through Node's resolver pointed at the bench
// server) and with a resolver that caches answers for the run (as mailshift's does). Prints one
// line per mode: messages/s and how many messages passed DKIM, SPF and DMARC.
//
// Setup (once): mkdir -p target/mailauth-bench && cd target/mailauth-bench && npm init -y &&
// npm install mailauth

'use strict';

const fs = require('fs');
const path = require('path');
const { Resolver } = require('dns').promises;
const { authenticate } = require('mailauth');

async function main() {
    const [dir, server, parallelArg] = process.argv.slice(2);
    const parallel = Number(parallelArg || 1);
    const files = fs
        .readdirSync(dir)
        .filter(f => f.endsWith('.eml'))
        .sort();
    const messages = files.map(f => ({
        raw: fs.readFileSync(path.join(dir, f)),
        env: JSON.parse(fs.readFileSync(path.join(dir, f.replace(/\.eml$/, '.json')), 'utf8'))
    }));
    const dns = new Resolver({ timeout: 3000, tries: 2 });
    dns.setServers([server]);
    const direct = (name, rr) => dns.resolve(name, rr);
    const cache = new Map();
    const cached = (name, rr) => {
        const key = `${rr} ${name.toLowerCase()}`;
        if (!cache.has(key)) {
            cache.set(key, dns.resolve(name, rr));
        }
        return cache.get(key);
    };

    for (const [label, resolver] of [
        ['its own DNS lookups', direct],
        ['a caching resolver', cached]
    ]) {
        // Warm-up (JIT), not timed.
        for (const m of messages.slice(0, 50)) {
            await verifyOne(m, resolver);
        }
        let passed = 0;
        let next = 0;
        const started = process.hrtime.bigint();
        const worker = async () => {
            while (next < messages.length) {
                const m = messages[next++];
                if (await verifyOne(m, resolver)) {
                    passed++;
                }
            }
        };
        await Promise.all(Array.from({ length: parallel }, worker));
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        console.log(
            `mailauth ${require('mailauth/package.json').version}, ${parallel} at a time, ${label}: ` +
                `${seconds.toFixed(3)} s = ${(messages.length / seconds).toFixed(0)} msg/s; ` +
                `DKIM+SPF+DMARC pass for ${passed} of ${messages.length}`
        );
    }
}

async function verifyOne(m, resolver) {
    const result = await authenticate(m.raw, {
        ip: m.env.ip,
        helo: m.env.helo,
        sender: m.env.sender,
        mta: 'mx.inbox.example',
        resolver,
        disableBimi: true
    });
    const dkim = (result.dkim.results || []).some(r => r.status.result === 'pass');
    return dkim && result.spf?.status?.result === 'pass' && result.dmarc?.status?.result === 'pass';
}

main().catch(err => {
    console.error(err);
    process.exit(1);
});

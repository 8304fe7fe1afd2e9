// Calls the service through HAProxy as a Node program would, with
// @connectrpc/connect-node's gRPC-Web transport and the code protoc-gen-es
// generated from the proto, and prints what it got as one JSON line for
// e2e TestGRPCWebFromNode to check. Then it has HAProxy refuse calls in
// gRPC-Web and Connect (JSON and binary), and prints the codes the
// clients read from those refusals.
//
// usage: node grpcweb-node.mjs BASE_URL HTTP_VERSION CA_FILE API_KEY LOCAL_ADDRESS
// (LOCAL_ADDRESS: the loopback address to call from, which has a rate
// limit of its own)
import { readFileSync } from "node:fs";
import { createClient, ConnectError } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { CodenameCreator } from "./gen/codename/v1/codename_pb.js";

const [baseUrl, httpVersion, caFile, apiKey, localAddress] = process.argv.slice(2);
const nodeOptions = { localAddress, ...(baseUrl.startsWith("https:") ? { ca: readFileSync(caFile) } : {}) };
const transport = createGrpcWebTransport({ baseUrl, httpVersion, nodeOptions });

// KeepGettingCodenames is bidi in the proto; over gRPC-Web it is the
// server stream a browser can make of it (README: Typed browser clients).
const asServerStream = (m) => m.name === "KeepGettingCodenames" ? { ...m, methodKind: "server_streaming" } : m;
// Each method again under a path with its first letter percent-escaped:
// the same method to the gateway, a non-canonical path to HAProxy.
const escaped = (m) => ({
  ...m,
  name: `%${m.name.charCodeAt(0).toString(16)}${m.name.slice(1)}`,
  localName: `escaped${m.name}`,
});
const service = {
  ...CodenameCreator,
  methods: [...CodenameCreator.methods.map(asServerStream), ...CodenameCreator.methods.map(asServerStream).map(escaped)],
};
const client = createClient(service, transport);
const headers = { "x-api-key": apiKey };

const codeOf = async (call) => {
  try {
    await call();
    return 0;
  } catch (err) {
    const ce = ConnectError.from(err);
    console.error(`code ${ce.code}: ${ce.rawMessage}`); // for the test's failure message
    return ce.code;
  }
};

const out = {};
out.unary = (await client.getCodename({ category: "science" }, { headers })).name;
out.unknown = await codeOf(() => client.getCodename({ category: "dragons" }, { headers }));
out.nokey = await codeOf(() => client.getCodename({ category: "science" }));
out.stream = [];
const abort = new AbortController();
for await (const res of client.keepGettingCodenames({ category: "space" }, { headers, signal: abort.signal })) {
  out.stream.push(res.name);
  if (out.stream.length === 3) break;
}
abort.abort();

// Each call below is bounded: a refusal comes at once, and a call that is
// not refused must not hold the program.
const bounded = { timeoutMs: 10000 };
// The code a server stream of method ends with, 0 if it delivers a
// message (the stream is then cancelled).
const streamCodeOf = (c, method, options) => codeOf(async () => {
  const stop = new AbortController();
  try {
    for await (const _ of c[method]({ category: "space" }, { ...bounded, ...options, signal: stop.signal })) return;
  } finally {
    stop.abort();
  }
});
const clients = {
  grpcweb: client,
  connectjson: createClient(service, createConnectTransport({ baseUrl, httpVersion, nodeOptions })),
  connectproto: createClient(service, createConnectTransport({ baseUrl, httpVersion, nodeOptions, useBinaryFormat: true })),
};
out.refused = {};
for (const [name, c] of Object.entries(clients)) {
  out.refused[name] = {
    nokey: await codeOf(() => c.getCodename({ category: "science" }, bounded)),
    nokeyStream: await streamCodeOf(c, "keepGettingCodenames", {}),
    escaped: await codeOf(() => c.escapedGetCodename({ category: "science" }, { ...bounded, headers })),
    escapedStream: await streamCodeOf(c, "escapedKeepGettingCodenames", { headers }),
  };
}
// Calls with the key until HAProxy's rate limit refuses one (at most 100),
// then one of each kind per protocol while the limit holds.
let passed = 0;
while (passed < 100 && (await codeOf(() => client.getCodename({ category: "science" }, { ...bounded, headers }))) === 0) passed++;
out.passedBeforeLimit = passed;
for (const [name, c] of Object.entries(clients)) {
  out.refused[name].limited = await codeOf(() => c.getCodename({ category: "science" }, { ...bounded, headers }));
  out.refused[name].limitedStream = await streamCodeOf(c, "keepGettingCodenames", { headers });
}
console.log(JSON.stringify(out));

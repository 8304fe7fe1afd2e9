// Calls the service through HAProxy as a Node program would, with
// @connectrpc/connect-node's gRPC-Web transport and the code protoc-gen-es
// generated from the proto, and prints what it got as one JSON line for
// e2e TestGRPCWebFromNode to check.
//
// usage: node grpcweb-node.mjs BASE_URL HTTP_VERSION CA_FILE API_KEY
import { readFileSync } from "node:fs";
import { createClient, ConnectError } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { CodenameCreator } from "./gen/codename/v1/codename_pb.js";

const [baseUrl, httpVersion, caFile, apiKey] = process.argv.slice(2);
const nodeOptions = baseUrl.startsWith("https:") ? { ca: readFileSync(caFile) } : {};
const transport = createGrpcWebTransport({ baseUrl, httpVersion, nodeOptions });

// KeepGettingCodenames is bidi in the proto; over gRPC-Web it is the
// server stream a browser can make of it (README: Typed browser clients).
const service = {
  ...CodenameCreator,
  methods: CodenameCreator.methods.map((m) =>
    m.name === "KeepGettingCodenames" ? { ...m, methodKind: "server_streaming" } : m),
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
console.log(JSON.stringify(out));

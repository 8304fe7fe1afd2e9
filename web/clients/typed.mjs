// The demo page's typed clients: @connectrpc/connect-web's Connect and
// gRPC-Web transports over the code protoc-gen-es generated from the proto.
// scripts/generate.sh bundles this file, with what it imports, into
// web/static/typed.js, which the page loads only when one of these
// protocols is chosen; the bundle is checked fresh like the rest of the
// generated code (api/codename/v1 TestGeneratedCodeIsFresh).
//
// Every call goes to the page's own origin. Errors come back as the
// page's problems: {code, message}, code being the gRPC status code (a
// ConnectError's code is the same number).
import { createClient, ConnectError } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { CodenameCreator } from "./gen/codename/v1/codename_pb.js";

// KeepGettingCodenames is bidirectional in the proto. A browser's fetch
// cannot stream a request body, so over these protocols it is the server
// stream a browser can make of it: one request (the category), then
// codenames until the call ends. Switching category on an open stream is
// what the WebSocket transport is for.
const service = {
  ...CodenameCreator,
  methods: CodenameCreator.methods.map((m) =>
    m.name === "KeepGettingCodenames" ? { ...m, methodKind: "server_streaming" } : m),
};

// What the page offers, by the value of its protocol pickers.
export const PROTOCOLS = {
  connect: { label: "Connect", transport: createConnectTransport },
  grpcweb: { label: "gRPC-Web", transport: createGrpcWebTransport },
};

const clients = new Map();

function client(protocol) {
  if (!(protocol in PROTOCOLS)) {
    throw new Error(`unknown protocol ${protocol}`);
  }
  if (!clients.has(protocol)) {
    const transport = PROTOCOLS[protocol].transport({ baseUrl: location.origin });
    clients.set(protocol, createClient(service, transport));
  }
  return clients.get(protocol);
}

// problemOf turns whatever a call threw into the page's problem shape.
export function problemOf(err) {
  const ce = ConnectError.from(err);
  return { code: ce.code, message: ce.rawMessage || `gRPC status ${ce.code}` };
}

// getCodename makes the unary call; it resolves to the codename, or
// rejects with a problem.
export async function getCodename(protocol, category, timeoutMs) {
  try {
    const res = await client(protocol).getCodename({ category }, { timeoutMs });
    return res.name;
  } catch (err) {
    throw problemOf(err);
  }
}

// streamCodenames opens the server stream of category and calls onName for
// each codename and then onEnd once, with a problem, when the stream is
// over for any reason but the signal's abort.
export async function streamCodenames(protocol, category, signal, onName, onEnd) {
  try {
    for await (const res of client(protocol).keepGettingCodenames({ category }, { signal })) {
      onName(res.name);
    }
    if (!signal.aborted) onEnd({ message: "the server ended the stream" });
  } catch (err) {
    if (!signal.aborted) onEnd(problemOf(err));
  }
}

// The codename-gateway demo page: plain JavaScript, and every request goes
// to the page's own origin through relative URLs, so it works the same over
// https://…:8443 and http://…:8080. Its one dependency is typed.js, the
// generated Connect and gRPC-Web clients (built by scripts/generate.sh from
// web/clients/typed.mjs), loaded only when one of those protocols is chosen.
//
// The stream has one state at a time, shown in #state:
//
//   stopped       nothing open, nothing planned (the start, and after Stop)
//   connecting    a stream the user asked for is opening
//   streaming     codenames are arriving
//   reconnecting  the stream broke on its own; waiting to retry, or retrying
//   error         a permanent failure (such as an unknown category); no retry
//
// A stream counts as connected when its first codename arrives, on every
// transport alike: an open socket only proves that HAProxy answered, while
// a codename proves the whole path to the gRPC server works. That moment
// switches the state to "streaming", adds one to data-connects on #state,
// and resets the reconnect back-off. Switching category on an open
// WebSocket keeps the same stream, so it is not a new connection.

const STREAM_PATH = '/v1/codenames:stream';
const MAX_NAMES = 50;
const MAX_LOG = 80;
const BACKOFF_FIRST_MS = 250;
const BACKOFF_CAP_MS = 5000;
const UNARY_TIMEOUT_MS = 10000;
const RPC_PATH = '/codename.v1.CodenameCreator/';

// gRPC status codes that asking again cannot fix: INVALID_ARGUMENT,
// NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION, OUT_OF_RANGE,
// UNIMPLEMENTED, UNAUTHENTICATED. Anything else (UNAVAILABLE, INTERNAL when
// a backend dies mid-stream, a dropped connection) is worth a reconnect.
const PERMANENT_CODES = new Set([3, 5, 7, 9, 11, 12, 16]);

const $ = (id) => document.getElementById(id);
const ui = {
  category: $('category'),
  categoryNote: $('category-note'),
  categoriesRetry: $('categories-retry'),
  error: $('error'),
  getOne: $('get-one'),
  unaryProtocol: $('unary-protocol'),
  onceRequest: $('once-request'),
  codename: $('codename'),
  transport: $('transport'),
  transportNote: $('transport-note'),
  start: $('start'),
  stop: $('stop'),
  state: $('state'),
  connectsText: $('connects-text'),
  retryText: $('retry-text'),
  names: $('names'),
  log: $('log'),
  originNote: $('origin-note'),
};

// What each transport is, for the note under the transport picker.
const TRANSPORTS = {
  ws: {
    open: openWebSocket,
    note: 'One WebSocket to /v1/codenames:stream, bridged by the gateway onto the bidirectional gRPC call. Each category you pick is sent as a message on the same socket, and the stream switches from the next codename on.',
  },
  fetch: {
    open: openFetch,
    note: 'A POST to /v1/codenames:stream whose response is read line by line as it arrives, one JSON object per line. The request body is sent once, so changing the category restarts the stream.',
  },
  sse: {
    open: openEventSource,
    note: 'An EventSource on /v1/codenames:stream?category=…, with each codename pushed as an event. EventSource can only listen, so changing the category restarts the stream.',
  },
  connect: {
    open: (s, sink) => openTyped('connect', s, sink),
    note: 'The generated, typed client of @connectrpc/connect-web calls KeepGettingCodenames in the Connect protocol, as a server stream: a browser cannot stream a request body, so changing the category restarts the stream.',
  },
  grpcweb: {
    open: (s, sink) => openTyped('grpcweb', s, sink),
    note: 'The same typed client in gRPC-Web, the framing of gRPC that a browser can send: HAProxy routes it by its content type to the gateway, which calls the gRPC server. A server stream, so changing the category restarts it.',
  },
};

// typed loads the generated Connect and gRPC-Web clients the first time
// they are needed: most visits never pay for them.
let typedModule = null;
function typed() {
  typedModule ??= import('./typed.js').catch((e) => {
    typedModule = null; // let the next attempt load it again
    throw e;
  });
  return typedModule;
}

// ---------------------------------------------------------------- helpers

function parseJSON(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// problemFrom turns a gateway error object {code, message} into the shape
// the stream logic uses.
function problemFrom(err) {
  const code = Number(err && err.code);
  const message = err && typeof err.message === 'string' && err.message
    ? err.message
    : `gRPC status ${Number.isFinite(code) ? code : 'unknown'}`;
  return { code: Number.isFinite(code) ? code : undefined, message };
}

// problemFromBody reads an error response: the gateway's JSON, either bare
// ({"code":3,"message":...}) or wrapped as a stream line ({"error":{...}}),
// or anything else (an HTML page from a proxy) by its HTTP status.
function problemFromBody(status, statusText, text) {
  const firstLine = text.trim().split('\n')[0];
  const body = parseJSON(firstLine);
  const err = body && typeof body === 'object' ? (body.error || body) : null;
  if (err && typeof err.message === 'string') {
    return problemFrom(err);
  }
  // No JSON: a client error stays an error, anything else may pass.
  const permanent = status >= 400 && status < 500 && status !== 408 && status !== 429;
  return { code: permanent ? 3 : undefined, message: `HTTP ${status}${statusText ? ' ' + statusText : ''}` };
}

function isPermanent(problem) {
  return problem.code !== undefined && PERMANENT_CODES.has(problem.code);
}

function showError(message) {
  if (ui.error.textContent !== message) {
    ui.error.textContent = message;
  }
}

function clearError() {
  showError('');
}

function log(direction, text) {
  const item = document.createElement('li');
  const time = document.createElement('time');
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString([], { hour12: false });
  const dir = document.createElement('span');
  dir.className = 'dir';
  dir.textContent = direction;
  dir.title = { '→': 'sent', '←': 'received', '•': 'event' }[direction] || '';
  const body = document.createElement('code');
  body.textContent = text;
  item.append(time, dir, body);
  ui.log.prepend(item);
  while (ui.log.childElementCount > MAX_LOG) {
    ui.log.lastElementChild.remove();
  }
}

// -------------------------------------------------------------- categories

let categoriesTimer = 0;
let categoriesAttempt = 0;

async function loadCategories() {
  clearTimeout(categoriesTimer);
  ui.categoriesRetry.hidden = true;
  ui.categoryNote.textContent = 'Loading the list from GET /v1/categories…';
  let problem;
  try {
    const res = await fetch('/v1/categories', {
      headers: { Accept: 'application/json' },
      cache: 'no-store',
      signal: AbortSignal.timeout(UNARY_TIMEOUT_MS),
    });
    const text = await res.text();
    if (res.ok) {
      const body = parseJSON(text);
      const list = body && Array.isArray(body.categories)
        ? body.categories.filter((c) => typeof c === 'string' && c !== '')
        : [];
      if (list.length > 0) {
        fillCategories(list, body.defaultCategory || body.default_category);
        return;
      }
      problem = { code: 13, message: 'the server sent an empty category list' };
    } else {
      problem = problemFromBody(res.status, res.statusText, text);
    }
  } catch (e) {
    problem = { message: e && e.name === 'TimeoutError' ? 'no answer from the gateway' : 'could not reach the gateway' };
  }
  showError(`Could not load the categories: ${problem.message}`);
  ui.categoryNote.textContent = 'The category list comes from GET /v1/categories, which did not answer.';
  ui.categoriesRetry.hidden = false;
  if (!isPermanent(problem)) {
    // A gateway that is still starting, or restarting, gets asked again.
    const delay = backoffDelay(categoriesAttempt++);
    categoriesTimer = setTimeout(loadCategories, delay);
  }
}

function fillCategories(list, preferred) {
  const previous = ui.category.value;
  ui.category.replaceChildren(...list.map((name) => {
    const option = document.createElement('option');
    option.value = name;
    option.textContent = name.charAt(0).toUpperCase() + name.slice(1);
    return option;
  }));
  ui.category.value = list.includes(previous) ? previous
    : list.includes(preferred) ? preferred
      : list[0];
  ui.category.disabled = false;
  ui.categoryNote.textContent = `${list.length} categories, from GET /v1/categories. Both the single call and the stream use the one picked here.`;
  ui.categoriesRetry.hidden = true;
  categoriesAttempt = 0;
  if (ui.error.textContent.startsWith('Could not load the categories')) {
    clearError();
  }
  updateOnceRequest();
  updateControls();
}

// ----------------------------------------------------------------- unary

let unaryBusy = false;

function updateOnceRequest() {
  const protocol = ui.unaryProtocol.value;
  ui.onceRequest.textContent = protocol === 'rest'
    ? `GET /v1/codename?category=${encodeURIComponent(ui.category.value)}`
    : `POST ${RPC_PATH}GetCodename (${protocol === 'connect' ? 'Connect' : 'gRPC-Web'})`;
}

async function getOne() {
  if (unaryBusy) return;
  unaryBusy = true;
  updateControls();
  clearError();
  if (ui.unaryProtocol.value !== 'rest') {
    await getOneTyped(ui.unaryProtocol.value, ui.category.value);
    return;
  }
  const category = ui.category.value;
  const url = `/v1/codename?category=${encodeURIComponent(category)}`;
  ui.codename.classList.add('pending');
  try {
    const res = await fetch(url, {
      headers: { Accept: 'application/json' },
      cache: 'no-store',
      signal: AbortSignal.timeout(UNARY_TIMEOUT_MS),
    });
    const text = await res.text();
    const body = res.ok ? parseJSON(text) : undefined;
    if (body && typeof body.name === 'string') {
      ui.codename.textContent = body.name;
      log('←', `GET ${url} ${text.trim()}`);
    } else {
      const problem = res.ok
        ? { message: 'the gateway sent an answer without a name' }
        : problemFromBody(res.status, res.statusText, text);
      ui.codename.textContent = '';
      showError(problem.message);
      log('←', `GET ${url} ${res.status} ${text.trim()}`);
    }
  } catch (e) {
    ui.codename.textContent = '';
    showError(e && e.name === 'TimeoutError'
      ? 'The gateway did not answer within 10 seconds.'
      : 'Could not reach the gateway. Is it running?');
  } finally {
    ui.codename.classList.remove('pending');
    unaryBusy = false;
    updateControls();
  }
}

// getOneTyped makes the same call with the typed client, in protocol.
async function getOneTyped(protocol, category) {
  const what = `${RPC_PATH}GetCodename (${protocol})`;
  ui.codename.classList.add('pending');
  log('→', `${what} ${JSON.stringify({ category })}`);
  try {
    const client = await typed();
    const name = await client.getCodename(protocol, category, UNARY_TIMEOUT_MS);
    ui.codename.textContent = name;
    log('←', `${what} ${JSON.stringify({ name })}`);
  } catch (e) {
    const problem = e && typeof e.message === 'string' ? e : { message: String(e) };
    ui.codename.textContent = '';
    showError(problem.message);
    log('←', `${what} error ${problem.code ?? ''} ${problem.message}`);
  } finally {
    ui.codename.classList.remove('pending');
    unaryBusy = false;
    updateControls();
  }
}

// ---------------------------------------------------------------- stream

let state = 'stopped';
let wanted = false; // the user asked for a stream and has not stopped it
let current = null; // the open stream attempt, or null
let retryTimer = 0;
let attempt = 0; // reconnects since the last codename arrived
let connects = 0;
let reconnectMessage = ''; // what #error says while reconnecting, if anything

function setState(next) {
  if (state !== next) {
    state = next;
    ui.state.textContent = next;
    ui.state.dataset.state = next;
    log('•', `state: ${next}`);
  }
  updateControls();
}

function updateControls() {
  const haveCategory = !ui.category.disabled && ui.category.value !== '';
  ui.getOne.disabled = !haveCategory || unaryBusy;
  ui.start.disabled = !haveCategory || wanted;
  ui.stop.disabled = !wanted;
}

function countConnect() {
  connects += 1;
  ui.state.dataset.connects = String(connects);
  ui.connectsText.textContent = connects === 1
    ? 'Connected once since the page loaded.'
    : `Connected ${connects} times since the page loaded.`;
}

// backoffDelay is exponential from BACKOFF_FIRST_MS, capped at
// BACKOFF_CAP_MS, with ±25% jitter so that many pages do not all come back
// at the same instant after a restart.
function backoffDelay(n) {
  const base = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** Math.min(n, 10));
  return Math.round(Math.min(BACKOFF_CAP_MS, base * (0.75 + Math.random() * 0.5)));
}

function clearReconnectMessage() {
  if (reconnectMessage && ui.error.textContent === reconnectMessage) {
    clearError();
  }
  reconnectMessage = '';
}

function cancelRetry() {
  clearTimeout(retryTimer);
  retryTimer = 0;
  ui.retryText.textContent = '';
}

function closeCurrent() {
  const s = current;
  current = null;
  if (s) {
    try {
      s.close();
    } catch {
      // already closed
    }
  }
}

// open starts a stream attempt on the chosen transport. Each attempt gets
// its own sink, which ignores everything once the attempt is no longer
// current, so events from a stream being torn down never leak into the next.
function open(nextState) {
  cancelRetry();
  closeCurrent();
  wanted = true;
  setState(nextState);
  const transport = ui.transport.value in TRANSPORTS ? ui.transport.value : 'ws';
  const s = {
    transport,
    category: ui.category.value,
    gotFirst: false,
    close() {},
    switchCategory: null,
  };
  current = s;
  const sink = {
    live: () => current === s,
    log: (direction, text) => {
      if (current === s) log(direction, text);
    },
    name(name) {
      if (current !== s) return;
      if (!s.gotFirst) {
        s.gotFirst = true;
        attempt = 0;
        countConnect();
        clearReconnectMessage();
        setState('streaming');
      }
      addName(name, s.category);
    },
    end(problem) {
      if (current !== s) return;
      closeCurrent();
      if (wanted) streamEnded(problem);
    },
  };
  try {
    TRANSPORTS[transport].open(s, sink);
  } catch (e) {
    sink.end({ message: `could not open the stream: ${e && e.message ? e.message : e}` });
  }
}

function streamEnded(problem) {
  log('•', `stream ended: ${problem.message}`);
  if (isPermanent(problem)) {
    wanted = false;
    showError(problem.message);
    setState('error');
    return;
  }
  reconnectMessage = `The stream broke (${problem.message}). Reconnecting…`;
  showError(reconnectMessage);
  scheduleRetry();
}

function scheduleRetry() {
  cancelRetry();
  const delay = backoffDelay(attempt);
  attempt += 1;
  setState('reconnecting');
  ui.retryText.textContent = `Attempt ${attempt} in ${(delay / 1000).toFixed(1)} s.`;
  log('•', `reconnecting in ${delay} ms`);
  retryTimer = setTimeout(() => {
    retryTimer = 0;
    ui.retryText.textContent = `Attempt ${attempt}…`;
    open('reconnecting');
  }, delay);
}

function start() {
  if (wanted || ui.category.disabled) return;
  attempt = 0;
  clearError();
  open('connecting');
}

function stop() {
  wanted = false;
  cancelRetry();
  closeCurrent();
  clearReconnectMessage(); // no longer true; a permanent error stays
  setState('stopped');
}

function addName(name, category) {
  const item = document.createElement('li');
  item.textContent = name;
  item.dataset.category = category;
  ui.names.prepend(item);
  while (ui.names.childElementCount > MAX_NAMES) {
    ui.names.lastElementChild.remove();
  }
}

function categoryChanged() {
  updateOnceRequest();
  if (!wanted) return;
  const category = ui.category.value;
  if (current && current.switchCategory) {
    current.switchCategory(category);
  } else if (current) {
    log('•', `category is now ${category}: this transport cannot change it in place, so the stream restarts`);
    attempt = 0;
    open('connecting');
  }
  // While waiting to reconnect, the next attempt picks up the new category.
}

function transportChanged() {
  updateTransportNote();
  if (!wanted) return;
  log('•', `transport is now ${ui.transport.value}: the stream restarts`);
  attempt = 0;
  open('connecting');
}

function updateTransportNote() {
  const t = TRANSPORTS[ui.transport.value] || TRANSPORTS.ws;
  ui.transportNote.textContent = t.note;
}

// ------------------------------------------------------------ transports
//
// Each transport gets the attempt `s` (its category, and a close method to
// fill in) and a `sink` to report to: sink.name(name) for each codename,
// sink.end(problem) once when the stream is over for any reason other than
// close(). A problem is {message, code?}, code being a gRPC status code.

function openWebSocket(s, sink) {
  const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${STREAM_PATH}`;
  sink.log('•', `WebSocket ${url}`);
  const ws = new WebSocket(url);
  const send = (category) => {
    const frame = JSON.stringify({ category });
    ws.send(frame);
    sink.log('→', frame);
  };
  s.close = () => {
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) {
      ws.close(1000, 'stopped');
    }
  };
  s.switchCategory = (category) => {
    s.category = category;
    if (ws.readyState === WebSocket.OPEN) {
      send(category); // same socket, same gRPC stream
    }
    // Still connecting: the open handler sends the latest category.
  };
  ws.addEventListener('open', () => {
    if (!sink.live()) return;
    sink.log('•', 'socket open');
    send(s.category);
  });
  ws.addEventListener('message', (event) => {
    if (typeof event.data !== 'string') return;
    sink.log('←', event.data);
    const msg = parseJSON(event.data);
    if (msg && msg.result && typeof msg.result.name === 'string') {
      sink.name(msg.result.name);
    } else if (msg && msg.error) {
      // The server closes right after this; no need to wait for it.
      sink.end(problemFrom(msg.error));
    }
  });
  ws.addEventListener('close', (event) => {
    const why = event.reason ? `${event.code} ${event.reason}` : String(event.code);
    sink.end({ message: event.code === 1006 ? 'the connection was lost' : `the socket closed (${why})` });
  });
}

function openFetch(s, sink) {
  const controller = new AbortController();
  s.close = () => controller.abort();
  const body = JSON.stringify({ category: s.category });
  sink.log('→', `POST ${STREAM_PATH} ${body}`);
  const aborted = () => controller.signal.aborted || !sink.live();

  (async () => {
    let res;
    try {
      res = await fetch(STREAM_PATH, {
        method: 'POST',
        // The body is a stream of JSON lines, and so is the answer.
        headers: { 'Content-Type': 'application/x-ndjson', Accept: 'application/x-ndjson' },
        body,
        cache: 'no-store',
        signal: controller.signal,
      });
    } catch {
      if (!aborted()) sink.end({ message: 'could not reach the gateway' });
      return;
    }
    if (!res.ok || !res.body) {
      // An error answer is one short JSON line; reading it whole is fine.
      let text = '';
      try {
        text = await res.text();
      } catch {
        // the body broke too; the status says enough
      }
      if (aborted()) return;
      sink.log('←', `${res.status} ${text.trim()}`);
      sink.end(res.ok
        ? { message: 'the response has no body to read' }
        : problemFromBody(res.status, res.statusText, text));
      return;
    }
    sink.log('•', `response ${res.status}, reading lines as they arrive`);

    // Read the body chunk by chunk, acting on every complete line at once.
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let pending = '';
    let problem = null;
    const handleLine = (raw) => {
      const line = raw.trim();
      if (line === '') return;
      sink.log('←', line);
      const msg = parseJSON(line);
      if (msg && msg.result && typeof msg.result.name === 'string') {
        sink.name(msg.result.name);
      } else if (msg && msg.error) {
        problem = problemFrom(msg.error);
      }
      // Anything else is not ours to understand; it is in the log.
    };
    try {
      while (problem === null) {
        const { value, done } = await reader.read();
        if (done) {
          handleLine(pending + decoder.decode());
          break;
        }
        pending += decoder.decode(value, { stream: true });
        let newline;
        while (problem === null && (newline = pending.indexOf('\n')) >= 0) {
          handleLine(pending.slice(0, newline));
          pending = pending.slice(newline + 1);
        }
      }
    } catch {
      if (aborted()) return;
      problem = { message: 'the connection was lost' };
    }
    reader.cancel().catch(() => {});
    if (aborted()) return;
    sink.end(problem || { message: 'the server ended the stream' });
  })();
}

// openTyped streams with the generated client in protocol ('connect' or
// 'grpcweb'); the client reports codenames and the end in the page's terms.
function openTyped(protocol, s, sink) {
  const controller = new AbortController();
  s.close = () => controller.abort();
  sink.log('→', `${RPC_PATH}KeepGettingCodenames (${protocol}) ${JSON.stringify({ category: s.category })}`);
  typed().then(
    (client) => {
      if (controller.signal.aborted) return;
      client.streamCodenames(protocol, s.category, controller.signal, (name) => {
        sink.log('←', JSON.stringify({ name }));
        sink.name(name);
      }, (problem) => sink.end(problem));
    },
    () => sink.end({ message: 'could not load the typed client (typed.js)' }),
  );
}

function openEventSource(s, sink) {
  const url = `${STREAM_PATH}?category=${encodeURIComponent(s.category)}`;
  sink.log('•', `EventSource ${url}`);
  const source = new EventSource(url);
  s.close = () => source.close();
  source.addEventListener('open', () => sink.log('•', 'event stream open'));
  source.addEventListener('message', (event) => {
    sink.log('←', `data: ${event.data}`);
    const msg = parseJSON(event.data);
    if (msg && msg.result && typeof msg.result.name === 'string') {
      sink.name(msg.result.name);
    } else if (msg && msg.error) {
      sink.end(problemFrom(msg.error));
    }
  });
  source.addEventListener('error', (event) => {
    if (event instanceof MessageEvent) {
      // The server's own "error" event: {"error":{code,message}}. The
      // stream is over; sink.end closes the source so that EventSource
      // does not reconnect by itself.
      sink.log('←', `event: error, data: ${event.data}`);
      const msg = parseJSON(event.data);
      sink.end(msg && msg.error ? problemFrom(msg.error) : { message: String(event.data) });
      return;
    }
    // EventSource's own error: the connection failed or dropped. It would
    // retry on its own schedule; close it and use the page's back-off.
    sink.end({
      message: source.readyState === EventSource.CLOSED
        ? 'the event stream could not be opened'
        : 'the event stream was interrupted',
    });
  });
}

// ------------------------------------------------------------------ wiring

ui.category.addEventListener('change', categoryChanged);
ui.transport.addEventListener('change', transportChanged);
ui.getOne.addEventListener('click', getOne);
ui.unaryProtocol.addEventListener('change', updateOnceRequest);
ui.start.addEventListener('click', start);
ui.stop.addEventListener('click', stop);
ui.categoriesRetry.addEventListener('click', () => {
  categoriesAttempt = 0;
  loadCategories();
});

// Back online: do not sit out the rest of a long back-off.
window.addEventListener('online', () => {
  if (retryTimer) {
    log('•', 'the network is back');
    open('reconnecting');
  }
});

ui.originNote.textContent = `This page came over ${location.protocol === 'https:' ? 'HTTPS' : 'plain HTTP'} from ${location.host}; every call above goes to the same place.`;
updateTransportNote();
updateControls();
loadCategories();

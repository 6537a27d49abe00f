// Reading a view's NDJSON as it arrives, without ever holding the tab for long.
//
// Objects are handed over in batches of at most BATCH lines; between batches the
// reader yields to the browser, so scrolling, keys and painting go on while a
// listing of any size streams in.

const BATCH = 2000;

export class FeedError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Give the browser a turn (input, paint) before going on; much quicker than setTimeout(0).
function yieldToBrowser() {
  if (globalThis.scheduler && typeof scheduler.yield === 'function') return scheduler.yield();
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

// Fetch `url` (NDJSON) and call onObjects(array) for each batch of entry lines.
// Resolves with the last line's sources, or null when the stream was cut short.
export async function readFeed(url, onObjects, {signal} = {}) {
  const response = await fetch(url, {headers: {Accept: 'application/x-ndjson'},
                                     credentials: 'same-origin', signal});
  if (!response.ok) {
    let error = {code: `http_${response.status}`, message: response.statusText};
    try {
      error = (await response.json()).error || error;
    } catch (_) { /* not our JSON: keep the status */ }
    throw new FeedError(response.status, error.code, error.message);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let rest = '';
  let sources = null;
  for (;;) {
    const {done, value} = await reader.read();
    const text = rest + (done ? decoder.decode() : decoder.decode(value, {stream: true}));
    const lines = text.split('\n');
    rest = lines.pop();  // every line ends with a newline: a tail without one was cut short
    for (let start = 0; start < lines.length; start += BATCH) {
      const slice = lines.slice(start, start + BATCH).filter((line) => line);
      if (!slice.length) continue;
      const objects = JSON.parse(`[${slice.join(',')}]`);  // one parse per batch
      const last = objects[objects.length - 1];
      if (last.sources && last.name === undefined) sources = objects.pop().sources;
      if (objects.length) onObjects(objects);
      if (start + BATCH < lines.length) await yieldToBrowser();
    }
    if (done) return rest ? null : sources;
  }
}

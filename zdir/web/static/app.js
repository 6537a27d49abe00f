// The page: reads the view's NDJSON, merges entries into rows by name, keeps them
// sorted, and shows how each source fared. Every name goes into the page as text.

import {Grid} from './grid.js';
import {FeedError, readFeed} from './feed.js';
import {count, dirname, fullTime, humanSize, pathToUrl, shortTime, showName} from './names.js';

const body = document.body;
const VIEW = body.dataset.view;  // ls | search | compare
const HERE = body.dataset.here;  // this directory, URL-encoded, with a trailing slash ("" at the root)
const KEEP = body.dataset.keep;  // "?all=1" while hidden names are shown
const UP = body.dataset.up;  // the parent directory's page, if there is one
// As zdir --compare: mtimes this close are the same (for the listing view's marks).
const WINDOW = Number(body.dataset.window) || 0;
const REFUSALS = new Set(['not_found', 'not_a_directory', 'permission_denied', 'outside_root',
                          'symlink_loop']);
const PALETTE = 8;  // badge colours, by the order sources are first seen
const STATUS_RANK = {differs: 0, only: 1, same: 2};

const scroller = document.getElementById('scroller');
const table = document.getElementById('grid');
const summary = document.getElementById('summary');
const sourceList = document.getElementById('sources');
const empty = document.getElementById('empty');

const model = {
  all: [],  // rows in arrival order
  byName: new Map(),
  sorted: [],  // rows shown, in order
  pending: [],  // rows not yet merged into `sorted`
  resort: false,
  key: null,
  descending: false,
  filter: null,
  entries: 0,
  colours: new Map(),
};

// -- rows ----------------------------------------------------------------------------------------

function colour(source) {
  if (!model.colours.has(source)) model.colours.set(source, model.colours.size % PALETTE);
  return model.colours.get(source);
}

// Where copies disagree, as zdir --compare: type first; directories by type only.
function differing(copies) {
  const first = copies[0];
  if (copies.some((c) => c.type !== first.type)) return ['type'];
  if (first.type === 'dir') return [];
  const fields = [];
  if (copies.some((c) => c.size !== first.size)) fields.push('size');
  const times = copies.map((c) => c.mtime);
  if (times.includes(null) ? times.some((t) => t !== null)
    : Math.max(...times) - Math.min(...times) > WINDOW) fields.push('mtime');
  return fields;
}

function addEntry(entry) {  // ls and search: one line per entry and source
  model.entries += 1;
  colour(entry.source);
  const row = model.byName.get(entry.name);
  if (row) {
    row.copies.push(entry);
    row.differs = differing(row.copies);
    if (model.key === 'sources') model.resort = true;
    return;
  }
  const fresh = {name: entry.name, type: entry.type, size: entry.size, mtime: entry.mtime,
                 copies: [entry], differs: []};
  model.byName.set(entry.name, fresh);
  model.all.push(fresh);
  model.pending.push(fresh);
}

function addComparison(item) {  // compare: one line per name, already compared
  const copies = Object.entries(item.sources).map(([source, e]) => ({source, ...e}));
  copies.forEach((c) => colour(c.source));
  [...item.missing, ...item.unknown].forEach(colour);
  const first = copies[0] || {};
  const row = {name: item.name, type: first.type, size: first.size, mtime: first.mtime, copies,
               status: item.status, differs: item.differs, missing: item.missing,
               unknown: item.unknown};
  model.entries += copies.length;
  model.all.push(row);
  model.pending.push(row);
}

// -- order ---------------------------------------------------------------------------------------

const byText = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
const byNumber = (a, b) => (a === b ? 0 : a === null || a === undefined ? 1
  : b === null || b === undefined ? -1 : a - b);
const KEYS = {
  name: (a, b) => byText(a.name, b.name),
  type: (a, b) => byText(a.type, b.type),
  size: (a, b) => byNumber(a.size, b.size),
  mtime: (a, b) => byNumber(a.mtime, b.mtime),
  sources: (a, b) => a.copies.length - b.copies.length ||
    byText(a.copies.map((c) => c.source).join(), b.copies.map((c) => c.source).join()),
  status: (a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status],
};
const FIRST_DESCENDING = new Set(['size', 'mtime', 'sources']);  // biggest, newest first: as ls

function comparator() {
  const key = KEYS[model.key];
  const sign = model.descending ? -1 : 1;
  const dirsFirst = VIEW === 'ls';
  return (a, b) => (dirsFirst ? (b.type === 'dir') - (a.type === 'dir') : 0) ||
    sign * key(a, b) || KEYS.name(a, b);
}

function merge(sorted, fresh, cmp) {
  const out = new Array(sorted.length + fresh.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < sorted.length && j < fresh.length) {
    out[k++] = cmp(fresh[j], sorted[i]) < 0 ? fresh[j++] : sorted[i++];
  }
  while (i < sorted.length) out[k++] = sorted[i++];
  while (j < fresh.length) out[k++] = fresh[j++];
  return out;
}

// Bring `sorted` up to date: merge what arrived, or sort again when the order changed.
function flush() {
  const cmp = comparator();
  const keep = model.filter || (() => true);
  if (model.resort) {
    model.sorted = model.all.filter(keep).sort(cmp);
  } else if (model.pending.length) {
    model.sorted = merge(model.sorted, model.pending.filter(keep).sort(cmp), cmp);
  } else {
    return;
  }
  model.pending = [];
  model.resort = false;
  grid.setRows(model.sorted);
}

function sortBy(key) {
  if (model.key === key) model.descending = !model.descending;
  else {
    model.key = key;
    model.descending = FIRST_DESCENDING.has(key);
  }
  for (const th of table.tHead.rows[0].cells) {
    const on = th.dataset.key === model.key;
    th.setAttribute('aria-sort', on ? (model.descending ? 'descending' : 'ascending') : 'none');
  }
  model.resort = true;
  flush();
  grid.render();
}

// -- cells ---------------------------------------------------------------------------------------

function cell(className, text) {
  const td = document.createElement('td');
  td.className = className;
  if (text !== undefined) td.textContent = text;
  return td;
}

function badge(source, className, title) {
  const span = document.createElement('span');
  span.className = `badge s${colour(source)} ${className}`;
  span.textContent = showName(source);
  span.title = title;
  return span;
}

function describe(copy) {
  const size = copy.size === null || copy.size === undefined ? '' : `, ${count(copy.size)} bytes`;
  return `${showName(copy.source)}: ${copy.type}${size}${copy.mtime ? ', ' + fullTime(copy.mtime) : ''}`;
}

// Where a row leads: a directory opens, a found file opens the directory that holds it.
function href(row) {
  if (row.type === 'dir') return `/ls/${HERE}${pathToUrl(row.name)}/${KEEP}`;
  if (VIEW === 'ls') return null;
  const folder = dirname(row.name);
  return `/ls/${HERE}${folder ? pathToUrl(folder) + '/' : ''}${KEEP}`;
}

function renderRow(row) {
  const tr = document.createElement('tr');
  if (VIEW === 'compare') {
    const td = cell('status');
    const pill = document.createElement('span');
    pill.className = `pill ${row.status}`;
    pill.textContent = row.status === 'only' ? 'only on' : row.status;
    td.append(pill);
    if (row.differs.length) td.append(` ${row.differs.join(', ')}`);
    tr.append(td);
  }
  const name = cell(`name t-${row.type}`);
  const link = href(row);
  const label = document.createElement(link ? 'a' : 'span');
  label.textContent = showName(row.name);
  if (link) {
    label.href = link;
    if (row.type !== 'dir') label.title = 'open the directory that holds it';
  }
  name.append(label);
  const types = new Set(row.copies.map((c) => c.type));
  const sizes = row.copies.map((c) => humanSize(c.size));
  const size = cell('num size', sizes[0]);
  if (new Set(sizes).size > 1) {
    size.textContent = `≠ ${sizes[0]}`;
    size.classList.add('differs');
  }
  const time = cell('mtime', shortTime(row.mtime));
  const sources = cell('sources');
  for (const copy of row.copies) sources.append(badge(copy.source, '', describe(copy)));
  for (const s of row.missing || []) {
    sources.append(badge(s, 'missing', `${showName(s)} answered and does not have it`));
  }
  for (const s of row.unknown || []) {
    sources.append(badge(s, 'unknown', `${showName(s)} failed or was cut short: cannot tell`));
  }
  if (VIEW !== 'compare' && row.copies.length > 1) {
    const mark = document.createElement('span');
    mark.className = row.differs.length ? 'mark differs' : 'mark same';
    mark.textContent = row.differs.length ? `≠ ${row.differs.join(', ')}` : '= same';
    sources.append(mark);
  }
  tr.title = row.copies.map(describe).join('\n');
  tr.append(name, cell('type', types.size > 1 ? [...types].join('/') : row.type), size, time,
            sources);
  return tr;
}

// -- the status bar ------------------------------------------------------------------------------

function showCounts(state) {
  const names = model.all.length;
  let text;
  if (VIEW === 'compare') {
    const tally = {same: 0, differs: 0, only: 0};
    model.all.forEach((row) => { tally[row.status] += 1; });
    text = `${count(names)} names: ${count(tally.same)} same, ${count(tally.differs)} differ, ` +
           `${count(tally.only)} only on some`;
  } else if (VIEW === 'search') {
    text = `${count(names)} found (${count(model.entries)} copies)`;
  } else {
    text = `${count(names)} names, ${count(model.entries)} entries`;
  }
  summary.textContent = state === 'loading' ? `${text}… still arriving` : text;
}

function showSources(sources) {
  sourceList.replaceChildren();
  let short = 0;
  for (const s of sources) {
    const failed = s.truncated || (s.error && !REFUSALS.has(s.error.code));
    const state = s.truncated ? 'partial' : failed ? 'failed' : s.ok ? 'ok' : 'refused';
    if (failed) short += 1;
    const li = document.createElement('li');
    li.className = `source ${state}`;
    const name = document.createElement('b');
    name.textContent = showName(s.name);
    const what = document.createElement('span');
    const code = s.error ? s.error.code : '';
    what.textContent = {
      ok: `ok · ${count(s.entries || 0)} · ${milliseconds(s.elapsed_ms)}`,
      partial: `partial: ${code}`,
      failed: `failed: ${code}`,
      refused: code === 'not_found' ? 'not here' : `refused: ${code}`,
    }[state];
    li.append(name, what);
    if (failed && s.error) {  // why, in the server's words (as text)
      const why = document.createElement('i');
      why.textContent = showName(s.error.message);
      li.append(why);
    }
    li.title = [s.endpoint, s.error && showName(s.error.message)].filter(Boolean).join('\n');
    sourceList.append(li);
  }
  if (short) {
    summary.textContent += ` · partial: ${short} of ${sources.length} sources did not answer in full`;
    summary.classList.add('partial');
  }
}

function milliseconds(ms) {
  if (ms === null || ms === undefined) return '';
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${count(Math.round(ms))} ms`;
}

function showProblem(text) {
  summary.textContent = text;
  summary.classList.add('problem');
}

// -- keys and pointer ----------------------------------------------------------------------------

function open(row) {
  const link = row && href(row);
  if (link) location.assign(link);
}

document.addEventListener('keydown', (event) => {
  const target = event.target;
  if (target.matches && target.matches('input, textarea, select')) {
    if (event.key === 'Escape') {
      target.blur();
      scroller.focus();
    }
    return;
  }
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  switch (event.key) {
    case 'ArrowDown': grid.move(1); break;
    case 'ArrowUp': grid.move(-1); break;
    case 'PageDown': grid.move(grid.pageSize()); break;
    case 'PageUp': grid.move(-grid.pageSize()); break;
    case 'Home': grid.select(0); break;
    case 'End': grid.select(grid.rows.length - 1); break;
    case 'Enter': open(grid.selected); break;
    case 'Backspace':
      if (UP !== undefined) location.assign(UP);
      break;
    case '/': document.querySelector('.search input').focus(); break;
    default: return;
  }
  event.preventDefault();
});

table.tHead.addEventListener('click', (event) => {
  const th = event.target.closest('th[data-key]');
  if (th) sortBy(th.dataset.key);
});

table.tBodies[0].addEventListener('click', (event) => {
  const index = grid.indexOfElement(event.target);
  if (index >= 0) grid.select(index);
});

table.tBodies[0].addEventListener('dblclick', (event) => {
  const index = grid.indexOfElement(event.target);
  if (index >= 0) open(grid.rows[index]);
});

const hideSame = document.getElementById('hide-same');
if (hideSame) {
  hideSame.addEventListener('change', () => {
    model.filter = hideSame.checked ? (row) => row.status !== 'same' : null;
    model.resort = true;
    flush();
    grid.render();
  });
}

// -- loading -------------------------------------------------------------------------------------

const grid = new Grid({scroller, table, renderRow});
sortBy('name');

let refreshing = false;
let finished = false;

function refresh() {
  if (refreshing) return;
  refreshing = true;
  requestAnimationFrame(() => {
    refreshing = false;
    flush();
    grid.render();
    if (!finished) showCounts('loading');
  });
}

async function load() {
  const url = new URL(location.href);
  url.searchParams.set('format', 'ndjson');
  if (VIEW === 'search' && !url.searchParams.get('q')) {
    summary.textContent = 'Type a name or a glob pattern to search below this directory.';
    body.dataset.state = 'done';
    return;
  }
  body.dataset.state = 'loading';
  let shown = false;
  const add = VIEW === 'compare' ? addComparison : addEntry;
  try {
    const sources = await readFeed(url, (objects) => {
      objects.forEach(add);
      if (shown) {
        refresh();  // at the next frame, once for however many batches came before it
        return;
      }
      flush();
      grid.render();  // the first rows now, not at the next frame
      shown = true;
      performance.mark('zdir-first-rows');
      showCounts('loading');
    });
    finished = true;
    flush();
    grid.render();
    showCounts('done');
    if (sources) showSources(sources);
    else showProblem(`${summary.textContent} · cut short: the answer ended early`);
  } catch (error) {
    finished = true;
    if (error instanceof FeedError) {
      showProblem(`${error.code}: ${showName(error.message || '')}`);
    } else {
      showProblem(`could not read the listing: ${error.message}`);
    }
    body.dataset.state = 'error';
  }
  if (!model.sorted.length) {
    empty.hidden = false;
    empty.textContent = body.dataset.state === 'error' ? summary.textContent
      : VIEW === 'search' ? 'Nothing matches.' : 'Empty.';
  }
  if (body.dataset.state !== 'error') body.dataset.state = 'done';
  performance.mark('zdir-done');
}

scroller.focus({preventScroll: true});
load();

// A table that only builds the rows in view: 100,000 rows cost what 50 do.
//
// The body holds a spacer row above and below the visible rows, sized so the
// scroll bar is that of the whole table; rows have one fixed height (--row in
// app.css). Rows are given already sorted; the grid renders them, keeps one of
// them selected, and scrolls to keep the selection in view.

const OVERSCAN = 12;  // rows built beyond each edge of the view, so a quick scroll shows no gap

export class Grid {
  constructor({scroller, table, renderRow}) {
    this.scroller = scroller;
    this.table = table;
    this.tbody = table.tBodies[0];
    this.thead = table.tHead;
    this.renderRow = renderRow;
    this.rows = [];
    this.selected = null;  // the selected row object (it keeps its place as rows arrive)
    this.index = -1;
    this.rowHeight = parseFloat(getComputedStyle(table).getPropertyValue('--row')) || 26;
    this.columns = this.thead.rows[0].cells.length;
    this.top = this.spacer();
    this.bottom = this.spacer();
    this.queued = false;
    this.measured = false;  // the row height is checked against the layout once
    this.head = this.thead.offsetHeight;
    scroller.addEventListener('scroll', () => this.schedule(), {passive: true});
    new ResizeObserver(() => {
      this.head = this.thead.offsetHeight;
      this.schedule();
    }).observe(scroller);
  }

  spacer() {
    const tr = document.createElement('tr');
    tr.className = 'spacer';
    tr.setAttribute('aria-hidden', 'true');
    const td = document.createElement('td');
    td.colSpan = this.columns;
    tr.append(td);
    return tr;
  }

  setRows(rows) {
    this.rows = rows;
    this.index = this.selected ? rows.indexOf(this.selected) : -1;
    if (this.index < 0) this.selected = null;
    this.table.setAttribute('aria-rowcount', String(rows.length + 1));
  }

  schedule() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      this.render();
    });
  }

  // Build the rows in view (now: callers that must show rows at once use this).
  render() {
    const {rows, rowHeight, scroller} = this;
    const offset = Math.max(0, scroller.scrollTop - this.head);
    const first = Math.max(0, Math.floor(offset / rowHeight) - OVERSCAN);
    const visible = Math.ceil(scroller.clientHeight / rowHeight) + 2 * OVERSCAN;
    const last = Math.min(rows.length, first + visible);
    const built = [];
    for (let i = first; i < last; i += 1) {
      const tr = this.renderRow(rows[i], i);
      tr.dataset.index = String(i);
      tr.setAttribute('aria-rowindex', String(i + 2));
      if (i === this.index) {
        tr.classList.add('selected');
        tr.setAttribute('aria-selected', 'true');
      }
      built.push(tr);
    }
    this.top.style.height = `${first * rowHeight}px`;
    this.bottom.style.height = `${(rows.length - last) * rowHeight}px`;
    this.tbody.replaceChildren(this.top, ...built, this.bottom);
    if (!this.measured && built.length) {
      this.measured = true;
      const height = built[0].getBoundingClientRect().height;
      if (Math.abs(height - rowHeight) > 0.5) {
        this.rowHeight = height;  // trust the layout over the style sheet
        this.schedule();
      }
    }
  }

  pageSize() {
    return Math.max(1, Math.floor((this.scroller.clientHeight - this.head) / this.rowHeight) - 1);
  }

  select(index) {
    if (!this.rows.length) return;
    this.index = Math.min(this.rows.length - 1, Math.max(0, index));
    this.selected = this.rows[this.index];
    this.reveal(this.index);
    this.render();
  }

  move(delta) {
    this.select(this.index < 0 ? 0 : this.index + delta);
  }

  // Scroll just enough that row `index` is in view below the sticky header.
  reveal(index) {
    const {scroller, rowHeight} = this;
    const {head} = this;
    const top = head + index * rowHeight;
    const viewTop = scroller.scrollTop + head;
    const viewBottom = scroller.scrollTop + scroller.clientHeight;
    if (top < viewTop) scroller.scrollTop = top - head;
    else if (top + rowHeight > viewBottom) scroller.scrollTop = top + rowHeight - scroller.clientHeight;
  }

  indexOfElement(element) {
    const tr = element.closest('tr[data-index]');
    return tr ? Number(tr.dataset.index) : -1;
  }
}

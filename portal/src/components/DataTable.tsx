import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Page } from '../lib/api';
import { common as t, explain } from '../lib/i18n';
import { Alert } from './Alert';

export interface Column<T> {
  label: string;
  /** The API's sort key (`sort=<key>` / `sort=-<key>`); absent: not sortable. */
  sort?: string;
  render: (row: T) => ComponentChildren;
  class?: string;
}

export interface PageRequest {
  page: number;
  pageSize: number;
  /** `name` or `-name`, or '' for the API's own order. */
  sort: string;
  /** What the user typed in the search box. */
  search: string;
}

let seq = 0;

/**
 * A table over one page of an API list: paging, sorting and searching are
 * the API's (`page`, `page_size`, `sort`, `q`, `X-Total-Count`), so nothing
 * is loaded beyond the page shown.
 */
export function DataTable<T>({
  caption,
  columns,
  load,
  rowKey,
  searchLabel,
  toolbar,
  reloadKey = 0,
  defaultSort = '',
  pageSizes = [10, 25, 50],
}: {
  caption: string;
  columns: Column<T>[];
  load: (r: PageRequest) => Promise<Page<T>>;
  rowKey: (row: T) => string | number;
  /** Shown (and used as the label) when the list can be searched. */
  searchLabel?: string;
  toolbar?: ComponentChildren;
  reloadKey?: unknown;
  defaultSort?: string;
  pageSizes?: number[];
}) {
  const id = useRef(`tbl-${++seq}`).current;
  const [page, setPage] = useState(1);
  const [pageSize, setPageSize] = useState(pageSizes[0]);
  const [sort, setSort] = useState(defaultSort);
  const [search, setSearch] = useState('');
  const [typed, setTyped] = useState('');
  const [data, setData] = useState<Page<T> | null>(null);
  const [error, setError] = useState<string>('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const h = setTimeout(() => {
      setSearch(typed.trim());
      setPage(1);
    }, 300);
    return () => clearTimeout(h);
  }, [typed]);

  useEffect(() => {
    let live = true;
    setBusy(true);
    load({ page, pageSize, sort, search })
      .then((d) => {
        if (!live) return;
        setData(d);
        setError('');
        // A page emptied by deletes: step back.
        if (d.items.length === 0 && page > 1 && d.total > 0) setPage(Math.max(1, Math.ceil(d.total / pageSize)));
      })
      .catch((e) => live && setError(explain(e)))
      .finally(() => live && setBusy(false));
    return () => {
      live = false;
    };
  }, [page, pageSize, sort, search, reloadKey]);

  const pages = Math.max(1, Math.ceil((data?.total ?? 0) / pageSize));
  const toggleSort = (key: string) => {
    setSort(sort === key ? `-${key}` : key);
    setPage(1);
  };

  return (
    <section class="data-table" aria-labelledby={`${id}-cap`}>
      <div class="table-toolbar">
        {searchLabel && (
          <input
            type="search"
            aria-label={searchLabel}
            placeholder={searchLabel}
            value={typed}
            onInput={(e) => setTyped((e.target as HTMLInputElement).value)}
          />
        )}
        <div class="toolbar-actions">{toolbar}</div>
      </div>
      <Alert>{error}</Alert>
      <div class="table-scroll">
        <table class="striped" aria-busy={busy}>
          <caption id={`${id}-cap`} class="visually-hidden">
            {caption}
          </caption>
          <thead>
            <tr>
              {columns.map((c) => {
                const dir = c.sort && sort === c.sort ? 'ascending' : c.sort && sort === `-${c.sort}` ? 'descending' : undefined;
                return (
                  <th scope="col" class={c.class} aria-sort={dir ?? (c.sort ? 'none' : undefined)}>
                    {c.sort ? (
                      <button type="button" class="sort-button" onClick={() => toggleSort(c.sort!)}>
                        {c.label}
                        <span aria-hidden="true">{dir === 'ascending' ? ' ▲' : dir === 'descending' ? ' ▼' : ' ↕'}</span>
                      </button>
                    ) : (
                      c.label
                    )}
                  </th>
                );
              })}
            </tr>
          </thead>
          <tbody>
            {data?.items.map((row) => (
              <tr key={rowKey(row)}>
                {columns.map((c) => (
                  <td class={c.class}>{c.render(row)}</td>
                ))}
              </tr>
            ))}
            {data && data.items.length === 0 && (
              <tr>
                <td colSpan={columns.length} class="empty">
                  {t('empty')}
                </td>
              </tr>
            )}
            {!data && !error && (
              <tr>
                <td colSpan={columns.length} class="empty">
                  {t('loading')}
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label={caption}>
        <span>{t('pageOf', { page, pages, total: data?.total ?? 0 })}</span>
        <label>
          <span class="visually-hidden">{t('pageSize')}</span>
          <select
            aria-label={t('pageSize')}
            value={pageSize}
            onChange={(e) => {
              setPageSize(Number((e.target as HTMLSelectElement).value));
              setPage(1);
            }}
          >
            {pageSizes.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <button type="button" class="outline" disabled={page <= 1} onClick={() => setPage(page - 1)} aria-label={t('previous')}>
          ‹
        </button>
        <button type="button" class="outline" disabled={page >= pages} onClick={() => setPage(page + 1)} aria-label={t('next')}>
          ›
        </button>
      </nav>
    </section>
  );
}

/** Harbor's fuzzy `q` for a search box: `q=name=~<text>`. */
export function fuzzy(field: string, text: string): string | undefined {
  return text ? `${field}=~${text}` : undefined;
}

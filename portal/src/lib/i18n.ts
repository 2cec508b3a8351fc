// English and Simplified Chinese. Each page declares its own strings with
// `messages({ en: {...}, zh: {...} })`; the Chinese table must have every
// English key (the type checks it). The choice is kept in localStorage (a
// preference, never a secret) and set on <html lang>.

export type Lang = 'en' | 'zh-CN';
export const LANGS: { code: Lang; label: string }[] = [
  { code: 'en', label: 'English' },
  { code: 'zh-CN', label: '简体中文' },
];

function initial(): Lang {
  const saved = localStorage.getItem('berth-lang');
  if (saved === 'en' || saved === 'zh-CN') return saved;
  return navigator.language?.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

let current: Lang = initial();
document.documentElement.lang = current;

export function lang(): Lang {
  return current;
}

export function setLang(l: Lang): void {
  current = l;
  localStorage.setItem('berth-lang', l);
  document.documentElement.lang = l;
}

export type Translate<K extends string> = (key: K, vars?: Record<string, string | number>) => string;

/** A string table in both languages; returns its lookup function. */
export function messages<E extends Record<string, string>>(tables: {
  en: E;
  zh: { [K in keyof E]: string };
}): Translate<Extract<keyof E, string>> {
  return (key, vars) => {
    let s: string = (current === 'zh-CN' ? tables.zh[key] : tables.en[key]) ?? tables.en[key] ?? key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v));
    return s;
  };
}

/** Strings every page uses. */
export const common = messages({
  en: {
    save: 'Save',
    cancel: 'Cancel',
    close: 'Close',
    create: 'Create',
    delete: 'Delete',
    edit: 'Edit',
    add: 'Add',
    confirm: 'Confirm',
    search: 'Search',
    refresh: 'Refresh',
    loading: 'Loading…',
    empty: 'Nothing here yet.',
    previous: 'Previous page',
    next: 'Next page',
    pageOf: 'Page {page} of {pages} · {total} items',
    pageSize: 'Rows per page',
    name: 'Name',
    created: 'Created',
    updated: 'Updated',
    actions: 'Actions',
    yes: 'Yes',
    no: 'No',
    copy: 'Copy',
    copied: 'Copied',
    copyNamed: 'Copy {what}',
    sortBy: 'Sort by {what}',
    deleteConfirm: 'Delete {what}? This cannot be undone.',
    saved: 'Saved.',
    enabled: 'Enabled',
    disabled: 'Disabled',
    description: 'Description',
    unlimited: 'Unlimited',
    never: 'Never',
    details: 'Details',
    status: 'Status',
    errUnauthorized: 'Your session has ended. Please sign in again.',
    errForbidden: 'You do not have permission to do this.',
    errNotFound: 'It no longer exists, or you cannot see it.',
    errConflict: 'It already exists, or it was changed meanwhile.',
    errBadRequest: 'Some of what you entered is not valid.',
    errQuota: 'This would exceed the project quota.',
    errServer: 'The server could not do this right now. Try again in a moment.',
    errNetwork: 'The server cannot be reached. Check your connection.',
    errDetail: 'Server said: {message}',
  },
  zh: {
    save: '保存',
    cancel: '取消',
    close: '关闭',
    create: '新建',
    delete: '删除',
    edit: '编辑',
    add: '添加',
    confirm: '确认',
    search: '搜索',
    refresh: '刷新',
    loading: '加载中…',
    empty: '暂无数据。',
    previous: '上一页',
    next: '下一页',
    pageOf: '第 {page} / {pages} 页 · 共 {total} 条',
    pageSize: '每页条数',
    name: '名称',
    created: '创建时间',
    updated: '更新时间',
    actions: '操作',
    yes: '是',
    no: '否',
    copy: '复制',
    copied: '已复制',
    copyNamed: '复制{what}',
    sortBy: '按{what}排序',
    deleteConfirm: '确定删除 {what}？此操作无法撤销。',
    saved: '已保存。',
    enabled: '已启用',
    disabled: '已停用',
    description: '描述',
    unlimited: '无限制',
    never: '从不',
    details: '详情',
    status: '状态',
    errUnauthorized: '会话已结束，请重新登录。',
    errForbidden: '您没有执行此操作的权限。',
    errNotFound: '该资源已不存在，或您无权查看。',
    errConflict: '该资源已存在，或已被他人修改。',
    errBadRequest: '输入的内容有误。',
    errQuota: '此操作将超出项目配额。',
    errServer: '服务器暂时无法完成此操作，请稍后重试。',
    errNetwork: '无法连接到服务器，请检查网络。',
    errDetail: '服务器消息：{message}',
  },
});

/** A message a person understands, for any error thrown by the API client. */
export function explain(e: unknown): string {
  const t = common;
  const status = (e as { status?: number })?.status;
  const detail = (e as { serverMessage?: string })?.serverMessage;
  let head: string;
  if (status === undefined) head = t('errNetwork');
  else if (status === 401) head = t('errUnauthorized');
  else if (status === 403) head = t('errForbidden');
  else if (status === 404) head = t('errNotFound');
  else if (status === 409) head = t('errConflict');
  else if (status === 412 || (status === 403 && /quota/i.test(detail ?? ''))) head = t('errQuota');
  else if (status >= 500) head = t('errServer');
  else head = t('errBadRequest');
  if (/quota/i.test(detail ?? '')) head = t('errQuota');
  return detail ? `${head} ${t('errDetail', { message: detail })}` : head;
}

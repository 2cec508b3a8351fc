// A project's webhooks: policies (one target each), a test delivery, the
// signing secret shown once at creation, each policy's delivery history
// (executions, their task with every attempt's status code, its log) and
// when each event type last fired. Project admins manage; maintainers see.
import { useEffect, useState } from 'preact/hooks';
import { Alert } from '../../components/Alert';
import { CopyField } from '../../components/CopyButton';
import { DataTable } from '../../components/DataTable';
import { Confirm, Dialog, FormFooter } from '../../components/Dialog';
import { LogDialog, Status, checked, localPage, val } from '../../components/pol-Common';
import { del, get, page, post, put } from '../../lib/api';
import { date } from '../../lib/format';
import { common, explain, messages } from '../../lib/i18n';
import { ROLE } from '../../lib/session';
import type { ProjectProps } from '../../lib/types';

const t = messages({
  en: {
    title: 'Webhooks',
    policies: 'Webhook policies',
    newWebhook: 'New webhook',
    editWebhook: 'Edit webhook',
    name: 'Name',
    description: 'Description',
    notifyType: 'Notify type',
    payloadFormat: 'Payload format',
    Default: 'Default',
    CloudEvents: 'CloudEvents',
    eventType: 'Event type',
    endpoint: 'Endpoint URL',
    endpointHelp: 'Where the events are posted, e.g. https://hooks.example.com/berth',
    authHeader: 'Auth header',
    authHeaderHelp: 'Sent as the Authorization header, e.g. Bearer <token>.',
    enabledLabel: 'Enabled',
    test: 'Test',
    testEndpoint: 'Test endpoint',
    testOf: 'Test {name}',
    testOk: 'The test event was delivered: the endpoint accepted it.',
    testOkOf: 'The test event to {name} was delivered.',
    created: 'Webhook created',
    secretIntro: 'Deliveries are signed with this secret (header X-Berth-Signature: sha256=<HMAC of the body>). Copy it now: it is not shown again.',
    secret: 'secret',
    copySecret: 'Copy secret',
    done: 'Done',
    enable: 'Enable',
    disable: 'Disable',
    enableOf: 'Enable {name}',
    disableOf: 'Disable {name}',
    editOf: 'Edit {name}',
    deleteOf: 'Delete {name}',
    deleteTitle: 'Delete webhook',
    history: 'Deliveries',
    historyOf: 'Deliveries of {name}',
    events: 'Events',
    creator: 'Creator',
    lastTriggered: 'Last triggered',
    lastTime: 'Last trigger time',
    policy: 'Webhook',
    id: 'ID',
    startTime: 'Start time',
    endTime: 'End time',
    message: 'Message',
    attempts: 'Attempts',
    attemptsOf: 'Attempts of delivery {id}',
    attempt: 'Attempt',
    at: 'Time',
    statusCode: 'Status code',
    error: 'Error',
    delivered: 'delivered',
    noAnswer: 'no answer',
    log: 'Log',
    logOf: 'Log of delivery {id}',
    details: 'Attempts',
    detailsOf: 'Attempts of delivery {id}',
    eventsNeeded: 'Choose at least one event type.',
  },
  zh: {
    title: 'Webhooks',
    policies: 'Webhook 策略',
    newWebhook: '新建 Webhook',
    editWebhook: '编辑 Webhook',
    name: '名称',
    description: '描述',
    notifyType: '通知类型',
    payloadFormat: '负载格式',
    Default: '默认',
    CloudEvents: 'CloudEvents',
    eventType: '事件类型',
    endpoint: 'Endpoint 地址',
    endpointHelp: '事件发送到的地址，例如 https://hooks.example.com/berth',
    authHeader: '认证头',
    authHeaderHelp: '作为 Authorization 请求头发送，例如 Bearer <token>。',
    enabledLabel: '启用',
    test: '测试',
    testEndpoint: '测试 Endpoint',
    testOf: '测试 {name}',
    testOk: '测试事件已送达：对方已接收。',
    testOkOf: '发往 {name} 的测试事件已送达。',
    created: 'Webhook 已创建',
    secretIntro: '投递使用此密钥签名（请求头 X-Berth-Signature: sha256=<请求体的 HMAC>）。请立即复制：它不会再次显示。',
    secret: '密钥',
    copySecret: '复制密钥',
    done: '完成',
    enable: '启用',
    disable: '停用',
    enableOf: '启用 {name}',
    disableOf: '停用 {name}',
    editOf: '编辑 {name}',
    deleteOf: '删除 {name}',
    deleteTitle: '删除 Webhook',
    history: '投递记录',
    historyOf: '{name} 的投递记录',
    events: '事件',
    creator: '创建者',
    lastTriggered: '最近触发',
    lastTime: '最近触发时间',
    policy: 'Webhook',
    id: 'ID',
    startTime: '开始时间',
    endTime: '结束时间',
    message: '消息',
    attempts: '尝试',
    attemptsOf: '投递 {id} 的尝试',
    attempt: '次数',
    at: '时间',
    statusCode: '状态码',
    error: '错误',
    delivered: '已送达',
    noAnswer: '无响应',
    log: '日志',
    logOf: '投递 {id} 的日志',
    details: '尝试',
    detailsOf: '投递 {id} 的尝试',
    eventsNeeded: '请至少选择一个事件类型。',
  },
});

interface Target {
  type: string;
  address: string;
  auth_header?: string;
  skip_cert_verify?: boolean;
  payload_format?: string;
}

interface Policy {
  id: number;
  name: string;
  description?: string;
  targets?: Target[];
  event_types?: string[];
  creator?: string;
  creation_time?: string;
  enabled: boolean;
}

interface EventsInfo {
  event_type?: string[];
  notify_type?: string[];
  payload_formats?: { notify_type: string; formats: string[] }[];
}

interface Execution {
  id: number;
  status: string;
  status_message?: string;
  extra_attrs?: { event_type?: string; event_id?: string };
  start_time?: string;
  end_time?: string;
}

interface Attempt {
  attempt: number;
  at: number;
  status_code: number;
  error: string;
}

interface Task {
  id: number;
  execution_id: number;
  status: string;
  run_count?: number;
  extra_attrs?: { attempts?: Attempt[]; event_type?: string; payload_format?: string };
}

interface LastTrigger {
  policy_name: string;
  event_type: string;
  enabled: boolean;
  creation_time?: string;
  last_trigger_time?: string;
}

/** Event type ids as people read them (PUSH_ARTIFACT -> Push artifact). */
function eventName(e: string): string {
  const s = e.toLowerCase().replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function PolicyDialog({
  open,
  base,
  editing,
  info,
  onClose,
  onSaved,
}: {
  open: boolean;
  base: string;
  editing: Policy | null;
  info: EventsInfo | null;
  onClose: () => void;
  onSaved: (secret: string | null) => void;
}) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [type, setType] = useState('http');
  const [format, setFormat] = useState('Default');
  const [events, setEvents] = useState<string[]>([]);
  const [address, setAddress] = useState('');
  const [auth, setAuth] = useState('');
  const [enabled, setEnabled] = useState(true);
  const [error, setError] = useState('');
  const [tested, setTested] = useState('');
  const [busy, setBusy] = useState('');

  useEffect(() => {
    if (!open) return;
    const tg = editing?.targets?.[0];
    setName(editing?.name ?? '');
    setDescription(editing?.description ?? '');
    setType(tg?.type || 'http');
    setFormat(tg?.payload_format || 'Default');
    setEvents(editing?.event_types ?? info?.event_type ?? []);
    setAddress(tg?.address ?? '');
    setAuth(tg?.auth_header ?? '');
    setEnabled(editing?.enabled ?? true);
    setError('');
    setTested('');
  }, [open, editing?.id]);

  const types = info?.notify_type?.length ? info.notify_type : ['http', 'slack'];
  const formats = info?.payload_formats?.find((f) => f.notify_type === type)?.formats ?? (type === 'http' ? ['Default', 'CloudEvents'] : ['Default']);
  const target = (): Target => ({
    type,
    address: address.trim(),
    auth_header: type === 'http' ? auth : '',
    skip_cert_verify: false,
    payload_format: formats.includes(format) ? format : 'Default',
  });

  const test = async () => {
    setBusy('test');
    setError('');
    setTested('');
    try {
      await post(`${base}/policies/test`, { id: editing?.id, targets: [target()] });
      setTested(t('testOk'));
    } catch (e) {
      setError(explain(e));
    } finally {
      setBusy('');
    }
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    if (events.length === 0) {
      setError(t('eventsNeeded'));
      return;
    }
    setBusy('save');
    setError('');
    setTested('');
    const body = { name: name.trim(), description, targets: [target()], event_types: events, enabled };
    try {
      if (editing) {
        await put(`${base}/policies/${editing.id}`, body);
        onSaved(null);
      } else {
        const r = await post<{ id?: number; secret?: string }>(`${base}/policies`, body);
        onSaved(r?.secret || null);
      }
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy('');
    }
  };

  const toggle = (ev: string, on: boolean) => setEvents(on ? [...events.filter((x) => x !== ev), ev] : events.filter((x) => x !== ev));

  return (
    <Dialog open={open} onClose={onClose} title={editing ? t('editWebhook') : t('newWebhook')} wide>
      <form onSubmit={submit}>
        <label>
          {t('name')}
          <input required maxLength={256} value={name} onInput={(e) => setName(val(e))} />
        </label>
        <label>
          {t('description')}
          <input value={description} onInput={(e) => setDescription(val(e))} />
        </label>
        <div class="grid">
          <label>
            {t('notifyType')}
            <select value={type} onChange={(e) => setType(val(e))}>
              {types.map((x) => (
                <option value={x}>{x}</option>
              ))}
            </select>
          </label>
          <label>
            {t('payloadFormat')}
            <select value={formats.includes(format) ? format : 'Default'} disabled={formats.length < 2} onChange={(e) => setFormat(val(e))}>
              {formats.map((x) => (
                <option value={x}>{x === 'Default' || x === 'CloudEvents' ? t(x) : x}</option>
              ))}
            </select>
          </label>
        </div>
        <fieldset>
          <legend>{t('eventType')}</legend>
          <div class="grid" style={{ gridTemplateColumns: 'repeat(auto-fill, minmax(14rem, 1fr))' }}>
            {(info?.event_type ?? events).map((ev) => (
              <label>
                <input type="checkbox" checked={events.includes(ev)} onChange={(e) => toggle(ev, checked(e))} />
                {eventName(ev)}
              </label>
            ))}
          </div>
        </fieldset>
        <label>
          {t('endpoint')}
          <input required type="url" value={address} placeholder="https://" aria-describedby="wh-url-help" onInput={(e) => setAddress(val(e))} />
        </label>
        <small class="field-help" id="wh-url-help">{t('endpointHelp')}</small>
        {type === 'http' && (
          <>
            <label>
              {t('authHeader')}
              <input value={auth} autoComplete="off" aria-describedby="wh-auth-help" onInput={(e) => setAuth(val(e))} />
            </label>
            <small class="field-help" id="wh-auth-help">{t('authHeaderHelp')}</small>
          </>
        )}
        <label>
          <input type="checkbox" role="switch" checked={enabled} onChange={(e) => setEnabled(checked(e))} />
          {t('enabledLabel')}
        </label>
        <Alert>{error}</Alert>
        <Alert kind="success">{tested}</Alert>
        <FormFooter onCancel={onClose} busy={busy === 'save'} disabled={!!busy} label={editing ? common('save') : common('create')}>
          <button type="button" class="outline" aria-busy={busy === 'test'} disabled={!!busy || !address.trim()} onClick={test}>
            {t('testEndpoint')}
          </button>
        </FormFooter>
      </form>
    </Dialog>
  );
}

/** A policy's deliveries: executions, and for the chosen one its attempts and log. */
function HistoryDialog({ base, policy, onClose }: { base: string; policy: Policy | null; onClose: () => void }) {
  const [chosen, setChosen] = useState<Execution | null>(null);
  const [task, setTask] = useState<Task | null>(null);
  const [error, setError] = useState('');
  const [log, setLog] = useState<string | null>(null);
  useEffect(() => {
    setChosen(null);
    setTask(null);
  }, [policy?.id]);
  useEffect(() => {
    setTask(null);
    setError('');
    if (!policy || !chosen) return;
    get<Task[]>(`${base}/policies/${policy.id}/executions/${chosen.id}/tasks`).then(
      (ts) => setTask(ts?.[0] ?? null),
      (e) => setError(explain(e)),
    );
  }, [chosen?.id]);
  const p = `${base}/policies/${policy?.id}`;
  return (
    <>
      <Dialog open={!!policy} onClose={onClose} title={t('historyOf', { name: policy?.name ?? '' })} wide>
        {policy && (
          <DataTable<Execution>
            caption={t('historyOf', { name: policy.name })}
            rowKey={(x) => x.id}
            load={({ page: pg, pageSize }) => page<Execution>(`${p}/executions`, { page: pg, page_size: pageSize })}
            columns={[
              { label: t('id'), class: 'num', render: (x) => x.id },
              { label: t('eventType'), render: (x) => (x.extra_attrs?.event_type ? eventName(x.extra_attrs.event_type) : '—') },
              { label: common('status'), render: (x) => <Status value={x.status} /> },
              { label: t('message'), render: (x) => x.status_message || '—' },
              { label: t('startTime'), render: (x) => date(x.start_time) },
              { label: t('endTime'), render: (x) => date(x.end_time) },
              {
                label: common('actions'),
                render: (x) => (
                  <div class="row-actions" style={{ display: 'flex', gap: '0.25rem', whiteSpace: 'nowrap' }}>
                    <button type="button" class="outline" aria-label={t('detailsOf', { id: x.id })} aria-expanded={chosen?.id === x.id} onClick={() => setChosen(chosen?.id === x.id ? null : x)}>
                      {t('details')}
                    </button>
                    <button type="button" class="outline" aria-label={t('logOf', { id: x.id })} onClick={() => setLog(`${p}/executions/${x.id}/tasks/${x.id}/log`)}>
                      {t('log')}
                    </button>
                  </div>
                ),
              },
            ]}
          />
        )}
        <Alert>{error}</Alert>
        {chosen && task && (
          <section aria-label={t('attemptsOf', { id: chosen.id })}>
            <h3>{t('attemptsOf', { id: chosen.id })}</h3>
            <DataTable<Attempt>
              key={chosen.id}
              caption={t('attemptsOf', { id: chosen.id })}
              rowKey={(a) => a.attempt}
              load={async (r) => localPage(task.extra_attrs?.attempts ?? [], r)}
              columns={[
                { label: t('attempt'), class: 'num', render: (a) => a.attempt },
                { label: t('at'), render: (a) => date(new Date(a.at).toISOString()) },
                { label: t('statusCode'), class: 'num', render: (a) => (a.status_code ? a.status_code : t('noAnswer')) },
                { label: t('error'), render: (a) => a.error || <span class="status-ok">{t('delivered')}</span> },
              ]}
            />
          </section>
        )}
      </Dialog>
      <LogDialog path={log} onClose={() => setLog(null)} />
    </>
  );
}

export function ProjectWebhooks({ project, role }: ProjectProps) {
  const base = `/projects/${project.project_id}/webhook`;
  const manage = role === ROLE.projectAdmin;
  const [info, setInfo] = useState<EventsInfo | null>(null);
  const [dialog, setDialog] = useState<{ editing: Policy | null } | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<Policy | null>(null);
  const [history, setHistory] = useState<Policy | null>(null);
  const [reload, setReload] = useState(0);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (manage) get<EventsInfo>(`${base}/events`).then(setInfo, () => {});
  }, [project.project_id]);

  const act = async (f: () => Promise<unknown>, ok?: string) => {
    setError('');
    setNotice('');
    try {
      await f();
      if (ok) setNotice(ok);
      setReload((n) => n + 1);
    } catch (e) {
      setError(explain(e));
    }
  };

  const remove = async () => {
    if (!deleting) return;
    setBusy(true);
    await act(() => del(`${base}/policies/${deleting.id}`));
    setBusy(false);
    setDeleting(null);
  };

  return (
    <section>
      <h2>{t('title')}</h2>
      <Alert>{error}</Alert>
      <Alert kind="success">{notice}</Alert>
      <DataTable<Policy>
        caption={t('policies')}
        reloadKey={reload}
        rowKey={(p) => p.id}
        toolbar={
          manage && (
            <button type="button" onClick={() => setDialog({ editing: null })}>
              + {t('newWebhook')}
            </button>
          )
        }
        load={({ page: p, pageSize }) => page<Policy>(`${base}/policies`, { page: p, page_size: pageSize })}
        columns={[
          { label: t('name'), render: (p) => p.name },
          { label: common('status'), render: (p) => (p.enabled ? <span class="status-ok">{common('enabled')}</span> : <span class="muted">{common('disabled')}</span>) },
          { label: t('notifyType'), render: (p) => p.targets?.[0]?.type ?? '—' },
          { label: t('endpoint'), render: (p) => <code>{p.targets?.[0]?.address ?? '—'}</code> },
          { label: t('events'), render: (p) => <small>{(p.event_types ?? []).map(eventName).join(', ') || '—'}</small> },
          { label: t('creator'), render: (p) => p.creator ?? '—' },
          { label: common('created'), render: (p) => date(p.creation_time) },
          {
            label: common('actions'),
            render: (p) => (
              <div class="row-actions" style={{ display: 'flex', gap: '0.25rem', whiteSpace: 'nowrap' }}>
                <button type="button" class="outline" aria-label={t('historyOf', { name: p.name })} onClick={() => setHistory(p)}>
                  {t('history')}
                </button>
                {manage && (
                  <>
                    <button type="button" class="outline" aria-label={t('testOf', { name: p.name })} onClick={() => act(() => post(`${base}/policies/test`, { id: p.id }), t('testOkOf', { name: p.name }))}>
                      {t('test')}
                    </button>
                    <button
                      type="button"
                      class="outline"
                      aria-label={p.enabled ? t('disableOf', { name: p.name }) : t('enableOf', { name: p.name })}
                      onClick={() => act(() => put(`${base}/policies/${p.id}`, { enabled: !p.enabled }))}
                    >
                      {p.enabled ? t('disable') : t('enable')}
                    </button>
                    <button type="button" class="outline" aria-label={t('editOf', { name: p.name })} onClick={() => setDialog({ editing: p })}>
                      {common('edit')}
                    </button>
                    <button type="button" class="outline danger" aria-label={t('deleteOf', { name: p.name })} onClick={() => setDeleting(p)}>
                      {common('delete')}
                    </button>
                  </>
                )}
              </div>
            ),
          },
        ]}
      />

      {manage && (
        <>
          <h3>{t('lastTriggered')}</h3>
          <DataTable<LastTrigger>
            caption={t('lastTriggered')}
            reloadKey={reload}
            rowKey={(x) => `${x.policy_name}/${x.event_type}`}
            load={async (r) => localPage((await get<LastTrigger[]>(`${base}/lasttrigger`)) ?? [], r)}
            columns={[
              { label: t('policy'), render: (x) => x.policy_name },
              { label: t('eventType'), render: (x) => eventName(x.event_type) },
              { label: common('status'), render: (x) => (x.enabled ? common('enabled') : common('disabled')) },
              { label: t('lastTime'), render: (x) => (x.last_trigger_time ? date(x.last_trigger_time) : common('never')) },
            ]}
          />
        </>
      )}

      <PolicyDialog
        open={!!dialog}
        base={base}
        editing={dialog?.editing ?? null}
        info={info}
        onClose={() => setDialog(null)}
        onSaved={(s) => {
          setDialog(null);
          setReload((n) => n + 1);
          if (s) setSecret(s);
        }}
      />
      <Dialog
        open={!!secret}
        title={t('created')}
        onClose={() => setSecret(null)}
        footer={
          <button type="button" onClick={() => setSecret(null)}>
            {t('done')}
          </button>
        }
      >
        <p>{t('secretIntro')}</p>
        {secret && <CopyField value={secret} what={t('secret')} />}
      </Dialog>
      <HistoryDialog
        base={base}
        policy={history}
        onClose={() => {
          setHistory(null);
          setReload((n) => n + 1);
        }}
      />
      <Confirm
        open={!!deleting}
        title={t('deleteTitle')}
        message={common('deleteConfirm', { what: deleting?.name ?? '' })}
        busy={busy}
        onConfirm={remove}
        onClose={() => setDeleting(null)}
      />
    </section>
  );
}

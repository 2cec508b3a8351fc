import { AuditLogView } from '../../components/acc-AuditLog';
import { messages } from '../../lib/i18n';
import { useSession } from '../../lib/session';

const t = messages({
  en: { title: 'Logs' },
  zh: { title: '日志' },
});

export function AuditLog() {
  const { user } = useSession();
  return (
    <section>
      <h1>{t('title')}</h1>
      <AuditLogView admin={!!user?.sysadmin_flag} />
    </section>
  );
}

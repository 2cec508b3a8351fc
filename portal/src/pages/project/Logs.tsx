import { AuditLogView } from '../../components/acc-AuditLog';
import { messages } from '../../lib/i18n';
import type { ProjectProps } from '../../lib/types';

const t = messages({
  en: { title: 'Logs' },
  zh: { title: '日志' },
});

export function ProjectLogs({ project, admin }: ProjectProps) {
  return (
    <section>
      <h2>{t('title')}</h2>
      <AuditLogView project={project} admin={admin} />
    </section>
  );
}

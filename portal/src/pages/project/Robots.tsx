import { RobotAccounts } from '../../components/acc-Robots';
import { messages } from '../../lib/i18n';
import { ROLE } from '../../lib/session';
import type { ProjectProps } from '../../lib/types';

const t = messages({
  en: { title: 'Robot Accounts' },
  zh: { title: '机器人账户' },
});

export function ProjectRobots({ project, role }: ProjectProps) {
  return (
    <section>
      <h2>{t('title')}</h2>
      <RobotAccounts project={project} manage={role === ROLE.projectAdmin} />
    </section>
  );
}

import { RobotAccounts } from '../../components/acc-Robots';
import { messages } from '../../lib/i18n';
import { useSession } from '../../lib/session';

const t = messages({
  en: {
    title: 'Robot Accounts',
    intro: 'System robot accounts can act in every project, or in the projects you choose. Project robot accounts are managed in each project.',
  },
  zh: {
    title: '机器人账户',
    intro: '系统级机器人账户可作用于所有项目或所选项目。项目级机器人账户在各项目中管理。',
  },
});

export function SystemRobots() {
  const { user } = useSession();
  return (
    <section>
      <h1>{t('title')}</h1>
      <p class="muted">{t('intro')}</p>
      <RobotAccounts manage={!!user?.sysadmin_flag} />
    </section>
  );
}
